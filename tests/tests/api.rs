//! The API suite: every endpoint of shared/API.md that the foundation serves, its success
//! path and its failures. Runs against `CLOUDOS_TEST_BASE_URL`, or a native server it starts.

use cloudos_proto::{File, FileKind};
use cloudos_tests::{
    expect_not_found, expect_problem, pattern, sha256_hex, unique_email, TestServer,
    SUITE_QUOTA_BYTES,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn the_user_story_from_signup_to_delete() {
    let server = TestServer::suite();
    let anon = server.client();
    let email = unique_email("ann");
    let res = anon
        .post(
            "/auth/signup",
            &json!({"email": email, "password": "s3cret-pass", "name": "Ann"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = anon
        .post(
            "/auth/login",
            &json!({"email": email, "password": "s3cret-pass"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let login: Value = res.json().await.unwrap();
    let mut ann = anon.clone();
    ann.token = Some(login["token"].as_str().unwrap().to_owned());

    let docs = ann.mkdir(None, "Documents").await;
    let a = pattern(300_000, 1);
    let b = b"# Notes\n".to_vec();
    let uploaded = ann
        .upload(None, &[("photo.bin", a.clone()), ("notes.md", b.clone())])
        .await;
    assert_eq!(uploaded.len(), 2);
    let names: Vec<_> = ann.list(None).await.into_iter().map(|f| f.name).collect();
    assert_eq!(
        names,
        ["Documents", "notes.md", "photo.bin"],
        "folders first, then by name"
    );
    assert_eq!(ann.content(&uploaded[0].id).await, a);
    assert_eq!(ann.content(&uploaded[1].id).await, b);

    let renamed: File = ann
        .patch(
            &format!("/files/{}", uploaded[1].id),
            &json!({"name": "todo.md"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(renamed.name, "todo.md");
    let moved: File = ann
        .patch(
            &format!("/files/{}", renamed.id),
            &json!({"parent_id": docs.id}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(moved.parent_id.as_deref(), Some(docs.id.as_str()));
    assert_eq!(ann.list(Some(&docs.id)).await[0].name, "todo.md");

    let bob = server.new_user("bob").await;
    for id in [&docs.id, &uploaded[0].id, &moved.id] {
        expect_not_found(bob.api.get(&format!("/files/{id}")).await).await;
        expect_not_found(bob.api.get(&format!("/files/{id}/content")).await).await;
        expect_not_found(bob.api.delete(&format!("/files/{id}")).await).await;
    }
    assert!(bob.api.list(None).await.is_empty());

    assert_eq!(
        ann.delete(&format!("/files/{}", docs.id)).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        ann.delete(&format!("/files/{}", uploaded[0].id))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert!(ann.list(None).await.is_empty());
    // Both wait in the Trash, and count, until it is emptied.
    let trash: Value = ann.get("/trash").await.json().await.unwrap();
    assert_eq!(trash["items"].as_array().unwrap().len(), 2, "{trash}");
    assert!(ann.used_bytes().await > 0);
    assert_eq!(ann.delete("/trash").await.status(), StatusCode::NO_CONTENT);
    assert_eq!(ann.used_bytes().await, 0);
}

#[tokio::test]
async fn ops_endpoints_and_openapi_list_every_route() {
    let server = TestServer::suite();
    let anon = server.client();
    let health: Value = anon.get("/healthz").await.json().await.unwrap();
    assert_eq!(health["status"], "ok");
    let doc: Value = anon.get("/openapi.json").await.json().await.unwrap();
    let paths = doc["paths"].as_object().unwrap();
    let expected = [
        ("/auth/signup", "post"),
        ("/auth/login", "post"),
        ("/me", "get"),
        ("/files", "get"),
        ("/files", "post"),
        ("/folders", "post"),
        ("/files/{id}", "get"),
        ("/files/{id}", "patch"),
        ("/files/{id}", "delete"),
        ("/files/{id}/content", "get"),
        ("/files/{id}/content", "put"),
        ("/healthz", "get"),
        ("/metrics", "get"),
        ("/openapi.json", "get"),
    ];
    for (path, method) in expected {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing in /openapi.json"
        );
    }
    // Native hosts count requests; a Worker's isolates share no counters and say so.
    let res = anon.get("/metrics").await;
    if server.is_native() || res.status() == StatusCode::OK {
        assert_eq!(res.status(), StatusCode::OK);
        let text = res.text().await.unwrap();
        assert!(text.contains("cloudos_http_requests_total{"), "{text}");
        assert!(text.contains("route=\"/healthz\""), "{text}");
    } else {
        expect_problem(res, 501, "/errors/metrics-unavailable").await;
    }
    expect_not_found(anon.get("/no/such/endpoint").await).await;
}

#[tokio::test]
async fn signup_login_and_me() {
    let server = TestServer::suite();
    let anon = server.client();
    let email = unique_email("Zoë");
    let res = anon
        .post(
            "/auth/signup",
            &json!({"email": email, "password": "password1", "name": "Zoë Ñandú"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    assert!(body["token"].as_str().unwrap().len() > 20);
    assert_eq!(body["user"]["email"], email.as_str());
    assert_eq!(body["user"]["name"], "Zoë Ñandú");

    let mut me_client = anon.clone();
    me_client.token = Some(body["token"].as_str().unwrap().to_owned());
    let me: Value = me_client.get("/me").await.json().await.unwrap();
    for field in [
        "id",
        "email",
        "name",
        "avatar_url",
        "created_at",
        "quota_bytes",
        "used_bytes",
    ] {
        assert!(me.get(field).is_some(), "/me lacks {field}");
    }
    assert_eq!(me["id"], body["user"]["id"]);
    assert_eq!(me["used_bytes"], 0);
    assert!(me["quota_bytes"].as_u64().unwrap() > 0);

    expect_problem(
        anon.post(
            "/auth/signup",
            &json!({"email": email.to_uppercase(), "password": "password1", "name": "X"}),
        )
        .await,
        409,
        "/errors/email-taken",
    )
    .await;
    for bad in [
        json!({"email": "not-an-email", "password": "password1", "name": "X"}),
        json!({"email": unique_email("x"), "password": "short", "name": "X"}),
        json!({"email": unique_email("x"), "password": "password1", "name": "  "}),
    ] {
        expect_problem(
            anon.post("/auth/signup", &bad).await,
            400,
            "/errors/invalid",
        )
        .await;
    }
    let malformed = anon
        .req(Method::POST, "/auth/signup")
        .header("content-type", "application/json")
        .body("{\"email\":")
        .send()
        .await
        .unwrap();
    expect_problem(malformed, 400, "/errors/invalid-json").await;
    let missing = anon.post("/auth/login", &json!({"email": email})).await;
    expect_problem(missing, 400, "/errors/invalid-json").await;

    let ok = anon
        .post(
            "/auth/login",
            &json!({"email": email, "password": "password1"}),
        )
        .await;
    assert_eq!(ok.status(), StatusCode::OK);
    let login: Value = ok.json().await.unwrap();
    assert_eq!(login["user"]["id"], body["user"]["id"]);
    expect_problem(
        anon.post(
            "/auth/login",
            &json!({"email": email, "password": "wrong-password"}),
        )
        .await,
        401,
        "/errors/wrong-credentials",
    )
    .await;
    expect_problem(
        anon.post(
            "/auth/login",
            &json!({"email": unique_email("nobody"), "password": "password1"}),
        )
        .await,
        401,
        "/errors/wrong-credentials",
    )
    .await;
}

#[tokio::test]
async fn repeated_failed_logins_get_429_with_retry_after() {
    let server = TestServer::suite();
    let user = server.new_user("throttled").await;
    let anon = server.client();
    for _ in 0..5 {
        let res = anon
            .post(
                "/auth/login",
                &json!({"email": user.email, "password": "nope-nope"}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let res = anon
        .post(
            "/auth/login",
            &json!({"email": user.email, "password": "correct horse battery"}),
        )
        .await;
    let retry: u64 = res
        .headers()
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0);
    expect_problem(res, 429, "/errors/rate-limited").await;
    // Other accounts are not affected.
    let other = server.new_user("unthrottled").await;
    let res = anon
        .post(
            "/auth/login",
            &json!({"email": other.email, "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_token_in_the_url_is_for_websockets_only() {
    let server = TestServer::suite();
    let user = server.new_user("urltoken").await;
    let token = user.api.token.clone().unwrap();
    let res = server.client().get(&format!("/files?token={token}")).await;
    let p = expect_problem(res, 401, "/errors/unauthorized").await;
    assert!(p.detail.contains("WebSockets only"), "{}", p.detail);
    // Only a WebSocket upgrade counts, not any Upgrade header.
    let res = server
        .client()
        .req(Method::GET, &format!("/files?token={token}"))
        .header("upgrade", "h2c")
        .send()
        .await
        .unwrap();
    expect_problem(res, 401, "/errors/unauthorized").await;
    assert_eq!(user.api.get("/files").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn every_private_endpoint_needs_a_valid_token() {
    let server = TestServer::suite();
    let user = server.new_user("owner").await;
    let file = user
        .api
        .upload(None, &[("a.txt", b"a".to_vec())])
        .await
        .remove(0);
    let id = file.id;
    let calls: Vec<(Method, String)> = vec![
        (Method::GET, "/me".into()),
        (Method::GET, "/files".into()),
        (Method::POST, "/files".into()),
        (Method::POST, "/folders".into()),
        (Method::GET, format!("/files/{id}")),
        (Method::GET, format!("/files/{id}/content")),
        (Method::PUT, format!("/files/{id}/content")),
        (Method::PATCH, format!("/files/{id}")),
        (Method::DELETE, format!("/files/{id}")),
    ];
    let mut bad = server.client();
    bad.token = Some("eyJhbGciOiJIUzI1NiJ9.e30.invalid".into());
    let mut expired_shape = server.client();
    expired_shape.token = Some(user.api.token.clone().unwrap() + "x");
    for (method, path) in &calls {
        for client in [&server.client(), &bad, &expired_shape] {
            let res = client
                .req(method.clone(), path)
                .body("{}")
                .send()
                .await
                .unwrap();
            expect_problem(res, 401, "/errors/unauthorized").await;
        }
    }
    assert_eq!(user.api.content(&id).await, b"a", "nothing changed");
}

#[tokio::test]
async fn folders_names_and_conflicts() {
    let server = TestServer::suite();
    let u = server.new_user("namer").await.api;
    let projects = u.mkdir(None, "Projects").await;
    assert_eq!(projects.kind, FileKind::Folder);
    assert_eq!(projects.parent_id, None);
    let inner = u.mkdir(Some(&projects.id), "日本語 フォルダ 🚀").await;
    assert_eq!(inner.parent_id.as_deref(), Some(projects.id.as_str()));
    assert_eq!(u.list(Some(&projects.id)).await, vec![inner.clone()]);

    expect_problem(
        u.post("/folders", &json!({"parent_id": null, "name": "Projects"}))
            .await,
        409,
        "/errors/conflict",
    )
    .await;
    // The same name is fine in another folder.
    u.mkdir(Some(&inner.id), "Projects").await;
    for bad in ["", ".", "..", "a/b", "nul\0byte", &"x".repeat(256)] {
        expect_problem(
            u.post("/folders", &json!({"parent_id": null, "name": bad}))
                .await,
            400,
            "/errors/invalid",
        )
        .await;
    }
    u.mkdir(None, &"é".repeat(127)).await; // 254 bytes is allowed
    expect_not_found(
        u.post("/folders", &json!({"parent_id": "no-such-id", "name": "x"}))
            .await,
    )
    .await;
    expect_not_found(u.get("/files?parent=no-such-id").await).await;
    let file = u
        .upload(None, &[("plain.txt", b"x".to_vec())])
        .await
        .remove(0);
    expect_problem(
        u.post("/folders", &json!({"parent_id": file.id, "name": "x"}))
            .await,
        400,
        "/errors/invalid",
    )
    .await;
    expect_problem(
        u.upload_raw(None, &[("plain.txt", b"again".to_vec())])
            .await,
        409,
        "/errors/conflict",
    )
    .await;
    expect_problem(
        u.upload_raw(None, &[("../evil", b"x".to_vec())]).await,
        400,
        "/errors/invalid",
    )
    .await;
}

#[tokio::test]
async fn upload_download_ranges_and_etags() {
    let server = TestServer::suite();
    let u = server.new_user("loader").await.api;
    let folder = u.mkdir(None, "in").await;
    let big = pattern(1_234_567, 7);
    let files = u
        .upload(
            Some(&folder.id),
            &[
                ("big.bin", big.clone()),
                ("empty.txt", vec![]),
                ("ünï côdé.md", "héllo".as_bytes().to_vec()),
            ],
        )
        .await;
    let (bigf, empty, uni) = (&files[0], &files[1], &files[2]);
    assert_eq!(bigf.size, big.len() as u64);
    assert_eq!(bigf.checksum.as_deref(), Some(sha256_hex(&big).as_str()));
    assert_eq!(bigf.parent_id.as_deref(), Some(folder.id.as_str()));
    assert_eq!(bigf.version, 1);
    assert_eq!(empty.size, 0);
    assert_eq!(empty.checksum.as_deref(), Some(sha256_hex(b"").as_str()));
    assert_eq!(uni.mime.as_deref(), Some("text/markdown"));
    assert_eq!(u.content(&bigf.id).await, big);
    assert!(u.content(&empty.id).await.is_empty());
    assert_eq!(u.content(&uni.id).await, "héllo".as_bytes());
    assert_eq!(u.used_bytes().await, big.len() as u64 + 6);

    let res = u.get(&format!("/files/{}/content", bigf.id)).await;
    let etag = res.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(etag, "\"1\"");
    assert_eq!(res.headers()["accept-ranges"], "bytes");
    assert!(res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("sandbox"));
    assert_eq!(res.headers()["referrer-policy"], "no-referrer");
    let res = u
        .req(Method::GET, &format!("/files/{}/content", bigf.id))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);

    let ranged = |h: &'static str| {
        u.req(Method::GET, &format!("/files/{}/content", bigf.id))
            .header("range", h)
            .send()
    };
    let res = ranged("bytes=100-199").await.unwrap();
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        res.headers()["content-range"],
        format!("bytes 100-199/{}", big.len()).as_str()
    );
    assert_eq!(res.bytes().await.unwrap(), big[100..200]);
    let res = ranged("bytes=-10").await.unwrap();
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(res.bytes().await.unwrap(), big[big.len() - 10..]);
    let res = ranged("bytes=1234000-").await.unwrap();
    assert_eq!(res.bytes().await.unwrap(), big[1_234_000..]);
    let res = ranged("bytes=9999999-").await.unwrap();
    assert_eq!(
        res.headers()["content-range"],
        format!("bytes */{}", big.len()).as_str()
    );
    expect_problem(res, 416, "/errors/range-not-satisfiable").await;

    let folder_content = u.get(&format!("/files/{}/content", folder.id)).await;
    expect_problem(folder_content, 400, "/errors/invalid").await;
    let nameless = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(b"x".to_vec()));
    let res = u
        .req(Method::POST, "/files")
        .multipart(nameless)
        .send()
        .await
        .unwrap();
    let p = expect_problem(res, 400, "/errors/invalid").await;
    assert!(p.detail.contains("filename"), "{}", p.detail);
    // The form's folder field is an id, read with a bound (the upload body has none).
    let long_parent = reqwest::multipart::Form::new()
        .text("parent_id", "p".repeat(10_000))
        .part(
            "file",
            reqwest::multipart::Part::bytes(b"x".to_vec()).file_name("x.txt"),
        );
    let res = u
        .req(Method::POST, "/files")
        .multipart(long_parent)
        .send()
        .await
        .unwrap();
    let p = expect_problem(res, 400, "/errors/invalid").await;
    assert!(p.detail.contains("parent_id is at most"), "{}", p.detail);
    let res = u
        .req(Method::POST, "/files")
        .multipart(reqwest::multipart::Form::new().text("note", "no file"))
        .send()
        .await
        .unwrap();
    expect_problem(res, 400, "/errors/invalid").await;
}

#[tokio::test]
async fn saving_needs_the_current_version() {
    let server = TestServer::suite();
    let u = server.new_user("editor").await.api;
    let f = u
        .upload(None, &[("draft.txt", b"one".to_vec())])
        .await
        .remove(0);
    let path = format!("/files/{}/content", f.id);
    let res = u
        .req(Method::PUT, &path)
        .header("if-match", "\"1\"")
        .body("two!")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let saved: File = res.json().await.unwrap();
    assert_eq!(saved.version, 2);
    assert_eq!(saved.size, 4);
    assert_eq!(
        saved.checksum.as_deref(),
        Some(sha256_hex(b"two!").as_str())
    );
    assert_eq!(u.content(&f.id).await, b"two!");
    // A save based on version 1 would lose version 2.
    let stale = u
        .req(Method::PUT, &path)
        .header("if-match", "\"1\"")
        .body("lost?")
        .send()
        .await
        .unwrap();
    expect_problem(stale, 412, "/errors/stale-version").await;
    let missing = u
        .req(Method::PUT, &path)
        .body("blind")
        .send()
        .await
        .unwrap();
    expect_problem(missing, 428, "/errors/if-match-required").await;
    assert_eq!(u.content(&f.id).await, b"two!");
    let res = u.get(&path).await;
    assert_eq!(res.headers()["etag"], "\"2\"");
    // If-Match compares strongly (RFC 9110): a weak tag names no version.
    let weak = u
        .req(Method::PUT, &path)
        .header("if-match", "W/\"2\"")
        .body("weak")
        .send()
        .await
        .unwrap();
    let p = expect_problem(weak, 412, "/errors/stale-version").await;
    assert!(p.detail.contains("version 2 is current"), "{}", p.detail);
    // Only entity tags name a version: a bare number or `*` (a blind overwrite) is 428.
    for value in ["2", "*", "\"2"] {
        let res = u
            .req(Method::PUT, &path)
            .header("if-match", value)
            .body("blind")
            .send()
            .await
            .unwrap();
        expect_problem(res, 428, "/errors/if-match-required").await;
    }
    let listed = u
        .req(Method::PUT, &path)
        .header("if-match", "\"1\", \"2\"")
        .body("two!")
        .send()
        .await
        .unwrap();
    assert_eq!(
        listed.status(),
        StatusCode::OK,
        "one of the listed tags is current"
    );
    // If-None-Match compares weakly: W/"3" names the current content.
    let cached = u
        .req(Method::GET, &path)
        .header("if-none-match", "\"7\", W/\"3\"")
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
    let empty = u
        .req(Method::PUT, &path)
        .header("if-match", "\"3\"")
        .body("")
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), StatusCode::OK);
    assert!(u.content(&f.id).await.is_empty());
}

#[tokio::test]
async fn rename_and_move() {
    let server = TestServer::suite();
    let u = server.new_user("mover").await.api;
    let a = u.mkdir(None, "a").await;
    let b = u.mkdir(Some(&a.id), "b").await;
    let c = u.mkdir(Some(&b.id), "c").await;
    let f = u.upload(None, &[("f.txt", b"f".to_vec())]).await.remove(0);
    let g = u
        .upload(Some(&a.id), &[("g.txt", b"g".to_vec())])
        .await
        .remove(0);

    for target in [&a.id, &b.id, &c.id] {
        let res = u
            .patch(&format!("/files/{}", a.id), &json!({"parent_id": target}))
            .await;
        expect_problem(res, 400, "/errors/invalid").await;
    }
    expect_problem(
        u.patch(&format!("/files/{}", f.id), &json!({"name": "a"}))
            .await,
        409,
        "/errors/conflict",
    )
    .await;
    expect_problem(
        u.patch(&format!("/files/{}", f.id), &json!({"name": "x/y"}))
            .await,
        400,
        "/errors/invalid",
    )
    .await;
    expect_problem(
        u.patch(&format!("/files/{}", f.id), &json!({"parent_id": g.id}))
            .await,
        400,
        "/errors/invalid",
    )
    .await;
    expect_not_found(
        u.patch(&format!("/files/{}", f.id), &json!({"parent_id": "nope"}))
            .await,
    )
    .await;
    let g2 = u
        .upload(None, &[("g.txt", b"other g".to_vec())])
        .await
        .remove(0);
    expect_problem(
        u.patch(&format!("/files/{}", g2.id), &json!({"parent_id": a.id}))
            .await,
        409,
        "/errors/conflict",
    )
    .await;

    let moved: File = u
        .patch(
            &format!("/files/{}", c.id),
            &json!({"parent_id": null, "name": "c at root"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!((moved.parent_id, moved.name.as_str()), (None, "c at root"));
    let moved: File = u
        .patch(&format!("/files/{}", f.id), &json!({"parent_id": c.id}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(moved.parent_id.as_deref(), Some(c.id.as_str()));
    assert_eq!(u.content(&f.id).await, b"f");
    let b2: File = u
        .patch(&format!("/files/{}", b.id), &json!({"name": "bee"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(b2.parent_id.as_deref(), Some(a.id.as_str()));
    expect_problem(
        u.patch(&format!("/files/{}", a.id), &json!("oops")).await,
        400,
        "/errors/invalid-json",
    )
    .await;
}

#[tokio::test]
async fn delete_is_recursive() {
    let server = TestServer::suite();
    let u = server.new_user("deleter").await.api;
    let top = u.mkdir(None, "top").await;
    let mid = u.mkdir(Some(&top.id), "mid").await;
    let deep = u
        .upload(Some(&mid.id), &[("deep.bin", pattern(5000, 3))])
        .await
        .remove(0);
    let keep = u
        .upload(None, &[("keep.txt", b"keep".to_vec())])
        .await
        .remove(0);
    assert_eq!(u.used_bytes().await, 5004);
    assert_eq!(
        u.delete(&format!("/files/{}", top.id)).await.status(),
        StatusCode::NO_CONTENT
    );
    for id in [&top.id, &mid.id, &deep.id] {
        expect_not_found(u.get(&format!("/files/{id}")).await).await;
    }
    expect_not_found(u.delete(&format!("/files/{}", top.id)).await).await;
    assert_eq!(u.used_bytes().await, 5004, "the Trash still holds it");
    let res = u.delete(&format!("/trash/{}", top.id)).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    expect_not_found(u.delete(&format!("/trash/{}", top.id)).await).await;
    assert_eq!(u.used_bytes().await, 4);
    assert_eq!(u.content(&keep.id).await, b"keep");
}

#[tokio::test]
async fn signed_download_urls_work_without_a_token_until_they_expire() {
    let server = TestServer::suite();
    let u = server.new_user("linker").await.api;
    let bytes = pattern(10_000, 9);
    let f = u
        .upload(None, &[("shared.bin", bytes.clone())])
        .await
        .remove(0);
    let meta: File = u
        .get(&format!("/files/{}", f.id))
        .await
        .json()
        .await
        .unwrap();
    let url = meta.download_url.expect("download_url");
    let anon = cloudos_tests::http_client();
    let res = anon.get(&url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.bytes().await.unwrap(), bytes);
    let res = anon
        .get(&url)
        .header("range", "bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(res.bytes().await.unwrap(), bytes[..10]);

    let tampered = url.replace("sig=", "sig=00");
    expect_problem(
        anon.get(&tampered).send().await.unwrap(),
        403,
        "/errors/bad-signature",
    )
    .await;
    let other_file = u
        .upload(None, &[("other.bin", b"secret".to_vec())])
        .await
        .remove(0);
    let stolen = url.replace(&f.id, &other_file.id);
    expect_problem(
        anon.get(&stolen).send().await.unwrap(),
        403,
        "/errors/bad-signature",
    )
    .await;

    let short: File = u
        .get(&format!("/files/{}?url_ttl=1", f.id))
        .await
        .json()
        .await
        .unwrap();
    let short_url = short.download_url.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    expect_problem(
        anon.get(&short_url).send().await.unwrap(),
        403,
        "/errors/bad-signature",
    )
    .await;

    let folder = u.mkdir(None, "no-url").await;
    let meta: Value = u
        .get(&format!("/files/{}", folder.id))
        .await
        .json()
        .await
        .unwrap();
    assert!(meta.get("download_url").is_none());
}

#[tokio::test]
async fn quota_refuses_before_storing_past_it() {
    let server = TestServer::suite();
    let u = server.new_user("hoarder").await.api;
    let me: Value = u.get("/me").await.json().await.unwrap();
    let quota = me["quota_bytes"].as_u64().unwrap();
    if server.is_native() {
        assert_eq!(quota, SUITE_QUOTA_BYTES);
    }
    let kept = u
        .upload(None, &[("kept.bin", pattern(1000, 1))])
        .await
        .remove(0);
    let too_big = pattern((quota - 1000 + 1) as usize, 2);

    // With a Content-Length the server refuses up front.
    let res = u.upload_raw(None, &[("huge.bin", too_big.clone())]).await;
    expect_problem(res, 413, "/errors/quota-exceeded").await;

    // Streamed without a length, it stops at the first chunk past the quota.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        too_big.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::stream(body).file_name("huge2.bin"),
    );
    let res = u
        .req(Method::POST, "/files")
        .multipart(form)
        .send()
        .await
        .unwrap();
    expect_problem(res, 413, "/errors/quota-exceeded").await;

    // A new version counts on top of the old one (kept in the history): refused past the quota.
    let path = format!("/files/{}/content", kept.id);
    let res = u
        .req(Method::PUT, &path)
        .header("if-match", "\"1\"")
        .body(pattern(quota as usize + 1, 5))
        .send()
        .await
        .unwrap();
    expect_problem(res, 413, "/errors/quota-exceeded").await;
    assert_eq!(
        u.content(&kept.id).await,
        pattern(1000, 1),
        "the old content is intact"
    );

    assert_eq!(u.used_bytes().await, 1000);
    let names: Vec<_> = u.list(None).await.into_iter().map(|f| f.name).collect();
    assert_eq!(names, ["kept.bin"]);
    // Up to the byte; over 8 MiB this also takes the Worker's multipart path to R2.
    let exact = pattern((quota - 1000) as usize, 3);
    let stored = u
        .upload(None, &[("exact.bin", exact.clone())])
        .await
        .remove(0);
    assert_eq!(u.used_bytes().await, quota);
    assert!(
        u.content(&stored.id).await == exact,
        "the large file reads back intact"
    );
}

#[tokio::test]
async fn another_users_ids_answer_404_everywhere() {
    let server = TestServer::suite();
    let alice = server.new_user("alice").await.api;
    let mallory = server.new_user("mallory").await.api;
    let folder = alice.mkdir(None, "private").await;
    let file = alice
        .upload(Some(&folder.id), &[("diary.txt", b"dear diary".to_vec())])
        .await
        .remove(0);

    for id in [&folder.id, &file.id] {
        expect_not_found(mallory.get(&format!("/files/{id}")).await).await;
        expect_not_found(mallory.get(&format!("/files/{id}/content")).await).await;
        let put = mallory
            .req(Method::PUT, &format!("/files/{id}/content"))
            .header("if-match", "\"1\"")
            .body("pwned")
            .send()
            .await
            .unwrap();
        expect_not_found(put).await;
        expect_not_found(
            mallory
                .patch(&format!("/files/{id}"), &json!({"name": "mine"}))
                .await,
        )
        .await;
        expect_not_found(mallory.delete(&format!("/files/{id}")).await).await;
    }
    expect_not_found(mallory.get(&format!("/files?parent={}", folder.id)).await).await;
    expect_not_found(
        mallory
            .post("/folders", &json!({"parent_id": folder.id, "name": "x"}))
            .await,
    )
    .await;
    expect_not_found(
        mallory
            .upload_raw(Some(&folder.id), &[("x.txt", b"x".to_vec())])
            .await,
    )
    .await;
    // Moving one's own file into someone else's folder is the same 404.
    let own = mallory.mkdir(None, "own").await;
    expect_not_found(
        mallory
            .patch(
                &format!("/files/{}", own.id),
                &json!({"parent_id": folder.id}),
            )
            .await,
    )
    .await;

    assert_eq!(alice.content(&file.id).await, b"dear diary");
    assert_eq!(alice.list(Some(&folder.id)).await.len(), 1);
    assert_eq!(
        alice
            .get(&format!("/files/{}", folder.id))
            .await
            .json::<File>()
            .await
            .unwrap()
            .name,
        "private"
    );
}

#[tokio::test]
async fn an_upload_cut_off_midway_leaves_no_file() {
    let server = TestServer::suite();
    let u = server.new_user("flaky").await.api;
    let addr = server.base.trim_start_matches("http://").to_owned();
    let boundary = "cutoffboundary";
    let head = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"half.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n");
    let declared = 4 * 1024 * 1024;
    let request = format!(
        "POST /files HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\r\n",
        u.token.as_deref().unwrap(),
        head.len() + declared + boundary.len() + 8
    );
    let mut sock = tokio::net::TcpStream::connect(&addr).await.unwrap();
    sock.write_all(request.as_bytes()).await.unwrap();
    sock.write_all(head.as_bytes()).await.unwrap();
    sock.write_all(&pattern(declared / 2, 4)).await.unwrap();
    sock.flush().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    drop(sock);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    assert!(
        u.list(None).await.is_empty(),
        "no file row for a cut-off upload"
    );
    assert_eq!(u.used_bytes().await, 0);
    // The name is still free: a complete retry succeeds.
    let done = u
        .upload(None, &[("half.bin", pattern(declared, 4))])
        .await
        .remove(0);
    assert_eq!(done.size, declared as u64);

    // A malformed multipart body is a clear 400, not a half file.
    let mut sock = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let body = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"bad.bin\"\r\n\r\nabc");
    let req = format!(
        "POST /files HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        u.token.as_deref().unwrap(),
        body.len()
    );
    sock.write_all(req.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(60),
        sock.read_to_string(&mut answer),
    )
    .await
    .expect("an answer to a malformed upload within a minute")
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    let names: Vec<_> = u.list(None).await.into_iter().map(|f| f.name).collect();
    assert_eq!(names, ["half.bin"]);
}

#[tokio::test]
async fn an_upload_of_more_than_a_thousand_files_is_refused_whole() {
    let server = TestServer::suite();
    let u = server.new_user("bulk").await.api;
    let names: Vec<String> = (0..1001).map(|i| format!("f{i}.txt")).collect();
    let files: Vec<(&str, Vec<u8>)> = names.iter().map(|n| (n.as_str(), b"x".to_vec())).collect();
    let res = u.upload_raw(None, &files).await;
    let problem = expect_problem(res, 400, "/errors/invalid").await;
    assert!(problem.detail.contains("1000"), "{}", problem.detail);
    assert!(
        u.list(None).await.is_empty(),
        "nothing of a refused upload is kept"
    );
    assert_eq!(u.upload(None, &files[..1000]).await.len(), 1000);
}

/// Whatever the host, every operation `/openapi.json` lists is served by its route (sockets
/// included), never by the "no such endpoint" fallback.
#[tokio::test]
async fn every_operation_in_the_openapi_document_is_served_on_this_host() {
    let server = TestServer::suite();
    let anon = server.client();
    let doc: Value = anon.get("/openapi.json").await.json().await.unwrap();
    let paths = doc["paths"].as_object().expect("paths");
    for socket in ["/events", "/terminal/{sandbox_id}/attach"] {
        assert!(paths.contains_key(socket), "{socket} is documented");
    }
    for (path, item) in paths {
        let concrete: String = path
            .split('/')
            .map(|seg| if seg.starts_with('{') { "x" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        for method in ["get", "put", "post", "delete", "patch"] {
            if item.get(method).is_none() {
                continue;
            }
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let res = anon.req(method.clone(), &concrete).send().await.unwrap();
            let status = res.status();
            let body = res.text().await.unwrap();
            assert!(
                status != StatusCode::METHOD_NOT_ALLOWED && !body.contains("no such endpoint"),
                "{method} {path} is documented but not served: {status} {body}"
            );
        }
    }
}
