//! The sandbox agent: runs a user's shells and commands inside their sandbox and serves them
//! to the edge (`WS /attach`, `POST /exec`). The terminal logic is transport-free
//! (`session`); `host` runs it on PTYs and `server` on sockets.
#![forbid(unsafe_code)]

pub mod auth;
pub mod cgroups;
pub mod exec;
pub mod grants;
pub mod host;
pub mod idle;
pub mod isolation;
pub mod network;
pub mod pty_inside;
pub mod server;
pub mod session;
pub mod settings;
pub mod sync;

use std::sync::Arc;
use std::time::Duration;

use cloudos_proto::terminal::{NoticeKind, SandboxNetwork};

use crate::cgroups::{Cgroup, Limits};
use crate::host::{TerminalSettings, Terminals};
use crate::isolation::Isolation;
use crate::settings::AgentSettings;

/// A prepared sandbox: its isolation, its terminals and the router serving them.
pub struct Agent {
    pub router: axum::Router,
    pub isolation: Arc<Isolation>,
    pub terminals: Arc<Terminals>,
    /// What uses the sandbox now.
    pub activity: Arc<idle::Activity>,
    /// The sandbox's network namespace and user-mode stack, when the agent made them.
    net: std::sync::Mutex<Option<network::SandboxNet>>,
    /// The home's sync with the drive, once started.
    sync: std::sync::Mutex<Option<sync::Sync>>,
    settings: AgentSettings,
}

/// Why the sandbox could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Isolation(#[from] isolation::IsolationError),
    #[error(transparent)]
    Cgroup(#[from] cgroups::CgroupError),
    #[error("bad settings: {0}")]
    Settings(String),
}

impl Agent {
    /// Mounts the home, creates the cgroup and writes the sandbox's files.
    pub fn prepare(settings: AgentSettings) -> Result<Self, AgentError> {
        let key = settings.key_bytes().map_err(AgentError::Settings)?;
        if settings.home_size_mb > 0 {
            let image = settings
                .home_image
                .clone()
                .ok_or_else(|| AgentError::Settings("--home-size-mb needs --home-image".into()))?;
            isolation::mount_home_image(&image, settings.home_size_mb << 20, &settings.home)?;
        }
        let cgroup = if settings.limits {
            Some(Cgroup::create(
                &settings.cgroup_root,
                &format!("sandbox-{}", settings.sandbox_id),
                &Limits {
                    memory_bytes: settings.memory_mb << 20,
                    pids: settings.pids_max,
                    cpus: settings.cpus,
                },
            )?)
        } else {
            None
        };
        // As root, bubblewrap would map the sandbox's user to host root: its processes
        // run as an unprivileged host uid instead.
        let run_as = (settings.bwrap && rustix::process::geteuid().is_root()).then(|| {
            settings
                .run_as
                .unwrap_or_else(|| cloudos_proto::terminal::sandbox_uid(&settings.sandbox_id))
        });
        let net = match (settings.bwrap, settings.network, run_as.is_some()) {
            // On a Fly Machine (no bubblewrap) the machine is the sandbox, network included.
            (false, _, _) | (true, SandboxNetwork::Host, _) => None,
            (true, mode, true) => Some(network::SandboxNet::create(
                mode,
                &settings.state_dir().join("slirp4netns.log"),
            )?),
            // Without root, bubblewrap gives each process a loopback of its own.
            (true, SandboxNetwork::None, false) => None,
            (true, SandboxNetwork::Outbound, false) => {
                return Err(AgentError::Settings(
                    "outbound networking for sandboxes needs root (a network namespace with slirp4netns and a firewall): use --network none (loopback only) or host (the host's network, loopback services included)".into(),
                ))
            }
        };
        let isolation = Arc::new(Isolation {
            home: settings.home.clone(),
            run_as,
            bwrap: settings.bwrap,
            network: settings.network,
            netns: net.as_ref().map(|n| n.ns.clone()),
            cgroup,
            state: settings.state_dir(),
            helper: std::env::current_exe()
                .map_err(|e| AgentError::Settings(format!("finding the agent binary: {e}")))?,
        });
        isolation.prepare()?;
        let terminals = Terminals::new(
            isolation.clone(),
            TerminalSettings {
                shell: settings.shell.clone(),
                reattach_window: Duration::from_secs(settings.reattach_secs),
            },
        );
        let activity = idle::Activity::new();
        let router = server::router(server::AgentState::new(
            auth::AgentAuth::new(&key, &settings.sandbox_id),
            terminals.clone(),
            isolation.clone(),
            activity.clone(),
        ));
        Ok(Agent {
            router,
            isolation,
            terminals,
            activity,
            net: std::sync::Mutex::new(net),
            sync: std::sync::Mutex::new(None),
            settings,
        })
    }

    /// Watches the sandbox's limit counters and tells every terminal when a limit stopped
    /// something, so the user sees why.
    pub fn watch_limits(&self) {
        let Some(cg) = self.isolation.cgroup.clone() else {
            return;
        };
        let terminals = self.terminals.clone();
        let (mem_mb, pids) = (self.settings.memory_mb, self.settings.pids_max);
        tokio::spawn(async move {
            let mut seen = cg.counters();
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            // A fork bomb hits the limit thousands of times a second: say it once per burst.
            let quiet = Duration::from_secs(10);
            let mut told_pids: Option<tokio::time::Instant> = None;
            loop {
                tick.tick().await;
                let now = cg.counters();
                if now.oom_kills > seen.oom_kills {
                    tracing::warn!(
                        kills = now.oom_kills - seen.oom_kills,
                        "sandbox out of memory"
                    );
                    terminals.notice_all(
                        NoticeKind::MemoryLimit,
                        &format!("a process was killed: the sandbox's memory limit ({mem_mb} MiB) was reached"),
                    );
                }
                if now.pid_limit_hits > seen.pid_limit_hits
                    && told_pids.is_none_or(|t| t.elapsed() > quiet)
                {
                    told_pids = Some(tokio::time::Instant::now());
                    tracing::warn!("sandbox process limit reached");
                    terminals.notice_all(
                        NoticeKind::ProcessLimit,
                        &format!("the sandbox reached its process limit ({pids}); new processes are refused until some end (`kill -9 -1` ends every process of this terminal but its shell; a job that already shows Done may have left children behind)"),
                    );
                }
                seen = now;
            }
        });
    }

    /// Starts keeping the home and the user's drive in step, if the edge said where the
    /// drive is.
    pub fn start_sync(&self) {
        let (Some(url), Some(token)) = (&self.settings.sync_url, &self.settings.sync_token) else {
            tracing::info!("no drive to sync the home with (no --sync-url and --sync-token)");
            return;
        };
        let home = match sync::local::Home::open(self.settings.home.clone(), self.isolation.run_as)
        {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(error = %e, "the home cannot be opened: it is not synced");
                return;
            }
        };
        let s = sync::Sync::start(
            home,
            &self.settings.state_dir(),
            &sync::SyncSettings {
                url: url.clone(),
                token: token.clone(),
            },
            self.terminals.clone(),
        );
        *self.sync.lock().expect("sync lock") = Some(s);
    }

    /// Seconds of disuse after which the agent stops (0: never).
    pub fn idle_secs(&self) -> u64 {
        self.settings.idle_secs
    }

    /// Ends every process of the sandbox and releases its cgroup and home mount.
    pub async fn shutdown(&self) {
        // What the home changed last reaches the drive before the home goes.
        let sync = self.sync.lock().expect("sync lock").clone();
        if let Some(s) = sync {
            s.flush(Duration::from_secs(10)).await;
        }
        if let Some(cg) = &self.isolation.cgroup {
            cg.remove().await;
        }
        if self.settings.home_size_mb > 0 {
            isolation::unmount_home(&self.settings.home);
        }
        drop(self.net.lock().map(|mut n| n.take()));
    }
}
