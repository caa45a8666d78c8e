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
