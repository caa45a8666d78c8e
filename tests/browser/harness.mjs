// Shared helpers of the browser suites: Debian's Chromium through playwright-core, a fresh
// user per test, and screenshots under artifacts/ (git-ignored).
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

export const BASE = (process.env.CLOUDOS_BASE_URL || "http://127.0.0.1:8080").replace(/\/$/, "");
const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const ARTIFACTS = join(ROOT, "artifacts", "browser");
mkdirSync(ARTIFACTS, { recursive: true });

const ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--no-first-run"];

/** Starts Chromium (CHROMIUM_PATH, else Debian's). */
export async function launch() {
  return chromium.launch({ executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium", args: ARGS });
}

let counter = 0;
/** A unique new account's credentials. */
export function newUser() {
  counter += 1;
  const id = `${Date.now().toString(36)}${process.pid}${counter}`;
  return { name: `Tester ${counter}`, email: `user-${id}@example.com`, password: "correct horse battery" };
}

/** Creates an account through the API (of `base`, normally the server under test). */
export async function signupApi(user, base = BASE) {
  const res = await fetch(`${base}/auth/signup`, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(user),
  });
  if (res.status !== 201) throw new Error(`signup answered ${res.status}: ${await res.text()}`);
  return (await res.json()).token;
}

/** Calls the API as a user. */
export async function api(token, method, path, body) {
  const res = await fetch(`${BASE}${path}`, {
    method, headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

const openPages = new Set();

/** A page of a new browser context, 1280×800 unless told otherwise, that fails on page errors. */
export async function newPage(browser, viewport = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  openPages.add(page);
  context.on("close", () => openPages.delete(page));
  page.errors = [];
  page.on("pageerror", (e) => page.errors.push(e.message));
  // Something the desktop's Content-Security-Policy blocked is a bug too: it means a part
  // of the desktop does not work under the policy the hosts send.
  page.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy/i.test(m.text())) page.errors.push(m.text());
  });
  return page;
}

/** Signs in through the login form and waits for the desktop. */
export async function login(page, user, base = BASE) {
  await page.goto(`${base}/`);
  await page.fill("input[name=email]", user.email);
  await page.fill("input[name=password]", user.password);
  await page.click("button[type=submit]");
  await page.waitForSelector("[data-desktop][data-ready=true]");
}

/** A new user, signed in, on the desktop. */
export async function desktopFor(browser, viewport, base = BASE) {
  const user = newUser();
  const token = await signupApi(user, base);
  const page = await newPage(browser, viewport);
  await login(page, user, base);
  return { page, user, token };
}

/** Saves a screenshot of a key state. */
export async function shot(page, name) {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`) });
}

/** The rectangle of an element on screen. */
export async function box(page, selector) {
  const b = await page.locator(selector).first().boundingBox();
  if (!b) throw new Error(`${selector} is not visible`);
  return b;
}

/** Drags with the mouse from one point to another in steps, like a person. */
export async function drag(page, from, to, steps = 12) {
  await page.mouse.move(from.x, from.y);
  await page.mouse.down();
  await page.mouse.move(to.x, to.y, { steps });
  await page.mouse.up();
}

/** Waits for the next saved layout (PUT /desktop). */
export function layoutSaved(page) {
  return page.waitForResponse((r) => r.url().endsWith("/desktop") && r.request().method() === "PUT");
}

/** Drops files on an element as the operating system's file manager would. */
export async function dropFiles(page, selector, files) {
  await page.locator(selector).first().evaluate((el, files) => {
    const dt = new DataTransfer();
    for (const f of files) dt.items.add(new File([f.content], f.name, { type: f.type || "" }));
    const opts = { dataTransfer: dt, bubbles: true, cancelable: true };
    el.dispatchEvent(new DragEvent("dragenter", opts));
    el.dispatchEvent(new DragEvent("dragover", opts));
    el.dispatchEvent(new DragEvent("drop", opts));
  }, files);
}

/** Uploads through the Files window's Upload button (the hidden file input). */
export async function uploadViaButton(page, win, files) {
  await page.locator(`${win} [data-upload-input]`).setInputFiles(
    files.map((f) => ({ name: f.name, mimeType: f.type || "application/octet-stream", buffer: Buffer.from(f.content) })),
  );
}

/** A 2×2 PNG. */
export const PNG = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGP8z8DAwMDAxMDAwMDAAAANHQEDasKb6QAAAABJRU5ErkJggg==",
  "base64",
);

/** After a test: saves how each page it left open looked last (the state a failure left behind), then closes it. */
export async function closePages(testName) {
  const slug = testName.toLowerCase().replace(/[^a-z0-9]+/g, "-").slice(0, 60);
  let n = 0;
  for (const page of [...openPages]) {
    n += 1;
    await page.screenshot({ path: join(ARTIFACTS, "last", `${slug}-${n}.png`) }).catch(() => {});
    await page.context().close().catch(() => {});
  }
}
