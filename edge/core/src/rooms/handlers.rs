//! `WS /collab/:fileId`: who may join a file's room is decided here ([`super::admit`]); the
//! host's `Sockets` port runs the room (the core's [`super::Room`]) and carries the bytes.

use axum::extract::{Request, State};
use axum::response::Response;
use serde::Deserialize;

use super::admit::admit;
use super::RoomError;
use crate::auth::SocketUser;
use crate::error::{ApiError, ApiPath, ApiQuery, WebSocketRequest};
use crate::ids::FileId;
use crate::ports::SocketTarget;
use crate::App;

/// The query of `WS /collab/:fileId`.
#[derive(Debug, Default, Deserialize)]
pub struct CollabQuery {
    /// A link to the file, or to a folder above it.
    pub share: Option<String>,
}

/// `WS /collab/:fileId?ticket=` (or `&share=`)
#[utoipa::path(get, path = "/collab/{file_id}", tag = "files",
    params(
        ("file_id" = String, Path, description = "a text file of the caller's, or one a link reaches"),
        ("ticket" = Option<String>, Query, description = "a single-use ticket from `POST /auth/ticket`"),
        ("token" = Option<String>, Query, description = "or an access token (older clients)"),
        ("share" = Option<String>, Query, description = "a link's token: a view link works signed out; an edit link needs a ticket or token too")),
    responses(
        (status = 101, description = "a WebSocket speaking the y-websocket protocol (sync and awareness) over the file's shared text `content`"),
        (status = 401, body = cloudos_proto::Problem),
        (status = 404, body = cloudos_proto::Problem, description = "no such file of the caller's"),
        (status = 410, body = cloudos_proto::Problem, description = "the link is revoked, expired, or does not reach the file"),
        (status = 422, body = cloudos_proto::Problem, description = "not text a room holds"),
        (status = 426, body = cloudos_proto::Problem)))]
pub async fn socket(
    user: Result<SocketUser, ApiError>,
    _ws: WebSocketRequest,
    ApiPath(file_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<CollabQuery>,
    State(app): State<App>,
    req: Request,
) -> Result<Response, ApiError> {
    let file_id = FileId::from(file_id);
    // Signed out is fine for a view link; otherwise the reason sign-in failed is the answer.
    let who = user.as_ref().ok().map(|u| (&u.id, &u.session));
    let admitted = match admit(&app, who, &file_id, q.share.as_deref()).await {
        Err(RoomError::SignInNeeded) => {
            return Err(user.err().unwrap_or_else(|| RoomError::SignInNeeded.into()))
        }
        other => other?,
    };
    let share_id = admitted.share_id.clone();
    let user_id = user.as_ref().ok().map(|u| u.id.clone());
    let target = SocketTarget::Collab {
        file_id: file_id.clone(),
        owner_id: admitted.owner,
        access: admitted.access,
        until_ms: admitted.until_ms,
        share_id: admitted.share_id,
        user_id,
    };
    let res = app.ports.sockets.open(req, target).await?;
    // A link revoked while the socket opened: the revocation may have looked for its rooms
    // before this one was recorded, so this room is told again.
    if let Some(share) = share_id {
        if crate::shares::stands(&app, &share).await.is_err() {
            app.ports.sockets.share_revoked(&share, &[file_id]).await;
        }
    }
    Ok(res)
}
