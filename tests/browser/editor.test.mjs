// The Editor in real Chromium: Monaco on a file's live room. Two people edit one file at
// once (the second through an edit link) and see each other's text and cursor; a third
// watches it change through a view link; the status bar says when the room has every edit.
import { test, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { BASE, api, closePages, desktopFor, launch, newPage, newUser, shot, signupApi } from "./harness.mjs";

let browser;
before(async () => { browser = await launch(); });
afterEach(async (t) => { await closePages(t.name); });
after(async () => { await browser?.close(); });

const EDITOR = "[data-window=editor]";

async function uploadText(token, name, text) {
  const form = new FormData();
  form.append("file", new Blob([text], { type: "text/plain" }), name);
  const res = await fetch(`${BASE}/files`, { method: "POST", headers: { authorization: `Bearer ${token}` }, body: form });
  assert.equal(res.status, 201);
  return (await res.json()).files[0];
}

/** The text the active tab shows, line by line from the top (Monaco reuses its line
 * elements, so their order in the page is not the text's). */
function editorText(page) {
  return page.evaluate(() => {
    const lines = [...document.querySelectorAll("[data-window=editor] .editor-pane[style*=block] .view-line")];
    lines.sort((a, b) => parseFloat(a.style.top) - parseFloat(b.style.top));
    return lines.map((l) => l.textContent.replace(/\u00a0/g, " ")).join("\n");
  });
}

async function waitForText(page, re) {
  await page.waitForFunction(
    (src) => {
      const lines = [...document.querySelectorAll("[data-window=editor] .editor-pane[style*=block] .view-line")];
      lines.sort((a, b) => parseFloat(a.style.top) - parseFloat(b.style.top));
      return new RegExp(src).test(lines.map((l) => l.textContent.replace(/\u00a0/g, " ")).join("\n"));
    },
    re.source,
    { timeout: 20000 },
  );
}

async function saved(page) {
  await page.locator(`${EDITOR} [data-editor-status] [data-status=saved]`).waitFor({ timeout: 20000 });
}

/** Signs out through the account menu. */
async function signOut(page) {
  await page.click(".dock-account .avatar");
  await page.click("[data-logout]");
}

/** The Editor's IndexedDB stores in a page's browser. */
const stores = (p) => p.evaluate(async () => (await indexedDB.databases()).map((d) => d.name).filter((n) => n.startsWith("cloudos:")));

/** Opens the file a link names in the desktop's Editor. */
async function openThroughLink(page, fileId, token) {
  await page.goto(`${BASE}/#editor?file=${fileId}&share=${token}`);
  await page.reload();
  await page.waitForSelector("[data-desktop][data-ready=true]");
  await page.locator(`${EDITOR} .monaco-editor`).waitFor({ timeout: 30000 });
}

test("two people edit one file live, a third watches through a view link, and the file gets the text", async () => {
  const ann = await desktopFor(browser);
  const file = await uploadText(ann.token, "plan.md", "# Plan\n");
  const edit = await api(ann.token, "POST", `/files/${file.id}/share`, { mode: "edit" });
  const view = await api(ann.token, "POST", `/files/${file.id}/share`, { mode: "view" });
  assert.equal(edit.status, 201);

  // Ann double-clicks the file in Files: it opens in the Editor, Monaco loaded on demand;
  // a second file opens as a second tab, and the tabs switch back and forth.
  await uploadText(ann.token, "notes.txt", "other file");
  await ann.page.click("[data-app=files]");
  await ann.page.dblclick(`[data-window=files] [data-file="notes.txt"]`);
  await ann.page.locator(`${EDITOR} .monaco-editor`).waitFor({ timeout: 30000 });
  await waitForText(ann.page, /other file/);
  // Files to the front (the Editor covers it), then the second file.
  await ann.page.click("[data-app=files]");
  await ann.page.dblclick(`[data-window=files] [data-file="plan.md"]`);
  await ann.page.locator(`${EDITOR} [data-tab="plan.md"]`).waitFor();
  await waitForText(ann.page, /# Plan/);
  await ann.page.click(`${EDITOR} [data-tab="notes.txt"] .editor-tab-name`);
  await waitForText(ann.page, /other file/);
  await ann.page.click(`${EDITOR} [data-tab="plan.md"] .editor-tab-name`);
  await waitForText(ann.page, /# Plan/);
  await saved(ann.page);

  // Bob opens the edit link, signed in as himself; Carol the view link.
  const bob = await desktopFor(browser);
  await openThroughLink(bob.page, file.id, edit.body.token);
  const carol = await desktopFor(browser);
  await openThroughLink(carol.page, file.id, view.body.token);
  await waitForText(bob.page, /# Plan/);

  // Both type at once; both see both; Carol sees it change.
  await ann.page.locator(`${EDITOR} .editor-pane[style*=block] .view-lines`).click();
  await ann.page.keyboard.press("Control+End");
  await ann.page.keyboard.type("- Ann's step\n");
  await bob.page.locator(`${EDITOR} .editor-pane[style*=block] .view-lines`).click();
  await bob.page.keyboard.press("Control+End");
  await bob.page.keyboard.type("- Bob's step\n");
  for (const p of [ann.page, bob.page, carol.page]) {
    await waitForText(p, /- Ann's step/);
    await waitForText(p, /- Bob's step/);
  }
  // Each sees the other's cursor (y-monaco draws remote carets, in each person's colour)
  // and name.
  const bobName = bob.user.name;
  const annName = ann.user.name;
  for (const [page, other] of [[ann.page, bobName], [bob.page, annName]]) {
    await page.waitForFunction(
      (name) => (document.querySelector("[data-window=editor] .editor-people")?.textContent || "").includes(name),
      other,
      { timeout: 20000 },
    );
    await page.waitForFunction(
      (name) => [...document.querySelectorAll("style")].some((s) => s.textContent.includes(`content:"${name}"`)) &&
        document.querySelectorAll("[data-window=editor] .yRemoteSelectionHead").length > 0,
      other,
      { timeout: 20000 },
    );
  }
  await saved(ann.page);
  await saved(bob.page);
  await shot(ann.page, "11-editor-two-people");

  // Carol's editor is read-only: her keys change nothing for anyone.
  await carol.page.locator(`${EDITOR} .editor-pane[style*=block] .view-lines`).click();
  await carol.page.keyboard.type("vandal");
  await new Promise((r) => setTimeout(r, 1000));
  assert.doesNotMatch(await editorText(ann.page), /vandal/);

  // Nothing of Ann's file is kept in Carol's browser (a view link keeps no local copy),
  // while Bob's editor keeps his edits there until the room has them.
  assert.deepEqual(await stores(carol.page), []);
  assert.equal((await stores(bob.page)).length, 1);

  // Revoking the view link ends Carol's room at once.
  const revoked = await api(ann.token, "DELETE", `/shares/${view.body.token}`);
  assert.equal(revoked.status, 204);
  await carol.page.locator(`${EDITOR} [data-editor-status] [data-status^=ended]`).waitFor({ timeout: 20000 });

  // Everyone leaves; the file holds what they see.
  const text = await editorText(ann.page);
  await ann.page.close();
  await bob.page.close();
  const deadline = Date.now() + 20000;
  for (;;) {
    const res = await fetch(`${BASE}/files/${file.id}/content`, { headers: { authorization: `Bearer ${ann.token}` } });
    const now = await res.text();
    if (now.includes("- Ann's step") && now.includes("- Bob's step")) {
      assert.equal(now.trimEnd(), text.trimEnd());
      break;
    }
    assert.ok(Date.now() < deadline, `the file holds ${JSON.stringify(now)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.deepEqual(ann.page.errors, []);
  assert.deepEqual(bob.page.errors, []);
  assert.deepEqual(carol.page.errors, []);
});

/**
 * Lets a test cut a page's room sockets and keep new ones from reaching the server, as a
 * lost network would: `window.__cut(true)` closes them and sends new ones nowhere,
 * `window.__cut(false)` lets the page reconnect.
 */
async function cuttable(page) {
  await page.addInitScript(() => {
    const Real = window.WebSocket;
    const open = [];
    let cut = false;
    window.WebSocket = class extends Real {
      constructor(url, protocols) {
        const room = String(url).includes("/collab/");
        // Port 9 (discard) on loopback: nothing listens, the socket fails at once.
        super(room && cut ? "ws://127.0.0.1:9/" : url, protocols);
        if (room) open.push(this);
      }
    };
    window.__cut = (on) => {
      cut = on;
      if (on) for (const s of open.splice(0)) s.close();
    };
  });
}


test("a tab whose link died while it was offline says so, unsent edits ask before they go, and signing out leaves no copies", async () => {
  const ann = await desktopFor(browser);
  const file = await uploadText(ann.token, "draft.md", "# Draft\n");
  const edit = await api(ann.token, "POST", `/files/${file.id}/share`, { mode: "edit" });
  const bob = await desktopFor(browser);
  await cuttable(bob.page);
  await openThroughLink(bob.page, file.id, edit.body.token);
  await waitForText(bob.page, /# Draft/);
  await saved(bob.page);

  // Bob loses the network and types on: the tab marks edits that wait in his browser.
  await bob.page.evaluate(() => window.__cut(true));
  await bob.page.locator(`${EDITOR} [data-editor-status] [data-status=offline]`).waitFor({ timeout: 20000 });
  await bob.page.locator(`${EDITOR} .editor-pane[style*=block] .view-lines`).click();
  await bob.page.keyboard.press("Control+End");
  await bob.page.keyboard.type("- typed offline\n");
  await bob.page.locator(`${EDITOR} [data-tab="draft.md"] .dirty`).waitFor();
  // Closing that tab asks first; "Cancel" keeps it.
  const asked = new Promise((resolve) => bob.page.once("dialog", async (d) => { resolve(d.message()); await d.dismiss(); }));
  await bob.page.click(`${EDITOR} [data-tab="draft.md"] .editor-tab-close`);
  assert.match(await asked, /draft\.md have not reached the server/);
  await bob.page.locator(`${EDITOR} [data-tab="draft.md"]`).waitFor();

  // While he is away Ann revokes the link: no socket of his is there to close. When his
  // network is back the room refuses him, and the tab says the link is dead instead of
  // "Offline" for ever.
  const revoked = await api(ann.token, "DELETE", `/shares/${edit.body.token}`);
  assert.equal(revoked.status, 204);
  await bob.page.evaluate(() => window.__cut(false));
  await bob.page.locator(`${EDITOR} [data-editor-status] [data-status^=ended]`).waitFor({ timeout: 30000 });
  assert.match(await bob.page.textContent(`${EDITOR} [data-editor-status]`), /revoked/);
  assert.doesNotMatch(await (await fetch(`${BASE}/files/${file.id}/content`, { headers: { authorization: `Bearer ${ann.token}` } })).text(), /typed offline/);

  // Ann, offline with an unsent edit of her own, is asked before signing out deletes it.
  await cuttable(ann.page);
  await ann.page.goto(`${BASE}/#editor?file=${file.id}`);
  await ann.page.reload();
  await ann.page.waitForSelector("[data-desktop][data-ready=true]");
  await waitForText(ann.page, /# Draft/);
  await saved(ann.page);
  assert.equal((await stores(ann.page)).length, 1);
  await ann.page.evaluate(() => window.__cut(true));
  await ann.page.locator(`${EDITOR} .editor-pane[style*=block] .view-lines`).click();
  await ann.page.keyboard.press("Control+End");
  await ann.page.keyboard.type("- Ann offline\n");
  await ann.page.locator(`${EDITOR} [data-tab="draft.md"] .dirty`).waitFor();
  const warned = new Promise((resolve) => ann.page.once("dialog", async (d) => { resolve(d.message()); await d.dismiss(); }));
  await signOut(ann.page);
  assert.match(await warned, /have not reached the server yet/);
  await ann.page.waitForSelector("[data-desktop][data-ready=true]");
  // Back online the edit goes up, and signing out then asks nothing and keeps no copy.
  await ann.page.evaluate(() => window.__cut(false));
  await saved(ann.page);
  let dialogs = 0;
  ann.page.on("dialog", async (d) => { dialogs += 1; await d.dismiss(); });
  await signOut(ann.page);
  await ann.page.waitForSelector("input[name=email]");
  await ann.page.waitForFunction(async () => (await indexedDB.databases()).every((d) => !d.name.startsWith("cloudos:")), null, { timeout: 10000 });
  assert.equal(dialogs, 0);
  // Bob's copy of Ann's file goes when he signs out too.
  await signOut(bob.page);
  await bob.page.waitForSelector("input[name=email]");
  await bob.page.waitForFunction(async () => (await indexedDB.databases()).every((d) => !d.name.startsWith("cloudos:")), null, { timeout: 10000 });
  assert.deepEqual(ann.page.errors, []);
  assert.deepEqual(bob.page.errors, []);
});

test("a lock makes the file read-only for the colleague, with a banner naming its holder, until it is released", async () => {
  const ann = await desktopFor(browser);
  const file = await uploadText(ann.token, "spec.md", "# Spec\n");
  const edit = await api(ann.token, "POST", `/files/${file.id}/share`, { mode: "edit" });
  await ann.page.goto(`${BASE}/#editor?file=${file.id}`);
  await ann.page.reload();
  await ann.page.waitForSelector("[data-desktop][data-ready=true]");
  await waitForText(ann.page, /# Spec/);
  const bob = await desktopFor(browser);
  await cuttable(bob.page);
  await openThroughLink(bob.page, file.id, edit.body.token);
  await waitForText(bob.page, /# Spec/);
  await saved(bob.page);

  // Ann locks it: she is told she holds it; Bob is told who does, and cannot type.
  await ann.page.click(`${EDITOR} [data-editor-lock-button]`);
  await ann.page.locator(`${EDITOR} [data-editor-lock]`, { hasText: "Locked by you" }).waitFor({ timeout: 20000 });
  await bob.page.locator(`${EDITOR} [data-editor-lock]`, { hasText: `Locked by ${ann.user.name}:` }).waitFor({ timeout: 20000 });
  assert.equal(await bob.page.textContent(`${EDITOR} [data-editor-lock-button]`), "Locked");
  assert.ok(await bob.page.isDisabled(`${EDITOR} [data-editor-lock-button]`));
  await bob.page.locator(`${EDITOR} .editor-pane[style*=block] .view-lines`).click();
  await bob.page.keyboard.press("Control+End");
  await bob.page.keyboard.type("bob was here");
  await new Promise((r) => setTimeout(r, 1000));
  assert.doesNotMatch(await editorText(bob.page), /bob was here/);
  assert.doesNotMatch(await editorText(ann.page), /bob was here/);
  // Ann's edits go on reaching Bob.
  await ann.page.locator(`${EDITOR} .editor-pane[style*=block] .view-lines`).click();
  await ann.page.keyboard.press("Control+End");
  await ann.page.keyboard.type("- locked edit\n");
  await waitForText(bob.page, /- locked edit/);
  await shot(bob.page, "12-editor-locked-by-someone-else");

  // She unlocks: the banner goes and Bob types again.
  await ann.page.click(`${EDITOR} [data-editor-lock-button]`);
  await bob.page.locator(`${EDITOR} [data-editor-lock]`).waitFor({ state: "detached", timeout: 20000 });
  await bob.page.locator(`${EDITOR} .editor-pane[style*=block] .view-lines`).click();
  await bob.page.keyboard.press("Control+End");
  await bob.page.keyboard.type("- Bob again\n");
  await waitForText(ann.page, /- Bob again/);

  // Bob types offline while Ann takes the lock: back online, the room drops his edits and
  // his tab says so (Conflict, naming Ann); once she unlocks they go in.
  await saved(bob.page);
  await bob.page.evaluate(() => window.__cut(true));
  await bob.page.locator(`${EDITOR} [data-editor-status] [data-status=offline]`).waitFor({ timeout: 20000 });
  await bob.page.keyboard.type("- typed before the lock\n");
  await ann.page.click(`${EDITOR} [data-editor-lock-button]`);
  await ann.page.locator(`${EDITOR} [data-editor-lock]`, { hasText: "Locked by you" }).waitFor({ timeout: 20000 });
  await bob.page.evaluate(() => window.__cut(false));
  await bob.page.locator(`${EDITOR} [data-editor-status] [data-status^=conflict]`, { hasText: ann.user.name }).waitFor({ timeout: 30000 });
  assert.doesNotMatch(await editorText(ann.page), /typed before the lock/);
  await ann.page.click(`${EDITOR} [data-editor-lock-button]`);
  await waitForText(ann.page, /- typed before the lock/);
  await saved(bob.page);
  assert.deepEqual(ann.page.errors, []);
  assert.deepEqual(bob.page.errors, []);
});

test("Files locks and unlocks any file, an image too", async () => {
  const ann = await desktopFor(browser);
  const form = new FormData();
  form.append("file", new Blob([Buffer.from("89504e470d0a1a0a", "hex")], { type: "image/png" }), "logo.png");
  const up = await fetch(`${BASE}/files`, { method: "POST", headers: { authorization: `Bearer ${ann.token}` }, body: form });
  const image = (await up.json()).files[0];
  const lockOf = async () => (await api(ann.token, "GET", `/files/${image.id}/lock`)).body.lock;
  await ann.page.click("[data-app=files]");
  // Files readies the Editor's bundle in the background (no file opened yet).
  await ann.page.waitForFunction(() => !!window.cloudosEditor, null, { timeout: 15000 });
  await ann.page.click(`[data-window=files] [data-file="logo.png"]`, { button: "right" });
  await ann.page.click("[data-context-menu] [data-action=lock]");
  await ann.page.locator(".toast", { hasText: "logo.png is locked until" }).waitFor({ timeout: 10000 });
  const lock = await lockOf();
  assert.equal(lock.mine, true);
  assert.ok(lock.expires_at_ms - Date.now() > 50 * 60 * 1000, "an hour's lease");
  await ann.page.click(`[data-window=files] [data-file="logo.png"]`, { button: "right" });
  await ann.page.click("[data-context-menu] [data-action=unlock]");
  await ann.page.locator(".toast", { hasText: "logo.png is unlocked" }).waitFor({ timeout: 10000 });
  assert.equal(await lockOf(), null);
  assert.deepEqual(ann.page.errors, []);
});

test("signed out, a view link opens the file alone and follows the owner's edits live", async () => {
  const ann = await desktopFor(browser);
  const file = await uploadText(ann.token, "live.md", "# Live\n");
  const view = await api(ann.token, "POST", `/files/${file.id}/share`, { mode: "view" });
  const edit = await api(ann.token, "POST", `/files/${file.id}/share`, { mode: "edit" });
  // The link's page (no script) offers the live view.
  const pageHtml = await (await fetch(`${BASE}/s/${view.body.token}`)).text();
  assert.match(pageHtml, new RegExp(`href="/#editor\\?file=${file.id}&amp;share=${view.body.token}"`));

  const guest = await newPage(browser);
  await guest.goto(`${BASE}/#editor?file=${file.id}&share=${view.body.token}`);
  await guest.locator("[data-link-page] .monaco-editor").waitFor({ timeout: 30000 });
  assert.equal(await guest.textContent("[data-link-page] h1"), "live.md");
  const text = () => guest.evaluate(() => [...document.querySelectorAll("[data-link-page] .view-line")].map((l) => l.textContent.replace(/\u00a0/g, " ")).join("\n"));
  await guest.waitForFunction(() => document.querySelector("[data-link-page]").textContent.includes("Live: following every edit"), null, { timeout: 20000 });
  assert.match(await text(), /# Live/);

  // Ann types; the guest sees it as she types, and cannot type himself.
  await ann.page.goto(`${BASE}/#editor?file=${file.id}`);
  await ann.page.reload();
  await ann.page.waitForSelector("[data-desktop][data-ready=true]");
  await waitForText(ann.page, /# Live/);
  await ann.page.locator(`${EDITOR} .editor-pane[style*=block] .view-lines`).click();
  await ann.page.keyboard.press("Control+End");
  await ann.page.keyboard.type("typed by Ann\n");
  await guest.waitForFunction(() => [...document.querySelectorAll("[data-link-page] .view-line")].some((l) => l.textContent.replace(/\u00a0/g, " ").includes("typed by Ann")), null, { timeout: 20000 });
  await guest.locator("[data-link-page] .view-lines").click();
  await guest.keyboard.type("guest typing");
  await new Promise((r) => setTimeout(r, 800));
  assert.doesNotMatch(await text(), /guest typing/);
  await shot(guest, "13-link-page-signed-out");

  // An edit link signed out asks for sign-in; "Sign in" shows the login form, and after
  // signing in the desktop opens the file to edit.
  const bob = await newPage(browser);
  await bob.goto(`${BASE}/#editor?file=${file.id}&share=${edit.body.token}`);
  await bob.locator("[data-link-page]", { hasText: "sign in to edit" }).waitFor({ timeout: 20000 });
  await bob.click("[data-link-page] button >> text=Sign in");
  const bobUser = newUser();
  await signupApi(bobUser);
  await bob.fill("input[name=email]", bobUser.email);
  await bob.fill("input[name=password]", bobUser.password);
  await bob.click("button[type=submit]");
  await bob.waitForSelector("[data-desktop][data-ready=true]");
  await bob.locator(`${EDITOR} [data-tab="live.md"]`).waitFor({ timeout: 30000 });
  // A page that loaded with a link's address while signed in ends at the sign-in form when
  // its person signs out, not at the link's page.
  await bob.evaluate((to) => history.replaceState(null, "", to), `/#editor?file=${file.id}&share=${view.body.token}`);
  await bob.reload();
  await bob.waitForSelector("[data-desktop][data-ready=true]");
  await signOut(bob);
  await bob.waitForSelector("input[name=email]");
  assert.equal(await bob.locator("[data-link-page]").count(), 0);
  assert.deepEqual(guest.errors, []);
  assert.deepEqual(bob.errors, []);
});

test("the Editor's tree shows the whole Home, opened down to the active file, and follows changes", async () => {
  const ann = await desktopFor(browser);
  const src = (await api(ann.token, "POST", "/folders", { parent_id: null, name: "src" })).body;
  const upInto = async (parent, name, text) => {
    const form = new FormData();
    form.append("parent_id", parent);
    form.append("file", new Blob([text], { type: "text/plain" }), name);
    const res = await fetch(`${BASE}/files`, { method: "POST", headers: { authorization: `Bearer ${ann.token}` }, body: form });
    assert.equal(res.status, 201);
    return (await res.json()).files[0];
  };
  const main = await upInto(src.id, "main.rs", "fn main() {}\n");
  await upInto(src.id, "lib.rs", "pub fn lib() {}\n");
  await uploadText(ann.token, "README.md", "# Top\n");
  await ann.page.goto(`${BASE}/#editor?file=${main.id}`);
  await ann.page.reload();
  await ann.page.waitForSelector("[data-desktop][data-ready=true]");
  await waitForText(ann.page, /fn main/);
  const tree = `${EDITOR} .editor-tree`;
  // Home's top level, and src opened down to the active file, marked as current.
  await ann.page.locator(`${tree} [data-editor-file="README.md"]`).waitFor({ timeout: 10000 });
  await ann.page.locator(`${tree} [data-editor-file="main.rs"].current`).waitFor({ timeout: 10000 });
  // A click on another file opens it in a tab.
  await ann.page.click(`${tree} [data-editor-file="lib.rs"]`);
  await ann.page.locator(`${EDITOR} [data-tab="lib.rs"]`).waitFor();
  await waitForText(ann.page, /pub fn lib/);
  // A file added elsewhere shows up; a folder folds.
  await upInto(src.id, "new.rs", "// new\n");
  await ann.page.locator(`${tree} [data-editor-file="new.rs"]`).waitFor({ timeout: 10000 });
  await ann.page.click(`${tree} [data-editor-folder="src"]`);
  await ann.page.locator(`${tree} [data-editor-file="lib.rs"]`).waitFor({ state: "detached" });
  assert.equal(await ann.page.getAttribute(`${tree} li:has(> [data-editor-folder="src"])`, "aria-expanded"), "false");
  assert.deepEqual(ann.page.errors, []);
});

test("Format tidies Markdown and YAML too (Prettier, loaded the first time it is needed)", async () => {
  const ann = await desktopFor(browser);
  const md = await uploadText(ann.token, "notes.md", "#   Notes\n*   one\n*   two\n");
  const yml = await uploadText(ann.token, "ci.yaml", "steps:\n    -   run:   test\n");
  const formatterLoaded = () => ann.page.evaluate(() => !!window.cloudosFormat);
  await ann.page.goto(`${BASE}/#editor?file=${md.id}`);
  await ann.page.reload();
  await ann.page.waitForSelector("[data-desktop][data-ready=true]");
  await waitForText(ann.page, /#   Notes/);
  await saved(ann.page);
  assert.equal(await formatterLoaded(), false, "not loaded with the editor");
  await ann.page.click(`${EDITOR} .editor-status button >> text=Format`);
  await waitForText(ann.page, /^# Notes\n\n- one\n- two/);
  assert.equal(await formatterLoaded(), true);
  await saved(ann.page);
  // The formatted text is the file's.
  const deadline = Date.now() + 15000;
  while (!(await (await fetch(`${BASE}/files/${md.id}/content`, { headers: { authorization: `Bearer ${ann.token}` } })).text()).startsWith("# Notes\n\n- one")) {
    assert.ok(Date.now() < deadline, "the file has the formatted text");
    await new Promise((r) => setTimeout(r, 200));
  }
  // The keyboard on YAML.
  await ann.page.click("[data-app=files]");
  await ann.page.dblclick(`[data-window=files] [data-file="ci.yaml"]`);
  await ann.page.locator(`${EDITOR} [data-tab="ci.yaml"]`).waitFor();
  await waitForText(ann.page, /run: {3}test/);
  await saved(ann.page);
  await ann.page.locator(`${EDITOR} .editor-pane[style*=block] .view-lines`).click();
  // Monaco's Format Document key on Linux (Shift+Alt+F on Windows and macOS).
  await ann.page.keyboard.press("Control+Shift+I");
  await waitForText(ann.page, /^steps:\n {2}- run: test/);
  assert.deepEqual(ann.page.errors, []);
});

test("a lock survives its holder's reload, and the owner breaking it sticks", async () => {
  const ann = await desktopFor(browser);
  const file = await uploadText(ann.token, "turns.md", "# Turns\n");
  const edit = await api(ann.token, "POST", `/files/${file.id}/share`, { mode: "edit" });
  const bob = await desktopFor(browser);
  await openThroughLink(bob.page, file.id, edit.body.token);
  await waitForText(bob.page, /# Turns/);
  await saved(bob.page);
  await bob.page.click(`${EDITOR} [data-editor-lock-button]`);
  await bob.page.locator(`${EDITOR} [data-editor-lock]`, { hasText: "Locked by you" }).waitFor({ timeout: 20000 });
  const holder = async () => (await api(ann.token, "GET", `/files/${file.id}/lock`)).body.lock?.holder.name ?? null;

  // Bob reloads: back within seconds, his tab keeps the lock up, past the 10 s a leaving
  // holder's lock lasts.
  await bob.page.reload();
  await bob.page.waitForSelector("[data-desktop][data-ready=true]");
  await bob.page.locator(`${EDITOR} [data-editor-lock]`, { hasText: "Locked by you" }).waitFor({ timeout: 20000 });
  await new Promise((r) => setTimeout(r, 15000));
  assert.equal(await holder(), bob.user.name);

  // Ann, the owner, breaks it: Bob's tab says so and does not take it back.
  const broken = await api(ann.token, "DELETE", `/files/${file.id}/lock`);
  assert.equal(broken.status, 204);
  await bob.page.locator(`${EDITOR} [data-editor-lock]`, { hasText: "Your lock ended" }).waitFor({ timeout: 20000 });
  await new Promise((r) => setTimeout(r, 7000));
  assert.equal(await holder(), null);
  assert.deepEqual(bob.page.errors, []);
});

test("Monaco's language services mark errors in JSON and TypeScript, each loaded when a file of its language opens", async () => {
  const ann = await desktopFor(browser);
  await uploadText(ann.token, "config.json", '{\n  "name": "demo",\n  "port": 8080,,\n}\n');
  await uploadText(ann.token, "main.ts", 'const port: number = "eighty";\nexport { port };\n');
  const loaded = () => ann.page.evaluate(() => performance.getEntriesByType("resource").map((e) => e.name).filter((n) => /\/assets\/(editor|json\.worker|ts\.worker)/.test(n)).length);
  await ann.page.click("[data-app=files]");
  await ann.page.dblclick(`[data-window=files] [data-file="config.json"]`);
  await ann.page.locator(`${EDITOR} [data-tab="config.json"]`).waitFor({ timeout: 30000 });
  const squiggle = `${EDITOR} .editor-pane[style*=block] .squiggly-error`;
  await ann.page.locator(squiggle).first().waitFor({ timeout: 30000 });
  const afterJson = await loaded();
  await ann.page.click("[data-app=files]");
  await ann.page.dblclick(`[data-window=files] [data-file="main.ts"]`);
  await ann.page.locator(`${EDITOR} [data-tab="main.ts"]`).waitFor({ timeout: 30000 });
  await waitForText(ann.page, /const port: number = "eighty"/);
  // The type error comes from TypeScript's own checker, in its worker.
  await ann.page.locator(squiggle).first().waitFor({ timeout: 30000 });
  assert.ok((await loaded()) > afterJson, "TypeScript's mode and worker came with the first .ts file");
  assert.deepEqual(ann.page.errors, []);
});

test("History in the Editor restores an older version, and the open tab shows it at once", async () => {
  const ann = await desktopFor(browser);
  const file = await uploadText(ann.token, "story.md", "first draft\n");
  const put = await fetch(`${BASE}/files/${file.id}/content`, {
    method: "PUT",
    headers: { authorization: `Bearer ${ann.token}`, "if-match": '"1"' },
    body: "second draft\n",
  });
  assert.equal(put.status, 200);
  await ann.page.goto(`${BASE}/#editor?file=${file.id}`);
  await waitForText(ann.page, /second draft/);
  await ann.page.click(`${EDITOR} [data-action=editor-history]`);
  const first = ann.page.locator('[data-history-list] li[data-version="1"]');
  await first.waitFor();
  assert.match(await first.innerText(), /Uploaded/);
  await first.locator("[data-action=restore-version]").click();
  await ann.page.locator("[data-history-status]").waitFor();
  // The restore is merged into the live room like any save: the tab follows.
  await waitForText(ann.page, /^first draft/);
  await ann.page.keyboard.press("Escape");
  await ann.page.locator("[data-history]").waitFor({ state: "detached" });
  await saved(ann.page);
  assert.deepEqual(ann.page.errors, []);
});
