//! The one helper every end-to-end suite uses: a real `cloudos` server (or the one at
//! `CLOUDOS_TEST_BASE_URL`) and a client that speaks the public API.

pub mod agent;
pub mod bench;
pub mod collab;
pub mod fly_double;
pub mod sync;
pub mod world;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use cloudos_proto::{AuthResponse, File, FileList, Problem, UploadResponse};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};

/// Quota of new users on the server the API suite starts itself.
pub const SUITE_QUOTA_BYTES: u64 = 16 * 1024 * 1024;

/// The `cloudos` binary next to the test executables (override with `CLOUDOS_BIN`).
pub fn cloudos_bin() -> PathBuf {
    if let Ok(p) = std::env::var("CLOUDOS_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> → target/<profile>/cloudos
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("cloudos")
}

/// Extra settings for a server this helper starts.
#[derive(Debug, Default, Clone)]
pub struct ServerOptions {
    pub env: Vec<(String, String)>,
    /// Reuse this data dir instead of a fresh temporary one.
    pub data_dir: Option<PathBuf>,
    /// Run the server as this unprivileged uid (and gid) instead of the test's user; its
    /// data dir is given to that uid.
    pub run_as: Option<u32>,
}

impl ServerOptions {
    /// Sets an environment variable of the server.
    pub fn env(mut self, k: &str, v: impl ToString) -> Self {
        self.env.push((k.to_owned(), v.to_string()));
        self
    }
}

/// A server under test; a started one is killed on drop.
pub struct TestServer {
    pub base: String,
    child: Option<Child>,
    pub data_dir: Option<PathBuf>,
    _tmp: Option<tempfile::TempDir>,
    logs: Arc<Mutex<Vec<String>>>,
}

impl TestServer {
    /// The server of the API suite: `CLOUDOS_TEST_BASE_URL`, or a fresh native one.
    pub fn suite() -> Self {
        match std::env::var("CLOUDOS_TEST_BASE_URL") {
            Ok(base) if !base.is_empty() => TestServer {
                base: base.trim_end_matches('/').to_owned(),
                child: None,
                data_dir: None,
                _tmp: None,
                logs: Arc::default(),
            },
            _ => Self::native(ServerOptions::default()),
        }
    }

    /// Starts `cloudos serve` on a free port with its own data dir.
    pub fn native(opts: ServerOptions) -> Self {
        Self::start(&["serve"], opts).expect("starting cloudos")
    }

    /// Starts `cloudos db serve` (the local libSQL endpoint) on a free port with its own data dir.
    pub fn hrana(opts: ServerOptions) -> Self {
        Self::start(&["db", "serve"], opts).expect("starting cloudos db serve")
    }

    /// Runs `cloudos <command> --addr 127.0.0.1:0 --data <dir>` and waits for its `listening` line.
    fn start(command: &[&str], opts: ServerOptions) -> anyhow::Result<Self> {
        let bin = cloudos_bin();
        if !bin.exists() {
            bail!(
                "{} is missing: build it first (cargo build -p cloudos-server)",
                bin.display()
            );
        }
        let (tmp, data_dir) = match opts.data_dir {
            Some(d) => (None, d),
            None => {
                let t = tempfile::tempdir()?;
                let d = t.path().to_owned();
                (Some(t), d)
            }
        };
        traversable(&data_dir);
        let mut cmd = match opts.run_as {
            Some(uid) => {
                std::os::unix::fs::chown(&data_dir, Some(uid), Some(uid))
                    .with_context(|| format!("giving {} to uid {uid}", data_dir.display()))?;
                let mut c = Command::new("setpriv");
                c.args([
                    format!("--reuid={uid}"),
                    format!("--regid={uid}"),
                    "--clear-groups".to_owned(),
                    "--".to_owned(),
                ])
                .arg(&bin);
                c
            }
            None => Command::new(&bin),
        };
        cmd.args(command)
            .args(["--addr", "127.0.0.1:0", "--data"])
            .arg(&data_dir)
            .env("CLOUDOS_DEFAULT_QUOTA_BYTES", SUITE_QUOTA_BYTES.to_string())
            .env("CLOUDOS_LOGIN_MAX_FAILURES", "5")
            .env("CLOUDOS_WEB_DIR", data_dir.join("no-web"))
            .env("RUST_LOG", "info")
            .env_remove("CLOUDOS_SECRET")
            .stderr(Stdio::inherit());
        for (k, v) in &opts.env {
            // The helper finds the server's address in its `listening` line (info level).
            let v = if k == "RUST_LOG" {
                format!("{v},cloudos_server=info")
            } else {
                v.clone()
            };
            cmd.env(k, v);
        }
        let (child, base, logs) = spawn_until_listening(cmd, "cloudos")?;
        Ok(TestServer {
            base,
            child: Some(child),
            data_dir: Some(data_dir),
            _tmp: tmp,
            logs,
        })
    }

    /// Whether this suite runs against a server it started (and so may inspect its data dir).
    pub fn is_native(&self) -> bool {
        self.child.is_some()
    }

    /// The server's process id, when it started one.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Log lines the server printed so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// Sends SIGTERM and waits for the exit; returns whether it exited cleanly.
    pub fn terminate(&mut self, within: Duration) -> anyhow::Result<bool> {
        let mut child = self.child.take().context("not a started server")?;
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()?;
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status.success());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!("cloudos did not stop within {within:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A client without a token.
    pub fn client(&self) -> Client {
        Client {
            base: self.base.clone(),
            http: http_client(),
            token: None,
        }
    }

    /// Signs `user` in again on this server (one started on the same data, say).
    pub async fn login_as(&self, user: &User) -> User {
        let res = self
            .client()
            .post(
                "/auth/login",
                &json!({"email": user.email, "password": "correct horse battery"}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK, "login of {}", user.email);
        let auth: AuthResponse = res.json().await.unwrap();
        User {
            email: user.email.clone(),
            id: auth.user.id.clone(),
            api: Client {
                base: self.base.clone(),
                http: http_client(),
                token: Some(auth.token),
            },
        }
    }

    /// Signs up a new user with a unique email and returns their client.
    pub async fn new_user(&self, name: &str) -> User {
        let email = unique_email(name);
        let res = self
            .client()
            .post(
                "/auth/signup",
                &json!({"email": email, "password": "correct horse battery", "name": name}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED, "signup of {email}");
        let auth: AuthResponse = res.json().await.unwrap();
        User {
            email,
            id: auth.user.id.clone(),
            api: Client {
                base: self.base.clone(),
                http: http_client(),
                token: Some(auth.token),
            },
        }
    }
}

/// The tests' HTTP client: a request that gets no answer fails after two minutes instead of
/// holding the suite until CI's own limit (a stalled server must read as a failure).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(120))
        .build()
        .expect("a reqwest client")
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Log lines of a started process, collected as they come.
pub type Logs = Arc<Mutex<Vec<String>>>;

/// Spawns a server that logs JSON lines (stdout piped) and waits for its `listening` line;
/// returns the process, the `url` of that line and the log lines collected as they come.
pub fn spawn_until_listening(
    mut cmd: Command,
    what: &str,
) -> anyhow::Result<(Child, String, Logs)> {
    cmd.stdout(Stdio::piped());
    let mut child = cmd.spawn().with_context(|| format!("spawning {what}"))?;
    let stdout = child.stdout.take().expect("piped");
    let logs: Logs = Arc::default();
    let (tx, rx) = std::sync::mpsc::channel();
    let sink = logs.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                if v["message"] == "listening" || v["fields"]["message"] == "listening" {
                    let url = v["url"].as_str().or(v["fields"]["url"].as_str());
                    let _ = tx.send(url.unwrap_or_default().to_owned());
                }
            }
            sink.lock().unwrap().push(line);
        }
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(url) => Ok((child, url, logs)),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "{what} did not start; its log:\n{}",
                logs.lock().unwrap().join("\n")
            );
        }
    }
}

/// A memory figure of process `pid` in KiB, from /proc (`field` is e.g. `VmRSS:` or
/// `VmHWM:`, the peak).
pub fn rss_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// Whether the tests run as root (sandboxes then drop to an unprivileged uid, and the
/// attacks on that boundary can be checked).
pub fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Lets other users pass through `dir`, whatever the umask made it: sandboxes run as
/// unprivileged uids when the tests run as root and reach their home through it, as they do
/// through a data directory made by `cloudos serve` under the usual umask (mode 755).
pub fn traversable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::create_dir_all(dir);
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("making {} traversable: {e}", dir.display()));
}

pub fn unique_email(tag: &str) -> String {
    format!(
        "{}-{}@example.com",
        tag.to_lowercase().replace(' ', "-"),
        uuid::Uuid::new_v4().simple()
    )
}

/// A signed-up user.
pub struct User {
    pub email: String,
    pub id: String,
    pub api: Client,
}

/// An HTTP client of the public API, with or without a token.
#[derive(Clone)]
pub struct Client {
    pub base: String,
    pub http: reqwest::Client,
    pub token: Option<String>,
}

impl Client {
    /// A request to `path` (relative to the base URL) carrying the token.
    pub fn req(&self, method: Method, path: &str) -> RequestBuilder {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        };
        let rb = self.http.request(method, url);
        match &self.token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    pub async fn get(&self, path: &str) -> Response {
        self.req(Method::GET, path).send().await.unwrap()
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.req(Method::DELETE, path).send().await.unwrap()
    }

    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.req(Method::POST, path)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Response {
        self.req(Method::PATCH, path)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Creates a folder, asserting 201.
    pub async fn mkdir(&self, parent: Option<&str>, name: &str) -> File {
        let res = self
            .post("/folders", &json!({"parent_id": parent, "name": name}))
            .await;
        assert_eq!(res.status(), StatusCode::CREATED, "mkdir {name}");
        res.json().await.unwrap()
    }

    /// Uploads files in one multipart request.
    pub async fn upload_raw(&self, parent: Option<&str>, files: &[(&str, Vec<u8>)]) -> Response {
        let mut form = reqwest::multipart::Form::new();
        if let Some(p) = parent {
            form = form.text("parent_id", p.to_owned());
        }
        for (name, bytes) in files {
            form = form.part(
                "file",
                reqwest::multipart::Part::bytes(bytes.clone()).file_name(name.to_string()),
            );
        }
        self.req(Method::POST, "/files")
            .multipart(form)
            .send()
            .await
            .unwrap()
    }

    /// Uploads files, asserting 201.
    pub async fn upload(&self, parent: Option<&str>, files: &[(&str, Vec<u8>)]) -> Vec<File> {
        let res = self.upload_raw(parent, files).await;
        assert_eq!(res.status(), StatusCode::CREATED, "upload");
        res.json::<UploadResponse>().await.unwrap().files
    }

    /// Uploads one file into the root.
    pub async fn upload_one(&self, name: &str, bytes: &[u8]) -> File {
        self.upload(None, &[(name, bytes.to_vec())]).await.remove(0)
    }

    /// The links to one of the caller's files or folders (`GET /files/:id/shares`).
    pub async fn links(&self, id: &str) -> Vec<cloudos_proto::ShareLink> {
        let res = self.get(&format!("/files/{id}/shares")).await;
        assert_eq!(res.status(), StatusCode::OK, "links of {id}");
        res.json::<cloudos_proto::ShareList>().await.unwrap().items
    }

    /// Lists a folder (the root for `None`).
    pub async fn list(&self, parent: Option<&str>) -> Vec<File> {
        let path = match parent {
            Some(p) => format!("/files?parent={p}"),
            None => "/files".to_owned(),
        };
        let res = self.get(&path).await;
        assert_eq!(res.status(), StatusCode::OK, "list {path}");
        res.json::<FileList>().await.unwrap().items
    }

    /// Downloads a file's content, asserting 200.
    pub async fn content(&self, id: &str) -> Vec<u8> {
        let res = self.get(&format!("/files/{id}/content")).await;
        assert_eq!(res.status(), StatusCode::OK, "content of {id}");
        res.bytes().await.unwrap().to_vec()
    }

    /// `used_bytes` from `/me`.
    pub async fn used_bytes(&self) -> u64 {
        let me: Value = self.get("/me").await.json().await.unwrap();
        me["used_bytes"].as_u64().unwrap()
    }
}

/// Asserts a problem+json answer with `status` and `type`, and returns it.
pub async fn expect_problem(res: Response, status: u16, kind: &str) -> Problem {
    assert_eq!(res.status().as_u16(), status, "status of {}", res.url());
    let ct = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert_eq!(
        ct,
        "application/problem+json",
        "content type of {}",
        res.url()
    );
    let p: Problem = res.json().await.unwrap();
    assert_eq!(p.kind, kind);
    assert_eq!(p.status, status);
    assert!(!p.detail.is_empty());
    p
}

/// Asserts the 404 problem that missing and other users' ids both get.
pub async fn expect_not_found(res: Response) -> Problem {
    expect_problem(res, 404, "/errors/not-found").await
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Deterministic pseudo-random bytes (xorshift), so content mistakes cannot hide.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
