//! The Machines API: the requests and answers this project uses, and a client for them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The public API's base URL.
pub const MACHINES_API: &str = "https://api.machines.dev/v1";

/// Lifecycle states a Fly Machine reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MachineState {
    Created,
    Starting,
    Started,
    Stopping,
    Stopped,
    Suspending,
    Suspended,
    Replacing,
    Destroying,
    Destroyed,
    #[serde(other)]
    Unknown,
}

impl MachineState {
    /// The name the API uses (e.g. in `/wait?state=`).
    pub fn as_str(self) -> &'static str {
        match self {
            MachineState::Created => "created",
            MachineState::Starting => "starting",
            MachineState::Started => "started",
            MachineState::Stopping => "stopping",
            MachineState::Stopped => "stopped",
            MachineState::Suspending => "suspending",
            MachineState::Suspended => "suspended",
            MachineState::Replacing => "replacing",
            MachineState::Destroying => "destroying",
            MachineState::Destroyed => "destroyed",
            MachineState::Unknown => "unknown",
        }
    }
}

/// CPU and memory of a Machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Guest {
    pub cpu_kind: String,
    pub cpus: u32,
    pub memory_mb: u32,
}

/// A volume mounted into a Machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    pub volume: String,
    pub path: String,
}

/// A public port of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port {
    pub port: u16,
    pub handlers: Vec<String>,
}

/// A service the Fly proxy routes to the Machine, stopping it when idle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub protocol: String,
    pub internal_port: u16,
    pub ports: Vec<Port>,
    /// `stop`: the proxy stops the Machine after it sees no traffic for a while.
    pub autostop: String,
    pub autostart: bool,
}

/// What the Machine does when its process exits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restart {
    pub policy: String,
}

/// A Machine's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineConfig {
    pub image: String,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub guest: Guest,
    #[serde(default)]
    pub mounts: Vec<Mount>,
    #[serde(default)]
    pub services: Vec<Service>,
    pub restart: Restart,
    #[serde(default)]
    pub auto_destroy: bool,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// Body of `POST /apps/{app}/machines`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateMachine {
    pub name: String,
    pub region: String,
    pub config: MachineConfig,
}

/// A Machine as the API reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Machine {
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub state: MachineState,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub instance_id: String,
}

/// Body of `POST /apps/{app}/volumes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateVolume {
    pub name: String,
    pub region: String,
    pub size_gb: u32,
}

/// A volume as the API reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub attached_machine_id: Option<String>,
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum FlyError {
    #[error("the Machines API answered {status}: {body}")]
    Api { status: u16, body: String },
    #[error("no such machine or volume")]
    NotFound,
    #[error("reaching the Machines API: {0}")]
    Http(String),
    #[error("{0}")]
    Config(String),
}

impl From<reqwest::Error> for FlyError {
    fn from(e: reqwest::Error) -> Self {
        FlyError::Http(e.to_string())
    }
}

/// A client of one Fly app's Machines.
#[derive(Clone)]
pub struct FlyClient {
    http: reqwest::Client,
    base: String,
    app: String,
    token: String,
}

// The token must never reach a log line.
impl std::fmt::Debug for FlyClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlyClient")
            .field("base", &self.base)
            .field("app", &self.app)
            .field("token", &"<redacted>")
            .finish()
    }
}

impl FlyClient {
    /// A client for `app` at `base` (normally [`MACHINES_API`]) with a Fly API token.
    pub fn new(base: &str, app: &str, token: &str) -> Self {
        FlyClient {
            http: reqwest::Client::new(),
            base: base.trim_end_matches('/').to_owned(),
            app: app.to_owned(),
            token: token.to_owned(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/apps/{}{path}", self.base, self.app)
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, FlyError> {
        let res = req.bearer_auth(&self.token).send().await?;
        let status = res.status().as_u16();
        if status == 404 {
            return Err(FlyError::NotFound);
        }
        if !(200..300).contains(&status) {
            let body = res.text().await.unwrap_or_default();
            return Err(FlyError::Api { status, body });
        }
        let text = res.text().await?;
        // Some endpoints answer with an empty body or `{"ok":true}`.
        serde_json::from_str(if text.trim().is_empty() {
            "null"
        } else {
            &text
        })
        .map_err(|e| FlyError::Http(format!("unexpected answer ({e}): {text}")))
    }

    /// `POST /apps/{app}/machines`
    pub async fn create_machine(&self, body: &CreateMachine) -> Result<Machine, FlyError> {
        self.send(self.http.post(self.url("/machines")).json(body))
            .await
    }

    /// `GET /apps/{app}/machines/{id}`
    pub async fn get_machine(&self, id: &str) -> Result<Machine, FlyError> {
        self.send(self.http.get(self.url(&format!("/machines/{id}"))))
            .await
    }

    /// `GET /apps/{app}/machines`
    pub async fn list_machines(&self) -> Result<Vec<Machine>, FlyError> {
        self.send(self.http.get(self.url("/machines"))).await
    }

    /// `POST /apps/{app}/machines/{id}/start`
    pub async fn start_machine(&self, id: &str) -> Result<(), FlyError> {
        self.send::<serde_json::Value>(self.http.post(self.url(&format!("/machines/{id}/start"))))
            .await
            .map(drop)
    }

    /// `POST /apps/{app}/machines/{id}/stop`
    pub async fn stop_machine(&self, id: &str) -> Result<(), FlyError> {
        self.send::<serde_json::Value>(self.http.post(self.url(&format!("/machines/{id}/stop"))))
            .await
            .map(drop)
    }

    /// `GET /apps/{app}/machines/{id}/wait?state=…&timeout=…` (the API waits, not us; a
    /// stopped-wait names the instance it waits for).
    pub async fn wait(
        &self,
        id: &str,
        state: MachineState,
        instance_id: Option<&str>,
        timeout_secs: u32,
    ) -> Result<(), FlyError> {
        let mut q = vec![
            ("state", state.as_str().to_owned()),
            ("timeout", timeout_secs.to_string()),
        ];
        if let Some(i) = instance_id.filter(|i| !i.is_empty()) {
            q.push(("instance_id", i.to_owned()));
        }
        self.send::<serde_json::Value>(
            self.http
                .get(self.url(&format!("/machines/{id}/wait")))
                .query(&q),
        )
        .await
        .map(drop)
    }

    /// `DELETE /apps/{app}/machines/{id}?force=true`
    pub async fn destroy_machine(&self, id: &str) -> Result<(), FlyError> {
        self.send::<serde_json::Value>(
            self.http
                .delete(self.url(&format!("/machines/{id}")))
                .query(&[("force", "true")]),
        )
        .await
        .map(drop)
    }

    /// `GET /apps/{app}/volumes`
    pub async fn list_volumes(&self) -> Result<Vec<Volume>, FlyError> {
        self.send(self.http.get(self.url("/volumes"))).await
    }

    /// `POST /apps/{app}/volumes`
    pub async fn create_volume(&self, body: &CreateVolume) -> Result<Volume, FlyError> {
        self.send(self.http.post(self.url("/volumes")).json(body))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_use_the_api_spelling() {
        let s: MachineState = serde_json::from_str("\"started\"").unwrap();
        assert_eq!(s, MachineState::Started);
        let new: MachineState = serde_json::from_str("\"launching-soon\"").unwrap();
        assert_eq!(
            new,
            MachineState::Unknown,
            "states added later do not break us"
        );
        assert_eq!(MachineState::Suspended.as_str(), "suspended");
    }

    #[test]
    fn the_token_is_redacted_from_debug_output() {
        let c = FlyClient::new(MACHINES_API, "app", "FlyV1 secret");
        assert!(!format!("{c:?}").contains("secret"));
    }
}
