//! Finding files: the launcher's search and a folder's path for breadcrumbs.

use cloudos_proto::File;

use super::organize::MAX_DEPTH;
use super::repo::{self, FILE_COLS};
use super::FilesError;
use crate::ids::{FileId, UserId};
use crate::ports::Row;
use crate::{stmt, App};

/// Longest query the search accepts (a launcher query is a few words).
const MAX_QUERY_CHARS: usize = 100;

/// A LIKE pattern matching names that contain the query's characters in order.
fn subsequence_pattern(q: &str) -> String {
    let mut pattern = String::from("%");
    for c in q.chars().filter(|c| !c.is_whitespace()) {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
        pattern.push('%');
    }
    pattern
}

/// The user's files and folders whose names hold `query`'s characters in order, names
/// holding it as typed first, then shorter (closer) names; at most `limit` (1–100).
pub async fn search(
    app: &App,
    who: &UserId,
    query: &str,
    limit: u32,
) -> Result<Vec<File>, FilesError> {
    let query = query.trim();
    if query.chars().count() > MAX_QUERY_CHARS {
        return Err(FilesError::BadSearch(format!(
            "a search is at most {MAX_QUERY_CHARS} characters"
        )));
    }
    if query.is_empty() {
        return Ok(vec![]);
    }
    let rows = app
        .ports
        .meta
        .query(stmt!(
            format!(
                "SELECT {FILE_COLS} FROM files
                 WHERE user_id = ? AND name LIKE ? ESCAPE '\\' AND trashed_at IS NULL
                 ORDER BY instr(lower(name), lower(?)) = 0, length(name), name LIMIT ?"
            ),
            who,
            subsequence_pattern(query),
            query,
            i64::from(limit.clamp(1, 100))
        ))
        .await?;
    Ok(files(rows))
}

fn files(rows: Vec<Row>) -> Vec<File> {
    rows.into_iter()
        .map(|r| repo::row_to_file(r).file)
        .collect()
}

/// The folders from the root down to the item's parent (empty for an item at the root).
pub async fn ancestors(app: &App, who: &UserId, id: &FileId) -> Result<Vec<File>, FilesError> {
    let meta = app.ports.meta.as_ref();
    repo::get(meta, who, id).await?;
    // The depth cap bounds the walk even in a tree a bug has damaged into a cycle.
    let rows = meta
        .query(stmt!(
            format!(
                "WITH RECURSIVE up(aid, depth) AS (
                     SELECT parent_id, 1 FROM files WHERE id = ? AND user_id = ?
                     UNION ALL
                     SELECT f.parent_id, up.depth + 1 FROM files f JOIN up ON f.id = up.aid
                     WHERE up.depth < {MAX_DEPTH}
                 )
                 SELECT {FILE_COLS} FROM files JOIN up ON files.id = up.aid
                 WHERE files.user_id = ? ORDER BY up.depth DESC"
            ),
            id,
            who,
            who
        ))
        .await?;
    Ok(files(rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_in_order_and_escape_wildcards() {
        assert_eq!(subsequence_pattern("rdm"), "%r%d%m%");
        assert_eq!(subsequence_pattern("a b"), "%a%b%");
        assert_eq!(subsequence_pattern("5%_x"), "%5%\\%%\\_%x%");
    }
}
