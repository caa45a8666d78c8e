//! Terminal sandboxes: one live sandbox per user, started through the host's [`Sandboxes`]
//! provider (local processes or Fly Machines), reached through tokens the edge signs for that
//! sandbox alone. The host relays the terminal socket; the rules are here.
//!
//! [`Sandboxes`]: crate::ports::Sandboxes

pub mod attach;
pub mod handlers;
pub mod tokens;

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
    #[error("invalid or expired share link")]
    BadShare,
    #[error("a terminal name is 1–64 letters, digits, '-' or '_'")]
    BadSession,
    /// A watcher asked for a terminal the owner has not started (or that ended).
    #[error("no such terminal is running in this sandbox")]
    TerminalNotRunning,
    #[error("the sandbox's agent did not answer: {0}")]
    Unreachable(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<SandboxError> for SandboxesError {
    fn from(e: SandboxError) -> Self {
        match e {
            SandboxError::AtCapacity => SandboxesError::AtCapacity { retry_after: 30 },
            SandboxError::Unavailable => SandboxesError::Unavailable,
            SandboxError::Failed(why) => SandboxesError::Provider(why),
        }
    }
}

/// A sandbox row.
#[derive(Debug, Clone)]
pub struct SandboxRow {
    pub id: String,
    pub user_id: String,
    pub machine_id: Option<String>,
    pub state: String,
    pub created_at: i64,
}

impl SandboxRow {
    fn from_row(r: &Row) -> Self {
        SandboxRow {
            id: r.text(0),
            user_id: r.text(1),
            machine_id: r.opt_text(2),
            state: r.text(3),
            created_at: r.int(4),
        }
    }

    /// The public shape.
    pub fn to_proto(&self) -> cloudos_proto::terminal::Sandbox {
        cloudos_proto::terminal::Sandbox {
            id: self.id.clone(),
            state: self.state.clone(),
            created_at: rfc3339(self.created_at),
        }
    }
}

const COLUMNS: &str = "id, user_id, machine_id, state, created_at";

/// The sandbox `id` if `user_id` owns it.
pub async fn owned(app: &App, user_id: &str, id: &str) -> Result<SandboxRow, SandboxesError> {
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
pub async fn by_id(app: &App, id: &str) -> Result<SandboxRow, SandboxesError> {
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
pub async fn live(app: &App, user_id: &str) -> Result<Option<SandboxRow>, SandboxesError> {
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
