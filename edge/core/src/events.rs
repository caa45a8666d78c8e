//! `WS /events`: the caller's live events (file changes, notifications), pushed as JSON text
//! frames. The core checks the token here; the host's `Sockets` port carries the socket.

use axum::extract::{Request, State};
use axum::response::Response;

use crate::auth::AuthUser;
use crate::error::{ApiError, WebSocketRequest};
use crate::ports::SocketTarget;
use crate::App;

/// `WS /events?token=`
#[utoipa::path(get, path = "/events", tag = "desktop",
    params(("token" = String, Query, description = "an access token (browsers cannot set headers on a WebSocket)")),
    responses(
        (status = 101, description = "a WebSocket of `cloudos_proto::Event` JSON text frames"),
        (status = 401, body = cloudos_proto::Problem),
        (status = 426, body = cloudos_proto::Problem, description = "not a WebSocket request")))]
pub async fn socket(
    user: AuthUser,
    _ws: WebSocketRequest,
    State(app): State<App>,
    req: Request,
) -> Result<Response, ApiError> {
    let target = SocketTarget::Events { user_id: user.id };
    app.ports.sockets.open(req, target).await
}
