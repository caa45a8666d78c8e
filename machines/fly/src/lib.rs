//! The Fly sandbox provider: a typed client of the Fly Machines API
//! (`https://api.machines.dev/v1`) and the rules for running a sandbox as a Machine with the
//! user's home on a volume. It compiles for native hosts and wasm32 (reqwest over `fetch`).
//!
//! The Fly API token stays with the edge: a Machine gets only its sandbox id and its agent key.
#![forbid(unsafe_code)]

mod api;
mod provider;
mod sandboxes;

pub use api::*;
pub use provider::*;
pub use sandboxes::vars;
