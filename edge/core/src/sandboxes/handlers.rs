//! `POST /sandbox`, `GET /sandbox/:id`, `DELETE /sandbox/:id`, `POST /sandbox/:id/share`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use cloudos_proto::terminal::{Sandbox, SandboxShare};
use cloudos_proto::Problem;
use serde::Deserialize;

use super::attach::{ensure_running, spec};
use super::{live, owned, tokens, SandboxRow, SandboxesError};
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiPath};
use crate::ports::DbError;
use crate::{origin, rfc3339, stmt, App};

/// Default lifetime of a view share.
const SHARE_TTL_SECS: i64 = 24 * 3600;
/// Longest lifetime of a view share.
const SHARE_MAX_TTL_SECS: i64 = 7 * 24 * 3600;

/// `POST /sandbox`: the caller's live sandbox, started if there is none (one per user).
#[utoipa::path(post, path = "/sandbox", tag = "sandboxes", security(("bearer" = [])),
    responses((status = 201, body = Sandbox, description = "started"), (status = 200, body = Sandbox, description = "already running"),
        (status = 429, body = Problem), (status = 502, body = Problem), (status = 503, body = Problem)))]
pub async fn create(
    State(app): State<App>,
    user: AuthUser,
) -> Result<(StatusCode, Json<Sandbox>), ApiError> {
    if !app.ports.sandboxes.available() {
        return Err(SandboxesError::Unavailable.into());
    }
    if let Some(row) = live(&app, &user.id).await? {
        ensure_running(&app, &row).await?;
        return Ok((StatusCode::OK, Json(row.to_proto())));
    }
    let now = app.now_ms();
    let row = SandboxRow {
        id: app.ports.ids.new_id(),
        user_id: user.id.to_string(),
        machine_id: None,
        state: "running".into(),
        created_at: now,
    };
    let inserted = app
        .ports
        .meta
        .execute(stmt!(
            "INSERT INTO sandboxes (id, user_id, provider, state, created_at, last_seen_at)
             VALUES (?, ?, ?, 'running', ?, ?)",
            row.id.as_str(),
            user.id.as_str(),
            app.ports.sandboxes.provider(),
            now,
            now
        ))
        .await;
    match inserted {
        Ok(_) => {}
        // Another request of the same user won the race: theirs is the live one.
        Err(DbError::Constraint(_)) => {
            let row = live(&app, &user.id)
                .await?
                .ok_or(SandboxesError::NotFound)?;
            return Ok((StatusCode::OK, Json(row.to_proto())));
        }
        Err(e) => return Err(e.into()),
    }
    if let Err(e) = ensure_running(&app, &row).await {
        // Nothing runs: the row must not claim otherwise.
        app.ports
            .meta
            .execute(stmt!(
                "UPDATE sandboxes SET state = 'stopped' WHERE id = ?",
                row.id.as_str()
            ))
            .await?;
        return Err(e.into());
    }
    tracing::info!(sandbox = %row.id, provider = app.ports.sandboxes.provider(), "sandbox started");
    Ok((StatusCode::CREATED, Json(row.to_proto())))
}

/// `GET /sandbox/:id`
#[utoipa::path(get, path = "/sandbox/{id}", tag = "sandboxes", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = Sandbox), (status = 404, body = Problem)))]
pub async fn get(
    State(app): State<App>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Sandbox>, ApiError> {
    Ok(Json(owned(&app, &user.id, &id).await?.to_proto()))
}

/// `DELETE /sandbox/:id`: stops everything in it; the home stays for the next sandbox.
#[utoipa::path(delete, path = "/sandbox/{id}", tag = "sandboxes", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 204), (status = 404, body = Problem)))]
pub async fn delete(
    State(app): State<App>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let row = owned(&app, &user.id, &id).await?;
    if row.state == "running" {
        app.ports
            .sandboxes
            .stop(&spec(&app, &row))
            .await
            .map_err(SandboxesError::from)?;
        app.ports
            .meta
            .execute(stmt!(
                "UPDATE sandboxes SET state = 'stopped', last_seen_at = ? WHERE id = ?",
                app.now_ms(),
                row.id.as_str()
            ))
            .await?;
        tracing::info!(sandbox = %row.id, "sandbox stopped");
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST /sandbox/:id/share`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct ShareRequest {
    /// Seconds the link works (default one day, at most a week).
    pub expires_in: Option<i64>,
}

/// `POST /sandbox/:id/share`: a view-only link to the owner's terminals for another
/// signed-in user.
#[utoipa::path(post, path = "/sandbox/{id}/share", tag = "sandboxes", security(("bearer" = [])),
    params(("id" = String, Path)), request_body(content = ShareRequest, description = "optional"),
    responses((status = 201, body = SandboxShare), (status = 404, body = Problem)))]
pub async fn share(
    State(app): State<App>,
    user: AuthUser,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<SandboxShare>), ApiError> {
    let req: ShareRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ShareRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(e.to_string()))?
    };
    let row = owned(&app, &user.id, &id).await?;
    let ttl = req
        .expires_in
        .unwrap_or(SHARE_TTL_SECS)
        .clamp(60, SHARE_MAX_TTL_SECS);
    let expires = app.now_ms() + ttl * 1000;
    let token = tokens::share_token(&app.config.secret, &row.id, &user.id, expires);
    let url = format!(
        "{}/#terminal?sandbox={}&share={}",
        origin(&headers),
        row.id,
        token
    );
    Ok((
        StatusCode::CREATED,
        Json(SandboxShare {
            token,
            url,
            expires_at: rfc3339(expires),
        }),
    ))
}
