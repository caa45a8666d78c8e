//! A sandbox as a Fly Machine: created from the agent image with the user's volume mounted
//! as the home, started and waited for, stopped by the Fly proxy when idle (`autostop`), and
//! stopped and destroyed when the sandbox is deleted (the volume, and so the home, stays).

use std::collections::BTreeMap;

use crate::api::*;

/// Where the agent listens inside a Machine.
pub const AGENT_PORT: u16 = 7681;

/// Settings of the Fly provider.
#[derive(Debug, Clone)]
pub struct FlySettings {
    /// The Machines API (normally [`MACHINES_API`]; a test double in tests).
    pub api_url: String,
    /// The Fly app that runs sandboxes.
    pub app: String,
    pub token: String,
    pub region: String,
    /// The agent image (`machines/agent/Dockerfile`, pushed to Fly's registry).
    pub image: String,
    pub memory_mb: u32,
    pub cpus: u32,
    /// Size of a new home volume.
    pub volume_gb: u32,
    /// Seconds of disuse after which a sandbox's agent (and so its Machine) stops.
    pub idle_secs: u64,
    /// The app's public URL (`https://<app>.fly.dev`); the proxy routes by instance header.
    pub public_url: String,
    /// The edge's API as a Machine reaches it, to sync the home with the user's drive
    /// (`None`: homes are not synced).
    pub sync_url: Option<String>,
}

/// Where a started sandbox's agent is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlyEndpoint {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub machine_id: String,
}

/// The Fly sandbox provider.
#[derive(Debug, Clone)]
pub struct FlyProvider {
    pub settings: FlySettings,
    client: FlyClient,
    /// For the edge's calls to agents (never carries the Fly token).
    agents: reqwest::Client,
}

/// The volume name of a user's home: Fly allows lowercase letters, digits and `_`, 30 at most.
pub fn volume_name(user_id: &str) -> String {
    let clean: String = user_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .take(25)
        .collect();
    format!("home_{clean}")
}

impl FlyProvider {
    /// A provider over the Machines API.
    pub fn new(settings: FlySettings) -> Self {
        let client = FlyClient::new(&settings.api_url, &settings.app, &settings.token);
        FlyProvider {
            settings,
            client,
            agents: reqwest::Client::new(),
        }
    }

    fn endpoint(&self, machine_id: &str) -> FlyEndpoint {
        FlyEndpoint {
            url: self.settings.public_url.clone(),
            headers: vec![("fly-force-instance-id".into(), machine_id.to_owned())],
            machine_id: machine_id.to_owned(),
        }
    }

    /// The machine definition of a sandbox. Only the sandbox's id and agent key go in;
    /// the Fly token never does.
    pub fn machine_for(
        &self,
        sandbox_id: &str,
        user_id: &str,
        agent_key_hex: &str,
        sync_token: &str,
        volume_id: &str,
    ) -> CreateMachine {
        let mut env = BTreeMap::from([
            ("CLOUDOS_SANDBOX_ID".to_owned(), sandbox_id.to_owned()),
            ("CLOUDOS_AGENT_KEY".to_owned(), agent_key_hex.to_owned()),
            (
                "CLOUDOS_AGENT_ADDR".to_owned(),
                format!("0.0.0.0:{AGENT_PORT}"),
            ),
            ("CLOUDOS_AGENT_HOME".to_owned(), "/home/user".to_owned()),
            // On the volume, so the sync's index outlives the Machine (a new Machine
            // mounts the same volume); the agent shares its uid with the shells here
            // anyway, so nothing outside the home would be kept from them.
            (
                "CLOUDOS_AGENT_STATE".to_owned(),
                "/home/user/.cloudos-agent".to_owned(),
            ),
            (
                "CLOUDOS_AGENT_IDLE_SECS".to_owned(),
                self.settings.idle_secs.to_string(),
            ),
        ]);
        if let Some(url) = &self.settings.sync_url {
            env.insert("CLOUDOS_AGENT_SYNC_URL".to_owned(), url.clone());
            env.insert("CLOUDOS_AGENT_SYNC_TOKEN".to_owned(), sync_token.to_owned());
        }
        CreateMachine {
            name: format!("sbx-{sandbox_id}"),
            region: self.settings.region.clone(),
            config: MachineConfig {
                image: self.settings.image.clone(),
                env,
                guest: Guest {
                    cpu_kind: "shared".into(),
                    cpus: self.settings.cpus,
                    memory_mb: self.settings.memory_mb,
                },
                mounts: vec![Mount {
                    volume: volume_id.to_owned(),
                    path: "/home/user".into(),
                }],
                services: vec![Service {
                    protocol: "tcp".into(),
                    internal_port: AGENT_PORT,
                    ports: vec![Port {
                        port: 443,
                        handlers: vec!["tls".into(), "http".into()],
                    }],
                    autostop: "stop".into(),
                    autostart: true,
                }],
                restart: Restart {
                    policy: "on-failure".into(),
                },
                auto_destroy: false,
                metadata: BTreeMap::from([
                    ("cloudos_sandbox".to_owned(), sandbox_id.to_owned()),
                    ("cloudos_user".to_owned(), user_id.to_owned()),
                ]),
            },
        }
    }

    /// The user's home volume, created on first use.
    pub async fn home_volume(&self, user_id: &str) -> Result<Volume, FlyError> {
        let name = volume_name(user_id);
        if let Some(v) = self
            .client
            .list_volumes()
            .await?
            .into_iter()
            .find(|v| v.name == name && v.state != "destroyed")
        {
            return Ok(v);
        }
        self.client
            .create_volume(&CreateVolume {
                name,
                region: self.settings.region.clone(),
                size_gb: self.settings.volume_gb,
            })
            .await
    }

    /// Starts the sandbox's Machine (creating it, with the home volume, the first time) and
    /// waits until it runs. Idempotent: a started Machine is just returned.
    pub async fn start(
        &self,
        sandbox_id: &str,
        user_id: &str,
        agent_key_hex: &str,
        sync_token: &str,
        machine_id: Option<&str>,
    ) -> Result<FlyEndpoint, FlyError> {
        if let Some(id) = machine_id {
            match self.client.get_machine(id).await {
                Ok(m) if m.state == MachineState::Started => return Ok(self.endpoint(id)),
                Ok(m)
                    if m.state != MachineState::Destroyed
                        && m.state != MachineState::Destroying =>
                {
                    self.client.start_machine(id).await?;
                    self.client
                        .wait(id, MachineState::Started, None, 60)
                        .await?;
                    return Ok(self.endpoint(id));
                }
                Ok(_) | Err(FlyError::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        let volume = self.home_volume(user_id).await?;
        let m = self
            .client
            .create_machine(&self.machine_for(
                sandbox_id,
                user_id,
                agent_key_hex,
                sync_token,
                &volume.id,
            ))
            .await?;
        self.client
            .wait(&m.id, MachineState::Started, None, 60)
            .await?;
        Ok(self.endpoint(&m.id))
    }

    /// Posts `body` (JSON) to `path` of the agent in the sandbox's Machine if it runs now
    /// (a stopped Machine is not woken for it); `None` when it does not.
    pub async fn post_to_agent(
        &self,
        machine_id: &str,
        path: &str,
        bearer: &str,
        body: Vec<u8>,
    ) -> Result<Option<u16>, FlyError> {
        match self.client.get_machine(machine_id).await {
            Ok(m) if m.state == MachineState::Started => {}
            Ok(_) | Err(FlyError::NotFound) => return Ok(None),
            Err(e) => return Err(e),
        }
        let endpoint = self.endpoint(machine_id);
        let mut req = self
            .agents
            .post(format!("{}/{path}", endpoint.url.trim_end_matches('/')))
            .bearer_auth(bearer)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        for (name, value) in &endpoint.headers {
            req = req.header(name.as_str(), value.as_str());
        }
        // A hung agent must not hang the request that tells it (a Worker's request has its
        // own limit; reqwest has no timeout on wasm32).
        #[cfg(not(target_arch = "wasm32"))]
        let req = req.timeout(std::time::Duration::from_secs(10));
        Ok(Some(req.send().await?.status().as_u16()))
    }

    /// Stops and destroys the sandbox's Machine; the volume (the home) stays.
    pub async fn stop(&self, machine_id: &str) -> Result<(), FlyError> {
        let m = match self.client.get_machine(machine_id).await {
            Ok(m) => m,
            Err(FlyError::NotFound) => return Ok(()),
            Err(e) => return Err(e),
        };
        if m.state == MachineState::Started {
            self.client.stop_machine(machine_id).await?;
            self.client
                .wait(machine_id, MachineState::Stopped, Some(&m.instance_id), 60)
                .await?;
        }
        match self.client.destroy_machine(machine_id).await {
            Ok(()) | Err(FlyError::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider() -> FlyProvider {
        FlyProvider::new(FlySettings {
            api_url: MACHINES_API.into(),
            app: "cloudos-sandboxes".into(),
            token: "FlyV1 fm2_secret".into(),
            region: "fra".into(),
            image: "registry.fly.io/cloudos-sandboxes:agent".into(),
            memory_mb: 512,
            cpus: 1,
            volume_gb: 1,
            idle_secs: 1800,
            public_url: "https://cloudos-sandboxes.fly.dev".into(),
            sync_url: Some("https://os.example.com".into()),
        })
    }

    #[test]
    fn volume_names_fit_flys_rules() {
        let n = volume_name("019A-bc7d_ef01234567890123456789abcdef");
        assert!(n.len() <= 30, "{n}");
        assert!(n
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
        assert_eq!(volume_name("AB"), "home_ab");
    }

    #[test]
    fn a_machine_gets_the_agent_key_but_never_the_fly_token() {
        let m = provider().machine_for("s1", "u1", "abcd", "sync-token", "vol_1");
        let json = serde_json::to_string(&m).unwrap();
        assert!(!json.contains("fm2_secret"));
        assert_eq!(m.config.env["CLOUDOS_AGENT_KEY"], "abcd");
        assert_eq!(m.config.env["CLOUDOS_AGENT_IDLE_SECS"], "1800");
        assert_eq!(
            m.config.env["CLOUDOS_AGENT_SYNC_URL"],
            "https://os.example.com"
        );
        assert_eq!(m.config.env["CLOUDOS_AGENT_SYNC_TOKEN"], "sync-token");
        assert_eq!(
            m.config.env["CLOUDOS_AGENT_STATE"],
            "/home/user/.cloudos-agent"
        );
        assert_eq!(m.config.mounts[0].path, "/home/user");
        assert_eq!(m.config.services[0].internal_port, AGENT_PORT);
        assert_eq!(m.config.services[0].autostop, "stop");
    }
}
