//! The core's `Sandboxes` port over Fly Machines, and the provider's settings read from the
//! environment by name: one place for both hosts (the native server and the Worker).

use async_trait::async_trait;
use cloudos_core::ports::{AgentEndpoint, SandboxError, SandboxSpec, Sandboxes};

use crate::{FlyError, FlyProvider, FlySettings, MACHINES_API};

/// The names of the settings, the same on every host.
pub mod vars {
    /// The Fly API token (a secret; it stays with the edge).
    pub const TOKEN: &str = "FLY_API_TOKEN";
    /// The Fly app whose Machines run sandboxes.
    pub const APP: &str = "CLOUDOS_FLY_APP";
    /// Region of new Machines and volumes.
    pub const REGION: &str = "CLOUDOS_FLY_REGION";
    /// The agent image (`machines/agent/Dockerfile`, pushed to Fly's registry).
    pub const IMAGE: &str = "CLOUDOS_FLY_IMAGE";
    /// The Machines API.
    pub const API_URL: &str = "CLOUDOS_FLY_API_URL";
    /// The app's public URL (default `https://<app>.fly.dev`).
    pub const PUBLIC_URL: &str = "CLOUDOS_FLY_PUBLIC_URL";
    /// The edge's API as Machines reach it, for the home's sync (default: the edge's
    /// `CLOUDOS_PUBLIC_URL`; neither: homes are not synced).
    pub const SYNC_URL: &str = "CLOUDOS_SYNC_URL";
    /// The edge's public origin (the core's setting), the sync URL's default.
    pub const EDGE_PUBLIC_URL: &str = "CLOUDOS_PUBLIC_URL";
    /// Size of a new home volume, in GB.
    pub const VOLUME_GB: &str = "CLOUDOS_FLY_VOLUME_GB";
    /// Memory of a sandbox, MiB (shared with the local provider).
    pub const MEMORY_MB: &str = "CLOUDOS_SANDBOX_MEMORY_MB";
    /// CPUs of a sandbox (shared with the local provider; rounded up for a Machine).
    pub const CPUS: &str = "CLOUDOS_SANDBOX_CPUS";
    /// Seconds of disuse after which a sandbox's agent stops, and with it its Machine
    /// (shared with the local provider; 0: never).
    pub const IDLE_SECS: &str = "CLOUDOS_SANDBOX_IDLE_SECS";

    /// The app unless `APP` says otherwise.
    pub const DEFAULT_APP: &str = "cloudos-sandboxes";
    /// The region unless `REGION` says otherwise.
    pub const DEFAULT_REGION: &str = "fra";
    /// The image unless `IMAGE` says otherwise.
    pub const DEFAULT_IMAGE: &str = "registry.fly.io/cloudos-sandboxes:latest";
    /// A new home volume's size unless `VOLUME_GB` says otherwise.
    pub const DEFAULT_VOLUME_GB: u32 = 1;
    /// A sandbox's memory unless `MEMORY_MB` says otherwise.
    pub const DEFAULT_MEMORY_MB: u32 = 512;
}

impl FlySettings {
    /// The settings from named variables (`get` returns a variable's value, if set); a
    /// token is required, a number that does not parse is an error rather than a default.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<FlySettings, FlyError> {
        let get = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let text = |name: &str, default: &str| get(name).unwrap_or_else(|| default.to_owned());
        let number = |name: &str, default: f64| -> Result<f64, FlyError> {
            match get(name) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|n| *n > 0.0)
                    .ok_or_else(|| FlyError::Config(format!("{name} must be a positive number"))),
            }
        };
        let token = get(vars::TOKEN).ok_or_else(|| {
            FlyError::Config(format!("the fly sandbox provider needs {}", vars::TOKEN))
        })?;
        let app = text(vars::APP, vars::DEFAULT_APP);
        Ok(FlySettings {
            api_url: text(vars::API_URL, MACHINES_API),
            public_url: get(vars::PUBLIC_URL).unwrap_or_else(|| format!("https://{app}.fly.dev")),
            sync_url: get(vars::SYNC_URL).or_else(|| get(vars::EDGE_PUBLIC_URL)),
            token,
            region: text(vars::REGION, vars::DEFAULT_REGION),
            image: text(vars::IMAGE, vars::DEFAULT_IMAGE),
            memory_mb: number(vars::MEMORY_MB, vars::DEFAULT_MEMORY_MB.into())? as u32,
            cpus: number(vars::CPUS, 1.0)?.ceil() as u32,
            volume_gb: number(vars::VOLUME_GB, vars::DEFAULT_VOLUME_GB.into())?.ceil() as u32,
            idle_secs: match get(vars::IDLE_SECS) {
                None => cloudos_proto::terminal::DEFAULT_IDLE_SECS,
                Some(v) => v.trim().parse().map_err(|_| {
                    FlyError::Config(format!(
                        "{} must be a whole number of seconds",
                        vars::IDLE_SECS
                    ))
                })?,
            },
            app,
        })
    }
}

fn failed(e: FlyError) -> SandboxError {
    SandboxError::Failed(e.to_string())
}

/// reqwest's futures are not `Send` on wasm32 (they are JS promises); a Worker isolate runs
/// on one thread, so they are wrapped there to meet the port's bound.
#[cfg(target_arch = "wasm32")]
fn on_host<F: std::future::Future>(f: F) -> send_wrapper::SendWrapper<F> {
    send_wrapper::SendWrapper::new(f)
}

#[cfg(not(target_arch = "wasm32"))]
fn on_host<F: std::future::Future>(f: F) -> F {
    f
}

#[async_trait]
impl Sandboxes for FlyProvider {
    fn provider(&self) -> &'static str {
        "fly"
    }

    async fn start(&self, spec: &SandboxSpec) -> Result<AgentEndpoint, SandboxError> {
        let e = on_host(FlyProvider::start(
            self,
            &spec.id,
            &spec.user_id,
            &spec.agent_key_hex,
            &spec.sync_token,
            spec.machine_id.as_deref(),
        ))
        .await
        .map_err(failed)?;
        Ok(AgentEndpoint {
            url: e.url,
            headers: e.headers,
            machine_id: Some(e.machine_id),
        })
    }

    async fn stop(&self, spec: &SandboxSpec) -> Result<(), SandboxError> {
        match &spec.machine_id {
            Some(id) => on_host(FlyProvider::stop(self, id)).await.map_err(failed),
            None => Ok(()),
        }
    }

    async fn post_to_agent(
        &self,
        spec: &SandboxSpec,
        path: &str,
        bearer: &str,
        body: Vec<u8>,
    ) -> Result<Option<u16>, SandboxError> {
        match &spec.machine_id {
            Some(id) => on_host(FlyProvider::post_to_agent(self, id, path, bearer, body))
                .await
                .map_err(failed),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(pairs: &[(&str, &str)]) -> Result<FlySettings, FlyError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        FlySettings::from_vars(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_need_only_a_token() {
        assert!(matches!(settings(&[]), Err(FlyError::Config(_))));
        let s = settings(&[(vars::TOKEN, "t"), (vars::APP, "box")]).unwrap();
        assert_eq!(s.public_url, "https://box.fly.dev");
        assert_eq!(s.api_url, MACHINES_API);
        assert_eq!((s.memory_mb, s.cpus, s.volume_gb), (512, 1, 1));
    }

    #[test]
    fn numbers_are_checked_and_cpus_rounded_up() {
        let s = settings(&[(vars::TOKEN, "t"), (vars::CPUS, "1.5")]).unwrap();
        assert_eq!(s.cpus, 2);
        assert!(matches!(
            settings(&[(vars::TOKEN, "t"), (vars::MEMORY_MB, "lots")]),
            Err(FlyError::Config(m)) if m.contains(vars::MEMORY_MB)
        ));
    }
}
