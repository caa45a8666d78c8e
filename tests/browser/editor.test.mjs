// The Editor in real Chromium: Monaco on a file's live room. Two people edit one file at
// once (the second through an edit link) and see each other's text and cursor; a third
// watches it change through a view link; the status bar says when the room has every edit.
import { test, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { BASE, api, closePages, desktopFor, launch, shot } from "./harness.mjs";

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

/** The text of the active tab's Monaco model. */
function editorText(page) {
  return page.evaluate(() => {
    const lines = [...document.querySelectorAll("[data-window=editor] .editor-pane[style*=block] .view-line")];
    return lines.map((l) => l.textContent.replace(/\u00a0/g, " ")).join("\n");
  });
}

async function waitForText(page, re) {
  await page.waitForFunction(
    (src) => {
      const lines = [...document.querySelectorAll("[data-window=editor] .editor-pane[style*=block] .view-line")];
      return new RegExp(src).test(lines.map((l) => l.textContent.replace(/\u00a0/g, " ")).join("\n"));
    },
    re.source,
    { timeout: 20000 },
  );
}

async function saved(page) {
  await page.locator(`${EDITOR} [data-editor-status] [data-status=saved]`).waitFor({ timeout: 20000 });
}

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
  const stores = (p) => p.evaluate(async () => (await indexedDB.databases()).map((d) => d.name).filter((n) => n.startsWith("cloudos:")));
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
