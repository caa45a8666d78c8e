// The desktop's JS helpers: Markdown (marked, sanitized by DOMPurify) and syntax
// highlighting (highlight.js). Bundled by `cargo xtask build web` with esbuild; the Rust
// app calls them through `window.cloudosVendor`.
import { marked } from "marked";
import DOMPurify from "dompurify";
import hljs from "highlight.js/lib/core";
import bash from "highlight.js/lib/languages/bash";
import c from "highlight.js/lib/languages/c";
import cpp from "highlight.js/lib/languages/cpp";
import css from "highlight.js/lib/languages/css";
import go from "highlight.js/lib/languages/go";
import ini from "highlight.js/lib/languages/ini";
import java from "highlight.js/lib/languages/java";
import javascript from "highlight.js/lib/languages/javascript";
import json from "highlight.js/lib/languages/json";
import markdown from "highlight.js/lib/languages/markdown";
import python from "highlight.js/lib/languages/python";
import rust from "highlight.js/lib/languages/rust";
import sql from "highlight.js/lib/languages/sql";
import typescript from "highlight.js/lib/languages/typescript";
import xml from "highlight.js/lib/languages/xml";
import yaml from "highlight.js/lib/languages/yaml";

const languages = { bash, c, cpp, css, go, ini, java, javascript, json, markdown, python, rust, sql, typescript, xml, yaml };
for (const [name, lang] of Object.entries(languages)) hljs.registerLanguage(name, lang);

// Links in previews open outside the desktop and never get the opener.
DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A") {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer");
  }
});

const loading = {};
/** Tries per bundle: a retry asks for a new URL, as a browser keeps a module's failure. */
const tries = {};

/** Loads the bundle the page's `<meta name=…>` names (its script and CSS) once; resolves to
 * the global it sets. */
function loadBundle(name, global, module = false) {
  if (!loading[name]) {
    loading[name] = new Promise((resolve, reject) => {
      const meta = document.querySelector(`meta[name="${name}"]`);
      if (!meta) return reject(new Error(`this build has no ${name} bundle`));
      if (!document.querySelector(`link[data-bundle="${name}"]`)) {
        const css = document.createElement("link");
        css.rel = "stylesheet";
        css.href = meta.dataset.css;
        css.dataset.bundle = name;
        document.head.appendChild(css);
      }
      const js = document.createElement("script");
      if (module) js.type = "module";
      tries[name] = (tries[name] || 0) + 1;
      js.src = tries[name] > 1 ? `${meta.dataset.js}?try=${tries[name]}` : meta.dataset.js;
      const failed = () => { loading[name] = null; reject(new Error(`could not load ${name}`)); };
      // A module that failed to run still fires load: only its global says it ran.
      js.onload = () => (window[global] ? resolve(window[global]) : failed());
      js.onerror = failed;
      document.head.appendChild(js);
    });
  }
  return loading[name];
}

window.cloudosVendor = {
  /** Loads the terminal bundle (xterm.js) once; resolves when ready. */
  loadTerminal() {
    return loadBundle("cloudos-terminal", "cloudosTerminal");
  },
  /** Loads the editor bundle (Monaco, Yjs) once; resolves when ready. */
  loadEditor() {
    // An ES module: its chunks (a language's grammar, a language service) load on demand.
    return loadBundle("cloudos-editor", "cloudosEditor", true);
  },
  /** Markdown to HTML that is safe to insert: no scripts, handlers or javascript: URLs. */
  markdown(text) {
    return DOMPurify.sanitize(marked.parse(text, { async: false, gfm: true }));
  },
  /** Source code to highlighted, escaped HTML. */
  highlight(code, language) {
    if (language && hljs.getLanguage(language)) {
      return hljs.highlight(code, { language, ignoreIllegals: true }).value;
    }
    return hljs.highlightAuto(code).value;
  },
};
