//! The agent's HTTP surface: `WS /attach`, `POST /exec`, `POST /exec/stream`, `POST
//! /revoke`, `GET /healthz`. Every request carries a sandbox token (`Authorization: Bearer`
//! or `?token=`).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use cloudos_proto::terminal::{
    AgentClaims, ClientControl, ExecRequest, Revoke, Role, ServerControl, CLOSE_EXPIRED,
    CLOSE_REVOKED,
};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;

use crate::auth::{AgentAuth, AuthError};
use crate::exec::{self, ExecError};
use crate::grants::Grants;
use crate::host::{AttachError, SessionHandle, Terminals};
use crate::idle::{Activity, Busy};
use crate::isolation::Isolation;
use crate::session::{ClientId, Frame};

/// Frames written before the socket is flushed, when a client has a backlog.
const FLUSH_EVERY: usize = 16;
/// How long one write to a client may take: a client that stopped reading (its TCP window
/// full) is dropped, so its socket and place are freed, rather than waited on for good.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// Keeps idle sockets open through proxies and finds dead peers.
const PING_EVERY: Duration = Duration::from_secs(25);

/// What the handlers share.
#[derive(Clone)]
pub struct AgentState {
    pub auth: AgentAuth,
    pub terminals: Arc<Terminals>,
    pub isolation: Arc<Isolation>,
    /// What uses the sandbox now (it stops when nothing has for its idle time).
    pub activity: Arc<Activity>,
    /// Grants the edge revoked (share links, ended sessions).
    pub grants: Arc<Grants>,
    /// Places for terminal sockets: at most `MAX_SOCKETS_PER_SANDBOX` at once.
    pub sockets: Arc<tokio::sync::Semaphore>,
    /// Viewers' places, taken besides one of `sockets`.
    pub viewer_sockets: Arc<tokio::sync::Semaphore>,
}

impl AgentState {
    /// The state of an agent with no revocations and every socket place free.
    pub fn new(
        auth: AgentAuth,
        terminals: Arc<Terminals>,
        isolation: Arc<Isolation>,
        activity: Arc<Activity>,
    ) -> Self {
        AgentState {
            auth,
            terminals,
            isolation,
            activity,
            grants: Arc::new(Grants::default()),
            sockets: Arc::new(tokio::sync::Semaphore::new(
                cloudos_proto::terminal::MAX_SOCKETS_PER_SANDBOX,
            )),
            viewer_sockets: Arc::new(tokio::sync::Semaphore::new(
                cloudos_proto::terminal::MAX_VIEWER_SOCKETS_PER_SANDBOX,
            )),
        }
    }
}

/// An error as `application/problem+json`.
struct Problem(StatusCode, &'static str, String);

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        // The same problem+json shape (and `/errors/<slug>` types) as the edge's API.
        let body = cloudos_proto::Problem {
            kind: format!("/errors/{}", self.1),
            title: self.0.canonical_reason().unwrap_or("Error").to_owned(),
            status: self.0.as_u16(),
            detail: self.2,
        };
        let mut res = (self.0, Json(body)).into_response();
        res.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/problem+json"),
        );
        res
    }
}

impl From<AuthError> for Problem {
    fn from(e: AuthError) -> Self {
        Problem(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string())
    }
}

impl From<ExecError> for Problem {
    fn from(e: ExecError) -> Self {
        match e {
            ExecError::EmptyArgv | ExecError::BadEnv(_) => {
                Problem(StatusCode::BAD_REQUEST, "bad-request", e.to_string())
            }
            ExecError::Spawn(_) => Problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "exec-failed",
                e.to_string(),
            ),
        }
    }
}

impl From<AttachError> for Problem {
    fn from(e: AttachError) -> Self {
        match e {
            AttachError::NotRunning => Problem(StatusCode::NOT_FOUND, "not-found", e.to_string()),
            AttachError::Spawn(_) => Problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "shell-failed",
                e.to_string(),
            ),
        }
    }
}

#[derive(Debug, Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

fn claims(
    state: &AgentState,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<AgentClaims, Problem> {
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    Ok(state.auth.verify(bearer.or(query))?)
}

/// Seconds since the Unix epoch (token times are in these).
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Refuses a token one of whose grants was revoked, or that has expired.
fn standing(state: &AgentState, c: &AgentClaims) -> Result<(), Problem> {
    if c.grants.iter().any(|g| state.grants.is_revoked(g)) {
        return Err(Problem(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the access this token rests on was revoked".into(),
        ));
    }
    if c.until.is_some_and(|until| until <= unix_now()) {
        return Err(Problem(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the access this token rests on has expired".into(),
        ));
    }
    Ok(())
}

fn driver(state: &AgentState, headers: &HeaderMap, query: Option<&str>) -> Result<(), Problem> {
    let c = claims(state, headers, query)?;
    if c.role != Role::Driver {
        return Err(Problem(
            StatusCode::FORBIDDEN,
            "view-only",
            "a view-only token cannot run commands".into(),
        ));
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
struct AttachQuery {
    token: Option<String>,
    /// Which terminal of the sandbox (default `main`).
    session: Option<String>,
    /// `view` attaches as a viewer even with a driver token.
    mode: Option<String>,
    /// The stream offset the client already has.
    since: Option<u64>,
}

async fn attach(
    ws: WebSocketUpgrade,
    headers: HeaderMap,
    Query(q): Query<AttachQuery>,
    State(state): State<AgentState>,
) -> Result<Response, Problem> {
    let c = claims(&state, &headers, q.token.as_deref())?;
    standing(&state, &c)?;
    let full = |n: usize| {
        Problem(
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-sockets",
            format!("this sandbox has {n} such terminal sockets open; close one"),
        )
    };
    // Viewers through links take a place of their own too, so the owner keeps room.
    let viewer_place = match c.role {
        Role::Viewer => Some(
            state
                .viewer_sockets
                .clone()
                .try_acquire_owned()
                .map_err(|_| full(cloudos_proto::terminal::MAX_VIEWER_SOCKETS_PER_SANDBOX))?,
        ),
        Role::Driver => None,
    };
    let place = state
        .sockets
        .clone()
        .try_acquire_owned()
        .map_err(|_| full(cloudos_proto::terminal::MAX_SOCKETS_PER_SANDBOX))?;
    let role = if q.mode.as_deref() == Some("view") {
        Role::Viewer
    } else {
        c.role
    };
    let name = q.session.unwrap_or_else(|| "main".into());
    if !cloudos_proto::terminal::valid_session_name(&name) {
        return Err(Problem(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "a session name is 1–64 letters, digits, '-' or '_'".into(),
        ));
    }
    let (handle, attached) = state.terminals.attach(&name, role, q.since).await?;
    let busy = state.activity.busy();
    let standing = Standing {
        grant: c.grants,
        until: c.until,
        grants: state.grants.clone(),
    };
    Ok(ws
        .max_message_size(cloudos_proto::terminal::MAX_CLIENT_MESSAGE)
        .max_frame_size(cloudos_proto::terminal::MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| {
            client(
                socket,
                handle,
                attached.id,
                attached.frames,
                standing,
                (busy, place, viewer_place),
            )
        }))
}

/// What a socket's access rests on: it ends when one of its grants is revoked or `until`
/// passes.
struct Standing {
    grant: Vec<String>,
    until: Option<u64>,
    grants: Arc<Grants>,
}

impl Standing {
    /// Resolves when the socket must end, with the close frame that says why.
    async fn ended(&self) -> CloseFrame {
        let mut revocations = self.grants.watch();
        let expiry = async {
            match self.until {
                Some(until) => {
                    let left = until.saturating_sub(unix_now());
                    tokio::time::sleep(Duration::from_secs(left)).await;
                }
                None => std::future::pending().await,
            }
        };
        let revoked = async {
            if self.grant.is_empty() {
                return std::future::pending().await;
            }
            loop {
                if self.grant.iter().any(|g| self.grants.is_revoked(g)) {
                    return;
                }
                if revocations.changed().await.is_err() {
                    return std::future::pending().await;
                }
            }
        };
        tokio::select! {
            () = expiry => CloseFrame { code: CLOSE_EXPIRED, reason: "the access expired".into() },
            () = revoked => CloseFrame { code: CLOSE_REVOKED, reason: "the access was revoked".into() },
        }
    }
}

async fn client(
    socket: WebSocket,
    handle: SessionHandle,
    id: ClientId,
    mut frames: tokio::sync::mpsc::Receiver<Frame>,
    standing: Standing,
    _held: (
        Busy,
        tokio::sync::OwnedSemaphorePermit,
        Option<tokio::sync::OwnedSemaphorePermit>,
    ),
) {
    let (mut tx, mut rx) = socket.split();
    let mut ping = tokio::time::interval(PING_EVERY);
    let ended = standing.ended();
    tokio::pin!(ended);
    let mut close = None;
    // Input read from the socket and waiting for room at the shell: the socket is not read
    // meanwhile, so a paste into a program that does not read waits in TCP, not here.
    let mut waiting: Option<Bytes> = None;
    loop {
        tokio::select! {
            // An ended access goes first: nothing more is sent on it once it is known.
            biased;
            frame = &mut ended => {
                close = Some(frame);
                break;
            }
            () = async { handle.input(id, waiting.clone().expect("guarded")).await },
                if waiting.is_some() => waiting = None,
            frame = frames.recv() => {
                let Some(first) = frame else { break };
                // Write what is already queued, then flush once (the reader already made
                // each frame as large as the burst it came from). The access ending, or a
                // client that stopped reading, cuts the writing short.
                let write = write_batch(&mut tx, first, &mut frames);
                tokio::select! {
                    biased;
                    frame = &mut ended => {
                        close = Some(frame);
                        break;
                    }
                    done = tokio::time::timeout(WRITE_TIMEOUT, write) => {
                        if !matches!(done, Ok(true)) {
                            break;
                        }
                    }
                }
            }
            incoming = rx.next(), if waiting.is_none() => match incoming {
                Some(Ok(Message::Binary(b))) => waiting = Some(b),
                Some(Ok(Message::Text(t))) => {
                    if let Ok(ctrl) = serde_json::from_str::<ClientControl>(&t) {
                        handle.control(id, ctrl);
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            _ = ping.tick() => {
                let ping = tx.send(Message::Ping(Bytes::new()));
                if !matches!(tokio::time::timeout(WRITE_TIMEOUT, ping).await, Ok(Ok(()))) {
                    break;
                }
            }
        }
    }
    handle.detach(id);
    let _ = tokio::time::timeout(Duration::from_secs(5), tx.send(Message::Close(close))).await;
}

/// Writes `first` and what else is queued (up to `FLUSH_EVERY` frames), then flushes;
/// false when the socket failed or the shell exited (the loop ends).
async fn write_batch(
    tx: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    first: Frame,
    frames: &mut tokio::sync::mpsc::Receiver<Frame>,
) -> bool {
    let mut next = Some(first);
    let mut written = 0;
    while let Some(frame) = next.take() {
        let (msg, exit) = match frame {
            Frame::Bytes(b) => (Message::Binary(b), false),
            Frame::Control(c) => {
                let text = serde_json::to_string(&c).expect("control serializes");
                (
                    Message::Text(text.into()),
                    matches!(c, ServerControl::Exit { .. }),
                )
            }
        };
        if tx.feed(msg).await.is_err() || exit {
            let _ = tx.flush().await;
            return false;
        }
        written += 1;
        if written < FLUSH_EVERY {
            next = frames.try_recv().ok();
        }
    }
    tx.flush().await.is_ok()
}

/// `POST /revoke` (driver tokens): the edge revoked these grants.
async fn revoke(
    headers: HeaderMap,
    State(state): State<AgentState>,
    Json(req): Json<Revoke>,
) -> Result<StatusCode, Problem> {
    driver(&state, &headers, None)?;
    state.grants.revoke(&req.grants);
    Ok(StatusCode::NO_CONTENT)
}

async fn exec_once(
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
    State(state): State<AgentState>,
    Json(req): Json<ExecRequest>,
) -> Result<Response, Problem> {
    driver(&state, &headers, q.token.as_deref())?;
    let _busy = state.activity.busy();
    let res = exec::run(state.isolation.clone(), req).await?;
    Ok(Json(res).into_response())
}

async fn exec_stream(
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
    State(state): State<AgentState>,
    Json(req): Json<ExecRequest>,
) -> Result<Response, Problem> {
    driver(&state, &headers, q.token.as_deref())?;
    let events = exec::stream(state.isolation.clone(), req)?;
    // In use until the command's last event is sent.
    let busy = state.activity.busy();
    let body = futures_util::stream::unfold((events, busy), |(mut rx, busy)| async move {
        let ev = rx.recv().await?;
        let mut line = serde_json::to_vec(&ev).expect("event serializes");
        line.push(b'\n');
        Some((Ok::<_, std::io::Error>(Bytes::from(line)), (rx, busy)))
    });
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")],
        axum::body::Body::from_stream(body),
    )
        .into_response())
}

async fn healthz(State(state): State<AgentState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok", "sessions": state.terminals.len()}))
}

/// The agent's routes.
pub fn router(state: AgentState) -> Router {
    Router::new()
        .route("/attach", get(attach))
        .route("/exec", post(exec_once))
        .route("/exec/stream", post(exec_stream))
        .route("/revoke", post(revoke))
        .route("/healthz", get(healthz))
        .with_state(state)
}
