// The Editor app's JS side: Monaco bound to a file's live room (Yjs over y-websocket, with
// y-monaco for the text, cursors and selections), loaded only when an editor first opens
// (`cloudosVendor.loadEditor()`). The Rust app owns windows, tabs and tickets; this owns one
// editor per open file and reports its state in words the status bar shows.
import * as monaco from "monaco-editor/esm/vs/editor/editor.main.js";
import * as Y from "yjs";
import { WebsocketProvider } from "y-websocket";
import { MonacoBinding } from "y-monaco";
import { IndexeddbPersistence } from "y-indexeddb";
import * as decoding from "lib0/decoding";
import * as encoding from "lib0/encoding";
import * as syncProtocol from "y-protocols/sync";

// Monaco's language services run in workers, built next to this bundle; their URLs come
// from the page (hashed names), so they load from the app's own origin.
const workerUrls = (() => {
  const meta = document.querySelector('meta[name="cloudos-editor"]');
  try {
    return JSON.parse(meta?.dataset.workers || "{}");
  } catch {
    return {};
  }
})();
self.MonacoEnvironment = {
  getWorkerUrl(_moduleId, label) {
    if (label === "json") return workerUrls.json;
    if (label === "css" || label === "scss" || label === "less") return workerUrls.css;
    if (label === "html" || label === "handlebars" || label === "razor") return workerUrls.html;
    if (label === "typescript" || label === "javascript") return workerUrls.ts;
    return workerUrls.editor;
  },
};

// Closing an editor cancels what Monaco had pending for it (a hover, word highlights, a
// language worker's answer), and Monaco rejects those promises with its own "Canceled"
// error that nobody awaits any more: not a failure, so not reported as one.
window.addEventListener("unhandledrejection", (event) => {
  const reason = event.reason;
  if (reason && reason.name === "Canceled" && reason.message === "Canceled") {
    event.preventDefault();
  }
});

/** Prettier's bundle (`window.cloudosFormat`), loaded the first time it is needed. */
let formatter = null;
function loadFormatter() {
  if (!formatter) {
    formatter = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = workerUrls.format;
      script.onload = () => resolve(window.cloudosFormat);
      script.onerror = () => {
        formatter = null;
        reject(new Error("the formatter could not be loaded"));
      };
      document.head.appendChild(script);
    });
  }
  return formatter;
}

/** The languages Prettier formats here (Monaco has no formatter for them). */
const PRETTIER = ["markdown", "yaml", "graphql"];

/** The smallest edit turning the model's text into `next` (what did not change keeps
 * everyone's cursors, and goes through the room as nothing). */
function smallestEdit(model, next) {
  const prev = model.getValue();
  if (prev === next) return [];
  let start = 0;
  while (start < prev.length && start < next.length && prev[start] === next[start]) start++;
  let end = 0;
  while (end < prev.length - start && end < next.length - start && prev[prev.length - 1 - end] === next[next.length - 1 - end]) end++;
  const from = model.getPositionAt(start);
  const to = model.getPositionAt(prev.length - end);
  return [{
    range: new monaco.Range(from.lineNumber, from.column, to.lineNumber, to.column),
    text: next.slice(start, next.length - end),
  }];
}

// Prettier formats what Monaco has no formatter for, through Monaco's own Format Document
// (the button, and its key: Ctrl+Shift+I on Linux, Shift+Alt+F on Windows and macOS).
for (const language of PRETTIER) {
  monaco.languages.registerDocumentFormattingEditProvider(language, {
    async provideDocumentFormattingEdits(model) {
      try {
        const lib = await loadFormatter();
        const next = await lib.format(model.getValue(), language);
        return next == null ? [] : smallestEdit(model, next);
      } catch (e) {
        // Text Prettier cannot parse stays as it is.
        console.warn("formatting:", e?.message || e);
        return [];
      }
    },
  });
}

/** Monaco's language for a file name (by extension, as Monaco's languages declare them). */
function languageFor(name) {
  const lower = name.toLowerCase();
  const ext = lower.includes(".") ? lower.slice(lower.lastIndexOf(".")) : "";
  for (const lang of monaco.languages.getLanguages()) {
    if ((lang.filenames || []).some((f) => f.toLowerCase() === lower)) return lang.id;
    if (ext && (lang.extensions || []).includes(ext)) return lang.id;
  }
  return "plaintext";
}

/** The room's state vector, from a sync step 1 it sent (y-protocols: 0 sync, 0 step 1). */
function serverStateVector(data) {
  try {
    const d = decoding.createDecoder(new Uint8Array(data));
    if (decoding.readVarUint(d) !== 0 || decoding.readVarUint(d) !== 0) return null;
    return Y.decodeStateVector(decoding.readVarUint8Array(d));
  } catch {
    return null;
  }
}

const dark = () => window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;

window.cloudosEditor = {
  languageFor,
  /**
   * Opens a file's room in `el`. `opts`: `{ fileId, name, readOnly, user: {name, color},
   * ticket: () => Promise<string|null> (a query string for the room's URL, e.g.
   * "ticket=…" or "share=…"), probe: () => Promise<string|null> (after a socket that never
   * opened: why the room refuses this tab for good, or null to try again), base: the room's
   * ws base URL, onStatus(status, detail), onPeople(names), onLock({holder, name, until} or
   * null: the file's lock, as the room tells it) }`. A lock held by someone else makes the
   * editor read-only until it goes.
   * Statuses: "connecting", "saved", "saving", "offline" (edits kept here and sent on
   * reconnect), "conflict" (edits here that the room refused because someone else, named
   * in the detail, holds the lock: they wait here and go up once it is released), "ended" (the link was revoked, the session expired or the file is gone:
   * detail says which).
   */
  open(el, opts) {
    const doc = new Y.Doc();
    const text = doc.getText("content");
    // Edits survive a reload or a lost connection: kept in this browser until the room has
    // them (IndexedDB, per user and file).
    // A read-only tab (a view link) has no edits to keep, and keeps no copy of someone
    // else's file in this browser.
    const storeName = `cloudos:${opts.user.id}:${opts.fileId}`;
    if (!opts.readOnly) {
      // Named in localStorage too, for sign-out to find where indexedDB.databases() is
      // missing (Firefox before 126).
      try {
        const known = new Set(JSON.parse(localStorage.getItem("cloudos.stores") || "[]"));
        known.add(storeName);
        localStorage.setItem("cloudos.stores", JSON.stringify([...known]));
      } catch {
        // A full or blocked localStorage leaves only indexedDB.databases() to find it.
      }
    }
    const local = opts.readOnly ? null : new IndexeddbPersistence(storeName, doc);
    const editor = monaco.editor.create(el, {
      model: monaco.editor.createModel("", opts.language || languageFor(opts.name)),
      automaticLayout: true,
      // Writable once the text is here (from the room, or kept in this browser): a key
      // typed into an empty document would land before or after the whole file.
      readOnly: true,
      theme: dark() ? "vs-dark" : "vs",
      fontSize: 13,
      minimap: { enabled: false },
      scrollBeyondLastLine: false,
      tabSize: 2,
      renderWhitespace: "selection",
      "semanticHighlighting.enabled": true,
    });
    let status = "connecting";
    const say = (s, detail) => {
      if (s !== status || detail) {
        status = s;
        opts.onStatus?.(s, detail || "");
      }
    };
    // Whether the room holds every edit made here: it answers a sync step 1 with its own
    // (the room's state), compared with ours.
    const provider = new WebsocketProvider(opts.base, opts.fileId, doc, {
      connect: false,
      disableBc: true,
      maxBackoffTime: 10000,
      // The provider drops a socket that heard nothing for 30 s; alone in a room an editor
      // hears nothing, so it asks every 15 s (the room answers, and says what it holds).
      resyncInterval: 15000,
    });
    provider.awareness.setLocalStateField("user", { name: opts.user.name, color: opts.user.color });
    // Who else is here: by name for the status bar, and their cursors and selections in
    // their colours with their names (y-monaco marks them with per-client classes). Names
    // and colours come from other people's browsers: only a plain colour is used, and a
    // name only as CSS string text with nothing that could end it.
    const style = document.createElement("style");
    document.head.appendChild(style);
    const safeColour = (c) => (typeof c === "string" && /^(#[0-9a-f]{3,8}|hsl\(\d{1,3}(, ?\d{1,3}%){2}\))$/i.test(c) ? c : "#d97706");
    const safeName = (n) => String(n ?? "").replace(/[^\p{L}\p{N} ._@'-]/gu, "").slice(0, 40);
    let lockedByOther = false;
    let lockName = "";
    let lastLock = "null";
    // The room speaks for itself in presence (no client may): its lock, until its lease
    // ends (looked at again then, in case the room has not said so yet).
    let lockTimer = null;
    const lockSeen = () => {
      const states = [...provider.awareness.getStates().values()];
      const lock = states.map((s) => s?.room?.lock).find((l) => l && typeof l.holder === "string") || null;
      const live = lock && Number(lock.until) > Date.now() ? lock : null;
      const lockKey = JSON.stringify(live);
      if (lockKey === lastLock) return;
      lastLock = lockKey;
      const was = lockedByOther;
      lockedByOther = !!live && live.holder !== opts.user.id;
      lockName = live ? String(live.name || "") : "";
      applyReadOnly();
      // Released: edits the room dropped while it was held go up now, not at the next
      // periodic sync.
      if (was && !lockedByOther && dirty) check();
      clearTimeout(lockTimer);
      if (live) lockTimer = setTimeout(lockSeen, Math.min(2 ** 31 - 1, Number(live.until) - Date.now() + 50));
      opts.onLock?.(live && { holder: live.holder, name: safeName(live.name), until: Number(live.until) });
    };
    provider.awareness.on("change", () => {
      const states = [...provider.awareness.getStates().entries()];
      lockSeen();
      const others = states.filter(([id, s]) => id !== doc.clientID && s.user);
      opts.onPeople?.(others.map(([, s]) => safeName(s.user.name)));
      style.textContent = others
        .map(([id, s]) => {
          const c = safeColour(s.user.color);
          const n = safeName(s.user.name);
          return `.yRemoteSelection-${Number(id)}{background-color:${c};opacity:.35}` +
            `.yRemoteSelectionHead-${Number(id)}{border-color:${c}}` +
            `.yRemoteSelectionHead-${Number(id)}::after{content:"${n}";background:${c}}`;
        })
        .join("\n");
    });
    const binding = new MonacoBinding(text, editor.getModel(), new Set([editor]), provider.awareness);
    let ended = false;
    let disposed = false;
    let ready = false;
    // Writable once the text is here, unless the tab is a view link's, its access ended, or
    // someone else holds the file's lock.
    function applyReadOnly() {
      editor.updateOptions({ readOnly: !!opts.readOnly || ended || !ready || lockedByOther });
    }
    let dirty = false;
    let rechecks = 0;
    let attempts = 0;
    const check = () => {
      if (provider.wsconnected && provider.ws) {
        // Sync step 1 with our state: the room replies with what we lack and its own step 1.
        const e = encoding.createEncoder();
        encoding.writeVarUint(e, 0);
        syncProtocol.writeSyncStep1(e, doc);
        provider.ws.send(encoding.toUint8Array(e));
      }
    };
    let checkTimer = null;
    doc.on("update", (_update, origin) => {
      if (origin === provider || (local && origin === local)) return;
      dirty = true;
      if (!provider.wsconnected) return say("offline");
      say("saving");
      clearTimeout(checkTimer);
      checkTimer = setTimeout(check, 300);
    });
    const end = (why) => {
      ended = true;
      provider.shouldConnect = false;
      applyReadOnly();
      say("ended", why);
    };
    const watch = (ws) => {
      let opened = false;
      ws.addEventListener("message", (ev) => {
        const theirs = serverStateVector(ev.data);
        if (!theirs) return;
        const mine = Y.encodeStateVector(doc);
        const ours = Y.decodeStateVector(mine);
        const held = [...ours.entries()].every(([client, clock]) => (theirs.get(client) || 0) >= clock);
        if (held) {
          dirty = false;
          rechecks = 0;
          say("saved");
        } else if (lockedByOther) {
          // The room dropped them: someone else holds the lock.
          say("conflict", safeName(lockName));
        } else {
          // Our answer to this very message carries what the room lacks: ask again soon
          // (less often the longer it takes) to learn when it has them.
          rechecks += 1;
          clearTimeout(checkTimer);
          checkTimer = setTimeout(check, Math.min(15000, 300 * 2 ** Math.min(rechecks, 6)));
        }
      });
      ws.addEventListener("open", () => {
        opened = true;
      });
      ws.addEventListener("close", async (ev) => {
        if (ev.code === 4403 || ev.code === 4401) return end(ev.code === 4403 ? "revoked" : "expired");
        // The file went to the Trash.
        if (ev.code === 4404) return end("gone");
        if (ended || disposed) return;
        say("offline");
        // A ticket opens one socket: the next connection gets a new one, sooner or later.
        provider.shouldConnect = false;
        attempts += 1;
        // A refused upgrade (a dead link, a deleted file) reaches a page only as 1006 on a
        // socket that never opened; the server's answer to a plain request says which.
        if (!opened && opts.probe) {
          let why = null;
          try {
            why = await opts.probe();
          } catch {
            why = null;
          }
          if (ended || disposed) return;
          if (why) return end(why);
        }
        setTimeout(connect, Math.min(10000, 500 * 2 ** Math.min(attempts, 5)));
      });
    };
    // Each new socket is watched from its start (the provider makes one per connection).
    const setup = provider.ws;
    let watched = null;
    provider.on("status", () => {
      if (provider.ws && provider.ws !== watched) {
        watched = provider.ws;
        watch(provider.ws);
      }
    });
    void setup;
    // Synced: edits kept here from before (offline, or in this browser's store) go up now;
    // the room's answer to one more sync step 1 says when it has them all.
    const writable = () => {
      if (!ready && !ended && !disposed) {
        ready = true;
        applyReadOnly();
      }
    };
    local?.once("synced", () => {
      if (text.length > 0) writable();
    });
    provider.on("sync", (synced) => {
      if (synced) {
        // Backoff restarts only once a connection has worked, not on every open socket.
        attempts = 0;
        writable();
        dirty = true;
        say("saving");
        check();
      }
    });
    async function connect() {
      // A second reconnect timer (each failed socket sets one) finding the tab connected
      // again does nothing: it must not say "offline" over a live connection.
      if (ended || disposed || provider.wsconnected || provider.wsconnecting) return;
      say(status === "connecting" ? "connecting" : "offline");
      let query;
      try {
        query = await opts.ticket();
      } catch {
        query = null;
      }
      if (!query) {
        setTimeout(connect, 3000);
        return;
      }
      provider.params = Object.fromEntries(new URLSearchParams(query));
      provider.connect();
    }
    connect();
    return {
      editor,
      /** The text as it is here. */
      text: () => text.toString(),
      /** Whether every edit made here is in the room. */
      saved: () => !dirty,
      /** Asks the room whether it has every edit now (Ctrl+S). */
      save: () => (dirty ? check() : say("saved")),
      focus: () => editor.focus(),
      /** Formats the document: Monaco's formatters, and Prettier for Markdown, YAML and
       * GraphQL. */
      format: () => editor.getAction("editor.action.formatDocument")?.run(),
      /** Opens Monaco's go-to-line box. */
      gotoLine: () => {
        editor.focus();
        editor.getAction("editor.action.gotoLine")?.run();
      },
      layout: () => editor.layout(),
      dispose() {
        disposed = true;
        clearTimeout(checkTimer);
        clearTimeout(lockTimer);
        provider.shouldConnect = false;
        binding.destroy();
        provider.destroy();
        editor.getModel()?.dispose();
        editor.dispose();
        local?.destroy();
        style.remove();
        doc.destroy();
      },
    };
  },
};
