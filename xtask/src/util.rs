//! Running commands.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The workspace root.
///
/// Read when xtask runs (`cargo run` sets `CARGO_MANIFEST_DIR`), not when it was compiled:
/// clones share one build cache, and a binary built in another clone would otherwise act
/// on that clone.
pub fn root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir
        .parent()
        .expect("xtask lives in the workspace")
        .to_owned()
}

/// Where cargo puts build output (`CARGO_TARGET_DIR` or `<root>/target`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

/// The server and the agent it starts for each sandbox (next to it): always built together.
pub const SERVER_BINS: [&str; 8] = [
    "-p",
    "cloudos-server",
    "--bin",
    "cloudos",
    "-p",
    "cloudos-agent",
    "--bin",
    "cloudos-agent",
];

/// Builds `cloudos` and `cloudos-agent` (and any `extra` package/bin pairs) in release mode;
/// returns the path of `cloudos`.
pub fn build_release_server(extra: &[&str]) -> Result<PathBuf> {
    let mut args = vec!["build", "--release"];
    args.extend_from_slice(&SERVER_BINS);
    args.extend_from_slice(extra);
    cargo(&args)?;
    Ok(target_dir().join("release").join("cloudos"))
}

/// Runs cargo in the workspace root.
pub fn cargo(args: &[&str]) -> Result<()> {
    cargo_with(args, &[])
}

/// Runs cargo with extra environment variables.
pub fn cargo_with(args: &[&str], env: &[(String, String)]) -> Result<()> {
    // A toolchain override needs rustup's cargo proxy, not the cargo running xtask.
    let switch = env.iter().any(|(k, _)| k == "RUSTUP_TOOLCHAIN");
    let program = match std::env::var("CARGO") {
        Ok(c) if !switch => c,
        _ => "cargo".into(),
    };
    let mut cmd = Command::new(program);
    cmd.args(args).current_dir(root());
    if switch {
        cmd.env_remove("CARGO")
            .env_remove("RUSTC")
            .env_remove("RUSTDOC");
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    status(cmd, &format!("cargo {}", args.join(" ")))
}

/// Runs `cargo test` with `args`, passing its output through, and ends with one total line
/// (`tests<label>: N passed, M failed`) over every test binary.
///
/// The tests are built first, then run under `limit`: a suite still running after it is
/// killed, whole process group, and fails with the names libtest last reported as slow, so
/// a stalled server costs minutes and says where instead of outlasting CI's own limit.
pub fn cargo_test(
    label: &str,
    args: &[&str],
    env: &[(&str, &str)],
    limit: std::time::Duration,
) -> Result<()> {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::CommandExt;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // Building is not part of the limit: a cold cache may take most of it.
    let split = args.iter().position(|a| *a == "--").unwrap_or(args.len());
    let mut build: Vec<&str> = args[..split].to_vec();
    build.push("--no-run");
    let st = Command::new(&cargo)
        .args(&build)
        .envs(env.iter().copied())
        .current_dir(root())
        .status()
        .context("building the tests")?;
    if !st.success() {
        bail!("building the tests failed ({st})");
    }
    let mut child = Command::new(cargo)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(root())
        .stdout(std::process::Stdio::piped())
        // A group of its own, so a stalled suite can be killed whole (test servers, agents
        // and browsers included); Ctrl-C is passed on to it by `stop_on_interrupt`.
        .process_group(0)
        .spawn()
        .context("starting cargo test")?;
    let group = child.id();
    stop_on_interrupt(group, true);
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        let timed_out = matches!(
            finished.recv_timeout(limit),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout)
        );
        if timed_out {
            kill_group(group);
        }
        timed_out
    });
    let (mut passed, mut failed) = (0u64, 0u64);
    // Tests libtest reported as slow and that have not finished since.
    let mut slow: Vec<String> = Vec::new();
    for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
        let line = line?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            passed += count_before(rest, " passed");
            failed += count_before(rest, " failed");
        }
        if line.trim_start().starts_with("Running ") {
            slow.clear();
        } else if let Some(rest) = line.strip_prefix("test ") {
            if let Some(name) = rest.strip_suffix(" has been running for over 60 seconds") {
                slow.push(name.to_owned());
            } else if let Some((name, _)) = rest.split_once(" ... ") {
                slow.retain(|s| s != name);
            }
        }
    }
    let st = child.wait()?;
    drop(done);
    stop_on_interrupt(group, false);
    // A suite that ended on its own just as the limit came is not a stalled one.
    let timed_out = watchdog.join().unwrap_or(false) && !st.success();
    println!("tests{label}: {passed} passed, {failed} failed");
    if timed_out {
        bail!(
            "tests{label} still running after {} min and killed; running for over a minute: {}",
            limit.as_secs() / 60,
            if slow.is_empty() {
                "none named".to_owned()
            } else {
                slow.join(", ")
            }
        );
    }
    if !st.success() {
        bail!("cargo test failed ({st})");
    }
    Ok(())
}

/// The process groups of the test runs going on now (the eviction story runs two at once).
static RUNNING: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());

/// Records (or forgets) a test run's process group, so Ctrl-C or SIGTERM, which no longer
/// reaches a group of its own from the terminal, kills it before xtask exits.
fn stop_on_interrupt(group: u32, running: bool) {
    static HANDLER: std::sync::Once = std::sync::Once::new();
    HANDLER.call_once(|| {
        // Another task may have its own handler already; then that one decides.
        let _ = ctrlc::set_handler(|| {
            let groups = RUNNING.lock().map(|g| g.clone()).unwrap_or_default();
            for group in groups {
                kill_group(group);
            }
            std::process::exit(130);
        });
    });
    if let Ok(mut groups) = RUNNING.lock() {
        groups.retain(|g| *g != group);
        if running {
            groups.push(group);
        }
    }
}

/// SIGKILL to a whole process group.
fn kill_group(group: u32) {
    // procps kill needs `--` before a negative id, or it takes it for an option.
    let _ = Command::new("kill")
        .args(["-s", "KILL", "--", &format!("-{group}")])
        .status();
}

/// The number just before `word` in a `test result:` line.
fn count_before(line: &str, word: &str) -> u64 {
    line.split(';')
        .find_map(|part| {
            part.trim()
                .trim_start_matches("ok. ")
                .trim_start_matches("FAILED. ")
                .strip_suffix(word)?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// Runs a command and fails on a non-zero exit.
pub fn status(mut cmd: Command, what: &str) -> Result<()> {
    let st = cmd.status().with_context(|| format!("starting {what}"))?;
    if !st.success() {
        bail!("{what} failed ({st})");
    }
    Ok(())
}

/// Runs a program in the foreground until it exits.
pub fn exec(bin: &Path, args: &[String]) -> Result<()> {
    let mut cmd = Command::new(bin);
    cmd.args(args).current_dir(root());
    status(cmd, &bin.display().to_string())
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether a program is on PATH.
pub fn on_path(name: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {name} >/dev/null 2>&1")])
        .status()
        .is_ok_and(|s| s.success())
}

/// Output of a command, if it ran and succeeded.
pub fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::count_before;

    #[test]
    fn counts_from_test_result_lines() {
        let ok =
            "ok. 14 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 3.50s";
        assert_eq!(
            (count_before(ok, " passed"), count_before(ok, " failed")),
            (14, 0)
        );
        let bad = "FAILED. 4 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out";
        assert_eq!(
            (count_before(bad, " passed"), count_before(bad, " failed")),
            (4, 2)
        );
    }
}
