//! The agent's settings: flags, each with an environment variable (the edge's local provider
//! and a Fly Machine's config set them).

use std::path::PathBuf;

use clap::Parser;
use cloudos_proto::terminal::SandboxNetwork;

/// `cloudos-agent`: the terminal and exec agent of one sandbox.
#[derive(Debug, Clone, Parser)]
#[command(name = "cloudos-agent", version)]
pub struct AgentSettings {
    /// Address to listen on (port 0: any free port; the chosen one is logged).
    #[arg(long, env = "CLOUDOS_AGENT_ADDR", default_value = "127.0.0.1:7681")]
    pub addr: String,
    /// The sandbox this agent serves; tokens for any other are refused.
    #[arg(long, env = "CLOUDOS_SANDBOX_ID")]
    pub sandbox_id: String,
    /// The key the edge signs this sandbox's tokens with (hex).
    #[arg(long, env = "CLOUDOS_AGENT_KEY", hide_env_values = true)]
    pub key: String,
    /// The user's home on this machine (shown as /home/user inside the sandbox).
    #[arg(long, env = "CLOUDOS_AGENT_HOME", default_value = "/home/user")]
    pub home: PathBuf,
    /// An ext4 image that holds the home, mounted at --home (needs root).
    #[arg(long, env = "CLOUDOS_AGENT_HOME_IMAGE")]
    pub home_image: Option<PathBuf>,
    /// Size of a new home image in MiB (0: no image, no size limit).
    #[arg(long, env = "CLOUDOS_AGENT_HOME_SIZE_MB", default_value_t = 0)]
    pub home_size_mb: u64,
    /// Run every process under bubblewrap (off inside a Fly Machine, the sandbox itself).
    #[arg(long, env = "CLOUDOS_AGENT_BWRAP", default_value_t = false)]
    pub bwrap: bool,
    /// The sandbox's network: `outbound` (its own namespace, user-mode stack, no host or
    /// private addresses; needs root), `none` (loopback only) or `host` (the host's).
    #[arg(long, env = "CLOUDOS_AGENT_NETWORK", default_value_t = SandboxNetwork::Outbound)]
    pub network: SandboxNetwork,
    /// Put the sandbox's processes under memory, pids and CPU limits (cgroups).
    #[arg(long, env = "CLOUDOS_AGENT_LIMITS", default_value_t = false)]
    pub limits: bool,
    /// Where the cgroup file systems are mounted.
    #[arg(
        long,
        env = "CLOUDOS_AGENT_CGROUP_ROOT",
        default_value = "/sys/fs/cgroup"
    )]
    pub cgroup_root: PathBuf,
    /// Memory limit in MiB.
    #[arg(long, env = "CLOUDOS_AGENT_MEMORY_MB", default_value_t = 512)]
    pub memory_mb: u64,
    /// Process limit.
    #[arg(long, env = "CLOUDOS_AGENT_PIDS_MAX", default_value_t = 256)]
    pub pids_max: u64,
    /// CPU limit in cores.
    #[arg(long, env = "CLOUDOS_AGENT_CPUS", default_value_t = 1.0)]
    pub cpus: f64,
    /// Seconds a terminal without clients keeps its shell.
    #[arg(long, env = "CLOUDOS_AGENT_REATTACH_SECS", default_value_t = 600)]
    pub reattach_secs: u64,
    /// Seconds without an attached terminal or a running command after which the agent
    /// stops by itself, as on SIGTERM (0: never).
    #[arg(long, env = "CLOUDOS_AGENT_IDLE_SECS", default_value_t = 0)]
    pub idle_secs: u64,
    /// The shell and its arguments.
    #[arg(long, env = "CLOUDOS_AGENT_SHELL", num_args = 1.., default_values_t = ["/bin/bash".to_owned(), "-l".to_owned()])]
    pub shell: Vec<String>,
    /// Stop (as on SIGTERM) when the process that started the agent dies.
    #[arg(long, env = "CLOUDOS_AGENT_DIE_WITH_PARENT", default_value_t = false)]
    pub die_with_parent: bool,
    /// The unprivileged host uid (and gid) the sandbox's processes run as when the agent
    /// runs as root with bubblewrap (default: one derived from the sandbox id; the edge
    /// passes one derived from the user, so a home keeps its owner across sandboxes).
    #[arg(long, env = "CLOUDOS_AGENT_RUN_AS")]
    pub run_as: Option<u32>,
    /// The edge's API the home syncs with (none: the home is not synced).
    #[arg(long, env = "CLOUDOS_AGENT_SYNC_URL")]
    pub sync_url: Option<String>,
    /// The sandbox's sync token (the edge issues it; the sandbox's processes never see it).
    #[arg(long, env = "CLOUDOS_AGENT_SYNC_TOKEN", hide_env_values = true)]
    pub sync_token: Option<String>,
    /// Files the agent writes for the sandbox (default: a directory next to the home).
    #[arg(long, env = "CLOUDOS_AGENT_STATE")]
    pub state: Option<PathBuf>,
}

impl AgentSettings {
    /// The signing key's bytes.
    pub fn key_bytes(&self) -> Result<Vec<u8>, String> {
        let k = hex::decode(self.key.trim()).map_err(|e| format!("--key is not hex: {e}"))?;
        if k.len() < 16 {
            return Err("--key must be at least 16 bytes".into());
        }
        Ok(k)
    }

    /// Where the agent's own files for the sandbox go.
    pub fn state_dir(&self) -> PathBuf {
        self.state.clone().unwrap_or_else(|| {
            let name = format!(
                ".{}-agent",
                self.home
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "home".into())
            );
            self.home
                .parent()
                .map(|p| p.join(&name))
                .unwrap_or_else(|| std::env::temp_dir().join(name))
        })
    }
}
