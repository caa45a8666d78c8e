//! The core's `Sockets` port on the Worker: an events socket is answered by the user's
//! `UserEvents` Durable Object, a room's by the file's `Room` object, a terminal by the agent's socket opened with a `fetch`
//! upgrade; either way the runtime carries the frames.

use async_trait::async_trait;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use cloudos_core::ports::{SocketTarget, Sockets};
use cloudos_core::ApiError;
use worker::send::SendFuture;
use worker::ObjectNamespace;

use crate::{events, rooms, terminal};

/// Hands upgrades to Durable Objects or fetched sockets.
pub struct WorkerSockets {
    pub events: ObjectNamespace,
    pub rooms: ObjectNamespace,
}

#[async_trait]
impl Sockets for WorkerSockets {
    async fn open(&self, _req: Request, target: SocketTarget) -> Result<Response, ApiError> {
        // Worker futures are !Send; the isolate is single-threaded, so this is sound.
        SendFuture::new(async move {
            let res = match target {
                SocketTarget::Events { user_id, until_ms } => {
                    let res = events::connect(&self.events, &user_id, until_ms)
                        .await
                        .map_err(ApiError::internal)?;
                    if res.status_code() == 429 {
                        return Err(cloudos_core::events::too_many_sockets());
                    }
                    res
                }
                // A problem the file's object answered (the file is not text, say) goes back
                // to the client as it is.
                SocketTarget::Collab {
                    file_id,
                    owner_id,
                    access,
                    until_ms,
                    share_id,
                    user_id,
                } => rooms::connect(
                    &self.rooms,
                    &file_id,
                    &owner_id,
                    access,
                    until_ms,
                    share_id.as_deref(),
                    user_id.as_ref(),
                )
                .await
                .map_err(ApiError::internal)?,
                SocketTarget::Terminal(ticket) => {
                    terminal::connect(&ticket).await.map_err(ApiError::from)?
                }
            };
            Ok(http::Response::<axum::body::Body>::from(res).into_response())
        })
        .await
    }

    async fn file_saved(&self, file: &cloudos_core::ids::FileId) {
        SendFuture::new(async move {
            if let Err(e) = rooms::tell(&self.rooms, file, rooms::News::Saved).await {
                worker::console_error!("telling a room of a save: {e}");
            }
        })
        .await
    }

    async fn lock_changed(&self, file: &cloudos_core::ids::FileId) {
        SendFuture::new(async move {
            if let Err(e) = rooms::tell(&self.rooms, file, rooms::News::Lock).await {
                worker::console_error!("telling a room of its lock: {e}");
            }
        })
        .await
    }

    async fn session_ended(
        &self,
        user: &cloudos_core::ids::UserId,
        files: &[cloudos_core::ids::FileId],
    ) {
        SendFuture::new(async move {
            for file in files {
                if let Err(e) = rooms::end_user(&self.rooms, file, user).await {
                    worker::console_error!("telling a room of a sign-out: {e}");
                }
            }
        })
        .await
    }

    async fn files_trashed(&self, files: &[cloudos_core::ids::FileId]) {
        SendFuture::new(async move {
            for file in files {
                if let Err(e) = rooms::trashed(&self.rooms, file).await {
                    worker::console_error!("telling a room its file was deleted: {e}");
                }
            }
        })
        .await
    }

    async fn share_revoked(&self, share_id: &str, files: &[cloudos_core::ids::FileId]) {
        SendFuture::new(async move {
            for file in files {
                if let Err(e) = rooms::revoke(&self.rooms, file, share_id).await {
                    worker::console_error!("telling a room a link was revoked: {e}");
                }
            }
        })
        .await
    }
}

/// Completes the close a client began on a hibernating socket, with its code (1005 and
/// 1006 describe a missing or abnormal close and may not be sent back: 1000 instead).
pub(crate) fn echo_close(ws: &worker::WebSocket, code: usize, reason: String) {
    let code = if (1005..=1006).contains(&code) {
        1000
    } else {
        code as u16
    };
    let _ = ws.close(Some(code), Some(reason));
}
