//! Host uids of sandbox users: one per user, allocated on first use and kept, so a user's
//! home keeps its owner and no two users' processes ever share a uid.

use super::SandboxesError;
use crate::ids::UserId;
use crate::ports::DbError;
use crate::{stmt, App};

/// Tries before giving up when other users take the next slot at the same moment.
const TRIES: usize = 8;

/// The host uid of `who`'s sandboxes, allocated the first time.
pub async fn host_uid(app: &App, who: &UserId) -> Result<u32, SandboxesError> {
    let slot = slot(app, who).await?;
    u32::try_from(slot)
        .ok()
        .and_then(cloudos_proto::terminal::sandbox_uid_of_slot)
        .ok_or(SandboxesError::NoUidLeft)
}

async fn slot(app: &App, who: &UserId) -> Result<i64, SandboxesError> {
    let meta = app.ports.meta.as_ref();
    for _ in 0..TRIES {
        let rows = meta
            .query(stmt!(
                "SELECT slot FROM sandbox_uids WHERE user_id = ?",
                who
            ))
            .await?;
        if let Some(row) = rows.first() {
            return Ok(row.int(0));
        }
        // The next free slot; two users taking it at once: the unique slot refuses one,
        // which tries again with the next. (`WHERE true` tells SQLite's parser that the ON
        // belongs to the upsert, not to a join.)
        match meta
            .execute(stmt!(
                "INSERT INTO sandbox_uids (user_id, slot)
                 SELECT ?, COALESCE(MAX(slot) + 1, 0) FROM sandbox_uids WHERE true
                 ON CONFLICT(user_id) DO NOTHING",
                who
            ))
            .await
        {
            Ok(_) | Err(DbError::Constraint(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Err(SandboxesError::Provider(
        "could not allocate a sandbox user id; try again".into(),
    ))
}
