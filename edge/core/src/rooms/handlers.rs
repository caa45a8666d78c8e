//! `WS /collab/:fileId`: who may join a file's room is decided here; the host's `Sockets`
//! port runs the room (the core's [`super::Room`]) and carries the bytes.

use axum::extract::{Request, State};
use axum::response::Response;

use super::Access;
use crate::auth::SocketUser;
use crate::error::{ApiError, ApiPath, WebSocketRequest};
use crate::files::listing;
use crate::ids::FileId;
use crate::ports::SocketTarget;
use crate::App;

/// `WS /collab/:fileId?ticket=`
#[utoipa::path(get, path = "/collab/{file_id}", tag = "files",
    params(
        ("file_id" = String, Path, description = "a text file of the caller's"),
        ("ticket" = Option<String>, Query, description = "a single-use ticket from `POST /auth/ticket`"),
        ("token" = Option<String>, Query, description = "or an access token (older clients)")),
    responses(
        (status = 101, description = "a WebSocket speaking the y-websocket protocol (sync and awareness) over the file's shared text `content`"),
        (status = 401, body = cloudos_proto::Problem),
        (status = 404, body = cloudos_proto::Problem, description = "no such file of the caller's"),
        (status = 426, body = cloudos_proto::Problem)))]
pub async fn socket(
    user: SocketUser,
    _ws: WebSocketRequest,
    ApiPath(file_id): ApiPath<String>,
    State(app): State<App>,
    req: Request,
) -> Result<Response, ApiError> {
    let file_id = FileId::from(file_id);
    // Owners edit; share links (view and edit) join through the same room later.
    listing::get(&app, &user.id, &file_id).await?;
    let target = SocketTarget::Collab {
        file_id,
        owner_id: user.id.clone(),
        access: Access::Edit,
        until_ms: user.session.expires_at_ms,
    };
    app.ports.sockets.open(req, target).await
}
