//! The account routes: parse, call one `accounts` service, answer.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use cloudos_proto::{AuthResponse, LoginRequest, Me, SignupRequest, Ticket};

use super::{accounts, tickets, AuthUser, ClientAddr};
use crate::error::{ApiError, ApiJson};
use crate::App;

/// `POST /auth/signup`
#[utoipa::path(post, path = "/auth/signup", tag = "auth", request_body = SignupRequest,
    responses((status = 201, body = AuthResponse), (status = 400, body = cloudos_proto::Problem), (status = 409, body = cloudos_proto::Problem)))]
pub async fn signup(
    State(app): State<App>,
    ApiJson(req): ApiJson<SignupRequest>,
) -> Result<(StatusCode, Json<AuthResponse>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(accounts::signup(&app, &req).await?),
    ))
}

/// `POST /auth/login`
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = AuthResponse), (status = 401, body = cloudos_proto::Problem), (status = 429, body = cloudos_proto::Problem)))]
pub async fn login(
    State(app): State<App>,
    client: Option<axum::Extension<ClientAddr>>,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<AuthResponse>, ApiError> {
    let client = client.map(|axum::Extension(c)| c);
    Ok(Json(accounts::login(&app, &req, client).await?))
}

/// `POST /auth/ticket`
#[utoipa::path(post, path = "/auth/ticket", tag = "auth", security(("bearer" = [])),
    responses((status = 201, body = Ticket, description = "opens one WebSocket (`?ticket=`), once, within a minute"),
        (status = 401, body = cloudos_proto::Problem)))]
pub async fn ticket(
    State(app): State<App>,
    user: AuthUser,
) -> Result<(StatusCode, Json<Ticket>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(tickets::issue(&app, &user.session).await?),
    ))
}

/// `POST /auth/logout`
#[utoipa::path(post, path = "/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204, description = "every token and ticket of the caller stops working; its open sockets close"),
        (status = 401, body = cloudos_proto::Problem)))]
pub async fn logout(State(app): State<App>, user: AuthUser) -> Result<StatusCode, ApiError> {
    accounts::logout(&app, &user.session).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /me`
#[utoipa::path(get, path = "/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = cloudos_proto::Problem)))]
pub async fn me(State(app): State<App>, user: AuthUser) -> Result<Json<Me>, ApiError> {
    Ok(Json(accounts::me(&app, &user.id).await?))
}
