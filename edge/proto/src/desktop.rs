//! Wire types of the desktop: app manifests, the saved window layout and notifications.

use serde::{Deserialize, Serialize};
#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// A width and height in CSS pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Size {
    pub width: f64,
    pub height: f64,
}

/// What the desktop knows of an app: the dock, launcher and window manager read only this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct AppManifest {
    /// Stable id, e.g. `files`; windows carry it as `data-window`.
    pub id: String,
    pub name: String,
    /// One line for the launcher.
    pub description: String,
    /// URL of a square SVG icon.
    pub icon: String,
    /// `builtin:<component>` for first-party apps; a URL for sandboxed third-party apps.
    pub entry: String,
    pub default_size: Size,
    pub min_size: Size,
    /// Capabilities the app uses, e.g. `files:read`, `files:write`.
    pub permissions: Vec<String>,
    /// Whether several windows of the app may be open at once.
    pub multi_window: bool,
    /// Whether the dock shows it when it is not running.
    pub pinned: bool,
}

/// Answer of `GET /apps`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct AppList {
    pub apps: Vec<AppManifest>,
}

/// The user's desktop as the web app saved it (`GET`/`PUT /desktop`): opaque to the server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct DesktopLayout {
    /// Windows and their state, in the web app's own format.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub layout: serde_json::Value,
    /// RFC 3339; absent before the first save.
    pub updated_at: Option<String>,
}

/// One notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Notification {
    pub id: String,
    /// Stable kind such as `upload.finished`.
    pub kind: String,
    pub title: String,
    pub body: String,
    /// The file it is about, if any.
    pub file_id: Option<String>,
    pub read: bool,
    /// RFC 3339.
    pub created_at: String,
}

/// Answer of `GET /notifications` (newest first) and of `POST /notifications/read`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct NotificationList {
    pub items: Vec<Notification>,
    pub unread: u64,
}

/// Body of `POST /notifications/read`: the ids to mark read, or all when absent.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct MarkRead {
    pub ids: Option<Vec<String>>,
}

/// A text frame on the per-user event socket `WS /events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A new notification.
    Notification { notification: Notification },
    /// Something changed in a folder (`None`: the root), so open views refresh it.
    FilesChanged { parent_id: Option<String> },
    /// The user signed out everywhere (`POST /auth/logout`): the socket closes after this
    /// frame, and a desktop that gets it goes back to the sign-in page.
    SessionEnded,
}

impl Event {
    /// Whether the host closes the socket once this event is sent.
    pub fn ends_socket(&self) -> bool {
        matches!(self, Event::SessionEnded)
    }
}
