//! Live rooms (`WS /collab/:fileId`) with Yjs clients (yrs) on real sockets, on the native
//! server and (`cargo xtask test`'s edge pass) on the Worker's Durable Objects under
//! `wrangler dev`: two editors converge and the file gets their text, a save made without
//! the room merges with live edits, and only the owner's text files open; natively,
//! acknowledged edits survive a restart.

use std::time::Duration;

use cloudos_tests::collab::{owner_room_url, wait_for_content, YClient};
use cloudos_tests::{ServerOptions, TestServer, User};
use reqwest::StatusCode;

fn collab_url(server: &TestServer, u: &User, file: &str) -> String {
    owner_room_url(&server.base, &u.api, file)
}

/// Saves `text` through the API, based on `version`, as an editor without the room would.
async fn save(u: &User, file: &str, version: i64, text: &str) {
    let res = u
        .api
        .req(reqwest::Method::PUT, &format!("/files/{file}/content"))
        .header("if-match", format!("\"{version}\""))
        .body(text.to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn two_editors_converge_and_the_file_gets_their_text() {
    let server = TestServer::suite();
    let ann = server.new_user("ann").await;
    let file = ann
        .api
        .upload(None, &[("notes.txt", b"hello".to_vec())])
        .await[0]
        .clone();
    let url = collab_url(&server, &ann, &file.id);
    let mut a = YClient::connect(&url).await.unwrap();
    let mut b = YClient::connect(&url).await.unwrap();
    assert_eq!((a.text().as_str(), b.text().as_str()), ("hello", "hello"));

    a.insert(5, " world").await;
    b.wait_for(Duration::from_secs(5), |t| t == "hello world")
        .await;
    // Both type at once, each on what it has seen.
    for i in 0..20 {
        a.insert(0, &format!("a{i} ")).await;
        let end = b.text().len() as u32;
        b.insert(end, &format!(" b{i}")).await;
    }
    let mut text = String::new();
    for _ in 0..100 {
        a.pump(Duration::from_millis(50)).await;
        b.pump(Duration::from_millis(50)).await;
        if a.text() == b.text() && a.text().contains("a19") && a.text().contains("b19") {
            text = a.text();
            break;
        }
    }
    assert!(
        !text.is_empty(),
        "diverged: {:?} vs {:?}",
        a.text(),
        b.text()
    );
    assert!(text.contains("hello world"), "{text}");
    a.close().await;
    b.close().await;
    wait_for_content(&ann.api, &file.id, &text).await;
    let after: cloudos_proto::File = ann
        .api
        .get(&format!("/files/{}", file.id))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        after.version > file.version,
        "a new version: {}",
        after.version
    );

    // The room starts again from what it stored.
    let c = YClient::connect(&url).await.unwrap();
    assert_eq!(c.text(), text);
}

#[tokio::test]
async fn acknowledged_edits_survive_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let opts = || ServerOptions {
        data_dir: Some(data.path().to_owned()),
        ..ServerOptions::default()
    };
    let server = TestServer::native(opts());
    let ann = server.new_user("ann").await;
    let file = ann
        .api
        .upload(None, &[("draft.md", b"# Draft\n".to_vec())])
        .await[0]
        .clone();
    let url = collab_url(&server, &ann, &file.id);
    let mut a = YClient::connect(&url).await.unwrap();
    let mut b = YClient::connect(&url).await.unwrap();
    a.insert(8, "kept line\n").await;
    // The room passes an edit on only once it is stored: b seeing it is the acknowledgement.
    b.wait_for(Duration::from_secs(5), |t| t.contains("kept line"))
        .await;
    drop(server); // killed: no checkpoint, no goodbye
    let server = TestServer::native(opts());
    let ann = server.login_as(&ann).await;
    let again = YClient::connect(&collab_url(&server, &ann, &file.id))
        .await
        .unwrap();
    assert_eq!(again.text(), "# Draft\nkept line\n");
}

#[tokio::test]
async fn a_save_made_without_the_room_merges_with_live_edits() {
    let server = TestServer::suite();
    let ann = server.new_user("ann").await;
    let file = ann
        .api
        .upload(None, &[("story.txt", b"once upon a time".to_vec())])
        .await[0]
        .clone();
    let mut a = YClient::connect(&collab_url(&server, &ann, &file.id))
        .await
        .unwrap();
    a.insert(0, "> ").await;
    // A save through the API while the room is live (based on the file's version).
    save(
        &ann,
        &file.id,
        file.version,
        "once upon a time, there was a room",
    )
    .await;
    // When the room next checkpoints, the save arrives as a concurrent edit: both kept.
    let both = "> once upon a time, there was a room";
    a.wait_for(Duration::from_secs(10), |t| t == both).await;
    a.close().await;
    wait_for_content(&ann.api, &file.id, both).await;
}

#[tokio::test]
async fn only_the_owners_text_files_open() {
    let server = TestServer::suite();
    let ann = server.new_user("ann").await;
    let bob = server.new_user("bob").await;
    let file = ann.api.upload(None, &[("a.txt", b"a".to_vec())]).await[0].clone();
    let binary = ann
        .api
        .upload(None, &[("b.bin", vec![0xff, 0xfe, 0x00])])
        .await[0]
        .clone();
    let folder = ann.api.mkdir(None, "dir").await;
    assert_eq!(
        YClient::connect(&collab_url(&server, &bob, &file.id))
            .await
            .err(),
        Some(404)
    );
    assert_eq!(
        YClient::connect(&collab_url(&server, &ann, &binary.id))
            .await
            .err(),
        Some(422)
    );
    assert_eq!(
        YClient::connect(&collab_url(&server, &ann, &folder.id))
            .await
            .err(),
        Some(422)
    );
    let anonymous = format!(
        "{}/collab/{}",
        server.base.replacen("http", "ws", 1),
        file.id
    );
    assert_eq!(YClient::connect(&anonymous).await.err(), Some(401));
}

/// A save made while no room was open is in the room from its first frame.
#[tokio::test]
async fn a_room_opens_with_saves_made_while_it_was_closed() {
    let server = TestServer::suite();
    let ann = server.new_user("ann").await;
    let file = ann.api.upload(None, &[("todo.txt", b"one".to_vec())]).await[0].clone();
    let url = collab_url(&server, &ann, &file.id);
    let mut a = YClient::connect(&url).await.unwrap();
    a.insert(3, " two").await;
    a.close().await;
    wait_for_content(&ann.api, &file.id, "one two").await;
    let now: cloudos_proto::File = ann
        .api
        .get(&format!("/files/{}", file.id))
        .await
        .json()
        .await
        .unwrap();
    save(&ann, &file.id, now.version, "one two three").await;
    let b = YClient::connect(&url).await.unwrap();
    assert_eq!(b.text(), "one two three");
}

/// A save through the API reaches editors who are not typing (their room has nothing to
/// checkpoint), merged at once.
#[tokio::test]
async fn a_save_reaches_an_idle_room_at_once() {
    let server = TestServer::suite();
    let ann = server.new_user("ann").await;
    let file = ann
        .api
        .upload(None, &[("idle.txt", b"draft".to_vec())])
        .await[0]
        .clone();
    let mut a = YClient::connect(&collab_url(&server, &ann, &file.id))
        .await
        .unwrap();
    save(&ann, &file.id, file.version, "final draft").await;
    a.wait_for(Duration::from_secs(10), |t| t == "final draft")
        .await;
    // A save based on a version the room has moved past is still refused.
    let stale = ann
        .api
        .req(reqwest::Method::PUT, &format!("/files/{}/content", file.id))
        .header("if-match", format!("\"{}\"", file.version))
        .body("lost")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
    a.close().await;
}
