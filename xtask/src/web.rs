//! `cargo xtask build web`: the desktop as static files in `web/dist`.
//!
//! Assets get content hashes in their names (cached for a year); `index.html` names them
//! and is revalidated on every load. Each text asset also gets a `.gz` twin that the
//! server sends to browsers that accept gzip.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use crate::setup;
use crate::util::{cargo_with, hex, root, status, target_dir};

/// The built desktop's directory.
pub fn dist_dir() -> PathBuf {
    root().join("web/dist")
}

/// Builds the web app (wasm, JS glue, vendor bundle, styles, icons) into `web/dist`.
pub fn build() -> Result<PathBuf> {
    let started = std::time::Instant::now();
    let toolchain = setup::wasm_toolchain()?;
    let wasm_target = target_dir().join("wasm");
    let wasm_target_s = wasm_target.to_string_lossy().into_owned();
    cargo_with(
        &[
            "build",
            "--profile",
            "web",
            "--target",
            "wasm32-unknown-unknown",
            "-p",
            "cloudos-web",
            "--target-dir",
            &wasm_target_s,
        ],
        &toolchain.env(),
    )?;
    let wasm = wasm_target.join("wasm32-unknown-unknown/web/cloudos_web.wasm");
    let stage = target_dir().join("web-stage");
    let _ = std::fs::remove_dir_all(&stage);
    std::fs::create_dir_all(&stage)?;

    let mut bindgen = Command::new(setup::wasm_bindgen_bin());
    bindgen
        .args([
            "--target",
            "web",
            "--no-typescript",
            "--out-name",
            "app",
            "--out-dir",
        ])
        .arg(&stage)
        .arg(&wasm);
    status(bindgen, "wasm-bindgen")?;

    let esbuild = root().join("node_modules/.bin/esbuild");
    if !esbuild.exists() {
        bail!("{} is missing: run `cargo xtask setup`", esbuild.display());
    }
    let mut vendor = Command::new(&esbuild);
    vendor
        .current_dir(root())
        .args([
            "web/js/vendor.js",
            "--bundle",
            "--minify",
            "--format=iife",
            "--log-level=warning",
        ])
        .arg(format!("--outfile={}", stage.join("vendor.js").display()));
    status(vendor, "esbuild (vendor bundle)")?;
    // The Terminal app's xterm.js, loaded only when a terminal opens (its CSS comes out
    // next to it).
    let mut terminal = Command::new(&esbuild);
    terminal
        .current_dir(root())
        .args([
            "web/js/terminal.js",
            "--bundle",
            "--minify",
            "--format=iife",
            "--log-level=warning",
        ])
        .arg(format!("--outfile={}", stage.join("terminal.js").display()));
    status(terminal, "esbuild (terminal bundle)")?;
    // The Editor app's Monaco + Yjs, loaded only when an editor opens: an ES module split
    // at Monaco's own lazy imports, so what a file does not need (80 languages' grammars,
    // the JSON/CSS/HTML/TS modes) is fetched and parsed only when a file of that language
    // opens. Its icon font goes beside its CSS.
    let editor_dir = stage.join("editor");
    let _ = std::fs::remove_dir_all(&editor_dir);
    let monaco = "node_modules/monaco-editor/esm/vs";
    let mut editor = Command::new(&esbuild);
    editor
        .current_dir(root())
        .arg("editor=web/js/editor.js")
        .args([
            "--bundle",
            "--minify",
            "--format=esm",
            "--splitting",
            "--chunk-names=editor-[name]-[hash]",
            "--log-level=error",
            "--loader:.ttf=file",
            "--asset-names=[name]-[hash]",
        ])
        .arg(format!("--outdir={}", editor_dir.display()));
    status(editor, "esbuild (editor bundle)")?;
    // Monaco's language workers and Prettier: classic scripts (a worker started from a URL,
    // a script tag), so one file each, without shared chunks.
    let mut workers = Command::new(&esbuild);
    workers
        .current_dir(root())
        // Prettier for what Monaco cannot format: loaded only when such a file is formatted.
        .arg("format=web/js/format.js")
        .arg(format!("editor.worker={monaco}/editor/editor.worker.js"))
        .arg(format!("json.worker={monaco}/language/json/json.worker.js"))
        .arg(format!("css.worker={monaco}/language/css/css.worker.js"))
        .arg(format!("html.worker={monaco}/language/html/html.worker.js"))
        .arg(format!(
            "ts.worker={monaco}/language/typescript/ts.worker.js"
        ))
        .args(["--bundle", "--minify", "--format=iife", "--log-level=error"])
        .arg(format!("--outdir={}", editor_dir.display()));
    status(workers, "esbuild (editor workers)")?;

    let dist = dist_dir();
    let _ = std::fs::remove_dir_all(&dist);
    std::fs::create_dir_all(dist.join("assets"))?;
    let web = root().join("web");
    let app_js = hashed(&stage.join("app.js"), &dist, "app", "js")?;
    let app_wasm = hashed(&stage.join("app_bg.wasm"), &dist, "app", "wasm")?;
    let vendor_js = hashed(&stage.join("vendor.js"), &dist, "vendor", "js")?;
    let terminal_js = hashed(&stage.join("terminal.js"), &dist, "terminal", "js")?;
    let terminal_css = hashed(&stage.join("terminal.css"), &dist, "terminal", "css")?;
    let style = hashed(&web.join("style.css"), &dist, "style", "css")?;
    let editor_js = hashed(&editor_dir.join("editor.js"), &dist, "editor", "js")?;
    let editor_css = hashed(&editor_dir.join("editor.css"), &dist, "editor", "css")?;
    let mut workers = serde_json::Map::new();
    for label in ["editor", "json", "css", "html", "ts"] {
        let url = hashed(
            &editor_dir.join(format!("{label}.worker.js")),
            &dist,
            &format!("{label}.worker"),
            "js",
        )?;
        workers.insert(label.to_owned(), url.into());
    }
    let format_js = hashed(&editor_dir.join("format.js"), &dist, "format", "js")?;
    workers.insert("format".to_owned(), format_js.into());
    // The CSS names its font files, and the editor module its chunks, by their own (hashed)
    // names, next to it.
    for entry in std::fs::read_dir(&editor_dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let chunk = name.starts_with("editor-") && name.ends_with(".js");
        if name.ends_with(".ttf") || chunk {
            let to = dist.join("assets").join(name);
            std::fs::copy(&path, &to)?;
            if chunk {
                gzip(&to)?;
            }
        }
    }
    let editor_workers = serde_json::Value::Object(workers).to_string();
    let boot = std::fs::read_to_string(web.join("js/boot.js"))?
        .replace("{{APP_JS}}", &app_js)
        .replace("{{APP_WASM}}", &app_wasm);
    std::fs::write(stage.join("boot.js"), boot)?;
    let boot_js = hashed(&stage.join("boot.js"), &dist, "boot", "js")?;
    // The desktop's security headers for the Worker's static assets (Cloudflare reads
    // `_headers`); the native server sets the same ones from the same list.
    let mut headers = String::from("/*\n");
    for (name, value) in cloudos_proto::DESKTOP_HEADERS {
        headers.push_str(&format!("  {name}: {value}\n"));
    }
    std::fs::write(dist.join("_headers"), headers)?;

    std::fs::create_dir_all(dist.join("icons"))?;
    for entry in std::fs::read_dir(web.join("icons"))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "svg") {
            let to = dist.join("icons").join(path.file_name().expect("a file"));
            std::fs::copy(&path, &to)?;
            gzip(&to)?;
        }
    }
    let index = std::fs::read_to_string(web.join("index.html"))?
        .replace("{{APP_JS}}", &app_js)
        .replace("{{APP_WASM}}", &app_wasm)
        .replace("{{BOOT_JS}}", &boot_js)
        .replace("{{VENDOR_JS}}", &vendor_js)
        .replace("{{TERMINAL_JS}}", &terminal_js)
        .replace("{{TERMINAL_CSS}}", &terminal_css)
        .replace("{{EDITOR_JS}}", &editor_js)
        .replace("{{EDITOR_CSS}}", &editor_css)
        .replace("{{EDITOR_WORKERS}}", &editor_workers)
        .replace("{{STYLE_CSS}}", &style);
    if index.contains("{{") {
        bail!("web/index.html names a placeholder the build does not fill");
    }
    std::fs::write(dist.join("index.html"), index)?;
    gzip(&dist.join("index.html"))?;
    eprintln!(
        "web: built {} in {:.0} s",
        dist.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(dist)
}

/// Copies `src` to `dist/assets/<stem>-<hash>.<ext>` (plus `.gz`); returns its URL path.
fn hashed(src: &Path, dist: &Path, stem: &str, ext: &str) -> Result<String> {
    let bytes = std::fs::read(src).with_context(|| format!("reading {}", src.display()))?;
    let hash = hex(&Sha256::digest(&bytes)[..6]);
    let name = format!("{stem}-{hash}.{ext}");
    let to = dist.join("assets").join(&name);
    std::fs::write(&to, &bytes)?;
    gzip(&to)?;
    Ok(format!("/assets/{name}"))
}

/// Writes `path.gz` next to `path`.
fn gzip(path: &Path) -> Result<()> {
    let bytes = std::fs::read(path)?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&bytes)?;
    let mut name = path.as_os_str().to_owned();
    name.push(".gz");
    std::fs::write(PathBuf::from(name), gz.finish()?)?;
    Ok(())
}
