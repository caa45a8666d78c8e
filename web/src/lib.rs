//! The desktop web app. The desktop issue builds it with Leptos (CSR) for wasm32; until
//! then `cloudos serve` answers `/` with a plain page that points at the API.
#![forbid(unsafe_code)]

pub use cloudos_proto as proto;
