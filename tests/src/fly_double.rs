//! A TEST DOUBLE of the Fly Machines API (no emulator of it exists anywhere). It serves the
//! endpoints the Fly provider uses, checks paths, bodies and the bearer token the way the
//! public API does, records every call, and "runs" a Machine by starting a real
//! `cloudos-agent` with the Machine's environment, its volume as a local directory. Its
//! "Fly proxy" (the app's public URL) routes each connection by its `fly-force-instance-id`
//! header to that Machine's agent, and refuses a connection without one, as Fly's does for an
//! app whose Machines are all sandboxes of different users.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use cloudos_fly::{CreateMachine, CreateVolume, Machine, MachineState, Volume};
use serde_json::json;

/// One recorded call: method, path (with query), and whether it carried the right token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub authorized: bool,
}

struct FakeMachine {
    machine: Machine,
    config: cloudos_fly::MachineConfig,
    agent: Option<Child>,
    /// Where its agent listens while it runs.
    port: u16,
}

#[derive(Default)]
struct Inner {
    calls: Vec<Call>,
    machines: HashMap<String, FakeMachine>,
    volumes: Vec<Volume>,
    created: Vec<CreateMachine>,
    next: u32,
    /// The machine each proxied connection went to.
    routed: Vec<String>,
}

#[derive(Clone)]
struct Double {
    inner: Arc<Mutex<Inner>>,
    app: String,
    token: String,
    /// Where each volume's files live.
    dir: PathBuf,
}

/// The running double.
pub struct FlyDouble {
    pub url: String,
    /// What the edge must use as the app's public URL: the double's "Fly proxy".
    pub public_url: String,
    double: Double,
    _tmp: tempfile::TempDir,
}

impl FlyDouble {
    /// Starts the double for `app`, accepting only `token`.
    pub async fn start(app: &str, token: &str) -> FlyDouble {
        let tmp = tempfile::tempdir().unwrap();
        let double = Double {
            inner: Arc::default(),
            app: app.to_owned(),
            token: token.to_owned(),
            dir: tmp.path().to_owned(),
        };
        let router = Router::new()
            .route(
                "/v1/apps/{app}/machines",
                post(create_machine).get(list_machines),
            )
            .route(
                "/v1/apps/{app}/machines/{id}",
                get(get_machine).delete(destroy_machine),
            )
            .route("/v1/apps/{app}/machines/{id}/start", post(start_machine))
            .route("/v1/apps/{app}/machines/{id}/stop", post(stop_machine))
            .route("/v1/apps/{app}/machines/{id}/wait", get(wait))
            .route(
                "/v1/apps/{app}/volumes",
                get(list_volumes).post(create_volume),
            )
            .fallback(unexpected)
            .with_state(double.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy_addr = proxy.local_addr().unwrap();
        tokio::spawn(fly_proxy(proxy, double.clone()));
        FlyDouble {
            url: format!("http://{addr}/v1"),
            public_url: format!("http://{proxy_addr}"),
            double,
            _tmp: tmp,
        }
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.double.inner.lock().unwrap().calls.clone()
    }

    /// Bodies of machine creations so far.
    pub fn created(&self) -> Vec<CreateMachine> {
        self.double.inner.lock().unwrap().created.clone()
    }

    /// The state of a machine, if it exists.
    pub fn state(&self, id: &str) -> Option<MachineState> {
        self.double
            .inner
            .lock()
            .unwrap()
            .machines
            .get(id)
            .map(|m| m.machine.state)
    }

    /// The machine each connection through the "Fly proxy" was routed to.
    pub fn routed(&self) -> Vec<String> {
        self.double.inner.lock().unwrap().routed.clone()
    }

    /// The number of volumes created.
    pub fn volumes(&self) -> usize {
        self.double.inner.lock().unwrap().volumes.len()
    }
}

impl Drop for FlyDouble {
    fn drop(&mut self) {
        let mut inner = self.double.inner.lock().unwrap();
        for m in inner.machines.values_mut() {
            stop_agent(m);
        }
    }
}

fn problem(status: StatusCode, error: &str) -> Response {
    (status, Json(json!({ "error": error }))).into_response()
}

impl Double {
    /// Records the call; refuses a wrong app or token as the API does.
    fn check(
        &self,
        method: &str,
        path: String,
        headers: &HeaderMap,
        app: &str,
    ) -> Option<Response> {
        let authorized = headers.get("authorization").and_then(|v| v.to_str().ok())
            == Some(format!("Bearer {}", self.token).as_str());
        self.inner.lock().unwrap().calls.push(Call {
            method: method.to_owned(),
            path,
            authorized,
        });
        if !authorized {
            return Some(problem(StatusCode::UNAUTHORIZED, "unauthorized"));
        }
        if app != self.app {
            return Some(problem(StatusCode::NOT_FOUND, "app not found"));
        }
        None
    }

    /// "Boots" a machine: a real agent with the machine's environment.
    fn boot(&self, m: &mut FakeMachine) {
        let volume = m
            .config
            .mounts
            .first()
            .map(|v| self.dir.join(&v.volume))
            .unwrap_or_else(|| self.dir.join("no-volume"));
        // The double's network: a port of its own instead of 0.0.0.0:7681 in a VM, behind
        // the double's "Fly proxy"; the volume's directory as the mount.
        m.port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], m.port));
        let mut cmd = Command::new(crate::agent::agent_bin());
        cmd.envs(&m.config.env)
            .env("CLOUDOS_AGENT_ADDR", addr.to_string())
            .env("CLOUDOS_AGENT_HOME", volume.join("home"))
            .env("CLOUDOS_AGENT_STATE", volume.join("state"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        m.agent = Some(cmd.spawn().expect("starting the machine's agent"));
        // Like the real wait, "started" means the process runs; the agent needs a moment to
        // listen, which the edge's connect retries cover in production (and this wait here).
        for _ in 0..100 {
            if std::net::TcpStream::connect(addr).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        m.machine.state = MachineState::Started;
        m.machine.instance_id = format!("inst-{}", m.machine.id);
    }
}

/// The double's "Fly proxy": reads a request's head, finds the Machine its
/// `fly-force-instance-id` names, and joins the connection to that Machine's agent (HTTP and
/// WebSocket alike). Without the header, or for a Machine that is not running, 502.
async fn fly_proxy(listener: tokio::net::TcpListener, double: Double) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    while let Ok((mut conn, _)) = listener.accept().await {
        let double = double.clone();
        tokio::spawn(async move {
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
                match conn.read(&mut buf).await {
                    Ok(n) if n > 0 => head.extend_from_slice(&buf[..n]),
                    _ => return,
                }
            }
            let text = String::from_utf8_lossy(&head).into_owned();
            let wanted = text.lines().find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.trim()
                    .eq_ignore_ascii_case("fly-force-instance-id")
                    .then(|| value.trim().to_owned())
            });
            let port = {
                let mut inner = double.inner.lock().unwrap();
                let port = wanted.as_ref().and_then(|id| {
                    inner
                        .machines
                        .get(id)
                        .filter(|m| m.agent.is_some())
                        .map(|m| m.port)
                });
                if let (Some(id), Some(_)) = (&wanted, port) {
                    inner.routed.push(id.clone());
                }
                port
            };
            let Some(port) = port else {
                let body = format!("no running machine for fly-force-instance-id {wanted:?}");
                let res = format!(
                    "HTTP/1.1 502 Bad Gateway\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(res.as_bytes()).await;
                return;
            };
            let Ok(mut agent) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
                return;
            };
            if agent.write_all(&head).await.is_ok() {
                let _ = tokio::io::copy_bidirectional(&mut conn, &mut agent).await;
            }
        });
    }
}

fn stop_agent(m: &mut FakeMachine) {
    if let Some(mut c) = m.agent.take() {
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let _ = c.wait();
    }
}

async fn create_machine(
    State(d): State<Double>,
    Path(app): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if let Some(r) = d.check("POST", format!("/apps/{app}/machines"), &headers, &app) {
        return r;
    }
    let Ok(req) = serde_json::from_str::<CreateMachine>(&body) else {
        return problem(StatusCode::BAD_REQUEST, "invalid machine config");
    };
    if req.config.image.is_empty() || req.region.is_empty() {
        return problem(StatusCode::BAD_REQUEST, "image and region are required");
    }
    let mut inner = d.inner.lock().unwrap();
    for mount in &req.config.mounts {
        match inner.volumes.iter_mut().find(|v| v.id == mount.volume) {
            Some(v) if v.attached_machine_id.is_some() => {
                return problem(
                    StatusCode::CONFLICT,
                    "volume is attached to another machine",
                )
            }
            Some(_) => {}
            None => return problem(StatusCode::NOT_FOUND, "volume not found"),
        }
    }
    inner.next += 1;
    let id = format!("m{:04}", inner.next);
    for mount in &req.config.mounts {
        if let Some(v) = inner.volumes.iter_mut().find(|v| v.id == mount.volume) {
            v.attached_machine_id = Some(id.clone());
        }
    }
    let mut m = FakeMachine {
        machine: Machine {
            id: id.clone(),
            name: req.name.clone(),
            state: MachineState::Created,
            region: req.region.clone(),
            instance_id: String::new(),
        },
        config: req.config.clone(),
        agent: None,
        port: 0,
    };
    // A created machine starts at once, as on Fly.
    d.boot(&mut m);
    let out = m.machine.clone();
    inner.created.push(req);
    inner.machines.insert(id, m);
    Json(out).into_response()
}

async fn list_machines(
    State(d): State<Double>,
    Path(app): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = d.check("GET", format!("/apps/{app}/machines"), &headers, &app) {
        return r;
    }
    let inner = d.inner.lock().unwrap();
    let all: Vec<Machine> = inner.machines.values().map(|m| m.machine.clone()).collect();
    Json(all).into_response()
}

async fn get_machine(
    State(d): State<Double>,
    Path((app, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = d.check("GET", format!("/apps/{app}/machines/{id}"), &headers, &app) {
        return r;
    }
    match d.inner.lock().unwrap().machines.get(&id) {
        Some(m) if m.machine.state != MachineState::Destroyed => {
            Json(m.machine.clone()).into_response()
        }
        _ => problem(StatusCode::NOT_FOUND, "machine not found"),
    }
}

async fn start_machine(
    State(d): State<Double>,
    Path((app, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = d.check(
        "POST",
        format!("/apps/{app}/machines/{id}/start"),
        &headers,
        &app,
    ) {
        return r;
    }
    let mut inner = d.inner.lock().unwrap();
    let Some(m) = inner.machines.get_mut(&id) else {
        return problem(StatusCode::NOT_FOUND, "machine not found");
    };
    if m.machine.state != MachineState::Started {
        d.boot(m);
    }
    Json(json!({"previous_state": "stopped"})).into_response()
}

async fn stop_machine(
    State(d): State<Double>,
    Path((app, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = d.check(
        "POST",
        format!("/apps/{app}/machines/{id}/stop"),
        &headers,
        &app,
    ) {
        return r;
    }
    let mut inner = d.inner.lock().unwrap();
    let Some(m) = inner.machines.get_mut(&id) else {
        return problem(StatusCode::NOT_FOUND, "machine not found");
    };
    stop_agent(m);
    m.machine.state = MachineState::Stopped;
    Json(json!({"ok": true})).into_response()
}

#[derive(serde::Deserialize)]
struct WaitQuery {
    state: String,
    timeout: Option<u32>,
    instance_id: Option<String>,
}

async fn wait(
    State(d): State<Double>,
    Path((app, id)): Path<(String, String)>,
    Query(q): Query<WaitQuery>,
    headers: HeaderMap,
) -> Response {
    let path = format!(
        "/apps/{app}/machines/{id}/wait?state={}&timeout={}{}",
        q.state,
        q.timeout.unwrap_or(60),
        q.instance_id
            .as_ref()
            .map(|i| format!("&instance_id={i}"))
            .unwrap_or_default()
    );
    if let Some(r) = d.check("GET", path, &headers, &app) {
        return r;
    }
    if q.timeout.is_some_and(|t| t > 60) {
        return problem(StatusCode::BAD_REQUEST, "timeout must be at most 60");
    }
    let inner = d.inner.lock().unwrap();
    let Some(m) = inner.machines.get(&id) else {
        return problem(StatusCode::NOT_FOUND, "machine not found");
    };
    // The public API wants the instance for stopped-waits.
    if q.state == "stopped" && q.instance_id.as_deref() != Some(m.machine.instance_id.as_str()) {
        return problem(
            StatusCode::BAD_REQUEST,
            "instance_id is required for state=stopped",
        );
    }
    if m.machine.state.as_str() == q.state {
        Json(json!({"ok": true})).into_response()
    } else {
        problem(StatusCode::REQUEST_TIMEOUT, "deadline exceeded")
    }
}

async fn destroy_machine(
    State(d): State<Double>,
    Path((app, id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let force = q.get("force").map(String::as_str) == Some("true");
    let path = format!(
        "/apps/{app}/machines/{id}{}",
        if force { "?force=true" } else { "" }
    );
    if let Some(r) = d.check("DELETE", path, &headers, &app) {
        return r;
    }
    let mut inner = d.inner.lock().unwrap();
    let Some(m) = inner.machines.get_mut(&id) else {
        return problem(StatusCode::NOT_FOUND, "machine not found");
    };
    if m.machine.state == MachineState::Started && !force {
        return problem(StatusCode::PRECONDITION_FAILED, "machine is running");
    }
    stop_agent(m);
    m.machine.state = MachineState::Destroyed;
    for v in inner.volumes.iter_mut() {
        if v.attached_machine_id.as_deref() == Some(id.as_str()) {
            v.attached_machine_id = None;
        }
    }
    Json(json!({"ok": true})).into_response()
}

async fn list_volumes(
    State(d): State<Double>,
    Path(app): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = d.check("GET", format!("/apps/{app}/volumes"), &headers, &app) {
        return r;
    }
    Json(d.inner.lock().unwrap().volumes.clone()).into_response()
}

async fn create_volume(
    State(d): State<Double>,
    Path(app): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if let Some(r) = d.check("POST", format!("/apps/{app}/volumes"), &headers, &app) {
        return r;
    }
    let Ok(req) = serde_json::from_str::<CreateVolume>(&body) else {
        return problem(StatusCode::BAD_REQUEST, "invalid volume");
    };
    let valid = req.name.len() <= 30
        && req
            .name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid || req.size_gb == 0 {
        return problem(StatusCode::BAD_REQUEST, "invalid volume name or size");
    }
    let mut inner = d.inner.lock().unwrap();
    inner.next += 1;
    let v = Volume {
        id: format!("vol_{:04}", inner.next),
        name: req.name,
        region: req.region,
        state: "created".into(),
        attached_machine_id: None,
    };
    inner.volumes.push(v.clone());
    Json(v).into_response()
}

async fn unexpected(State(d): State<Double>, req: axum::extract::Request) -> Response {
    d.inner.lock().unwrap().calls.push(Call {
        method: req.method().to_string(),
        path: format!("UNEXPECTED {}", req.uri()),
        authorized: false,
    });
    problem(
        StatusCode::NOT_FOUND,
        "no such endpoint in the Machines API double",
    )
}
