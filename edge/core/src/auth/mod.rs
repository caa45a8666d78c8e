//! Accounts and who is calling: signup, login with a throttle, access tokens.
//!
//! `accounts` holds the rules (services), `handlers` adapts them to HTTP, and [`AuthUser`]
//! turns a request's token into the principal every other service takes.

pub mod accounts;
pub mod handlers;
pub mod passwords;
pub mod tickets;
mod tokens;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

pub use passwords::{hash_on_cpu, hash_password, verify_on_cpu, verify_password};
pub use tokens::{issue_token, verify_token, TokenSubject};

use crate::error::ApiError;
use crate::ids::UserId;
use crate::ports::DbError;
use crate::App;

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
    #[error(transparent)]
    Busy(#[from] crate::ports::CpuBusy),
}

/// The address of the client, as the host saw it (the TCP peer natively; Cloudflare's
/// `CF-Connecting-IP` on the Worker), put in a request's extensions by the host. A host
/// behind a proxy it does not know about sees the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub std::net::IpAddr);

impl ClientAddr {
    /// What the login throttle counts a client by: its address, or its /64 for IPv6 (one
    /// subscriber's usual allocation, so hopping within it does not help).
    pub fn throttle_key(&self) -> String {
        match self.0 {
            std::net::IpAddr::V4(v4) => v4.to_string(),
            std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => {
                    let s = v6.segments();
                    format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
                }
            },
        }
    }
}

/// The sign-in a request acts under: whose it is, its token generation (a logout ends
/// it) and when it expires. Sockets opened under it end with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user_id: UserId,
    pub gen: i64,
    /// Milliseconds since the Unix epoch.
    pub expires_at_ms: i64,
}

/// The authenticated caller, from `Authorization: Bearer`, or `?token=` on a WebSocket
/// upgrade only (socket routes also take tickets: [`SocketUser`]).
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: UserId,
    pub session: Session,
}

impl FromRequestParts<App> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let header_token = bearer(parts);
        // Browsers cannot set headers on a WebSocket, so only an upgrade may carry the token
        // in its URL; anywhere else a URL token would end up in proxies' logs.
        let upgrade = parts
            .headers
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
        let token = match header_token {
            Some(t) => t,
            None => match query_param(parts.uri.query(), "token") {
                Some(t) if upgrade => t,
                Some(_) => return Err(AuthError::Unauthorized(
                    "send the token in the Authorization header; ?token= is for WebSockets only",
                )
                .into()),
                None => return Err(AuthError::Unauthorized("missing bearer token").into()),
            },
        };
        let session = accounts::authenticate(app, &token).await?;
        Ok(AuthUser {
            id: session.user_id.clone(),
            session,
        })
    }
}

/// The token of `Authorization: Bearer`, if any.
pub(crate) fn bearer(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .map(str::to_owned)
}

/// The caller of a files route: a signed-in user, or the sync agent of one of their
/// running sandboxes acting for them ([`crate::sync`]); what the agent saves is recorded
/// with the origin "sandbox". The agent's token opens the files routes and the event
/// stream, nothing else.
#[derive(Debug, Clone)]
pub struct FilesUser {
    pub id: UserId,
    /// The sandbox whose sync agent calls, if it is one.
    pub sandbox: Option<crate::ids::SandboxId>,
}

impl FilesUser {
    /// How a version this caller saves was made: `otherwise` for a person, "sandbox" for the
    /// sync agent.
    pub fn made(&self, otherwise: crate::files::Origin) -> crate::files::Made {
        let origin = match self.sandbox {
            Some(_) => crate::files::Origin::Sandbox,
            None => otherwise,
        };
        crate::files::Made::by(origin, &self.id)
    }
}

impl FromRequestParts<App> for FilesUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        if let Some(token) = bearer(parts) {
            if let Some(agent) = crate::sync::caller(app, &token).await? {
                return Ok(FilesUser {
                    id: agent.user_id,
                    sandbox: Some(agent.sandbox_id),
                });
            }
        }
        let user = AuthUser::from_request_parts(parts, app).await?;
        Ok(FilesUser {
            id: user.id,
            sandbox: None,
        })
    }
}

/// The caller of a socket route (`/events`, a terminal's attach): as [`AuthUser`], or by a
/// single-use `?ticket=` on the upgrade. Only socket routes take tickets, so a ticket is
/// never a way to call the rest of the API.
#[derive(Debug, Clone)]
pub struct SocketUser {
    pub id: UserId,
    pub session: Session,
}

impl FromRequestParts<App> for SocketUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let upgrade = parts
            .headers
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
        if upgrade && !parts.headers.contains_key(header::AUTHORIZATION) {
            if let Some(ticket) = query_param(parts.uri.query(), "ticket") {
                let session = tickets::redeem(app, &ticket).await?;
                return Ok(SocketUser {
                    id: session.user_id.clone(),
                    session,
                });
            }
        }
        let user = AuthUser::from_request_parts(parts, app).await?;
        Ok(SocketUser {
            id: user.id,
            session: user.session,
        })
    }
}

/// The decoded value of one query parameter.
pub(crate) fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_counted_by_address_or_ipv6_64() {
        let key = |s: &str| ClientAddr(s.parse().unwrap()).throttle_key();
        assert_eq!(key("192.0.2.7"), "192.0.2.7");
        assert_eq!(key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2:bbbb::9"), key("2001:db8:1:2:aaaa::1"));
        assert_ne!(key("2001:db8:1:3::1"), key("2001:db8:1:2::1"));
    }

    #[test]
    fn query_param_decodes() {
        assert_eq!(
            query_param(Some("a=1&token=x%2Fy+z"), "token").as_deref(),
            Some("x/y z")
        );
        assert_eq!(query_param(Some("a=1"), "token"), None);
        assert_eq!(query_param(None, "token"), None);
    }
}
