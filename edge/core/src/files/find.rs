//! Finding files: the launcher's search and a folder's path for breadcrumbs.

use axum::extract::State;
use axum::Json;
use cloudos_proto::{FileList, Problem};
use serde::Deserialize;

use super::repo::{self, FILE_COLS};
use super::FilesError;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiPath, ApiQuery};
use crate::ports::Row;
use crate::{stmt, App};

/// Longest query the search accepts (a launcher query is a few words).
const MAX_QUERY_CHARS: usize = 100;

/// `?q=&limit=` of `GET /files/search`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct SearchQuery {
    /// Letters that appear in the name in this order (fuzzy), case-insensitive.
    pub q: String,
    /// At most this many results (default 20, at most 100).
    pub limit: Option<u32>,
}

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

/// `GET /files/search`: the user's files and folders whose names match, best first.
#[utoipa::path(get, path = "/files/search", tag = "files", params(SearchQuery), security(("bearer" = [])),
    responses((status = 200, body = FileList), (status = 400, body = Problem)))]
pub async fn search(
    State(app): State<App>,
    user: AuthUser,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> Result<Json<FileList>, ApiError> {
    let query = q.q.trim();
    if query.chars().count() > MAX_QUERY_CHARS {
        return Err(ApiError::bad_request(format!(
            "a search is at most {MAX_QUERY_CHARS} characters"
        )));
    }
    if query.is_empty() {
        return Ok(Json(FileList { items: vec![] }));
    }
    let limit = i64::from(q.limit.unwrap_or(20).clamp(1, 100));
    // Names containing the query as typed come first, then shorter (closer) names.
    let rows = app
        .ports
        .meta
        .query(stmt!(
            format!(
                "SELECT {FILE_COLS} FROM files
                 WHERE user_id = ? AND name LIKE ? ESCAPE '\\'
                 ORDER BY instr(lower(name), lower(?)) = 0, length(name), name LIMIT ?"
            ),
            user.id.as_str(),
            subsequence_pattern(query),
            query,
            limit
        ))
        .await
        .map_err(FilesError::from)?;
    Ok(Json(file_list(rows)))
}

fn file_list(rows: Vec<Row>) -> FileList {
    FileList {
        items: rows
            .into_iter()
            .map(|r| repo::row_to_file(r).file)
            .collect(),
    }
}

/// `GET /files/:id/ancestors`: the folders from the root down to the item's parent.
#[utoipa::path(get, path = "/files/{id}/ancestors", tag = "files", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = FileList), (status = 404, body = Problem)))]
pub async fn ancestors(
    State(app): State<App>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<FileList>, ApiError> {
    let meta = app.ports.meta.as_ref();
    repo::get(meta, &user.id, &crate::ids::FileId::from(id.as_str())).await?;
    let rows = meta
        .query(stmt!(
            format!(
                "WITH RECURSIVE up(aid, depth) AS (
                     SELECT parent_id, 1 FROM files WHERE id = ? AND user_id = ?
                     UNION ALL
                     SELECT f.parent_id, up.depth + 1 FROM files f JOIN up ON f.id = up.aid
                     WHERE up.depth < 1000
                 )
                 SELECT {FILE_COLS} FROM files JOIN up ON files.id = up.aid
                 WHERE files.user_id = ? ORDER BY up.depth DESC"
            ),
            id.as_str(),
            user.id.as_str(),
            user.id.as_str()
        ))
        .await
        .map_err(FilesError::from)?;
    Ok(Json(file_list(rows)))
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
