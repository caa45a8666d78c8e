//! `GET /files/tree` and `POST /sync/report`: parse, call one service, answer.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use cloudos_proto::{Problem, SyncReport, Tree};

use crate::auth::FilesUser;
use crate::error::{ApiError, ApiJson};
use crate::App;

/// `GET /files/tree`: every file and folder with its path (a sync's manifest).
#[utoipa::path(get, path = "/files/tree", tag = "files", security(("bearer" = [])),
    responses((status = 200, body = Tree), (status = 401, body = Problem)))]
pub async fn tree(State(app): State<App>, user: FilesUser) -> Result<Json<Tree>, ApiError> {
    Ok(Json(super::tree(&app, &user.id).await?))
}

/// `POST /sync/report`: a sandbox's sync tells its owner something (a conflict, a file
/// left out); sync tokens only.
#[utoipa::path(post, path = "/sync/report", tag = "files", request_body = SyncReport, security(("bearer" = [])),
    responses((status = 204, description = "the owner was notified"), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn report(
    State(app): State<App>,
    user: FilesUser,
    ApiJson(req): ApiJson<SyncReport>,
) -> Result<StatusCode, ApiError> {
    if user.sandbox.is_none() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "sync-only",
            "only a sandbox's sync reports here",
        ));
    }
    super::report(&app, &user.id, &req).await?;
    Ok(StatusCode::NO_CONTENT)
}
