//! Who may attach to a sandbox's terminal, and where the host relays the socket.

use cloudos_proto::terminal::Role;
use serde::Deserialize;

use super::revocation::{session_grant, share_grant};
use super::{by_id, owned, tokens, SandboxRow, SandboxState, SandboxesError};
use crate::auth::Session;
use crate::ids::SandboxId;
use crate::ports::{AgentEndpoint, SandboxSpec};
use crate::shares::{self, ShareKind};
use crate::{stmt, App};

/// Query of `WS /terminal/:sandboxId/attach`.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct AttachQuery {
    /// `view` to watch only.
    pub mode: Option<String>,
    /// A view share of someone else's sandbox.
    pub share: Option<String>,
    /// Which terminal of the sandbox (default `main`).
    pub session: Option<String>,
    /// The stream offset the client already has (reconnects).
    pub since: Option<u64>,
}

/// Where the host connects the terminal socket, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachTicket {
    /// The agent's `ws://…/attach?…` URL, with a short-lived token for this attach.
    pub url: String,
    /// Headers the request to the agent needs.
    pub headers: Vec<(String, String)>,
    pub role: Role,
}

/// The spec a provider needs for `row` (allocating its owner's host uid the first time).
pub async fn spec(app: &App, row: &SandboxRow) -> Result<SandboxSpec, SandboxesError> {
    Ok(SandboxSpec {
        id: row.id.to_string(),
        user_id: row.user_id.to_string(),
        agent_key_hex: hex::encode(tokens::agent_key(&app.config.secret, &row.id)),
        machine_id: row.machine_id.clone(),
        host_uid: super::uids::host_uid(app, &row.user_id).await?,
        sync_token: crate::sync::issue_token(
            &app.config.secret,
            row.user_id.as_str(),
            row.id.as_str(),
            app.now_ms(),
        ),
        quota_bytes: crate::files::quota_bytes(app.ports.meta.as_ref(), &row.user_id).await?,
    })
}

/// Makes sure the sandbox's agent runs (after a host restart, or once it stopped for being
/// idle, it does not) and records when it was last used.
pub async fn ensure_running(app: &App, row: &SandboxRow) -> Result<AgentEndpoint, SandboxesError> {
    if row.state != SandboxState::Running {
        return Err(SandboxesError::Stopped);
    }
    let spec = spec(app, row).await?;
    let endpoint = app.ports.sandboxes.start(&spec).await?;
    let still_running = app
        .ports
        .meta
        .execute(stmt!(
            "UPDATE sandboxes SET last_seen_at = ?, machine_id = COALESCE(?, machine_id)
             WHERE id = ? AND state = ?",
            app.now_ms(),
            endpoint.machine_id.as_deref(),
            row.id.as_str(),
            SandboxState::Running.as_str()
        ))
        .await?;
    if still_running == 0 {
        // A DELETE marked the sandbox stopped while this start ran: the agent it made (or
        // woke) would run with nobody to stop it.
        app.ports.sandboxes.stop(&spec).await?;
        return Err(SandboxesError::Stopped);
    }
    Ok(endpoint)
}

/// Checks that the caller may attach to `sandbox_id` (as its owner, or with a view share)
/// and returns where to relay. Someone else's sandbox without a share is 404, as if it did
/// not exist. The socket rests on a grant the agent can be told to revoke (the share, or
/// the owner's session) and ends when that grant expires.
pub async fn authorize(
    app: &App,
    session: &Session,
    sandbox_id: &SandboxId,
    q: &AttachQuery,
) -> Result<AttachTicket, SandboxesError> {
    let user_id = &session.user_id;
    let name = q.session.clone().unwrap_or_else(|| "main".into());
    if !cloudos_proto::terminal::valid_session_name(&name) {
        return Err(SandboxesError::BadSession);
    }
    let (row, role, grant, share) = match &q.share {
        Some(token) => {
            let share =
                shares::open(app, token, ShareKind::Sandbox, sandbox_id, Some(user_id)).await?;
            // The viewer's socket ends when the link is revoked, and when the viewer signs
            // out; and when either expires.
            let grant = tokens::Grant {
                ids: vec![share_grant(&share.share_id), session_grant(session)],
                until_ms: Some(share.expires_at.min(session.expires_at_ms)),
            };
            (
                by_id(app, sandbox_id).await?,
                Role::Viewer,
                grant,
                Some(share),
            )
        }
        None => {
            let row = owned(app, user_id, sandbox_id).await?;
            let role = if q.mode.as_deref() == Some("view") {
                Role::Viewer
            } else {
                Role::Driver
            };
            let grant = tokens::Grant {
                ids: vec![session_grant(session)],
                until_ms: Some(session.expires_at_ms),
            };
            (row, role, grant, None)
        }
    };
    let endpoint = ensure_running(app, &row).await?;
    // A revocation or sign-out that landed while the agent was starting found no agent to
    // tell: it is looked for again now that the agent runs (one landing after this finds
    // the agent running, and tells it).
    if !crate::auth::accounts::session_stands(app, session).await? {
        return Err(SandboxesError::AccessEnded);
    }
    if let Some(share) = &share {
        shares::stands(app, &share.share_id).await?;
    }
    let token = tokens::agent_token(
        &app.config.secret,
        &row.id,
        user_id,
        role,
        &grant,
        app.now_ms(),
    );
    let base = endpoint.url.trim_end_matches('/').replacen("http", "ws", 1);
    let mut query = form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("token", &token)
        .append_pair("session", &name);
    if role == Role::Viewer {
        query.append_pair("mode", "view");
    }
    if let Some(since) = q.since {
        query.append_pair("since", &since.to_string());
    }
    Ok(AttachTicket {
        url: format!("{base}/attach?{}", query.finish()),
        headers: endpoint.headers,
        role,
    })
}

/// What a host answers when the agent refused the relay's connection: the HTTP status the
/// agent gave, if it gave one, and what went wrong. A 404 means the terminal is not running
/// (viewers never start one); anything else means the sandbox cannot be reached.
pub fn agent_refused(status: Option<u16>, why: impl std::fmt::Display) -> SandboxesError {
    match status {
        Some(404) => SandboxesError::TerminalNotRunning,
        // The grant was revoked between the check and the connection.
        Some(401) => SandboxesError::AccessEnded,
        Some(429) => SandboxesError::TooManySockets,
        _ => SandboxesError::Unreachable(why.to_string()),
    }
}
