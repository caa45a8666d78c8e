//! Runs sessions: one task per terminal owns its PTY, its shell and its `Session`, and turns
//! the session's outputs into PTY writes and client frames. A session outlives its clients
//! for the reattach window, then its shell is ended.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use cloudos_proto::terminal::{ClientControl, NoticeKind, Role};
use tokio::sync::{mpsc, oneshot};

use crate::isolation::Isolation;
use crate::session::{ClientId, Frame, Output, Session, SCROLLBACK_BYTES};

/// Frames a client may fall behind by before it is dropped (it reconnects with `since`).
const CLIENT_BACKLOG: usize = 1024;
/// Keystrokes and pastes taken from clients but not yet written to the shell, at most: a
/// program that does not read its input makes senders wait (their sockets stop being
/// read, back to the browser) instead of growing a queue.
pub const MAX_QUEUED_INPUT: usize = 2 * cloudos_proto::terminal::MAX_CLIENT_MESSAGE;

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
    /// Room for input, in bytes ([`MAX_QUEUED_INPUT`]); given back once written (or dropped).
    input_room: Arc<tokio::sync::Semaphore>,
}

impl SessionHandle {
    /// Keystrokes or a paste (at most `MAX_CLIENT_MESSAGE` bytes), once there is room for
    /// them. Cancel-safe: cancelled while waiting, nothing was taken or sent.
    pub async fn input(&self, id: ClientId, data: Bytes) {
        let n = data.len().min(MAX_QUEUED_INPUT) as u32;
        let Ok(room) = self.input_room.acquire_many(n).await else {
            return;
        };
        room.forget();
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
            let argv = self.isolation.wrap_shell(&inner);
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
            set_size(&fd, 80, 24);
            return Ok(ShellIo { master: fd, child });
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
        Ok(ShellIo {
            master: pty.into(),
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
        let input_room = Arc::new(tokio::sync::Semaphore::new(MAX_QUEUED_INPUT));
        let handle = SessionHandle {
            tx,
            input_room: input_room.clone(),
        };
        self.sessions
            .lock()
            .expect("sessions lock")
            .insert(name.to_owned(), handle.clone());
        let me = self.clone();
        let name = name.to_owned();
        let window = self.settings.reattach_window;
        let own = handle.clone();
        tokio::spawn(async move {
            let session = Session::new(SCROLLBACK_BYTES, 80, 24);
            run(io, rx, input_room, session, window).await;
            me.forget(&name, &own);
        });
        Ok(handle)
    }
}

/// A running shell's terminal (the PTY master) and process.
struct ShellIo {
    master: std::os::fd::OwnedFd,
    child: tokio::process::Child,
}

/// Sets a terminal's size (the shell gets SIGWINCH).
fn set_size(master: &impl std::os::fd::AsFd, cols: u16, rows: u16) {
    let _ = rustix::termios::tcsetwinsize(
        master,
        rustix::termios::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        },
    );
}

/// Reads the master on a thread of its own with blocking reads (`read_batch`), so a stream
/// costs the async side one wakeup per frame rather than per 4 KiB the kernel hands out.
fn spawn_reader(master: std::os::fd::OwnedFd) -> mpsc::Receiver<Bytes> {
    let (tx, rx) = mpsc::channel(64);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; BATCH_BYTES];
        // EIO once the shell and everything on the PTY exited.
        while let Some(n) = read_batch(&master, &mut buf) {
            if tx.blocking_send(Bytes::copy_from_slice(&buf[..n])).is_err() {
                break;
            }
        }
    });
    rx
}

/// The most output one frame carries.
const BATCH_BYTES: usize = 64 * 1024;
/// A read this large means the program is streaming output rather than echoing keys.
const BULK_READ: usize = 2048;
/// How long a streaming read waits for the next piece before sending what it has.
const BATCH_WAIT: rustix::time::Timespec = rustix::time::Timespec {
    tv_sec: 0,
    tv_nsec: 2_000_000,
};

/// One frame's worth of output: a blocking read, and, when that read shows a stream (the
/// kernel hands out a PTY's output ≤ 4 KiB at a time), whatever follows within
/// `BATCH_WAIT`, up to `BATCH_BYTES`. Keystroke echoes are small reads and go out at once;
/// a stream goes out in 64 KiB frames, so every hop after this one (session, socket, relay,
/// browser) wakes once per 64 KiB rather than per 4 KiB. `None` at the end of the PTY.
fn read_batch(master: &std::os::fd::OwnedFd, buf: &mut [u8]) -> Option<usize> {
    use rustix::event::{poll, PollFd, PollFlags};
    let mut len = loop {
        match rustix::io::read(master, &mut buf[..]) {
            // A signal landed on this thread: not the end of the terminal.
            Err(rustix::io::Errno::INTR) => continue,
            Ok(0) | Err(_) => return None,
            Ok(n) => break n,
        }
    };
    let mut last = len;
    while last >= BULK_READ && buf.len() - len >= BULK_READ {
        let mut fds = [PollFd::new(master, PollFlags::IN)];
        if !matches!(poll(&mut fds, Some(&BATCH_WAIT)), Ok(n) if n > 0) {
            break;
        }
        match rustix::io::read(master, &mut buf[len..]) {
            Ok(n) if n > 0 => {
                len += n;
                last = n;
            }
            // The end (or an error) is seen again by the next blocking read.
            _ => break,
        }
    }
    Some(len)
}

/// Writes keystrokes on a thread of its own: a shell that does not read its input must not
/// stall the output of everyone watching. What it holds is bounded by the input room,
/// which it gives back as it writes.
fn spawn_writer(
    master: std::os::fd::OwnedFd,
    room: Arc<tokio::sync::Semaphore>,
) -> mpsc::UnboundedSender<Bytes> {
    use std::io::Write;
    let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
    std::thread::spawn(move || {
        let mut file = std::fs::File::from(master);
        while let Some(d) = rx.blocking_recv() {
            let written = file.write_all(&d);
            room.add_permits(d.len().min(MAX_QUEUED_INPUT));
            if written.is_err() {
                // The terminal is gone: input waiting for room ends now, not never.
                room.close();
                return;
            }
        }
    });
    tx
}

/// Where a session's outputs for the terminal go: keystrokes to the writer thread, sizes
/// straight to the master (an ioctl that never blocks).
struct Pty {
    writer: mpsc::UnboundedSender<Bytes>,
    master: std::os::fd::OwnedFd,
}

async fn run(
    io: ShellIo,
    mut cmds: mpsc::UnboundedReceiver<Cmd>,
    input_room: Arc<tokio::sync::Semaphore>,
    mut session: Session,
    window: Duration,
) {
    let ShellIo { master, mut child } = io;
    // pty-process opens masters non-blocking (for its async reads); these threads block.
    let _ = rustix::io::ioctl_fionbio(&master, false);
    let (Ok(write_side), Ok(size_side)) = (master.try_clone(), master.try_clone()) else {
        let _ = child.start_kill();
        return;
    };
    let pty = Pty {
        writer: spawn_writer(write_side, input_room.clone()),
        master: size_side,
    };
    let mut output = spawn_reader(master);
    let mut clients: HashMap<ClientId, mpsc::Sender<Frame>> = HashMap::new();
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
                    Cmd::Input(id, data) => {
                        let taken = data.len().min(MAX_QUEUED_INPUT);
                        let out = session.input(id, data);
                        // Input that goes nowhere (a viewer's) gives its room back now; what
                        // goes to the shell gives it back once written.
                        if !out.iter().any(|o| matches!(o, Output::Pty(_))) {
                            input_room.add_permits(taken);
                        }
                        out
                    }
                    Cmd::Control(id, msg) => session.control(id, msg),
                    Cmd::Notice(kind, message) => session.notice(kind, &message),
                    Cmd::Shutdown => {
                        clients.clear();
                        let _ = child.start_kill();
                        return;
                    }
                };
                dispatch(out, &mut session, &mut clients, &pty);
            }
            chunk = output.recv() => match chunk {
                Some(data) => {
                    let out = session.pty_output(data);
                    dispatch(out, &mut session, &mut clients, &pty);
                }
                None => break child.wait().await.ok().and_then(|s| s.code()),
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
    dispatch(out, &mut session, &mut clients, &pty);
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
    pty: &Pty,
) {
    for o in out {
        match o {
            Output::Pty(d) => {
                let _ = pty.writer.send(d);
            }
            Output::ResizePty { cols, rows } => set_size(&pty.master, cols, rows),
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
