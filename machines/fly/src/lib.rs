//! Typed client of the Fly Machines API (`https://api.machines.dev/v1`).
//!
//! Only the shapes exist so far; the sandboxes issue adds the reqwest client.
#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};

/// Lifecycle states a Fly Machine reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MachineState {
    Created,
    Starting,
    Started,
    Stopping,
    Stopped,
    Suspended,
    Destroying,
    Destroyed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_use_the_api_spelling() {
        let s: MachineState = serde_json::from_str("\"started\"").unwrap();
        assert_eq!(s, MachineState::Started);
    }
}
