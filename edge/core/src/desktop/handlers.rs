//! `GET /apps`, `GET /desktop`, `PUT /desktop`: parse, call one service, answer.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use cloudos_proto::{AppList, DesktopLayout, Problem};

use super::{apps as catalogue, layout};
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiJson};
use crate::App;

/// `GET /apps`: first-party apps, then the ones the user installed.
#[utoipa::path(get, path = "/apps", tag = "desktop", security(("bearer" = [])),
    responses((status = 200, body = AppList)))]
pub async fn apps(State(app): State<App>, user: AuthUser) -> Result<Json<AppList>, ApiError> {
    Ok(Json(AppList {
        apps: catalogue::available(&app, &user.id).await?,
    }))
}

/// `GET /desktop`: the saved layout, or an empty object before the first save.
#[utoipa::path(get, path = "/desktop", tag = "desktop", security(("bearer" = [])),
    responses((status = 200, body = DesktopLayout)))]
pub async fn get_layout(
    State(app): State<App>,
    user: AuthUser,
) -> Result<Json<DesktopLayout>, ApiError> {
    Ok(Json(layout::load(&app, &user.id).await?))
}

/// `PUT /desktop`: replaces the saved layout.
#[utoipa::path(put, path = "/desktop", tag = "desktop", request_body = DesktopLayout, security(("bearer" = [])),
    responses((status = 204), (status = 400, body = Problem), (status = 413, body = Problem)))]
pub async fn put_layout(
    State(app): State<App>,
    user: AuthUser,
    ApiJson(body): ApiJson<DesktopLayout>,
) -> Result<StatusCode, ApiError> {
    layout::save(&app, &user.id, &body.layout).await?;
    Ok(StatusCode::NO_CONTENT)
}
