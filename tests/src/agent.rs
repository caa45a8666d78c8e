//! A real `cloudos-agent` on a free port, tokens for it, and a terminal client that reads
//! like a person at a keyboard: type, then wait to see something on the screen.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cloudos_proto::terminal::{
    AgentClaims, ClientControl, ExecRequest, ExecResponse, Role, SandboxNetwork, ServerControl,
    AGENT_AUDIENCE,
};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::spawn_until_listening;

/// The URL of `WS /terminal/:sandbox/attach` on `base` for a user's `token`, plus `extra`
/// query parameters (`&share=…`, `&session=…`).
pub fn terminal_url(base: &str, token: &str, sandbox: &str, extra: &str) -> String {
    format!(
        "{}/terminal/{sandbox}/attach?token={token}{extra}",
        base.replacen("http", "ws", 1)
    )
}

/// The HTTP status a WebSocket handshake to `url` was refused with (panics if it opened).
pub async fn refused(url: &str) -> u16 {
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => res.status().as_u16(),
        other => panic!(
            "expected a refusal before the upgrade, got {:?}",
            other.map(|_| ())
        ),
    }
}

/// The `cloudos-agent` binary next to the test executables (override with `CLOUDOS_AGENT_BIN`).
pub fn agent_bin() -> PathBuf {
    if let Ok(p) = std::env::var("CLOUDOS_AGENT_BIN") {
        return PathBuf::from(p);
    }
    crate::cloudos_bin().with_file_name("cloudos-agent")
}

/// How to start an agent.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    pub bwrap: bool,
    pub network: SandboxNetwork,
    pub limits: bool,
    pub memory_mb: u64,
    pub pids_max: u64,
    pub cpus: f64,
    pub home_size_mb: u64,
    pub reattach_secs: u64,
    /// Seconds of disuse after which the agent stops by itself (0: never).
    pub idle_secs: u64,
    /// Reuse this directory for the home and its image (a "restarted" sandbox).
    pub dir: Option<PathBuf>,
    /// Run the agent itself as this uid (and gid), as on a Fly Machine where the agent and
    /// the shells share one user.
    pub agent_uid: Option<u32>,
}

impl Default for AgentOptions {
    fn default() -> Self {
        AgentOptions {
            bwrap: true,
            network: SandboxNetwork::None,
            limits: true,
            memory_mb: 256,
            pids_max: 128,
            cpus: 1.0,
            home_size_mb: 0,
            reattach_secs: 600,
            idle_secs: 0,
            dir: None,
            agent_uid: None,
        }
    }
}

/// A started agent; stopped (SIGTERM, so it releases its cgroup and mount) on drop.
pub struct TestAgent {
    pub base: String,
    pub sandbox_id: String,
    pub dir: PathBuf,
    key: Vec<u8>,
    child: Option<Child>,
    _tmp: Option<tempfile::TempDir>,
    logs: Arc<Mutex<Vec<String>>>,
}

impl TestAgent {
    /// Starts an agent for a new sandbox id.
    pub fn start(opts: AgentOptions) -> Self {
        Self::try_start(opts).expect("starting cloudos-agent")
    }

    /// Starts an agent, or says why it did not start.
    pub fn try_start(opts: AgentOptions) -> anyhow::Result<Self> {
        let (tmp, dir) = match opts.dir.clone() {
            Some(d) => (None, d),
            None => {
                let t = tempfile::tempdir().unwrap();
                let d = t.path().to_owned();
                (Some(t), d)
            }
        };
        crate::traversable(&dir);
        let sandbox_id = uuid::Uuid::new_v4().simple().to_string();
        let key: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(37) ^ 0x5a).collect();
        let mut cmd = Command::new(agent_bin());
        // The key goes through the environment, as the edge's providers pass it.
        cmd.args(["--addr", "127.0.0.1:0", "--sandbox-id", &sandbox_id])
            .env("CLOUDOS_AGENT_KEY", hex::encode(&key))
            .arg("--home")
            .arg(dir.join("home"))
            .arg("--state")
            .arg(dir.join("state"))
            .args(["--network", &opts.network.to_string()])
            .args(["--memory-mb", &opts.memory_mb.to_string()])
            .args(["--pids-max", &opts.pids_max.to_string()])
            .args(["--cpus", &opts.cpus.to_string()])
            .args(["--reattach-secs", &opts.reattach_secs.to_string()])
            .args(["--idle-secs", &opts.idle_secs.to_string()])
            .env("RUST_LOG", "info")
            .env("RUST_BACKTRACE", "0")
            // A file, not a pipe nobody reads (which could fill and stall the agent).
            .stderr(std::fs::File::create(dir.join("agent.stderr"))?);
        if opts.bwrap {
            cmd.arg("--bwrap");
        }
        if let Some(uid) = opts.agent_uid {
            use std::os::unix::process::CommandExt;
            for path in [dir.clone(), dir.join("agent.stderr")] {
                std::os::unix::fs::chown(&path, Some(uid), Some(uid))?;
            }
            cmd.uid(uid).gid(uid);
        }
        if opts.limits {
            cmd.arg("--limits");
        }
        if opts.home_size_mb > 0 {
            cmd.args(["--home-size-mb", &opts.home_size_mb.to_string()])
                .arg("--home-image")
                .arg(dir.join("home.img"));
        }
        let (child, base, logs) = spawn_until_listening(cmd, "cloudos-agent").map_err(|e| {
            let stderr = std::fs::read_to_string(dir.join("agent.stderr")).unwrap_or_default();
            anyhow::anyhow!("{e:#}\nits stderr: {stderr}")
        })?;
        Ok(TestAgent {
            base,
            sandbox_id,
            dir,
            key,
            child: Some(child),
            _tmp: tmp,
            logs,
        })
    }

    /// The agent's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Log lines so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// A token for this sandbox, as the edge would sign it.
    pub fn token(&self, role: Role) -> String {
        self.token_for(&self.sandbox_id, role)
    }

    /// A token for another sandbox, signed with this one's key.
    pub fn token_for(&self, sandbox_id: &str, role: Role) -> String {
        self.token_with(sandbox_id, role, vec![], None)
    }

    /// A token resting on `grants` that ends its socket at `until` (Unix seconds).
    pub fn granted(&self, role: Role, grants: &[&str], until: Option<u64>) -> String {
        let grants = grants.iter().map(|g| g.to_string()).collect();
        self.token_with(&self.sandbox_id, role, grants, until)
    }

    fn token_with(
        &self,
        sandbox_id: &str,
        role: Role,
        grants: Vec<String>,
        until: Option<u64>,
    ) -> String {
        let exp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 600;
        cloudos_agent::auth::sign(
            &self.key,
            &AgentClaims {
                sub: "user-1".into(),
                sbx: sandbox_id.into(),
                role,
                exp,
                aud: AGENT_AUDIENCE.into(),
                grants,
                until,
            },
        )
    }

    /// The attach URL of terminal `session`.
    pub fn attach_url(&self, token: &str, session: &str, extra: &str) -> String {
        format!(
            "{}/attach?token={token}&session={session}{extra}",
            self.base.replacen("http", "ws", 1)
        )
    }

    /// Attaches to terminal `session` with a token of `role`.
    pub async fn attach(&self, role: Role, session: &str) -> Term {
        Term::connect(&self.attach_url(&self.token(role), session, "")).await
    }

    /// Runs a command through `POST /exec`.
    pub async fn exec(&self, argv: &[&str]) -> ExecResponse {
        let res = crate::http_client()
            .post(format!("{}/exec", self.base))
            .bearer_auth(self.token(Role::Driver))
            .json(&ExecRequest {
                argv: argv.iter().map(|s| s.to_string()).collect(),
                cwd: None,
                env: vec![],
                timeout_secs: Some(20),
                stdin: None,
            })
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "exec {argv:?}");
        res.json().await.unwrap()
    }

    /// Sends SIGTERM and waits for the agent to exit.
    /// Waits up to `timeout` for the agent to exit by itself; its exit status if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let c = self.child.as_mut()?;
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = c.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Stops the agent as the edge does (SIGTERM), killing it if it takes over 10 s.
    pub fn stop(&mut self) {
        let Some(pid) = self.child.as_ref().map(Child::id) else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        if self.wait_exit(Duration::from_secs(10)).is_none() {
            if let Some(c) = self.child.as_mut() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        self.child = None;
    }
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        self.stop();
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A terminal client: what it has seen so far, and the control messages it got.
pub struct Term {
    socket: Socket,
    /// Every terminal byte received.
    pub screen: Vec<u8>,
    pub controls: Vec<ServerControl>,
    /// Stream offset just past the last byte received.
    pub seq: u64,
    closed: bool,
    /// The code of the close frame the other side sent, if one came.
    pub close_code: Option<u16>,
}

impl Term {
    /// Connects and waits for the hello.
    pub async fn connect(url: &str) -> Term {
        match Self::try_connect(url).await {
            Ok(t) => t,
            Err(status) => panic!("attaching to {url}: refused with {status}"),
        }
    }

    /// Attaches, or gives the HTTP status the attach was refused with.
    pub async fn try_connect(url: &str) -> Result<Term, u16> {
        let socket = match tokio_tungstenite::connect_async(url).await {
            Ok((socket, _)) => socket,
            Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
                return Err(res.status().as_u16())
            }
            Err(e) => panic!("attaching to {url}: {e}"),
        };
        let mut t = Term {
            socket,
            screen: Vec::new(),
            controls: Vec::new(),
            seq: 0,
            closed: false,
            close_code: None,
        };
        t.wait_for("the hello", Duration::from_secs(10), |t| {
            t.hello().is_some()
        })
        .await;
        if let Some(ServerControl::Hello { seq, .. }) = t.hello() {
            t.seq = seq;
        }
        Ok(t)
    }

    /// The hello this client got.
    pub fn hello(&self) -> Option<ServerControl> {
        self.controls
            .iter()
            .find(|c| matches!(c, ServerControl::Hello { .. }))
            .cloned()
    }

    /// What the screen shows, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.screen).into_owned()
    }

    /// Types `keys` (a binary frame).
    pub async fn type_keys(&mut self, keys: &str) {
        self.socket
            .send(Message::Binary(keys.as_bytes().to_vec().into()))
            .await
            .unwrap();
    }

    /// Sends `bytes` as one binary frame; the agent may refuse it by closing the socket.
    pub async fn try_send(&mut self, bytes: Vec<u8>) -> Result<(), String> {
        self.socket
            .send(Message::Binary(bytes.into()))
            .await
            .map_err(|e| e.to_string())
    }

    /// Resizes the terminal.
    pub async fn resize(&mut self, cols: u16, rows: u16) {
        let text = serde_json::to_string(&ClientControl::Resize { cols, rows }).unwrap();
        self.socket.send(Message::Text(text.into())).await.unwrap();
    }

    /// Whether the agent closed the socket.
    pub fn closed(&self) -> bool {
        self.closed
    }

    /// Reads until `done` holds or `within` passes (then panics with what it saw).
    pub async fn wait_for(&mut self, what: &str, within: Duration, done: impl Fn(&Term) -> bool) {
        let deadline = tokio::time::Instant::now() + within;
        while !done(self) {
            let next = tokio::time::timeout_at(deadline, self.socket.next()).await;
            match next {
                Ok(Some(Ok(Message::Binary(b)))) => {
                    self.seq += b.len() as u64;
                    self.screen.extend_from_slice(&b);
                }
                Ok(Some(Ok(Message::Text(t)))) => {
                    self.controls
                        .push(serde_json::from_str(&t).expect("a control message"));
                }
                Ok(Some(Ok(Message::Close(frame)))) => {
                    self.close_code = frame.map(|f| f.code.into());
                }
                Ok(Some(Ok(_))) => {}
                Ok(None) | Ok(Some(Err(_))) => {
                    self.closed = true;
                    assert!(
                        done(self),
                        "the socket closed before {what}; screen:\n{}",
                        self.text()
                    );
                    return;
                }
                Err(_) => panic!("timed out waiting for {what}; screen:\n{}", self.text()),
            }
        }
    }

    /// Waits until the other side closes the socket (panics after `within`) and returns the
    /// close frame's code.
    pub async fn ends_within(&mut self, within: Duration) -> Option<u16> {
        self.wait_for("the socket to close", within, |t| t.closed)
            .await;
        self.close_code
    }

    /// Waits until the screen shows `needle` (after any output already seen at `from`).
    pub async fn expect_from(&mut self, from: usize, needle: &str) {
        let what = format!("{needle:?} on the screen");
        self.wait_for(&what, Duration::from_secs(20), |t| {
            String::from_utf8_lossy(&t.screen[from.min(t.screen.len())..]).contains(needle)
        })
        .await;
    }

    /// Types a command line and waits for `marker` in what follows.
    pub async fn run(&mut self, line: &str, marker: &str) -> String {
        let from = self.screen.len();
        self.type_keys(&format!("{line}\r")).await;
        self.expect_from(from, marker).await;
        String::from_utf8_lossy(&self.screen[from..]).into_owned()
    }

    /// Closes the socket.
    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}
