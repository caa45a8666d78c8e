//! The narrow capabilities the product needs from a host, named for what they do.
//!
//! Every port is `Send + Sync` on every target: axum requires handler futures to be `Send`,
//! so a host whose values are not (the Worker's JS objects) wraps them inside its adapter
//! and nothing host-specific leaks in here.

use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;

/// A value bound to or read from a SQL statement (the libSQL value model).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(v.clone())
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Integer(v)
    }
}
impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::Integer(i64::try_from(v).unwrap_or(i64::MAX))
    }
}
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Blob(v)
    }
}
impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Self {
        Value::Blob(v.to_vec())
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Integer(v as i64)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// One SQL statement with positional (`?`) parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Stmt {
    pub sql: String,
    pub params: Vec<Value>,
}

impl Stmt {
    /// A statement with its parameters.
    pub fn new(sql: impl Into<String>, params: Vec<Value>) -> Self {
        Stmt {
            sql: sql.into(),
            params,
        }
    }
}

/// Builds a [`Stmt`]: `stmt!("SELECT ? + ?", 1i64, 2i64)`.
#[macro_export]
macro_rules! stmt {
    ($sql:expr $(, $p:expr)* $(,)?) => {
        $crate::ports::Stmt::new($sql, vec![$($crate::ports::Value::from($p)),*])
    };
}

/// One result row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row(pub Vec<Value>);

impl Row {
    /// Column `i` as an integer (0 when NULL).
    pub fn int(&self, i: usize) -> i64 {
        match self.0.get(i) {
            Some(Value::Integer(v)) => *v,
            Some(Value::Real(v)) => *v as i64,
            Some(Value::Text(t)) => t.parse().unwrap_or(0),
            _ => 0,
        }
    }

    /// Column `i` as bytes (empty when NULL; text as its UTF-8).
    pub fn blob(&self, i: usize) -> Vec<u8> {
        match self.0.get(i) {
            Some(Value::Blob(b)) => b.clone(),
            Some(Value::Text(t)) => t.as_bytes().to_vec(),
            _ => Vec::new(),
        }
    }

    /// Column `i` as an integer, `None` when NULL.
    pub fn opt_int(&self, i: usize) -> Option<i64> {
        match self.0.get(i) {
            None | Some(Value::Null) => None,
            _ => Some(self.int(i)),
        }
    }

    /// Column `i` as text ("" when NULL).
    pub fn text(&self, i: usize) -> String {
        self.opt_text(i).unwrap_or_default()
    }

    /// Moves column `i` out as text (`None` when NULL), leaving NULL behind.
    pub fn take_text(&mut self, i: usize) -> Option<String> {
        match self.0.get_mut(i).map(|v| std::mem::replace(v, Value::Null)) {
            Some(Value::Text(t)) => Some(t),
            Some(Value::Integer(v)) => Some(v.to_string()),
            Some(Value::Blob(b)) => Some(String::from_utf8_lossy(&b).into_owned()),
            _ => None,
        }
    }

    /// Column `i` as text, `None` when NULL.
    pub fn opt_text(&self, i: usize) -> Option<String> {
        match self.0.get(i) {
            Some(Value::Text(t)) => Some(t.clone()),
            Some(Value::Integer(v)) => Some(v.to_string()),
            Some(Value::Blob(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }
}

/// Why the metadata store refused a statement.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A UNIQUE, CHECK or FOREIGN KEY constraint failed.
    #[error("constraint violated: {0}")]
    Constraint(String),
    /// Anything else: connection, syntax, I/O.
    #[error("database error: {0}")]
    Other(String),
}

/// The metadata store: a libSQL database, embedded or remote.
///
/// The product's SQL lives in the core; hosts only carry statements to libSQL.
#[async_trait]
pub trait MetaStore: Send + Sync + 'static {
    /// Runs a query and returns all its rows.
    async fn query(&self, stmt: Stmt) -> Result<Vec<Row>, DbError>;
    /// Runs a statement and returns the number of rows it changed.
    async fn execute(&self, stmt: Stmt) -> Result<u64, DbError>;
    /// Runs statements in one transaction: all apply or none; rows changed by each.
    async fn batch(&self, stmts: Vec<Stmt>) -> Result<Vec<u64>, DbError>;
    /// Runs a script of statements without parameters in one transaction, all or none.
    /// The database splits it (trigger bodies, strings and comments included), so no
    /// splitter of ours has to understand SQL: this is how migrations run.
    async fn run_script(&self, sql: &str) -> Result<(), DbError>;
}

/// Error of a blob store.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// No blob under that key.
    #[error("blob not found")]
    NotFound,
    /// The client's body stream failed (disconnect, malformed request).
    #[error("upload interrupted: {0}")]
    Interrupted(String),
    /// Storage failure.
    #[error("blob store error: {0}")]
    Io(String),
}

/// A stream of content bytes.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, BlobError>> + Send>>;

/// A blob that exists in a store, for the orphan sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobEntry {
    /// The content key (lowercase hex SHA-256), or a pending upload's key.
    pub key: String,
    /// Last modification, milliseconds since the Unix epoch.
    pub modified_ms: i64,
    /// True for an upload that never finished.
    pub pending: bool,
}

/// Content-addressed blob storage: a local directory, S3, or R2.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Starts an upload whose key is known only once all bytes are hashed.
    async fn begin(&self) -> Result<Box<dyn BlobUpload>, BlobError>;
    /// Reads `len` bytes from `offset` (the whole blob when `range` is `None`).
    async fn get(&self, key: &str, range: Option<(u64, u64)>) -> Result<ByteStream, BlobError>;
    /// Whether a blob exists.
    async fn exists(&self, key: &str) -> Result<bool, BlobError>;
    /// Deletes a blob or a pending upload; missing keys are not an error.
    async fn delete(&self, key: &str, pending: bool) -> Result<(), BlobError>;
    /// One page of the stored blobs (`pending`: of the unfinished uploads instead), from
    /// `cursor` (`None`: the start; else a page's `next`). Pages are bounded, so a walk over
    /// a large store never holds every key.
    async fn list_page(&self, pending: bool, cursor: Option<String>)
        -> Result<BlobPage, BlobError>;

    /// Every blob and pending upload, page after page (tests and small stores).
    async fn list(&self) -> Result<Vec<BlobEntry>, BlobError> {
        let mut all = Vec::new();
        for pending in [false, true] {
            let mut cursor = None;
            loop {
                let page = self.list_page(pending, cursor).await?;
                all.extend(page.entries);
                match page.next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
        }
        Ok(all)
    }
}

/// One page of a blob listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlobPage {
    pub entries: Vec<BlobEntry>,
    /// Where the next page starts (opaque to the caller); `None` on the last page.
    pub next: Option<String>,
}

/// An upload in progress. Dropping it without `commit` must leave no visible blob.
#[async_trait]
pub trait BlobUpload: Send {
    /// Appends bytes.
    async fn write(&mut self, chunk: Bytes) -> Result<(), BlobError>;
    /// Makes the bytes readable under `key` (their SHA-256); an existing equal blob is
    /// kept and marked fresh so the orphan sweep spares it.
    async fn commit(self: Box<Self>, key: &str) -> Result<(), BlobError>;
    /// Discards the bytes.
    async fn abort(self: Box<Self>) -> Result<(), BlobError>;
}

/// A piece of CPU-heavy work (a password hash) for [`Cpu::run`].
pub type CpuJob = Box<dyn FnOnce() + Send + 'static>;

/// Too much CPU-heavy work is waiting already; the caller should come back shortly.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the server is busy; try again in a moment")]
pub struct CpuBusy;

/// Where CPU-heavy work runs, so it cannot stall every other request: natively on a few
/// blocking threads behind a bounded queue; in a Worker isolate (one request, no threads)
/// in place.
#[async_trait]
pub trait Cpu: Send + Sync + 'static {
    /// Runs `job` to its end, or refuses at once when the queue is full.
    async fn run(&self, job: CpuJob) -> Result<(), CpuBusy>;
}

/// Runs every job in place, on the caller's thread.
#[derive(Debug, Default, Clone, Copy)]
pub struct InlineCpu;

#[async_trait]
impl Cpu for InlineCpu {
    async fn run(&self, job: CpuJob) -> Result<(), CpuBusy> {
        job();
        Ok(())
    }
}

/// Wall-clock time.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// Unique identifiers and randomness.
pub trait Ids: Send + Sync + 'static {
    /// A new unique, URL-safe id (time-ordered is preferred).
    fn new_id(&self) -> String;
    /// `n` cryptographically random bytes.
    fn random_bytes(&self, n: usize) -> Vec<u8>;
}

/// Delivery of live events to a user's open desktops (the host owns the sockets).
pub trait Events: Send + Sync + 'static {
    /// Sends `event` to every socket `user_id` has open now; nobody listening is fine.
    fn publish(&self, user_id: &str, event: &cloudos_proto::Event);
}

/// What a provider needs to start a sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxSpec {
    /// The sandbox (new for every start after a stop).
    pub id: String,
    /// Its owner: the home belongs to the user and outlives sandboxes.
    pub user_id: String,
    /// The key (hex) the agent checks tokens with; derived for this sandbox alone.
    pub agent_key_hex: String,
    /// The provider's handle of an earlier start (e.g. a Fly Machine id), if any.
    pub machine_id: Option<String>,
    /// The unprivileged host uid (and gid) the sandbox's processes run as where the host
    /// shares its kernel with sandboxes (the local provider as root): the user's own,
    /// allocated once, never another user's.
    pub host_uid: u32,
    /// The token the agent syncs the user's home with (`crate::sync`): the files routes
    /// and the event stream, as the user, while this sandbox runs. Given to the agent
    /// only, never to the sandbox's processes.
    pub sync_token: String,
    /// The user's drive quota: the home holds the drive, so it is at least this big.
    pub quota_bytes: u64,
}

/// Where a running sandbox's agent listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentEndpoint {
    /// Base URL of the agent (`http://…`); `/attach` and `/exec` are under it.
    pub url: String,
    /// Headers every request to the agent needs (e.g. Fly's instance routing).
    pub headers: Vec<(String, String)>,
    /// The provider's handle to keep (e.g. the Fly Machine id).
    pub machine_id: Option<String>,
}

/// Error of a sandbox provider.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("no capacity for another sandbox")]
    AtCapacity,
    #[error("this host has no sandbox provider")]
    Unavailable,
    /// The host could run sandboxes but not as configured; the reason says what to change.
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Failed(String),
}

/// Runs sandboxes: local isolated processes, or Fly Machines.
#[async_trait]
pub trait Sandboxes: Send + Sync + 'static {
    /// `local` or `fly` (recorded with the sandbox).
    fn provider(&self) -> &'static str;
    /// Whether this host offers sandboxes at all.
    fn available(&self) -> bool {
        true
    }
    /// Starts the sandbox's agent, or finds it running; idempotent.
    async fn start(&self, spec: &SandboxSpec) -> Result<AgentEndpoint, SandboxError>;
    /// Stops the agent and everything in the sandbox; the home stays.
    async fn stop(&self, spec: &SandboxSpec) -> Result<(), SandboxError>;
    /// Sends `body` (JSON) as `POST <agent>/<path>` with `bearer` to the sandbox's agent if
    /// it runs now; nothing is started for it. `Ok(None)`: no agent runs, nothing was sent;
    /// otherwise the agent's HTTP status.
    async fn post_to_agent(
        &self,
        _spec: &SandboxSpec,
        _path: &str,
        _bearer: &str,
        _body: Vec<u8>,
    ) -> Result<Option<u16>, SandboxError> {
        Ok(None)
    }
}

/// The provider of a host that offers no sandboxes: `POST /sandbox` answers 503.
pub struct NoSandboxes;

#[async_trait]
impl Sandboxes for NoSandboxes {
    fn provider(&self) -> &'static str {
        "local"
    }
    fn available(&self) -> bool {
        false
    }
    async fn start(&self, _spec: &SandboxSpec) -> Result<AgentEndpoint, SandboxError> {
        Err(SandboxError::Unavailable)
    }
    async fn stop(&self, _spec: &SandboxSpec) -> Result<(), SandboxError> {
        Ok(())
    }
}

/// Where a socket the core authorized is carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketTarget {
    /// The live events of one user's desktops (`WS /events`), until the session it was
    /// opened in expires (ms since the Unix epoch): no event reaches it after that.
    Events {
        user_id: crate::ids::UserId,
        until_ms: i64,
    },
    /// A terminal in a sandbox's agent (`WS /terminal/:id/attach`): the host connects to the
    /// ticket's URL and relays frames both ways.
    Terminal(crate::sandboxes::attach::AttachTicket),
    /// A file's live room (`WS /collab/:fileId`): the host runs the core's room for the file
    /// (one per file) and joins the socket to it with `access`, until `until_ms`.
    Collab {
        file_id: crate::ids::FileId,
        /// Whose file it is (the room reads and writes it as them).
        owner_id: crate::ids::UserId,
        access: crate::rooms::Access,
        until_ms: i64,
        /// The link the socket came through (`None`: the owner's own): revoking it ends
        /// the socket ([`Sockets::share_revoked`]).
        share_id: Option<String>,
        /// Who opened it, signed in (`None`: a view link's signed-out holder): signing out
        /// ends the socket ([`Sockets::session_ended`]).
        user_id: Option<crate::ids::UserId>,
    },
}

/// The upgrade and byte relay of socket routes. The core declares the routes, checks who
/// may open what, and hands over the request with its target; the host performs the
/// WebSocket upgrade (axum natively, a Durable Object or a fetched socket on the Worker).
#[async_trait]
pub trait Sockets: Send + Sync + 'static {
    /// Answers the upgrade request `req` with a socket carried to `target`, or a problem.
    async fn open(
        &self,
        req: axum::extract::Request,
        target: SocketTarget,
    ) -> Result<axum::response::Response, crate::ApiError>;

    /// The link `share_id` was revoked: the sockets opened through it, in the rooms of
    /// `files`, close now, and none opens through it again on this host.
    async fn share_revoked(&self, _share_id: &str, _files: &[crate::ids::FileId]) {}

    /// `user` signed out: their sockets (opened as them, signed in) in the rooms of `files`
    /// close now.
    async fn session_ended(&self, _user: &crate::ids::UserId, _files: &[crate::ids::FileId]) {}

    /// `file` was saved without its room, which is open on some host: the room here, if it
    /// is open, merges the save in now.
    async fn file_saved(&self, _file: &crate::ids::FileId) {}

    /// `files` went to the Trash: their rooms here end every socket (close code
    /// [`cloudos_proto::terminal::CLOSE_GONE`]) and stop, keeping what they stored (a restore
    /// opens them again from it).
    async fn files_trashed(&self, _files: &[crate::ids::FileId]) {}

    /// `file`'s lock was taken, renewed or released, and its room is open on some host: the
    /// room here, if it is open, reads the lock again.
    async fn lock_changed(&self, _file: &crate::ids::FileId) {}
}

/// The socket port of a host that carries none (tests of the HTTP routes).
pub struct NoSockets;

#[async_trait]
impl Sockets for NoSockets {
    async fn open(
        &self,
        _req: axum::extract::Request,
        _target: SocketTarget,
    ) -> Result<axum::response::Response, crate::ApiError> {
        Err(crate::ApiError::new(
            http::StatusCode::NOT_IMPLEMENTED,
            "no-sockets",
            "this host carries no sockets",
        ))
    }
}

/// The ports a host hands to the core.
#[derive(Clone)]
pub struct Ports {
    pub meta: Arc<dyn MetaStore>,
    pub blobs: Arc<dyn BlobStore>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn Ids>,
    pub events: Arc<dyn Events>,
    pub sandboxes: Arc<dyn Sandboxes>,
    pub sockets: Arc<dyn Sockets>,
    pub cpu: Arc<dyn Cpu>,
}
