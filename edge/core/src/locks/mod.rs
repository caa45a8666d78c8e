//! Locks: one signed-in person (the owner, or a colleague with an edit link) takes a lease
//! on a file, and until it ends the file is read-only for everyone else: their saves are
//! refused and the file's live room drops their edits. The lease ends when its holder
//! releases it, leaves the file's room, or lets it expire; the owner can always break it.
//! Binary files are locked the same way (they cannot be merged, so a lock is how two people
//! take turns).

pub mod handlers;

use cloudos_proto::{FileKind, FileLock, LockHolder};

use crate::files::{listing, FilesError};
use crate::ids::{FileId, UserId};
use crate::ports::DbError;
use crate::rooms::{Access, RoomError, RoomLock};
use crate::shares::SharesError;
use crate::{rfc3339, stmt, App};

/// How long a lease lasts unless asked otherwise, and its bounds (seconds).
pub const DEFAULT_TTL_SECS: i64 = 120;
pub const MIN_TTL_SECS: i64 = 15;
pub const MAX_TTL_SECS: i64 = 3600;

/// Why a lock was not taken, released or read.
#[derive(Debug, thiserror::Error)]
pub enum LocksError {
    /// Someone else holds it.
    #[error(
        "{name} is editing this file (locked until {until}); it is read-only until they release it"
    )]
    Held { name: String, until: String },
    /// A view link, or a folder: nothing to lock through it.
    #[error("{0}")]
    Forbidden(&'static str),
    /// Released (by the owner) as it was taken.
    #[error("the lock was released as it was taken; try again")]
    Broken,
    #[error(transparent)]
    Files(#[from] FilesError),
    #[error(transparent)]
    Shares(#[from] SharesError),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// A file the caller reaches, and how.
struct Reached {
    owner: UserId,
    edit: bool,
}

/// Whether `who` reaches `file` (their own, or through the link `share`), and may edit it.
async fn reach(
    app: &App,
    who: &UserId,
    file: &FileId,
    share: Option<&str>,
) -> Result<Reached, LocksError> {
    let Some(token) = share else {
        let f = listing::get(app, who, file).await?;
        if f.kind == FileKind::Folder {
            return Err(LocksError::Forbidden("folders are not locked; lock a file"));
        }
        return Ok(Reached {
            owner: who.clone(),
            edit: true,
        });
    };
    // A lock is taken and renewed by the holder's client on its own: not an access to count.
    let opened = crate::shares::files::reach(app, token, Some(file)).await?;
    if opened.file.kind == FileKind::Folder {
        return Err(LocksError::Forbidden("folders are not locked; lock a file"));
    }
    Ok(Reached {
        owner: opened.grant.owner_id,
        edit: opened.grant.mode == crate::shares::ShareMode::Edit,
    })
}

/// The live lock on `file`, if any: its holder's id and name, and its end.
async fn live(app: &App, file: &FileId) -> Result<Option<RoomLock>, DbError> {
    let now = app.ports.clock.now_ms();
    let rows = app
        .ports
        .meta
        .query(stmt!(
            "SELECT l.holder_id, u.name, l.until_ms FROM file_locks l JOIN users u ON u.id = l.holder_id
             WHERE l.file_id = ? AND l.until_ms > ?",
            file,
            now
        ))
        .await?;
    Ok(rows.into_iter().next().map(|mut r| RoomLock {
        holder: r.take_text(0).unwrap_or_default(),
        name: r.take_text(1).unwrap_or_default(),
        until_ms: r.int(2),
    }))
}

fn to_proto(file: &FileId, lock: RoomLock, who: &UserId) -> FileLock {
    FileLock {
        file_id: file.to_string(),
        mine: lock.holder == who.as_str(),
        holder: LockHolder {
            id: lock.holder,
            name: lock.name,
        },
        expires_at: rfc3339(lock.until_ms),
        expires_at_ms: lock.until_ms,
    }
}

/// The lock on a file `who` reaches (their own, or through `share`).
pub async fn get(
    app: &App,
    who: &UserId,
    file: &FileId,
    share: Option<&str>,
) -> Result<Option<FileLock>, LocksError> {
    reach(app, who, file, share).await?;
    Ok(live(app, file).await?.map(|l| to_proto(file, l, who)))
}

/// `who` takes (or renews) the lock on `file` for `ttl_secs` (clamped to the bounds). Anyone
/// else holding it: [`LocksError::Held`]. Two people taking it at once: one gets it.
pub async fn take(
    app: &App,
    who: &UserId,
    file: &FileId,
    share: Option<&str>,
    ttl_secs: Option<i64>,
) -> Result<FileLock, LocksError> {
    let reached = reach(app, who, file, share).await?;
    if !reached.edit {
        return Err(LocksError::Forbidden(
            "a view link cannot lock the file; ask for an edit link",
        ));
    }
    let now = app.ports.clock.now_ms();
    let ttl = ttl_secs
        .unwrap_or(DEFAULT_TTL_SECS)
        .clamp(MIN_TTL_SECS, MAX_TTL_SECS);
    // One statement decides: a free (or expired) lock, or one's own, is taken; anyone
    // else's stays as it is.
    app.ports
        .meta
        .execute(stmt!(
            "INSERT INTO file_locks (file_id, holder_id, until_ms, taken_at) VALUES (?, ?, ?, ?)
             ON CONFLICT(file_id) DO UPDATE SET holder_id = excluded.holder_id,
                 until_ms = excluded.until_ms, taken_at = excluded.taken_at
             WHERE file_locks.holder_id = excluded.holder_id OR file_locks.until_ms <= ?",
            file,
            who,
            now + ttl * 1000,
            now,
            now
        ))
        .await?;
    // Broken by the owner the moment it was taken: nobody holds it now.
    let Some(lock) = live(app, file).await? else {
        return Err(LocksError::Broken);
    };
    if lock.holder != who.as_str() {
        return Err(held(lock));
    }
    tell_room(app, file).await;
    Ok(to_proto(file, lock, who))
}

fn held(lock: RoomLock) -> LocksError {
    LocksError::Held {
        name: lock.name,
        until: rfc3339(lock.until_ms),
    }
}

/// Releases the lock on `file`: its holder, or the file's owner (who can always break it),
/// may; anyone else gets [`LocksError::Held`]. Releasing a file nobody holds is fine.
pub async fn release(
    app: &App,
    who: &UserId,
    file: &FileId,
    share: Option<&str>,
) -> Result<(), LocksError> {
    let reached = reach(app, who, file, share).await?;
    let Some(lock) = live(app, file).await? else {
        // Nothing to release here; a room still showing an ended lock is told.
        tell_room(app, file).await;
        return Ok(());
    };
    if lock.holder != who.as_str() && reached.owner != *who {
        return Err(held(lock));
    }
    app.ports
        .meta
        .execute(stmt!(
            "DELETE FROM file_locks WHERE file_id = ? AND holder_id = ?",
            file,
            lock.holder
        ))
        .await?;
    tell_room(app, file).await;
    Ok(())
}

/// The lock's holder left the file's room (their last socket closed): the lock ends
/// [`crate::rooms::LEAVE_GRACE_MS`] from now unless they come back and renew it. Called by
/// the hosts with what the room reported ([`crate::rooms::Effects::holder_left`]).
pub async fn left_room(app: &App, file: &FileId, holder: &str) {
    let until = app.ports.clock.now_ms() + crate::rooms::LEAVE_GRACE_MS;
    let gone = app
        .ports
        .meta
        .execute(stmt!(
            "UPDATE file_locks SET until_ms = MIN(until_ms, ?) WHERE file_id = ? AND holder_id = ?",
            until,
            file,
            holder
        ))
        .await;
    if let Err(e) = gone {
        tracing::warn!(file = %file, error = %e, "releasing the lock of someone who left");
    }
}

/// The lock a room over `file` enforces now (read when it opens, and when told it changed).
pub async fn for_room(app: &App, file: &FileId) -> Result<Option<RoomLock>, RoomError> {
    Ok(live(app, file).await?)
}

/// Refuses a save by `who` while someone else holds `file`.
pub async fn check_save(app: &App, who: &UserId, file: &FileId) -> Result<(), FilesError> {
    match live(app, file).await? {
        Some(lock) if lock.holder != who.as_str() => Err(FilesError::Locked {
            name: lock.name,
            until: rfc3339(lock.until_ms),
        }),
        _ => Ok(()),
    }
}

/// Tells the file's room, if one is open, that its lock changed.
async fn tell_room(app: &App, file: &FileId) {
    if crate::rooms::store::is_live(app, file).await {
        app.ports.sockets.lock_changed(file).await;
    }
}

/// Whether a room's connection may edit under `lock` (one whose lease has not ended).
pub fn may_edit(access: Access, user: Option<&str>, lock: Option<&RoomLock>) -> bool {
    access == Access::Edit
        && match lock {
            Some(l) => user == Some(l.holder.as_str()),
            None => true,
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_holder_edits_a_locked_room() {
        let lock = RoomLock {
            holder: "ann".into(),
            name: "Ann".into(),
            until_ms: 1_000,
        };
        assert!(may_edit(Access::Edit, Some("ann"), Some(&lock)));
        assert!(!may_edit(Access::Edit, Some("bob"), Some(&lock)));
        assert!(!may_edit(Access::Edit, None, Some(&lock)));
        // No lock (or one whose lease ended): anyone who edits, edits.
        assert!(may_edit(Access::Edit, Some("bob"), None));
        // A view link never edits, lock or not.
        assert!(!may_edit(Access::View, Some("ann"), Some(&lock)));
        assert!(!may_edit(Access::View, Some("ann"), None));
    }
}
