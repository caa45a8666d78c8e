//! `POST /files/:id/lock` (take or renew), `GET /files/:id/lock`, `DELETE /files/:id/lock`:
//! for one's own files, or through an edit link (`?share=`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use cloudos_proto::{FileLock, LockRequest, LockState};
use serde::Deserialize;

use crate::auth::AuthUser;
use crate::error::{ApiError, ApiPath, ApiQuery, OptionalJson};
use crate::ids::FileId;
use crate::App;

/// The query of the lock routes.
#[derive(Debug, Default, Deserialize)]
pub struct LockQuery {
    /// An edit link to the file (or to a folder above it), for a colleague's lock.
    pub share: Option<String>,
}

/// `POST /files/:id/lock`: take the file's lock, or renew one's own.
#[utoipa::path(post, path = "/files/{id}/lock", tag = "files", security(("bearer" = [])),
    params(("id" = String, Path), ("share" = Option<String>, Query, description = "an edit link that reaches the file")),
    request_body(content = LockRequest, description = "optional"),
    responses((status = 200, body = FileLock, description = "taken or renewed"),
        (status = 400, body = cloudos_proto::Problem),
        (status = 401, body = cloudos_proto::Problem),
        (status = 403, body = cloudos_proto::Problem, description = "a view link, or a folder"),
        (status = 404, body = cloudos_proto::Problem),
        (status = 410, body = cloudos_proto::Problem, description = "the link is dead or does not reach the file"),
        (status = 423, body = cloudos_proto::Problem, description = "someone else holds it (the detail names them)")))]
pub async fn take(
    State(app): State<App>,
    user: AuthUser,
    ApiPath(id): ApiPath<FileId>,
    ApiQuery(q): ApiQuery<LockQuery>,
    OptionalJson(req): OptionalJson<LockRequest>,
) -> Result<Json<FileLock>, ApiError> {
    let lock = super::take(&app, &user.id, &id, q.share.as_deref(), req.ttl).await?;
    Ok(Json(lock))
}

/// `GET /files/:id/lock`: who holds the file, if anyone.
#[utoipa::path(get, path = "/files/{id}/lock", tag = "files", security(("bearer" = [])),
    params(("id" = String, Path), ("share" = Option<String>, Query, description = "a link that reaches the file")),
    responses((status = 200, body = LockState),
        (status = 401, body = cloudos_proto::Problem),
        (status = 404, body = cloudos_proto::Problem),
        (status = 410, body = cloudos_proto::Problem)))]
pub async fn get(
    State(app): State<App>,
    user: AuthUser,
    ApiPath(id): ApiPath<FileId>,
    ApiQuery(q): ApiQuery<LockQuery>,
) -> Result<Json<LockState>, ApiError> {
    let lock = super::get(&app, &user.id, &id, q.share.as_deref()).await?;
    Ok(Json(LockState { lock }))
}

/// `DELETE /files/:id/lock`: the holder releases it, or the owner breaks it.
#[utoipa::path(delete, path = "/files/{id}/lock", tag = "files", security(("bearer" = [])),
    params(("id" = String, Path), ("share" = Option<String>, Query, description = "an edit link that reaches the file")),
    responses((status = 204, description = "released (also when nobody held it)"),
        (status = 401, body = cloudos_proto::Problem),
        (status = 404, body = cloudos_proto::Problem),
        (status = 410, body = cloudos_proto::Problem),
        (status = 423, body = cloudos_proto::Problem, description = "someone else holds it, and the caller is not the owner")))]
pub async fn release(
    State(app): State<App>,
    user: AuthUser,
    ApiPath(id): ApiPath<FileId>,
    ApiQuery(q): ApiQuery<LockQuery>,
) -> Result<StatusCode, ApiError> {
    super::release(&app, &user.id, &id, q.share.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}
