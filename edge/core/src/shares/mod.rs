//! Share links: let someone else in on something of the owner's, for a while, until the
//! owner revokes the link. Today they are view links to a sandbox's terminals; links to
//! files and folders (the editor issue) use the same table and the same rules.
//!
//! A link's token is random and stored by its SHA-256 only; revoking keeps the row, so a
//! revoked or expired link is told apart from an unknown one (410 vs 404 for the owner).

pub mod handlers;

use sha2::{Digest, Sha256};

use crate::ids::UserId;
use crate::ports::DbError;
use crate::{stmt, App};

/// Why a share request failed.
#[derive(Debug, thiserror::Error)]
pub enum SharesError {
    /// Unknown, or someone else's: never told apart.
    #[error("no such share link of yours")]
    NotFound,
    /// The link is unknown, revoked, expired, or for something else.
    #[error("invalid, revoked or expired share link")]
    Gone,
    #[error(transparent)]
    Db(#[from] DbError),
}

/// What a link opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareKind {
    /// A sandbox's terminals.
    Sandbox,
    /// A file or a folder.
    File,
}

impl ShareKind {
    fn as_str(self) -> &'static str {
        match self {
            ShareKind::Sandbox => "sandbox",
            ShareKind::File => "file",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "sandbox" => ShareKind::Sandbox,
            _ => ShareKind::File,
        }
    }
}

/// What a link lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareMode {
    View,
    Edit,
}

impl ShareMode {
    fn as_str(self) -> &'static str {
        match self {
            ShareMode::View => "view",
            ShareMode::Edit => "edit",
        }
    }
}

/// A link just made: its token is shown once, here, and never again.
#[derive(Debug, Clone)]
pub struct NewShare {
    pub id: String,
    pub token: String,
    /// Milliseconds since the Unix epoch.
    pub expires_at: i64,
}

/// A link that opened: what it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The link's id (not its token): what a revocation names.
    pub share_id: String,
    pub owner_id: UserId,
    pub mode: ShareMode,
    /// Milliseconds since the Unix epoch.
    pub expires_at: i64,
}

/// A link revoked by its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    pub share_id: String,
    pub kind: ShareKind,
    pub target_id: String,
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new link to `target_id` (which the caller has checked `owner` may share) that works
/// for `ttl_secs`.
pub async fn create(
    app: &App,
    owner: &UserId,
    kind: ShareKind,
    target_id: &str,
    mode: ShareMode,
    ttl_secs: i64,
) -> Result<NewShare, SharesError> {
    let now = app.now_ms();
    let share = NewShare {
        id: app.ports.ids.new_id(),
        token: hex::encode(app.ports.ids.random_bytes(32)),
        expires_at: now + ttl_secs * 1000,
    };
    app.ports
        .meta
        .execute(stmt!(
            "INSERT INTO shares (id, token_hash, owner_id, kind, target_id, mode, created_at,
                                 expires_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            share.id.as_str(),
            hash(&share.token),
            owner,
            kind.as_str(),
            target_id,
            mode.as_str(),
            now,
            share.expires_at
        ))
        .await?;
    Ok(share)
}

/// Opens `token` for `target_id`: the link must be of that kind and target, unrevoked and
/// unexpired. Counts the access.
pub async fn open(
    app: &App,
    token: &str,
    kind: ShareKind,
    target_id: &str,
) -> Result<Grant, SharesError> {
    let now = app.now_ms();
    let rows = app
        .ports
        .meta
        .query(stmt!(
            "UPDATE shares SET access_count = access_count + 1, last_access_at = ?
             WHERE token_hash = ? AND kind = ? AND target_id = ? AND revoked_at IS NULL
               AND expires_at > ?
             RETURNING id, owner_id, mode, expires_at",
            now,
            hash(token),
            kind.as_str(),
            target_id,
            now
        ))
        .await?;
    let row = rows.first().ok_or(SharesError::Gone)?;
    Ok(Grant {
        share_id: row.text(0),
        owner_id: row.text(1).into(),
        mode: if row.text(2) == "edit" {
            ShareMode::Edit
        } else {
            ShareMode::View
        },
        expires_at: row.int(3),
    })
}

/// Revokes the caller's link `token` at once; what it opened is told by the capability
/// (a sandbox's agent drops the link's viewers). Someone else's link is not found.
pub async fn revoke(app: &App, who: &UserId, token: &str) -> Result<Revoked, SharesError> {
    let rows = app
        .ports
        .meta
        .query(stmt!(
            "UPDATE shares SET revoked_at = COALESCE(revoked_at, ?)
             WHERE token_hash = ? AND owner_id = ?
             RETURNING id, kind, target_id",
            app.now_ms(),
            hash(token),
            who
        ))
        .await?;
    let row = rows.first().ok_or(SharesError::NotFound)?;
    let revoked = Revoked {
        share_id: row.text(0),
        kind: ShareKind::parse(&row.text(1)),
        target_id: row.text(2),
    };
    if revoked.kind == ShareKind::Sandbox {
        crate::sandboxes::revocation::drop_share(
            app,
            &revoked.target_id.clone().into(),
            &revoked.share_id,
        )
        .await;
    }
    Ok(revoked)
}
