//! Account services: create an account, sign in (throttled), who is this token, what is
//! this account. Anything that acts for a user outside HTTP calls these, never the handlers.

use cloudos_proto::{AuthResponse, LoginRequest, Me, SignupRequest, UserSummary};

use super::{
    hash_on_cpu, issue_token, verify_on_cpu, verify_token, AuthError, ClientAddr, Session,
};
use crate::ids::UserId;
use crate::ports::DbError;
use crate::{rfc3339, stmt, App};

/// Emails compare case-insensitively in every script, so they are stored lowercased.
fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// The longest email an account may have (RFC 5321's path limit).
const MAX_EMAIL_BYTES: usize = 254;
/// The longest password an account may have.
const MAX_PASSWORD_BYTES: usize = 1024;

fn validate_signup(req: &SignupRequest) -> Result<(String, String), AuthError> {
    let email = normalize_email(&req.email);
    let valid_email = email.len() <= MAX_EMAIL_BYTES
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
    if req.password.len() > MAX_PASSWORD_BYTES {
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

/// Creates an account with the default quota and signs it in.
pub async fn signup(app: &App, req: &SignupRequest) -> Result<AuthResponse, AuthError> {
    let (email, name) = validate_signup(req)?;
    let hash = hash_on_cpu(app, &req.password, app.ports.ids.random_bytes(16)).await?;
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
        Err(DbError::Constraint(_)) => return Err(AuthError::EmailTaken),
        Err(e) => return Err(e.into()),
    }
    let token = issue_token(&app.config.secret, &id, 0, now, app.config.token_ttl_secs);
    Ok(AuthResponse {
        token,
        user: UserSummary { id, email, name },
    })
}

/// Signs in by email and password; too many failures for one email, or from one `client`
/// (when the host knows it), answer `TooManyTries` before any password is hashed.
pub async fn login(
    app: &App,
    req: &LoginRequest,
    client: Option<ClientAddr>,
) -> Result<AuthResponse, AuthError> {
    let email = normalize_email(&req.email);
    // No account has a longer email or password (signup refuses them), so neither costs a
    // hash or a throttle row.
    if email.len() > MAX_EMAIL_BYTES || req.password.len() > MAX_PASSWORD_BYTES {
        return Err(AuthError::WrongCredentials);
    }
    let email = email.as_str();
    let now = app.now_ms();
    // Each attempt is counted before any hashing, in one statement, so a burst of attempts
    // at once cannot all pass a check made before any of them was recorded.
    count_attempt(app, email, client.as_ref()).await?;
    let rows = app
        .ports
        .meta
        .query(stmt!(
            "SELECT id, email, name, password_hash, token_gen FROM users WHERE email = ?",
            email
        ))
        .await?;
    let user = rows.first();
    let ok = match user {
        Some(row) => verify_on_cpu(app, &req.password, row.text(3)).await?,
        None => {
            // Spend the same work as a real check so timing does not reveal accounts.
            hash_on_cpu(app, &req.password, b"cloudos-no-user!".to_vec()).await?;
            false
        }
    };
    // A failure keeps the attempts it was counted as.
    let Some(row) = user.filter(|_| ok) else {
        return Err(AuthError::WrongCredentials);
    };
    // A success forgets the email's failures, and gives its client back the attempt.
    attempt_succeeded(app, email, client.as_ref()).await?;
    let id = row.text(0);
    let token = issue_token(
        &app.config.secret,
        &id,
        row.int(4),
        now,
        app.config.token_ttl_secs,
    );
    Ok(AuthResponse {
        token,
        user: UserSummary {
            id,
            email: row.text(1),
            name: row.text(2),
        },
    })
}

/// Counts a password attempt under `key` (an email, or `link:<id>` for a link's password)
/// and under its `client`, with the login limits and window.
pub(crate) async fn count_attempt(
    app: &App,
    key: &str,
    client: Option<&ClientAddr>,
) -> Result<(), AuthError> {
    let now = app.now_ms();
    Throttle::by_email(app).take(app, key, now).await?;
    if let Some(client) = client {
        Throttle::by_client(app)
            .take(app, &client.throttle_key(), now)
            .await?;
    }
    Ok(())
}

/// A counted attempt succeeded: `key`'s failures are forgotten, and the client gets its
/// attempt back.
pub(crate) async fn attempt_succeeded(
    app: &App,
    key: &str,
    client: Option<&ClientAddr>,
) -> Result<(), AuthError> {
    app.ports
        .meta
        .execute(stmt!("DELETE FROM login_failures WHERE email = ?", key))
        .await?;
    if let Some(client) = client {
        Throttle::by_client(app)
            .give_back(app, &client.throttle_key())
            .await?;
    }
    Ok(())
}

/// Failed logins counted under a key (an email, or a client) within the login window.
struct Throttle {
    table: &'static str,
    key: &'static str,
    max: i64,
}

impl Throttle {
    fn by_email(app: &App) -> Self {
        Throttle {
            table: "login_failures",
            key: "email",
            max: app.config.login_max_failures,
        }
    }

    fn by_client(app: &App) -> Self {
        Throttle {
            table: "login_failures_by_client",
            key: "client",
            max: app.config.login_max_client_failures,
        }
    }

    /// Counts an attempt under `key` and refuses it when the attempts within the window
    /// are past the limit. Rows whose window ended are pruned on the way (without that,
    /// every email or client ever seen would keep one).
    async fn take(&self, app: &App, key: &str, now: i64) -> Result<(), AuthError> {
        let cutoff = now - app.config.login_window_secs * 1000;
        let (table, column) = (self.table, self.key);
        app.ports
            .meta
            .execute(stmt!(
                format!("DELETE FROM {table} WHERE window_start <= ?"),
                cutoff
            ))
            .await?;
        // An attempt outside the current window starts a new one.
        let rows = app
            .ports
            .meta
            .query(stmt!(
                format!(
                    "INSERT INTO {table} ({column}, failures, window_start) VALUES (?, 1, ?)
                     ON CONFLICT({column}) DO UPDATE SET
                       failures = CASE WHEN window_start <= ? THEN 1 ELSE failures + 1 END,
                       window_start = CASE WHEN window_start <= ? THEN excluded.window_start
                                      ELSE window_start END
                     RETURNING failures, window_start"
                ),
                key,
                now,
                cutoff,
                cutoff
            ))
            .await?;
        let (attempts, start) = rows.first().map_or((1, now), |r| (r.int(0), r.int(1)));
        if attempts > self.max {
            let window_end = start + app.config.login_window_secs * 1000;
            let retry_after = ((window_end - now).max(0) as u64).div_ceil(1000).max(1);
            return Err(AuthError::TooManyTries { retry_after });
        }
        Ok(())
    }

    /// Gives back an attempt `take` counted (it succeeded).
    async fn give_back(&self, app: &App, key: &str) -> Result<(), AuthError> {
        let (table, column) = (self.table, self.key);
        app.ports
            .meta
            .execute(stmt!(
                format!("UPDATE {table} SET failures = MAX(failures - 1, 0) WHERE {column} = ?"),
                key
            ))
            .await?;
        Ok(())
    }
}

/// The principal a token stands for: valid signature, audience and expiry, and an account
/// that still exists.
pub async fn authenticate(app: &App, token: &str) -> Result<Session, AuthError> {
    let who = verify_token(&app.config.secret, token, app.now_ms())?;
    let rows = app
        .ports
        .meta
        .query(stmt!(
            "SELECT token_gen FROM users WHERE id = ?",
            who.user_id.as_str()
        ))
        .await?;
    let Some(row) = rows.first() else {
        return Err(AuthError::Unauthorized("the account no longer exists"));
    };
    if row.int(0) != who.gen {
        return Err(AuthError::Unauthorized("signed out: sign in again"));
    }
    Ok(Session {
        user_id: who.user_id.into(),
        gen: who.gen,
        expires_at_ms: who.expires_at_ms,
    })
}

/// Whether `session` still stands (no logout since it began; its expiry is its holder's
/// to check).
pub async fn session_stands(app: &App, session: &Session) -> Result<bool, AuthError> {
    let rows = app
        .ports
        .meta
        .query(stmt!(
            "SELECT 1 FROM users WHERE id = ? AND token_gen = ?",
            &session.user_id,
            session.gen
        ))
        .await?;
    Ok(!rows.is_empty() && session.expires_at_ms > app.now_ms())
}

/// Signs the user out everywhere: every token issued so far and every unused ticket stop
/// working at once, the desktops listening for events are told and their sockets closed,
/// and the terminal sockets opened in this session are dropped by the sandbox's agent.
pub async fn logout(app: &App, session: &Session) -> Result<(), AuthError> {
    let who = &session.user_id;
    app.ports
        .meta
        .batch(vec![
            stmt!(
                "UPDATE users SET token_gen = token_gen + 1 WHERE id = ?",
                who
            ),
            stmt!("DELETE FROM ws_tickets WHERE user_id = ?", who),
        ])
        .await?;
    app.ports
        .events
        .publish(who, &cloudos_proto::Event::SessionEnded);
    crate::sandboxes::revocation::end_session(app, session).await;
    crate::rooms::store::end_session(app, who).await;
    Ok(())
}

/// The caller's account, with the bytes their files use.
pub async fn me(app: &App, who: &UserId) -> Result<Me, AuthError> {
    let rows = app
        .ports
        .meta
        .query(stmt!(
            "SELECT id, email, name, avatar_url, created_at, quota_bytes,
                    (SELECT COALESCE(SUM(size), 0) FROM file_versions WHERE user_id = users.id)
             FROM users WHERE id = ?",
            who
        ))
        .await?;
    let row = rows
        .first()
        .ok_or(AuthError::Unauthorized("the account no longer exists"))?;
    Ok(Me {
        id: row.text(0),
        email: row.text(1),
        name: row.text(2),
        avatar_url: row.opt_text(3),
        created_at: rfc3339(row.int(4)),
        quota_bytes: row.int(5) as u64,
        used_bytes: row.int(6) as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
