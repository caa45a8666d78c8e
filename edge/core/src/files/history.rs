//! A file's history: every version with how and by whom it was made, any of them readable
//! and restorable, and the retention rule that thins old versions out.
//!
//! The database writes a version's row in the statement that makes the version (see
//! `schema/0014_history_and_trash.sql`), so this module only reads and restores.

use std::collections::HashMap;

use cloudos_proto::{Author, File, FileKind, FileVersion};

use super::content::{set_version, NewContent};
use super::repo::{self, quota_left};
use super::{changed, FilesError, Made, Origin};
use crate::ids::{FileId, UserId};
use crate::ports::{Row, Stmt, Value};
use crate::{rfc3339, stmt, App};

/// Versions a history lists at most (the newest).
const MAX_LISTED: i64 = 1000;

/// A day in milliseconds: the retention rule keeps one version per UTC day of old ones.
const DAY_MS: i64 = 86_400_000;

const VERSION_COLS: &str =
    "version, size, mime, checksum, origin, author_ids, created_at, blob_key";

/// One stored version with what the API never shows.
struct VersionRow {
    version: FileVersion,
    author_ids: Vec<String>,
    blob_key: Option<String>,
}

fn row_to_version(row: &Row, current: i64) -> VersionRow {
    let version = row.int(0);
    VersionRow {
        version: FileVersion {
            version,
            size: row.int(1) as u64,
            mime: row.opt_text(2),
            checksum: row.opt_text(3),
            origin: row.text(4),
            authors: Vec::new(),
            current: version == current,
            created_at: rfc3339(row.int(6)),
        },
        author_ids: row
            .opt_text(5)
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        blob_key: row.opt_text(7),
    }
}

/// The user's file (not a folder: folders have no versions).
async fn file_of(app: &App, who: &UserId, id: &FileId) -> Result<File, FilesError> {
    let file = repo::get_file(app.ports.meta.as_ref(), who, id).await?;
    if file.kind != FileKind::File {
        return Err(FilesError::BadUpload("a folder has no versions".into()));
    }
    Ok(file)
}

/// Every kept version of a file, newest first, with its authors' names.
pub async fn list(app: &App, who: &UserId, id: &FileId) -> Result<Vec<FileVersion>, FilesError> {
    let file = file_of(app, who, id).await?;
    let rows = app
        .ports
        .meta
        .query(stmt!(
            format!(
                "SELECT {VERSION_COLS} FROM file_versions WHERE file_id = ?
                 ORDER BY version DESC LIMIT ?"
            ),
            id,
            MAX_LISTED
        ))
        .await?;
    let versions: Vec<VersionRow> = rows
        .iter()
        .map(|r| row_to_version(r, file.version))
        .collect();
    let names = names_of(app, versions.iter().flat_map(|v| &v.author_ids)).await?;
    Ok(versions
        .into_iter()
        .map(|v| {
            let mut version = v.version;
            version.authors = v
                .author_ids
                .iter()
                .filter_map(|id| {
                    names.get(id).map(|name| Author {
                        id: id.clone(),
                        name: name.clone(),
                    })
                })
                .collect();
            version
        })
        .collect())
}

/// The names of the given users (an account deleted since is missing).
async fn names_of<'a>(
    app: &App,
    ids: impl Iterator<Item = &'a String>,
) -> Result<HashMap<String, String>, FilesError> {
    let mut ids: Vec<&String> = ids.collect();
    ids.sort();
    ids.dedup();
    let mut names = HashMap::new();
    for chunk in ids.chunks(500) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let params = chunk.iter().map(|id| Value::from(id.as_str())).collect();
        let rows = app
            .ports
            .meta
            .query(Stmt::new(
                format!("SELECT id, name FROM users WHERE id IN ({marks})"),
                params,
            ))
            .await?;
        names.extend(rows.iter().map(|r| (r.text(0), r.text(1))));
    }
    Ok(names)
}

/// One version of a file: the file as it was then (for serving its bytes) and its blob.
pub async fn version(
    app: &App,
    who: &UserId,
    id: &FileId,
    version: i64,
) -> Result<(File, Option<String>), FilesError> {
    let file = file_of(app, who, id).await?;
    let rows = app
        .ports
        .meta
        .query(stmt!(
            format!("SELECT {VERSION_COLS} FROM file_versions WHERE file_id = ? AND version = ?"),
            id,
            version
        ))
        .await?;
    let row = rows
        .first()
        .map(|r| row_to_version(r, file.version))
        .ok_or(FilesError::NoSuchVersion(version))?;
    let then = File {
        size: row.version.size,
        mime: row.version.mime,
        version,
        checksum: row.version.checksum,
        updated_at: row.version.created_at,
        ..file
    };
    Ok((then, row.blob_key))
}

/// Makes an old version the file's content again, as a new version (origin "restore"); the
/// versions after it stay in the history. Restoring the current version changes nothing. A
/// live room merges the restored text as it merges any save made without it.
pub async fn restore(
    app: &App,
    who: &UserId,
    id: &FileId,
    version: i64,
) -> Result<File, FilesError> {
    let (then, blob_key) = self::version(app, who, id, version).await?;
    let current = file_of(app, who, id).await?;
    if version == current.version {
        return Ok(current);
    }
    crate::locks::check_save(app, who, id).await?;
    let made = Made::by(Origin::Restore, who);
    let checksum = then.checksum.clone().unwrap_or_default();
    let content = NewContent {
        size: then.size,
        blob_key: blob_key.as_deref().unwrap_or(&checksum),
        checksum: &checksum,
        mime: then.mime.as_deref(),
        from_version: Some(version),
    };
    if set_version(app, who, id, current.version, &made, &content).await? == 0 {
        let now = file_of(app, who, id).await?;
        // Removed by the retention rule meanwhile.
        self::version(app, who, id, version).await?;
        if now.version != current.version {
            return Err(FilesError::Stale {
                current: now.version,
                given: current.version,
            });
        }
        let (quota, used) = quota_left(app.ports.meta.as_ref(), who).await?;
        return Err(FilesError::QuotaExceeded {
            quota,
            used,
            needed: then.size,
        });
    }
    crate::rooms::store::saved_without_room(app, id).await;
    let file = file_of(app, who, id).await?;
    changed(app, who, file.parent_id.clone().map(FileId::from).as_ref());
    Ok(file)
}

/// Removes one old version for good, to free room before the retention rule would (its
/// bytes go with the next sweep unless another version has the same). The current version
/// cannot go: the file's content is always kept.
pub async fn remove(app: &App, who: &UserId, id: &FileId, version: i64) -> Result<(), FilesError> {
    let file = file_of(app, who, id).await?;
    if version == file.version {
        return Err(FilesError::CurrentVersion(version));
    }
    let removed = app
        .ports
        .meta
        .execute(stmt!(
            "DELETE FROM file_versions WHERE file_id = ? AND version = ?
               AND version < (SELECT version FROM files WHERE id = ? AND user_id = ?)",
            id,
            version,
            id,
            who
        ))
        .await?;
    if removed == 0 {
        return Err(FilesError::NoSuchVersion(version));
    }
    Ok(())
}

/// Applies the retention rule: a version older than the configured time is removed unless it
/// is its file's current version or the last one of its UTC day. The number removed.
pub async fn prune(app: &App) -> Result<u64, FilesError> {
    let cutoff = app.now_ms() - app.config.history_keep_all_secs * 1000;
    let mut removed = 0;
    loop {
        // In pages, so one sweep never holds the database for long.
        let n = app
            .ports
            .meta
            .execute(stmt!(
                "DELETE FROM file_versions WHERE rowid IN (
                     SELECT v.rowid FROM file_versions v JOIN files f ON f.id = v.file_id
                     WHERE v.created_at < ? AND v.version < f.version
                       AND EXISTS (SELECT 1 FROM file_versions n
                                   WHERE n.file_id = v.file_id AND n.version > v.version
                                     AND n.created_at / ? = v.created_at / ?)
                     LIMIT 1000)",
                cutoff,
                DAY_MS,
                DAY_MS
            ))
            .await?;
        removed += n;
        if n == 0 {
            return Ok(removed);
        }
    }
}
