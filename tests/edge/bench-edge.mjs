// `cargo xtask bench edge`: the same requests against the native server and the Worker under
// `wrangler dev`, one after the other in one run, written as a Markdown section to argv[2].
// argv[3] and argv[4] are the two base URLs; WASM_RAW and WASM_GZIP are the Worker's sizes.
import { writeFileSync } from "node:fs";

const [report, native, edge] = process.argv.slice(2);
const LISTS = 200, DOWNLOADS = 100, WARMUP = 20;
const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]; };

async function prepare(base) {
  const email = `bench-${Date.now()}-${Math.random().toString(36).slice(2)}@example.com`;
  const res = await fetch(`${base}/auth/signup`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "Bench", email, password: "correct horse battery" }) });
  if (res.status !== 201) throw new Error(`${base}: signup answered ${res.status}`);
  const { token } = await res.json();
  const auth = { authorization: `Bearer ${token}` };
  const form = new FormData();
  for (let i = 0; i < 50; i++) form.append("file", new Blob([`file ${i}`]), `file-${i}.txt`);
  const mib = new Uint8Array(1024 * 1024).map((_, i) => (i * 31) & 0xff);
  form.append("file", new Blob([mib]), "one-mib.bin");
  const up = await fetch(`${base}/files`, { method: "POST", headers: auth, body: form });
  if (up.status !== 201) throw new Error(`${base}: upload answered ${up.status}`);
  const { files } = await up.json();
  return { auth, big: files.find((f) => f.name === "one-mib.bin").id };
}

async function time(n, fn) {
  for (let i = 0; i < WARMUP; i++) await fn();
  const ms = [];
  for (let i = 0; i < n; i++) { const t = performance.now(); await fn(); ms.push(performance.now() - t); }
  return { p50: pct(ms, 50), p99: pct(ms, 99) };
}

async function measure(base) {
  const { auth, big } = await prepare(base);
  const list = await time(LISTS, async () => {
    const r = await fetch(`${base}/files`, { headers: auth });
    if (r.status !== 200) throw new Error(`list answered ${r.status}`);
    await r.arrayBuffer();
  });
  const download = await time(DOWNLOADS, async () => {
    const r = await fetch(`${base}/files/${big}/content`, { headers: auth });
    const body = await r.arrayBuffer();
    if (r.status !== 200 || body.byteLength !== 1024 * 1024) throw new Error(`download answered ${r.status}, ${body.byteLength} bytes`);
  });
  return { list, download };
}

const n = await measure(native);
const e = await measure(edge);
const f = (x) => `${x.toFixed(1)} ms`;
const kb = (b) => `${(Number(b) / 1000).toFixed(0)} KB`;
const gz = Number(process.env.WASM_GZIP);
const section = `## Edge (\`cargo xtask bench edge\`)

The Worker under \`wrangler dev --local\` (workerd, R2 emulated, libSQL through \`cloudos db serve\`)
and the native release server, on loopback, measured one after the other in the same run with
the same client (Node's fetch), ${WARMUP} warm-up requests each; ${new Date().toISOString().slice(0, 10)}.
Folder of 51 items; the download is 1 MiB.

| measure | native p50 / p99 | Worker p50 / p99 |
|---|---|---|
| \`GET /files\` (${LISTS} requests) | ${f(n.list.p50)} / ${f(n.list.p99)} | ${f(e.list.p50)} / ${f(e.list.p99)} |
| 1 MiB download (${DOWNLOADS} requests) | ${f(n.download.p50)} / ${f(n.download.p99)} | ${f(e.download.p50)} / ${f(e.download.p99)} |

| the Worker's wasm after wasm-opt | size | budget | |
|---|---|---|---|
| raw / gzip -9 | ${kb(process.env.WASM_RAW)} / ${kb(gz)} | gzip ≤ 1000 KB (Cloudflare's free limit: 3 MB) | ${gz <= 1_000_000 ? "met" : "**missed**"} |
`;
writeFileSync(report, section);
console.log(section);
