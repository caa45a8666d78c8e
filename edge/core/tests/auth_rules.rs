//! The account services' rules over a real database: unique emails, the login throttle and
//! its window, tokens of accounts that are gone.

use cloudos_core::auth::{accounts, tickets, AuthError};
use cloudos_proto::{LoginRequest, SignupRequest};
use cloudos_testing::TestApp;

fn login(email: &str, password: &str) -> LoginRequest {
    LoginRequest {
        email: email.into(),
        password: password.into(),
    }
}

#[tokio::test]
async fn an_email_has_one_account_whatever_its_case() {
    let t = TestApp::new().await;
    t.user("ann").await;
    let again = SignupRequest {
        email: " ANN@Example.com".into(),
        password: "another password".into(),
        name: "Ann Again".into(),
    };
    let err = accounts::signup(&t.app, &again).await.unwrap_err();
    assert!(matches!(err, AuthError::EmailTaken), "{err:?}");
    let ok = accounts::login(
        &t.app,
        &login("Ann@EXAMPLE.com", "correct horse battery"),
        None,
    )
    .await
    .unwrap();
    assert_eq!(ok.user.email, "ann@example.com");
}

#[tokio::test]
async fn failed_logins_are_throttled_per_email_until_the_window_passes() {
    let t = TestApp::builder()
        .config(|c| {
            c.login_max_failures = 3;
            c.login_window_secs = 60;
        })
        .build()
        .await;
    t.user("ann").await;
    for _ in 0..3 {
        let err = accounts::login(&t.app, &login("ann@example.com", "wrong"), None)
            .await
            .unwrap_err();
        assert!(matches!(err, AuthError::WrongCredentials), "{err:?}");
    }
    // Even the right password waits: the throttle is checked before the password.
    let err = accounts::login(
        &t.app,
        &login("ann@example.com", "correct horse battery"),
        None,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, AuthError::TooManyTries { retry_after: 60 }),
        "{err:?}"
    );
    t.user("bob").await;
    accounts::login(
        &t.app,
        &login("bob@example.com", "correct horse battery"),
        None,
    )
    .await
    .expect("another email is not throttled");
    t.clock.advance(60_000);
    accounts::login(
        &t.app,
        &login("ann@example.com", "correct horse battery"),
        None,
    )
    .await
    .expect("the window has passed");
}

#[tokio::test]
async fn a_token_stands_for_its_account_until_it_expires_or_the_account_is_gone() {
    let t = TestApp::new().await;
    let (ann, token) = t.session("ann").await;
    let session = accounts::authenticate(&t.app, &token).await.unwrap();
    assert_eq!(session.user_id, ann);
    assert_eq!(
        session.expires_at_ms,
        t.app.now_ms() + t.app.config.token_ttl_secs * 1000
    );
    assert!(accounts::authenticate(&t.app, "not-a-token").await.is_err());
    t.clock.advance(t.app.config.token_ttl_secs * 1000);
    let err = accounts::authenticate(&t.app, &token).await.unwrap_err();
    assert!(
        matches!(err, AuthError::Unauthorized("token expired")),
        "{err:?}"
    );
    let (bob, fresh) = t.session("bob").await;
    assert_eq!(
        accounts::authenticate(&t.app, &fresh)
            .await
            .unwrap()
            .user_id,
        bob
    );
    t.remove_account(&bob).await;
    let err = accounts::authenticate(&t.app, &fresh).await.unwrap_err();
    assert!(
        matches!(err, AuthError::Unauthorized(m) if m.contains("no longer")),
        "{err:?}"
    );
}

#[tokio::test]
async fn oversized_logins_cost_nothing_and_old_failures_are_forgotten() {
    let t = TestApp::builder()
        .config(|c| c.login_window_secs = 60)
        .build()
        .await;
    let rows = |t: &TestApp| {
        let meta = t.app.ports.meta.clone();
        async move {
            meta.query(cloudos_core::stmt!("SELECT email FROM login_failures"))
                .await
                .unwrap()
                .len()
        }
    };
    let long = format!("{}@example.com", "a".repeat(300));
    let err = accounts::login(&t.app, &login(&long, "whatever"), None)
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::WrongCredentials), "{err:?}");
    assert_eq!(
        rows(&t).await,
        0,
        "no throttle row for an email no account can have"
    );
    for i in 0..3 {
        let _ = accounts::login(&t.app, &login(&format!("x{i}@example.com"), "nope"), None).await;
    }
    assert_eq!(rows(&t).await, 3);
    t.clock.advance(61_000);
    let _ = accounts::login(&t.app, &login("late@example.com", "nope"), None).await;
    assert_eq!(rows(&t).await, 1, "rows whose window ended are pruned");
}

#[tokio::test]
async fn a_logout_ends_every_token_of_the_user_and_a_new_login_works() {
    let t = TestApp::new().await;
    let (ann, first) = t.session("ann").await;
    let session = accounts::authenticate(&t.app, &first).await.unwrap();
    let second = accounts::login(
        &t.app,
        &login("ann@example.com", "correct horse battery"),
        None,
    )
    .await
    .unwrap()
    .token;
    let (_, bobs) = t.session("bob").await;
    let ticket = tickets::issue(&t.app, &session).await.unwrap();
    accounts::logout(&t.app, &session).await.unwrap();
    assert_eq!(
        t.events.take(),
        vec![(ann.to_string(), cloudos_proto::Event::SessionEnded)],
        "the desktops listening are told"
    );
    for token in [&first, &second] {
        let err = accounts::authenticate(&t.app, token).await.unwrap_err();
        assert!(matches!(err, AuthError::Unauthorized(_)), "{err:?}");
    }
    assert!(
        tickets::redeem(&t.app, &ticket.ticket).await.is_err(),
        "an unused ticket dies with the session"
    );
    assert!(
        accounts::authenticate(&t.app, &bobs).await.is_ok(),
        "others stay signed in"
    );
    let again = accounts::login(
        &t.app,
        &login("ann@example.com", "correct horse battery"),
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        accounts::authenticate(&t.app, &again.token)
            .await
            .unwrap()
            .user_id,
        ann
    );
}

#[tokio::test]
async fn a_ticket_opens_one_socket_once_within_a_minute() {
    let t = TestApp::new().await;
    let ann = t.signed_in("ann").await;
    let ticket = tickets::issue(&t.app, &ann).await.unwrap();
    assert_eq!(
        ticket.expires_at,
        t.app.now_ms() + tickets::TICKET_TTL_SECS * 1000
    );
    assert_eq!(tickets::redeem(&t.app, &ticket.ticket).await.unwrap(), ann);
    let used = tickets::redeem(&t.app, &ticket.ticket).await.unwrap_err();
    assert!(matches!(used, AuthError::Unauthorized(_)), "{used:?}");
    let late = tickets::issue(&t.app, &ann).await.unwrap();
    t.clock.advance(tickets::TICKET_TTL_SECS * 1000);
    assert!(
        tickets::redeem(&t.app, &late.ticket).await.is_err(),
        "expired"
    );
    assert!(tickets::redeem(&t.app, "made-up").await.is_err());
    // Two sockets racing with one ticket: one gets in.
    let shared = tickets::issue(&t.app, &ann).await.unwrap();
    let (a, b) = tokio::join!(
        tickets::redeem(&t.app, &shared.ticket),
        tickets::redeem(&t.app, &shared.ticket)
    );
    assert_eq!(a.is_ok() as u8 + b.is_ok() as u8, 1, "{a:?} {b:?}");
    // A ticket asked for just before a logout and stored just after it (the request's
    // token was checked before the logout landed) opens nothing: it carries its session.
    accounts::logout(&t.app, &ann).await.unwrap();
    let stored_late = tickets::issue(&t.app, &ann).await.unwrap();
    assert!(
        tickets::redeem(&t.app, &stored_late.ticket).await.is_err(),
        "a ticket of an ended session"
    );
}

/// One client trying many emails is throttled as one email is: after the client's limit,
/// every login from it waits (before any hashing), whatever the email, while another client,
/// and the same client's IPv6 neighbours outside its /64, are not held up.
#[tokio::test]
async fn failed_logins_are_throttled_per_client_whatever_the_emails() {
    use cloudos_core::auth::ClientAddr;
    let t = TestApp::builder()
        .config(|c| {
            c.login_max_failures = 100;
            c.login_max_client_failures = 4;
            c.login_window_secs = 60;
        })
        .build()
        .await;
    t.user("ann").await;
    let at = |a: &str| Some(ClientAddr(a.parse().unwrap()));
    for i in 0..4 {
        let err = accounts::login(
            &t.app,
            &login(&format!("guess{i}@example.com"), "x"),
            at("2001:db8::1"),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, AuthError::WrongCredentials), "{err:?}");
    }
    let ann = login("ann@example.com", "correct horse battery");
    let err = accounts::login(&t.app, &ann, at("2001:db8::2"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, AuthError::TooManyTries { retry_after: 60 }),
        "the same /64: {err:?}"
    );
    accounts::login(&t.app, &ann, at("192.0.2.1"))
        .await
        .expect("another client");
    accounts::login(&t.app, &ann, at("2001:db8:0:1::1"))
        .await
        .expect("another /64");
    t.clock.advance(60_000);
    accounts::login(&t.app, &ann, at("2001:db8::1"))
        .await
        .expect("the window has passed");
}

/// A burst of attempts at once is counted as it comes: no more of them reach the password
/// check than the limit allows, however they interleave.
#[tokio::test]
async fn a_burst_of_logins_at_once_gets_no_more_tries_than_the_limit() {
    let t = TestApp::builder()
        .config(|c| c.login_max_failures = 3)
        .build()
        .await;
    t.user("ann").await;
    let wrong = login("ann@example.com", "wrong");
    let attempts = (0..12).map(|_| accounts::login(&t.app, &wrong, None));
    let results = futures_util::future::join_all(attempts).await;
    let checked = results
        .iter()
        .filter(|r| matches!(r, Err(AuthError::WrongCredentials)))
        .count();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(AuthError::TooManyTries { .. })))
        .count();
    assert_eq!((checked, refused), (3, 9), "{results:?}");
}
