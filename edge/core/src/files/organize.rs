//! Organizing the tree: new folders, renames, moves and deletes.
//!
//! Each change is one conditional statement, so a rule checked in it (the parent is a
//! folder of the user, a folder never moves into its own subtree) still holds when
//! another request changes the tree at the same moment.

use cloudos_proto::File;

use super::names::validate_name;
use super::repo::{self, ensure_folder, ensure_room_for, ROOM_FOR_ITEMS};
use super::{changed, FilesError};
use crate::ids::{FileId, UserId};
use crate::ports::{DbError, Stmt};
use crate::{stmt, App};

/// SQL that is true when `?` (a folder id, or NULL for the root) is the root or a folder
/// of user `?`. Binds the folder id twice, then the user.
pub(crate) const PARENT_IS_FOLDER: &str = "(? IS NULL OR EXISTS (
    SELECT 1 FROM files WHERE id = ? AND user_id = ? AND kind = 'folder' AND trashed_at IS NULL))";

/// Creates a folder in `parent` (`None`: the root).
pub async fn create_folder(
    app: &App,
    who: &UserId,
    parent: Option<&FileId>,
    name: &str,
) -> Result<File, FilesError> {
    validate_name(name)?;
    let id = FileId::from(app.ports.ids.new_id());
    let now = app.now_ms();
    let insert = stmt!(
        format!(
            "INSERT INTO files (id, user_id, parent_id, name, kind, size, version, created_at, updated_at)
             SELECT ?, ?, ?, ?, 'folder', 0, 1, ?, ? WHERE {PARENT_IS_FOLDER} AND {ROOM_FOR_ITEMS}"
        ),
        &id, who, parent, name, now, now,
        parent, parent, who,
        who, 1_u64, app.config.max_items_per_user
    );
    if execute_or_taken(app, insert, name).await? == 0 {
        // The parent is missing, someone else's or a file; or the user has too many items.
        let meta = app.ports.meta.as_ref();
        ensure_folder(meta, who, parent).await?;
        ensure_room_for(meta, who, 1, app.config.max_items_per_user).await?;
        return Err(FilesError::NotFound);
    }
    changed(app, who, parent);
    repo::get_file(app.ports.meta.as_ref(), who, &id).await
}

/// What a rename or move changes; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct Change {
    pub name: Option<String>,
    /// `Some(None)` moves to the root.
    pub parent: Option<Option<FileId>>,
    /// Sets or clears a file's executable bit (a folder has none: left alone).
    pub executable: Option<bool>,
}

/// Renames and/or moves a file or folder. Only what `change` names is written, so a
/// rename and a move of the same item at once both take effect.
pub async fn rename_or_move(
    app: &App,
    who: &UserId,
    id: &FileId,
    change: Change,
) -> Result<File, FilesError> {
    let meta = app.ports.meta.as_ref();
    let current = repo::get_file(meta, who, id).await?;
    if let Some(name) = &change.name {
        validate_name(name)?;
    }
    let old_parent = current.parent_id.map(FileId::from);
    let moving = change.parent.is_some();
    let parent = change.parent.unwrap_or_else(|| old_parent.clone());
    // A move needs the new parent to be a folder of the user's and not the moved item or
    // one of its descendants: walk up from the new parent (UNION ends a damaged tree's
    // cycle; past MAX_DEPTH the walk counts as meeting the item) and refuse if the walk
    // meets it. Without a move both checks are skipped (NULL).
    let target = parent.as_ref().filter(|_| moving);
    let update = stmt!(
        format!(
            "UPDATE files SET name = COALESCE(?, name),
                              parent_id = CASE WHEN ? THEN ? ELSE parent_id END,
                              executable = CASE WHEN kind = 'file'
                                  THEN COALESCE(?, executable) ELSE executable END,
                              updated_at = ?
             WHERE id = ? AND user_id = ? AND trashed_at IS NULL AND {PARENT_IS_FOLDER}
               AND (WITH RECURSIVE up(id) AS (
                        SELECT ?
                        UNION
                        SELECT f.parent_id FROM files f JOIN up ON f.id = up.id
                        WHERE f.parent_id IS NOT NULL
                        LIMIT {MAX_DEPTH}
                    )
                    SELECT COALESCE(SUM(up.id = ?), 0) + (COUNT(*) >= {MAX_DEPTH}) FROM up) = 0"
        ),
        change.name.as_deref(),
        moving,
        parent.as_ref(),
        change.executable,
        app.now_ms(),
        id,
        who,
        target,
        target,
        who,
        target,
        id
    );
    let name = change.name.as_deref().unwrap_or(&current.name);
    if execute_or_taken(app, update, name).await? == 0 {
        repo::get_file(meta, who, id).await?;
        ensure_folder(meta, who, target).await?;
        return Err(FilesError::IntoOwnSubtree);
    }
    changed(app, who, old_parent.as_ref());
    if parent != old_parent {
        changed(app, who, parent.as_ref());
    }
    repo::get_file(meta, who, id).await
}

/// How deep a tree is walked at most (far deeper than any real tree); a move whose new
/// parent lies deeper is refused.
pub(crate) const MAX_DEPTH: u32 = 10_000;

/// Deletes a file, or a folder with everything in it: into the Trash, from where it can be
/// restored until it expires ([`super::trash`]).
pub async fn delete(app: &App, who: &UserId, id: &FileId) -> Result<(), FilesError> {
    super::trash::delete(app, who, id).await
}

/// Runs an insert or update whose UNIQUE(user, parent, name) failure means the name is taken.
async fn execute_or_taken(app: &App, stmt: Stmt, name: &str) -> Result<u64, FilesError> {
    match app.ports.meta.execute(stmt).await {
        Ok(n) => Ok(n),
        Err(DbError::Constraint(_)) => Err(FilesError::NameTaken(name.to_owned())),
        Err(e) => Err(e.into()),
    }
}
