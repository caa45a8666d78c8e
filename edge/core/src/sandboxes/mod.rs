//! Terminal sandboxes: one live sandbox per user, started through the host's [`Sandboxes`]
//! provider (local processes or Fly Machines), reached through tokens the edge signs for that
//! sandbox alone. The host relays the terminal socket; the rules are here.
//!
//! [`Sandboxes`]: crate::ports::Sandboxes

pub mod attach;
pub mod handlers;
pub mod lifecycle;
pub mod revocation;
pub mod terminal;
pub mod tokens;
pub mod uids;

use crate::ids::{SandboxId, UserId};
use crate::ports::{DbError, Row, SandboxError};
use crate::{rfc3339, stmt, App};

/// Why a sandbox request failed.
#[derive(Debug, thiserror::Error)]
pub enum SandboxesError {
    /// Missing, or someone else's: the two are never told apart.
    #[error("no such sandbox")]
    NotFound,
    #[error("the sandbox is stopped; start it with POST /sandbox")]
    Stopped,
    #[error("this host runs as many sandboxes as it can; try again later")]
    AtCapacity { retry_after: u64 },
    #[error("the sandbox provider failed: {0}")]
    Provider(String),
    #[error("terminals are not available on this deployment")]
    Unavailable,
    /// The host could run sandboxes, but not as it is configured.
    #[error("terminals are not available: {0}")]
    Refused(String),
    #[error("invalid, revoked or expired share link")]
    BadShare,
    #[error("a terminal name is 1–64 letters, digits, '-' or '_'")]
    BadSession,
    /// A watcher asked for a terminal the owner has not started (or that ended).
    #[error("no such terminal is running in this sandbox")]
    TerminalNotRunning,
    #[error("the access ended (signed out, or the link was revoked)")]
    AccessEnded,
    #[error("this sandbox has as many terminal sockets open as it allows; close one")]
    TooManySockets,
    #[error("every sandbox user id of this host is taken")]
    NoUidLeft,
    #[error("the sandbox's agent did not answer: {0}")]
    Unreachable(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<crate::auth::AuthError> for SandboxesError {
    fn from(e: crate::auth::AuthError) -> Self {
        match e {
            crate::auth::AuthError::Db(e) => SandboxesError::Db(e),
            _ => SandboxesError::AccessEnded,
        }
    }
}

impl From<crate::shares::SharesError> for SandboxesError {
    fn from(e: crate::shares::SharesError) -> Self {
        use crate::shares::SharesError;
        match e {
            SharesError::NotFound => SandboxesError::NotFound,
            SharesError::Gone => SandboxesError::BadShare,
            SharesError::Db(e) => SandboxesError::Db(e),
            // Sandbox links open no files and have no password.
            SharesError::Files(_)
            | SharesError::PasswordRequired
            | SharesError::WrongPassword
            | SharesError::BadPassword(_)
            | SharesError::Auth(_) => SandboxesError::BadShare,
        }
    }
}

impl From<SandboxError> for SandboxesError {
    fn from(e: SandboxError) -> Self {
        match e {
            SandboxError::AtCapacity => SandboxesError::AtCapacity { retry_after: 30 },
            SandboxError::Unavailable => SandboxesError::Unavailable,
            SandboxError::Refused(why) => SandboxesError::Refused(why),
            SandboxError::Failed(why) => SandboxesError::Provider(why),
        }
    }
}

/// Whether a sandbox's processes may run. At most one sandbox per user is `Running`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxState {
    Running,
    Stopped,
}

impl SandboxState {
    /// The stored and wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            SandboxState::Running => "running",
            SandboxState::Stopped => "stopped",
        }
    }

    /// Reads the stored form; anything unknown counts as stopped, so nothing is started
    /// on a state this build does not understand.
    fn parse(s: &str) -> Self {
        match s {
            "running" => SandboxState::Running,
            _ => SandboxState::Stopped,
        }
    }
}

/// A sandbox row.
#[derive(Debug, Clone)]
pub struct SandboxRow {
    pub id: SandboxId,
    pub user_id: UserId,
    pub machine_id: Option<String>,
    pub state: SandboxState,
    pub created_at: i64,
}

impl SandboxRow {
    fn from_row(r: &Row) -> Self {
        SandboxRow {
            id: r.text(0).into(),
            user_id: r.text(1).into(),
            machine_id: r.opt_text(2),
            state: SandboxState::parse(&r.text(3)),
            created_at: r.int(4),
        }
    }

    /// The public shape.
    pub fn to_proto(&self) -> cloudos_proto::terminal::Sandbox {
        cloudos_proto::terminal::Sandbox {
            id: self.id.to_string(),
            state: self.state.as_str().to_owned(),
            created_at: rfc3339(self.created_at),
        }
    }
}

const COLUMNS: &str = "id, user_id, machine_id, state, created_at";

/// The sandbox `id` if `user_id` owns it.
pub async fn owned(
    app: &App,
    user_id: &UserId,
    id: &SandboxId,
) -> Result<SandboxRow, SandboxesError> {
    let rows = app
        .ports
        .meta
        .query(stmt!(
            format!("SELECT {COLUMNS} FROM sandboxes WHERE id = ? AND user_id = ?"),
            id,
            user_id
        ))
        .await?;
    rows.first()
        .map(SandboxRow::from_row)
        .ok_or(SandboxesError::NotFound)
}

/// Any sandbox by id (for a view share, which names the sandbox, not the watcher).
pub async fn by_id(app: &App, id: &SandboxId) -> Result<SandboxRow, SandboxesError> {
    let rows = app
        .ports
        .meta
        .query(stmt!(
            format!("SELECT {COLUMNS} FROM sandboxes WHERE id = ?"),
            id
        ))
        .await?;
    rows.first()
        .map(SandboxRow::from_row)
        .ok_or(SandboxesError::NotFound)
}

/// The user's live sandbox, if any.
pub async fn live(app: &App, user_id: &UserId) -> Result<Option<SandboxRow>, SandboxesError> {
    let rows = app
        .ports
        .meta
        .query(stmt!(
            format!(
                "SELECT {COLUMNS} FROM sandboxes WHERE user_id = ? AND state = 'running'
                 ORDER BY created_at DESC LIMIT 1"
            ),
            user_id
        ))
        .await?;
    Ok(rows.first().map(SandboxRow::from_row))
}
