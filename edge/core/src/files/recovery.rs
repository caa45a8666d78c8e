//! HTTP endpoints of history and the Trash: each parses, calls one service and maps the answer.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use cloudos_proto::{File, Problem, TrashList, VersionList};

use super::handlers::serve_content;
use super::{history, trash, FilesError};
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiPath};
use crate::ids::FileId;
use crate::App;

/// `GET /files/:id/versions`: every kept version, newest first.
#[utoipa::path(get, path = "/files/{id}/versions", tag = "files", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = VersionList), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn versions(
    State(app): State<App>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<VersionList>, ApiError> {
    let items = history::list(&app, &user.id, &FileId::from(id)).await?;
    Ok(Json(VersionList { items }))
}

/// `GET /files/:id/versions/:v/content`: one version's bytes (Range, ETag), served as user
/// content like the current one.
#[utoipa::path(get, path = "/files/{id}/versions/{v}/content", tag = "files",
    params(("id" = String, Path), ("v" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, description = "the version's content"), (status = 206, description = "a range of it"),
        (status = 404, body = Problem), (status = 416, body = Problem)))]
pub async fn version_content(
    State(app): State<App>,
    user: AuthUser,
    headers: HeaderMap,
    ApiPath((id, v)): ApiPath<(String, i64)>,
) -> Result<Response, ApiError> {
    let (file, key) = history::version(&app, &user.id, &FileId::from(id), v).await?;
    let key = key.ok_or(FilesError::NoSuchVersion(v))?;
    serve_content(&app, file, &key, &headers, false).await
}

/// `POST /files/:id/versions/:v/restore`: that version's content becomes a new version.
#[utoipa::path(post, path = "/files/{id}/versions/{v}/restore", tag = "files",
    params(("id" = String, Path), ("v" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, body = File), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 412, body = Problem), (status = 413, body = Problem), (status = 423, body = Problem)))]
pub async fn restore_version(
    State(app): State<App>,
    user: AuthUser,
    ApiPath((id, v)): ApiPath<(String, i64)>,
) -> Result<Json<File>, ApiError> {
    let file = history::restore(&app, &user.id, &FileId::from(id), v).await?;
    Ok(Json(file))
}

/// `DELETE /files/:id/versions/:v`: removes an old version for good (frees its bytes).
#[utoipa::path(delete, path = "/files/{id}/versions/{v}", tag = "files",
    params(("id" = String, Path), ("v" = i64, Path)), security(("bearer" = [])),
    responses((status = 204, description = "removed"), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn remove_version(
    State(app): State<App>,
    user: AuthUser,
    ApiPath((id, v)): ApiPath<(String, i64)>,
) -> Result<StatusCode, ApiError> {
    history::remove(&app, &user.id, &FileId::from(id), v).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /trash`: deleted files and folders, most recent first.
#[utoipa::path(get, path = "/trash", tag = "files", security(("bearer" = [])),
    responses((status = 200, body = TrashList)))]
pub async fn list_trash(
    State(app): State<App>,
    user: AuthUser,
) -> Result<Json<TrashList>, ApiError> {
    Ok(Json(trash::list(&app, &user.id).await?))
}

/// `DELETE /trash`: removes everything in the Trash for good.
#[utoipa::path(delete, path = "/trash", tag = "files", security(("bearer" = [])),
    responses((status = 204, description = "emptied")))]
pub async fn empty_trash(State(app): State<App>, user: AuthUser) -> Result<StatusCode, ApiError> {
    trash::empty(&app, &user.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /trash/:id/restore`: puts a deleted item back (renamed if its name is taken).
#[utoipa::path(post, path = "/trash/{id}/restore", tag = "files", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = File), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn restore_trashed(
    State(app): State<App>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<File>, ApiError> {
    Ok(Json(
        trash::restore(&app, &user.id, &FileId::from(id)).await?,
    ))
}

/// `DELETE /trash/:id`: removes one deleted item for good.
#[utoipa::path(delete, path = "/trash/{id}", tag = "files", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 204, description = "removed for good"), (status = 404, body = Problem)))]
pub async fn purge_trashed(
    State(app): State<App>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    trash::purge(&app, &user.id, &FileId::from(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
