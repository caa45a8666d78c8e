//! The sync benchmark run by `cargo xtask bench sync` (release builds): how fast the home of
//! a sandbox and the drive follow each other, through `cloudos serve` and its local
//! sandboxes (bubblewrap on; no home image, so the benchmark watches the home on the disk
//! as a shell in it would). Beside it, rsync copying the same files between two local
//! directories: the floor for moving them on this machine. Writes a Markdown section to
//! the path given as the first argument.
//!
//! Env: CLOUDOS_BIN (release; its `cloudos-agent` next to it).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cloudos_proto::terminal::Sandbox;
use cloudos_proto::File;
use cloudos_tests::bench::percentile;
use cloudos_tests::sync::tree;
use cloudos_tests::{pattern, sha256_hex, ServerOptions, TestServer, User};
use reqwest::Method;
use serde_json::json;

const FILES: usize = 1000;
const FILE_BYTES: usize = 50 * 1024;
const ROUNDS: usize = 60;

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// What the agent says it moved, from its state (`sync-index.json`).
fn moved(state: &Path) -> Result<(u64, u64, u64, u64)> {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.join("sync-index.json"))?)?;
    let m = &index["moved"];
    let n = |k: &str| m[k].as_u64().unwrap_or(0);
    Ok((
        n("down_files"),
        n("down_bytes"),
        n("up_files"),
        n("up_bytes"),
    ))
}

async fn start(u: &User) -> Result<Sandbox> {
    let res = u.api.post("/sandbox", &json!({})).await;
    if !res.status().is_success() {
        bail!("POST /sandbox: {}", res.status());
    }
    Ok(res.json().await?)
}

async fn stop(u: &User, sbx: &Sandbox) -> Result<()> {
    let res = u.api.delete(&format!("/sandbox/{}", sbx.id)).await;
    if res.status() != 204 {
        bail!("DELETE /sandbox: {}", res.status());
    }
    Ok(())
}

async fn save(u: &User, id: &str, version: i64, body: Vec<u8>) -> Result<File> {
    let res = u
        .api
        .req(Method::PUT, &format!("/files/{id}/content"))
        .header("if-match", format!("\"{version}\""))
        .body(body)
        .send()
        .await?;
    if res.status() != 200 {
        bail!("saving: {}", res.status());
    }
    Ok(res.json().await?)
}

/// Polls `done` every millisecond until it holds (30 s at most).
async fn until(what: &str, mut done: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        if Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    e.metadata()
                        .is_ok_and(|m| m.is_file() && m.len() == FILE_BYTES as u64)
                })
                .count()
        })
        .unwrap_or(0)
}

fn rsync(from: &Path, to: &Path) -> Result<Duration> {
    let t = Instant::now();
    let out = Command::new("rsync")
        .args(["-a", "--delete"])
        .arg(format!("{}/", from.display()))
        .arg(to)
        .output()
        .context("running rsync (cargo xtask bench sync installs it)")?;
    if !out.status.success() {
        bail!("rsync: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(t.elapsed())
}

fn summary(mut samples: Vec<Duration>) -> (Duration, Duration, Duration, Duration) {
    samples.sort();
    (
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        samples[0],
        samples[samples.len() - 1],
    )
}

#[tokio::main]
async fn main() -> Result<()> {
    let report = PathBuf::from(std::env::args().nth(1).context("the report's path")?);
    let server = TestServer::native(
        ServerOptions::default()
            .env("CLOUDOS_SANDBOX_HOME_MB", 0)
            .env("CLOUDOS_DEFAULT_QUOTA_BYTES", 1u64 << 30),
    );
    let data = server.data_dir.clone().context("a native server")?;
    let u = server.new_user("bench").await;
    let home = data.join("sandboxes").join(&u.id).join("home");
    let state = data.join("sandboxes").join(&u.id).join("state");

    // A project in Files: 1,000 files of 50 KiB (different bytes each), uploaded in batches.
    let proj = u.api.mkdir(None, "proj").await;
    let mut uploaded: Vec<File> = Vec::new();
    for batch in 0..FILES / 100 {
        let files: Vec<(String, Vec<u8>)> = (0..100)
            .map(|i| {
                let n = batch * 100 + i;
                (format!("f{n:04}.txt"), pattern(FILE_BYTES, n as u64))
            })
            .collect();
        let refs: Vec<(&str, Vec<u8>)> =
            files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
        uploaded.extend(u.api.upload(Some(&proj.id), &refs).await);
    }

    // The first sync: from the start of a new sandbox to every file in its home.
    let t = Instant::now();
    let sbx = start(&u).await?;
    let started = t.elapsed();
    let dir = home.join("proj");
    until("the first sync", || count_files(&dir) == FILES).await?;
    let first = t.elapsed();
    let after_first = moved(&state)?;

    // rsync of the same tree between two local directories, for scale.
    let copy = data.join("rsync-copy");
    let rsync_first = rsync(&dir, &copy)?;

    // A save in Files (an editor's save) → the file in the home.
    let mut down = Vec::new();
    let target = uploaded[0].clone();
    let mut version = target.version;
    for round in 0..ROUNDS {
        let body = format!("save {round}\n").into_bytes();
        let path = dir.join(&target.name);
        let t = Instant::now();
        version = save(&u, &target.id, version, body.clone()).await?.version;
        until("a save to reach the home", || {
            std::fs::read(&path).is_ok_and(|b| b == body)
        })
        .await?;
        down.push(t.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A write in the home (a shell's) → the file in Files, seen by polling the tree.
    let mut up = Vec::new();
    for round in 0..ROUNDS {
        let body = format!("written by the shell {round}\n").into_bytes();
        let sha = sha256_hex(&body);
        let t = Instant::now();
        std::fs::write(dir.join("shell.txt"), &body)?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let items = tree(&u.api).await;
            if items
                .iter()
                .any(|i| i.path == "proj/shell.txt" && i.checksum.as_deref() == Some(sha.as_str()))
            {
                break;
            }
            if Instant::now() > deadline {
                bail!("a shell write never reached Files");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        up.push(t.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A re-sync after one file changed while the sandbox was stopped: only it moves.
    stop(&u, &sbx).await?;
    let before = moved(&state)?;
    let changed = uploaded[1].clone();
    let body = pattern(FILE_BYTES, 999_999);
    save(&u, &changed.id, changed.version, body.clone()).await?;
    let path = dir.join(&changed.name);
    let t = Instant::now();
    let again = start(&u).await?;
    until("the re-sync", || {
        std::fs::read(&path).is_ok_and(|b| b == body)
    })
    .await?;
    let resync = t.elapsed();
    // The pass that fetched it is saved right after its round: wait for the counters.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut after = moved(&state)?;
    while after.0 == before.0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        after = moved(&state)?;
    }
    stop(&u, &again).await?;
    // The home has the changed file now; the copy has the old one.
    let rsync_copy_changed = rsync(&dir, &copy)?;

    let (d50, d99, dmin, dmax) = summary(down);
    let (u50, u99, umin, umax) = summary(up);
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut md = String::new();
    md.push_str(&format!(
        "Measured by `cargo xtask bench sync` (release `cloudos serve` and `cloudos-agent`, local sandboxes with bubblewrap, the home a plain directory watched by the benchmark; {cpus} CPUs). rsync copies the same files between two local directories in the same run, for scale.\n\n"
    ));
    md.push_str("| What | Cloud OS | target | rsync (local → local) |\n|---|---|---|---|\n");
    md.push_str(&format!(
        "| first sync of {FILES} files / {} MB into a new sandbox (from `POST /sandbox`; the sandbox's start took {}) | {} ({} files, {:.1} MB down) | under 10 s | {} |\n",
        FILES * FILE_BYTES / 1_000_000,
        ms(started),
        ms(first),
        after_first.0,
        after_first.1 as f64 / 1e6,
        ms(rsync_first)
    ));
    md.push_str(&format!(
        "| a save in Files → in the home, p50 / p99 (min … max, {ROUNDS} saves) | {} / {} ({} … {}) | 500 ms | — |\n",
        ms(d50), ms(d99), ms(dmin), ms(dmax)
    ));
    md.push_str(&format!(
        "| a write in the home → in Files, p50 / p99 (min … max, {ROUNDS} writes; Files polled every 5 ms) | {} / {} ({} … {}) | 1 s | — |\n",
        ms(u50), ms(u99), ms(umin), ms(umax)
    ));
    md.push_str(&format!(
        "| re-sync after one file changed while stopped (from `POST /sandbox`) | {}: {} file, {} bytes down, {} up | only that file moves | {} |\n",
        ms(resync),
        after.0 - before.0,
        after.1 - before.1,
        after.3 - before.3,
        ms(rsync_copy_changed)
    ));
    std::fs::write(&report, &md)?;
    Ok(())
}
