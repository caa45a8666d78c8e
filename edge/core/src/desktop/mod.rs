//! What the desktop needs from the server: the apps it can open and the saved window
//! layout (services in `apps` and `layout`; routes in `handlers`).

pub mod apps;
pub mod handlers;
pub mod layout;

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
