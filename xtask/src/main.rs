//! `cargo xtask …`: the project's tasks. `setup` installs what is missing (idempotent,
//! seconds when all is there); `run` builds and serves; `test` runs every suite.

mod bench;
mod rehearse;
mod setup;
mod util;
mod web;
mod worker;

use anyhow::{bail, Result};

const USAGE: &str = "usage: cargo xtask <command>
  setup            install what is missing (apt packages, wasm32 std, s3s-fs)
  run [ARGS…]      setup, build (release) and serve at http://127.0.0.1:8080 on ./data
  build web        build the desktop (wasm, JS, CSS, icons) into web/dist
  build worker     build the Cloudflare Worker (edge/worker) into edge/worker/build
  worker-dev [--port PORT]
                   the Worker under `wrangler dev` on 127.0.0.1:PORT (8787) with the local
                   libSQL endpoint; Ctrl-C/SIGTERM stops both
  test [edge]      setup, then every test: unit, API suite, native host, browser, libSQL
                   endpoint, wasm32 check, then the API suite again on the Worker (wrangler dev)
                   and the Worker's own stories; `edge`: only those on the Worker
  rehearse         run the two README commands as on a brand-new machine (root): setup's
                   packages, tools and caches removed inside throwaway overlays of the machine,
                   a fresh clone of HEAD, an empty build cache; reports how long each took
  check-wasm       type-check edge/core and edge/worker for wasm32-unknown-unknown
  bench files      benchmark the files API against raw disk reads into BENCHMARKS.md
  bench desktop    the desktop's budgets in headless Chromium into BENCHMARKS.md
  bench edge       the Worker under wrangler dev beside the native server into BENCHMARKS.md
  bench terminal   terminals (echo, throughput, idle memory, cold start) beside terminado";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        println!("{USAGE}");
        return Ok(());
    };
    match cmd.as_str() {
        "setup" => setup::setup(),
        "run" => run(&args[1..]),
        "test" => test(args.get(1).map(String::as_str) == Some("edge")),
        "build" => match args.get(1).map(String::as_str) {
            Some("web") => {
                setup::setup()?;
                web::build().map(drop)
            }
            Some("worker") => {
                setup::setup()?;
                web::build()?;
                worker::build().map(drop)
            }
            other => bail!("unknown build target {other:?}\n{USAGE}"),
        },
        "worker-dev" => {
            setup::setup()?;
            web::build()?;
            worker::dev(&args[1..])
        }
        "rehearse" => match (args.get(1).map(String::as_str), args.get(2)) {
            (None, _) => rehearse::rehearse(),
            // Re-entered by the rehearsal inside its overlay.
            (Some("--inside"), Some(work)) => rehearse::inside(std::path::Path::new(work)),
            _ => bail!("usage: cargo xtask rehearse"),
        },
        "check-wasm" => {
            setup::setup()?;
            check_wasm()
        }
        "bench" => match args.get(1).map(String::as_str) {
            Some("files") => {
                setup::setup()?;
                bench::files()
            }
            Some("desktop") => {
                setup::setup()?;
                bench::desktop()
            }
            Some("edge") => {
                setup::setup()?;
                bench::edge()
            }
            Some("terminal") => {
                setup::setup()?;
                bench::terminal()
            }
            other => bail!("unknown benchmark {other:?}\n{USAGE}"),
        },
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command {other:?}\n{USAGE}"),
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
        util::cargo_test("", &["test", "--workspace", "--no-fail-fast"], &[])
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
    let edge = worker::start(0, &state, &server, &vars, true)?;
    let base = [("CLOUDOS_TEST_BASE_URL", edge.base.as_str())];
    let mut on_edge = util::cargo_test(
        " (API suite on wrangler dev)",
        &[
            "test",
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
        ],
        &base,
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
        );
    }
    if on_edge.is_err() {
        eprintln!("the end of wrangler dev's log:\n{}", edge.log_tail(60));
    }
    drop(edge);
    drop(fly);
    let _ = std::fs::remove_dir_all(&state);
    native.and(on_edge)
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
