//! Helpers of the sync stories: the drive's tree by path, and waiting for it to show what a
//! sandbox wrote.

use std::time::Duration;

use cloudos_proto::{Tree, TreeItem};

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

/// The shell line that waits until `test` holds in the sandbox (up to 20 s), then prints
/// `marker`'s computed form; `marker` is `NAME-$((a+b))`-style so the echo of the typed
/// line never matches.
pub fn shell_until(test: &str, then: &str, marker: &str) -> String {
    format!("for i in $(seq 200); do {test} && break; sleep 0.1; done; {then}; echo {marker}")
}
