//! Links to files and folders: made and listed by the owner, opened by anyone holding one
//! (a view link), or by a signed-in holder (an edit link). A folder's link reaches the
//! files below it, never above.

use cloudos_proto::{File, FileKind};

use super::{Grant, NewShare, ShareInfo, ShareKind, ShareMode, SharesError};
use crate::files::{find, listing, FilesError};
use crate::ids::{FileId, UserId};
use crate::{stmt, App};

/// How long a file's link works unless its owner says otherwise: 30 days.
pub const TTL_SECS: i64 = 30 * 24 * 3600;
/// The longest a file's link may work: a year.
pub const MAX_TTL_SECS: i64 = 365 * 24 * 3600;

fn not_found(e: FilesError) -> SharesError {
    match e {
        FilesError::NotFound => SharesError::NotFound,
        other => SharesError::Files(Box::new(other)),
    }
}

/// A new link to the owner's file or folder `id`, working for `expires_in_secs` (clamped
/// to one minute … a year; 30 days when not given), behind `password` if given.
pub async fn share(
    app: &App,
    who: &UserId,
    id: &FileId,
    mode: ShareMode,
    expires_in_secs: Option<i64>,
    password: Option<&str>,
) -> Result<NewShare, SharesError> {
    listing::get(app, who, id).await.map_err(not_found)?;
    let ttl = expires_in_secs.unwrap_or(TTL_SECS).clamp(60, MAX_TTL_SECS);
    let share = super::create(app, who, ShareKind::File, id, mode, ttl, password).await?;
    app.ports
        .meta
        .execute(stmt!(
            "UPDATE files SET shared = 1 WHERE id = ? AND user_id = ?",
            id,
            who
        ))
        .await?;
    Ok(share)
}

/// Marks `id` shared while a link to it still works (after one was revoked).
pub async fn refresh_shared(app: &App, id: &str) -> Result<(), SharesError> {
    app.ports
        .meta
        .execute(stmt!(
            "UPDATE files SET shared = EXISTS (
                 SELECT 1 FROM shares WHERE kind = 'file' AND target_id = files.id
                   AND revoked_at IS NULL AND expires_at > ?)
             WHERE id = ?",
            app.now_ms(),
            id
        ))
        .await?;
    Ok(())
}

/// The owner's links to their file or folder `id`.
pub async fn links(app: &App, who: &UserId, id: &FileId) -> Result<Vec<ShareInfo>, SharesError> {
    listing::get(app, who, id).await.map_err(not_found)?;
    super::list(app, who, ShareKind::File, id).await
}

/// What a link opened: the grant, the shared file or folder, and the file asked for (the
/// shared one, or one below a shared folder).
#[derive(Debug, Clone)]
pub struct Opened {
    pub grant: Grant,
    pub root: File,
    pub file: File,
}

/// Opens `token` for the file `id` (`None`: the shared file or folder itself), counting the
/// access. Anything not reachable through the link is `Gone`, like a dead link, so a link
/// tells nothing about the owner's other files.
pub async fn open(
    app: &App,
    token: &str,
    id: Option<&FileId>,
    visitor: Option<&UserId>,
) -> Result<Opened, SharesError> {
    let opened = reach(app, token, id).await?;
    super::count_access(app, &opened.grant.share_id, visitor).await?;
    Ok(opened)
}

/// What [`open`] opens, without counting an access (a holder's client renewing a lock).
pub async fn reach(app: &App, token: &str, id: Option<&FileId>) -> Result<Opened, SharesError> {
    let (grant, target) = super::peek_link(app, token, ShareKind::File).await?;
    let target = FileId::from(target);
    let owner = grant.owner_id.clone();
    let root = listing::get(app, &owner, &target)
        .await
        .map_err(|_| SharesError::Gone)?;
    let file = match id {
        None => root.clone(),
        Some(id) if *id == target => root.clone(),
        Some(id) => {
            let inside = root.kind == FileKind::Folder
                && find::ancestors(app, &owner, id)
                    .await
                    .map_err(|_| SharesError::Gone)?
                    .iter()
                    .any(|a| a.id == target.as_str());
            if !inside {
                return Err(SharesError::Gone);
            }
            listing::get(app, &owner, id)
                .await
                .map_err(|_| SharesError::Gone)?
        }
    };
    Ok(Opened { grant, root, file })
}

/// Remembers that `share_id` opened `file`'s live room, so revoking the link can close it.
pub async fn joined_room(app: &App, share_id: &str, file: &FileId) -> Result<(), SharesError> {
    app.ports
        .meta
        .execute(stmt!(
            "INSERT INTO share_rooms (share_id, file_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
            share_id,
            file
        ))
        .await?;
    Ok(())
}

/// The open rooms `share_id` was used to join (a closed room has no socket to close).
pub async fn rooms_of(app: &App, share_id: &str) -> Result<Vec<FileId>, SharesError> {
    let rows = app
        .ports
        .meta
        .query(stmt!(
            "SELECT s.file_id FROM share_rooms s JOIN live_rooms l ON l.file_id = s.file_id
             WHERE s.share_id = ? LIMIT 1000",
            share_id
        ))
        .await?;
    Ok(rows.iter().map(|r| FileId::from(r.text(0))).collect())
}
