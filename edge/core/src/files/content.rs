//! Saving a file's content: a new version from any origin (editor, sync, copilot).

use bytes::Bytes;
use cloudos_proto::{File, FileKind};
use futures_util::Stream;

use super::repo::{self, quota_left, USED_BY};
use super::upload::{drain, store_stream, Budget, DRAIN_LIMIT};
use super::{changed, FilesError, Made};
use crate::ids::{FileId, UserId};
use crate::{stmt, App};

/// SQL that is true when user `?` has room for `?` more bytes (the version a save adds:
/// the one it replaces is kept in the history). Binds the user, the size, the user again.
pub(crate) fn fits() -> String {
    format!("{USED_BY} + ? <= (SELECT quota_bytes FROM users WHERE id = ?)")
}

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
    made: &Made,
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
    let file = save_content(app, who, id, current, made, body, len).await?;
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
    made: &Made,
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
    let budget = Budget { quota, used };
    if let Some(len) = len {
        if let Err(e) = budget.check(len) {
            drain(body, DRAIN_LIMIT).await;
            return Err(e);
        }
    }
    let stored = store_stream(app.ports.blobs.as_ref(), body, budget).await?;
    let updated = set_version(
        app,
        who,
        id,
        expected_version,
        made,
        &NewContent {
            size: stored.size,
            blob_key: &stored.sha256,
            checksum: &stored.sha256,
            mime: current.mime.as_deref(),
            from_version: None,
        },
    )
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
            needed: stored.size,
        });
    }
    let file = repo::get_file(meta, who, id).await?;
    changed(app, who, file.parent_id.clone().map(FileId::from).as_ref());
    Ok(file)
}

/// The content a new version points at: stored bytes (a new blob, or an old version's).
pub(crate) struct NewContent<'a> {
    pub size: u64,
    pub blob_key: &'a str,
    pub checksum: &'a str,
    pub mime: Option<&'a str>,
    /// The kept version whose bytes these are (a restore): the write happens only while that
    /// version is still kept, so the sweep cannot take its bytes from under it.
    pub from_version: Option<i64>,
}

/// Makes `content` the file's next version if `expected_version` is still current and the
/// quota has room for it; the number of rows changed (0: neither held). The version and
/// the quota are checked in the write itself: another save may have landed while the bytes
/// were streaming. The history's row is written by the database in the same statement.
pub(crate) async fn set_version(
    app: &App,
    who: &UserId,
    id: &FileId,
    expected_version: i64,
    made: &Made,
    content: &NewContent<'_>,
) -> Result<u64, FilesError> {
    let fits = fits();
    Ok(app
        .ports
        .meta
        .execute(stmt!(
            format!(
                "UPDATE files SET size = ?, blob_key = ?, checksum = ?, mime = ?,
                                  version = version + 1, updated_at = ?, origin = ?, author_ids = ?
                 WHERE id = ? AND user_id = ? AND version = ? AND kind = 'file'
                   AND trashed_at IS NULL AND {fits}
                   AND (? IS NULL OR EXISTS (
                       SELECT 1 FROM file_versions WHERE file_id = files.id AND version = ?))"
            ),
            content.size,
            content.blob_key,
            content.checksum,
            content.mime,
            app.now_ms(),
            made.origin.as_str(),
            made.author_ids(),
            id,
            who,
            expected_version,
            who,
            content.size,
            who,
            content.from_version,
            content.from_version
        ))
        .await?)
}
