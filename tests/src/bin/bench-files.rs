//! The files benchmark run by `cargo xtask bench files` (release build): writes a Markdown
//! section to the path given as the first argument.

use std::io::Read;
use std::time::{Duration, Instant};

use anyhow::Context;
use cloudos_tests::{pattern, ServerOptions, TestServer};
use reqwest::Method;

const SIZE: u64 = 256 * 1024 * 1024;

fn mib_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1_048_576.0 / d.as_secs_f64()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let out = std::env::args()
        .nth(1)
        .context("usage: bench-files REPORT.md")?;
    let server = TestServer::native(
        ServerOptions::default()
            .env("CLOUDOS_DEFAULT_QUOTA_BYTES", 8 * SIZE)
            .env("RUST_LOG", "warn"),
    );
    let u = server.new_user("bench").await.api;

    // Upload 256 MiB streamed from memory in 1 MiB chunks.
    let chunk = bytes::Bytes::from(pattern(1 << 20, 11));
    let body = futures_util::stream::iter(
        (0..SIZE >> 20).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
    );
    let part = reqwest::multipart::Part::stream_with_length(reqwest::Body::wrap_stream(body), SIZE)
        .file_name("big.bin");
    let t = Instant::now();
    let res = u
        .req(Method::POST, "/files")
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await?;
    anyhow::ensure!(res.status() == 201, "upload failed: {}", res.status());
    let upload = t.elapsed();
    let uploaded: serde_json::Value = res.json().await?;
    let id = uploaded["files"][0]["id"]
        .as_str()
        .context("id")?
        .to_owned();
    let sha = uploaded["files"][0]["checksum"]
        .as_str()
        .context("checksum")?
        .to_owned();
    let blob = server
        .data_dir
        .clone()
        .context("data dir")?
        .join("blobs")
        .join(&sha[..2])
        .join(&sha[2..]);

    // Best of three, alternating, so both read the same (warm) page cache.
    let (mut raw, mut http) = (Duration::MAX, Duration::MAX);
    for _ in 0..3 {
        let t = Instant::now();
        let mut f = std::fs::File::open(&blob)?;
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0u64;
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        anyhow::ensure!(total == SIZE);
        raw = raw.min(t.elapsed());

        let t = Instant::now();
        let mut res = u.get(&format!("/files/{id}/content")).await;
        let mut total = 0u64;
        while let Some(c) = res.chunk().await? {
            total += c.len() as u64;
        }
        anyhow::ensure!(total == SIZE);
        http = http.min(t.elapsed());
    }

    // 1,000 small files, one request each.
    let folder = u.mkdir(None, "thousand").await;
    let mut creates = Vec::with_capacity(1000);
    let t = Instant::now();
    for i in 0..1000 {
        let s = Instant::now();
        let res = u
            .upload_raw(
                Some(&folder.id),
                &[(&format!("f{i:04}.txt"), format!("file {i}").into_bytes())],
            )
            .await;
        anyhow::ensure!(res.status() == 201);
        creates.push(s.elapsed());
    }
    let create_total = t.elapsed();
    creates.sort();

    // A folder of 10,000 files (created 100 per request), listed 50 times.
    let big = u.mkdir(None, "ten-thousand").await;
    for batch in 0..100 {
        let files: Vec<(String, Vec<u8>)> = (0..100)
            .map(|i| (format!("n{batch:03}-{i:03}.txt"), vec![b'x'; 16]))
            .collect();
        let refs: Vec<(&str, Vec<u8>)> =
            files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
        let res = u.upload_raw(Some(&big.id), &refs).await;
        anyhow::ensure!(res.status() == 201);
    }
    let mut lists = Vec::with_capacity(50);
    for _ in 0..50 {
        let s = Instant::now();
        let res = u.get(&format!("/files?parent={}", big.id)).await;
        let v: serde_json::Value = res.json().await?;
        anyhow::ensure!(v["items"].as_array().map(Vec::len) == Some(10_000));
        lists.push(s.elapsed());
    }
    lists.sort();

    let ratio = mib_s(SIZE, http) / mib_s(SIZE, raw);
    let list_p50 = percentile(&lists, 0.5);
    let machine = format!(
        "{} cores, {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(
                |c| c.lines().find(|l| l.starts_with("model name")).map(|l| l
                    .split(':')
                    .nth(1)
                    .unwrap_or("")
                    .trim()
                    .to_owned())
            )
            .unwrap_or_default()
    );
    let date = std::process::Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%d %H:%M UTC")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let verdict = |ok: bool| if ok { "met" } else { "**missed**" };
    let report = format!(
        "## Files (`cargo xtask bench files`)\n\n\
Machine: {machine}; run {date}; release build, native server on loopback, local blob store, libSQL embedded.\n\n\
| measure | result | target |\n|---|---|---|\n\
| upload 256 MiB (multipart, streamed) | {:.0} MiB/s | — |\n\
| download 256 MiB through the server | {:.0} MiB/s | — |\n\
| read the same blob straight from disk (peer) | {:.0} MiB/s | — |\n\
| download ÷ raw read | {:.0}% | ≥ 50%: {} |\n\
| create 1,000 files (one upload each) | {:.2} s total, p50 {}, p99 {} | — |\n\
| list a folder of 10,000 files | p50 {}, p99 {} | p50 < 50 ms: {} |\n",
        mib_s(SIZE, upload), mib_s(SIZE, http), mib_s(SIZE, raw), ratio * 100.0, verdict(ratio >= 0.5),
        create_total.as_secs_f64(), ms(percentile(&creates, 0.5)), ms(percentile(&creates, 0.99)),
        ms(list_p50), ms(percentile(&lists, 0.99)), verdict(list_p50 < Duration::from_millis(50)),
    );
    std::fs::write(&out, &report)?;
    Ok(())
}
