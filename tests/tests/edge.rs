//! What only the Worker host has (its Cron Trigger) or lacks (sandboxes). These stories need the local edge, so they
//! are ignored in a plain `cargo test`; `cargo xtask test` starts `wrangler dev` and runs them
//! with `--ignored` after the API suite (CLOUDOS_TEST_BASE_URL, CLOUDOS_TEST_EDGE_LOG).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use cloudos_tests::{expect_problem, pattern, TestServer};
use reqwest::StatusCode;

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
        .filter(|l| l.contains("orphan sweep"))
        .map(str::to_owned)
        .collect()
}

/// Fires the Cron Trigger through wrangler's `/__scheduled` and returns what the sweep
/// reported: (unreferenced blobs, stale uploads) removed.
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
            assert_eq!(numbers.len(), 2, "unexpected sweep line: {line}");
            return (numbers[0], numbers[1]);
        }
        assert!(Instant::now() < deadline, "no sweep report within 15 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
#[ignore = "needs the local edge: cargo xtask test runs it"]
async fn the_cron_trigger_sweeps_orphaned_blobs_out_of_r2() {
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

#[tokio::test]
#[ignore = "needs the local edge: cargo xtask test runs it"]
async fn the_worker_says_sandboxes_are_not_offered_there() {
    let server = TestServer::suite();
    let u = server.new_user("no-sandbox").await.api;
    let res = u.post("/sandbox", &serde_json::json!({})).await;
    expect_problem(res, 503, "/errors/sandboxes-unavailable").await;
}
