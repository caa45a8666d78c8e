//! `WS /events`: live toasts and refreshes for open desktops. Each host owns these sockets
//! (the native server's in-process hub, the Worker's per-user Durable Object), and the same
//! stories run against both.

use std::time::Duration;

use cloudos_tests::agent::refused;
use cloudos_tests::{expect_problem, TestServer};
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(ws_base: &str, token: &str) -> Socket {
    tokio_tungstenite::connect_async(format!("{ws_base}/events?token={token}"))
        .await
        .expect("the socket opens")
        .0
}

/// The next `n` events on `socket`, each within 5 s.
async fn next_events(socket: &mut Socket, n: usize) -> Vec<cloudos_proto::Event> {
    let mut events = Vec::new();
    while events.len() < n {
        let msg = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("an event within 5 s")
            .expect("the socket stays open")
            .expect("a frame");
        if let Message::Text(text) = msg {
            events.push(serde_json::from_str(&text).unwrap());
        }
    }
    events
}

#[tokio::test]
async fn the_event_socket_pushes_notifications_and_file_changes() {
    let server = TestServer::suite();
    let ann = server.new_user("ann").await;
    let bob = server.new_user("bob").await;
    let ws_base = server.base.replacen("http", "ws", 1);

    assert_eq!(refused(&format!("{ws_base}/events")).await, 401);
    // A plain HTTP request there is a typed error.
    expect_problem(
        ann.api.get("/events").await,
        426,
        "/errors/upgrade-required",
    )
    .await;

    // Two desktops of Ann's (e.g. two browser tabs) both hear about her upload.
    let token = ann.api.token.clone().unwrap();
    let mut first = open(&ws_base, &token).await;
    let mut second = open(&ws_base, &token).await;
    // Bob's activity is not Ann's business.
    bob.api.upload(None, &[("bob.txt", b"b".to_vec())]).await;
    let uploaded = ann.api.upload(None, &[("hello.txt", b"hi".to_vec())]).await;

    for socket in [&mut first, &mut second] {
        let events = next_events(socket, 2).await;
        assert_eq!(
            events[0],
            cloudos_proto::Event::FilesChanged { parent_id: None }
        );
        match &events[1] {
            cloudos_proto::Event::Notification { notification } => {
                assert_eq!(notification.kind, "upload.finished");
                assert_eq!(notification.body, "hello.txt");
                assert_eq!(
                    notification.file_id.as_deref(),
                    Some(uploaded[0].id.as_str())
                );
            }
            other => panic!("expected a notification, got {other:?}"),
        }
    }

    // A closed desktop stops receiving; the other keeps going.
    first.close(None).await.unwrap();
    let folder = ann.api.mkdir(None, "later").await;
    let events = next_events(&mut second, 1).await;
    assert_eq!(
        events[0],
        cloudos_proto::Event::FilesChanged { parent_id: None },
        "creating {:?} refreshes the root",
        folder.name
    );
}

/// A WebSocket opens with a single-use ticket instead of the API token in its URL; a ticket
/// is no way to call the API; a logout ends every token and unused ticket of the user.
#[tokio::test]
async fn a_ticket_opens_one_socket_and_a_logout_ends_the_session() {
    let server = TestServer::suite();
    let ann = server.new_user("ann").await;
    let ws_base = server.base.replacen("http", "ws", 1);
    let ticket = |res: reqwest::Response| async move {
        assert_eq!(res.status(), reqwest::StatusCode::CREATED);
        res.json::<cloudos_proto::Ticket>().await.unwrap().ticket
    };
    let first = ticket(ann.api.post("/auth/ticket", &serde_json::json!({})).await).await;
    let url = format!("{ws_base}/events?ticket={first}");
    let mut socket = tokio_tungstenite::connect_async(&url)
        .await
        .expect("the ticket opens the socket")
        .0;
    ann.api.upload(None, &[("t.txt", b"t".to_vec())]).await;
    assert!(!next_events(&mut socket, 1).await.is_empty());
    assert_eq!(refused(&url).await, 401, "a ticket opens one socket only");

    let second = ticket(ann.api.post("/auth/ticket", &serde_json::json!({})).await).await;
    // A ticket is for socket routes only, even on a request that looks like an upgrade.
    let res = server
        .client()
        .req(reqwest::Method::GET, &format!("/me?ticket={second}"))
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    expect_problem(res, 401, "/errors/unauthorized").await;

    // The upload's other events may still be on their way; drain them.
    let _ = tokio::time::timeout(Duration::from_millis(500), next_events(&mut socket, 8)).await;
    let out = ann.api.post("/auth/logout", &serde_json::json!({})).await;
    assert_eq!(out.status(), reqwest::StatusCode::NO_CONTENT);
    expect_problem(ann.api.get("/me").await, 401, "/errors/unauthorized").await;
    // The desktop listening is told, and its socket closes.
    let mut told = false;
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("the socket closes within 5 s of the logout");
        match msg {
            Some(Ok(Message::Text(text))) => {
                told |= serde_json::from_str::<cloudos_proto::Event>(&text)
                    .is_ok_and(|e| e == cloudos_proto::Event::SessionEnded);
            }
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
            Some(Ok(_)) => {}
        }
    }
    assert!(told, "the socket said the session ended before closing");
    assert_eq!(
        refused(&format!("{ws_base}/events?ticket={second}")).await,
        401,
        "an unused ticket dies with the session"
    );
}

/// One user keeps at most 32 event sockets open: the 33rd is refused before the upgrade
/// (429), and closing one makes room again.
#[tokio::test]
async fn a_user_cannot_pile_up_event_sockets() {
    let server = TestServer::suite();
    let ann = server.new_user("ann").await;
    let ws_base = server.base.replacen("http", "ws", 1);
    let token = ann.api.token.clone().unwrap();
    let mut open_sockets = Vec::new();
    for _ in 0..32 {
        open_sockets.push(open(&ws_base, &token).await);
    }
    let url = format!("{ws_base}/events?token={token}");
    assert_eq!(refused(&url).await, 429);
    // Another user is not affected.
    let bob = server.new_user("bob").await;
    open(&ws_base, bob.api.token.as_deref().unwrap()).await;
    open_sockets.remove(0).close(None).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio_tungstenite::connect_async(&url).await {
            Ok(_) => break,
            Err(e) => assert!(
                std::time::Instant::now() < deadline,
                "no room after a close: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(open_sockets);
}
