//! A sandbox's life: start (one live sandbox per user), look up, stop, share for viewing.

use super::attach::{ensure_running, spec};
use super::{live, owned, SandboxRow, SandboxState, SandboxesError};
use crate::ids::{SandboxId, UserId};
use crate::ports::DbError;
use crate::shares::{self, NewShare, ShareKind, ShareMode};
use crate::{stmt, App};

/// Default lifetime of a view share.
pub const SHARE_TTL_SECS: i64 = 24 * 3600;
/// Longest lifetime of a view share.
pub const SHARE_MAX_TTL_SECS: i64 = 7 * 24 * 3600;

/// What [`start`] did.
#[derive(Debug, Clone)]
pub struct Started {
    pub sandbox: SandboxRow,
    /// False when the user's live sandbox already existed (it is made sure to run).
    pub created: bool,
}

/// The user's live sandbox, started if there is none. Two starts at once make one sandbox:
/// the database allows one running row per user and the loser answers with the winner's.
pub async fn start(app: &App, who: &UserId) -> Result<Started, SandboxesError> {
    if !app.ports.sandboxes.available() {
        return Err(SandboxesError::Unavailable);
    }
    if let Some(row) = live(app, who).await? {
        ensure_running(app, &row).await?;
        return Ok(Started {
            sandbox: row,
            created: false,
        });
    }
    let now = app.now_ms();
    let row = SandboxRow {
        id: app.ports.ids.new_id().into(),
        user_id: who.clone(),
        machine_id: None,
        state: SandboxState::Running,
        created_at: now,
    };
    let inserted = app
        .ports
        .meta
        .execute(stmt!(
            "INSERT INTO sandboxes (id, user_id, provider, state, created_at, last_seen_at)
             VALUES (?, ?, ?, ?, ?, ?)",
            &row.id,
            who,
            app.ports.sandboxes.provider(),
            SandboxState::Running.as_str(),
            now,
            now
        ))
        .await;
    match inserted {
        Ok(_) => {}
        // Another request of the same user won the race: theirs is the live one.
        Err(DbError::Constraint(_)) => {
            let row = live(app, who).await?.ok_or(SandboxesError::NotFound)?;
            return Ok(Started {
                sandbox: row,
                created: false,
            });
        }
        Err(e) => return Err(e.into()),
    }
    if let Err(e) = ensure_running(app, &row).await {
        // Nothing runs: the row must not claim otherwise.
        mark_stopped(app, &row.id).await?;
        return Err(e);
    }
    tracing::info!(sandbox = %row.id, provider = app.ports.sandboxes.provider(), "sandbox started");
    Ok(Started {
        sandbox: row,
        created: true,
    })
}

/// One of the user's sandboxes.
pub async fn get(app: &App, who: &UserId, id: &SandboxId) -> Result<SandboxRow, SandboxesError> {
    owned(app, who, id).await
}

/// Stops everything in the sandbox; the home stays for the next one. Stopping a stopped
/// sandbox is fine.
pub async fn stop(app: &App, who: &UserId, id: &SandboxId) -> Result<(), SandboxesError> {
    let row = owned(app, who, id).await?;
    if row.state == SandboxState::Running {
        // Marked first: an attach starting the agent at this moment sees the mark when it
        // records its use and stops what it started (see `ensure_running`), and the
        // provider's stop below ends anything started before.
        mark_stopped(app, &row.id).await?;
        app.ports.sandboxes.stop(&spec(app, &row).await?).await?;
        tracing::info!(sandbox = %row.id, "sandbox stopped");
    }
    Ok(())
}

async fn mark_stopped(app: &App, id: &SandboxId) -> Result<(), SandboxesError> {
    app.ports
        .meta
        .execute(stmt!(
            "UPDATE sandboxes SET state = ?, last_seen_at = ? WHERE id = ?",
            SandboxState::Stopped.as_str(),
            app.now_ms(),
            id
        ))
        .await?;
    Ok(())
}

/// The owner's view links to their sandbox `id`.
pub async fn shares(
    app: &App,
    who: &UserId,
    id: &SandboxId,
) -> Result<Vec<shares::ShareInfo>, SandboxesError> {
    let row = owned(app, who, id).await?;
    Ok(shares::list(app, who, ShareKind::Sandbox, &row.id).await?)
}

/// A view share of the user's sandbox: a stored link another signed-in user attaches with,
/// until it expires or the owner revokes it (`shares::revoke`). The lifetime is clamped to
/// one minute … one week.
pub async fn share(
    app: &App,
    who: &UserId,
    id: &SandboxId,
    expires_in_secs: Option<i64>,
) -> Result<NewShare, SandboxesError> {
    let row = owned(app, who, id).await?;
    let ttl = expires_in_secs
        .unwrap_or(SHARE_TTL_SECS)
        .clamp(60, SHARE_MAX_TTL_SECS);
    Ok(shares::create(
        app,
        who,
        ShareKind::Sandbox,
        &row.id,
        ShareMode::View,
        ttl,
        None,
    )
    .await?)
}
