//! Locks, as the people sharing a file meet them, on the native server and (`cargo xtask
//! test`'s edge pass) on the Worker: a colleague editing through a link locks the file and
//! the owner's edits and saves are refused with their name until they leave; the owner
//! breaks a lock; a lease ends by itself; a binary file is locked the same way; nobody
//! without edit rights locks anything.

use std::time::Duration;

use cloudos_proto::{FileLock, FileShare, LockState};
use cloudos_tests::collab::{owner_room_url, room_url, wait_for_content, YClient};
use cloudos_tests::{expect_not_found, expect_problem, TestServer, User};
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn share(u: &User, file: &str, mode: &str) -> String {
    let res = u
        .api
        .post(&format!("/files/{file}/share"), &json!({"mode": mode}))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json::<FileShare>().await.unwrap().token
}

fn lock_path(file: &str, share: Option<&str>) -> String {
    match share {
        Some(t) => format!("/files/{file}/lock?share={t}"),
        None => format!("/files/{file}/lock"),
    }
}

async fn take(
    u: &User,
    file: &str,
    share: Option<&str>,
    body: serde_json::Value,
) -> reqwest::Response {
    u.api.post(&lock_path(file, share), &body).await
}

async fn lock_of(u: &User, file: &str) -> Option<FileLock> {
    let res = u.api.get(&lock_path(file, None)).await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json::<LockState>().await.unwrap().lock
}

async fn put(u: &User, file: &str, version: i64, body: &[u8]) -> reqwest::Response {
    u.api
        .req(Method::PUT, &format!("/files/{file}/content"))
        .header("if-match", format!("\"{version}\""))
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
}

/// Ann's text file `plan.txt` ("plan"), and an edit link to it for Bob.
async fn ann_shares_a_plan_with_bob() -> (TestServer, User, User, cloudos_proto::File, String) {
    let server = TestServer::suite();
    let ann = server.new_user("Ann").await;
    let bob = server.new_user("Bob").await;
    let file = ann.api.upload_one("plan.txt", b"plan").await;
    let link = share(&ann, &file.id, "edit").await;
    (server, ann, bob, file, link)
}

/// Bob's room socket through the edit link.
async fn bob_joins(server: &TestServer, bob: &User, file: &str, link: &str) -> YClient {
    let token = bob.api.token.as_deref().unwrap();
    YClient::connect(&room_url(
        &server.base,
        file,
        &format!("share={link}&token={token}"),
    ))
    .await
    .unwrap()
}

#[tokio::test]
async fn a_lock_makes_a_file_read_only_for_everyone_else_until_its_holder_leaves() {
    let (server, ann, bob, file, link) = ann_shares_a_plan_with_bob().await;
    let mut b = bob_joins(&server, &bob, &file.id, &link).await;
    let mut a = YClient::connect(&owner_room_url(&server.base, &ann.api, &file.id))
        .await
        .unwrap();

    // Bob, editing through the link, locks the file.
    let res = take(&bob, &file.id, Some(&link), json!({})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let lock: FileLock = res.json().await.unwrap();
    assert!(lock.mine);
    assert_eq!(lock.holder.name, "Bob");
    // Ann sees who holds it, through the API and in the room (the room's own presence).
    let seen = lock_of(&ann, &file.id).await.expect("a lock");
    assert!(!seen.mine);
    assert_eq!(seen.holder.id, bob.id);
    a.wait_until(Duration::from_secs(10), |c| c.lock().is_some())
        .await;
    assert_eq!(a.lock().unwrap()["name"], "Bob");
    // She cannot take it, nor save over it: the problem names Bob.
    let refused = expect_problem(
        take(&ann, &file.id, None, json!({})).await,
        423,
        "/errors/locked",
    )
    .await;
    assert!(refused.detail.contains("Bob"), "{}", refused.detail);
    let refused = expect_problem(
        put(&ann, &file.id, file.version, b"mine").await,
        423,
        "/errors/locked",
    )
    .await;
    assert!(refused.detail.contains("Bob"), "{}", refused.detail);

    // Her edits in the room are dropped; Bob's go in.
    a.insert(0, "ANN ").await;
    b.insert(4, " B").await;
    a.wait_for(Duration::from_secs(10), |t| t.ends_with("plan B"))
        .await;
    b.pump(Duration::from_millis(500)).await;
    assert_eq!(b.text(), "plan B");

    // Bob leaves: his lock ends 10 s later (time to come back after a lost network), and
    // Ann is told when it has.
    b.close().await;
    let left = tokio::time::Instant::now();
    let deadline = left + Duration::from_secs(20);
    while lock_of(&ann, &file.id).await.is_some() {
        assert!(tokio::time::Instant::now() < deadline, "the lock stayed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        left.elapsed() >= Duration::from_secs(8),
        "a grace before it ends"
    );
    // Her next sync (the Editor's come every 15 s) hears it is gone, and sends what was
    // dropped, which now goes in.
    a.resync().await;
    a.wait_until(Duration::from_secs(10), |c| c.lock().is_none())
        .await;
    a.pump(Duration::from_millis(500)).await;
    a.close().await;
    wait_for_content(&ann.api, &file.id, "ANN plan B").await;
}

#[tokio::test]
async fn the_owner_breaks_a_lock_and_a_lease_ends_by_itself() {
    let (server, ann, bob, file, link) = ann_shares_a_plan_with_bob().await;

    // Taking and renewing a lock through a link is the holder's client at work, not an
    // opening of the link: the owner's count does not move.
    let opens = || async {
        let list = ann.api.links(&file.id).await;
        list[0].access_count
    };
    let before = opens().await;
    for _ in 0..3 {
        let res = take(&bob, &file.id, Some(&link), json!({})).await;
        assert_eq!(res.status(), StatusCode::OK);
    }
    assert_eq!(opens().await, before);

    // Ann breaks Bob's lock; then Bob takes it again and releases it himself.
    assert_eq!(
        take(&bob, &file.id, Some(&link), json!({})).await.status(),
        StatusCode::OK
    );
    let broken = ann.api.delete(&lock_path(&file.id, None)).await;
    assert_eq!(broken.status(), StatusCode::NO_CONTENT);
    assert_eq!(lock_of(&ann, &file.id).await, None);
    assert_eq!(
        take(&bob, &file.id, Some(&link), json!({})).await.status(),
        StatusCode::OK
    );
    // Ann's lock attempt does not take it from him, and neither does a renewal of hers.
    expect_problem(
        take(&ann, &file.id, None, json!({})).await,
        423,
        "/errors/locked",
    )
    .await;
    let released = bob.api.delete(&lock_path(&file.id, Some(&link))).await;
    assert_eq!(released.status(), StatusCode::NO_CONTENT);
    // Releasing what nobody holds is fine.
    let again = bob.api.delete(&lock_path(&file.id, Some(&link))).await;
    assert_eq!(again.status(), StatusCode::NO_CONTENT);

    // Ann locks it for the shortest lease (15 s); Bob cannot break it; it ends by itself,
    // and his saves and edits go in after it without anyone releasing it.
    let res = take(&ann, &file.id, None, json!({"ttl": 1})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let lock: FileLock = res.json().await.unwrap();
    let lease = lock.expires_at_ms - chrono_now_ms();
    assert!((10_000..=16_000).contains(&lease), "a lease of {lease} ms");
    let refused = bob.api.delete(&lock_path(&file.id, Some(&link))).await;
    expect_problem(refused, 423, "/errors/locked").await;
    let mut b = bob_joins(&server, &bob, &file.id, &link).await;
    b.wait_until(Duration::from_secs(10), |c| c.lock().is_some())
        .await;
    tokio::time::sleep(Duration::from_millis(
        (lock.expires_at_ms - chrono_now_ms()).max(0) as u64 + 500,
    ))
    .await;
    assert_eq!(lock_of(&ann, &file.id).await, None);
    b.insert(4, " B").await;
    b.pump(Duration::from_millis(300)).await;
    b.close().await;
    wait_for_content(&ann.api, &file.id, "plan B").await;
}

fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test]
async fn binary_files_lock_and_only_those_who_edit_lock_anything() {
    let server = TestServer::suite();
    let ann = server.new_user("Ann").await;
    let bob = server.new_user("Bob").await;
    let carol = server.new_user("Carol").await;
    // Any bytes that are not text: a room never holds them, a lock does.
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\xff\xfe".to_vec();
    let folder = ann
        .api
        .post("/folders", &json!({"parent_id": null, "name": "art"}))
        .await
        .json::<cloudos_proto::File>()
        .await
        .unwrap();
    let image = ann
        .api
        .upload(Some(&folder.id), &[("logo.png", png.clone())])
        .await[0]
        .clone();
    let edit = share(&ann, &folder.id, "edit").await;
    let view = share(&ann, &folder.id, "view").await;

    // Bob, through the folder's edit link, locks the image: Ann's new version waits.
    let res = take(&bob, &image.id, Some(&edit), json!({"ttl": 600})).await;
    assert_eq!(res.status(), StatusCode::OK);
    expect_problem(
        put(&ann, &image.id, image.version, &png).await,
        423,
        "/errors/locked",
    )
    .await;
    bob.api.delete(&lock_path(&image.id, Some(&edit))).await;
    assert_eq!(
        put(&ann, &image.id, image.version, &png).await.status(),
        StatusCode::OK
    );
    // Ann's own lock does not stop Ann.
    assert_eq!(
        take(&ann, &image.id, None, json!({})).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        put(&ann, &image.id, image.version + 1, &png).await.status(),
        StatusCode::OK
    );

    // A view link reads the lock but cannot take one; a folder is not locked; someone
    // without a link finds nothing; a bad body is a 400.
    let res = bob
        .api
        .get(&format!("/files/{}/lock?share={view}", image.id))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.json::<LockState>()
            .await
            .unwrap()
            .lock
            .unwrap()
            .holder
            .name,
        "Ann"
    );
    expect_problem(
        take(&bob, &image.id, Some(&view), json!({})).await,
        403,
        "/errors/forbidden",
    )
    .await;
    expect_problem(
        take(&ann, &folder.id, None, json!({})).await,
        403,
        "/errors/forbidden",
    )
    .await;
    expect_not_found(take(&carol, &image.id, None, json!({})).await).await;
    expect_not_found(carol.api.delete(&lock_path(&image.id, None)).await).await;
    let bad = ann
        .api
        .req(Method::POST, &lock_path(&image.id, None))
        .body("{not json")
        .send()
        .await
        .unwrap();
    expect_problem(bad, 400, "/errors/invalid-json").await;
    // Signed out, nothing.
    let res = server
        .client()
        .post(&lock_path(&image.id, Some(&edit)), &json!({}))
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}
