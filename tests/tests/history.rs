//! History and the Trash over HTTP, on the native server and (`cargo xtask test`'s edge
//! pass) on the Worker under `wrangler dev`: every save is a version with its origin and
//! authors, any version reads back byte for byte and can be restored; a folder deleted by
//! mistake comes back from the Trash whole, with its history.

use std::time::Duration;

use cloudos_proto::{File, FileShare, FileVersion, TrashList, VersionList};
use cloudos_tests::collab::{link_room_url, owner_room_url, wait_for_content, YClient};
use cloudos_tests::{expect_not_found, expect_problem, pattern, sha256_hex, Client, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn put(u: &Client, id: &str, version: i64, bytes: Vec<u8>) -> File {
    let res = u
        .req(Method::PUT, &format!("/files/{id}/content"))
        .header("if-match", format!("\"{version}\""))
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

async fn versions(u: &Client, id: &str) -> Vec<FileVersion> {
    let res = u.get(&format!("/files/{id}/versions")).await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json::<VersionList>().await.unwrap().items
}

async fn version_bytes(u: &Client, id: &str, v: i64) -> Vec<u8> {
    let res = u.get(&format!("/files/{id}/versions/{v}/content")).await;
    assert_eq!(res.status(), StatusCode::OK);
    res.bytes().await.unwrap().to_vec()
}

async fn trash(u: &Client) -> TrashList {
    u.get("/trash").await.json().await.unwrap()
}

#[tokio::test]
async fn every_save_is_a_version_and_an_old_one_comes_back_exactly() {
    let server = TestServer::suite();
    let ann = server.new_user("ann").await;
    let (v1, v2, v3) = (pattern(70_000, 1), pattern(50_000, 2), pattern(90_000, 3));
    let file = ann.api.upload_one("data.bin", &v1).await;
    put(&ann.api, &file.id, 1, v2.clone()).await;
    put(&ann.api, &file.id, 2, v3.clone()).await;

    let listed = versions(&ann.api, &file.id).await;
    let seen: Vec<_> = listed
        .iter()
        .map(|v| (v.version, v.origin.as_str(), v.size, v.current))
        .collect();
    assert_eq!(
        seen,
        [
            (3, "editor", 90_000, true),
            (2, "editor", 50_000, false),
            (1, "upload", 70_000, false)
        ]
    );
    assert_eq!(
        listed[2].checksum.as_deref(),
        Some(sha256_hex(&v1).as_str())
    );
    assert_eq!(listed[0].authors[0].name, "ann");
    assert_eq!(version_bytes(&ann.api, &file.id, 1).await, v1);
    // Ranges and entity tags work as on the current content.
    let res = ann
        .api
        .req(
            Method::GET,
            &format!("/files/{}/versions/2/content", file.id),
        )
        .header("range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(res.headers()["etag"], "\"2\"");
    assert_eq!(res.bytes().await.unwrap().to_vec(), v2[10..20].to_vec());

    let res = ann
        .api
        .post(
            &format!("/files/{}/versions/1/restore", file.id),
            &json!({}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let restored: File = res.json().await.unwrap();
    assert_eq!(restored.version, 4);
    assert_eq!(ann.api.content(&file.id).await, v1, "the exact bytes");
    let newest = &versions(&ann.api, &file.id).await[0];
    assert_eq!((newest.version, newest.origin.as_str()), (4, "restore"));
    assert_eq!(
        ann.api.used_bytes().await,
        70_000 + 50_000 + 90_000 + 70_000
    );

    // Another user's ids, a missing version, a folder: clear errors.
    let eve = server.new_user("eve").await;
    for path in [
        format!("/files/{}/versions", file.id),
        format!("/files/{}/versions/1/content", file.id),
    ] {
        expect_not_found(eve.api.get(&path).await).await;
    }
    let res = eve
        .api
        .post(
            &format!("/files/{}/versions/1/restore", file.id),
            &json!({}),
        )
        .await;
    expect_not_found(res).await;
    expect_not_found(
        ann.api
            .get(&format!("/files/{}/versions/99/content", file.id))
            .await,
    )
    .await;
    expect_not_found(
        eve.api
            .delete(&format!("/files/{}/versions/2", file.id))
            .await,
    )
    .await;

    // An old version can be removed early, giving its bytes back; the current one cannot.
    let res = ann
        .api
        .delete(&format!("/files/{}/versions/2", file.id))
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(ann.api.used_bytes().await, 70_000 + 90_000 + 70_000);
    let res = ann
        .api
        .delete(&format!("/files/{}/versions/4", file.id))
        .await;
    expect_problem(res, 409, "/errors/conflict").await;
    let kept: Vec<i64> = versions(&ann.api, &file.id)
        .await
        .iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(kept, [4, 3, 1]);
    let folder = ann.api.mkdir(None, "d").await;
    let res = ann.api.get(&format!("/files/{}/versions", folder.id)).await;
    expect_problem(res, 400, "/errors/invalid").await;
}

#[tokio::test]
async fn a_project_deleted_by_mistake_comes_back_from_the_trash_with_its_history() {
    let server = TestServer::suite();
    let ann = server.new_user("ann").await;
    let project = ann.api.mkdir(None, "project").await;
    let src = ann.api.mkdir(Some(&project.id), "src").await;
    let files = ann
        .api
        .upload(
            Some(&src.id),
            &[
                ("app.js", b"run()".to_vec()),
                ("logo.bin", pattern(30_000, 7)),
            ],
        )
        .await;
    put(&ann.api, &files[0].id, 1, b"run(fast)".to_vec()).await;
    let res = ann.api.delete(&format!("/files/{}", project.id)).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert!(ann.api.list(None).await.is_empty());
    for f in &files {
        expect_not_found(ann.api.get(&format!("/files/{}", f.id)).await).await;
    }

    let listed = trash(&ann.api).await;
    assert_eq!(listed.items.len(), 1);
    let entry = &listed.items[0];
    assert_eq!(
        (entry.id.as_str(), entry.path.as_str(), entry.items),
        (project.id.as_str(), "/project", 3)
    );
    assert_eq!(entry.size, 9 + 30_000);
    assert_eq!(listed.bytes, 5 + 9 + 30_000);
    assert!(entry.expires_at > entry.deleted_at);
    // Not another user's to see or touch.
    let eve = server.new_user("eve").await;
    assert!(trash(&eve.api).await.items.is_empty());
    let res = eve
        .api
        .post(&format!("/trash/{}/restore", project.id), &json!({}))
        .await;
    expect_not_found(res).await;
    expect_not_found(eve.api.delete(&format!("/trash/{}", project.id)).await).await;

    // A new "project" took the name meanwhile: the old one comes back beside it.
    ann.api.mkdir(None, "project").await;
    let res = ann
        .api
        .post(&format!("/trash/{}/restore", project.id), &json!({}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let back: File = res.json().await.unwrap();
    assert_eq!(
        (back.id, back.name.as_str()),
        (project.id.clone(), "project (restored)")
    );
    assert_eq!(ann.api.content(&files[0].id).await, b"run(fast)");
    assert_eq!(ann.api.content(&files[1].id).await, pattern(30_000, 7));
    assert_eq!(version_bytes(&ann.api, &files[0].id, 1).await, b"run()");
    assert!(trash(&ann.api).await.items.is_empty());
    let res = ann
        .api
        .post(&format!("/trash/{}/restore", project.id), &json!({}))
        .await;
    expect_not_found(res).await;
}

/// A live room's write-back is a version with origin "collab" that names everyone who
/// typed: here the owner and a colleague with an edit link.
#[tokio::test]
async fn a_rooms_write_back_names_its_editors() {
    let server = TestServer::suite();
    let ann = server.new_user("ann").await;
    let bob = server.new_user("bob").await;
    let file = ann.api.upload_one("plan.md", b"plan").await;
    let link: FileShare = ann
        .api
        .post(
            &format!("/files/{}/share", file.id),
            &json!({"mode": "edit"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let mut a = YClient::connect(&owner_room_url(&server.base, &ann.api, &file.id))
        .await
        .unwrap();
    let bob_url = link_room_url(&server.base, &bob.api, &file.id, &link.token);
    let mut b = YClient::connect(&bob_url).await.unwrap();
    a.insert(4, " A").await;
    b.wait_for(Duration::from_secs(5), |t| t == "plan A").await;
    b.insert(6, " B").await;
    a.wait_for(Duration::from_secs(5), |t| t == "plan A B")
        .await;
    a.close().await;
    b.close().await;
    wait_for_content(&ann.api, &file.id, "plan A B").await;

    // One version, or more when the room wrote back between the two edits.
    let history = versions(&ann.api, &file.id).await;
    assert_eq!(history[0].origin, "collab");
    let mut names: Vec<_> = history
        .iter()
        .filter(|v| v.origin == "collab")
        .flat_map(|v| v.authors.iter().map(|a| a.name.as_str()))
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names, ["ann", "bob"]);
}

/// A file deleted while people edit it: their sockets close at once (4404), nobody joins
/// while it is in the Trash, and restored, its room opens again with every edit it had
/// stored, even one not yet written into the file.
#[tokio::test]
async fn a_file_deleted_while_edited_closes_its_room_and_comes_back_with_every_edit() {
    let server = TestServer::suite();
    let ann = server.new_user("ann").await;
    let file = ann.api.upload_one("draft.md", b"draft").await;
    let url = owner_room_url(&server.base, &ann.api, &file.id);
    let mut a = YClient::connect(&url).await.unwrap();
    let mut b = YClient::connect(&url).await.unwrap();
    a.insert(5, " one").await;
    b.wait_for(Duration::from_secs(5), |t| t == "draft one")
        .await;

    let res = ann.api.delete(&format!("/files/{}", file.id)).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(a.wait_closed(Duration::from_secs(10)).await, Some(4404));
    assert_eq!(b.wait_closed(Duration::from_secs(10)).await, Some(4404));
    assert_eq!(YClient::connect(&url).await.err(), Some(404));

    let res = ann
        .api
        .post(&format!("/trash/{}/restore", file.id), &json!({}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let c = YClient::connect(&url).await.unwrap();
    assert_eq!(c.text(), "draft one");
    c.close().await;
    wait_for_content(&ann.api, &file.id, "draft one").await;
}
