//! The sandbox sync's side of the edge: the credential a sandbox's agent syncs the user's
//! home with, the tree it reconciles against, and the reports it turns into notifications.
//!
//! The agent acts for the sandbox's owner on the routes a sync needs only (the tree, a
//! file's content, uploads, saves, folders, renames, moves and deletes:
//! [`crate::auth::FilesUser`]) and on the event stream; what it saves is a version with the origin "sandbox". Its
//! token names the sandbox and stands only while that sandbox runs (and [`STOP_GRACE_SECS`]
//! after it stopped, for the agent's last pass): then it opens nothing (a sandbox id is
//! never started again after a stop).

pub mod handlers;

use cloudos_proto::{FileKind, SyncReport, SyncReportKind, Tree, TreeItem};
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::auth::{AuthError, Session};
use crate::files::organize::MAX_DEPTH;
use crate::files::FilesError;
use crate::ids::{SandboxId, UserId};
use crate::notifications::{notify, NewNotification, NotificationsError};
use crate::ports::Value;
use crate::{stmt, App};

/// Audience of sync tokens: no other route takes them, and they take no other route.
const SYNC_AUDIENCE: &str = "cloudos-sync";
/// How long a stopped sandbox's token still syncs: a stop is marked before the agent is
/// told, and the agent's last pass (what the home changed last) runs as it stops.
pub const STOP_GRACE_SECS: i64 = 15;
/// How long an agent's event socket lives before it must connect again.
const EVENTS_SESSION_SECS: i64 = 3600;
/// A sync token's signature lifetime; what really ends it is its sandbox stopping.
const SYNC_TOKEN_TTL_SECS: i64 = 365 * 24 * 3600;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    sbx: String,
    aud: String,
    iat: i64,
    exp: i64,
}

/// The sync agent of a running sandbox, acting for its owner.
#[derive(Debug, Clone)]
pub struct SyncAgent {
    pub user_id: UserId,
    pub sandbox_id: SandboxId,
    /// When the token's signature expires (ms since the Unix epoch).
    pub expires_at_ms: i64,
}

/// Sync tokens are signed with a key of their own, derived from the edge's secret, so no
/// other token (an access token, a sandbox's agent token) can pass for one or the reverse.
fn sync_key(secret: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(b"cloudos-sync-key\0");
    mac.finalize().into_bytes().to_vec()
}

/// The token the agent of `sandbox_id` syncs `user_id`'s home with.
pub fn issue_token(secret: &[u8], user_id: &str, sandbox_id: &str, now_ms: i64) -> String {
    let iat = now_ms / 1000;
    let claims = Claims {
        sub: user_id.to_owned(),
        sbx: sandbox_id.to_owned(),
        aud: SYNC_AUDIENCE.to_owned(),
        iat,
        exp: iat + SYNC_TOKEN_TTL_SECS,
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(&sync_key(secret)),
    )
    .expect("HS256 signing of plain claims cannot fail")
}

/// The agent a bearer token stands for: `Ok(None)` when it is no sync token at all (the
/// caller may be a person), an error when it is one whose sandbox no longer runs.
pub async fn caller(app: &App, token: &str) -> Result<Option<SyncAgent>, AuthError> {
    let mut v = Validation::new(Algorithm::HS256);
    v.set_audience(&[SYNC_AUDIENCE]);
    v.validate_exp = false;
    let Ok(data) = jsonwebtoken::decode::<Claims>(
        token,
        &DecodingKey::from_secret(&sync_key(&app.config.secret)),
        &v,
    ) else {
        return Ok(None);
    };
    let c = data.claims;
    if c.exp <= app.now_ms() / 1000 {
        return Err(AuthError::Unauthorized("sync token expired"));
    }
    let running = app
        .ports
        .meta
        .query(stmt!(
            "SELECT 1 FROM sandboxes WHERE id = ? AND user_id = ?
               AND (state = 'running' OR last_seen_at > ?)",
            c.sbx.as_str(),
            c.sub.as_str(),
            app.now_ms() - STOP_GRACE_SECS * 1000
        ))
        .await?;
    if running.is_empty() {
        return Err(AuthError::Unauthorized(
            "the sandbox this sync token was for has stopped",
        ));
    }
    Ok(Some(SyncAgent {
        user_id: c.sub.into(),
        sandbox_id: c.sbx.into(),
        expires_at_ms: c.exp * 1000,
    }))
}

/// The session an agent's event socket lives under: the owner's current sign-in
/// generation, so a logout closes it as it closes the owner's desktops (the agent then
/// connects again, its sandbox still running).
pub async fn session(app: &App, agent: &SyncAgent) -> Result<Session, AuthError> {
    let rows = app
        .ports
        .meta
        .query(stmt!(
            "SELECT token_gen FROM users WHERE id = ?",
            &agent.user_id
        ))
        .await?;
    let gen = rows
        .first()
        .map(|r| r.int(0))
        .ok_or(AuthError::Unauthorized("the account no longer exists"))?;
    // An hour at most, not the token's year: the host closes the socket then and the
    // agent connects again, its token checked afresh (a stopped sandbox's is refused).
    Ok(Session {
        user_id: agent.user_id.clone(),
        gen,
        expires_at_ms: agent
            .expires_at_ms
            .min(app.now_ms() + EVENTS_SESSION_SECS * 1000),
    })
}

/// Every untrashed file and folder of `who` with its path, parents before children: what
/// a sync reconciles against, in one query.
pub async fn tree(app: &App, who: &UserId) -> Result<Tree, FilesError> {
    let rows = app
        .ports
        .meta
        .query(stmt!(
            format!(
                "WITH RECURSIVE t(id, path, depth) AS (
                     SELECT id, name, 1 FROM files
                     WHERE user_id = ? AND parent_id IS NULL AND trashed_at IS NULL
                     UNION ALL
                     SELECT f.id, t.path || '/' || f.name, t.depth + 1
                     FROM files f JOIN t ON f.parent_id = t.id
                     WHERE f.trashed_at IS NULL AND t.depth < {MAX_DEPTH}
                 )
                 SELECT f.id, t.path, f.kind, f.size, f.version, f.checksum, f.executable
                 FROM t JOIN files f ON f.id = t.id
                 ORDER BY t.depth, t.path"
            ),
            who
        ))
        .await?;
    let items = rows
        .into_iter()
        .map(|mut r| TreeItem {
            kind: match r.0.get(2) {
                Some(Value::Text(k)) if k == "folder" => FileKind::Folder,
                _ => FileKind::File,
            },
            size: r.int(3) as u64,
            version: r.int(4),
            executable: r.int(6) != 0,
            id: r.take_text(0).unwrap_or_default(),
            path: r.take_text(1).unwrap_or_default(),
            checksum: r.take_text(5),
        })
        .collect();
    Ok(Tree { items })
}

/// Turns an agent's report into a notification for the sandbox's owner.
pub async fn report(app: &App, who: &UserId, r: &SyncReport) -> Result<(), NotificationsError> {
    let name = r.path.rsplit('/').next().unwrap_or(&r.path);
    let (kind, title, body) = match r.kind {
        SyncReportKind::Conflict => (
            "sync-conflict",
            format!("Kept both versions of {name}"),
            format!(
                "{} changed in the terminal and in Files at once. Files kept its version; the terminal's is saved as {}.",
                r.path,
                r.copy_path.as_deref().unwrap_or("a copy beside it")
            ),
        ),
        SyncReportKind::Quota => (
            "sync-quota",
            format!("{name} is only in the terminal"),
            format!(
                "{} was not copied to Files: it would pass your storage quota. Free some space (empty the Trash, delete old versions) and it syncs on its next change.",
                r.path
            ),
        ),
        SyncReportKind::Refused => (
            "sync-refused",
            format!("{name} is only in the terminal"),
            format!(
                "Files refused {}: {}",
                r.path,
                r.detail.as_deref().unwrap_or("no reason given")
            ),
        ),
    };
    notify(
        app,
        who,
        NewNotification {
            kind,
            title,
            body,
            file_id: r.file_id.as_deref(),
        },
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_tokens_are_no_api_tokens_and_the_reverse() {
        let secret = b"test-secret-test-secret-test-sec";
        let sync = issue_token(secret, "u1", "s1", 1_700_000_000_000);
        assert!(crate::auth::verify_token(secret, &sync, 1_700_000_000_000).is_err());
        let api = crate::auth::issue_token(secret, "u1", 0, 1_700_000_000_000, 3600);
        let mut v = Validation::new(Algorithm::HS256);
        v.set_audience(&[SYNC_AUDIENCE]);
        v.validate_exp = false;
        assert!(jsonwebtoken::decode::<Claims>(
            &api,
            &DecodingKey::from_secret(&sync_key(secret)),
            &v
        )
        .is_err());
        assert!(jsonwebtoken::decode::<Claims>(
            &sync,
            &DecodingKey::from_secret(&sync_key(secret)),
            &v
        )
        .is_ok());
    }
}
