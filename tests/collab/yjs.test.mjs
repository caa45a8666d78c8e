// Real Yjs clients (npm `yjs` + `y-websocket`, as an editor runs them) in a live room of the
// server at CLOUDOS_BASE_URL: concurrent random edits converge to the file's content, a
// late joiner syncs, presence is shared; through links, a viewer follows the edits and what
// it types goes nowhere, a colleague with an edit link edits, and revoking a link ends its
// sockets. Run by `cargo test --test collab_yjs`.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as Y from "yjs";
import { WebsocketProvider } from "y-websocket";
import WebSocket from "ws";

const BASE = process.env.CLOUDOS_BASE_URL;
assert.ok(BASE, "CLOUDOS_BASE_URL names the server");

async function api(path, init = {}, token) {
  const headers = { ...(init.headers || {}) };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${BASE}${path}`, { ...init, headers });
  return res;
}

async function signUp(name) {
  const email = `${name}-${Date.now()}-${Math.random().toString(16).slice(2)}@example.com`;
  const res = await api("/auth/signup", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email, password: "correct horse battery", name }),
  });
  assert.equal(res.status, 201);
  return (await res.json()).token;
}

async function upload(token, name, text) {
  const form = new FormData();
  form.append("file", new Blob([text], { type: "text/plain" }), name);
  const res = await api("/files", { method: "POST", body: form }, token);
  assert.equal(res.status, 201);
  return (await res.json()).files[0];
}

async function ticket(token) {
  const res = await api("/auth/ticket", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" }, token);
  assert.equal(res.status, 201);
  return (await res.json()).ticket;
}

/** A client as an editor runs one: a Y.Doc with a y-websocket provider on the room
 * (signed in with `token`, and/or through the link `share`). */
async function join(token, fileId, share) {
  const doc = new Y.Doc();
  const url = `${BASE.replace(/^http/, "ws")}/collab`;
  const params = {};
  // A ticket opens one socket; a reconnect would need a new one, so none is made here.
  if (token) params.ticket = await ticket(token);
  if (share) params.share = share;
  const provider = new WebsocketProvider(url, fileId, doc, {
    WebSocketPolyfill: WebSocket,
    params,
    disableBc: true,
    maxBackoffTime: 100000,
  });
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("not synced within 10 s")), 10000);
    provider.once("sync", (synced) => {
      if (synced) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return { doc, provider, text: doc.getText("content") };
}

function leave(c) {
  c.provider.destroy();
  c.doc.destroy();
}

/** The HTTP status a socket's upgrade is refused with (101: it was not). */
function refusal(url) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url);
    ws.on("unexpected-response", (req, res) => {
      resolve(res.statusCode);
      req.destroy();
    });
    ws.on("error", () => {});
    ws.on("open", () => {
      resolve(101);
      ws.terminate();
    });
  });
}

async function until(what, check, ms = 15000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test("clients editing at once converge, and the file holds their text", async () => {
  const token = await signUp("yjs");
  const file = await upload(token, "shared.md", "# Shared\n");
  const clients = [];
  for (let i = 0; i < 4; i++) clients.push(await join(token, file.id));
  for (const c of clients) assert.equal(c.text.toString(), "# Shared\n");

  // Everyone types at once for a while: inserts and deletes at random places.
  let seed = 12345;
  const rand = (n) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  for (let round = 0; round < 60; round++) {
    for (const c of clients) {
      const len = c.text.length;
      if (len > 4 && rand(3) === 0) {
        c.text.delete(rand(len - 2), 1 + rand(2));
      } else {
        c.text.insert(rand(len + 1), ["a", "bc", "é", "日本", "\n", "🙂"][rand(6)]);
      }
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  await until("all clients hold the same text", () => {
    const first = clients[0].text.toString();
    return clients.every((c) => c.text.toString() === first);
  });
  const text = clients[0].text.toString();
  assert.ok(text.length > 20, text);

  // A late joiner gets it all.
  const late = await join(token, file.id);
  assert.equal(late.text.toString(), text);

  // Presence: one client's state reaches the others.
  clients[0].provider.awareness.setLocalStateField("user", { name: "Ann", color: "#e06c75" });
  await until("presence arrives", () =>
    [...late.provider.awareness.getStates().values()].some((s) => s.user && s.user.name === "Ann"),
  );

  for (const c of [...clients, late]) leave(c);
  await until("the file holds the text", async () => {
    const res = await api(`/files/${file.id}/content`, {}, token);
    return (await res.text()) === text;
  });
});

test("a room refuses a stranger and a socket without a ticket", async () => {
  const ann = await signUp("owner");
  const bob = await signUp("stranger");
  const file = await upload(ann, "private.txt", "mine");
  const url = `${BASE.replace(/^http/, "ws")}/collab/${file.id}?ticket=${await ticket(bob)}`;
  assert.equal(await refusal(url), 404);
  assert.equal(await refusal(`${BASE.replace(/^http/, "ws")}/collab/${file.id}`), 401);
});

async function shareLink(token, fileId, mode) {
  const res = await api(
    `/files/${fileId}/share`,
    { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ mode }) },
    token,
  );
  assert.equal(res.status, 201);
  return res.json();
}

test("through links: a viewer follows the edits and changes nothing, an editor edits, a revoked link's sockets end", async () => {
  const ann = await signUp("owner");
  const bob = await signUp("colleague");
  const file = await upload(ann, "live.txt", "start");
  const view = await shareLink(ann, file.id, "view");
  const edit = await shareLink(ann, file.id, "edit");

  const owner = await join(ann, file.id);
  const viewer = await join(null, file.id, view.token);
  const colleague = await join(bob, file.id, edit.token);
  assert.equal(viewer.text.toString(), "start");

  owner.text.insert(5, " typing");
  colleague.text.insert(0, "Bob: ");
  await until("the viewer sees both", () => viewer.text.toString() === "Bob: start typing");

  // The viewer's own edit stays on its side.
  viewer.text.insert(0, "vandal ");
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(owner.text.toString(), "Bob: start typing");
  assert.equal(colleague.text.toString(), "Bob: start typing");

  // Revoked: the viewer's socket ends with 4403, and the link opens nothing more.
  const closed = new Promise((resolve) => viewer.provider.ws.addEventListener("close", (e) => resolve(e.code)));
  viewer.provider.shouldConnect = false;
  const res = await api(`/shares/${view.token}`, { method: "DELETE" }, ann);
  assert.equal(res.status, 204);
  assert.equal(await closed, 4403);
  const again = `${BASE.replace(/^http/, "ws")}/collab/${file.id}?share=${view.token}`;
  assert.equal(await refusal(again), 410);

  for (const c of [owner, viewer, colleague]) leave(c);
  await until("the file holds the editors' text", async () => {
    const res = await api(`/files/${file.id}/content`, {}, ann);
    return (await res.text()) === "Bob: start typing";
  });
});

test("a lock: only its holder's edits go in, every client hears who holds it, and it expires", async () => {
  const ann = await signUp("owner");
  const bob = await signUp("colleague");
  const file = await upload(ann, "turns.txt", "draft");
  const edit = await shareLink(ann, file.id, "edit");
  const owner = await join(ann, file.id);
  const colleague = await join(bob, file.id, edit.token);
  const lockSeen = (c) =>
    [...c.provider.awareness.getStates().values()].map((s) => s.room?.lock).find((l) => l) || null;

  // Bob takes the shortest lease (15 s): Ann's client hears of it from the room itself.
  const res = await api(
    `/files/${file.id}/lock?share=${edit.token}`,
    { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ ttl: 15 }) },
    bob,
  );
  assert.equal(res.status, 200);
  const lock = await res.json();
  await until("Ann hears who holds the lock", () => lockSeen(owner)?.name === "colleague");

  // Ann's edit does not go in; Bob's does.
  owner.text.insert(0, "ANN ");
  colleague.text.insert(5, " by Bob");
  await until("Ann sees Bob's edit", () => owner.text.toString().endsWith("draft by Bob"));
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(colleague.text.toString(), "draft by Bob");

  // The lease ends by itself; then what Ann types goes in (y-websocket resends what the
  // room lacks when it next syncs: a reconnect here).
  await new Promise((r) => setTimeout(r, Math.max(0, lock.expires_at_ms - Date.now()) + 300));
  const state = await (await api(`/files/${file.id}/lock`, {}, ann)).json();
  assert.equal(state.lock, null);
  leave(owner);
  const again = await join(ann, file.id);
  again.text.insert(0, "Ann: ");
  await until("Bob sees Ann's edit after the lease", () => colleague.text.toString().startsWith("Ann: "));
  for (const c of [again, colleague]) leave(c);
});
