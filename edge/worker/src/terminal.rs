//! `WS /terminal/:sandboxId/attach` on the Worker: the core decides who may attach and where
//! (`authorize`); the Worker opens the agent's WebSocket with a `fetch` upgrade and answers
//! the client with that socket, so the runtime carries the frames both ways and no code of
//! ours runs per frame.

use axum::extract::State;
use axum::response::{IntoResponse, Response as AxumResponse};
use axum::routing::get;
use axum::Router;
use cloudos_core::auth::AuthUser;
use cloudos_core::error::{ApiError, ApiPath, ApiQuery, WebSocketRequest};
use cloudos_core::sandboxes::attach::{agent_refused, authorize, AttachQuery, AttachTicket};
use cloudos_core::sandboxes::SandboxesError;
use cloudos_core::App;
use worker::{send::SendFuture, Fetch, Headers, Request, RequestInit, Response};

async fn attach(
    user: AuthUser,
    _ws: WebSocketRequest,
    ApiPath(sandbox_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<AttachQuery>,
    State(app): State<App>,
) -> AxumResponse {
    let ticket = match authorize(&app, &user.id, &sandbox_id, &q).await {
        Ok(t) => t,
        Err(e) => return ApiError::from(e).into_response(),
    };
    // Worker futures are !Send; the isolate is single-threaded, so this is sound.
    SendFuture::new(async move {
        match connect(&ticket).await {
            Ok(res) => res.into(),
            Err(e) => ApiError::from(e).into_response(),
        }
    })
    .await
}

/// The agent's socket: `fetch` with `Upgrade: websocket` (Workers open outbound WebSockets
/// over http(s) URLs), with the headers the provider routes by.
async fn connect(ticket: &AttachTicket) -> Result<Response, SandboxesError> {
    let unreachable = |e: worker::Error| agent_refused(None, e);
    // ws:// → http://, wss:// → https://
    let url = ticket.url.replacen("ws", "http", 1);
    let headers = Headers::new();
    headers.set("Upgrade", "websocket").map_err(unreachable)?;
    for (k, v) in &ticket.headers {
        headers.set(k, v).map_err(unreachable)?;
    }
    let mut init = RequestInit::new();
    init.with_headers(headers);
    let req = Request::new_with_init(&url, &init).map_err(unreachable)?;
    let res = Fetch::Request(req).send().await.map_err(unreachable)?;
    match res.status_code() {
        101 => Ok(res),
        status => Err(agent_refused(
            Some(status),
            format!("it answered {status} instead of switching protocols"),
        )),
    }
}

/// The terminal socket's route.
pub fn routes(app: App) -> Router {
    Router::new()
        .route("/terminal/{sandbox_id}/attach", get(attach))
        .with_state(app)
}
