//! What only the native host does: its data dir, process, S3 backend and telemetry.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cloudos_tests::{pattern, rss_kib, sha256_hex, ServerOptions, TestServer};
use reqwest::{Method, StatusCode};

/// Short, but longer than any upload here spends between its blob commit and its row.
const GRACE_SECS: u64 = 3;

fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().unwrap().is_dir() {
                out.extend(files_under(&e.path()));
            } else {
                out.push(e.path().display().to_string());
            }
        }
    }
    out
}

async fn wait_until<F: Fn() -> bool>(what: &str, within: Duration, check: F) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn orphan_sweep_removes_unreferenced_and_cut_off_blobs() {
    let server = TestServer::native(
        ServerOptions::default()
            .env("CLOUDOS_SWEEP_INTERVAL_SECS", 1)
            .env("CLOUDOS_ORPHAN_GRACE_SECS", GRACE_SECS),
    );
    let blobs = server.data_dir.clone().unwrap().join("blobs");
    let u = server.new_user("sweeper").await.api;
    let keep = u
        .upload(None, &[("keep.bin", pattern(1000, 1))])
        .await
        .remove(0);
    let gone = u
        .upload(None, &[("gone.bin", pattern(2000, 2))])
        .await
        .remove(0);
    let dup = u
        .upload(None, &[("dup.bin", pattern(1000, 1))])
        .await
        .remove(0);
    assert_eq!(files_under(&blobs).len(), 2, "equal content is stored once");
    assert_eq!(dup.checksum, keep.checksum);

    assert_eq!(
        u.delete(&format!("/files/{}", gone.id)).await.status(),
        StatusCode::NO_CONTENT
    );
    let gone_blob = blobs
        .join(&gone.checksum.as_ref().unwrap()[..2])
        .join(&gone.checksum.as_ref().unwrap()[2..]);
    // In the Trash its bytes are kept (sweeps come every second); removed for good, they go.
    tokio::time::sleep(Duration::from_secs(GRACE_SECS + 2)).await;
    assert!(gone_blob.exists(), "a file in the Trash keeps its blob");
    assert_eq!(
        u.delete(&format!("/trash/{}", gone.id)).await.status(),
        StatusCode::NO_CONTENT
    );
    wait_until(
        "the sweep to remove the deleted file's blob",
        Duration::from_secs(15),
        || !gone_blob.exists(),
    )
    .await;
    // Still referenced by two rows: deleting one keeps the blob.
    assert_eq!(
        u.delete(&format!("/files/{}", dup.id)).await.status(),
        StatusCode::NO_CONTENT
    );
    tokio::time::sleep(Duration::from_secs(GRACE_SECS + 2)).await;
    assert_eq!(u.content(&keep.id).await, pattern(1000, 1));

    // A pending upload left by a crash (no process to drop it) is swept too.
    let stray = blobs.join(".pending").join("crashedupload");
    std::fs::write(&stray, b"half").unwrap();
    wait_until(
        "the sweep to remove a stale pending upload",
        Duration::from_secs(15),
        || !stray.exists(),
    )
    .await;
    assert_eq!(files_under(&blobs).len(), 1);
}

#[tokio::test]
async fn a_1_gib_upload_streams_in_bounded_memory() {
    const GIB: u64 = 1024 * 1024 * 1024;
    let server =
        TestServer::native(ServerOptions::default().env("CLOUDOS_DEFAULT_QUOTA_BYTES", 4 * GIB));
    let pid = server.pid().unwrap();
    let u = server.new_user("bulk").await.api;
    // Warm up every code path once so the baseline includes them.
    u.upload(None, &[("warm.bin", pattern(1 << 20, 1))]).await;
    let baseline = rss_kib(pid, "VmRSS:");

    let chunk = bytes::Bytes::from(pattern(1 << 20, 5));
    let stream =
        futures_util::stream::iter((0..1024).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
    let part =
        reqwest::multipart::Part::stream_with_length(reqwest::Body::wrap_stream(stream), GIB)
            .file_name("big.bin");
    let res = u
        .req(Method::POST, "/files")
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let peak = rss_kib(pid, "VmHWM:");
    let growth_mib = peak.saturating_sub(baseline) / 1024;
    assert!(
        growth_mib <= 64,
        "server memory grew by {growth_mib} MiB during a 1 GiB upload"
    );

    let files: serde_json::Value = res.json().await.unwrap();
    assert_eq!(files["files"][0]["size"], GIB);
    let id = files["files"][0]["id"].as_str().unwrap().to_owned();
    let res = u
        .req(Method::GET, &format!("/files/{id}/content"))
        .header("range", "bytes=1073741814-")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.bytes().await.unwrap(),
        pattern(1 << 20, 5)[(1 << 20) - 10..]
    );
}

#[tokio::test]
async fn secret_is_generated_once_and_survives_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = ServerOptions {
        data_dir: Some(tmp.path().to_owned()),
        ..Default::default()
    };
    let mut first = TestServer::native(opts.clone());
    let user = first.new_user("stayer").await;
    let f = user
        .api
        .upload(None, &[("kept.txt", b"still here".to_vec())])
        .await
        .remove(0);
    assert!(
        first.terminate(Duration::from_secs(10)).unwrap(),
        "clean exit on SIGTERM"
    );
    assert!(
        first.logs().iter().any(|l| l.contains("\"stopped\"")),
        "logs the graceful stop"
    );
    let secret = std::fs::read_to_string(tmp.path().join("secret.key")).unwrap();
    assert_eq!(secret.trim().len(), 64);

    let second = TestServer::native(opts);
    let mut api = user.api.clone();
    api.base = second.base.clone();
    assert_eq!(
        api.content(&f.id).await,
        b"still here",
        "old token and data still valid"
    );
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("secret.key")).unwrap(),
        secret
    );
    let migrations = second
        .logs()
        .iter()
        .filter(|l| l.contains("applied migration"))
        .count();
    assert_eq!(migrations, 0, "a restart applies no migration twice");
}

#[tokio::test]
async fn logs_are_json_lines() {
    let server = TestServer::native(ServerOptions::default());
    server.client().get("/healthz").await;
    let logs = server.logs();
    assert!(!logs.is_empty());
    for line in &logs {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v.get("level").is_some() && v.get("timestamp").is_some(),
            "{line}"
        );
    }
}

/// s3s-fs, the S3 server `cargo xtask setup` installs.
struct S3Server {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_s3s() -> S3Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let bin = std::env::var("S3S_FS_BIN").unwrap_or_else(|_| {
        let home = std::env::var("CARGO_HOME")
            .unwrap_or_else(|_| format!("{}/.cargo", std::env::var("HOME").unwrap()));
        format!("{home}/bin/s3s-fs")
    });
    let child = Command::new(&bin)
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--access-key",
            "testkey",
            "--secret-key",
            "testsecret",
        ])
        .arg(&root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{bin} is not installed ({e}): run `cargo xtask setup`"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "s3s-fs did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    S3Server {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
        root,
    }
}

#[tokio::test]
async fn blobs_in_an_s3_server() {
    let s3 = start_s3s();
    let server = TestServer::native(
        ServerOptions::default()
            .env("CLOUDOS_BLOBS", "s3")
            .env("CLOUDOS_S3_ENDPOINT", &s3.url)
            .env("CLOUDOS_S3_BUCKET", "cloudos-test")
            .env("AWS_ACCESS_KEY_ID", "testkey")
            .env("AWS_SECRET_ACCESS_KEY", "testsecret")
            .env("CLOUDOS_DEFAULT_QUOTA_BYTES", 64 * 1024 * 1024)
            .env("CLOUDOS_SWEEP_INTERVAL_SECS", 1)
            .env("CLOUDOS_ORPHAN_GRACE_SECS", GRACE_SECS),
    );
    let u = server.new_user("s3 user").await.api;
    // One small blob (single PUT) and one past the multipart threshold.
    let small = pattern(10_000, 1);
    let large = pattern(20 * 1024 * 1024 + 123, 2);
    let files = u
        .upload(
            None,
            &[("small.bin", small.clone()), ("large.bin", large.clone())],
        )
        .await;
    assert_eq!(
        files[1].checksum.as_deref(),
        Some(sha256_hex(&large).as_str())
    );
    assert_eq!(u.content(&files[0].id).await, small);
    assert_eq!(u.content(&files[1].id).await, large);
    let res = u
        .req(Method::GET, &format!("/files/{}/content", files[1].id))
        .header("range", "bytes=10000000-10000099")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(res.bytes().await.unwrap(), large[10_000_000..10_000_100]);
    let stored = files_under(&s3.root.join("cloudos-test"));
    let key = files[1].checksum.clone().unwrap();
    assert!(
        stored.iter().any(|p| p.ends_with(&format!("blobs/{key}"))),
        "{stored:?}"
    );

    // The orphan sweep works through the S3 API as well.
    assert_eq!(
        u.delete(&format!("/files/{}", files[1].id)).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        u.delete(&format!("/trash/{}", files[1].id)).await.status(),
        StatusCode::NO_CONTENT
    );
    let root = s3.root.join("cloudos-test");
    wait_until(
        "the sweep to delete the S3 object",
        Duration::from_secs(15),
        || {
            !files_under(&root)
                .iter()
                .any(|p| p.ends_with(&format!("blobs/{key}")))
        },
    )
    .await;
    assert_eq!(u.content(&files[0].id).await, small);
}

/// (content type, body) of each OTLP request received.
type Exports = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

// The receiver must keep serving while the test thread waits for the server to stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_are_exported_over_otlp() {
    use axum::routing::post;
    let received: Exports = Arc::default();
    let sink = received.clone();
    let receiver = axum::Router::new().route(
        "/v1/traces",
        post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let sink = sink.clone();
                async move {
                    let ct = headers
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    sink.lock().unwrap().push((ct, body.to_vec()));
                    StatusCode::OK
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });

    let mut server =
        TestServer::native(ServerOptions::default().env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint));
    assert_eq!(
        server.client().get("/healthz").await.status(),
        StatusCode::OK
    );
    // Stopping flushes the batch exporter.
    assert!(server.terminate(Duration::from_secs(15)).unwrap());
    let got = received.lock().unwrap().clone();
    assert!(!got.is_empty(), "no OTLP export arrived");
    assert!(got.iter().all(|(ct, _)| ct == "application/x-protobuf"));
    let all: Vec<u8> = got.into_iter().flat_map(|(_, b)| b).collect();
    let contains = |needle: &[u8]| all.windows(needle.len()).any(|w| w == needle);
    assert!(contains(b"GET /healthz"), "the request span is exported");
    assert!(contains(b"cloudos"), "the service name is exported");
}

/// A setting the core cannot use stops the start, naming the variable and the flag; the
/// flag and the variable are one setting.
#[test]
fn a_bad_setting_stops_the_start_and_names_the_variable() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let out = Command::new(cloudos_tests::cloudos_bin())
            .arg("serve")
            .args([
                "--addr",
                "127.0.0.1:0",
                "--sandbox-provider",
                "none",
                "--data",
            ])
            .arg(tmp.path())
            .args(args)
            .envs(env.iter().copied())
            .env_remove("CLOUDOS_DEFAULT_QUOTA_BYTES")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, stderr) = run(&["--default-quota-bytes", "10GB"], &[]);
    assert!(!ok);
    assert!(
        stderr
            .contains("CLOUDOS_DEFAULT_QUOTA_BYTES=\"10GB\" is not valid: expected a whole number")
            && stderr.contains("--default-quota-bytes"),
        "{stderr}"
    );
    let (ok, stderr) = run(&["--secret", "hunter2"], &[]);
    assert!(!ok);
    assert!(
        stderr.contains("CLOUDOS_SECRET=\"<redacted>\" is not valid")
            && !stderr.contains("hunter2"),
        "{stderr}"
    );
    // A signing key file cut short (a crash between creating and writing it) stops the
    // start instead of signing with a guessable key.
    std::fs::write(tmp.path().join("secret.key"), "abcd").unwrap();
    let (ok, stderr) = run(&[], &[]);
    assert!(!ok);
    assert!(stderr.contains("holds 2 bytes"), "{stderr}");
    std::fs::remove_file(tmp.path().join("secret.key")).unwrap();
    let (ok, stderr) = run(&[], &[("CLOUDOS_LOGIN_MAX_FAILURES", "0")]);
    assert!(!ok);
    assert!(
        stderr.contains("CLOUDOS_LOGIN_MAX_FAILURES=\"0\" is not valid: expected 1 to"),
        "{stderr}"
    );
}

/// A client on its own loopback address (127.0.0.0/8 is all this machine's), so the
/// server sees distinct clients.
fn client_at(last: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, last]))
        .build()
        .unwrap()
}

/// 384 failed logins with distinct emails from 32 clients at once (neither the throttle
/// per email nor the one per client trips) leave the server answering everyone else:
/// password hashing waits its turn on blocking threads behind a bounded queue, and what
/// does not fit is told to come back (503 with Retry-After) instead of piling up.
#[tokio::test]
async fn a_login_flood_does_not_stall_other_requests() {
    let server = TestServer::native(ServerOptions::default());
    let client = cloudos_tests::http_client();
    let flood: Vec<_> = (0..32)
        .map(|c| {
            let (client, base) = (client_at(10 + c as u8), server.base.clone());
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                for i in 0..12 {
                    let res = client
                        .post(format!("{base}/auth/login"))
                        .json(&serde_json::json!({
                            "email": format!("flood-{c}-{i}@example.com"),
                            "password": "not the password",
                        }))
                        .send()
                        .await
                        .unwrap();
                    let retry = res.headers().contains_key("retry-after");
                    statuses.push((res.status(), retry));
                }
                statuses
            })
        })
        .collect();
    let mut waits = Vec::new();
    while !flood.iter().all(|f| f.is_finished()) {
        let started = Instant::now();
        let res = client
            .get(format!("{}/healthz", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        waits.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for f in flood {
        for (status, retry) in f.await.unwrap() {
            assert!(
                status == StatusCode::UNAUTHORIZED
                    || (status == StatusCode::SERVICE_UNAVAILABLE && retry),
                "{status}"
            );
        }
    }
    assert!(
        waits.len() >= 20,
        "the flood ended too soon to tell: {}",
        waits.len()
    );
    waits.sort();
    let p99 = waits[waits.len() * 99 / 100];
    let median = waits[waits.len() / 2];
    assert!(
        p99 < Duration::from_millis(250),
        "/healthz p99 {p99:?} (median {median:?}, {} samples)",
        waits.len()
    );
}

/// Links in answers never take their host from `X-Forwarded-Host` (anyone may send it);
/// with a public URL configured they use it. `/metrics` answers only to its token once one
/// is set.
#[tokio::test]
async fn links_ignore_forwarded_hosts_and_metrics_can_need_a_token() {
    let link = |server: &TestServer, user: &cloudos_tests::Client, id: &str| {
        let url = format!("{}/files/{id}", server.base);
        let req = user
            .http
            .get(url)
            .bearer_auth(user.token.clone().unwrap())
            .header("x-forwarded-host", "evil.example");
        async move {
            let meta: serde_json::Value = req.send().await.unwrap().json().await.unwrap();
            meta["download_url"].as_str().unwrap().to_owned()
        }
    };
    let plain = TestServer::native(ServerOptions::default());
    let ann = plain.new_user("ann").await.api;
    let f = ann
        .upload(None, &[("a.txt", b"a".to_vec())])
        .await
        .remove(0);
    let url = link(&plain, &ann, &f.id).await;
    assert!(url.starts_with(&plain.base), "{url}");
    assert_eq!(
        reqwest::get(format!("{}/metrics", plain.base))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    let token = "metrics-token-0123456789";
    let configured = TestServer::native(
        ServerOptions::default()
            .env("CLOUDOS_PUBLIC_URL", "https://os.example.com")
            .env("CLOUDOS_METRICS_TOKEN", token),
    );
    let bob = configured.new_user("bob").await.api;
    let f = bob
        .upload(None, &[("b.txt", b"b".to_vec())])
        .await
        .remove(0);
    let url = link(&configured, &bob, &f.id).await;
    assert!(url.starts_with("https://os.example.com/"), "{url}");
    let metrics = format!("{}/metrics", configured.base);
    let anon = reqwest::get(&metrics).await.unwrap();
    cloudos_tests::expect_problem(anon, 401, "/errors/unauthorized").await;
    let wrong = cloudos_tests::http_client()
        .get(&metrics)
        .bearer_auth("metrics-token-0123456780")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let scraped = cloudos_tests::http_client()
        .get(&metrics)
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(scraped.status(), StatusCode::OK);
}

/// One client trying many emails is slowed down: past its limit of failures every login
/// from it is 429 (before any hashing), whatever the email, while other clients sign in.
/// The server counts the TCP peer, never a forwarding header.
#[tokio::test]
async fn one_client_trying_many_emails_is_throttled_and_others_are_not() {
    let server =
        TestServer::native(ServerOptions::default().env("CLOUDOS_LOGIN_MAX_CLIENT_FAILURES", 5));
    let ann = server.new_user("ann").await;
    let login = |client: &reqwest::Client, email: &str, password: &str| {
        client
            .post(format!("{}/auth/login", server.base))
            .header("x-forwarded-for", "198.51.100.9")
            .json(&serde_json::json!({"email": email, "password": password}))
            .send()
    };
    let guesser = client_at(2);
    for i in 0..5 {
        let res = login(&guesser, &format!("guess{i}@example.com"), "x")
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let res = login(&guesser, &ann.email, "correct horse battery")
        .await
        .unwrap();
    assert!(res.headers().contains_key("retry-after"));
    cloudos_tests::expect_problem(res, 429, "/errors/rate-limited").await;
    let res = login(&client_at(3), &ann.email, "correct horse battery")
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "another client signs in");
}

/// The item cap answers as a typed problem, and an upload past it keeps nothing.
#[tokio::test]
async fn past_the_item_cap_a_user_is_told_why() {
    let server = TestServer::native(ServerOptions::default().env("CLOUDOS_MAX_ITEMS_PER_USER", 2));
    let ann = server.new_user("ann").await;
    let folder = |name: &str| {
        let body = serde_json::json!({"parent_id": null, "name": name});
        let api = ann.api.clone();
        async move { api.post("/folders", &body).await }
    };
    assert_eq!(folder("a").await.status(), StatusCode::CREATED);
    assert_eq!(folder("b").await.status(), StatusCode::CREATED);
    let p = cloudos_tests::expect_problem(folder("c").await, 413, "/errors/too-many-items").await;
    assert!(p.detail.contains("at most 2"), "{}", p.detail);
    let res = ann
        .api
        .upload_raw(None, &[("one.txt", b"1".to_vec())])
        .await;
    cloudos_tests::expect_problem(res, 413, "/errors/too-many-items").await;
    let list: serde_json::Value = ann.api.get("/files").await.json().await.unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
}
