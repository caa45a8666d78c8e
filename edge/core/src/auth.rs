//! Accounts: signup, login with a throttle, access tokens, and who is calling.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::Json;
use cloudos_proto::{AuthResponse, LoginRequest, Me, SignupRequest, UserSummary};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiJson};
use crate::ids::UserId;
use crate::ports::DbError;
use crate::{rfc3339, stmt, App};

/// Audience of tokens that act as the user on the API.
const API_AUDIENCE: &str = "api";

/// Why an auth request failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{0}")]
    Invalid(String),
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error("wrong email or password")]
    WrongCredentials,
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("too many failed logins; try again in {retry_after} s")]
    TooManyTries { retry_after: u64 },
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// Claims of an access token.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    aud: String,
    iat: i64,
    exp: i64,
}

/// Signs an access token for `user_id` valid for `ttl_secs` from `now_ms`.
pub fn issue_token(secret: &[u8], user_id: &str, now_ms: i64, ttl_secs: i64) -> String {
    let iat = now_ms / 1000;
    let claims = Claims {
        sub: user_id.to_owned(),
        aud: API_AUDIENCE.to_owned(),
        iat,
        exp: iat + ttl_secs,
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .expect("HS256 signing of plain claims cannot fail")
}

/// Checks a token's signature, audience and expiry (against the host's clock, since
/// wasm32 has no system time) and returns the user id.
pub fn verify_token(secret: &[u8], token: &str, now_ms: i64) -> Result<String, AuthError> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_audience(&[API_AUDIENCE]);
    validation.validate_exp = false;
    let data =
        jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(secret), &validation)
            .map_err(|_| AuthError::Unauthorized("invalid token"))?;
    if data.claims.exp <= now_ms / 1000 {
        return Err(AuthError::Unauthorized("token expired"));
    }
    Ok(data.claims.sub)
}

/// An argon2id hash (PHC string) of `password` with the given salt bytes.
pub fn hash_password(password: &str, salt: &[u8]) -> Result<String, AuthError> {
    let salt = SaltString::encode_b64(salt).map_err(|e| AuthError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Whether `password` matches a stored PHC hash.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Emails compare case-insensitively in every script, so they are stored lowercased.
fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

fn validate_signup(req: &SignupRequest) -> Result<(String, String), AuthError> {
    let email = normalize_email(&req.email);
    let valid_email = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        && !email.chars().any(char::is_whitespace);
    if !valid_email {
        return Err(AuthError::Invalid(
            "email must look like name@example.com".into(),
        ));
    }
    if req.password.chars().count() < 8 {
        return Err(AuthError::Invalid(
            "password must have at least 8 characters".into(),
        ));
    }
    if req.password.len() > 1024 {
        return Err(AuthError::Invalid(
            "password must have at most 1024 bytes".into(),
        ));
    }
    let name = req.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AuthError::Invalid(
            "name must have 1 to 100 characters".into(),
        ));
    }
    Ok((email, name))
}

/// `POST /auth/signup`
#[utoipa::path(post, path = "/auth/signup", tag = "auth", request_body = SignupRequest,
    responses((status = 201, body = AuthResponse), (status = 400, body = cloudos_proto::Problem), (status = 409, body = cloudos_proto::Problem)))]
pub async fn signup(
    app: axum::extract::State<App>,
    ApiJson(req): ApiJson<SignupRequest>,
) -> Result<(StatusCode, Json<AuthResponse>), ApiError> {
    let (email, name) = validate_signup(&req)?;
    let hash = hash_password(&req.password, &app.ports.ids.random_bytes(16))?;
    let id = app.ports.ids.new_id();
    let now = app.now_ms();
    let inserted = app
        .ports
        .meta
        .execute(stmt!(
            "INSERT INTO users (id, email, name, password_hash, created_at, quota_bytes) VALUES (?, ?, ?, ?, ?, ?)",
            id.as_str(), email.as_str(), name.as_str(), hash, now, app.config.default_quota_bytes
        ))
        .await;
    match inserted {
        Ok(_) => {}
        Err(DbError::Constraint(_)) => return Err(AuthError::EmailTaken.into()),
        Err(e) => return Err(e.into()),
    }
    let token = issue_token(&app.config.secret, &id, now, app.config.token_ttl_secs);
    Ok((
        StatusCode::CREATED,
        Json(AuthResponse {
            token,
            user: UserSummary { id, email, name },
        }),
    ))
}

/// `POST /auth/login`
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = AuthResponse), (status = 401, body = cloudos_proto::Problem), (status = 429, body = cloudos_proto::Problem)))]
pub async fn login(
    app: axum::extract::State<App>,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<AuthResponse>, ApiError> {
    let email = normalize_email(&req.email);
    let email = email.as_str();
    let now = app.now_ms();
    check_throttle(&app, email, now).await?;
    let rows = app
        .ports
        .meta
        .query(stmt!(
            "SELECT id, email, name, password_hash FROM users WHERE email = ?",
            email
        ))
        .await?;
    let user = rows.first();
    let ok = match user {
        Some(row) => verify_password(&req.password, &row.text(3)),
        None => {
            // Spend the same work as a real check so timing does not reveal accounts.
            let _ = hash_password(&req.password, b"cloudos-no-user!");
            false
        }
    };
    let Some(row) = user.filter(|_| ok) else {
        record_failure(&app, email, now).await?;
        return Err(AuthError::WrongCredentials.into());
    };
    app.ports
        .meta
        .execute(stmt!("DELETE FROM login_failures WHERE email = ?", email))
        .await?;
    let id = row.text(0);
    let token = issue_token(&app.config.secret, &id, now, app.config.token_ttl_secs);
    Ok(Json(AuthResponse {
        token,
        user: UserSummary {
            id,
            email: row.text(1),
            name: row.text(2),
        },
    }))
}

async fn check_throttle(app: &App, email: &str, now: i64) -> Result<(), AuthError> {
    let rows = app
        .ports
        .meta
        .query(stmt!(
            "SELECT failures, window_start FROM login_failures WHERE email = ?",
            email
        ))
        .await?;
    if let Some(row) = rows.first() {
        let window_end = row.int(1) + app.config.login_window_secs * 1000;
        if row.int(0) >= app.config.login_max_failures && now < window_end {
            let retry_after = ((window_end - now) as u64).div_ceil(1000).max(1);
            return Err(AuthError::TooManyTries { retry_after });
        }
    }
    Ok(())
}

async fn record_failure(app: &App, email: &str, now: i64) -> Result<(), AuthError> {
    let window_start_cutoff = now - app.config.login_window_secs * 1000;
    // A failure outside the current window starts a new one.
    app.ports
        .meta
        .execute(stmt!(
            "INSERT INTO login_failures (email, failures, window_start) VALUES (?, 1, ?)
             ON CONFLICT(email) DO UPDATE SET
               failures = CASE WHEN window_start < ? THEN 1 ELSE failures + 1 END,
               window_start = CASE WHEN window_start < ? THEN excluded.window_start ELSE window_start END",
            email, now, window_start_cutoff, window_start_cutoff
        ))
        .await?;
    Ok(())
}

/// `GET /me`
#[utoipa::path(get, path = "/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = cloudos_proto::Problem)))]
pub async fn me(app: axum::extract::State<App>, user: AuthUser) -> Result<Json<Me>, ApiError> {
    let rows = app
        .ports
        .meta
        .query(stmt!(
            "SELECT id, email, name, avatar_url, created_at, quota_bytes,
                    (SELECT COALESCE(SUM(size), 0) FROM files WHERE user_id = users.id)
             FROM users WHERE id = ?",
            user.id.as_str()
        ))
        .await?;
    let row = rows
        .first()
        .ok_or(AuthError::Unauthorized("the account no longer exists"))?;
    Ok(Json(Me {
        id: row.text(0),
        email: row.text(1),
        name: row.text(2),
        avatar_url: row.opt_text(3),
        created_at: rfc3339(row.int(4)),
        quota_bytes: row.int(5) as u64,
        used_bytes: row.int(6) as u64,
    }))
}

/// The authenticated caller, from `Authorization: Bearer` or `?token=` (WebSockets).
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: UserId,
}

impl FromRequestParts<App> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let header_token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .map(str::to_owned);
        let token = header_token
            .or_else(|| query_param(parts.uri.query(), "token"))
            .ok_or(AuthError::Unauthorized("missing bearer token"))?;
        let id = verify_token(&app.config.secret, &token, app.now_ms())?;
        let exists = app
            .ports
            .meta
            .query(stmt!("SELECT 1 FROM users WHERE id = ?", id.as_str()))
            .await
            .map_err(AuthError::from)?;
        if exists.is_empty() {
            return Err(AuthError::Unauthorized("the account no longer exists").into());
        }
        Ok(AuthUser { id: id.into() })
    }
}

/// The decoded value of one query parameter.
pub(crate) fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| {
            percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"test-secret-test-secret-test-sec";

    #[test]
    fn token_round_trip_and_expiry() {
        let t = issue_token(SECRET, "u1", 1_000_000, 60);
        assert_eq!(verify_token(SECRET, &t, 1_000_000).unwrap(), "u1");
        assert!(verify_token(SECRET, &t, 1_000_000 + 61_000).is_err());
        assert!(verify_token(b"another-secret-another-secret-xx", &t, 1_000_000).is_err());
        assert!(verify_token(SECRET, "not.a.token", 1_000_000).is_err());
    }

    #[test]
    fn password_hash_verifies_only_the_right_password() {
        let h = hash_password("correct horse", b"0123456789abcdef").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn signup_validation() {
        let ok = SignupRequest {
            email: " a@b.co ".into(),
            password: "12345678".into(),
            name: " Ann ".into(),
        };
        assert_eq!(
            validate_signup(&ok).unwrap(),
            ("a@b.co".into(), "Ann".into())
        );
        for (email, pw, name) in [
            ("ab.co", "12345678", "A"),
            ("a@b", "12345678", "A"),
            ("a@b.co", "1234567", "A"),
            ("a@b.co", "12345678", "  "),
        ] {
            let req = SignupRequest {
                email: email.into(),
                password: pw.into(),
                name: name.into(),
            };
            assert!(validate_signup(&req).is_err(), "{email} {pw} {name}");
        }
    }

    #[test]
    fn query_param_decodes() {
        assert_eq!(
            query_param(Some("a=1&token=x%2Fy"), "token").as_deref(),
            Some("x/y")
        );
        assert_eq!(query_param(Some("a=1"), "token"), None);
        assert_eq!(query_param(None, "token"), None);
    }
}
