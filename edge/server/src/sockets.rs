//! The core's `Sockets` port on this host: axum performs the WebSocket upgrade and a task
//! relays bytes (events from the in-process hub; terminals to the sandbox's agent).

use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use cloudos_core::ports::{SocketTarget, Sockets};
use cloudos_core::ApiError;

use crate::events::{self, EventHub};
use crate::terminal;

/// The largest message a desktop may send on `/events` (it sends none that matter).
const EVENTS_MAX_MESSAGE: usize = 4 * 1024;

/// Upgrades with axum and relays on tokio tasks.
pub struct NativeSockets {
    pub hub: Arc<EventHub>,
    pub rooms: Arc<crate::rooms::RoomHub>,
}

/// The read buffer of an event or room socket.
const SMALL_READ_BUFFER: usize = 4 * 1024;

#[async_trait]
impl Sockets for NativeSockets {
    async fn open(&self, req: Request, target: SocketTarget) -> Result<Response, ApiError> {
        let (mut parts, _) = req.into_parts();
        let ws = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
            Ok(ws) => ws,
            // A handshake axum cannot complete (no key, wrong version): its own answer.
            Err(rejection) => return Ok(rejection.into_response()),
        };
        // Bounded messages: a desktop only listens on /events, and terminal input is keys
        // and pastes; a larger message closes the socket (1009) instead of being buffered.
        // Event and room sockets are many and mostly idle: each reads through a small
        // buffer (tungstenite allocates 128 KiB per socket by default; a room of 200
        // editors kept 25 MiB in them), larger messages still arrive in pieces.
        match target {
            SocketTarget::Events { user_id, until_ms } => {
                let ws = ws
                    .read_buffer_size(SMALL_READ_BUFFER)
                    .max_message_size(EVENTS_MAX_MESSAGE)
                    .max_frame_size(EVENTS_MAX_MESSAGE);
                events::open(&self.hub, &user_id, until_ms, ws).await
            }
            SocketTarget::Collab {
                file_id,
                owner_id,
                access,
                until_ms,
                share_id,
                user_id,
            } => {
                let joiner = crate::rooms::Joiner {
                    access,
                    until_ms,
                    share_id,
                    user_id,
                };
                let ws = ws.read_buffer_size(SMALL_READ_BUFFER);
                crate::rooms::open(&self.rooms, &file_id, &owner_id, joiner, ws).await
            }
            SocketTarget::Terminal(ticket) => {
                let cap = cloudos_proto::terminal::MAX_CLIENT_MESSAGE;
                let ws = ws.max_message_size(cap).max_frame_size(cap);
                terminal::open(&ticket, ws).await
            }
        }
    }

    async fn share_revoked(&self, share_id: &str, _files: &[cloudos_core::ids::FileId]) {
        // Every open room here hears it: cheaper than being exact, and covers a room
        // joined through the link that the list has not recorded yet.
        self.rooms.revoke(share_id).await;
    }

    async fn session_ended(
        &self,
        user: &cloudos_core::ids::UserId,
        _files: &[cloudos_core::ids::FileId],
    ) {
        self.rooms.end_user(user).await;
    }

    async fn file_saved(&self, file: &cloudos_core::ids::FileId) {
        self.rooms.saved(file).await;
    }

    async fn lock_changed(&self, file: &cloudos_core::ids::FileId) {
        self.rooms.lock_changed(file).await;
    }

    async fn files_trashed(&self, files: &[cloudos_core::ids::FileId]) {
        for file in files {
            self.rooms.trashed(file).await;
        }
    }
}
