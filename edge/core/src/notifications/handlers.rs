//! `GET /notifications`, `POST /notifications/read`: parse, call one service, answer.

use axum::extract::State;
use axum::Json;
use cloudos_proto::{MarkRead, NotificationList};

use crate::auth::AuthUser;
use crate::error::{ApiError, ApiJson};
use crate::App;

/// `GET /notifications`: the newest 100, and how many are unread in all.
#[utoipa::path(get, path = "/notifications", tag = "notifications", security(("bearer" = [])),
    responses((status = 200, body = NotificationList)))]
pub async fn list(
    State(app): State<App>,
    user: AuthUser,
) -> Result<Json<NotificationList>, ApiError> {
    Ok(Json(super::history(&app, &user.id).await?))
}

/// `POST /notifications/read`: marks the given ids (or all) read.
#[utoipa::path(post, path = "/notifications/read", tag = "notifications", request_body = MarkRead, security(("bearer" = [])),
    responses((status = 200, body = NotificationList)))]
pub async fn mark_read(
    State(app): State<App>,
    user: AuthUser,
    ApiJson(req): ApiJson<MarkRead>,
) -> Result<Json<NotificationList>, ApiError> {
    Ok(Json(
        super::mark_read(&app, &user.id, req.ids.as_deref()).await?,
    ))
}
