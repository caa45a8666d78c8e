//! Live events for open desktops: an in-process hub, and the relay of one `WS /events`
//! socket (the core declares the route and checks the token).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use cloudos_core::ports::Events;
use tokio::sync::broadcast;

/// Events a slow socket may fall behind by before it skips ahead.
const BACKLOG: usize = 64;
/// Keeps idle sockets open through proxies and finds dead peers.
const PING_EVERY: Duration = Duration::from_secs(25);

/// One event as sent: its JSON, and whether the socket closes after it.
type Sent = (Arc<str>, bool);

/// One broadcast channel per user with open sockets.
#[derive(Default)]
pub struct EventHub {
    users: Mutex<HashMap<String, broadcast::Sender<Sent>>>,
}

impl EventHub {
    /// A receiver for the user's events, unless they have as many sockets as allowed (each
    /// open socket holds one receiver).
    fn subscribe(&self, user_id: &str) -> Option<broadcast::Receiver<Sent>> {
        let mut users = self.users.lock().expect("hub lock");
        let tx = users
            .entry(user_id.to_owned())
            .or_insert_with(|| broadcast::channel(BACKLOG).0);
        (tx.receiver_count() < cloudos_core::events::MAX_SOCKETS_PER_USER).then(|| tx.subscribe())
    }
}

impl Events for EventHub {
    fn publish(&self, user_id: &str, event: &cloudos_proto::Event) {
        let mut users = self.users.lock().expect("hub lock");
        let Some(tx) = users.get(user_id) else {
            return;
        };
        if tx.receiver_count() == 0 {
            users.remove(user_id);
            return;
        }
        if let Ok(text) = serde_json::to_string(event) {
            let _ = tx.send((text.into(), event.ends_socket()));
        }
    }
}

/// Carries an upgraded `/events` socket until `until_ms` (the session's expiry): the
/// user's events out, pings to keep it alive.
pub async fn open(
    hub: &EventHub,
    user_id: &str,
    until_ms: i64,
    ws: WebSocketUpgrade,
) -> Result<Response, cloudos_core::ApiError> {
    let rx = hub
        .subscribe(user_id)
        .ok_or_else(cloudos_core::events::too_many_sockets)?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let left = Duration::from_millis(until_ms.saturating_sub(now_ms).max(0) as u64);
    Ok(ws.on_upgrade(move |socket| relay(socket, rx, left)))
}

async fn relay(mut socket: WebSocket, mut rx: broadcast::Receiver<Sent>, left: Duration) {
    let mut ping = tokio::time::interval(PING_EVERY);
    let expired = tokio::time::sleep(left);
    tokio::pin!(expired);
    loop {
        tokio::select! {
            event = rx.recv() => match event {
                Ok((text, ends)) => {
                    if socket.send(Message::Text(text.as_ref().into())).await.is_err() || ends {
                        let _ = socket.send(Message::Close(None)).await;
                        return;
                    }
                }
                // Events were skipped (one of them may have ended the session): the socket
                // closes, and the desktop refetches what it shows when it reconnects.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let _ = socket.send(Message::Close(None)).await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
            _ = ping.tick() => {
                if socket.send(Message::Ping(Vec::new().into())).await.is_err() {
                    return;
                }
            }
            () = &mut expired => {
                let close = axum::extract::ws::CloseFrame {
                    code: cloudos_proto::terminal::CLOSE_EXPIRED,
                    reason: "the session expired; sign in again".into(),
                };
                let _ = socket.send(Message::Close(Some(close))).await;
                return;
            }
        }
    }
}
