//! Share links: let someone else in on something of the owner's, for a while, until the
//! owner revokes the link: view links to a sandbox's terminals, and view or edit links to
//! files and folders ([`files`]), in one table under the same rules.
//!
//! A link's token is random and stored by its SHA-256 only; its id (not secret, shown to
//! its owner) names it in lists and revocations. Revoking keeps the row, so the owner's
//! list keeps its history; an unusable link, whatever the reason, is 410 to its holder.

pub mod files;
pub mod handlers;
pub mod passwords;

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
    /// The link has a password and none (or no valid pass) was given.
    #[error("this link asks for a password")]
    PasswordRequired,
    #[error("that is not the link's password")]
    WrongPassword,
    #[error("{0}")]
    BadPassword(String),
    /// Too many password attempts, or the server too busy to check one.
    #[error(transparent)]
    Auth(Box<crate::auth::AuthError>),
    /// The shared file cannot do what was asked (a folder has no text, say).
    #[error(transparent)]
    Files(Box<crate::files::FilesError>),
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
    /// The stored and wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            ShareMode::View => "view",
            ShareMode::Edit => "edit",
        }
    }

    /// The stored and wire form back (anything but `edit` is a view).
    pub fn parse(s: &str) -> Self {
        if s == "edit" {
            ShareMode::Edit
        } else {
            ShareMode::View
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
/// for `ttl_secs`, asking for `password` first when one is given.
pub async fn create(
    app: &App,
    owner: &UserId,
    kind: ShareKind,
    target_id: &str,
    mode: ShareMode,
    ttl_secs: i64,
    password: Option<&str>,
) -> Result<NewShare, SharesError> {
    let password_hash = passwords::hash_new(app, password).await?;
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
                                 expires_at, password_hash)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            share.id.as_str(),
            hash(&share.token),
            owner,
            kind.as_str(),
            target_id,
            mode.as_str(),
            now,
            share.expires_at,
            password_hash
        ))
        .await?;
    Ok(share)
}

/// One of an owner's links, as their list shows it (never its token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareInfo {
    pub id: String,
    pub mode: ShareMode,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub access_count: i64,
    pub last_access_at: Option<i64>,
    pub has_password: bool,
}

/// The owner's links to `target_id`, newest first (revoked and expired ones too, for the
/// history; at most 100).
pub async fn list(
    app: &App,
    owner: &UserId,
    kind: ShareKind,
    target_id: &str,
) -> Result<Vec<ShareInfo>, SharesError> {
    let rows = app
        .ports
        .meta
        .query(stmt!(
            "SELECT id, mode, created_at, expires_at, revoked_at, access_count, last_access_at,
                    password_hash IS NOT NULL
             FROM shares WHERE owner_id = ? AND kind = ? AND target_id = ?
             ORDER BY created_at DESC, id DESC LIMIT 100",
            owner,
            kind.as_str(),
            target_id
        ))
        .await?;
    Ok(rows
        .iter()
        .map(|r| ShareInfo {
            id: r.text(0),
            mode: ShareMode::parse(&r.text(1)),
            created_at: r.int(2),
            expires_at: r.int(3),
            revoked_at: r.opt_int(4),
            access_count: r.int(5),
            last_access_at: r.opt_int(6),
            has_password: r.int(7) != 0,
        })
        .collect())
}

impl ShareInfo {
    /// The public shape, with its state at `now_ms`.
    pub fn to_proto(&self, now_ms: i64) -> cloudos_proto::ShareLink {
        let state = if self.revoked_at.is_some() {
            "revoked"
        } else if self.expires_at <= now_ms {
            "expired"
        } else {
            "active"
        };
        cloudos_proto::ShareLink {
            id: self.id.clone(),
            mode: self.mode.as_str().to_owned(),
            state: state.to_owned(),
            created_at: crate::rfc3339(self.created_at),
            expires_at: crate::rfc3339(self.expires_at),
            revoked_at: self.revoked_at.map(crate::rfc3339),
            access_count: self.access_count,
            last_access_at: self.last_access_at.map(crate::rfc3339),
            has_password: self.has_password,
        }
    }
}

/// Opens `token` for `target_id`: the link must be of that kind and target, unrevoked and
/// unexpired. Counts the access, and remembers the `visitor` (signed in), so that what they
/// watch through it ends when they sign out.
pub async fn open(
    app: &App,
    token: &str,
    kind: ShareKind,
    target_id: &str,
    visitor: Option<&UserId>,
) -> Result<Grant, SharesError> {
    let (grant, target) = open_link(app, token, kind, visitor).await?;
    if target != target_id {
        return Err(SharesError::Gone);
    }
    Ok(grant)
}

/// Opens `token` (with its pass, `<token>.<pass>`, for a link with a password), a link of
/// `kind` that is unrevoked and unexpired, whatever it opens: the grant and the link's
/// target. Counts the access and remembers the `visitor`.
pub async fn open_link(
    app: &App,
    token: &str,
    kind: ShareKind,
    visitor: Option<&UserId>,
) -> Result<(Grant, String), SharesError> {
    let opened = check_link(app, token, kind).await?;
    count_access(app, &opened.0.share_id, visitor).await?;
    Ok(opened)
}

/// [`open_link`] without counting an access (for what a link holder's client does on its
/// own, like renewing a lock).
pub async fn peek_link(
    app: &App,
    token: &str,
    kind: ShareKind,
) -> Result<(Grant, String), SharesError> {
    check_link(app, token, kind).await
}

/// The link's grant and target, when it works (and its pass holds, for one with a password).
async fn check_link(
    app: &App,
    token: &str,
    kind: ShareKind,
) -> Result<(Grant, String), SharesError> {
    let (token, pass) = passwords::split(token);
    let now = app.now_ms();
    let rows = app
        .ports
        .meta
        .query(stmt!(
            "SELECT id, owner_id, mode, expires_at, target_id, password_hash FROM shares
             WHERE token_hash = ? AND kind = ? AND revoked_at IS NULL AND expires_at > ?",
            hash(token),
            kind.as_str(),
            now
        ))
        .await?;
    let row = rows.first().ok_or(SharesError::Gone)?;
    let mut grant = Grant {
        share_id: row.text(0),
        owner_id: row.text(1).into(),
        mode: ShareMode::parse(&row.text(2)),
        expires_at: row.int(3),
    };
    if row.opt_text(5).is_some() {
        let pass = pass.ok_or(SharesError::PasswordRequired)?;
        if !passwords::pass_holds(&app.config.secret, &grant.share_id, pass, now / 1000) {
            return Err(SharesError::PasswordRequired);
        }
        // What was opened with a pass ends with it (a socket, say).
        let until = pass
            .split_once('.')
            .and_then(|(u, _)| u.parse::<i64>().ok());
        if let Some(until) = until {
            grant.expires_at = grant.expires_at.min(until * 1000);
        }
    }
    Ok((grant, row.text(4)))
}

/// Counts an access to the link `share_id`, and remembers the `visitor`.
pub(super) async fn count_access(
    app: &App,
    share_id: &str,
    visitor: Option<&UserId>,
) -> Result<(), SharesError> {
    app.ports
        .meta
        .execute(stmt!(
            "UPDATE shares SET access_count = access_count + 1, last_access_at = ? WHERE id = ?",
            app.now_ms(),
            share_id
        ))
        .await?;
    if let Some(visitor) = visitor {
        app.ports
            .meta
            .execute(stmt!(
                "INSERT INTO share_visits (share_id, visitor_id) VALUES (?, ?)
                 ON CONFLICT DO NOTHING",
                share_id,
                visitor
            ))
            .await?;
    }
    Ok(())
}

/// Whether the link `share_id` still works (not revoked, not expired): `Gone` otherwise.
pub async fn stands(app: &App, share_id: &str) -> Result<(), SharesError> {
    let rows = app
        .ports
        .meta
        .query(stmt!(
            "SELECT 1 FROM shares WHERE id = ? AND revoked_at IS NULL AND expires_at > ?",
            share_id,
            app.now_ms()
        ))
        .await?;
    if rows.is_empty() {
        return Err(SharesError::Gone);
    }
    Ok(())
}

/// The sandboxes `visitor` watches through links that still work (to end that on sign-out).
pub async fn visited_sandboxes(app: &App, visitor: &UserId) -> Result<Vec<String>, SharesError> {
    let rows = app
        .ports
        .meta
        .query(stmt!(
            "SELECT DISTINCT s.target_id FROM share_visits v JOIN shares s ON s.id = v.share_id
             WHERE v.visitor_id = ? AND s.kind = 'sandbox' AND s.revoked_at IS NULL
               AND s.expires_at > ?
             LIMIT 100",
            visitor,
            app.now_ms()
        ))
        .await?;
    Ok(rows.iter().map(|r| r.text(0)).collect())
}

/// Revokes the caller's link, named by its token or its id, at once; what it opened is told
/// by the capability (a sandbox's agent drops the link's viewers). Someone else's link is
/// not found.
pub async fn revoke(app: &App, who: &UserId, token_or_id: &str) -> Result<Revoked, SharesError> {
    let rows = app
        .ports
        .meta
        .query(stmt!(
            "UPDATE shares SET revoked_at = COALESCE(revoked_at, ?)
             WHERE (token_hash = ? OR id = ?) AND owner_id = ?
             RETURNING id, kind, target_id",
            app.now_ms(),
            hash(token_or_id),
            token_or_id,
            who
        ))
        .await?;
    let row = rows.first().ok_or(SharesError::NotFound)?;
    let revoked = Revoked {
        share_id: row.text(0),
        kind: ShareKind::parse(&row.text(1)),
        target_id: row.text(2),
    };
    match revoked.kind {
        ShareKind::Sandbox => {
            crate::sandboxes::revocation::drop_share(
                app,
                &revoked.target_id.clone().into(),
                &revoked.share_id,
            )
            .await;
        }
        ShareKind::File => {
            // The rooms the link was used in close its sockets; a room joined after this
            // finds the link revoked in the database.
            // The marker is cosmetic; closing what the link opened is not.
            if let Err(e) = files::refresh_shared(app, &revoked.target_id).await {
                tracing::warn!(error = %e, "updating a file's shared marker");
            }
            let rooms = files::rooms_of(app, &revoked.share_id).await?;
            app.ports
                .sockets
                .share_revoked(&revoked.share_id, &rooms)
                .await;
        }
    }
    Ok(revoked)
}
