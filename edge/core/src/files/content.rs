//! Saving a file's content: a new version from any origin (editor, sync, copilot).

use bytes::Bytes;
use cloudos_proto::{File, FileKind};
use futures_util::Stream;

use super::repo::{self, quota_left};
use super::upload::{drain, store_stream, Budget, DRAIN_LIMIT};
use super::{changed, FilesError};
use crate::ids::{FileId, UserId};
use crate::{stmt, App};

/// SQL that is true when the user's files, with this row's size replaced by `?` bytes,
/// stay within the quota. Binds the user, the new size, then the user again.
const FITS_REPLACING_ROW: &str = "(SELECT COALESCE(SUM(size), 0) FROM files WHERE user_id = ?)
    - size + ? <= (SELECT quota_bytes FROM users WHERE id = ?)";

/// Replaces a file's content if its current version is one the caller `based_on` (an HTTP
/// save names versions by entity tags, possibly several); otherwise nothing is stored and
/// the answer says which version is current ([`FilesError::IfMatchFailed`]). A save landing
/// between the check and the write still makes this one [`FilesError::Stale`]. This is a
/// save made without the file's live room: an open room is told, and merges it at once.
/// While someone else holds the file's lock it is [`FilesError::Locked`].
pub async fn save_if_based_on<S, E>(
    app: &App,
    who: &UserId,
    id: &FileId,
    based_on: impl Fn(i64) -> bool,
    body: &mut S,
    len: Option<u64>,
) -> Result<File, FilesError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let current = super::listing::get(app, who, id).await?.version;
    if !based_on(current) {
        return Err(FilesError::IfMatchFailed { current });
    }
    crate::locks::check_save(app, who, id).await?;
    let file = save_content(app, who, id, current, body, len).await?;
    crate::rooms::store::saved_without_room(app, id).await;
    Ok(file)
}

/// Replaces a file's content when `expected_version` is still its version; the answer is
/// the file at its new version. `len` is the announced length, if any: a body certainly
/// over the quota is refused before a byte is stored.
///
/// Two saves of one version: exactly one wins, the other is [`FilesError::Stale`]. Saves
/// racing each other never store more than the quota together.
pub async fn save_content<S, E>(
    app: &App,
    who: &UserId,
    id: &FileId,
    expected_version: i64,
    body: &mut S,
    len: Option<u64>,
) -> Result<File, FilesError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let meta = app.ports.meta.as_ref();
    let current = repo::get_file(meta, who, id).await?;
    if current.kind != FileKind::File {
        return Err(FilesError::BadUpload("a folder has no content".into()));
    }
    if current.version != expected_version {
        return Err(FilesError::Stale {
            current: current.version,
            given: expected_version,
        });
    }
    let (quota, used) = quota_left(meta, who).await?;
    // The old content is replaced, so its bytes count as free for the new one.
    let budget = Budget {
        quota,
        used: used.saturating_sub(current.size),
    };
    if let Some(len) = len {
        if let Err(e) = budget.check(len) {
            drain(body, DRAIN_LIMIT).await;
            return Err(e);
        }
    }
    let stored = store_stream(app.ports.blobs.as_ref(), body, budget).await?;
    // The version and the quota are checked again in the write itself: another save may
    // have landed while the bytes were streaming. A refused blob is left to the sweep.
    let updated = meta
        .execute(stmt!(
            format!(
                "UPDATE files SET size = ?, blob_key = ?, checksum = ?, version = version + 1, updated_at = ?
                 WHERE id = ? AND user_id = ? AND version = ? AND kind = 'file'
                   AND {FITS_REPLACING_ROW}"
            ),
            stored.size, stored.sha256.as_str(), stored.sha256.as_str(), app.now_ms(),
            id, who, expected_version,
            who, stored.size, who
        ))
        .await?;
    if updated == 0 {
        let now = repo::get_file(meta, who, id).await?;
        if now.version != expected_version {
            return Err(FilesError::Stale {
                current: now.version,
                given: expected_version,
            });
        }
        let (quota, used) = quota_left(meta, who).await?;
        return Err(FilesError::QuotaExceeded {
            quota,
            used,
            needed: stored.size.saturating_sub(now.size),
        });
    }
    let file = repo::get_file(meta, who, id).await?;
    changed(app, who, file.parent_id.clone().map(FileId::from).as_ref());
    Ok(file)
}
