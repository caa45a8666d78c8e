//! Links with a password: the link opens nothing until its password is given once; then the
//! holder gets the link's token with a pass appended (`<token>.<until>.<signature>`), which
//! opens everything the link opens (its page, content, room, lock) until the pass or the
//! link ends. Attempts are throttled like logins, per link and per client.

use super::{hash, SharesError};
use crate::auth::{accounts, passwords, AuthError, ClientAddr};
use crate::files::signing::{self, Purpose};
use crate::{stmt, App};

/// How long a pass lasts (at most the link's own life).
pub const PASS_SECS: i64 = 12 * 60 * 60;
/// The longest password a link takes (what an account takes too).
pub const MAX_PASSWORD_BYTES: usize = 256;

/// A pass for the link `share_id` until `until_secs`: what follows the token's dot.
pub fn pass(secret: &[u8], share_id: &str, until_secs: i64) -> String {
    let sig = signing::sign_for(secret, Purpose::LinkPass, share_id, until_secs);
    format!("{until_secs}.{sig}")
}

/// Whether `pass` is a valid, unexpired pass for `share_id` at `now_secs`.
pub fn pass_holds(secret: &[u8], share_id: &str, pass: &str, now_secs: i64) -> bool {
    let Some((until, sig)) = pass.split_once('.') else {
        return false;
    };
    let Ok(until) = until.parse::<i64>() else {
        return false;
    };
    signing::holds(secret, Purpose::LinkPass, share_id, until, sig, now_secs)
}

/// A link token as given (`<token>` or `<token>.<pass>`): the token, and the pass.
pub fn split(given: &str) -> (&str, Option<&str>) {
    match given.split_once('.') {
        Some((token, pass)) => (token, Some(pass)),
        None => (given, None),
    }
}

/// The stored hash of a new link's password (`None`: no password).
pub async fn hash_new(app: &App, password: Option<&str>) -> Result<Option<String>, SharesError> {
    let Some(password) = password.filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(SharesError::BadPassword(format!(
            "a link's password is at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    let salt = app.ports.ids.random_bytes(16);
    Ok(Some(
        passwords::hash_on_cpu(app, password, salt)
            .await
            .map_err(auth)?,
    ))
}

fn auth(e: AuthError) -> SharesError {
    SharesError::Auth(Box::new(e))
}

/// Gives `password` for the link `given`: the token with a pass, and when it ends (ms since
/// the epoch). A link without a password answers with its token as it is.
pub async fn unlock(
    app: &App,
    given: &str,
    password: &str,
    client: Option<&ClientAddr>,
) -> Result<(String, i64), SharesError> {
    let (token, _) = split(given);
    let now = app.now_ms();
    let rows = app
        .ports
        .meta
        .query(stmt!(
            "SELECT id, password_hash, expires_at FROM shares
             WHERE token_hash = ? AND revoked_at IS NULL AND expires_at > ?",
            hash(token),
            now
        ))
        .await?;
    let row = rows.first().ok_or(SharesError::Gone)?;
    let (share_id, expires_at) = (row.text(0), row.int(2));
    let Some(stored) = row.opt_text(1) else {
        return Ok((token.to_owned(), expires_at));
    };
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(SharesError::WrongPassword);
    }
    // Counted before the hash is checked, so a burst of guesses cannot all pass.
    let key = format!("link:{share_id}");
    accounts::count_attempt(app, &key, client)
        .await
        .map_err(auth)?;
    if !passwords::verify_on_cpu(app, password, stored)
        .await
        .map_err(auth)?
    {
        return Err(SharesError::WrongPassword);
    }
    accounts::attempt_succeeded(app, &key, client)
        .await
        .map_err(auth)?;
    let until_ms = expires_at.min(now + PASS_SECS * 1000);
    let until_secs = until_ms.div_euclid(1000);
    let pass = pass(&app.config.secret, &share_id, until_secs);
    Ok((format!("{token}.{pass}"), until_secs * 1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pass_holds_for_its_link_until_it_ends() {
        let p = pass(b"k", "s1", 1000);
        assert!(pass_holds(b"k", "s1", &p, 999));
        assert!(!pass_holds(b"k", "s1", &p, 1000), "ended");
        assert!(!pass_holds(b"k", "s2", &p, 0), "another link");
        assert!(!pass_holds(b"other", "s1", &p, 0), "another key");
        // Moving its end forward breaks the signature.
        let sig = p.split_once('.').unwrap().1;
        assert!(!pass_holds(b"k", "s1", &format!("2000.{sig}"), 1500));
        assert!(!pass_holds(b"k", "s1", "garbage", 0));
        assert_eq!(split("abc.1.ff"), ("abc", Some("1.ff")));
        assert_eq!(split("abc"), ("abc", None));
    }
}
