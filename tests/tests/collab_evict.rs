//! A live room on the Worker survives its Durable Object's end with every acknowledged
//! edit. `cargo xtask test` runs the two halves around a kill: the first makes edits that
//! a second client received (so the room stored them), says so in the marker file, and
//! waits until its socket dies with the Worker (`wrangler dev` killed at once, before the
//! room's 2 s checkpoint); the second, on the restarted Worker, finds every edit in the
//! room, and in the file once it leaves. Ignored in plain `cargo test`: the kill is
//! xtask's.

use std::time::Duration;

use cloudos_tests::collab::{room_url, wait_for_content, YClient};
use cloudos_tests::TestServer;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Marker {
    token: String,
    file: String,
    text: String,
}

fn marker_path() -> String {
    std::env::var("CLOUDOS_TEST_EVICT_MARKER").expect("run by cargo xtask test")
}

#[tokio::test]
#[ignore = "run by cargo xtask test around a kill of the Worker"]
async fn edits_before_an_eviction() {
    let server = TestServer::suite();
    let ann = server.new_user("ann").await;
    let file = ann
        .api
        .upload(None, &[("kept.txt", b"kept".to_vec())])
        .await[0]
        .clone();
    let token = ann.api.token.clone().unwrap();
    let url = room_url(&server.base, &file.id, &format!("token={token}"));
    let mut a = YClient::connect(&url).await.unwrap();
    let mut b = YClient::connect(&url).await.unwrap();
    for word in [" every", " word", " stays"] {
        let at = a.text().len() as u32;
        a.insert(at, word).await;
    }
    b.insert(0, "> ").await;
    let text = "> kept every word stays";
    // Received by the other client: stored by the room, so acknowledged.
    b.wait_for(Duration::from_secs(5), |t| t == text).await;
    a.wait_for(Duration::from_secs(5), |t| t == text).await;
    // Still only in the room's log: the file has not been written (the kill comes next,
    // inside the room's 2 s checkpoint window).
    assert_eq!(ann.api.content(&file.id).await, b"kept");
    let marker = Marker {
        token,
        file: file.id.clone(),
        text: text.into(),
    };
    std::fs::write(marker_path(), serde_json::to_vec(&marker).unwrap()).unwrap();
    // The Worker dies under us now.
    a.wait_closed(Duration::from_secs(60)).await;
}

#[tokio::test]
#[ignore = "run by cargo xtask test after the Worker was killed and restarted"]
async fn edits_survive_the_eviction() {
    let server = TestServer::suite();
    let marker: Marker = serde_json::from_slice(&std::fs::read(marker_path()).unwrap()).unwrap();
    let url = room_url(
        &server.base,
        &marker.file,
        &format!("token={}", marker.token),
    );
    let c = YClient::connect(&url).await.unwrap();
    assert_eq!(c.text(), marker.text);
    c.close().await;
    let api = cloudos_tests::Client {
        base: server.base.clone(),
        http: cloudos_tests::http_client(),
        token: Some(marker.token.clone()),
    };
    wait_for_content(&api, &marker.file, &marker.text).await;
}
