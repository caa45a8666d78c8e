//! Wire types of the public API (`shared/API.md`): these shapes are a contract.
#![forbid(unsafe_code)]

mod desktop;
pub use desktop::*;
pub mod names;
pub mod terminal;

use serde::{Deserialize, Serialize};

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// Body of `POST /auth/signup`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct SignupRequest {
    pub email: String,
    pub password: String,
    pub name: String,
}

/// Body of `POST /auth/login`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

/// The short form of a user, as returned with a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct UserSummary {
    pub id: String,
    pub email: String,
    pub name: String,
}

/// Headers every host sends with the desktop's own files (its page and assets): scripts
/// and the wasm only from the desktop's origin (no inline script, no eval; wasm compiled
/// with `wasm-unsafe-eval`), sockets and fetches to it only, no plugins, no `<base>`, and
/// no page on another origin may frame it (clickjacking). Inline styles stay allowed: the
/// desktop's windows and xterm.js position themselves with them.
pub const DESKTOP_HEADERS: &[(&str, &str)] = &[
    (
        "content-security-policy",
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data: blob:; media-src 'self' blob:; font-src 'self' data:; \
         connect-src 'self'; worker-src 'self'; frame-src 'self'; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
];

/// The most text (UTF-8 bytes) a live room holds: bigger files are edited by saving, and
/// the desktop opens them in the Viewer.
pub const MAX_ROOM_BYTES: u64 = 2 * 1024 * 1024;

/// Answer of signup and login.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct AuthResponse {
    /// Bearer token (JWT) for the `Authorization` header or `?token=` on WebSockets.
    pub token: String,
    pub user: UserSummary,
}

/// Answer of `POST /auth/ticket`: what a WebSocket's URL carries (`?ticket=`) instead of
/// the API token. It opens one socket, once, within a minute.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Ticket {
    pub ticket: String,
    /// When it stops working (ms since the epoch).
    pub expires_at: i64,
}

/// One share link as its owner's list shows it (never its token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ShareLink {
    /// Names the link in `DELETE /shares/:id` (its token works there too).
    pub id: String,
    /// `view` or `edit`.
    pub mode: String,
    /// `active`, `revoked` or `expired`.
    pub state: String,
    pub created_at: String,
    pub expires_at: String,
    pub revoked_at: Option<String>,
    /// How many times it was opened.
    pub access_count: i64,
    pub last_access_at: Option<String>,
    /// Whether it asks for a password.
    #[serde(default)]
    pub has_password: bool,
}

/// A list of share links, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ShareList {
    pub items: Vec<ShareLink>,
}

/// Body of `POST /files/:id/share`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct FileShareRequest {
    /// `view` (the default: anyone with the link sees it, and a text file's live edits) or
    /// `edit` (a signed-in holder edits with the owner).
    #[serde(default)]
    pub mode: Option<String>,
    /// Seconds the link works (default 30 days, at most a year).
    #[serde(default)]
    pub expires_in: Option<i64>,
    /// A password the link asks for before it opens anything (none when absent or empty).
    #[serde(default)]
    pub password: Option<String>,
}

/// Body of `POST /s/:token/unlock` (JSON, or a form's `password` field).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct LinkPassword {
    pub password: String,
}

/// Answer of `POST /s/:token/unlock`: the link's token with a pass, which opens what the
/// link opens (page, content, room) without the password until `expires_at`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct UnlockedLink {
    pub token: String,
    /// RFC 3339.
    pub expires_at: String,
}

/// Body of `POST /files/:id/lock` (optional).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct LockRequest {
    /// Seconds the lease lasts unless renewed (default 120, from 15 to 3600); taking the
    /// lock again renews it.
    #[serde(default)]
    pub ttl: Option<i64>,
}

/// Who holds a file's lock, and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct FileLock {
    pub file_id: String,
    pub holder: LockHolder,
    /// RFC 3339: the lease ends then unless renewed.
    pub expires_at: String,
    /// The same, in milliseconds since the Unix epoch.
    pub expires_at_ms: i64,
    /// Whether the caller holds it.
    pub mine: bool,
}

/// The holder of a lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct LockHolder {
    pub id: String,
    pub name: String,
}

/// Answer of `GET /files/:id/lock`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct LockState {
    /// `null` when nobody holds the file.
    pub lock: Option<FileLock>,
}

/// Answer of `POST /files/:id/share`: the token is shown here only.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct FileShare {
    /// Names the link in the owner's list and in `DELETE /shares/:id`.
    pub id: String,
    /// At least 128 random bits; `DELETE /shares/:token` revokes it.
    pub token: String,
    /// The public page: `GET /s/:token`.
    pub url: String,
    /// `view` or `edit`.
    pub mode: String,
    pub expires_at: String,
}

/// Answer of `GET /s/:token` with `Accept: application/json`: what the link shows.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct PublicShare {
    /// `view` or `edit`.
    pub mode: String,
    pub expires_at: String,
    /// The shared file or folder (its `parent_id` is never shown).
    pub root: File,
    /// The file or folder asked for with `?file=` (the root without it).
    pub file: File,
    /// A folder's children (the folder's own, never its parent's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<File>>,
    /// The file's content through the link (`GET /s/:token/content?file=`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_url: Option<String>,
    /// A text file's live room through the link (`WS /collab/:fileId?share=`): a view
    /// link's socket receives the owner's edits as they type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_url: Option<String>,
}

/// Answer of `GET /me`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Me {
    pub id: String,
    pub email: String,
    pub name: String,
    pub avatar_url: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    pub quota_bytes: u64,
    pub used_bytes: u64,
}

/// Whether an entry is a file or a folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    File,
    Folder,
}

impl FileKind {
    /// The name used on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::File => "file",
            FileKind::Folder => "folder",
        }
    }
}

/// A file or folder (`File` in API.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct File {
    pub id: String,
    pub parent_id: Option<String>,
    pub name: String,
    pub kind: FileKind,
    pub size: u64,
    pub mime: Option<String>,
    pub version: i64,
    /// Lowercase hex SHA-256 of the content; `None` for folders.
    pub checksum: Option<String>,
    pub shared: bool,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
    /// Signed, short-lived URL that downloads the content without a token (`GET /files/:id` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_url: Option<String>,
    /// Whether the file runs as a program in the terminal (its executable bit).
    #[serde(default)]
    pub executable: bool,
}

/// Answer of `GET /files`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct FileList {
    pub items: Vec<File>,
}

/// Who made a version: a user's id and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Author {
    pub id: String,
    pub name: String,
}

/// One version of a file, as its history lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct FileVersion {
    pub version: i64,
    pub size: u64,
    pub mime: Option<String>,
    /// Lowercase hex SHA-256 of this version's content.
    pub checksum: Option<String>,
    /// How it was made: `upload`, `editor`, `collab`, `sandbox`, `copilot` or `restore`.
    pub origin: String,
    /// Who made it (several for a live room's checkpoint); an account deleted since is left out.
    pub authors: Vec<Author>,
    /// Whether this is the file's content now.
    pub current: bool,
    /// RFC 3339.
    pub created_at: String,
}

/// Answer of `GET /files/:id/versions`: newest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct VersionList {
    pub items: Vec<FileVersion>,
}

/// A deleted file or folder waiting in the Trash.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct TrashItem {
    /// The deleted item's id (it keeps it when restored).
    pub id: String,
    pub name: String,
    pub kind: FileKind,
    /// The folder it was deleted from (`None`: the root, or a folder gone since).
    pub parent_id: Option<String>,
    /// Where it was, as a path from the root (`/Projects/app`), for people.
    pub path: String,
    /// Bytes of its current content, a folder's with everything in it.
    pub size: u64,
    /// Files and folders inside a folder (0 for a file).
    pub items: u64,
    /// RFC 3339.
    pub deleted_at: String,
    /// When the sweep removes it for good (RFC 3339).
    pub expires_at: String,
}

/// Answer of `GET /trash`: most recently deleted first.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct TrashList {
    pub items: Vec<TrashItem>,
    /// Bytes the Trash holds, all versions counted (they count against the quota).
    pub bytes: u64,
}

/// One entry of `GET /files/tree`: the whole untrashed tree, by path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct TreeItem {
    pub id: String,
    /// Names from the root, joined with `/` (`src/main.rs`).
    pub path: String,
    pub kind: FileKind,
    pub size: u64,
    pub version: i64,
    /// Lowercase hex SHA-256 of the content; `None` for folders.
    pub checksum: Option<String>,
    #[serde(default)]
    pub executable: bool,
}

/// Answer of `GET /files/tree`: every file and folder of the caller, parents before
/// children.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Tree {
    pub items: Vec<TreeItem>,
}

/// What a sandbox's sync tells the user (`POST /sync/report`); the edge words it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum SyncReportKind {
    /// A file changed on both sides: the drive kept its version, the sandbox's was saved
    /// beside it (`copy_path`).
    Conflict,
    /// A file stays in the sandbox only: storing it would pass the quota.
    Quota,
    /// The drive refused a file (its name, its size): it stays in the sandbox only.
    Refused,
}

/// Body of `POST /sync/report`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct SyncReport {
    pub kind: SyncReportKind,
    /// The file's path in the home.
    pub path: String,
    /// Where the sandbox's version went (a conflict).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_path: Option<String>,
    /// The file the report is about in the drive, if it is there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<String>,
    /// The drive's reason (a refusal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Answer of `POST /files`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct UploadResponse {
    pub files: Vec<File>,
}

/// Body of `POST /folders`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct CreateFolder {
    pub parent_id: Option<String>,
    pub name: String,
}

/// Body of `PATCH /files/:id`: rename, move, or both.
///
/// `parent_id` absent leaves the parent alone; `null` moves the entry to the root.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct PatchFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub parent_id: Option<Option<String>>,
    /// Sets or clears the executable bit (files only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executable: Option<bool>,
}

/// Tells "field absent" (`None`) from "field null" (`Some(None)`).
fn double_option<'de, D>(de: D) -> Result<Option<Option<String>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Option::<String>::deserialize(de).map(Some)
}

/// An `application/problem+json` body (RFC 9457).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Problem {
    /// Stable slug such as `/errors/not-found`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
}

/// Answer of `GET /healthz`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Health {
    pub status: String,
    pub version: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_tells_absent_from_null_parent() {
        let absent: PatchFile = serde_json::from_str(r#"{"name":"a"}"#).unwrap();
        assert_eq!(absent.parent_id, None);
        let null: PatchFile = serde_json::from_str(r#"{"parent_id":null}"#).unwrap();
        assert_eq!(null.parent_id, Some(None));
        let set: PatchFile = serde_json::from_str(r#"{"parent_id":"x"}"#).unwrap();
        assert_eq!(set.parent_id, Some(Some("x".into())));
    }

    #[test]
    fn problem_serializes_type_field() {
        let p = Problem {
            kind: "/errors/not-found".into(),
            title: "Not found".into(),
            status: 404,
            detail: "no such file".into(),
        };
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["type"], "/errors/not-found");
    }
}
