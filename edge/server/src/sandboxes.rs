//! The local sandbox provider: one `cloudos-agent` process per running sandbox, with the
//! user's home (an ext4 image when running as root) under the data dir, bubblewrap and
//! cgroup limits as configured.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cloudos_core::ports::{AgentEndpoint, SandboxError, SandboxSpec, Sandboxes};
use cloudos_proto::terminal::SandboxNetwork;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};

use crate::settings::SandboxArgs;

struct Running {
    child: Child,
    url: String,
    /// This agent's place among the `--sandbox-max` (given back when it is dropped).
    _place: OwnedSemaphorePermit,
}

impl Running {
    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// One sandbox's agent, if it runs. Each sandbox has its own lock, so a start that takes
/// seconds holds up only that sandbox's callers, never every attach on the host.
type Slot = Arc<Mutex<Option<Running>>>;

/// Sandboxes as isolated local processes.
pub struct LocalSandboxes {
    args: SandboxArgs,
    root: PathBuf,
    slots: std::sync::Mutex<HashMap<String, Slot>>,
    /// `--sandbox-max` places; a running agent holds one.
    places: Arc<Semaphore>,
    /// Why no sandbox starts as configured (limits asked for that this host cannot give).
    refusal: Option<String>,
    /// For the edge's calls to agents (revocations).
    http: reqwest::Client,
    /// Where agents reach this server's API to sync homes (known once it listens).
    api_url: std::sync::OnceLock<String>,
}

impl LocalSandboxes {
    /// Sandboxes with their homes under `<data>/sandboxes`.
    pub fn new(args: SandboxArgs, data: &std::path::Path) -> Self {
        // Limits and home images need root. Without it, sandboxes run only if the operator
        // turned the limits off explicitly: never unlimited by surprise.
        let mut missing = Vec::new();
        if args.sandbox_limits && !is_root() {
            missing.push("memory, process and CPU limits (--sandbox-limits false runs without)");
        }
        if args.sandbox_home_mb > 0 && !is_root() {
            missing.push("a home size limit (--sandbox-home-mb 0 runs without)");
        }
        if args.sandbox_network == SandboxNetwork::Outbound && !is_root() {
            missing.push("a network of their own with outbound access (--sandbox-network none gives loopback only)");
        }
        let mut refusal = (!missing.is_empty()).then(|| {
            format!(
                "this server does not run as root, so it cannot give sandboxes {}",
                missing.join(" or ")
            )
        });
        if is_root() && !args.sandbox_bwrap {
            // Without bubblewrap nothing drops the agent's root: every shell would be root.
            refusal = Some(
                "sandboxes without bubblewrap would run their shells as this server's root; run the server as another user for --sandbox-bwrap false".into(),
            );
        }
        if let Some(why) = &refusal {
            tracing::error!(reason = %why, "sandboxes will not start");
        }
        if args.sandbox_bwrap && !on_path("bwrap") {
            tracing::warn!("bwrap is not installed: terminals will fail until it is (cargo xtask setup installs it), or run with --sandbox-bwrap false");
        }
        LocalSandboxes {
            root: data.join("sandboxes"),
            slots: std::sync::Mutex::new(HashMap::new()),
            places: Arc::new(Semaphore::new(args.sandbox_max)),
            args,
            refusal,
            http: reqwest::Client::new(),
            api_url: std::sync::OnceLock::new(),
        }
    }

    /// Tells agents started from now on where this server's API listens.
    pub fn set_api_url(&self, url: String) {
        let _ = self.api_url.set(url);
    }

    fn agent_bin(&self) -> PathBuf {
        self.args.agent_bin.clone().unwrap_or_else(|| {
            std::env::current_exe()
                .ok()
                .and_then(|p| p.parent().map(|d| d.join("cloudos-agent")))
                .unwrap_or_else(|| PathBuf::from("cloudos-agent"))
        })
    }

    /// Stops every agent (the server is shutting down); homes stay.
    pub async fn stop_all(&self) {
        let slots: Vec<(String, Slot)> = self.slots.lock().expect("slots").drain().collect();
        for (id, slot) in slots {
            if let Some(r) = slot.lock().await.take() {
                terminate(id, r).await;
            }
        }
    }

    fn slot(&self, id: &str) -> Slot {
        self.slots
            .lock()
            .expect("slots")
            .entry(id.to_owned())
            .or_default()
            .clone()
    }

    /// A place for a new agent: a free one, else one an agent that stopped by itself (idle)
    /// left behind.
    fn place(&self) -> Result<OwnedSemaphorePermit, SandboxError> {
        if let Ok(p) = self.places.clone().try_acquire_owned() {
            return Ok(p);
        }
        let slots: Vec<Slot> = self
            .slots
            .lock()
            .expect("slots")
            .values()
            .cloned()
            .collect();
        for slot in slots {
            // A slot being started or stopped right now is busy, not stale: skip it.
            if let Ok(mut held) = slot.try_lock() {
                if held.as_mut().is_some_and(|r| !r.alive()) {
                    *held = None;
                }
            }
        }
        self.places
            .clone()
            .try_acquire_owned()
            .map_err(|_| SandboxError::AtCapacity)
    }

    async fn spawn(
        &self,
        spec: &SandboxSpec,
        place: OwnedSemaphorePermit,
    ) -> Result<Running, SandboxError> {
        let user_dir = self.root.join(&spec.user_id);
        let mut cmd = Command::new(self.agent_bin());
        cmd.args(["--addr", "127.0.0.1:0", "--sandbox-id", &spec.id])
            .arg("--die-with-parent")
            .arg("--home")
            .arg(user_dir.join("home"))
            .arg("--state")
            .arg(user_dir.join("state"))
            .args(["--network", &self.args.sandbox_network.to_string()])
            .args(["--memory-mb", &self.args.sandbox_memory_mb.to_string()])
            .args(["--pids-max", &self.args.sandbox_pids_max.to_string()])
            .args(["--cpus", &self.args.sandbox_cpus.to_string()])
            .args([
                "--reattach-secs",
                &self.args.sandbox_reattach_secs.to_string(),
            ])
            .args(["--idle-secs", &self.args.sandbox_idle_secs.to_string()])
            // The key goes through the environment, not the command line others can read.
            .env("CLOUDOS_AGENT_KEY", &spec.agent_key_hex)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        if self.args.sandbox_bwrap {
            // The user's own uid (allocated by the core), so the home keeps its owner from
            // one sandbox to the next and no other user shares it.
            cmd.arg("--bwrap")
                .args(["--run-as", &spec.host_uid.to_string()]);
        }
        if self.args.sandbox_limits {
            cmd.arg("--limits");
        }
        if let Some(url) = self.api_url.get() {
            // Like the key: the environment of the agent alone (the sandbox's processes
            // get an environment built from nothing).
            cmd.env("CLOUDOS_AGENT_SYNC_URL", url)
                .env("CLOUDOS_AGENT_SYNC_TOKEN", &spec.sync_token);
        }
        if self.args.sandbox_home_mb > 0 {
            // The home holds the drive, and room beyond it for what stays local (caches,
            // build output). The image is sparse: it takes only what is written.
            let home_mb = spec.quota_bytes.div_ceil(1 << 20) + self.args.sandbox_home_mb;
            cmd.args(["--home-size-mb", &home_mb.to_string()])
                .arg("--home-image")
                .arg(user_dir.join("home.img"));
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| SandboxError::Failed(format!("starting cloudos-agent: {e}")))?;
        let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        let found = tokio::time::timeout(Duration::from_secs(20), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = listening_url(&line) {
                    return Some(url);
                }
                tracing::warn!(sandbox = %spec.id, line, "agent");
            }
            None
        })
        .await;
        let url = match found {
            Ok(Some(url)) => url,
            _ => {
                let _ = child.kill().await;
                return Err(SandboxError::Failed(
                    "the sandbox agent did not start (see the server log)".into(),
                ));
            }
        };
        let id = spec.id.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::debug!(sandbox = %id, line, "agent");
            }
        });
        Ok(Running {
            child,
            url,
            _place: place,
        })
    }
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// The `url` of an agent's `listening` log line.
fn listening_url(line: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let fields = if v["fields"].is_object() {
        &v["fields"]
    } else {
        &v
    };
    (fields["message"] == "listening").then(|| fields["url"].as_str().map(str::to_owned))?
}

/// SIGTERM (the agent then ends the sandbox's processes and releases its cgroup and mount),
/// then SIGKILL if it takes too long.
async fn terminate(id: String, mut r: Running) {
    if let Some(pid) = r
        .child
        .id()
        .and_then(|p| rustix::process::Pid::from_raw(p as i32))
    {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
    if tokio::time::timeout(Duration::from_secs(10), r.child.wait())
        .await
        .is_err()
    {
        tracing::warn!(sandbox = %id, "agent did not stop in 10 s; killing it");
        let _ = r.child.kill().await;
    }
}

#[async_trait]
impl Sandboxes for LocalSandboxes {
    fn provider(&self) -> &'static str {
        "local"
    }

    async fn start(&self, spec: &SandboxSpec) -> Result<AgentEndpoint, SandboxError> {
        if let Some(why) = &self.refusal {
            return Err(SandboxError::Refused(why.clone()));
        }
        let slot = self.slot(&spec.id);
        let mut held = slot.lock().await;
        if let Some(r) = held.as_mut() {
            if r.alive() {
                return Ok(AgentEndpoint {
                    url: r.url.clone(),
                    headers: vec![],
                    machine_id: None,
                });
            }
            // Stopped by itself (idle) or died: started again, with the same home.
            tracing::info!(sandbox = %spec.id, "agent had stopped; starting it again");
            *held = None;
        }
        let r = self.spawn(spec, self.place()?).await?;
        let url = r.url.clone();
        *held = Some(r);
        Ok(AgentEndpoint {
            url,
            headers: vec![],
            machine_id: None,
        })
    }

    async fn stop(&self, spec: &SandboxSpec) -> Result<(), SandboxError> {
        // Waits for a start in progress on this sandbox, so it cannot miss the agent that
        // start makes.
        let r = self.slot(&spec.id).lock().await.take();
        if let Some(r) = r {
            terminate(spec.id.clone(), r).await;
        }
        // The slot stays: a start waiting on it must put its agent where the next stop
        // looks (one small entry per sandbox this server has run).
        Ok(())
    }

    async fn post_to_agent(
        &self,
        spec: &SandboxSpec,
        path: &str,
        bearer: &str,
        body: Vec<u8>,
    ) -> Result<Option<u16>, SandboxError> {
        let url = {
            let slot = self.slot(&spec.id);
            let mut held = slot.lock().await;
            match held.as_mut() {
                Some(r) => {
                    if !r.alive() {
                        return Ok(None);
                    }
                    r.url.clone()
                }
                None => return Ok(None),
            }
        };
        let res = self
            .http
            .post(format!("{}/{path}", url.trim_end_matches('/')))
            .bearer_auth(bearer)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| SandboxError::Failed(format!("calling the agent: {e}")))?;
        Ok(Some(res.status().as_u16()))
    }
}

/// Sandboxes as Fly Machines (the port is implemented in `cloudos-fly`), with the settings
/// from the environment under the names the Worker reads too; the sandbox's size comes from
/// this server's own flags.
pub fn fly_provider(args: &SandboxArgs) -> anyhow::Result<cloudos_fly::FlyProvider> {
    use cloudos_fly::vars;
    let settings = cloudos_fly::FlySettings::from_vars(|name| match name {
        vars::MEMORY_MB => Some(args.sandbox_memory_mb.to_string()),
        vars::CPUS => Some(args.sandbox_cpus.to_string()),
        vars::IDLE_SECS => Some(args.sandbox_idle_secs.to_string()),
        _ => std::env::var(name).ok(),
    })?;
    Ok(cloudos_fly::FlyProvider::new(settings))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_url_in_either_json_log_shape() {
        assert_eq!(
            listening_url(r#"{"fields":{"message":"listening","url":"http://127.0.0.1:5"}}"#),
            Some("http://127.0.0.1:5".into())
        );
        assert_eq!(
            listening_url(r#"{"message":"listening","url":"http://a"}"#),
            Some("http://a".into())
        );
        assert_eq!(listening_url(r#"{"message":"other"}"#), None);
        assert_eq!(listening_url("not json"), None);
    }
}
