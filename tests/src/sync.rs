//! Helpers of the sync stories: the drive's tree by path, and waiting for it to show what a
//! sandbox wrote.

use std::time::Duration;

use cloudos_proto::{Tree, TreeItem};

use crate::agent::Term;
use crate::Client;

/// The caller's whole tree (`GET /files/tree`).
pub async fn tree(api: &Client) -> Vec<TreeItem> {
    let res = api.get("/files/tree").await;
    assert_eq!(res.status(), 200, "GET /files/tree");
    res.json::<Tree>().await.expect("a tree").items
}

/// Waits until the drive's entry at `path` satisfies `done` (`None`: no entry), within
/// `within`; returns it.
pub async fn until_path(
    api: &Client,
    path: &str,
    within: Duration,
    done: impl Fn(Option<&TreeItem>) -> bool,
) -> Option<TreeItem> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let items = tree(api).await;
        let item = items.into_iter().find(|i| i.path == path);
        if done(item.as_ref()) {
            return item;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {path} in the drive; last seen: {item:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Types, in the terminal, a line that waits until `test` holds in the sandbox (up to
/// 20 s), then runs `then`; returns what the screen showed. The line ends with a marker the
/// shell computes (`$((n+1))`), so the echo of the typed line never matches it.
pub async fn when_in_home(t: &mut Term, test: &str, then: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1000);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let line = format!(
        "for i in $(seq 200); do {test} && break; sleep 0.1; done; {then}; echo WHEN-$(({n}+1))"
    );
    t.run(&line, &format!("WHEN-{}", n + 1)).await
}
