//! What the desktop needs from the server: app manifests, the saved window layout and
//! notifications (stored here, delivered live through the host's [`Events`] port).
//!
//! [`Events`]: crate::ports::Events

pub mod apps;
pub mod layout;
pub mod notifications;

use crate::ports::DbError;

/// Why a desktop request failed.
#[derive(Debug, thiserror::Error)]
pub enum DesktopError {
    #[error("the saved layout is {size} bytes; at most {max} are kept")]
    LayoutTooLarge { size: usize, max: usize },
    #[error("the layout must be a JSON object")]
    LayoutNotAnObject,
    #[error(transparent)]
    Db(#[from] DbError),
}
