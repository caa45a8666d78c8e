//! Runs sessions: one task per terminal owns its PTY, its shell and its `Session`, and turns
//! the session's outputs into PTY writes and client frames. A session outlives its clients
//! for the reattach window, then its shell is ended.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use cloudos_proto::terminal::{ClientControl, NoticeKind, Role};
use futures_util::FutureExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use crate::isolation::Isolation;
use crate::session::{ClientId, Frame, Output, Session, SCROLLBACK_BYTES};

/// Frames a client may fall behind by before it is dropped (it reconnects with `since`).
const CLIENT_BACKLOG: usize = 1024;

/// Settings of the terminals of one sandbox.
#[derive(Debug, Clone)]
pub struct TerminalSettings {
    /// The shell and its arguments.
    pub shell: Vec<String>,
    /// How long a session without clients keeps its shell.
    pub reattach_window: Duration,
}

/// Why attaching failed.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error("starting the shell: {0}")]
    Spawn(String),
    /// Viewers watch shells; they never start one in someone's sandbox.
    #[error("no such terminal is running")]
    NotRunning,
}

enum Cmd {
    Attach {
        role: Role,
        since: Option<u64>,
        reply: oneshot::Sender<Attached>,
    },
    Detach(ClientId),
    Input(ClientId, Bytes),
    Control(ClientId, ClientControl),
    Notice(NoticeKind, String),
    /// The agent is stopping: drop the clients (no `Exit`: for them the connection is lost,
    /// and they reconnect to wherever the sandbox comes back), then end the shell.
    Shutdown,
}

/// A client's place in a session: its id and the frames for it. When `frames` ends, the
/// session dropped the client (too slow, or the shell ended).
pub struct Attached {
    pub id: ClientId,
    pub frames: mpsc::Receiver<Frame>,
}

/// A handle to send a client's input to its session.
#[derive(Clone)]
pub struct SessionHandle {
    tx: mpsc::UnboundedSender<Cmd>,
}

impl SessionHandle {
    /// Keystrokes or a paste.
    pub fn input(&self, id: ClientId, data: Bytes) {
        let _ = self.tx.send(Cmd::Input(id, data));
    }
    /// A control message.
    pub fn control(&self, id: ClientId, msg: ClientControl) {
        let _ = self.tx.send(Cmd::Control(id, msg));
    }
    /// The client went away.
    pub fn detach(&self, id: ClientId) {
        let _ = self.tx.send(Cmd::Detach(id));
    }
}

/// The terminals of this sandbox, by name.
pub struct Terminals {
    sessions: Mutex<HashMap<String, SessionHandle>>,
    starting: tokio::sync::Mutex<()>,
    isolation: Arc<Isolation>,
    settings: TerminalSettings,
}

impl Terminals {
    /// No sessions yet.
    pub fn new(isolation: Arc<Isolation>, settings: TerminalSettings) -> Arc<Self> {
        Arc::new(Terminals {
            sessions: Mutex::new(HashMap::new()),
            starting: tokio::sync::Mutex::new(()),
            isolation,
            settings,
        })
    }

    /// Attaches to the session `name`, starting its shell if it has none.
    pub async fn attach(
        self: &Arc<Self>,
        name: &str,
        role: Role,
        since: Option<u64>,
    ) -> Result<(SessionHandle, Attached), AttachError> {
        // A session may end between lookup and attach; the second try starts a new one.
        for _ in 0..2 {
            let handle = match role {
                Role::Driver => self.session(name).await?,
                Role::Viewer => self.existing(name).ok_or(AttachError::NotRunning)?,
            };
            let (reply, rx) = oneshot::channel();
            if handle.tx.send(Cmd::Attach { role, since, reply }).is_err() {
                self.forget(name, &handle);
                continue;
            }
            match rx.await {
                Ok(attached) => return Ok((handle, attached)),
                Err(_) => self.forget(name, &handle),
            }
        }
        Err(AttachError::Spawn(
            "the session ended while attaching".into(),
        ))
    }

    /// Tells every session's clients something (e.g. a limit was hit).
    pub fn notice_all(&self, kind: NoticeKind, message: &str) {
        for h in self.sessions.lock().expect("sessions lock").values() {
            let _ = h.tx.send(Cmd::Notice(kind, message.to_owned()));
        }
    }

    /// Ends every session for an agent shutdown; returns once their clients are dropped.
    pub async fn shutdown_all(&self) {
        let handles: Vec<SessionHandle> = self
            .sessions
            .lock()
            .expect("sessions lock")
            .drain()
            .map(|(_, h)| h)
            .collect();
        for h in &handles {
            let _ = h.tx.send(Cmd::Shutdown);
        }
        for h in handles {
            h.tx.closed().await;
        }
    }

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        self.sessions.lock().expect("sessions lock").len()
    }

    /// Whether no session is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn forget(&self, name: &str, handle: &SessionHandle) {
        let mut sessions = self.sessions.lock().expect("sessions lock");
        if sessions
            .get(name)
            .is_some_and(|h| h.tx.same_channel(&handle.tx))
        {
            sessions.remove(name);
        }
    }

    fn existing(&self, name: &str) -> Option<SessionHandle> {
        let sessions = self.sessions.lock().expect("sessions lock");
        sessions.get(name).filter(|h| !h.tx.is_closed()).cloned()
    }

    /// Starts a shell on a new PTY, sized 80×24 until the driver says otherwise. Under
    /// bubblewrap the PTY comes from the sandbox (`pty_inside`); otherwise from here.
    async fn start_shell(&self) -> Result<ShellIo, AttachError> {
        let spawn_err = |e: &dyn std::fmt::Display| AttachError::Spawn(e.to_string());
        if self.isolation.bwrap {
            let mut inner = vec![
                crate::isolation::HELPER_INSIDE.to_owned(),
                crate::pty_inside::HELPER_ARG.to_owned(),
                "--".to_owned(),
            ];
            inner.extend(self.settings.shell.iter().cloned());
            let argv = self.isolation.wrap(&inner, None);
            let (ours, theirs) =
                std::os::unix::net::UnixStream::pair().map_err(|e| spawn_err(&e))?;
            let child = tokio::process::Command::new(&argv[0])
                .args(&argv[1..])
                .env_clear()
                .envs(self.isolation.base_env())
                .stdin(std::process::Stdio::from(std::os::fd::OwnedFd::from(
                    theirs,
                )))
                .stdout(std::process::Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| spawn_err(&e))?;
            let fd = tokio::task::spawn_blocking(move || {
                crate::pty_inside::recv_fd(&ours, Duration::from_secs(10))
            })
            .await
            .map_err(|e| spawn_err(&e))?
            .map_err(|e| spawn_err(&e))?;
            let master = crate::pty_inside::Master::new(fd).map_err(|e| spawn_err(&e))?;
            master.resize(80, 24).map_err(|e| spawn_err(&e))?;
            return Ok(ShellIo {
                reader: Box::new(master.clone()),
                writer: Box::new(master),
                child,
            });
        }
        let (pty, pts) = pty_process::open().map_err(|e| spawn_err(&e))?;
        pty.resize(pty_process::Size::new(24, 80))
            .map_err(|e| spawn_err(&e))?;
        let argv = self.isolation.wrap(&self.settings.shell, None);
        let child = pty_process::Command::new(&argv[0])
            .args(&argv[1..])
            .env_clear()
            .envs(self.isolation.base_env())
            .current_dir(&self.isolation.home)
            .kill_on_drop(true)
            .spawn(pts)
            .map_err(|e| spawn_err(&e))?;
        let (reader, writer) = pty.into_split();
        Ok(ShellIo {
            reader: Box::new(reader),
            writer: Box::new(writer),
            child,
        })
    }

    async fn session(self: &Arc<Self>, name: &str) -> Result<SessionHandle, AttachError> {
        if let Some(h) = self.existing(name) {
            return Ok(h);
        }
        // One start at a time, so two attaches to a new name share one shell.
        let _starting = self.starting.lock().await;
        if let Some(h) = self.existing(name) {
            return Ok(h);
        }
        let io = self.start_shell().await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let handle = SessionHandle { tx };
        self.sessions
            .lock()
            .expect("sessions lock")
            .insert(name.to_owned(), handle.clone());
        let me = self.clone();
        let name = name.to_owned();
        let window = self.settings.reattach_window;
        let own = handle.clone();
        tokio::spawn(async move {
            run(io, rx, Session::new(SCROLLBACK_BYTES, 80, 24), window).await;
            me.forget(&name, &own);
        });
        Ok(handle)
    }
}

/// A running shell's terminal and process.
struct ShellIo {
    reader: Box<dyn AsyncRead + Send + Unpin>,
    writer: Box<dyn PtyWriter>,
    child: tokio::process::Child,
}

/// The writing side of a PTY master, which also sets its size.
trait PtyWriter: AsyncWrite + Send + Unpin {
    fn set_size(&self, cols: u16, rows: u16);
}

impl PtyWriter for pty_process::OwnedWritePty {
    fn set_size(&self, cols: u16, rows: u16) {
        let _ = self.resize(pty_process::Size::new(rows, cols));
    }
}

impl PtyWriter for crate::pty_inside::Master {
    fn set_size(&self, cols: u16, rows: u16) {
        let _ = self.resize(cols, rows);
    }
}

enum PtyWrite {
    Data(Bytes),
    Resize(u16, u16),
}

async fn run(
    io: ShellIo,
    mut cmds: mpsc::UnboundedReceiver<Cmd>,
    mut session: Session,
    window: Duration,
) {
    let ShellIo {
        mut reader,
        mut writer,
        mut child,
    } = io;
    // Writes go through their own task: a shell that does not read its input must not stall
    // the output of everyone watching.
    let (wtx, mut wrx) = mpsc::unbounded_channel::<PtyWrite>();
    let writer_task = tokio::spawn(async move {
        while let Some(w) = wrx.recv().await {
            match w {
                PtyWrite::Data(d) => {
                    if writer.write_all(&d).await.is_err() {
                        return;
                    }
                }
                PtyWrite::Resize(cols, rows) => writer.set_size(cols, rows),
            }
        }
    });
    let mut clients: HashMap<ClientId, mpsc::Sender<Frame>> = HashMap::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut alone_since = Some(tokio::time::Instant::now());
    let code = loop {
        let deadline = alone_since.map(|t| t + window);
        tokio::select! {
            cmd = cmds.recv() => {
                let Some(cmd) = cmd else { break None };
                let out = match cmd {
                    Cmd::Attach { role, since, reply } => {
                        let (id, out) = session.attach(role, since);
                        let (ftx, frames) = mpsc::channel(CLIENT_BACKLOG + out.len());
                        clients.insert(id, ftx);
                        alone_since = None;
                        if reply.send(Attached { id, frames }).is_err() {
                            session.detach(id);
                            clients.remove(&id);
                        }
                        out
                    }
                    Cmd::Detach(id) => {
                        session.detach(id);
                        clients.remove(&id);
                        vec![]
                    }
                    Cmd::Input(id, data) => session.input(id, data),
                    Cmd::Control(id, msg) => session.control(id, msg),
                    Cmd::Notice(kind, message) => session.notice(kind, &message),
                    Cmd::Shutdown => {
                        clients.clear();
                        let _ = child.start_kill();
                        writer_task.abort();
                        return;
                    }
                };
                dispatch(out, &mut session, &mut clients, &wtx);
            }
            n = reader.read(&mut buf) => match n {
                Ok(n) if n > 0 => {
                    // A PTY hands out about 4 KiB per read: take what is already waiting too,
                    // so a burst of output becomes one frame instead of dozens.
                    let mut len = n;
                    while len < buf.len() {
                        match reader.read(&mut buf[len..]).now_or_never() {
                            Some(Ok(m)) if m > 0 => len += m,
                            _ => break,
                        }
                    }
                    let out = session.pty_output(Bytes::copy_from_slice(&buf[..len]));
                    dispatch(out, &mut session, &mut clients, &wtx);
                }
                // EIO once the shell and everything on the PTY exited.
                _ => break child.wait().await.ok().and_then(|s| s.code()),
            },
            _ = sleep_until(deadline) => {
                let _ = child.start_kill();
                break child.wait().await.ok().and_then(|s| s.code());
            }
        }
        if clients.is_empty() && alone_since.is_none() {
            alone_since = Some(tokio::time::Instant::now());
        }
    };
    let out = session.exited(code);
    dispatch(out, &mut session, &mut clients, &wtx);
    writer_task.abort();
    let _ = child.start_kill();
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

fn dispatch(
    out: Vec<Output>,
    session: &mut Session,
    clients: &mut HashMap<ClientId, mpsc::Sender<Frame>>,
    pty: &mpsc::UnboundedSender<PtyWrite>,
) {
    for o in out {
        match o {
            Output::Pty(d) => {
                let _ = pty.send(PtyWrite::Data(d));
            }
            Output::ResizePty { cols, rows } => {
                let _ = pty.send(PtyWrite::Resize(cols, rows));
            }
            Output::To(id, frame) => {
                let Some(tx) = clients.get(&id) else { continue };
                if tx.try_send(frame).is_err() {
                    // Too slow (or gone): dropping its sender ends its socket; it reconnects
                    // with `since` and gets what it missed from the scrollback.
                    clients.remove(&id);
                    session.detach(id);
                }
            }
        }
    }
}
