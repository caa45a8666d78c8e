//! Command line and environment of `cloudos` (every flag has an `env =`).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use cloudos_core::config::vars;
use cloudos_proto::terminal::SandboxNetwork;

/// Cloud OS: a desktop in the browser over your own cloud file system.
#[derive(Debug, Parser)]
#[command(name = "cloudos", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// What to run.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API and the desktop.
    Serve(Box<ServeArgs>),
    /// The local libSQL endpoint for `wrangler dev`.
    #[command(subcommand)]
    Db(DbCommand),
}

/// `cloudos db …`.
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Serve an embedded libSQL database over Hrana/HTTP (v2, v3): a development stand-in for Turso.
    Serve(DbServeArgs),
}

/// Settings of `cloudos db serve`.
#[derive(Debug, Clone, Args)]
pub struct DbServeArgs {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, env = "CLOUDOS_DB_ADDR", default_value = "127.0.0.1:8081")]
    pub addr: SocketAddr,
    /// Directory of the database file (`cloudos.db`).
    #[arg(long, env = "CLOUDOS_DB_DATA", default_value = "./data-edge")]
    pub data: PathBuf,
    /// Every statement must carry `Authorization: Bearer <token>`, as Turso requires.
    #[arg(long, env = "CLOUDOS_DB_AUTH_TOKEN", hide_env_values = true)]
    pub auth_token: Option<String>,
    /// Serve without a token (anything that can reach the address can read and write the
    /// database); refused unless given explicitly.
    #[arg(long, default_value_t = false)]
    pub no_auth: bool,
}

/// Where blobs live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BlobBackend {
    /// `<data>/blobs` on the local disk.
    Local,
    /// Any S3 API (`--s3-*`).
    S3,
}

/// Settings of `cloudos serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, env = "CLOUDOS_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Data directory: database, blobs, generated secret. A fresh one is a fresh install.
    #[arg(long, env = "CLOUDOS_DATA", default_value = "./data")]
    pub data: PathBuf,
    /// Blob backend.
    #[arg(long, env = "CLOUDOS_BLOBS", value_enum, default_value = "local")]
    pub blobs: BlobBackend,
    /// S3 endpoint URL (e.g. http://127.0.0.1:9000); AWS when unset.
    #[arg(long, env = "CLOUDOS_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// S3 bucket (created when missing).
    #[arg(long, env = "CLOUDOS_S3_BUCKET", default_value = "cloudos")]
    pub s3_bucket: String,
    /// S3 region.
    #[arg(long, env = "CLOUDOS_S3_REGION", default_value = "us-east-1")]
    pub s3_region: String,
    /// S3 access key id.
    #[arg(
        long,
        env = "AWS_ACCESS_KEY_ID",
        default_value = "",
        hide_env_values = true
    )]
    pub s3_access_key: String,
    /// S3 secret key.
    #[arg(
        long,
        env = "AWS_SECRET_ACCESS_KEY",
        default_value = "",
        hide_env_values = true
    )]
    pub s3_secret_key: String,
    /// Signing secret for tokens and download links; generated into the data dir when unset.
    #[arg(long, env = cloudos_core::config::SECRET_VAR, hide_env_values = true)]
    pub secret: Option<String>,
    /// Storage quota of a new user, in bytes [default: 10737418240].
    #[arg(long, env = vars::DEFAULT_QUOTA_BYTES)]
    pub default_quota_bytes: Option<String>,
    /// Lifetime of access tokens, in seconds [default: 43200].
    #[arg(long, env = vars::TOKEN_TTL_SECS)]
    pub token_ttl_secs: Option<String>,
    /// Longest lifetime of a signed download URL, in seconds [default: 300].
    #[arg(long, env = vars::DOWNLOAD_TTL_SECS)]
    pub download_ttl_secs: Option<String>,
    /// Failed logins per email within the window before 429 [default: 5].
    #[arg(long, env = vars::LOGIN_MAX_FAILURES)]
    pub login_max_failures: Option<String>,
    /// Files and folders one user may have [default: 100000].
    #[arg(long, env = vars::MAX_ITEMS_PER_USER)]
    pub max_items_per_user: Option<String>,
    /// Failed logins from one client (address; IPv6 /64) within the window before 429,
    /// whatever the emails [default: 100].
    #[arg(long, env = vars::LOGIN_MAX_CLIENT_FAILURES)]
    pub login_max_client_failures: Option<String>,
    /// The window of the login throttle, in seconds [default: 900].
    #[arg(long, env = vars::LOGIN_WINDOW_SECS)]
    pub login_window_secs: Option<String>,
    /// The address users reach the desktop at (e.g. https://os.example.com), for links in
    /// answers [default: the request's Host].
    #[arg(long, env = vars::PUBLIC_URL)]
    pub public_url: Option<String>,
    /// A bearer token GET /metrics requires (at least 16 bytes) [default: none, open].
    #[arg(long, env = vars::METRICS_TOKEN, hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Seconds between sweeps (Trash expiry, version retention, orphans; 0: only at start).
    #[arg(long, env = "CLOUDOS_SWEEP_INTERVAL_SECS", default_value_t = 3600)]
    pub sweep_interval_secs: u64,
    /// Age in seconds an unreferenced blob must reach before the sweep removes it
    /// [default: 3600].
    #[arg(long, env = vars::ORPHAN_GRACE_SECS)]
    pub orphan_grace_secs: Option<String>,
    /// How long deleted files and folders wait in the Trash, in seconds [default: 2592000,
    /// 30 days].
    #[arg(long, env = vars::TRASH_KEEP_SECS)]
    pub trash_keep_secs: Option<String>,
    /// How long every version of a file is kept before older ones are thinned to the last of
    /// each day, in seconds [default: 2592000, 30 days].
    #[arg(long, env = vars::HISTORY_KEEP_ALL_SECS)]
    pub history_keep_all_secs: Option<String>,
    /// Directory of the built desktop (served at `/`); a placeholder page when absent.
    #[arg(long, env = "CLOUDOS_WEB_DIR", default_value = "web/dist")]
    pub web_dir: PathBuf,
    #[command(flatten)]
    pub sandbox: SandboxArgs,
}

impl ServeArgs {
    /// The value a flag or the environment gave the core setting `var`. The core parses and
    /// checks it (`Config::from_vars`), the same way as on the Worker.
    pub fn core_var(&self, var: &str) -> Option<String> {
        match var {
            vars::DEFAULT_QUOTA_BYTES => self.default_quota_bytes.clone(),
            vars::TOKEN_TTL_SECS => self.token_ttl_secs.clone(),
            vars::DOWNLOAD_TTL_SECS => self.download_ttl_secs.clone(),
            vars::LOGIN_MAX_FAILURES => self.login_max_failures.clone(),
            vars::LOGIN_MAX_CLIENT_FAILURES => self.login_max_client_failures.clone(),
            vars::MAX_ITEMS_PER_USER => self.max_items_per_user.clone(),
            vars::LOGIN_WINDOW_SECS => self.login_window_secs.clone(),
            vars::ORPHAN_GRACE_SECS => self.orphan_grace_secs.clone(),
            vars::TRASH_KEEP_SECS => self.trash_keep_secs.clone(),
            vars::HISTORY_KEEP_ALL_SECS => self.history_keep_all_secs.clone(),
            vars::PUBLIC_URL => self.public_url.clone(),
            vars::METRICS_TOKEN => self.metrics_token.clone(),
            _ => None,
        }
    }
}

/// The flag that sets a core variable: `CLOUDOS_TOKEN_TTL_SECS` → `--token-ttl-secs`.
pub fn flag_of(var: &str) -> String {
    let name = var.strip_prefix("CLOUDOS_").unwrap_or(var);
    format!("--{}", name.to_lowercase().replace('_', "-"))
}

/// Who runs sandboxes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SandboxProvider {
    /// Isolated `cloudos-agent` processes on this machine.
    Local,
    /// Fly Machines (settings from `FLY_API_TOKEN` and `CLOUDOS_FLY_*`, as on the Worker).
    Fly,
    /// No terminals on this host (`POST /sandbox` answers 503).
    None,
}

/// Terminal sandboxes: the local provider's limits, or Fly Machines.
#[derive(Debug, Clone, Args)]
pub struct SandboxArgs {
    /// Where sandboxes run.
    #[arg(
        long,
        env = "CLOUDOS_SANDBOX_PROVIDER",
        value_enum,
        default_value = "local"
    )]
    pub sandbox_provider: SandboxProvider,
    /// The agent binary (default: `cloudos-agent` next to `cloudos`).
    #[arg(long, env = "CLOUDOS_AGENT_BIN")]
    pub agent_bin: Option<PathBuf>,
    /// Run sandboxes under bubblewrap (namespaces; needs `bwrap`).
    #[arg(long, env = "CLOUDOS_SANDBOX_BWRAP", default_value_t = true, action = clap::ArgAction::Set)]
    pub sandbox_bwrap: bool,
    /// Memory, process and CPU limits through cgroups (needs root).
    #[arg(long, env = "CLOUDOS_SANDBOX_LIMITS", default_value_t = true, action = clap::ArgAction::Set)]
    pub sandbox_limits: bool,
    /// Sandboxes' network: `outbound` (a namespace of their own, out through slirp4netns,
    /// never the host's loopback or private ranges; needs root), `none` (loopback only) or
    /// `host` (the host's network: an explicit opt-out).
    #[arg(long, env = "CLOUDOS_SANDBOX_NETWORK", default_value_t = SandboxNetwork::Outbound)]
    pub sandbox_network: SandboxNetwork,
    /// Memory limit per sandbox, in MiB.
    #[arg(long, env = "CLOUDOS_SANDBOX_MEMORY_MB", default_value_t = 512)]
    pub sandbox_memory_mb: u64,
    /// Process limit per sandbox.
    #[arg(long, env = "CLOUDOS_SANDBOX_PIDS_MAX", default_value_t = 256)]
    pub sandbox_pids_max: u64,
    /// CPU limit per sandbox, in cores.
    #[arg(long, env = "CLOUDOS_SANDBOX_CPUS", default_value_t = 1.0)]
    pub sandbox_cpus: f64,
    /// Room in MiB a sandbox's home has beyond the user's drive quota, for what stays local
    /// (caches, build output): the home is an ext4 image of quota + this (sparse; only when
    /// running as root; 0: no image, no size limit).
    #[arg(long, env = "CLOUDOS_SANDBOX_HOME_MB", default_value_t = 1024)]
    pub sandbox_home_mb: u64,
    /// Seconds a terminal without clients keeps its shell.
    #[arg(long, env = "CLOUDOS_SANDBOX_REATTACH_SECS", default_value_t = 600)]
    pub sandbox_reattach_secs: u64,
    /// Seconds without an attached terminal or a running command after which a sandbox's
    /// agent stops (its shells end, its home stays; the next attach starts it; 0: never).
    #[arg(long, env = "CLOUDOS_SANDBOX_IDLE_SECS", default_value_t = cloudos_proto::terminal::DEFAULT_IDLE_SECS)]
    pub sandbox_idle_secs: u64,
    /// Running sandboxes at most on this machine (then 429).
    #[arg(long, env = "CLOUDOS_SANDBOX_MAX", default_value_t = 32)]
    pub sandbox_max: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every core setting has its flag, named after its variable, that reaches the core: a
    /// setting added to the core without a flag here fails this test.
    #[test]
    fn every_core_setting_has_a_flag() {
        for setting in cloudos_core::config::SETTINGS {
            let flag = flag_of(setting.var);
            let cli = Cli::try_parse_from(["cloudos", "serve", flag.as_str(), "42"])
                .unwrap_or_else(|e| panic!("{flag} for {}: {e}", setting.var));
            let Command::Serve(args) = cli.command else {
                panic!("serve");
            };
            assert_eq!(
                args.core_var(setting.var).as_deref(),
                Some("42"),
                "{flag} reaches {}",
                setting.var
            );
        }
    }
}
