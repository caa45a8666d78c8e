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

/// One broadcast channel per user with open sockets.
#[derive(Default)]
pub struct EventHub {
    users: Mutex<HashMap<String, broadcast::Sender<Arc<str>>>>,
}

impl EventHub {
    /// A receiver for the user's events, unless they have as many sockets as allowed (each
    /// open socket holds one receiver).
    fn subscribe(&self, user_id: &str) -> Option<broadcast::Receiver<Arc<str>>> {
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
            let _ = tx.send(text.into());
        }
    }
}

/// Carries an upgraded `/events` socket: the user's events out, pings to keep it alive.
pub async fn open(
    hub: &EventHub,
    user_id: &str,
    ws: WebSocketUpgrade,
) -> Result<Response, cloudos_core::ApiError> {
    let rx = hub
        .subscribe(user_id)
        .ok_or_else(cloudos_core::events::too_many_sockets)?;
    Ok(ws.on_upgrade(move |socket| relay(socket, rx)))
}

async fn relay(mut socket: WebSocket, mut rx: broadcast::Receiver<Arc<str>>) {
    let mut ping = tokio::time::interval(PING_EVERY);
    loop {
        tokio::select! {
            event = rx.recv() => match event {
                Ok(text) => {
                    if socket.send(Message::Text(text.as_ref().into())).await.is_err() {
                        return;
                    }
                }
                // The desktop refetches what it shows on reconnect, so skipping is safe.
                Err(broadcast::error::RecvError::Lagged(_)) => {}
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
        }
    }
}
