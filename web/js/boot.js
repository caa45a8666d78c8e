// Starts the desktop's wasm. A file of its own rather than an inline script, so the
// desktop's Content-Security-Policy allows scripts from its origin only. The build fills in
// the hashed names.
import init from "{{APP_JS}}";
init({ module_or_path: "{{APP_WASM}}" }).catch((e) => {
  document.getElementById("boot").textContent = "Cloud OS could not start in this browser: " + e;
});
