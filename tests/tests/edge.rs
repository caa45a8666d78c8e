//! What only the Worker host has: its Cron Trigger, and sandboxes as Fly Machines relayed by
//! a `fetch` upgrade. These stories need the local edge, so they
//! are ignored in a plain `cargo test`; `cargo xtask test` starts `wrangler dev` and runs them
//! with `--ignored` after the API suite (CLOUDOS_TEST_BASE_URL, CLOUDOS_TEST_EDGE_LOG).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use cloudos_proto::terminal::{Role, Sandbox, SandboxShare, ServerControl};
use cloudos_proto::VersionList;
use cloudos_tests::agent::{refused, terminal_url, Term};
use cloudos_tests::sync::{until_path, when_in_home};
use cloudos_tests::{expect_problem, pattern, TestServer, User};
use reqwest::StatusCode;
use serde_json::json;

/// The sweep counts every upload in flight as stale (the suite's grace is 0) and the sandbox
/// stories' homes upload as they sync: the cron story runs while no sandbox runs.
static ALONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Where the Worker's console lines go (wrangler dev's output).
fn edge_log() -> PathBuf {
    PathBuf::from(
        std::env::var("CLOUDOS_TEST_EDGE_LOG").expect("CLOUDOS_TEST_EDGE_LOG names wrangler's log"),
    )
}

fn sweep_lines(log: &PathBuf) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        // The host's report, not the core's own JSON line about the same sweep.
        .filter(|l| l.contains("sweep: ") || l.contains("sweep failed"))
        .map(str::to_owned)
        .collect()
}

/// Fires the Cron Trigger through wrangler's `/__scheduled` and returns what the sweep
/// reported: (unreferenced blobs, stale uploads) removed; Trash entries and old versions are
/// counted first on the line.
async fn fire_cron(server: &TestServer, log: &PathBuf) -> (u64, u64) {
    let before = sweep_lines(log).len();
    let res = reqwest::get(format!("{}/__scheduled?cron=17+*+*+*+*", server.base))
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "wrangler ran the scheduled event"
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(line) = sweep_lines(log).get(before) {
            assert!(!line.contains("failed"), "the sweep failed: {line}");
            let numbers: Vec<u64> = line
                .split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect();
            assert_eq!(numbers.len(), 4, "unexpected sweep line: {line}");
            return (numbers[2], numbers[3]);
        }
        assert!(Instant::now() < deadline, "no sweep report within 15 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
#[ignore = "needs the local edge: cargo xtask test runs it"]
async fn the_cron_trigger_sweeps_orphaned_blobs_out_of_r2() {
    let _alone = ALONE.lock().await;
    let server = TestServer::suite();
    let log = edge_log();
    let u = server.new_user("cron").await.api;
    let keep = u
        .upload(None, &[("keep.bin", pattern(3000, 41))])
        .await
        .remove(0);
    let doomed = u
        .upload(None, &[("doomed.bin", pattern(3000, 42))])
        .await
        .remove(0);
    assert_eq!(
        u.delete(&format!("/files/{}", doomed.id)).await.status(),
        StatusCode::NO_CONTENT
    );
    // In the Trash its bytes are still its; emptied out of it, they are an orphan's.
    let (orphans, _) = fire_cron(&server, &log).await;
    assert_eq!(orphans, 0, "a file in the Trash keeps its blob");
    assert_eq!(u.delete("/trash").await.status(), StatusCode::NO_CONTENT);

    let (orphans, _) = fire_cron(&server, &log).await;
    assert!(orphans >= 1, "the deleted file's blob is an orphan");
    // Had the first sweep only listed, the second would find the same orphans again.
    assert_eq!(fire_cron(&server, &log).await, (0, 0));
    assert_eq!(
        u.content(&keep.id).await,
        pattern(3000, 41),
        "referenced blobs stay"
    );
}

/// Sandboxes on the Worker are Fly Machines: `cargo xtask test` points the Worker at the Fly
/// API's TEST DOUBLE, whose "Machines" run real agents. The Worker relays the terminal with a
/// `fetch` upgrade; who may attach is the core's rule, as natively.
#[tokio::test]
#[ignore = "needs the local edge: cargo xtask test runs it"]
async fn a_terminal_on_the_worker_runs_in_a_fly_machine() {
    let _alone = ALONE.lock().await;
    let server = TestServer::suite();
    let ann = server.new_user("edge-term").await;
    let bob = server.new_user("edge-watch").await;
    let url = |u: &User, sbx: &Sandbox, extra: &str| {
        terminal_url(
            &server.base,
            u.api.token.as_deref().unwrap(),
            &sbx.id,
            extra,
        )
    };
    let res = ann.api.post("/sandbox", &json!({})).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let sbx: Sandbox = res.json().await.unwrap();

    let mut t = Term::connect(&url(&ann, &sbx, "")).await;
    let out = t
        .run(
            "echo hello > note.txt; cat note.txt; echo E-$((2+3))",
            "E-5",
        )
        .await;
    assert!(out.contains("hello\r\n"), "{out}");
    t.resize(100, 30).await;
    let out = t.run("stty size; echo S-$((3+3))", "S-6").await;
    assert!(
        out.contains("30 100"),
        "a resize reaches the Machine's PTY: {out}"
    );

    let plain = ann.api.get(&format!("/terminal/{}/attach", sbx.id)).await;
    expect_problem(plain, 426, "/errors/upgrade-required").await;
    // Bob cannot attach without a share; with one he watches live and cannot type.
    assert_eq!(refused(&url(&bob, &sbx, "")).await, 404);
    let share: SandboxShare = ann
        .api
        .post(&format!("/sandbox/{}/share", sbx.id), &json!({}))
        .await
        .json()
        .await
        .unwrap();
    let mut watcher = Term::connect(&url(&bob, &sbx, &format!("&share={}", share.token))).await;
    assert!(matches!(
        watcher.hello(),
        Some(ServerControl::Hello {
            role: Role::Viewer,
            ..
        })
    ));
    let from = watcher.screen.len();
    t.run("echo LIVE-$((5*5))", "LIVE-25").await;
    watcher.expect_from(from, "LIVE-25").await;
    // A watcher asking for a terminal that is not running: the agent's 404, passed on.
    let idle = url(&bob, &sbx, &format!("&share={}&session=other", share.token));
    assert_eq!(refused(&idle).await, 404);
    // Revoking the link reaches the Machine's agent: the watcher is dropped at once.
    let res = ann.api.delete(&format!("/shares/{}", share.token)).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        watcher.ends_within(Duration::from_secs(3)).await,
        Some(cloudos_proto::terminal::CLOSE_REVOKED)
    );
    let revoked = url(&bob, &sbx, &format!("&share={}", share.token));
    assert_eq!(refused(&revoked).await, 410);
    t.close().await;

    // Stopping destroys the Machine; the next sandbox mounts the same volume as its home.
    let res = ann.api.delete(&format!("/sandbox/{}", sbx.id)).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = ann.api.post("/sandbox", &json!({})).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let next: Sandbox = res.json().await.unwrap();
    assert_ne!(next.id, sbx.id);
    let mut t = Term::connect(&url(&ann, &next, "")).await;
    let out = t.run("cat note.txt; echo N-$((4+4))", "N-8").await;
    assert!(
        out.contains("hello\r\n"),
        "the home outlives its Machine: {out}"
    );
    t.close().await;
    let res = ann.api.delete(&format!("/sandbox/{}", next.id)).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
}

/// On the Worker too the drive is the home: the Machine's agent syncs through the Worker's
/// public API with its sandbox's token, pulls when the user's event stream says Files
/// changed, and what a command writes becomes a version from the sandbox.
#[tokio::test]
#[ignore = "needs the local edge: cargo xtask test runs it"]
async fn on_the_worker_the_machines_home_is_the_drive() {
    let _alone = ALONE.lock().await;
    let server = TestServer::suite();
    let ann = server.new_user("edge-sync").await;
    ann.api
        .upload_one("from-files.txt", b"hello from Files\n")
        .await;
    let res = ann.api.post("/sandbox", &json!({})).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let sbx: Sandbox = res.json().await.unwrap();
    let mut t = Term::connect(&terminal_url(
        &server.base,
        ann.api.token.as_deref().unwrap(),
        &sbx.id,
        "",
    ))
    .await;
    let out = when_in_home(&mut t, "[ -f ~/from-files.txt ]", "cat ~/from-files.txt").await;
    assert!(out.contains("hello from Files"), "{out}");
    // A save in Files after the start reaches the Machine through the event stream.
    ann.api.upload_one("later.txt", b"saved later\n").await;
    let out = when_in_home(&mut t, "[ -f ~/later.txt ]", "cat ~/later.txt").await;
    assert!(out.contains("saved later"), "{out}");
    t.run(
        "echo from-the-machine > ~/made.txt && echo U-$((2+2))",
        "U-4",
    )
    .await;
    let made = until_path(&ann.api, "made.txt", Duration::from_secs(30), |i| {
        i.is_some()
    })
    .await
    .unwrap();
    assert_eq!(ann.api.content(&made.id).await, b"from-the-machine\n");
    let versions: VersionList = ann
        .api
        .get(&format!("/files/{}/versions", made.id))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(versions.items[0].origin, "sandbox");
    // Deleted by mistake in Files, it leaves the Machine's home and comes back from the Trash.
    let res = ann.api.delete(&format!("/files/{}", made.id)).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    when_in_home(&mut t, "[ ! -e ~/made.txt ]", "echo gone").await;
    let res = ann
        .api
        .post(&format!("/trash/{}/restore", made.id), &json!({}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let out = when_in_home(&mut t, "[ -f ~/made.txt ]", "cat ~/made.txt").await;
    assert!(out.contains("from-the-machine"), "{out}");
    t.close().await;
    let res = ann.api.delete(&format!("/sandbox/{}", sbx.id)).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
}

/// What the core logs through `tracing` reaches the Workers console as JSON lines: the
/// schema migrations the first request applied, and the sweep's own report.
#[tokio::test]
#[ignore = "needs the local edge: cargo xtask test runs it"]
async fn the_cores_log_lines_reach_the_workers_console() {
    let server = TestServer::suite();
    let log = edge_log();
    let u = server.new_user("logged").await.api;
    let f = u
        .upload(None, &[("gone.bin", pattern(2000, 43))])
        .await
        .remove(0);
    u.delete(&format!("/files/{}", f.id)).await;
    let (orphans, _) = fire_cron(&server, &log).await;
    assert!(orphans >= 1);
    let text = std::fs::read_to_string(&log).unwrap();
    let json_lines: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| l.find('{').map(|i| &l[i..]))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let said = |message: &str| {
        json_lines
            .iter()
            .any(|v| v["fields"]["message"] == message && v["level"] == "INFO")
    };
    assert!(said("applied migration"), "no migration line in:\n{text}");
    assert!(said("swept orphans"), "no sweep line in:\n{text}");
}

/// The desktop's page comes from the Worker's static assets with the same security headers
/// as on the native server (the build's `_headers`).
#[tokio::test]
#[ignore = "needs the local edge: cargo xtask test runs it"]
async fn the_desktop_page_on_the_edge_carries_its_security_headers() {
    let server = TestServer::suite();
    let res = reqwest::get(format!("{}/", server.base)).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    for (name, value) in cloudos_proto::DESKTOP_HEADERS {
        assert_eq!(
            res.headers().get(*name).and_then(|v| v.to_str().ok()),
            Some(*value),
            "{name}"
        );
    }
}
