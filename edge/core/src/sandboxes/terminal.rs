//! `WS /terminal/:sandboxId/attach`: who may attach is decided here (`attach::authorize`);
//! the host's `Sockets` port connects to the agent and relays frames.

use axum::extract::{Request, State};
use axum::response::Response;

use super::attach::{authorize, AttachQuery};
use crate::auth::SocketUser;
use crate::error::{ApiError, ApiPath, ApiQuery, WebSocketRequest};
use crate::ids::SandboxId;
use crate::ports::SocketTarget;
use crate::App;

/// `WS /terminal/:sandboxId/attach?ticket=`
#[utoipa::path(get, path = "/terminal/{sandbox_id}/attach", tag = "sandboxes",
    params(
        ("sandbox_id" = String, Path, description = "the sandbox"),
        ("ticket" = Option<String>, Query, description = "a single-use ticket from `POST /auth/ticket`"),
        ("token" = Option<String>, Query, description = "or an access token (older clients)"),
        ("mode" = Option<String>, Query, description = "`view` to watch only"),
        ("share" = Option<String>, Query, description = "a view share of someone else's sandbox"),
        ("session" = Option<String>, Query, description = "which terminal (default `main`)"),
        ("since" = Option<u64>, Query, description = "the stream offset the client already has")),
    responses(
        (status = 101, description = "a WebSocket speaking `cloudos_proto::terminal`"),
        (status = 401, body = cloudos_proto::Problem),
        (status = 404, body = cloudos_proto::Problem, description = "no such sandbox of the caller's, or the terminal is not running"),
        (status = 426, body = cloudos_proto::Problem),
        (status = 502, body = cloudos_proto::Problem, description = "the sandbox's agent cannot be reached")))]
pub async fn attach(
    user: SocketUser,
    _ws: WebSocketRequest,
    ApiPath(sandbox_id): ApiPath<SandboxId>,
    ApiQuery(q): ApiQuery<AttachQuery>,
    State(app): State<App>,
    req: Request,
) -> Result<Response, ApiError> {
    let ticket = authorize(&app, &user.session, &sandbox_id, &q).await?;
    app.ports
        .sockets
        .open(req, SocketTarget::Terminal(ticket))
        .await
}
