//! `cargo xtask …`: the project's tasks. `setup` installs what is missing (idempotent,
//! seconds when all is there); `run` builds and serves; `test` runs every suite.

mod bench;
mod rehearse;
mod setup;
mod util;
mod web;
mod worker;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// The project's tasks.
#[derive(Debug, Parser)]
#[command(
    name = "xtask",
    bin_name = "cargo xtask",
    about = "The project's tasks: setup, build, run, test, bench."
)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Install what is missing (apt packages, wasm32 std, wasm tools, npm packages).
    Setup,
    /// Setup, build (release) and serve at http://127.0.0.1:8080 on ./data.
    Run {
        /// More arguments for `cloudos serve`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Build the desktop (`web`) or the Cloudflare Worker (`worker`).
    Build {
        #[arg(value_enum)]
        target: BuildTarget,
    },
    /// The Worker under `wrangler dev` with the local libSQL endpoint; Ctrl-C stops both.
    WorkerDev {
        /// Port of `wrangler dev`.
        #[arg(long, default_value_t = 8787)]
        port: u16,
    },
    /// Setup, then every test: unit, core rules, API suite, native host, browser, libSQL
    /// endpoint, wasm32 check, then the API suite again on the Worker (wrangler dev) and the
    /// Worker's own stories.
    Test {
        /// Only the suites on the Worker.
        #[arg(value_enum)]
        only: Option<TestOnly>,
    },
    /// Run the two README commands as on a brand-new machine (root): setup's packages, tools
    /// and caches removed inside throwaway overlays, a fresh clone of HEAD, an empty cache.
    Rehearse {
        /// Re-entered by the rehearsal inside its overlay, with its work directory.
        #[arg(long, hide = true)]
        inside: Option<std::path::PathBuf>,
    },
    /// Type-check edge/core and edge/worker for wasm32-unknown-unknown.
    CheckWasm,
    /// A benchmark side by side with its peer, into BENCHMARKS.md.
    Bench {
        #[arg(value_enum)]
        what: Benchmark,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum BuildTarget {
    /// The desktop (wasm, JS, CSS, icons) into web/dist.
    Web,
    /// The Worker (edge/worker) into edge/worker/build.
    Worker,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum TestOnly {
    /// Only the suites on `wrangler dev`.
    Edge,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Benchmark {
    /// The files API against raw disk reads.
    Files,
    /// The desktop's budgets in headless Chromium.
    Desktop,
    /// The Worker under wrangler dev beside the native server.
    Edge,
    /// Terminals (echo, throughput, idle memory, cold start) beside terminado.
    Terminal,
    /// Live rooms (fan-out latency, memory) beside @y/websocket-server and y-sweet.
    Collab,
    /// The home's sync with the drive (latency both ways, first sync, re-sync) beside rsync.
    Sync,
}

fn main() -> Result<()> {
    match Cli::parse().task {
        Task::Setup => setup::setup(),
        Task::Run { args } => run(&args),
        Task::Test { only } => test(matches!(only, Some(TestOnly::Edge))),
        Task::Build { target } => {
            setup::setup()?;
            web::build()?;
            match target {
                BuildTarget::Web => Ok(()),
                BuildTarget::Worker => worker::build().map(drop),
            }
        }
        Task::WorkerDev { port } => {
            setup::setup()?;
            web::build()?;
            worker::dev(port)
        }
        Task::Rehearse { inside: None } => rehearse::rehearse(),
        Task::Rehearse { inside: Some(work) } => rehearse::inside(&work),
        Task::CheckWasm => {
            setup::setup()?;
            check_wasm()
        }
        Task::Bench { what } => {
            setup::setup()?;
            match what {
                Benchmark::Files => bench::files(),
                Benchmark::Desktop => bench::desktop(),
                Benchmark::Edge => bench::edge(),
                Benchmark::Terminal => bench::terminal(),
                Benchmark::Collab => bench::collab(),
                Benchmark::Sync => bench::sync(),
            }
        }
    }
}

fn run(extra: &[String]) -> Result<()> {
    setup::setup()?;
    web::build()?;
    let bin = util::build_release_server(&[])?;
    let mut args = vec!["serve".to_owned()];
    args.extend(extra.iter().cloned());
    println!("Cloud OS at http://127.0.0.1:8080 (data in ./data); Ctrl-C stops it.");
    util::exec(&bin, &args)
}

/// Every suite; with `edge_only`, only the suites on `wrangler dev` (quicker while working
/// on the Worker).
fn test(edge_only: bool) -> Result<()> {
    setup::setup()?;
    check_wasm()?;
    // The suites start the real binary and serve the built desktop, so build both first.
    let dist = web::build()?;
    let mut build = vec!["build"];
    build.extend_from_slice(&util::SERVER_BINS);
    build.extend_from_slice(&["-p", "cloudos-tests", "--bin", "fly-double"]);
    util::cargo(&build)?;
    std::env::set_var("CLOUDOS_TEST_WEB_DIR", &dist);
    let native = if edge_only {
        Ok(())
    } else {
        util::cargo_test(
            "",
            &["test", "--workspace", "--no-fail-fast"],
            &[],
            minutes(30),
        )
    };
    // The same API suite, unchanged, against the Worker under `wrangler dev` (workerd) with
    // the local libSQL endpoint, on fresh state.
    let state = util::target_dir().join(format!("edge-test-{}", std::process::id()));
    let server = util::target_dir().join("debug").join("cloudos");
    // Sandboxes on the Worker are Fly Machines: here, the Fly API's test double.
    let fly = worker::FlyDouble::start()?;
    let mut vars = vec![
        ("CLOUDOS_DEFAULT_QUOTA_BYTES", "16777216"),
        // Only the edge stories fire the sweep, after the suite: everything unreferenced
        // by then is an orphan.
        ("CLOUDOS_ORPHAN_GRACE_SECS", "0"),
    ];
    vars.extend(fly.vars.iter().map(|(k, v)| (*k, v.as_str())));
    let mut edge = worker::start(0, &state, &server, &vars, true)?;
    let base = [("CLOUDOS_TEST_BASE_URL", edge.base.as_str())];
    let mut on_edge = util::cargo_test(
        " (API suite on wrangler dev)",
        &[
            "test",
            "--no-fail-fast",
            "-p",
            "cloudos-tests",
            "--test",
            "api",
            "--test",
            "desktop_api",
            "--test",
            "events",
            "--test",
            "races",
            "--test",
            "collab",
            "--test",
            "collab_yjs",
            "--test",
            "shares",
            "--test",
            "locks",
            "--test",
            "history",
            // A native restart; the Worker's rooms are in Durable Objects' storage.
            "--",
            "--skip",
            "acknowledged_edits_survive_a_restart",
        ],
        &base,
        minutes(20),
    );
    // What only the Worker host has (its Cron Trigger), run alone so no upload is in flight.
    if on_edge.is_ok() {
        let log = edge.log.as_ref().expect("started quiet");
        on_edge = util::cargo_test(
            " (edge-only stories)",
            &[
                "test",
                "-p",
                "cloudos-tests",
                "--test",
                "edge",
                "--",
                "--ignored",
            ],
            &[base[0], ("CLOUDOS_TEST_EDGE_LOG", &log.to_string_lossy())],
            minutes(10),
        );
    }
    if on_edge.is_ok() {
        on_edge = eviction_story(&mut edge, &state);
    }
    if on_edge.is_err() {
        eprintln!("the end of wrangler dev's log:\n{}", edge.log_tail(60));
    }
    drop(edge);
    drop(fly);
    let _ = std::fs::remove_dir_all(&state);
    native.and(on_edge)
}

/// A live room outlives its Durable Object: `collab_evict.rs`'s first half makes edits
/// and writes a marker; the Worker is killed at once and started again; the second half
/// finds every edit.
fn eviction_story(edge: &mut worker::LocalEdge, state: &std::path::Path) -> Result<()> {
    let marker = state.join("evict-marker.json");
    let _ = std::fs::remove_file(&marker);
    let env = vec![
        ("CLOUDOS_TEST_BASE_URL".to_owned(), edge.base.clone()),
        (
            "CLOUDOS_TEST_EVICT_MARKER".to_owned(),
            marker.to_string_lossy().into_owned(),
        ),
    ];
    let run = |name: &'static str, env: Vec<(String, String)>| {
        move || {
            let env: Vec<(&str, &str)> =
                env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            util::cargo_test(
                " (a room outlives its Durable Object)",
                &[
                    "test",
                    "-p",
                    "cloudos-tests",
                    "--test",
                    "collab_evict",
                    "--",
                    "--ignored",
                    "--exact",
                    name,
                ],
                &env,
                minutes(5),
            )
        }
    };
    let first = std::thread::spawn(run("edits_before_an_eviction", env.clone()));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    while !marker.exists() {
        if first.is_finished() {
            return first
                .join()
                .map_err(|_| anyhow::anyhow!("the first half panicked"))?
                .and_then(|()| anyhow::bail!("the first half ended without its marker"));
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the first half wrote no marker in 10 minutes"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    edge.kill_and_restart_worker()?;
    first
        .join()
        .map_err(|_| anyhow::anyhow!("the first half panicked"))??;
    run("edits_survive_the_eviction", env)()
}

fn check_wasm() -> Result<()> {
    let wasm = setup::wasm_toolchain()?;
    // `check` proves the core compiles for wasm32 without spending CI time on codegen;
    // the Worker issue adds the real wasm build.
    let mut args = vec![
        "check",
        "--target",
        "wasm32-unknown-unknown",
        "-p",
        "cloudos-core",
        "-p",
        "cloudos-worker",
        "-p",
        "cloudos-fly",
    ];
    let dir = util::target_dir().join("wasm");
    let dir = dir.to_string_lossy().into_owned();
    args.extend(["--target-dir", &dir]);
    util::cargo_with(&args, &wasm.env())
}

/// A suite's time limit (see [`util::cargo_test`]).
fn minutes(n: u64) -> std::time::Duration {
    std::time::Duration::from_secs(n * 60)
}
