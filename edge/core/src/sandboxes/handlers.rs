//! `POST /sandbox`, `GET /sandbox/:id`, `DELETE /sandbox/:id`, `POST /sandbox/:id/share`:
//! parse, call one `lifecycle` service, answer.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use cloudos_proto::terminal::{Sandbox, SandboxShare};
use cloudos_proto::Problem;
use serde::Deserialize;

use super::lifecycle;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiPath, OptionalJson};
use crate::ids::SandboxId;
use crate::{origin, rfc3339, App};

/// `POST /sandbox`: the caller's live sandbox, started if there is none (one per user).
#[utoipa::path(post, path = "/sandbox", tag = "sandboxes", security(("bearer" = [])),
    responses((status = 201, body = Sandbox, description = "started"), (status = 200, body = Sandbox, description = "already running"),
        (status = 429, body = Problem), (status = 502, body = Problem), (status = 503, body = Problem)))]
pub async fn create(
    State(app): State<App>,
    user: AuthUser,
) -> Result<(StatusCode, Json<Sandbox>), ApiError> {
    let started = lifecycle::start(&app, &user.id).await?;
    let status = if started.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(started.sandbox.to_proto())))
}

/// `GET /sandbox/:id`
#[utoipa::path(get, path = "/sandbox/{id}", tag = "sandboxes", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = Sandbox), (status = 404, body = Problem)))]
pub async fn get(
    State(app): State<App>,
    user: AuthUser,
    ApiPath(id): ApiPath<SandboxId>,
) -> Result<Json<Sandbox>, ApiError> {
    Ok(Json(lifecycle::get(&app, &user.id, &id).await?.to_proto()))
}

/// `DELETE /sandbox/:id`: stops everything in it; the home stays for the next sandbox.
#[utoipa::path(delete, path = "/sandbox/{id}", tag = "sandboxes", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 204), (status = 404, body = Problem)))]
pub async fn delete(
    State(app): State<App>,
    user: AuthUser,
    ApiPath(id): ApiPath<SandboxId>,
) -> Result<StatusCode, ApiError> {
    lifecycle::stop(&app, &user.id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /sandbox/:id/shares`: the owner's view links to this sandbox, newest first, with
/// their state and use (never their tokens).
#[utoipa::path(get, path = "/sandbox/{id}/shares", tag = "sandboxes", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = cloudos_proto::ShareList), (status = 404, body = Problem)))]
pub async fn shares(
    State(app): State<App>,
    user: AuthUser,
    ApiPath(id): ApiPath<SandboxId>,
) -> Result<Json<cloudos_proto::ShareList>, ApiError> {
    let links = lifecycle::shares(&app, &user.id, &id).await?;
    let now = app.now_ms();
    Ok(Json(cloudos_proto::ShareList {
        items: links.iter().map(|l| l.to_proto(now)).collect(),
    }))
}

/// Body of `POST /sandbox/:id/share`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct ShareRequest {
    /// Seconds the link works (default one day, at most a week).
    pub expires_in: Option<i64>,
}

/// `POST /sandbox/:id/share`: a view-only link to the owner's terminals for another
/// signed-in user; `DELETE /shares/:token` revokes it.
#[utoipa::path(post, path = "/sandbox/{id}/share", tag = "sandboxes", security(("bearer" = [])),
    params(("id" = String, Path)), request_body(content = ShareRequest, description = "optional"),
    responses((status = 201, body = SandboxShare), (status = 404, body = Problem)))]
pub async fn share(
    State(app): State<App>,
    user: AuthUser,
    headers: HeaderMap,
    ApiPath(id): ApiPath<SandboxId>,
    OptionalJson(req): OptionalJson<ShareRequest>,
) -> Result<(StatusCode, Json<SandboxShare>), ApiError> {
    let share = lifecycle::share(&app, &user.id, &id, req.expires_in).await?;
    let fragment = form_urlencoded::Serializer::new(String::new())
        .append_pair("sandbox", &id)
        .append_pair("share", &share.token)
        .finish();
    let url = format!("{}/#terminal?{fragment}", origin(&app, &headers));
    Ok((
        StatusCode::CREATED,
        Json(SandboxShare {
            id: share.id,
            token: share.token,
            url,
            expires_at: rfc3339(share.expires_at),
        }),
    ))
}
