//! The files benchmark run by `cargo xtask bench files` (release build): writes a Markdown
//! section to the path given as the first argument.

use std::io::Read;
use std::time::{Duration, Instant};

use anyhow::Context;
use cloudos_tests::bench::percentile;
use cloudos_tests::{pattern, ServerOptions, TestServer};
use reqwest::Method;

const SIZE: u64 = 256 * 1024 * 1024;

fn mib_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1_048_576.0 / d.as_secs_f64()
}

/// Reads a file to the end with 256 KiB reads.
fn read_file(path: &std::path::Path) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let mut f = std::fs::File::open(path)?;
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
    Ok(t.elapsed())
}

/// Downloads a file through the server, counting the bytes.
async fn download(u: &cloudos_tests::Client, id: &str) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let mut res = u.get(&format!("/files/{id}/content")).await;
    let mut total = 0u64;
    while let Some(c) = res.chunk().await? {
        total += c.len() as u64;
    }
    anyhow::ensure!(total == SIZE);
    Ok(t.elapsed())
}

/// nginx serving one directory on a free loopback port, stopped on drop.
struct Nginx {
    child: std::process::Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Nginx {
    // SIGTERM, not SIGKILL: the master then stops its workers instead of orphaning them.
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// Starts nginx with sendfile over a copy of `file`, or `None` when nginx is not installed.
fn start_nginx(file: &std::path::Path) -> anyhow::Result<Option<Nginx>> {
    let bin = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let Some(bin) = bin else { return Ok(None) };
    let dir = tempfile::tempdir()?;
    let www = dir.path().join("www");
    std::fs::create_dir_all(&www)?;
    std::fs::copy(file, www.join("big.bin"))?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let conf = format!(
        "worker_processes 1;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
events {{ worker_connections 64; }}\nhttp {{ access_log off; sendfile on; \
client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d}; uwsgi_temp_path {d}; scgi_temp_path {d}; \
server {{ listen 127.0.0.1:{port}; root {www}; }} }}\n",
        d = dir.path().display(),
        www = www.display()
    );
    std::fs::write(dir.path().join("nginx.conf"), conf)?;
    let child = std::process::Command::new(bin)
        .arg("-c")
        .arg(dir.path().join("nginx.conf"))
        .arg("-p")
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        anyhow::ensure!(Instant::now() < deadline, "nginx did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(Some(Nginx {
        child,
        url: format!("http://127.0.0.1:{port}/big.bin"),
        _dir: dir,
    }))
}

/// Downloads a URL with the same client, counting the bytes.
async fn download_url(http: &reqwest::Client, url: &str) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let mut res = http.get(url).send().await?;
    let mut total = 0u64;
    while let Some(c) = res.chunk().await? {
        total += c.len() as u64;
    }
    anyhow::ensure!(total == SIZE);
    Ok(t.elapsed())
}

/// Empties the kernel's page cache; false when not allowed.
fn drop_caches() -> bool {
    let _ = std::process::Command::new("sync").status();
    std::fs::write("/proc/sys/vm/drop_caches", "3").is_ok()
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let out = std::env::args()
        .nth(1)
        .context("usage: bench-files REPORT.md")?;
    let server =
        TestServer::native(ServerOptions::default().env("CLOUDOS_DEFAULT_QUOTA_BYTES", 8 * SIZE));
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

    // Best of three, alternating, so all read the same (warm) page cache: the file itself,
    // cloudos, and nginx serving a copy with sendfile.
    let nginx = start_nginx(&blob)?;
    let http_client = reqwest::Client::new();
    let (mut raw, mut http, mut peer) = (Duration::MAX, Duration::MAX, None::<Duration>);
    for _ in 0..3 {
        raw = raw.min(read_file(&blob)?);
        http = http.min(download(&u, &id).await?);
        if let Some(n) = &nginx {
            let d = download_url(&http_client, &n.url).await?;
            peer = Some(peer.map_or(d, |p| p.min(d)));
        }
    }
    // The same from the disk itself, when the page cache can be dropped (root).
    let (mut raw_cold, mut http_cold, mut peer_cold) = (None, None, None);
    if drop_caches() {
        raw_cold = Some(read_file(&blob)?);
        drop_caches();
        http_cold = Some(download(&u, &id).await?);
        if let Some(n) = &nginx {
            drop_caches();
            peer_cold = Some(download_url(&http_client, &n.url).await?);
        }
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
        // Timed to the last byte of the answer; the client's JSON parsing is not the server's.
        let s = Instant::now();
        let body = u
            .get(&format!("/files?parent={}", big.id))
            .await
            .bytes()
            .await?;
        lists.push(s.elapsed());
        let v: serde_json::Value = serde_json::from_slice(&body)?;
        anyhow::ensure!(v["items"].as_array().map(Vec::len) == Some(10_000));
    }
    lists.sort();

    let ratio = mib_s(SIZE, http) / mib_s(SIZE, raw);
    let pct = |a: Duration, b: Duration| mib_s(SIZE, a) / mib_s(SIZE, b) * 100.0;
    let peer_row = |label: &str, d: Option<Duration>, raw: Duration| {
        match d {
        Some(d) => format!("| {label}: nginx 1.22 (sendfile) serving the same bytes (peer) | {:.0} MiB/s ({:.0}% of raw) | — |\n", mib_s(SIZE, d), pct(d, raw)),
        None => format!("| {label}: nginx | not installed | — |\n"),
    }
    };
    let warm_peer = peer_row("warm cache", peer, raw);
    let cold_rows = match (raw_cold, http_cold) {
        (Some(r), Some(h)) => format!(
            "| cold cache: download through the server | {:.0} MiB/s | — |\n\
| cold cache: read straight from disk (peer) | {:.0} MiB/s | — |\n{}\
| cold cache: download ÷ raw read | {:.0}% | ≥ 50%: {} |\n",
            mib_s(SIZE, h),
            mib_s(SIZE, r),
            peer_row("cold cache", peer_cold, r),
            pct(h, r),
            if pct(h, r) >= 50.0 {
                "met"
            } else {
                "**missed**"
            }
        ),
        _ => {
            "| cold cache | not measured: the page cache could not be dropped (needs root) | — |\n"
                .into()
        }
    };
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
| warm cache: download 256 MiB through the server | {:.0} MiB/s | — |\n\
| warm cache: read the same blob straight from the file (peer) | {:.0} MiB/s | — |\n\
{warm_peer}\
| warm cache: download ÷ raw read | {:.0}% | ≥ 50%: {} |\n\
{cold_rows}\
| create 1,000 files (one upload each) | {:.2} s total, p50 {}, p99 {} | — |\n\
| list a folder of 10,000 files | p50 {}, p99 {} | p50 < 50 ms: {} |\n",
        mib_s(SIZE, upload), mib_s(SIZE, http), mib_s(SIZE, raw), ratio * 100.0, verdict(ratio >= 0.5),
        create_total.as_secs_f64(), ms(percentile(&creates, 0.5)), ms(percentile(&creates, 0.99)),
        ms(list_p50), ms(percentile(&lists, 0.99)), verdict(list_p50 < Duration::from_millis(50)),
    );
    std::fs::write(&out, &report)?;
    Ok(())
}
