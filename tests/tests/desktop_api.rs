//! The desktop's endpoints: app manifests, the saved layout, notifications, search and
//! breadcrumbs. Part of the API suite (runs against `CLOUDOS_TEST_BASE_URL` too).

use cloudos_proto::{AppList, DesktopLayout, FileList, NotificationList};
use cloudos_tests::{expect_not_found, expect_problem, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn apps_are_manifests_and_files_is_pinned() {
    let server = TestServer::suite();
    let ann = server.new_user("ann").await;
    let apps: AppList = ann.api.get("/apps").await.json().await.unwrap();
    let files = apps.apps.iter().find(|a| a.id == "files").expect("Files");
    assert!(files.pinned && files.entry == "builtin:files");
    assert!(files.permissions.iter().any(|p| p == "files:write"));
    assert!(apps.apps.iter().any(|a| a.id == "viewer"));
    expect_problem(
        server.client().get("/apps").await,
        401,
        "/errors/unauthorized",
    )
    .await;
}

#[tokio::test]
async fn the_layout_is_saved_per_user_and_bounded() {
    let server = TestServer::suite();
    let ann = server.new_user("ann").await;
    let bob = server.new_user("bob").await;
    let empty: DesktopLayout = ann.api.get("/desktop").await.json().await.unwrap();
    assert_eq!(empty.layout, json!({}));
    assert!(empty.updated_at.is_none());

    let layout =
        json!({"windows": [{"app": "files", "rect": {"x": 10, "y": 20, "w": 800, "h": 500}}]});
    let res = ann
        .api
        .req(Method::PUT, "/desktop")
        .json(&json!({ "layout": layout }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let saved: DesktopLayout = ann.api.get("/desktop").await.json().await.unwrap();
    assert_eq!(saved.layout, layout);
    assert!(saved.updated_at.is_some());
    let theirs: DesktopLayout = bob.api.get("/desktop").await.json().await.unwrap();
    assert_eq!(theirs.layout, json!({}), "layouts are per user");

    let not_object = ann
        .api
        .req(Method::PUT, "/desktop")
        .json(&json!({ "layout": [1, 2] }))
        .send()
        .await
        .unwrap();
    expect_problem(not_object, 400, "/errors/bad-request").await;
    let huge = ann
        .api
        .req(Method::PUT, "/desktop")
        .json(&json!({ "layout": { "x": "a".repeat(70_000) } }))
        .send()
        .await
        .unwrap();
    expect_problem(huge, 413, "/errors/too-large").await;
    let kept: DesktopLayout = ann.api.get("/desktop").await.json().await.unwrap();
    assert_eq!(kept.layout, layout, "a refused save loses nothing");
}

#[tokio::test]
async fn an_upload_notifies_and_notifications_can_be_read() {
    let server = TestServer::suite();
    let ann = server.new_user("ann").await;
    let bob = server.new_user("bob").await;
    let files = ann
        .api
        .upload(None, &[("report.pdf", b"%PDF".to_vec())])
        .await;
    ann.api
        .upload(None, &[("a.txt", b"a".to_vec()), ("b.txt", b"b".to_vec())])
        .await;

    let list: NotificationList = ann.api.get("/notifications").await.json().await.unwrap();
    assert_eq!(list.unread, 2);
    assert_eq!(list.items.len(), 2);
    assert_eq!(list.items[0].title, "2 uploads finished", "newest first");
    assert_eq!(list.items[0].body, "a.txt, b.txt");
    assert_eq!(list.items[1].kind, "upload.finished");
    assert_eq!(list.items[1].body, "report.pdf");
    assert_eq!(list.items[1].file_id.as_deref(), Some(files[0].id.as_str()));
    let theirs: NotificationList = bob.api.get("/notifications").await.json().await.unwrap();
    assert_eq!(theirs.unread, 0);
    assert!(theirs.items.is_empty());

    // Bob cannot mark Ann's notification read.
    let one = list.items[1].id.clone();
    bob.api
        .post("/notifications/read", &json!({ "ids": [one] }))
        .await;
    let still: NotificationList = ann.api.get("/notifications").await.json().await.unwrap();
    assert_eq!(still.unread, 2);

    let after: NotificationList = ann
        .api
        .post("/notifications/read", &json!({ "ids": [one] }))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(after.unread, 1);
    assert!(after.items.iter().any(|n| n.id == one && n.read));
    let all: NotificationList = ann
        .api
        .post("/notifications/read", &json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all.unread, 0);
}

#[tokio::test]
async fn search_is_fuzzy_ranked_and_private() {
    let server = TestServer::suite();
    let ann = server.new_user("ann").await;
    let bob = server.new_user("bob").await;
    let reports = ann.api.mkdir(None, "Quarterly reports").await;
    ann.api
        .upload(
            Some(&reports.id),
            &[("report.md", b"r".to_vec()), ("50%_off.txt", b"x".to_vec())],
        )
        .await;
    bob.api.mkdir(None, "report of bob").await;

    let names = |l: FileList| l.items.into_iter().map(|f| f.name).collect::<Vec<_>>();
    let found: FileList = ann
        .api
        .get("/files/search?q=report")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        names(found),
        ["report.md", "Quarterly reports"],
        "shorter first; never Bob's"
    );
    let fuzzy: FileList = ann
        .api
        .get("/files/search?q=qrtly")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(names(fuzzy), ["Quarterly reports"]);
    let literal: FileList = ann
        .api
        .get("/files/search?q=50%25_")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(names(literal), ["50%_off.txt"], "% and _ are not wildcards");
    let none: FileList = ann
        .api
        .get("/files/search?q=zzz")
        .await
        .json()
        .await
        .unwrap();
    assert!(none.items.is_empty());
    let limited: FileList = ann
        .api
        .get("/files/search?q=r&limit=1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(limited.items.len(), 1);
    let long = "a".repeat(101);
    expect_problem(
        ann.api.get(&format!("/files/search?q={long}")).await,
        400,
        "/errors/bad-request",
    )
    .await;
}

#[tokio::test]
async fn ancestors_give_the_path_for_breadcrumbs() {
    let server = TestServer::suite();
    let ann = server.new_user("ann").await;
    let bob = server.new_user("bob").await;
    let a = ann.api.mkdir(None, "a").await;
    let b = ann.api.mkdir(Some(&a.id), "b").await;
    let c = ann.api.mkdir(Some(&b.id), "c").await;
    let path: FileList = ann
        .api
        .get(&format!("/files/{}/ancestors", c.id))
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<_> = path.items.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["a", "b"], "root first, down to the parent");
    let top: FileList = ann
        .api
        .get(&format!("/files/{}/ancestors", a.id))
        .await
        .json()
        .await
        .unwrap();
    assert!(top.items.is_empty());
    expect_not_found(bob.api.get(&format!("/files/{}/ancestors", c.id)).await).await;
}
