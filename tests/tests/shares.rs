//! Share links to files and folders, as their holders meet them, on the native server and
//! (`cargo xtask test`'s edge pass) on the Worker: a view link shows the file and its live
//! edits to anyone and drops what they send; an edit link lets a signed-in colleague edit;
//! revoking a link closes its sockets at once and its page is gone; a folder's link reaches
//! below it, never above; links are the owner's alone.

use std::time::Duration;

use cloudos_proto::{File, FileShare, PublicShare};
use cloudos_tests::collab::{link_room_url, owner_room_url, room_url, wait_for_content, YClient};
use cloudos_tests::{expect_not_found, expect_problem, TestServer, User};
use reqwest::StatusCode;
use serde_json::json;

async fn share(u: &User, file: &str, body: serde_json::Value) -> FileShare {
    let res = u.api.post(&format!("/files/{file}/share"), &body).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json().await.unwrap()
}

/// What the link shows, as a program asks for it.
async fn public(server: &TestServer, token: &str, file: Option<&str>) -> reqwest::Response {
    let mut path = format!("/s/{token}");
    if let Some(f) = file {
        path.push_str(&format!("?file={f}"));
    }
    server
        .client()
        .req(reqwest::Method::GET, &path)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap()
}

fn owner_room(server: &TestServer, u: &User, file: &str) -> String {
    owner_room_url(&server.base, &u.api, file)
}

#[tokio::test]
async fn a_view_link_shows_the_file_and_its_live_edits_to_anyone() {
    let server = TestServer::suite();
    let ann = server.new_user("ann").await;
    let file = ann.api.upload_one("notes.txt", b"<b>hello</b>").await;
    let link = share(&ann, &file.id, json!({})).await;
    assert_eq!(link.mode, "view");
    assert!(link.token.len() >= 32, "at least 128 random bits");
    assert!(link.url.ends_with(&format!("/s/{}", link.token)));

    // A program reads what the link shows; the owner's tree above it is not shown.
    let res = public(&server, &link.token, None).await;
    assert_eq!(res.status(), StatusCode::OK);
    let shown: PublicShare = res.json().await.unwrap();
    assert_eq!(shown.file.name, "notes.txt");
    assert_eq!(shown.file.parent_id, None);
    let content = server
        .client()
        .http
        .get(shown.content_url.as_deref().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        content.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .split(';')
            .next(),
        Some("sandbox")
    );
    assert_eq!(content.bytes().await.unwrap().as_ref(), b"<b>hello</b>");

    // A browser gets a page that shows the text, escaped, and runs no script.
    let page = server.client().get(&format!("/s/{}", link.token)).await;
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(html.contains("&lt;b&gt;hello&lt;/b&gt;"), "{html}");
    assert!(!html.contains("<b>hello"), "{html}");

    // Signed out, the link's holder watches the owner type; what they send is dropped.
    let mut viewer = YClient::connect(shown.room_url.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(viewer.text(), "<b>hello</b>");
    let mut owner = YClient::connect(&owner_room(&server, &ann, &file.id))
        .await
        .unwrap();
    owner.insert(0, "Ann: ").await;
    viewer
        .wait_for(Duration::from_secs(10), |t| t == "Ann: <b>hello</b>")
        .await;
    viewer.insert(0, "vandal ").await;
    owner.pump(Duration::from_millis(500)).await;
    assert_eq!(owner.text(), "Ann: <b>hello</b>");
    owner.close().await;
    viewer.close().await;
    wait_for_content(&ann.api, &file.id, "Ann: <b>hello</b>").await;
}

#[tokio::test]
async fn revoking_a_link_closes_its_sockets_and_its_page_is_gone() {
    let server = TestServer::suite();
    let ann = server.new_user("ann").await;
    let file = ann.api.upload_one("a.md", b"# A").await;
    let link = share(&ann, &file.id, json!({"mode": "view"})).await;
    let url = room_url(&server.base, &file.id, &format!("share={}", link.token));
    let mut viewer = YClient::connect(&url).await.unwrap();
    let listed: File = ann
        .api
        .get(&format!("/files/{}", file.id))
        .await
        .json()
        .await
        .unwrap();
    assert!(listed.shared);

    let res = ann.api.delete(&format!("/shares/{}", link.token)).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        viewer.wait_closed(Duration::from_secs(10)).await,
        Some(cloudos_proto::terminal::CLOSE_REVOKED)
    );
    expect_problem(
        public(&server, &link.token, None).await,
        410,
        "/errors/share-expired",
    )
    .await;
    assert_eq!(YClient::connect(&url).await.err(), Some(410));
    let listed: File = ann
        .api
        .get(&format!("/files/{}", file.id))
        .await
        .json()
        .await
        .unwrap();
    assert!(!listed.shared, "no link to it works any more");
    // The owner's list keeps it, marked.
    let links = ann.api.links(&file.id).await;
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].state, "revoked");
    // The one socket that opened through it.
    assert_eq!(links[0].access_count, 1, "{:?}", links[0]);
}

#[tokio::test]
async fn an_edit_link_lets_a_signed_in_colleague_edit() {
    let server = TestServer::suite();
    let ann = server.new_user("ann").await;
    let bob = server.new_user("bob").await;
    let file = ann.api.upload_one("plan.txt", b"plan").await;
    let link = share(&ann, &file.id, json!({"mode": "edit", "expires_in": 3600})).await;
    assert_eq!(link.mode, "edit");
    let share_q = format!("share={}", link.token);
    // Signed out, an edit link opens nothing.
    assert_eq!(
        YClient::connect(&room_url(&server.base, &file.id, &share_q))
            .await
            .err(),
        Some(401)
    );
    let bob_token = bob.api.token.as_deref().unwrap();
    let mut b = YClient::connect(&room_url(
        &server.base,
        &file.id,
        &format!("{share_q}&token={bob_token}"),
    ))
    .await
    .unwrap();
    let mut a = YClient::connect(&owner_room(&server, &ann, &file.id))
        .await
        .unwrap();
    b.insert(4, " B").await;
    a.wait_for(Duration::from_secs(10), |t| t == "plan B").await;
    a.insert(0, "the ").await;
    b.wait_for(Duration::from_secs(10), |t| t == "the plan B")
        .await;
    // Bob's own token still does not open Ann's room without the link.
    assert_eq!(
        YClient::connect(&owner_room(&server, &bob, &file.id))
            .await
            .err(),
        Some(404)
    );
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn a_folder_link_reaches_below_it_never_above() {
    let server = TestServer::suite();
    let ann = server.new_user("ann").await;
    let outside = ann.api.upload_one("secret.txt", b"no").await;
    let folder = ann.api.mkdir(None, "site").await;
    let sub = ann.api.mkdir(Some(&folder.id), "css").await;
    let inside = ann
        .api
        .upload(Some(&sub.id), &[("main.css", b"body{}".to_vec())])
        .await[0]
        .clone();
    let link = share(&ann, &folder.id, json!({})).await;
    let root: PublicShare = public(&server, &link.token, None)
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<_> = root.items.unwrap().iter().map(|f| f.name.clone()).collect();
    assert_eq!(names, ["css"]);
    let below: PublicShare = public(&server, &link.token, Some(&inside.id))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(below.file.name, "main.css");
    let css = server
        .client()
        .http
        .get(below.content_url.unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(css.bytes().await.unwrap().as_ref(), b"body{}");
    // A file beside the folder is as dead to the link as a revoked one.
    expect_problem(
        public(&server, &link.token, Some(&outside.id)).await,
        410,
        "/errors/share-expired",
    )
    .await;
    let url = room_url(&server.base, &outside.id, &format!("share={}", link.token));
    assert_eq!(YClient::connect(&url).await.err(), Some(410));
}

#[tokio::test]
async fn links_are_their_owners_alone() {
    let server = TestServer::suite();
    let ann = server.new_user("ann").await;
    let bob = server.new_user("bob").await;
    let file = ann.api.upload_one("a.txt", b"a").await;
    expect_not_found(
        bob.api
            .post(&format!("/files/{}/share", file.id), &json!({}))
            .await,
    )
    .await;
    expect_not_found(bob.api.get(&format!("/files/{}/shares", file.id)).await).await;
    let link = share(&ann, &file.id, json!({})).await;
    expect_not_found(bob.api.delete(&format!("/shares/{}", link.token)).await).await;
    expect_not_found(bob.api.delete(&format!("/shares/{}", link.id)).await).await;
    expect_problem(
        ann.api
            .post(
                &format!("/files/{}/share", file.id),
                &json!({"mode": "own"}),
            )
            .await,
        400,
        "/errors/bad-request",
    )
    .await;
    // Made-up tokens are dead links, not errors of another kind.
    expect_problem(
        public(&server, "0123456789abcdef", None).await,
        410,
        "/errors/share-expired",
    )
    .await;
    assert_eq!(
        public(&server, &link.token, None).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn signing_out_ends_ones_own_room_sockets_only() {
    let server = TestServer::suite();
    let ann = server.new_user("ann").await;
    let bob = server.new_user("bob").await;
    let file = ann.api.upload_one("doc.txt", b"doc").await;
    let link = share(&ann, &file.id, json!({"mode": "edit"})).await;
    let bob_url = link_room_url(&server.base, &bob.api, &file.id, &link.token);
    let mut b = YClient::connect(&bob_url).await.unwrap();
    let mut a = YClient::connect(&owner_room(&server, &ann, &file.id))
        .await
        .unwrap();
    let res = bob.api.post("/auth/logout", &json!({})).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        b.wait_closed(Duration::from_secs(10)).await,
        Some(cloudos_proto::terminal::CLOSE_REVOKED)
    );
    // Ann, still signed in, goes on editing.
    a.insert(3, "!").await;
    a.pump(Duration::from_millis(300)).await;
    assert!(!a.closed);
    let res = ann.api.post("/auth/logout", &json!({})).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        a.wait_closed(Duration::from_secs(10)).await,
        Some(cloudos_proto::terminal::CLOSE_REVOKED)
    );
}

#[tokio::test]
async fn a_link_with_a_password_opens_nothing_until_it_is_given() {
    let server = TestServer::suite();
    let ann = server.new_user("ann").await;
    let file = ann.api.upload_one("secret.txt", b"the plan").await;
    let link = share(&ann, &file.id, json!({"password": "open sesame"})).await;
    let list = ann.api.links(&file.id).await;
    assert!(list[0].has_password);

    // Without it: the JSON says so, the content and the room are shut, and a browser gets
    // a form (no script) that posts the password.
    expect_problem(
        public(&server, &link.token, None).await,
        401,
        "/errors/password-required",
    )
    .await;
    let content = server
        .client()
        .get(&format!("/s/{}/content", link.token))
        .await;
    expect_problem(content, 401, "/errors/password-required").await;
    assert_eq!(
        YClient::connect(&room_url(
            &server.base,
            &file.id,
            &format!("share={}", link.token)
        ))
        .await
        .err(),
        Some(401)
    );
    let page = server.client().get(&format!("/s/{}", link.token)).await;
    assert_eq!(page.status(), StatusCode::UNAUTHORIZED);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("form-action 'self'"),
        "{csp}"
    );
    let html = page.text().await.unwrap();
    assert!(
        html.contains(&format!("action=\"/s/{}/unlock\"", link.token)),
        "{html}"
    );
    assert!(!html.contains("the plan"));

    // A wrong password is refused; a forged or stretched pass opens nothing.
    let unlock_path = format!("/s/{}/unlock", link.token);
    let client = server.client();
    let unlock = |password: &'static str| {
        let (client, path) = (client.clone(), unlock_path.clone());
        async move { client.post(&path, &json!({ "password": password })).await }
    };
    expect_problem(unlock("sesame").await, 401, "/errors/wrong-password").await;
    for forged in ["99999999999.00", "1.zz", "garbage"] {
        let res = public(&server, &format!("{}.{forged}", link.token), None).await;
        expect_problem(res, 401, "/errors/password-required").await;
    }

    // The right one gives the token with a pass: it opens the page, the content and the
    // room; the form does the same for a browser (303 back to the page, with the pass).
    let res = unlock("open sesame").await;
    assert_eq!(res.status(), StatusCode::OK);
    let unlocked: serde_json::Value = res.json().await.unwrap();
    let pass_token = unlocked["token"].as_str().unwrap().to_owned();
    assert!(pass_token.starts_with(&format!("{}.", link.token)));
    let shown: PublicShare = public(&server, &pass_token, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(shown.file.name, "secret.txt");
    let bytes = server
        .client()
        .get(&format!("/s/{pass_token}/content"))
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(bytes.as_ref(), b"the plan");
    let mut viewer = YClient::connect(&room_url(
        &server.base,
        &file.id,
        &format!("share={pass_token}"),
    ))
    .await
    .unwrap();
    assert_eq!(viewer.text(), "the plan");
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = no_redirects
        .post(format!("{}/s/{}/unlock", server.base, link.token))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("password=open+sesame")
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::SEE_OTHER);
    let to = form.headers()["location"].to_str().unwrap();
    assert!(to.starts_with(&format!("/s/{}.", link.token)), "{to}");

    // Revoking the link ends what its pass opened.
    let revoked = ann.api.delete(&format!("/shares/{}", link.token)).await;
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        viewer.wait_closed(Duration::from_secs(10)).await,
        Some(4403)
    );
    expect_problem(
        public(&server, &pass_token, None).await,
        410,
        "/errors/share-expired",
    )
    .await;
}

#[tokio::test]
async fn guessing_a_links_password_is_throttled() {
    let server = TestServer::suite();
    let ann = server.new_user("ann").await;
    let file = ann.api.upload_one("secret.txt", b"x").await;
    // A password longer than an account's is refused, not cut.
    let long = ann
        .api
        .post(
            &format!("/files/{}/share", file.id),
            &json!({ "password": "x".repeat(300) }),
        )
        .await;
    expect_problem(long, 400, "/errors/bad-request").await;
    let link = share(&ann, &file.id, json!({"password": "right"})).await;
    let path = format!("/s/{}/unlock", link.token);
    let mut limited = false;
    for _ in 0..8 {
        let res = server
            .client()
            .post(&path, &json!({"password": "wrong"}))
            .await;
        if res.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = true;
            break;
        }
        expect_problem(res, 401, "/errors/wrong-password").await;
    }
    assert!(limited, "guesses are limited like logins");
    // Even the right password waits out the window now.
    let res = server
        .client()
        .post(&path, &json!({"password": "right"}))
        .await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
}
