//! The file rows in the metadata store.

use cloudos_proto::{File, FileKind};

use super::FilesError;
use crate::ids::{FileId, UserId};
use crate::ports::{DbError, MetaStore, Row, Value};
use crate::{rfc3339, stmt};

/// Columns read by [`row_to_file`], in order.
pub(crate) const FILE_COLS: &str =
    "id, parent_id, name, kind, size, mime, version, checksum, shared, created_at, updated_at, blob_key, executable";

/// A stored file row with the fields the API never shows.
#[derive(Debug, Clone)]
pub(crate) struct FileRow {
    pub file: File,
    pub blob_key: Option<String>,
}

pub(crate) fn row_to_file(mut row: Row) -> FileRow {
    // Listings convert thousands of rows: move the strings rather than copy them.
    let kind = match row.0.get(3) {
        Some(Value::Text(k)) if k == "folder" => FileKind::Folder,
        _ => FileKind::File,
    };
    FileRow {
        file: File {
            id: row.take_text(0).unwrap_or_default(),
            parent_id: row.take_text(1),
            name: row.take_text(2).unwrap_or_default(),
            kind,
            size: row.int(4) as u64,
            mime: row.take_text(5),
            version: row.int(6),
            checksum: row.take_text(7),
            shared: row.int(8) != 0,
            created_at: rfc3339(row.int(9)),
            updated_at: rfc3339(row.int(10)),
            download_url: None,
            executable: row.int(12) != 0,
        },
        blob_key: row.take_text(11),
    }
}

/// A file or folder of `who` (someone else's is [`FilesError::NotFound`]).
pub(crate) async fn get_file(
    meta: &dyn MetaStore,
    who: &UserId,
    id: &FileId,
) -> Result<File, FilesError> {
    Ok(get(meta, who, id).await?.file)
}

pub(crate) async fn get(
    meta: &dyn MetaStore,
    who: &UserId,
    id: &FileId,
) -> Result<FileRow, FilesError> {
    let rows = meta
        .query(stmt!(
            format!(
                "SELECT {FILE_COLS} FROM files WHERE id = ? AND user_id = ? AND trashed_at IS NULL"
            ),
            id,
            who
        ))
        .await?;
    rows.into_iter()
        .next()
        .map(row_to_file)
        .ok_or(FilesError::NotFound)
}

/// The user's files and folders `ids`, in that order (one query per 500: a batch just added).
/// Trashed ones too: a batch's folder may go to the Trash right after the batch went in,
/// and the batch was still added (it went along into the Trash).
pub(crate) async fn get_files(
    meta: &dyn MetaStore,
    who: &UserId,
    ids: &[FileId],
) -> Result<Vec<File>, FilesError> {
    let mut found = std::collections::HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let mut params: Vec<Value> = vec![who.into()];
        params.extend(chunk.iter().map(Value::from));
        let rows = meta
            .query(crate::ports::Stmt::new(
                format!(
                    "SELECT {FILE_COLS} FROM files
                     WHERE user_id = ? AND id IN ({marks})"
                ),
                params,
            ))
            .await?;
        for row in rows {
            let f = row_to_file(row).file;
            found.insert(f.id.clone(), f);
        }
    }
    ids.iter()
        .map(|id| found.remove(id.as_str()).ok_or(FilesError::NotFound))
        .collect()
}

/// Checks that `parent` is one of the user's folders (`None` is the root).
pub(crate) async fn ensure_folder(
    meta: &dyn MetaStore,
    who: &UserId,
    parent: Option<&FileId>,
) -> Result<(), FilesError> {
    if let Some(id) = parent {
        if get(meta, who, id).await?.file.kind != FileKind::Folder {
            return Err(FilesError::NotAFolder);
        }
    }
    Ok(())
}

/// Whether `name` is taken among the children of `parent`.
pub(crate) async fn name_taken(
    meta: &dyn MetaStore,
    who: &UserId,
    parent: Option<&FileId>,
    name: &str,
) -> Result<bool, FilesError> {
    let rows = meta
        .query(stmt!(
            "SELECT 1 FROM files WHERE user_id = ? AND COALESCE(parent_id, '') = ? AND name = ?
               AND trashed_at IS NULL",
            who,
            parent.map_or("", FileId::as_str),
            name
        ))
        .await?;
    Ok(!rows.is_empty())
}

/// SQL for the bytes user `?` uses: every version of every file, old and current, in the
/// Trash or not (what the retention sweep and emptying the Trash give back).
pub(crate) const USED_BY: &str =
    "(SELECT COALESCE(SUM(size), 0) FROM file_versions WHERE user_id = ?)";

/// Bytes the user's files take, every kept version counted.
pub async fn used_bytes(meta: &dyn MetaStore, who: &UserId) -> Result<u64, FilesError> {
    let rows = meta.query(stmt!(format!("SELECT {USED_BY}"), who)).await?;
    Ok(rows.first().map_or(0, |r| r.int(0)) as u64)
}

/// SQL that is true when user `?` has room for `?` more items under the cap `?`.
pub(crate) const ROOM_FOR_ITEMS: &str = "(SELECT COUNT(*) FROM files WHERE user_id = ?) + ? <= ?";

/// Why nothing was added for `who`, when the parent is fine: the item cap, if it is full.
pub(crate) async fn ensure_room_for(
    meta: &dyn MetaStore,
    who: &UserId,
    items: u64,
    max: u64,
) -> Result<(), FilesError> {
    let rows = meta
        .query(stmt!("SELECT COUNT(*) FROM files WHERE user_id = ?", who))
        .await?;
    let count = rows.first().map_or(0, |r| r.int(0)) as u64;
    if count + items > max {
        return Err(FilesError::TooManyItems { max });
    }
    Ok(())
}

/// The user's quota and what is left of it.
/// The user's drive quota in bytes.
pub async fn quota_bytes(meta: &dyn MetaStore, who: &UserId) -> Result<u64, DbError> {
    let rows = meta
        .query(stmt!("SELECT quota_bytes FROM users WHERE id = ?", who))
        .await?;
    Ok(rows.first().map_or(0, |r| r.int(0)) as u64)
}

pub(crate) async fn quota_left(
    meta: &dyn MetaStore,
    who: &UserId,
) -> Result<(u64, u64), FilesError> {
    let quota = quota_bytes(meta, who).await?;
    let used = used_bytes(meta, who).await?;
    Ok((quota, used))
}
