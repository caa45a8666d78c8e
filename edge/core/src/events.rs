//! `WS /events`: the caller's live events (file changes, notifications), pushed as JSON text
//! frames. The core checks the token here; the host's `Sockets` port carries the socket,
//! closes it after an event that ends it (`Event::ends_socket`: a logout) and delivers
//! nothing after the session it was opened in expires.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::response::Response;

use crate::auth::{Session, SocketUser};
use crate::error::{ApiError, WebSocketRequest};
use crate::ids::UserId;
use crate::ports::SocketTarget;
use crate::App;

/// Event sockets one user may have open at once (tabs and devices): beyond that a new one
/// is refused before the upgrade, so a script cannot pile sockets up on a host.
pub const MAX_SOCKETS_PER_USER: usize = 32;

/// What a host answers when the user already has [`MAX_SOCKETS_PER_USER`] event sockets.
pub fn too_many_sockets() -> ApiError {
    ApiError {
        retry_after: Some(30),
        ..ApiError::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            "too-many-sockets",
            format!(
                "at most {MAX_SOCKETS_PER_USER} desktops of one user can listen for events at once; close one"
            ),
        )
    }
}

/// Who listens: a signed-in desktop ([`SocketUser`]), or the sync agent of one of the
/// user's running sandboxes (its pulls follow the user's file events).
pub struct Listener {
    pub id: UserId,
    pub session: Session,
}

impl FromRequestParts<App> for Listener {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        if let Some(token) = crate::auth::bearer(parts) {
            if let Some(agent) = crate::sync::caller(app, &token).await? {
                let session = crate::sync::session(app, &agent).await?;
                return Ok(Listener {
                    id: agent.user_id,
                    session,
                });
            }
        }
        let user = SocketUser::from_request_parts(parts, app).await?;
        Ok(Listener {
            id: user.id,
            session: user.session,
        })
    }
}

/// `WS /events?ticket=`
#[utoipa::path(get, path = "/events", tag = "notifications",
    params(("ticket" = Option<String>, Query, description = "a single-use ticket from `POST /auth/ticket` (browsers cannot set headers on a WebSocket)"),
        ("token" = Option<String>, Query, description = "or an access token (older clients)")),
    responses(
        (status = 101, description = "a WebSocket of `cloudos_proto::Event` JSON text frames"),
        (status = 401, body = cloudos_proto::Problem),
        (status = 429, body = cloudos_proto::Problem, description = "the user has as many event sockets open as allowed"),
        (status = 426, body = cloudos_proto::Problem, description = "not a WebSocket request")))]
pub async fn socket(
    user: Listener,
    _ws: WebSocketRequest,
    State(app): State<App>,
    req: Request,
) -> Result<Response, ApiError> {
    let target = SocketTarget::Events {
        user_id: user.id.clone(),
        until_ms: user.session.expires_at_ms,
    };
    let res = app.ports.sockets.open(req, target).await?;
    // The host subscribed the socket before answering: a logout that landed before that
    // published its `session_ended` to nobody, so the session is looked at once more.
    // (Dropping the answer drops the upgrade and the subscription with it.)
    if !crate::auth::accounts::session_stands(&app, &user.session).await? {
        return Err(crate::auth::AuthError::Unauthorized("signed out: sign in again").into());
    }
    Ok(res)
}
