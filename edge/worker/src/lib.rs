//! The Cloudflare Worker host. It will adapt libSQL over Hrana, R2 and Durable Objects to
//! the core's ports and hand requests to [`cloudos_core::router`]; until the edge issue
//! lands it only proves that the core links into a wasm32 library.
#![forbid(unsafe_code)]

pub use cloudos_core::router;
