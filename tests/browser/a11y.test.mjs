// Accessibility: axe-core (npm) on the sign-in page, the desktop, the launcher and every
// app's window; a serious or critical violation fails the story. The pages run in a context
// that lets the test inject axe (the desktop's CSP allows only its own scripts).
import { test, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { BASE, closePages, launch, newUser, signupApi } from "./harness.mjs";

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

let browser;
before(async () => { browser = await launch(); });
afterEach(async (t) => { await closePages(t.name); });
after(async () => { await browser?.close(); });

/** The serious and critical violations axe finds in `selector` (the whole page: "body"). */
async function violations(page, selector) {
  if (!(await page.evaluate(() => !!window.axe))) await page.evaluate(AXE);
  const found = await page.evaluate(async (sel) => {
    const r = await window.axe.run(sel, { resultTypes: ["violations"] });
    return r.violations
      .filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(" ")).slice(0, 5) }));
  }, selector);
  return found;
}

test("the sign-in page, the desktop, the launcher and every app have no serious accessibility violations", async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, bypassCSP: true });
  const page = await context.newPage();
  const report = {};

  await page.goto(`${BASE}/`);
  await page.waitForSelector("input[name=email]");
  report.login = await violations(page, "body");

  const user = newUser();
  const token = await signupApi(user);
  const form = new FormData();
  form.append("file", new Blob(["# Notes\n\nhello"], { type: "text/markdown" }), "notes.md");
  await fetch(`${BASE}/files`, { method: "POST", headers: { authorization: `Bearer ${token}` }, body: form });
  await page.fill("input[name=email]", user.email);
  await page.fill("input[name=password]", user.password);
  await page.click("button[type=submit]");
  await page.waitForSelector("[data-desktop][data-ready=true]");
  report.desktop = await violations(page, "body");

  await page.keyboard.press("Control+Space");
  await page.waitForSelector("[data-launcher]");
  report.launcher = await violations(page, "[data-launcher]");
  await page.keyboard.press("Escape");

  await page.click("[data-app=files]");
  await page.waitForSelector("[data-window=files] [data-files-list][aria-busy=false]");
  report.files = await violations(page, "[data-window=files]");

  await page.click("[data-window=files] [data-file='notes.md']", { button: "right" });
  await page.click("[data-context-menu] >> text=Open with Viewer");
  await page.waitForSelector("[data-window=viewer] [data-viewer]");
  report.viewer = await violations(page, "[data-window=viewer]");
  await page.keyboard.press("Alt+w");
  await page.waitForSelector("[data-window=viewer]", { state: "detached" });

  await page.click("[data-window=files] [data-file='notes.md']", { button: "right" });
  await page.click("[data-context-menu] >> text=Share…");
  await page.waitForSelector("[data-share-dialog]");
  report.share = await violations(page, "[data-share-dialog]");
  await page.click("[data-share-dialog] >> text=Done");

  await page.click("[data-window=files] [data-file='notes.md']", { button: "right" });
  await page.click("[data-context-menu] >> text=History…");
  await page.waitForSelector("[data-history-list] li");
  await page.click("[data-history-list] [data-action=preview-version]");
  await page.waitForSelector("[data-history-text]");
  report.history = await violations(page, "[data-history]");
  await page.keyboard.press("Escape");
  await page.click("[data-window=files] [data-action=open-trash]");
  await page.waitForSelector("[data-trash-list] >> text=The Trash is empty.");
  report.trash = await violations(page, "[data-trash]");
  await page.click("[data-trash] [aria-label='Back to the folder']");

  await page.dblclick("[data-window=files] [data-file='notes.md']");
  await page.waitForSelector("[data-window=editor] .monaco-editor", { timeout: 30000 });
  report.editor = await violations(page, "[data-window=editor] .editor-side, [data-window=editor] .editor-tabs, [data-window=editor] .editor-status");
  await page.click("[data-window=editor] [data-editor-lock-button]");
  await page.waitForSelector("[data-window=editor] [data-editor-lock]");
  report.lockBanner = await violations(page, "[data-window=editor] [data-editor-lock], [data-window=editor] .editor-status");

  // Someone signed out opening a view link gets the file's live page.
  const files = await (await fetch(`${BASE}/files`, { headers: { authorization: `Bearer ${token}` } })).json();
  const notes = files.items.find((f) => f.name === "notes.md");
  const link = await (await fetch(`${BASE}/files/${notes.id}/share`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: "{}" })).json();
  const guest = await (await browser.newContext({ viewport: { width: 1280, height: 800 }, bypassCSP: true })).newPage();
  await guest.goto(`${BASE}/#editor?file=${notes.id}&share=${link.token}`);
  await guest.waitForSelector("[data-link-page] .monaco-editor", { timeout: 30000 });
  report.linkPage = await violations(guest, "[data-link-page] .link-page-head, [data-link-page] .editor-status");
  await guest.context().close();

  const failing = Object.fromEntries(Object.entries(report).filter(([, found]) => found.length > 0));
  assert.deepEqual(failing, {}, JSON.stringify(failing, null, 1));
  await context.close();
});
