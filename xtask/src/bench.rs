//! `cargo xtask bench …`: release builds measured side by side, written to BENCHMARKS.md.

use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::util::{build_release_server, root, status, target_dir};

/// The files benchmark: the server's upload/download against raw disk reads of the same
/// bytes in the same run, bulk creates, and listing a large folder.
pub fn files() -> Result<()> {
    // nginx (sendfile) is the peer for serving a file over HTTP on this machine.
    crate::setup::apt_install(&["nginx-light"])?;
    let server = build_release_server(&["-p", "cloudos-tests", "--bin", "bench-files"])?;
    let release = target_dir().join("release");
    let report = root().join("target").join("bench-files.md");
    std::fs::create_dir_all(report.parent().expect("has a parent"))?;
    let mut cmd = Command::new(release.join("bench-files"));
    cmd.env("CLOUDOS_BIN", server)
        .arg(&report)
        .current_dir(root());
    status(cmd, "bench-files")?;
    let section = std::fs::read_to_string(&report).context("reading the benchmark report")?;
    write_section("files", &section)?;
    println!("{section}");
    Ok(())
}

/// A release `cloudos serve` on a free port with a throwaway data dir; stopped on drop.
struct NativeServer {
    base: String,
    child: std::process::Child,
    data: std::path::PathBuf,
}

impl NativeServer {
    fn start(server: &std::path::Path, name: &str, env: &[(&str, String)]) -> Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let data = std::env::temp_dir().join(format!("cloudos-bench-{name}-{port}"));
        let _ = std::fs::remove_dir_all(&data);
        let child = Command::new(server)
            .args(["serve", "--addr", &format!("127.0.0.1:{port}"), "--data"])
            .arg(&data)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("RUST_LOG", "warn")
            .current_dir(root())
            .spawn()
            .context("starting cloudos")?;
        let server = NativeServer {
            base: format!("http://127.0.0.1:{port}"),
            child,
            data,
        };
        let up = (0..100).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(100));
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        if !up {
            bail!("cloudos did not start on {}", server.base);
        }
        Ok(server)
    }
}

impl Drop for NativeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// The desktop benchmark: transfer size, login-to-desktop and a 1,000-item folder, measured
/// in headless Chromium against the release server.
pub fn desktop() -> Result<()> {
    crate::web::build()?;
    let server = build_release_server(&[])?;
    let web = crate::web::dist_dir().display().to_string();
    let native = NativeServer::start(&server, "desktop", &[("CLOUDOS_WEB_DIR", web)])?;
    let report = target_dir().join("bench-desktop.md");
    let mut cmd = Command::new("node");
    cmd.arg("tests/browser/bench-desktop.mjs")
        .arg(&report)
        .env("CLOUDOS_BASE_URL", &native.base)
        .current_dir(root());
    status(cmd, "bench-desktop.mjs")?;
    drop(native);
    let section = std::fs::read_to_string(&report).context("reading the benchmark report")?;
    write_section("desktop", &section)
}

/// The Worker under `wrangler dev` beside the native server: `GET /files` and a 1 MiB
/// download, p50/p99, and the Worker's wasm size.
pub fn edge() -> Result<()> {
    crate::web::build()?;
    let server = build_release_server(&[])?;
    let native = NativeServer::start(&server, "edge", &[])?;
    let state = target_dir().join("bench-edge");
    let _ = std::fs::remove_dir_all(&state);
    let edge = crate::worker::start(0, &state, &server, &[], true)?;
    let wasm = std::fs::read(crate::worker::build_dir().join("index_bg.wasm"))?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut gz, &wasm)?;
    let gzip = gz.finish()?.len();
    let report = target_dir().join("bench-edge.md");
    let mut cmd = Command::new("node");
    cmd.arg("tests/edge/bench-edge.mjs")
        .arg(&report)
        .arg(&native.base)
        .arg(&edge.base)
        .env("WASM_RAW", wasm.len().to_string())
        .env("WASM_GZIP", gzip.to_string())
        .current_dir(root());
    let ran = status(cmd, "bench-edge.mjs");
    drop(edge);
    drop(native);
    let _ = std::fs::remove_dir_all(&state);
    ran?;
    write_section("edge", &std::fs::read_to_string(&report)?)
}

/// The peer of the terminal benchmark, from PyPI into a virtualenv under the target dir.
const TERMINADO_VERSION: &str = "0.18.1";

/// A Python with terminado installed (created once; fast when already there).
fn terminado_python() -> Result<std::path::PathBuf> {
    let venv = target_dir().join("bench-venv");
    let python = venv.join("bin/python");
    let installed = Command::new(&python)
        .args([
            "-c",
            "import terminado, sys; sys.exit(terminado.__version__ != sys.argv[1])",
        ])
        .arg(TERMINADO_VERSION)
        .status()
        .is_ok_and(|s| s.success());
    if installed {
        return Ok(python);
    }
    let mut mk = Command::new("python3");
    mk.args(["-m", "venv"]).arg(&venv);
    status(mk, "python3 -m venv")?;
    let mut pip = Command::new(&python);
    pip.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        &format!("terminado=={TERMINADO_VERSION}"),
    ]);
    status(pip, "pip install terminado")?;
    Ok(python)
}

/// Terminals side by side with terminado: keystroke echo, output throughput, memory per
/// idle session and cold start.
pub fn terminal() -> Result<()> {
    let python = terminado_python()?;
    let server = build_release_server(&["-p", "cloudos-tests", "--bin", "bench-terminal"])?;
    let release = target_dir().join("release");
    let report = target_dir().join("bench-terminal.md");
    let mut cmd = Command::new(release.join("bench-terminal"));
    cmd.arg(&report)
        .env("CLOUDOS_BIN", &server)
        .env("CLOUDOS_AGENT_BIN", release.join("cloudos-agent"))
        .env("TERMINADO_PYTHON", &python)
        .env(
            "TERMINADO_SERVER",
            root().join("tests/bench/terminado_server.py"),
        )
        .env("TERMINADO_VERSION", TERMINADO_VERSION)
        .current_dir(root());
    status(cmd, "bench-terminal")?;
    write_section("terminal", &std::fs::read_to_string(&report)?)
}

/// The home's sync: a save in Files reaching the home, a write in the home reaching Files,
/// the first sync of a 1,000-file project and a re-sync, with rsync copying the same files
/// locally in the same run.
pub fn sync() -> Result<()> {
    crate::setup::apt_install(&["rsync"])?;
    let server = build_release_server(&["-p", "cloudos-tests", "--bin", "bench-sync"])?;
    let release = target_dir().join("release");
    let report = target_dir().join("bench-sync.md");
    let mut cmd = Command::new(release.join("bench-sync"));
    cmd.arg(&report)
        .env("CLOUDOS_BIN", &server)
        .current_dir(root());
    status(cmd, "bench-sync")?;
    let section = std::fs::read_to_string(&report)?;
    println!("{section}");
    write_section("sync", &section)
}

/// The peers of the rooms benchmark, with their versions (fixed: the comparison names them).
const YWS_VERSION: &str = "0.1.1";
const YSWEET_VERSION: &str = "0.9.1";

/// `@y/websocket-server` from npm into a directory of its own under the target dir (not the
/// project's packages: only this benchmark needs it); fast when already there.
fn y_websocket_server() -> Result<std::path::PathBuf> {
    let dir = target_dir().join("bench-collab-npm");
    let script = dir.join("node_modules/@y/websocket-server/src/server.js");
    let manifest = dir.join("node_modules/@y/websocket-server/package.json");
    let installed = std::fs::read_to_string(&manifest)
        .is_ok_and(|m| m.contains(&format!("\"version\": \"{YWS_VERSION}\"")));
    if !installed {
        std::fs::create_dir_all(&dir)?;
        let mut npm = Command::new("npm");
        npm.args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .arg(format!("@y/websocket-server@{YWS_VERSION}"));
        status(npm, "npm install @y/websocket-server")?;
    }
    Ok(script)
}

/// y-sweet from crates.io (`cargo install --locked`) into a root of its own under the
/// target dir; fast when already there.
fn y_sweet() -> Result<std::path::PathBuf> {
    let root_dir = target_dir().join("bench-ysweet");
    let bin = root_dir.join("bin/y-sweet");
    let installed = Command::new(&bin)
        .arg("version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(YSWEET_VERSION));
    if !installed {
        let mut cargo = Command::new("cargo");
        cargo
            .args([
                "install",
                "--locked",
                "y-sweet",
                "--version",
                YSWEET_VERSION,
                "--root",
            ])
            .arg(&root_dir)
            .env_remove("CARGO_TARGET_DIR");
        status(cargo, "cargo install y-sweet")?;
    }
    Ok(bin)
}

/// Live rooms side by side with @y/websocket-server and y-sweet: fan-out latency and memory
/// for one room of 50 and 200 rooms of 3.
pub fn collab() -> Result<()> {
    let yws = y_websocket_server()?;
    let ysweet = y_sweet()?;
    let server = build_release_server(&["-p", "cloudos-tests", "--bin", "bench-collab"])?;
    let release = target_dir().join("release");
    let report = target_dir().join("bench-collab.md");
    let mut cmd = Command::new(release.join("bench-collab"));
    cmd.arg(&report)
        .env("CLOUDOS_BIN", &server)
        .env("YWS_SERVER", &yws)
        .env("YWS_VERSION", YWS_VERSION)
        .env("YSWEET_BIN", &ysweet)
        .env("YSWEET_VERSION", YSWEET_VERSION)
        .current_dir(root());
    status(cmd, "bench-collab")?;
    // The Editor itself: its bundle and the time to open a long file, in Chromium.
    crate::web::build()?;
    let web = crate::web::dist_dir().display().to_string();
    let native = NativeServer::start(&server, "collab", &[("CLOUDOS_WEB_DIR", web)])?;
    let editor = target_dir().join("bench-editor.md");
    let mut cmd = Command::new("node");
    cmd.arg("tests/browser/bench-editor.mjs")
        .arg(&editor)
        .env("CLOUDOS_BASE_URL", &native.base)
        .current_dir(root());
    status(cmd, "bench-editor.mjs")?;
    drop(native);
    let rooms = std::fs::read_to_string(&report)?;
    let editor = std::fs::read_to_string(&editor)?;
    write_section(
        "collab",
        &format!("## Live rooms and the Editor (`cargo xtask bench collab`)\n\n{rooms}\n{editor}"),
    )
}

/// Replaces (or appends) the `<!-- bench:NAME -->` section of BENCHMARKS.md.
fn write_section(name: &str, body: &str) -> Result<()> {
    let path = root().join("BENCHMARKS.md");
    let current = std::fs::read_to_string(&path).unwrap_or_else(|_| "# Benchmarks\n\nWritten by `cargo xtask bench …`; each section is replaced by its latest run.\n".into());
    let start = format!("<!-- bench:{name} -->");
    let end = format!("<!-- /bench:{name} -->");
    let block = format!("{start}\n{}\n{end}", body.trim());
    let next = match (current.find(&start), current.find(&end)) {
        (Some(s), Some(e)) => format!("{}{}{}", &current[..s], block, &current[e + end.len()..]),
        _ => format!("{}\n{}\n", current.trim_end(), block),
    };
    std::fs::write(&path, next)?;
    Ok(())
}
