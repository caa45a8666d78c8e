//! The user's private file tree: folders, uploads, downloads, edits, moves and deletes.

pub mod find;
pub mod handlers;
pub mod names;
pub mod range;
mod repo;
pub mod signing;
pub mod upload;

pub use repo::{file_by_id, used_bytes};

use crate::ports::{BlobError, DbError};
use crate::App;

/// Tells the user's open desktops that a folder's listing changed.
pub(crate) fn changed(app: &App, user_id: &str, parent_id: Option<&str>) {
    app.ports.events.publish(
        user_id,
        &cloudos_proto::Event::FilesChanged {
            parent_id: parent_id.map(str::to_owned),
        },
    );
}

/// Why a files request failed.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// Missing, or someone else's: the two are never told apart.
    #[error("no such file or folder")]
    NotFound,
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
    #[error(
        "storage quota exceeded: {used} of {quota} bytes used, this needs at least {needed} more"
    )]
    QuotaExceeded { quota: u64, used: u64, needed: u64 },
    #[error("version {current} is current, the request was based on version {given}")]
    Stale { current: i64, given: i64 },
    #[error("send If-Match with the version you edited, e.g. If-Match: \"3\"")]
    IfMatchRequired,
    #[error("the requested range is outside the content")]
    RangeNotSatisfiable { size: u64 },
    #[error("the download link is invalid or has expired")]
    BadSignature,
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Blob(#[from] BlobError),
}
