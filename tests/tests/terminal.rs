//! Terminals through the public API on the native server: a user's sandbox, its shell over
//! `WS /terminal/:sandboxId/attach`, reloads, view-only shares, and another user kept out.
//! (The Worker does not offer sandboxes yet; `edge.rs` checks that it says so.)

use std::time::Duration;

use cloudos_proto::terminal::{Role, Sandbox, SandboxShare, ServerControl};
use cloudos_tests::agent::{refused, terminal_url, Term};
use cloudos_tests::{expect_not_found, expect_problem, ServerOptions, TestServer, User};
use reqwest::StatusCode;
use serde_json::json;

fn server() -> TestServer {
    TestServer::native(ServerOptions::default().env("CLOUDOS_SANDBOX_HOME_MB", 64))
}

async fn start_sandbox(u: &User) -> (StatusCode, Sandbox) {
    let res = u.api.post("/sandbox", &json!({})).await;
    let status = res.status();
    (status, res.json().await.unwrap())
}

fn attach_url(server: &TestServer, u: &User, sandbox: &str, extra: &str) -> String {
    terminal_url(
        &server.base,
        u.api.token.as_deref().unwrap(),
        sandbox,
        extra,
    )
}

#[tokio::test]
async fn a_user_gets_one_sandbox_with_a_real_shell_that_survives_a_reload() {
    let server = server();
    let ann = server.new_user("ann").await;
    let (status, sbx) = start_sandbox(&ann).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(sbx.state, "running");
    let (again, same) = start_sandbox(&ann).await;
    assert_eq!(again, StatusCode::OK, "one live sandbox per user");
    assert_eq!(same.id, sbx.id);
    let got: Sandbox = ann
        .api
        .get(&format!("/sandbox/{}", sbx.id))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got, sbx);

    let mut t = Term::connect(&attach_url(&server, &ann, &sbx.id, "")).await;
    let out = t.run("tty; whoami; echo A-$((20+1))", "A-21").await;
    assert!(out.contains("/dev/pts/"), "{out}");
    assert!(out.contains("user"), "{out}");
    t.run("cd /tmp && export KEEP=yes-$((3*3))", "$ ").await;
    t.close().await;

    // A reload: the same shell, its directory and variables, and the screen from before.
    let mut back = Term::connect(&attach_url(&server, &ann, &sbx.id, "")).await;
    back.wait_for("the scrollback", Duration::from_secs(5), |t| {
        t.text().contains("A-21")
    })
    .await;
    let out = back.run("echo $KEEP:$(pwd)", "yes-9").await;
    assert!(out.contains("yes-9:/tmp"), "{out}");
}

#[tokio::test]
async fn another_user_cannot_see_or_attach_to_a_sandbox() {
    let server = server();
    let ann = server.new_user("ann").await;
    let bob = server.new_user("bob").await;
    let (_, sbx) = start_sandbox(&ann).await;

    expect_not_found(bob.api.get(&format!("/sandbox/{}", sbx.id)).await).await;
    expect_not_found(bob.api.delete(&format!("/sandbox/{}", sbx.id)).await).await;
    expect_not_found(
        bob.api
            .post(&format!("/sandbox/{}/share", sbx.id), &json!({}))
            .await,
    )
    .await;
    assert_eq!(refused(&attach_url(&server, &bob, &sbx.id, "")).await, 404);
    let no_token = format!(
        "{}/terminal/{}/attach",
        server.base.replacen("http", "ws", 1),
        sbx.id
    );
    assert_eq!(refused(&no_token).await, 401);
    // A share for one sandbox opens no other.
    let (_, bobs) = start_sandbox(&bob).await;
    let share: SandboxShare = bob
        .api
        .post(&format!("/sandbox/{}/share", bobs.id), &json!({}))
        .await
        .json()
        .await
        .unwrap();
    let wrong = attach_url(&server, &bob, &sbx.id, &format!("&share={}", share.token));
    assert_eq!(refused(&wrong).await, 410);
    // Their processes run as host uids of their own (the server runs as root here): each
    // starts a `sleep` the test then finds among the host's processes.
    let uid_of = |u: &User, id: &str, secs: u32| {
        let url = attach_url(&server, u, id, "");
        async move {
            let mut t = Term::connect(&url).await;
            t.run(&format!("sleep {secs} & echo S-$((4+4))"), "S-8")
                .await;
            let wanted = format!("sleep\0{secs}\0");
            for _ in 0..50 {
                for entry in std::fs::read_dir("/proc").unwrap().flatten() {
                    let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
                    if cmdline == wanted.as_bytes() {
                        let status = std::fs::read_to_string(entry.path().join("status")).unwrap();
                        let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
                        return uid
                            .split_whitespace()
                            .nth(1)
                            .unwrap()
                            .parse::<u32>()
                            .unwrap();
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("no host process runs {wanted:?}");
        }
    };
    let anns = uid_of(&ann, &sbx.id, 61_001).await;
    let bobs_uid = uid_of(&bob, &bobs.id, 61_002).await;
    assert!(anns >= 1_000_000, "{anns}");
    assert_ne!(anns, bobs_uid, "two users never share a host uid");
}

#[tokio::test]
async fn a_view_only_share_lets_a_colleague_watch_live() {
    let server = server();
    let ann = server.new_user("ann").await;
    let bob = server.new_user("bob").await;
    let (_, sbx) = start_sandbox(&ann).await;
    let mut driver = Term::connect(&attach_url(&server, &ann, &sbx.id, "")).await;
    driver.run("echo READY-$((2*2))", "READY-4").await;

    let res = ann
        .api
        .post(
            &format!("/sandbox/{}/share", sbx.id),
            &json!({"expires_in": 600}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let share: SandboxShare = res.json().await.unwrap();
    assert!(share.url.contains(&sbx.id) && share.url.contains(&share.token));

    let url = attach_url(&server, &bob, &sbx.id, &format!("&share={}", share.token));
    let mut watcher = Term::connect(&url).await;
    assert!(matches!(
        watcher.hello(),
        Some(ServerControl::Hello {
            role: Role::Viewer,
            ..
        })
    ));
    watcher
        .wait_for("the screen so far", Duration::from_secs(5), |t| {
            t.text().contains("READY-4")
        })
        .await;
    let from = watcher.screen.len();
    driver.run("echo LIVE-$((5*5))", "LIVE-25").await;
    watcher.expect_from(from, "LIVE-25").await;
    watcher.type_keys("echo BOB-$((6*6))\r").await;
    driver.run("echo AFTER-$((7*7))", "AFTER-49").await;
    assert!(!driver.text().contains("BOB-36"), "the watcher cannot type");

    let bad = attach_url(&server, &bob, &sbx.id, "&share=forged");
    assert_eq!(refused(&bad).await, 410);
    // A watcher cannot start a shell in someone else's sandbox.
    let not_running = attach_url(
        &server,
        &bob,
        &sbx.id,
        &format!("&share={}&session=never-started", share.token),
    );
    assert_eq!(refused(&not_running).await, 404);
}

/// A view link is revocable: its owner deletes it and whoever watches through it is
/// dropped at once (before the owner's next output reaches them), and it opens nothing
/// more; nobody else can revoke it. Signing out ends the owner's own terminal sockets too.
#[tokio::test]
async fn a_revoked_view_link_dies_on_the_next_frame_and_a_logout_ends_the_owners_terminal() {
    use cloudos_proto::terminal::CLOSE_REVOKED;
    let server = server();
    let ann = server.new_user("ann").await;
    let bob = server.new_user("bob").await;
    let (_, sbx) = start_sandbox(&ann).await;
    let mut driver = Term::connect(&attach_url(&server, &ann, &sbx.id, "")).await;
    driver.run("echo READY-$((2*2))", "READY-4").await;
    let share: SandboxShare = ann
        .api
        .post(&format!("/sandbox/{}/share", sbx.id), &json!({}))
        .await
        .json()
        .await
        .unwrap();
    let url = attach_url(&server, &bob, &sbx.id, &format!("&share={}", share.token));
    let mut watcher = Term::connect(&url).await;
    let from = watcher.screen.len();
    driver.run("echo SEEN-$((3*3))", "SEEN-9").await;
    watcher.expect_from(from, "SEEN-9").await;

    let path = format!("/shares/{}", share.token);
    expect_not_found(bob.api.delete(&path).await).await;
    expect_not_found(ann.api.delete("/shares/made-up").await).await;
    let res = ann.api.delete(&path).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    // Dropped by the agent as the revocation lands, before any later output.
    let from = watcher.screen.len();
    assert_eq!(
        watcher.ends_within(Duration::from_secs(2)).await,
        Some(CLOSE_REVOKED)
    );
    driver.run("echo AFTER-$((4*4))", "AFTER-16").await;
    assert!(!watcher.text()[from..].contains("AFTER-16"));
    assert_eq!(refused(&url).await, 410, "a revoked link opens nothing");
    let again = ann.api.delete(&path).await;
    assert_eq!(
        again.status(),
        StatusCode::NO_CONTENT,
        "revoking twice is fine"
    );

    let out = ann.api.post("/auth/logout", &json!({})).await;
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        driver.ends_within(Duration::from_secs(2)).await,
        Some(CLOSE_REVOKED),
        "the owner's terminal ends with the session"
    );
}

#[tokio::test]
async fn the_home_outlives_a_stopped_sandbox() {
    let server = server();
    let ann = server.new_user("ann").await;
    let (_, first) = start_sandbox(&ann).await;
    let mut t = Term::connect(&attach_url(&server, &ann, &first.id, "")).await;
    t.run("echo kept-$((4+4)) > ~/notes.txt; echo W-$((1+1))", "W-2")
        .await;
    t.close().await;

    assert_eq!(
        ann.api
            .delete(&format!("/sandbox/{}", first.id))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let stopped: Sandbox = ann
        .api
        .get(&format!("/sandbox/{}", first.id))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stopped.state, "stopped");
    let url = attach_url(&server, &ann, &first.id, "");
    assert_eq!(refused(&url).await, 409);

    let (status, second) = start_sandbox(&ann).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_ne!(second.id, first.id);
    let mut t = Term::connect(&attach_url(&server, &ann, &second.id, "")).await;
    let out = t.run("cat ~/notes.txt; echo R-$((9+9))", "R-18").await;
    assert!(out.contains("kept-8"), "{out}");
}

/// Idle sandboxes give their place back: with room for one running sandbox, a second user
/// gets one once the first user's sandbox has gone unused for its idle time, and the first
/// user's next attach wakes theirs with the home as it was.
#[tokio::test]
async fn an_idle_sandbox_stops_and_wakes_on_the_next_attach() {
    let server = TestServer::native(
        ServerOptions::default()
            .env("CLOUDOS_SANDBOX_HOME_MB", 64)
            .env("CLOUDOS_SANDBOX_MAX", 1)
            .env("CLOUDOS_SANDBOX_IDLE_SECS", 1),
    );
    let (ann, bob) = (server.new_user("ann").await, server.new_user("bob").await);
    let (_, first) = start_sandbox(&ann).await;
    let mut t = Term::connect(&attach_url(&server, &ann, &first.id, "")).await;
    t.run("echo kept-$((4+4)) > ~/notes.txt; echo W-$((1+1))", "W-2")
        .await;
    // In use: an attached terminal keeps it running past its idle time.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    expect_problem(
        bob.api.post("/sandbox", &json!({})).await,
        429,
        "/errors/at-capacity",
    )
    .await;
    let out = t.run("echo STILL-$((3*3))", "STILL-9").await;
    assert!(out.contains("STILL-9"));
    t.close().await;
    // Unused: it stops, and its place goes to bob.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let second: Sandbox = loop {
        let res = bob.api.post("/sandbox", &json!({})).await;
        if res.status() == StatusCode::CREATED {
            break res.json().await.unwrap();
        }
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(
            std::time::Instant::now() < deadline,
            "ann's idle sandbox never stopped"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let mut b = Term::connect(&attach_url(&server, &bob, &second.id, "")).await;
    b.run("echo B-$((2+3))", "B-5").await;
    b.close().await;
    // Ann's sandbox is still hers and wakes on her next attach once bob's is idle too.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let mut t = loop {
        match Term::try_connect(&attach_url(&server, &ann, &first.id, "")).await {
            Ok(t) => break t,
            Err(status) => {
                assert_eq!(status, 429, "only at capacity while bob's sandbox runs");
                assert!(
                    std::time::Instant::now() < deadline,
                    "bob's idle sandbox never stopped"
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    };
    let out = t.run("cat ~/notes.txt; echo R-$((9+9))", "R-18").await;
    assert!(out.contains("kept-8"), "{out}");
}

#[tokio::test]
async fn bad_requests_get_typed_errors() {
    let server = server();
    let ann = server.new_user("ann").await;
    let (_, sbx) = start_sandbox(&ann).await;
    let bad_name = attach_url(&server, &ann, &sbx.id, "&session=../etc");
    assert_eq!(refused(&bad_name).await, 400);
    // A bad query is a problem too (checked before the upgrade, so plain HTTP shows it).
    let bad_since = ann
        .api
        .req(
            reqwest::Method::GET,
            &format!("/terminal/{}/attach?since=soon", sbx.id),
        )
        .header("upgrade", "websocket")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-version", "13")
        .send()
        .await
        .unwrap();
    let p = expect_problem(bad_since, 400, "/errors/bad-request").await;
    assert!(p.detail.contains("since"), "{}", p.detail);
    let plain = ann.api.get(&format!("/terminal/{}/attach", sbx.id)).await;
    expect_problem(plain, 426, "/errors/upgrade-required").await;
    let res = ann
        .api
        .post(
            &format!("/sandbox/{}/share", sbx.id),
            &json!({"expires_in": "soon"}),
        )
        .await;
    // A body that is not the request's shape is the same problem as one that is not JSON.
    expect_problem(res, 400, "/errors/invalid-json").await;
    expect_not_found(ann.api.get("/sandbox/nope").await).await;
    let anon = server.client().post("/sandbox", &json!({})).await;
    assert_eq!(anon.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_host_without_sandboxes_says_so() {
    let server =
        TestServer::native(ServerOptions::default().env("CLOUDOS_SANDBOX_PROVIDER", "none"));
    let ann = server.new_user("ann").await;
    for _ in 0..2 {
        let res = ann.api.post("/sandbox", &json!({})).await;
        expect_problem(res, 503, "/errors/sandboxes-unavailable").await;
    }
}

/// A server that is not root cannot limit sandboxes or give them a network of their own,
/// so it runs none unless told to run them without: never unlimited by surprise. Told so,
/// it runs them (bubblewrap without root) and the shell works.
#[tokio::test]
async fn without_root_sandboxes_need_an_explicit_opt_out_of_limits() {
    let nobody = 65534;
    let limited = TestServer::native(ServerOptions {
        run_as: Some(nobody),
        ..ServerOptions::default().env("CLOUDOS_SANDBOX_HOME_MB", 64)
    });
    let ann = limited.new_user("ann").await;
    let p = expect_problem(
        ann.api.post("/sandbox", &json!({})).await,
        503,
        "/errors/sandboxes-unavailable",
    )
    .await;
    for fix in [
        "--sandbox-limits false",
        "--sandbox-home-mb 0",
        "--sandbox-network none",
    ] {
        assert!(
            p.detail.contains("does not run as root") && p.detail.contains(fix),
            "{}",
            p.detail
        );
    }
    let unlimited = TestServer::native(ServerOptions {
        run_as: Some(nobody),
        ..ServerOptions::default()
            .env("CLOUDOS_SANDBOX_LIMITS", "false")
            .env("CLOUDOS_SANDBOX_HOME_MB", 0)
            .env("CLOUDOS_SANDBOX_NETWORK", "none")
    });
    let bob = unlimited.new_user("bob").await;
    let (status, sbx) = start_sandbox(&bob).await;
    assert_eq!(status, StatusCode::CREATED);
    let mut t = Term::connect(&attach_url(&unlimited, &bob, &sbx.id, "")).await;
    let out = t.run("id -u; echo N-$((2+5))", "N-7").await;
    assert!(out.contains("1000"), "{out}");
}

/// A root server does not run sandboxes without bubblewrap: nothing would drop the shell's
/// root. (A server that is not root refuses too, for want of limits.)
#[tokio::test]
async fn sandboxes_without_bubblewrap_are_refused() {
    let server = TestServer::native(ServerOptions::default().env("CLOUDOS_SANDBOX_BWRAP", "false"));
    let ann = server.new_user("ann").await;
    let p = expect_problem(
        ann.api.post("/sandbox", &json!({})).await,
        503,
        "/errors/sandboxes-unavailable",
    )
    .await;
    let why = if cloudos_tests::running_as_root() {
        "bubblewrap"
    } else {
        "does not run as root"
    };
    assert!(p.detail.contains(why), "{}", p.detail);
}
