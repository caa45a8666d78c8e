// The Terminal app's JS side: xterm.js and its fit addon, loaded only when a terminal opens
// (`cloudosVendor.loadTerminal()`). The Rust app owns the socket and the protocol; this only
// draws, measures and reports keys.
import { Terminal } from "@xterm/xterm";
import { FitAddon } from "@xterm/addon-fit";
import "@xterm/xterm/css/xterm.css";

function themeFor(dark) {
  return dark
    ? { background: "#14161b", foreground: "#e6e6e6", cursor: "#e6e6e6", selectionBackground: "#3a5a8c" }
    : { background: "#fbfbfc", foreground: "#1d1f24", cursor: "#1d1f24", selectionBackground: "#b5cdf2" };
}

window.cloudosTerminal = {
  /**
   * Opens a terminal in `el`. `onData(string)` gets keystrokes and pastes; `onResize(cols, rows)`
   * gets size changes; `onCopy(text)` is told what Ctrl+Shift+C copied.
   */
  create(el, onData, onResize, onCopy) {
    const dark = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
    const term = new Terminal({
      cursorBlink: true,
      convertEol: false,
      scrollback: 5000,
      fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace",
      fontSize: 13,
      theme: themeFor(dark),
      allowProposedApi: false,
    });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(el);
    // The desktop's own shortcuts (launcher, switch/close/snap windows) pass through to it.
    const desktopKey = (ev) =>
      ((ev.ctrlKey || ev.metaKey) && !ev.altKey && ev.key === " ") ||
      (ev.altKey && !ev.ctrlKey && !ev.metaKey &&
        [" ", "k", "K", "`", "~", "w", "W", "m", "M", "ArrowUp", "ArrowDown"].includes(ev.key)) ||
      (ev.altKey && ev.shiftKey && (ev.key === "ArrowLeft" || ev.key === "ArrowRight"));
    // Ctrl+Shift+C copies the selection, Ctrl+Shift+V pastes: plain Ctrl+C/V belong to the shell.
    term.attachCustomKeyEventHandler((ev) => {
      if (desktopKey(ev)) return false;
      if (ev.type !== "keydown" || !ev.ctrlKey || !ev.shiftKey) return true;
      const key = ev.key.toLowerCase();
      if (key === "c") {
        const text = term.getSelection();
        if (text && navigator.clipboard) navigator.clipboard.writeText(text).then(() => onCopy(text), () => {});
        ev.preventDefault();
        return false;
      }
      if (key === "v") {
        if (navigator.clipboard && navigator.clipboard.readText) {
          navigator.clipboard.readText().then((t) => t && term.paste(t), () => {});
        }
        ev.preventDefault();
        return false;
      }
      return true;
    });
    term.onData((d) => onData(d));
    term.onResize(({ cols, rows }) => onResize(cols, rows));
    const decoder = new TextDecoder();
    return {
      /** Writes terminal bytes (a Uint8Array) or text. */
      write(data) { term.write(data); },
      /** Fits the terminal to its element; returns [cols, rows]. */
      fit() {
        try { fit.fit(); } catch (_) { /* not visible yet */ }
        return [term.cols, term.rows];
      },
      focus() { term.focus(); },
      reset() { term.reset(); },
      /** The visible lines as text (tests and accessibility). */
      lines() {
        const b = term.buffer.active;
        const out = [];
        for (let i = 0; i < b.length; i++) out.push(b.getLine(i).translateToString(true));
        return out;
      },
      dispose() { term.dispose(); },
      decoder,
    };
  },
};
