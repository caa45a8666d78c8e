// `cargo xtask bench desktop`: the desktop's budgets in headless Chromium, written as a
// Markdown section to the path given as the first argument.
import { writeFileSync } from "node:fs";
import { BASE, launch, login, newPage, newUser, signupApi } from "./harness.mjs";

const RUNS = 10;
const BUDGET = { transferKB: 1500, loginMs: 1000, filesMs: 300 };
const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p / 100 * s.length))]; };

const browser = await launch();

// 1. What the shell transfers on a first visit (cold cache): wasm, JS and CSS, as sent (gzip).
const page0 = await newPage(browser);
const cdp = await page0.context().newCDPSession(page0);
await cdp.send("Network.enable");
await cdp.send("Network.setCacheDisabled", { cacheDisabled: true });
const urls = new Map();
cdp.on("Network.responseReceived", (e) => urls.set(e.requestId, e.response.url));
let bytes = { wasm: 0, js: 0, css: 0 };
cdp.on("Network.loadingFinished", (e) => {
  const url = urls.get(e.requestId) || "";
  const kind = url.endsWith(".wasm") ? "wasm" : url.endsWith(".js") ? "js" : url.endsWith(".css") ? "css" : null;
  if (kind) bytes[kind] += e.encodedDataLength;
});
await page0.goto(`${BASE}/`);
await page0.waitForSelector("[data-login]");
await page0.waitForLoadState("networkidle");
const totalKB = (bytes.wasm + bytes.js + bytes.css) / 1000;

// 2. Submitting the login form → interactive desktop (performance marks set by the app).
const user = newUser();
const token = await signupApi(user);
const loginMs = [];
for (let i = 0; i < RUNS; i++) {
  const page = await newPage(browser);
  await page.goto(`${BASE}/`);
  await page.waitForSelector("[data-login]");
  await login(page, user);
  await page.waitForSelector("[data-app=files]");
  loginMs.push(await page.evaluate(() => performance.measure("login", "cloudos:login-submit", "cloudos:desktop-ready").duration));
  await page.context().close();
}

// 3. Opening Files on a folder of 1,000 items: click on the dock → the list filled and counted.
const form = new FormData();
for (let i = 0; i < 1000; i++) form.append("file", new Blob([`item ${i}`], { type: "text/plain" }), `item-${String(i).padStart(4, "0")}.txt`);
const up = await fetch(`${BASE}/files`, { method: "POST", headers: { authorization: `Bearer ${token}` }, body: form });
if (up.status !== 201) throw new Error(`seeding 1,000 files answered ${up.status}`);
const filesMs = [];
for (let i = 0; i < RUNS; i++) {
  const page = await newPage(browser);
  await login(page, user);
  // Start from an empty desktop each time.
  await page.evaluate(() => fetch("/desktop", { method: "PUT", headers: { "content-type": "application/json", authorization: `Bearer ${localStorage.getItem("cloudos.token")}` }, body: JSON.stringify({ layout: {} }) }));
  await page.reload();
  await page.waitForSelector("[data-desktop][data-ready=true]");
  const ms = await page.evaluate(() => new Promise((resolve) => {
    const t0 = performance.now();
    document.querySelector("[data-app=files]").click();
    const check = () => {
      // Opened means: the status counts all 1,000 items and the rows fill the visible list
      // (the list draws only the rows in view, so the rest exist only as scroll range).
      const win = document.querySelector("[data-window=files]");
      const list = win?.querySelector("[data-files-list]");
      const rows = win ? win.querySelectorAll(".file-item") : [];
      const status = win?.querySelector(".files-status")?.textContent || "";
      const filled = list && rows.length > 0 && rows[rows.length - 1].getBoundingClientRect().bottom >= list.getBoundingClientRect().bottom;
      if (status.includes("1000 items") && filled) {
        requestAnimationFrame(() => resolve(performance.now() - t0));
      } else {
        requestAnimationFrame(check);
      }
    };
    check();
  }));
  filesMs.push(ms);
  await page.context().close();
}
await browser.close();

const verdict = (ok) => (ok ? "met" : "**missed**");
const loginP50 = pct(loginMs, 50), filesP50 = pct(filesMs, 50);
const report = `## Desktop (\`cargo xtask bench desktop\`)

Headless Chromium (Debian's, via playwright-core) against the release server on loopback,
${RUNS} runs each; ${new Date().toISOString().slice(0, 10)}.

| measure | result | budget | |
|---|---|---|---|
| shell transferred on a first visit (gzip): wasm ${(bytes.wasm / 1000).toFixed(0)} KB + JS ${(bytes.js / 1000).toFixed(0)} KB + CSS ${(bytes.css / 1000).toFixed(0)} KB | ${totalKB.toFixed(0)} KB | ≤ ${BUDGET.transferKB} KB | ${verdict(totalKB <= BUDGET.transferKB)} |
| login submitted → interactive desktop, p50 / max | ${loginP50.toFixed(0)} ms / ${Math.max(...loginMs).toFixed(0)} ms | ≤ ${BUDGET.loginMs} ms | ${verdict(loginP50 <= BUDGET.loginMs)} |
| open Files on a folder of 1,000 items (click → list filled, all 1,000 counted), p50 / max | ${filesP50.toFixed(0)} ms / ${Math.max(...filesMs).toFixed(0)} ms | ≤ ${BUDGET.filesMs} ms | ${verdict(filesP50 <= BUDGET.filesMs)} |
`;
writeFileSync(process.argv[2], report);
console.log(report);
