//! `cargo xtask build worker` and `cargo xtask worker-dev`: the Cloudflare Worker built with
//! the project's own toolchain, and run locally in workerd by `wrangler dev` against the local
//! libSQL endpoint (`cloudos db serve`).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::setup;
use crate::util::{self, root, status};

/// Where worker-build writes the Worker (`wrangler.toml` points `main` at its shim).
pub fn build_dir() -> PathBuf {
    root().join("edge/worker/build")
}

/// Builds the Worker: release wasm, wasm-bindgen, wasm-opt and the JS shim, all from tools
/// setup installed (worker-build would otherwise download them).
pub fn build() -> Result<PathBuf> {
    let toolchain = setup::wasm_toolchain()?;
    let started = Instant::now();
    let mut cmd = Command::new(setup::cargo_bin("worker-build"));
    cmd.args(["--profile", "worker"])
        .current_dir(root().join("edge/worker"))
        .env("ESBUILD_BIN", root().join("node_modules/.bin/esbuild"))
        .env("WASM_BINDGEN_BIN", setup::cargo_bin("wasm-bindgen"))
        .env("WASM_OPT_BIN", root().join("node_modules/.bin/wasm-opt"))
        // The wasm goes to its own target dir so the native and web builds stay cached.
        .env("CARGO_TARGET_DIR", util::target_dir().join("worker"))
        .env_remove("CARGO")
        .env_remove("RUSTC");
    for (k, v) in toolchain.env() {
        cmd.env(k, v);
    }
    status(cmd, "worker-build")?;
    let dir = build_dir();
    if !dir.join("worker/shim.mjs").exists() {
        bail!(
            "worker-build finished but {} has no worker/shim.mjs",
            dir.display()
        );
    }
    eprintln!(
        "worker: built {} in {:.0} s",
        dir.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(dir)
}

/// A running local edge: `cloudos db serve` and `wrangler dev`; both stop when dropped.
pub struct LocalEdge {
    pub base: String,
    /// Where wrangler's output goes when started `quiet` (the Worker's console lines too).
    pub log: Option<PathBuf>,
    children: Vec<Child>,
    /// How wrangler was started, to start it again.
    wrangler: Option<Wrangler>,
}

/// What `wrangler dev` is started with.
struct Wrangler {
    port: u16,
    state: PathBuf,
    db_url: String,
    token: String,
    vars: Vec<(String, String)>,
}

impl Wrangler {
    fn command(&self) -> Command {
        use std::os::unix::process::CommandExt;
        let mut wrangler = Command::new(root().join("node_modules/.bin/wrangler"));
        wrangler
            .args([
                "dev",
                "--local",
                "--ip",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
                // Serves `/__scheduled`, so a test can fire the Cron Trigger.
                "--test-scheduled",
            ])
            .args(["--persist-to"])
            .arg(self.state.join("wrangler"))
            .args(["--var", &format!("LIBSQL_URL:{}", self.db_url)])
            .args(["--var", &format!("LIBSQL_AUTH_TOKEN:{}", self.token)])
            .args([
                "--var",
                "CLOUDOS_SECRET:local-dev-secret-not-for-production",
            ])
            .current_dir(root())
            // The Worker was just built: wrangler must not run the build command again.
            .env("CLOUDOS_WORKER_PREBUILT", "1")
            .env("WRANGLER_SEND_METRICS", "false")
            .env("WRANGLER_SEND_ERROR_REPORTS", "false")
            .env("WRANGLER_HIDE_BANNER", "true")
            .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
            .process_group(0);
        for (k, v) in &self.vars {
            wrangler.args(["--var", &format!("{k}:{v}")]);
        }
        wrangler
    }
}

impl LocalEdge {
    /// Kills `wrangler dev` and workerd at once (SIGKILL: no object gets to finish what it
    /// was doing, as when the runtime evicts it) and starts them again on the same port
    /// and stored state.
    pub fn kill_and_restart_worker(&mut self) -> Result<()> {
        let wrangler = self.wrangler.as_ref().context("no wrangler to restart")?;
        let mut cmd = wrangler.command();
        let mut child = self.children.pop().context("no wrangler running")?;
        let group = format!("-{}", child.id());
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &group])
            .status();
        let _ = child.wait();
        // workerd is in the group too: its port is free once the whole group is gone.
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let alive = Command::new("kill")
                .args(["-0", "--", &group])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !alive {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if let Some(log) = &self.log {
            let file = std::fs::OpenOptions::new().append(true).open(log)?;
            cmd.stdout(file.try_clone()?).stderr(file);
        }
        self.children
            .push(cmd.spawn().context("starting wrangler dev again")?);
        let base = self.base.clone();
        if let Err(e) = wait_for(
            &format!("{base}/healthz"),
            Duration::from_secs(120),
            self.children.last_mut().expect("just pushed"),
            "wrangler dev",
        ) {
            bail!("{e:#}; the end of its log:\n{}", self.log_tail(40));
        }
        Ok(())
    }

    /// The last `n` lines of wrangler's log, for a failure message.
    pub fn log_tail(&self, n: usize) -> String {
        let text = self
            .log
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for LocalEdge {
    fn drop(&mut self) {
        // wrangler first: workerd holds connections to the libSQL endpoint open.
        for child in self.children.iter_mut().rev() {
            stop_group(child);
        }
    }
}

/// Signals a child's whole process group (wrangler starts workerd beneath it).
fn stop_group(child: &mut Child) {
    // procps kill needs `--` before a negative id, or it takes it for an option.
    let group = format!("-{}", child.id());
    let _ = Command::new("kill")
        .args(["-s", "TERM", "--", &group])
        .status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = Command::new("kill")
        .args(["-s", "KILL", "--", &group])
        .status();
    let _ = child.wait();
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn wait_for(url: &str, within: Duration, child: &mut Child, what: &str) -> Result<()> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(Some(s)) = child.try_wait() {
            bail!("{what} exited early ({s})");
        }
        let ok = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", url])
            .output()
            .map(|o| o.stdout.starts_with(b"200"))
            .unwrap_or(false);
        if ok {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    bail!("{what} did not answer {url} within {within:?}")
}

/// Builds the Worker and starts the local edge on `port` (0: a free one), with its state
/// (libSQL file, R2 and Durable Object storage) under `state` and `vars` overriding
/// `wrangler.toml`'s. `quiet` sends the servers' output to `state/*.log` instead of ours.
pub fn start(
    port: u16,
    state: &std::path::Path,
    server: &std::path::Path,
    vars: &[(&str, &str)],
    quiet: bool,
) -> Result<LocalEdge> {
    use std::os::unix::process::CommandExt;
    build()?;
    std::fs::create_dir_all(state)?;
    let port = if port == 0 { free_port()? } else { port };
    let db_port = free_port()?;
    let token = "local-dev-token";
    let mut edge = LocalEdge {
        base: format!("http://127.0.0.1:{port}"),
        log: quiet.then(|| state.join("wrangler.log")),
        children: Vec::new(),
        wrangler: None,
    };
    let output = |name: &str| -> Result<(Stdio, Stdio)> {
        if !quiet {
            return Ok((Stdio::inherit(), Stdio::inherit()));
        }
        let file = std::fs::File::create(state.join(name))?;
        Ok((file.try_clone()?.into(), file.into()))
    };
    let mut db = Command::new(server);
    db.args([
        "db",
        "serve",
        "--addr",
        &format!("127.0.0.1:{db_port}"),
        "--data",
    ])
    .arg(state.join("libsql"))
    .env("CLOUDOS_DB_AUTH_TOKEN", token)
    .process_group(0);
    let (out, err) = output("db.log")?;
    db.stdout(out).stderr(err);
    edge.children
        .push(db.spawn().context("starting cloudos db serve")?);
    let db_url = format!("http://127.0.0.1:{db_port}");
    wait_for(
        &format!("{db_url}/health"),
        Duration::from_secs(20),
        edge.children.last_mut().expect("just pushed"),
        "cloudos db serve",
    )?;
    let wrangler = Wrangler {
        port,
        state: state.to_owned(),
        db_url,
        token: token.to_owned(),
        // Sandboxes (the Fly double's agents, on this machine) sync homes through this edge.
        vars: std::iter::once(("CLOUDOS_SYNC_URL".to_owned(), edge.base.clone()))
            .chain(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
            .collect(),
    };
    let mut cmd = wrangler.command();
    edge.wrangler = Some(wrangler);
    let (out, err) = output("wrangler.log")?;
    cmd.stdout(out).stderr(err);
    edge.children
        .push(cmd.spawn().context("starting wrangler dev")?);
    let base = edge.base.clone();
    if let Err(e) = wait_for(
        &format!("{base}/healthz"),
        Duration::from_secs(120),
        edge.children.last_mut().expect("just pushed"),
        "wrangler dev",
    ) {
        bail!("{e:#}; the end of its log:\n{}", edge.log_tail(40));
    }
    Ok(edge)
}

/// `cargo xtask worker-dev --port PORT`: the local edge in the foreground until Ctrl-C/SIGTERM.
pub fn dev(port: u16) -> Result<()> {
    // Ctrl-C or SIGTERM must reach this process (not kill it) so both servers are stopped.
    let (stop, stopped) = std::sync::mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = stop.send(());
    })
    .context("installing the Ctrl-C handler")?;
    let server = util::build_release_server(&[])?;
    let edge = start(
        port,
        &root().join(".wrangler/cloudos-dev"),
        &server,
        &[],
        false,
    )?;
    println!(
        "Cloud OS on the local edge (workerd) at {}; Ctrl-C stops it.",
        edge.base
    );
    let _ = stopped.recv();
    eprintln!("worker-dev: stopping wrangler dev and cloudos db serve");
    drop(edge);
    Ok(())
}

/// The TEST DOUBLE of the Fly Machines API (`tests/src/bin/fly-double.rs`) as a process, so
/// the Worker under `wrangler dev` runs sandboxes on its "Machines" (real agents). Stops them
/// when dropped.
pub struct FlyDouble {
    /// The variables that point a host at the double.
    pub vars: Vec<(&'static str, String)>,
    child: Child,
}

impl FlyDouble {
    /// The app and token the double accepts (a token for tests only).
    const APP: &'static str = "cloudos-sandboxes-edge-test";
    const TOKEN: &'static str = "FlyV1 fm2_edge_test_token";

    /// Starts `fly-double` (built with the test binaries) with the debug agent.
    pub fn start() -> Result<FlyDouble> {
        use std::io::BufRead;
        let debug = util::target_dir().join("debug");
        let mut child = Command::new(debug.join("fly-double"))
            .args([Self::APP, Self::TOKEN])
            .env("CLOUDOS_AGENT_BIN", debug.join("cloudos-agent"))
            // Its stdin closing (this process gone) stops it too.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting fly-double")?;
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().context("fly-double's stdout")?)
            .read_line(&mut line)?;
        let urls: serde_json::Value =
            serde_json::from_str(&line).with_context(|| format!("fly-double said {line:?}"))?;
        let url = |k: &str| {
            urls[k]
                .as_str()
                .map(str::to_owned)
                .context("fly-double's urls")
        };
        Ok(FlyDouble {
            vars: vec![
                ("CLOUDOS_SANDBOX_PROVIDER", "fly".into()),
                ("FLY_API_TOKEN", Self::TOKEN.into()),
                ("CLOUDOS_FLY_APP", Self::APP.into()),
                ("CLOUDOS_FLY_API_URL", url("url")?),
                ("CLOUDOS_FLY_PUBLIC_URL", url("public_url")?),
                (
                    "CLOUDOS_FLY_IMAGE",
                    "registry.fly.io/cloudos-sandboxes:edge-test".into(),
                ),
            ],
            child,
        })
    }
}

impl Drop for FlyDouble {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-s", "TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}
