//! The one place where errors of every area become HTTP answers (problem+json).

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use cloudos_proto::Problem;
use serde::de::DeserializeOwned;

use crate::auth::AuthError;
use crate::desktop::DesktopError;
use crate::files::FilesError;
use crate::notifications::NotificationsError;
use crate::ports::{BlobError, DbError};
use crate::sandboxes::SandboxesError;
use crate::shares::SharesError;

/// An error on its way to the client as `application/problem+json`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// Stable slug after `/errors/`.
    pub slug: &'static str,
    pub detail: String,
    /// Seconds for `Retry-After` (429).
    pub retry_after: Option<u64>,
    /// Content size for `Content-Range: bytes */size` (416).
    pub unsatisfied_size: Option<u64>,
}

impl ApiError {
    /// An error with a status, a stable slug and a human-readable detail.
    pub fn new(status: StatusCode, slug: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            slug,
            detail: detail.into(),
            retry_after: None,
            unsatisfied_size: None,
        }
    }

    /// 400 with the given detail.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", detail)
    }

    /// 404: also what another user's id gets, so nothing leaks.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", detail)
    }

    /// 500 whose cause is logged, never shown.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "something went wrong on our side; it has been logged",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error").to_owned();
        let body = Problem {
            kind: format!("/errors/{}", self.slug),
            title,
            status: self.status.as_u16(),
            detail: self.detail,
        };
        let mut res = (self.status, axum::Json(body)).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(size) = self.unsatisfied_size {
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                res.headers_mut().insert(header::CONTENT_RANGE, v);
            }
        }
        res
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        ApiError::internal(e)
    }
}

impl From<BlobError> for ApiError {
    fn from(e: BlobError) -> Self {
        match e {
            BlobError::Interrupted(why) => {
                ApiError::bad_request(format!("upload interrupted: {why}"))
            }
            BlobError::NotFound => ApiError::internal("blob missing for an existing file"),
            BlobError::Io(_) => ApiError::internal(e),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        use AuthError::*;
        let detail = e.to_string();
        match e {
            Invalid(_) => ApiError::new(StatusCode::BAD_REQUEST, "invalid", detail),
            EmailTaken => ApiError::new(StatusCode::CONFLICT, "email-taken", detail),
            WrongCredentials => {
                ApiError::new(StatusCode::UNAUTHORIZED, "wrong-credentials", detail)
            }
            Unauthorized(_) => ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", detail),
            TooManyTries { retry_after } => ApiError {
                retry_after: Some(retry_after),
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate-limited", detail)
            },
            Db(e) => e.into(),
            Hash(e) => ApiError::internal(e),
            Busy(_) => ApiError {
                retry_after: Some(1),
                ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", detail)
            },
        }
    }
}

impl From<DesktopError> for ApiError {
    fn from(e: DesktopError) -> Self {
        let detail = e.to_string();
        match e {
            DesktopError::LayoutTooLarge { .. } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too-large", detail)
            }
            DesktopError::LayoutNotAnObject => ApiError::bad_request(detail),
            DesktopError::Db(e) => e.into(),
        }
    }
}

impl From<NotificationsError> for ApiError {
    fn from(e: NotificationsError) -> Self {
        match e {
            NotificationsError::Db(e) => e.into(),
        }
    }
}

impl From<SandboxesError> for ApiError {
    fn from(e: SandboxesError) -> Self {
        use SandboxesError::*;
        let detail = e.to_string();
        match e {
            NotFound => ApiError::not_found(detail),
            Stopped => ApiError::new(StatusCode::CONFLICT, "sandbox-stopped", detail),
            AtCapacity { retry_after } => ApiError {
                retry_after: Some(retry_after),
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "at-capacity", detail)
            },
            Provider(_) => ApiError::new(StatusCode::BAD_GATEWAY, "sandbox-failed", detail),
            Unavailable | Refused(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "sandboxes-unavailable",
                detail,
            ),
            BadShare => ApiError::new(StatusCode::GONE, "share-expired", detail),
            BadSession => ApiError::bad_request(detail),
            TerminalNotRunning => ApiError::not_found(detail),
            Unreachable(_) => ApiError::new(StatusCode::BAD_GATEWAY, "sandbox-unreachable", detail),
            NoUidLeft => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "at-capacity", detail),
            AccessEnded => ApiError::new(StatusCode::GONE, "access-ended", detail),
            TooManySockets => ApiError {
                retry_after: Some(30),
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too-many-sockets", detail)
            },
            Db(e) => e.into(),
        }
    }
}

impl From<crate::rooms::RoomError> for ApiError {
    fn from(e: crate::rooms::RoomError) -> Self {
        use crate::rooms::RoomError::*;
        let detail = e.to_string();
        match e {
            Files(e) => e.into(),
            Db(e) => e.into(),
            Shares(e) => e.into(),
            SignInNeeded => ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", detail),
            Removed => ApiError::not_found(detail),
            Malformed(_) | BadUpdate(_) | UnknownConnection => ApiError::bad_request(detail),
        }
    }
}

impl From<crate::locks::LocksError> for ApiError {
    fn from(e: crate::locks::LocksError) -> Self {
        use crate::locks::LocksError::*;
        let detail = e.to_string();
        match e {
            Held { .. } => ApiError::new(StatusCode::LOCKED, "locked", detail),
            Broken => ApiError::new(StatusCode::CONFLICT, "conflict", detail),
            Forbidden(_) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", detail),
            Files(e) => e.into(),
            Shares(e) => e.into(),
            Db(e) => e.into(),
        }
    }
}

impl From<SharesError> for ApiError {
    fn from(e: SharesError) -> Self {
        let detail = e.to_string();
        match e {
            SharesError::NotFound => ApiError::not_found(detail),
            SharesError::Gone => ApiError::new(StatusCode::GONE, "share-expired", detail),
            SharesError::PasswordRequired => {
                ApiError::new(StatusCode::UNAUTHORIZED, "password-required", detail)
            }
            SharesError::WrongPassword => {
                ApiError::new(StatusCode::UNAUTHORIZED, "wrong-password", detail)
            }
            SharesError::BadPassword(_) => ApiError::bad_request(detail),
            SharesError::Auth(e) => (*e).into(),
            SharesError::Files(e) => (*e).into(),
            SharesError::Db(e) => e.into(),
        }
    }
}

impl From<FilesError> for ApiError {
    fn from(e: FilesError) -> Self {
        use FilesError::*;
        let detail = e.to_string();
        match e {
            NotFound | NoSuchVersion(_) => ApiError::not_found(detail),
            BadSearch(_) => ApiError::bad_request(detail),
            NotText(_) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "not-text", detail),
            BadName(_) | IntoOwnSubtree | NotAFolder | BadUpload(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid", detail)
            }
            NameTaken(_) | CurrentVersion(_) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", detail)
            }
            QuotaExceeded { .. } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "quota-exceeded", detail)
            }
            TooManyItems { .. } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too-many-items", detail)
            }
            Stale { .. } | IfMatchFailed { .. } => {
                ApiError::new(StatusCode::PRECONDITION_FAILED, "stale-version", detail)
            }
            IfMatchRequired => ApiError::new(
                StatusCode::PRECONDITION_REQUIRED,
                "if-match-required",
                detail,
            ),
            RangeNotSatisfiable { size } => ApiError {
                unsatisfied_size: Some(size),
                ..ApiError::new(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "range-not-satisfiable",
                    detail,
                )
            },
            BadSignature => ApiError::new(StatusCode::FORBIDDEN, "bad-signature", detail),
            Locked { .. } => ApiError::new(StatusCode::LOCKED, "locked", detail),
            Db(e) => e.into(),
            Blob(e) => e.into(),
        }
    }
}

/// A JSON body whose every failure is a 400 problem (whatever the Content-Type says).
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_of(req, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// A request's whole body, or a 400 problem.
async fn body_of<S: Send + Sync>(req: Request, state: &S) -> Result<bytes::Bytes, ApiError> {
    bytes::Bytes::from_request(req, state)
        .await
        .map_err(|e| ApiError::bad_request(format!("could not read the body: {e}")))
}

/// JSON, or the 400 `/errors/invalid-json` problem.
fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-json",
            format!("malformed JSON body: {e}"),
        )
    })
}

/// An optional JSON body: none (or only whitespace) is `T::default()`; anything else must
/// parse, or it is the same 400 `/errors/invalid-json` as [`ApiJson`].
pub struct OptionalJson<T>(pub T);

impl<S, T> FromRequest<S> for OptionalJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Default,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_of(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        parse_json(&bytes).map(OptionalJson)
    }
}

/// Path parameters whose failures are problems.
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|e: PathRejection| ApiError::bad_request(e.body_text()))
    }
}

/// A WebSocket endpoint's request. A plain HTTP request there is 426 problem+json and an
/// incomplete handshake 400, the same on every host (put it after `AuthUser`, so a missing
/// token is 401 first).
pub struct WebSocketRequest;

impl<S: Send + Sync> FromRequestParts<S> for WebSocketRequest {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let upgrade = parts
            .headers
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok());
        if !upgrade.is_some_and(|v| v.eq_ignore_ascii_case("websocket")) {
            return Err(ApiError::new(
                StatusCode::UPGRADE_REQUIRED,
                "upgrade-required",
                "this endpoint speaks WebSocket only",
            ));
        }
        // Checked before anything is authorized or started, so a handshake the host would
        // refuse costs nothing (RFC 6455 §4.2.1).
        let version = parts.headers.get(header::SEC_WEBSOCKET_VERSION);
        if !parts.headers.contains_key(header::SEC_WEBSOCKET_KEY)
            || version.is_none_or(|v| v.as_bytes() != b"13")
        {
            return Err(ApiError::bad_request(
                "a WebSocket handshake needs Sec-WebSocket-Key and Sec-WebSocket-Version: 13",
            ));
        }
        Ok(WebSocketRequest)
    }
}

/// Query parameters whose failures are problems.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e: QueryRejection| ApiError::bad_request(e.body_text()))
    }
}
