//! The Trash: what a user deletes waits here with all its versions, restorable, until it
//! expires or they empty it.
//!
//! A deleted item and everything under it stay in the tree's table, marked with the time and
//! the id of the item the user deleted (`trash_root`); every read of the tree skips marked
//! rows, so a trashed file is gone for links, rooms and the sandbox until it is restored.

use std::collections::HashMap;

use cloudos_proto::{File, FileKind, TrashItem, TrashList};

use super::names::with_note;
use super::organize::PARENT_IS_FOLDER;
use super::repo;
use super::{changed, FilesError};
use crate::ids::{FileId, UserId};
use crate::ports::{DbError, Row};
use crate::{rfc3339, stmt, App};

/// Trash entries a listing shows at most (the newest).
const MAX_LISTED: i64 = 1000;

/// Moves a file, or a folder with everything in it, to the Trash. Items already in the
/// Trash on their own keep their own entry.
pub async fn delete(app: &App, who: &UserId, id: &FileId) -> Result<(), FilesError> {
    let meta = app.ports.meta.as_ref();
    let parent = repo::get_file(meta, who, id)
        .await?
        .parent_id
        .map(FileId::from);
    // UNION (not UNION ALL) visits each row once, so the walk ends even in a tree a bug had
    // damaged into a cycle; it is bounded by the user's rows (the item cap).
    let moved = meta
        .execute(stmt!(
            "WITH RECURSIVE tree(id) AS (
                 SELECT id FROM files WHERE id = ? AND user_id = ? AND trashed_at IS NULL
                 UNION
                 SELECT f.id FROM files f JOIN tree ON f.parent_id = tree.id
                 WHERE f.trashed_at IS NULL
             )
             UPDATE files SET trashed_at = ?, trash_root = ? WHERE id IN (SELECT id FROM tree)",
            id,
            who,
            app.now_ms(),
            id
        ))
        .await?;
    if moved == 0 {
        return Err(FilesError::NotFound);
    }
    changed(app, who, parent.as_ref());
    // Open rooms of what was deleted end their sockets: nobody edits a file in the Trash.
    let live = meta
        .query(stmt!(
            "SELECT l.file_id FROM live_rooms l JOIN files f ON f.id = l.file_id
             WHERE f.user_id = ? AND f.trash_root = ?",
            who,
            id
        ))
        .await;
    match live {
        Ok(rows) if !rows.is_empty() => {
            let files: Vec<FileId> = rows.iter().map(|r| FileId::from(r.text(0))).collect();
            app.ports.sockets.files_trashed(&files).await;
        }
        Ok(_) => {}
        // The delete stands; a room that was not told fails its next write-back instead.
        Err(e) => tracing::warn!(error = %e, "finding the rooms of deleted files"),
    }
    Ok(())
}

/// Whether `id` is no file of anyone's any more, in the Trash or out of it: removed for good.
pub async fn removed_for_good(app: &App, id: &FileId) -> Result<bool, FilesError> {
    let rows = app
        .ports
        .meta
        .query(stmt!("SELECT 1 FROM files WHERE id = ?", id))
        .await?;
    Ok(rows.is_empty())
}

/// What is in the user's Trash, most recently deleted first.
pub async fn list(app: &App, who: &UserId) -> Result<TrashList, FilesError> {
    let meta = app.ports.meta.as_ref();
    let rows = meta
        .query(stmt!(
            "SELECT t.id, t.name, t.kind, t.parent_id, t.trashed_at,
                    (SELECT COALESCE(SUM(f.size), 0) FROM files f
                      WHERE f.user_id = t.user_id AND f.trash_root = t.id),
                    (SELECT COUNT(*) - 1 FROM files f
                      WHERE f.user_id = t.user_id AND f.trash_root = t.id)
             FROM files t WHERE t.user_id = ? AND t.trash_root = t.id
             ORDER BY t.trashed_at DESC, t.name LIMIT ?",
            who,
            MAX_LISTED
        ))
        .await?;
    let keep_ms = app.config.trash_keep_secs * 1000;
    let mut items = Vec::with_capacity(rows.len());
    // Entries deleted from one folder share its path: looked up once.
    let mut folders: HashMap<String, String> = HashMap::new();
    for row in rows {
        let parent_id = row.opt_text(3);
        let folder = match &parent_id {
            None => String::new(),
            Some(p) => match folders.get(p) {
                Some(path) => path.clone(),
                None => {
                    let path = folder_path(app, who, p).await?;
                    folders.insert(p.clone(), path.clone());
                    path
                }
            },
        };
        let path = format!("{folder}/{}", row.text(1));
        let deleted = row.int(4);
        items.push(TrashItem {
            id: row.text(0),
            name: row.text(1),
            kind: if row.text(2) == "folder" {
                FileKind::Folder
            } else {
                FileKind::File
            },
            parent_id,
            path,
            size: row.int(5) as u64,
            items: row.int(6).max(0) as u64,
            deleted_at: rfc3339(deleted),
            expires_at: rfc3339(deleted + keep_ms),
        });
    }
    let bytes = meta
        .query(stmt!(
            "SELECT COALESCE(SUM(v.size), 0) FROM file_versions v JOIN files f ON f.id = v.file_id
             WHERE f.user_id = ? AND f.trashed_at IS NOT NULL",
            who
        ))
        .await?
        .first()
        .map_or(0, |r| r.int(0)) as u64;
    Ok(TrashList { items, bytes })
}

/// A folder's path from the root (`/Projects/app`), whatever state it and the folders above
/// it are in now (a folder deleted since still names the place).
async fn folder_path(app: &App, who: &UserId, folder: &str) -> Result<String, DbError> {
    let rows = app
        .ports
        .meta
        .query(stmt!(
            format!(
                "WITH RECURSIVE up(id, name, depth) AS (
                     SELECT parent_id, name, 1 FROM files WHERE id = ? AND user_id = ?
                     UNION ALL
                     SELECT f.parent_id, f.name, up.depth + 1 FROM files f JOIN up ON f.id = up.id
                     WHERE up.depth < {}
                 )
                 SELECT name FROM up ORDER BY depth DESC",
                super::organize::MAX_DEPTH
            ),
            folder,
            who
        ))
        .await?;
    Ok(rows.iter().map(|r| format!("/{}", r.text(0))).collect())
}

/// Brings a Trash entry back with everything that was deleted with it: into the folder it
/// was deleted from when that folder is still there, else into the root; under a new name
/// ("report (restored).txt") when its old one is taken. Ids, versions and links are kept.
pub async fn restore(app: &App, who: &UserId, id: &FileId) -> Result<File, FilesError> {
    let meta = app.ports.meta.as_ref();
    let rows = meta
        .query(stmt!(
            "SELECT name, parent_id FROM files WHERE id = ? AND user_id = ? AND trash_root = id",
            id,
            who
        ))
        .await?;
    let row = rows.first().ok_or(FilesError::NotFound)?;
    let name = row.text(0);
    let mut parent = row.opt_text(1).map(FileId::from);
    if let Some(p) = &parent {
        if repo::ensure_folder(meta, who, Some(p)).await.is_err() {
            parent = None;
        }
    }
    let mut attempt = 0;
    while attempt < 100 {
        let candidate = match attempt {
            0 => name.clone(),
            1 => with_note(&name, "restored"),
            n => with_note(&name, &format!("restored {n}")),
        };
        attempt += 1;
        if repo::name_taken(meta, who, parent.as_ref(), &candidate).await? {
            continue;
        }
        // The destination is checked again in the write: a folder deleted meanwhile would
        // hide what is restored into it.
        let restored = meta
            .execute(stmt!(
                format!(
                    "UPDATE files SET trashed_at = NULL, trash_root = NULL,
                         parent_id = CASE WHEN id = ? THEN ? ELSE parent_id END,
                         name = CASE WHEN id = ? THEN ? ELSE name END
                     WHERE user_id = ? AND trash_root = ? AND {PARENT_IS_FOLDER}"
                ),
                id,
                parent.as_ref(),
                id,
                candidate.as_str(),
                who,
                id,
                parent.as_ref(),
                parent.as_ref(),
                who
            ))
            .await;
        match restored {
            Ok(0) => {
                // The destination went away: the root is always there, and its own names
                // are tried from the first.
                if parent.take().is_none() {
                    return Err(FilesError::NotFound);
                }
                attempt = 0;
            }
            Ok(_) => {
                changed(app, who, parent.as_ref());
                return repo::get_file(meta, who, id).await;
            }
            // Taken between the look and the write: try the next name.
            Err(DbError::Constraint(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Err(FilesError::NameTaken(name))
}

/// Removes a Trash entry for good, with every version of everything in it (their bytes go
/// with the next orphan sweep).
pub async fn purge(app: &App, who: &UserId, id: &FileId) -> Result<(), FilesError> {
    let removed = purge_entry(app, who, id).await?;
    if removed == 0 {
        return Err(FilesError::NotFound);
    }
    Ok(())
}

/// Empties the user's Trash; the number of entries removed.
pub async fn empty(app: &App, who: &UserId) -> Result<u64, FilesError> {
    let mut removed = 0;
    loop {
        let roots = app
            .ports
            .meta
            .query(stmt!(
                "SELECT id FROM files WHERE user_id = ? AND trash_root = id LIMIT 500",
                who
            ))
            .await?;
        if roots.is_empty() {
            return Ok(removed);
        }
        for row in roots {
            if purge_entry(app, who, &FileId::from(row.text(0))).await? > 0 {
                removed += 1;
            }
        }
    }
}

/// Removes the entries deleted longer ago than the Trash keeps them; how many.
pub async fn expire(app: &App) -> Result<u64, FilesError> {
    let cutoff = app.now_ms() - app.config.trash_keep_secs * 1000;
    let mut removed = 0;
    loop {
        let roots: Vec<Row> = app
            .ports
            .meta
            .query(stmt!(
                "SELECT user_id, id FROM files
                 WHERE trash_root = id AND trashed_at < ? LIMIT 500",
                cutoff
            ))
            .await?;
        if roots.is_empty() {
            return Ok(removed);
        }
        for row in roots {
            let (who, id) = (UserId::from(row.text(0)), FileId::from(row.text(1)));
            if purge_entry(app, &who, &id).await? > 0 {
                removed += 1;
            }
        }
    }
}

/// Deletes one entry's rows (their versions, locks and room logs follow by foreign key).
/// Anything deleted on its own from inside it before it was, and so still waiting under its
/// own entry, is first moved to the root so that it does not go too.
async fn purge_entry(app: &App, who: &UserId, id: &FileId) -> Result<u64, FilesError> {
    let done = app
        .ports
        .meta
        .batch(vec![
            stmt!(
                "UPDATE files SET parent_id = NULL
                 WHERE user_id = ? AND trash_root IS NOT NULL AND trash_root <> ?
                   AND parent_id IN (SELECT id FROM files WHERE user_id = ? AND trash_root = ?)",
                who,
                id,
                who,
                id
            ),
            stmt!(
                "DELETE FROM files WHERE user_id = ? AND trash_root = ?",
                who,
                id
            ),
        ])
        .await?;
    Ok(done.get(1).copied().unwrap_or(0))
}
