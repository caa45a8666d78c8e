//! `DELETE /shares/:token`: parse, call the `revoke` service, answer.

use axum::extract::State;
use axum::http::StatusCode;

use super::revoke;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiPath};
use crate::App;

/// `DELETE /shares/:token`: the link stops working at once; a terminal's viewers through it
/// are dropped.
#[utoipa::path(delete, path = "/shares/{token}", tag = "shares", security(("bearer" = [])),
    params(("token" = String, Path, description = "the link's id (from its owner's list), or its token")),
    responses((status = 204, description = "revoked (also when it already was)"),
        (status = 401, body = cloudos_proto::Problem),
        (status = 404, body = cloudos_proto::Problem, description = "no such link of the caller's")))]
pub async fn delete(
    State(app): State<App>,
    user: AuthUser,
    ApiPath(token): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    revoke(&app, &user.id, &token).await?;
    Ok(StatusCode::NO_CONTENT)
}
