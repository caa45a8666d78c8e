//! The core's `Sockets` port on the Worker: an events socket is answered by the user's
//! `UserEvents` Durable Object, a terminal by the agent's socket opened with a `fetch`
//! upgrade; either way the runtime carries the frames.

use async_trait::async_trait;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use cloudos_core::ports::{SocketTarget, Sockets};
use cloudos_core::ApiError;
use worker::send::SendFuture;
use worker::ObjectNamespace;

use crate::{events, terminal};

/// Hands upgrades to Durable Objects or fetched sockets.
pub struct WorkerSockets {
    pub events: ObjectNamespace,
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
                // The Durable Object that runs a file's room on this host is the editor
                // issue's next step.
                SocketTarget::Collab { .. } => {
                    return Err(ApiError::new(
                        http::StatusCode::NOT_IMPLEMENTED,
                        "collab-unavailable",
                        "live rooms run on the native server only so far",
                    ))
                }
                SocketTarget::Terminal(ticket) => {
                    terminal::connect(&ticket).await.map_err(ApiError::from)?
                }
            };
            Ok(http::Response::<axum::body::Body>::from(res).into_response())
        })
        .await
    }
}
