// The Terminal app in a real Chromium: xterm.js on a real shell in the user's sandbox.
import { test, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { api, closePages, desktopFor, launch, shot } from "./harness.mjs";

let browser;
before(async () => { browser = await launch(); });
afterEach(async (t) => { await closePages(t.name); });
after(async () => { await browser?.close(); });

const TERM = "[data-window=terminal]";

/** The terminal's lines as text (xterm's DOM rows). */
function lines(page, scope = TERM) {
  return page.$$eval(`${scope} .xterm-rows > div`, (rows) => rows.map((r) => r.textContent.trim()));
}

/** Waits until a line of the terminal is exactly `text` (output, not the typed command). */
async function waitForLine(page, text, scope = TERM) {
  await page.waitForFunction(
    ([scope, text]) => [...document.querySelectorAll(`${scope} .xterm-rows > div`)]
      .some((r) => r.textContent.trim() === text),
    [scope, text],
    { timeout: 20000 },
  );
}

async function connected(page) {
  await page.locator(`${TERM} .term-status.ok`).waitFor({ timeout: 30000 });
}

/** Types a command line into the focused terminal. */
async function run(page, line) {
  await page.locator(`${TERM} .xterm`).click();
  await page.keyboard.type(line);
  await page.keyboard.press("Enter");
}

test("Terminal runs commands, survives a reload, and is shared view-only with a colleague", async () => {
  const { page } = await desktopFor(browser);
  await page.click("[data-app=terminal]");
  await connected(page);
  await run(page, "echo hello");
  await waitForLine(page, "hello");
  await shot(page, "20-terminal");

  // A reload finds the same shell: its variables and the screen from before.
  await run(page, "export MARK=kept");
  await page.reload();
  await page.waitForSelector("[data-desktop][data-ready=true]");
  await connected(page);
  await waitForLine(page, "hello");
  await run(page, "echo $MARK-$((2+3))");
  await waitForLine(page, "kept-5");

  // The window follows its size: stty reports what xterm shows.
  const cols = await page.$eval(`${TERM} .xterm-rows > div`, (r) => r.parentElement.parentElement.clientWidth);
  assert.ok(cols > 0);
  await run(page, "stty size | tr ' ' x");
  await page.waitForFunction((scope) => [...document.querySelectorAll(`${scope} .xterm-rows > div`)]
    .some((r) => /^\d+x\d+$/.test(r.textContent.trim())), TERM);
  const size = (await lines(page)).find((l) => /^\d+x\d+$/.test(l));
  const [rows, columns] = size.split("x").map(Number);
  assert.ok(columns > 40 && rows > 5, `a real size, not 80x24 by default: ${size}`);

  // Share view-only: a second user opens the link and watches, but cannot type.
  await page.click(`${TERM} button:text("Share view-only")`);
  const link = await page.locator(`${TERM} .term-share-link`).inputValue();
  assert.match(link, /#terminal\?sandbox=.+&share=.+&session=/);
  const colleague = await desktopFor(browser);
  await colleague.page.goto(link);
  await colleague.page.locator(`${TERM} .term-status.ok`).waitFor({ timeout: 30000 });
  assert.match(await colleague.page.locator(`${TERM} .term-text`).innerText(), /view only/);
  await waitForLine(colleague.page, "kept-5");
  await run(page, "echo live-$((6*7))");
  await waitForLine(colleague.page, "live-42");
  await run(colleague.page, "echo from-colleague");
  await colleague.page.locator(`${TERM} .term-notice:text("View only")`).waitFor();
  await run(page, "echo after-$((1+1))");
  await waitForLine(page, "after-2");
  assert.ok(!(await lines(page)).includes("from-colleague"), "the viewer's keys never reach the shell");
  await shot(colleague.page, "21-terminal-view-only");

  // Revoking the link disconnects the colleague at once, and their window says why
  // instead of reconnecting.
  await page.click(`${TERM} button[data-revoke]`);
  await page.locator(`${TERM} .term-share`).waitFor({ state: "detached" });
  await colleague.page.locator(`${TERM} .term-text:text("revoked")`).waitFor({ timeout: 10000 });
  await run(page, "echo unseen-$((3*3))");
  await waitForLine(page, "unseen-9");
  assert.ok(!(await lines(colleague.page)).includes("unseen-9"), "nothing reaches a revoked viewer");
  await shot(colleague.page, "22-terminal-link-revoked");

  // A link whose bar was closed can still be revoked: Stop sharing revokes every link.
  await page.click(`${TERM} button:text("Share view-only")`);
  await page.locator(`${TERM} .term-share-link`).waitFor();
  await page.click(`${TERM} .term-share button[aria-label="Close"]`);
  await page.click(`${TERM} button[data-revoke-all]`);
  await page.locator(`${TERM} .term-notice:text("1 link revoked")`).waitFor();
  assert.deepEqual(page.errors, []);
  assert.deepEqual(colleague.page.errors, []);
});

test("two terminals are two shells, and a stopped sandbox comes back by itself", async () => {
  const { page, token } = await desktopFor(browser);
  await page.click("[data-app=terminal]");
  await connected(page);
  await run(page, "export WHO=first");
  await page.keyboard.press("Control+Space");
  await page.keyboard.type("terminal");
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => document.querySelectorAll("[data-window=terminal]").length === 2);
  const second = `${TERM}.focused`;
  await page.locator(`${second} .term-status.ok`).waitFor({ timeout: 30000 });
  await page.locator(`${second} .xterm`).click();
  await page.keyboard.type("echo [$WHO]-$((4+4))");
  await page.keyboard.press("Enter");
  await waitForLine(page, "[]-8", second);

  // The sandbox stops under the terminal (another tab, an admin): the status says the
  // connection was lost, then a new sandbox comes up with the same home.
  await page.locator(`${second} .xterm`).click();
  await page.keyboard.type("echo saved > ~/note.txt");
  await page.keyboard.press("Enter");
  const live = await api(token, "POST", "/sandbox", {});
  assert.equal(live.status, 200);
  assert.equal((await api(token, "DELETE", `/sandbox/${live.body.id}`)).status, 204);
  await page.locator(`${second} .term-status.wait`).waitFor({ timeout: 15000 });
  await shot(page, "22-terminal-reconnecting");
  await page.locator(`${second} .term-status.ok`).waitFor({ timeout: 30000 });
  await page.locator(`${second} .xterm`).click();
  await page.keyboard.type("cat ~/note.txt | tr a-z A-Z");
  await page.keyboard.press("Enter");
  await waitForLine(page, "SAVED", second);
  assert.deepEqual(page.errors, []);
});

test("On a host without terminals, Terminal says so once instead of retrying", async () => {
  // A second server started with --sandbox-provider none (tests/tests/browser.rs starts it).
  const base = process.env.CLOUDOS_BASE_URL_NO_SANDBOXES?.replace(/\/$/, "");
  assert.ok(base, "CLOUDOS_BASE_URL_NO_SANDBOXES names a server without sandboxes");
  const { page } = await desktopFor(browser, undefined, base);
  let asked = 0;
  page.on("request", (r) => { if (r.method() === "POST" && r.url().endsWith("/sandbox")) asked += 1; });
  await page.click("[data-app=terminal]");
  const status = page.locator(`${TERM} .term-status.bad`);
  await status.waitFor({ timeout: 20000 });
  assert.match(await status.textContent(), /not available/);
  // Asking again would not help: no retries follow (they would come within 2 s).
  await page.waitForTimeout(3000);
  assert.equal(asked, 1);
  await shot(page, "23-terminal-unavailable");
});
