//! The user's private file tree: folders, uploads, downloads, edits, moves and deletes.

//!
//! The services here (`listing`, `content`, `upload`, `organize`) hold every rule and are
//! what anything acting for a user calls: the HTTP handlers, and later rooms, the sandbox
//! sync, the copilot's tools and deploys.

pub mod content;
pub mod find;
pub mod handlers;
pub mod history;
pub mod listing;
pub mod names;
pub mod organize;
pub mod range;
pub mod recovery;
mod repo;
pub mod signing;
pub mod trash;
pub mod upload;

pub use repo::{quota_bytes, used_bytes};

use crate::ids::{FileId, UserId};
use crate::ports::{BlobError, DbError};
use crate::App;

/// How a version was made, as a file's history shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Added through Files or `POST /files`.
    Upload,
    /// Saved with `PUT /files/:id/content` (the Editor's and any API client's save).
    Editor,
    /// Written back from a live room.
    Collab,
    /// Synced from the user's sandbox.
    Sandbox,
    /// Written by the copilot.
    Copilot,
    /// An older version brought back.
    Restore,
}

impl Origin {
    /// The name in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Upload => "upload",
            Origin::Editor => "editor",
            Origin::Collab => "collab",
            Origin::Sandbox => "sandbox",
            Origin::Copilot => "copilot",
            Origin::Restore => "restore",
        }
    }
}

/// Who makes a version and how: recorded with it.
#[derive(Debug, Clone)]
pub struct Made {
    pub origin: Origin,
    /// The people whose work it is (at least one; a room's checkpoint names its editors).
    pub by: Vec<UserId>,
}

impl Made {
    /// A version made by one person.
    pub fn by(origin: Origin, who: &UserId) -> Self {
        Made {
            origin,
            by: vec![who.clone()],
        }
    }

    /// The authors as stored: ids separated by spaces (ids never contain one).
    pub(crate) fn author_ids(&self) -> String {
        let ids: Vec<&str> = self.by.iter().map(UserId::as_str).collect();
        ids.join(" ")
    }
}

/// Tells the user's open desktops that a folder's listing changed.
pub(crate) fn changed(app: &App, who: &UserId, parent: Option<&FileId>) {
    app.ports.events.publish(
        who.as_str(),
        &cloudos_proto::Event::FilesChanged {
            parent_id: parent.map(|p| p.as_str().to_owned()),
        },
    );
}

/// Why a files request failed.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// Missing, or someone else's: the two are never told apart.
    #[error("no such file or folder")]
    NotFound,
    /// The file is there, the version is not (never made, or removed by the retention rule).
    #[error("this file has no version {0} (any more)")]
    NoSuchVersion(i64),
    #[error("version {0} is the file's content now: it is kept (restore another one first)")]
    CurrentVersion(i64),
    #[error("bad name: {0}")]
    BadName(String),
    #[error("the name {0:?} is already taken in this folder")]
    NameTaken(String),
    #[error("a folder cannot move into its own subtree")]
    IntoOwnSubtree,
    #[error("the parent is not a folder")]
    NotAFolder,
    #[error("bad upload: {0}")]
    BadUpload(String),
    #[error("{0}")]
    BadSearch(String),
    #[error(
        "storage quota exceeded: {used} of {quota} bytes used, this needs at least {needed} more"
    )]
    QuotaExceeded { quota: u64, used: u64, needed: u64 },
    #[error("at most {max} files and folders per user; delete some first")]
    TooManyItems { max: u64 },
    #[error("version {current} is current, the request was based on version {given}")]
    Stale { current: i64, given: i64 },
    /// `If-Match` names no current version (another, or a weak tag).
    #[error("version {current} is current and If-Match does not name it (send If-Match: \"{current}\" after merging)")]
    IfMatchFailed { current: i64 },
    #[error("send If-Match with the version you edited, e.g. If-Match: \"3\"")]
    IfMatchRequired,
    #[error("{0}")]
    NotText(String),
    #[error("the requested range is outside the content")]
    RangeNotSatisfiable { size: u64 },
    #[error("the download link is invalid or has expired")]
    BadSignature,
    /// Someone else holds the file's lock.
    #[error(
        "{name} is editing this file (locked until {until}); it is read-only until they release it"
    )]
    Locked { name: String, until: String },
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Blob(#[from] BlobError),
}
