//! Live rooms on this host: one task per open room, which owns the core's `Room` for its
//! file, stores every accepted update before passing it on, checkpoints the text into the
//! file when the room is idle and when its last editor leaves; each socket is relayed to
//! its room's task. A registry finds a file's task.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use cloudos_core::ids::{FileId, UserId};
use cloudos_core::rooms::log::{RoomLog, SqlLog};
use cloudos_core::rooms::schedule::Schedule;
use cloudos_core::rooms::{store, Access, ConnId, Effects, Out, Room};
use cloudos_core::{ApiError, App};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, Mutex};

/// A room nobody is in closes after this long (a join whose upgrade never completed).
const EMPTY_FOR: Duration = Duration::from_secs(30);
/// How long one write to a client (a frame, or a batch of up to [`BURST_BYTES`]) may take
/// before the client is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// Keeps idle sockets open through proxies and finds dead peers.
const PING_EVERY: Duration = Duration::from_secs(25);
/// Messages waiting for one client; a client further behind is dropped (it resyncs on
/// reconnect, as Yjs clients do).
const CLIENT_BACKLOG: usize = 256;
/// Messages waiting for a room's task.
const ROOM_BACKLOG: usize = 1024;
/// The most messages a room's task handles (and stores) as one burst, and a relay writes
/// to its client in one flush...
const MAX_BURST: usize = 64;
/// ...and the most bytes: past it, the rest waits for the next burst (a burst of pasted
/// 4 MiB messages is not held, copied and stored all at once).
const BURST_BYTES: usize = 1024 * 1024;
/// The largest message a client may send (an update pasting the largest text a room holds,
/// with room to spare); a larger one closes its socket.
pub const MAX_MESSAGE: usize = 4 * 1024 * 1024;

/// Who a socket joining a room is.
#[derive(Debug, Clone)]
pub struct Joiner {
    pub access: Access,
    /// When the socket ends (the session's or the link's expiry), ms since the epoch.
    pub until_ms: i64,
    /// The link it came through, if any: revoking it ends the socket.
    pub share_id: Option<String>,
    /// Who opened it, signed in: signing out ends the socket.
    pub user_id: Option<UserId>,
}

/// What a room sends one client.
enum ToClient {
    /// Shared by every client it goes to (one copy however many are in the room).
    Frame(bytes::Bytes),
    /// End the socket with this close code and reason.
    Close(u16, &'static str),
}

/// The most revoked links a server remembers (to refuse a late join through one); the
/// database refuses them anyway, this only closes the gap of a join already checked.
const REVOKED_KEPT: usize = 4096;

enum Cmd {
    Join {
        conn: ConnId,
        access: Access,
        share_id: Option<String>,
        user_id: Option<UserId>,
        out: mpsc::Sender<ToClient>,
    },
    /// Someone signed out: their clients go.
    EndUser {
        user_id: UserId,
    },
    /// A link was revoked: its clients go.
    Revoke {
        share_id: String,
    },
    /// The file was saved without the room: merge it in now.
    Saved,
    /// The file's lock changed: read it again.
    Lock,
    /// The file went to the Trash: everyone goes, and the room closes.
    Trashed,
    Receive {
        conn: ConnId,
        bytes: Vec<u8>,
    },
    Leave {
        conn: ConnId,
    },
}

/// The open rooms of this server.
#[derive(Default)]
pub struct RoomHub {
    app: OnceLock<App>,
    rooms: Mutex<HashMap<String, mpsc::Sender<Cmd>>>,
    next_conn: AtomicU64,
    /// Links revoked while this server ran, oldest first.
    revoked: std::sync::Mutex<std::collections::VecDeque<String>>,
}

impl RoomHub {
    /// Gives the hub the app its rooms read and write files through (set once it is built).
    pub fn attach(&self, app: App) {
        let _ = self.app.set(app);
    }

    /// Ends the sockets opened through the link `share_id` in every open room, and refuses
    /// joins through it from now on.
    pub async fn revoke(&self, share_id: &str) {
        if let Ok(mut revoked) = self.revoked.lock() {
            if revoked.len() >= REVOKED_KEPT {
                revoked.pop_front();
            }
            revoked.push_back(share_id.to_owned());
        }
        let rooms: Vec<_> = self.rooms.lock().await.values().cloned().collect();
        for room in rooms {
            let _ = room
                .send(Cmd::Revoke {
                    share_id: share_id.to_owned(),
                })
                .await;
        }
    }

    /// `user` signed out: their sockets in every open room end.
    pub async fn end_user(&self, user: &UserId) {
        let rooms: Vec<_> = self.rooms.lock().await.values().cloned().collect();
        for room in rooms {
            let _ = room
                .send(Cmd::EndUser {
                    user_id: user.clone(),
                })
                .await;
        }
    }

    /// The file's lock changed: the room, if open here, enforces the new one.
    pub async fn lock_changed(&self, file: &FileId) {
        self.tell(file, Cmd::Lock).await;
    }

    /// The file was saved without its room: the room, if open here, merges the save now.
    pub async fn saved(&self, file: &FileId) {
        self.tell(file, Cmd::Saved).await;
    }

    /// The file went to the Trash: its room, if open here, ends every socket and closes.
    pub async fn trashed(&self, file: &FileId) {
        self.tell(file, Cmd::Trashed).await;
    }

    async fn tell(&self, file: &FileId, cmd: Cmd) {
        let room = self.rooms.lock().await.get(file.as_str()).cloned();
        if let Some(room) = room {
            let _ = room.send(cmd).await;
        }
    }

    fn is_revoked(&self, share_id: Option<&str>) -> bool {
        share_id.is_some_and(|id| {
            self.revoked
                .lock()
                .map(|r| r.iter().any(|s| s == id))
                .unwrap_or(false)
        })
    }

    /// The task of `file`'s room, started (from its stored state) if it is not running.
    async fn room(
        self: &Arc<Self>,
        app: &App,
        file: &FileId,
        owner: &UserId,
    ) -> Result<mpsc::Sender<Cmd>, ApiError> {
        let mut rooms = self.rooms.lock().await;
        if let Some(tx) = rooms.get(file.as_str()).filter(|tx| !tx.is_closed()) {
            return Ok(tx.clone());
        }
        let log = SqlLog::new(app, file);
        let opened = store::open(app, &log, owner, file).await?;
        store::mark_open(app, file).await?;
        let (tx, rx) = mpsc::channel(ROOM_BACKLOG);
        rooms.insert(file.to_string(), tx.clone());
        let task = RoomTask {
            app: app.clone(),
            log,
            hub: self.clone(),
            file: file.clone(),
            owner: owner.clone(),
            room: store::room(app, opened.doc, file).await,
            next_seq: opened.next_seq,
            clients: HashMap::new(),
            me: tx.clone(),
        };
        tokio::spawn(task.run(rx));
        Ok(tx)
    }
}

/// Carries an upgraded `/collab/:fileId` socket into the file's room until the joiner's
/// `until_ms` (the session's or the link's expiry).
pub async fn open(
    hub: &Arc<RoomHub>,
    file: &FileId,
    owner: &UserId,
    joiner: Joiner,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let app = hub
        .app
        .get()
        .ok_or_else(|| ApiError::internal("rooms are not ready"))?
        .clone();
    let room = hub.room(&app, file, owner).await?;
    let conn = hub.next_conn.fetch_add(1, Ordering::Relaxed);
    let left = Duration::from_millis((joiner.until_ms - app.now_ms()).max(0) as u64);
    let hub = hub.clone();
    Ok(ws
        .max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        .on_upgrade(move |socket| relay(socket, hub, room, conn, joiner, left)))
}

async fn relay(
    socket: WebSocket,
    hub: Arc<RoomHub>,
    room: mpsc::Sender<Cmd>,
    conn: ConnId,
    joiner: Joiner,
    left: Duration,
) {
    let (out_tx, mut out_rx) = mpsc::channel(CLIENT_BACKLOG);
    let (mut tx, mut rx) = socket.split();
    // A link revoked between its check and now: the socket ends before it joins.
    if hub.is_revoked(joiner.share_id.as_deref()) {
        let _ = tx.send(Message::Close(Some(revoked_frame()))).await;
        return;
    }
    if room
        .send(Cmd::Join {
            conn,
            access: joiner.access,
            share_id: joiner.share_id,
            user_id: joiner.user_id,
            out: out_tx,
        })
        .await
        .is_err()
    {
        return;
    }
    let expired = tokio::time::sleep(left);
    tokio::pin!(expired);
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    let mut close = None;
    loop {
        tokio::select! {
            _ = ping.tick() => {
                let sent = tokio::time::timeout(WRITE_TIMEOUT, tx.send(Message::Ping(Vec::new().into()))).await;
                if !matches!(sent, Ok(Ok(()))) {
                    break;
                }
            }
            incoming = rx.next() => match incoming {
                Some(Ok(Message::Binary(bytes))) => {
                    if room.send(Cmd::Receive { conn, bytes: bytes.to_vec() }).await.is_err() {
                        // The room ended: why (its close, if it said) is still queued here.
                        close = queued_close(&mut out_rx);
                        break;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            out = out_rx.recv() => match out {
                Some(ToClient::Close(code, reason)) => {
                    close = Some(CloseFrame { code, reason: reason.into() });
                    break;
                }
                Some(ToClient::Frame(bytes)) => {
                    // What else is already waiting goes out with it, in one flush: under
                    // heavy typing a client gets a few writes instead of one per keystroke.
                    let mut size = bytes.len();
                    let mut frames = vec![bytes];
                    while frames.len() < MAX_BURST && size < BURST_BYTES {
                        match out_rx.try_recv() {
                            Ok(ToClient::Frame(more)) => {
                                size += more.len();
                                frames.push(more);
                            }
                            Ok(ToClient::Close(code, reason)) => {
                                close = Some(CloseFrame { code, reason: reason.into() });
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    // A client that stopped reading is dropped rather than waited on.
                    let sent = tokio::time::timeout(WRITE_TIMEOUT, async {
                        for frame in frames {
                            tx.feed(Message::Binary(frame)).await?;
                        }
                        tx.flush().await
                    })
                    .await;
                    if !matches!(sent, Ok(Ok(()))) || close.is_some() {
                        break;
                    }
                }
                // The room dropped this client (too far behind, or it sent garbage).
                None => break,
            },
            () = &mut expired => {
                close = Some(CloseFrame {
                    code: cloudos_proto::terminal::CLOSE_EXPIRED,
                    reason: "the session or the link expired".into(),
                });
                break;
            }
        }
    }
    let _ = room.send(Cmd::Leave { conn }).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), tx.send(Message::Close(close))).await;
}

/// The close a room queued for its client, if any, skipping frames it will not get now.
fn queued_close(out: &mut mpsc::Receiver<ToClient>) -> Option<CloseFrame> {
    while let Ok(msg) = out.try_recv() {
        if let ToClient::Close(code, reason) = msg {
            return Some(CloseFrame {
                code,
                reason: reason.into(),
            });
        }
    }
    None
}

fn revoked_frame() -> CloseFrame {
    CloseFrame {
        code: cloudos_proto::terminal::CLOSE_REVOKED,
        reason: REVOKED_REASON.into(),
    }
}

const REVOKED_REASON: &str = "the link was revoked";

/// A client of a room's task.
struct Client {
    out: mpsc::Sender<ToClient>,
    share_id: Option<String>,
    user_id: Option<UserId>,
}

struct RoomTask {
    app: App,
    log: SqlLog,
    hub: Arc<RoomHub>,
    file: FileId,
    owner: UserId,
    room: Room,
    next_seq: i64,
    clients: HashMap<ConnId, Client>,
    me: mpsc::Sender<Cmd>,
}

impl RoomTask {
    async fn run(mut self, mut rx: mpsc::Receiver<Cmd>) {
        // A save made while no room was open arrives before anyone joins.
        if !self.checkpoint().await {
            self.close(&mut rx).await;
            return;
        }
        let mut schedule = Schedule::default();
        let mut empty_since = Some(Instant::now());
        // A command taken from the queue while gathering a burst, handled next.
        let mut pending = None;
        loop {
            let cmd = match pending.take() {
                Some(cmd) => cmd,
                None => {
                    let due = schedule.due().map(|at| {
                        Instant::now()
                            + Duration::from_millis((at - self.app.now_ms()).max(0) as u64)
                    });
                    let give_up = empty_since.map(|t| t + EMPTY_FOR);
                    tokio::select! {
                        cmd = rx.recv() => match cmd {
                            Some(cmd) => cmd,
                            None => break,
                        },
                        () = sleep_until_opt(due) => {
                            if self.checkpoint().await {
                                schedule.written();
                            } else {
                                // Tried again later (an error was logged).
                                schedule.failed(self.app.now_ms());
                            }
                            continue;
                        }
                        () = sleep_until_opt(give_up) => {
                            if self.room.is_empty() && self.close_if_still_empty(&mut rx).await {
                                break;
                            }
                            empty_since = None;
                            continue;
                        }
                    }
                }
            };
            let ok = match cmd {
                Cmd::Join {
                    conn,
                    access,
                    share_id,
                    user_id,
                    out,
                } => {
                    // Revoked after the relay looked (the hub records a revocation before
                    // telling the rooms).
                    if self.hub.is_revoked(share_id.as_deref()) {
                        let _ = out.try_send(ToClient::Close(
                            cloudos_proto::terminal::CLOSE_REVOKED,
                            REVOKED_REASON,
                        ));
                        continue;
                    }
                    let user = user_id.as_ref().map(|u| u.to_string());
                    let frames = self.room.join(conn, access, user);
                    self.clients.insert(
                        conn,
                        Client {
                            out,
                            share_id,
                            user_id,
                        },
                    );
                    for f in frames {
                        self.send(conn, f.into());
                    }
                    empty_since = None;
                    true
                }
                Cmd::Receive { conn, bytes } => {
                    // What else clients already sent is handled with it, and stored in one
                    // write: under heavy typing the queue drains in a few writes instead of
                    // one per keystroke.
                    let mut size = bytes.len();
                    let mut burst = vec![(conn, bytes)];
                    while burst.len() < MAX_BURST && size < BURST_BYTES {
                        match rx.try_recv() {
                            Ok(Cmd::Receive { conn, bytes }) => {
                                size += bytes.len();
                                burst.push((conn, bytes));
                            }
                            Ok(other) => {
                                pending = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    let (ok, edited) = self.receive(burst).await;
                    if ok && edited {
                        schedule.edited(self.app.now_ms());
                    }
                    ok
                }
                Cmd::Revoke { share_id } => {
                    self.drop_clients(
                        |c| c.share_id.as_deref() == Some(share_id.as_str()),
                        REVOKED_REASON,
                    )
                    .await
                }
                Cmd::EndUser { user_id } => {
                    self.drop_clients(|c| c.user_id.as_ref() == Some(&user_id), "signed out")
                        .await
                }
                Cmd::Saved => {
                    if self.checkpoint().await {
                        schedule.written();
                    }
                    true
                }
                Cmd::Lock => {
                    let fx = store::refresh_lock(&self.app, &mut self.room, &self.file).await;
                    self.apply(fx).await
                }
                Cmd::Trashed => {
                    // What the room stored stays in its log: a restore opens it from there.
                    for (_, c) in self.clients.drain() {
                        let _ = c.out.try_send(ToClient::Close(
                            cloudos_proto::terminal::CLOSE_GONE,
                            "the file was deleted",
                        ));
                    }
                    self.close(&mut rx).await;
                    break;
                }
                Cmd::Leave { conn } => {
                    self.clients.remove(&conn);
                    let fx = self.room.leave(conn);
                    let ok = self.apply(fx).await;
                    if ok && self.room.is_empty() {
                        empty_since = Some(Instant::now());
                        if self.checkpoint().await {
                            schedule.written();
                        }
                        if self.close_if_still_empty(&mut rx).await {
                            break;
                        }
                    }
                    ok
                }
            };
            if !ok {
                // Something accepted could not be stored: the room in memory is ahead of
                // its log. It closes (its clients resync on reconnect) and the next join
                // opens it from what is stored.
                self.close(&mut rx).await;
                break;
            }
        }
    }

    /// Handles a burst of clients' bytes, in order: whether storing succeeded, and whether
    /// the text changed.
    async fn receive(&mut self, burst: Vec<(ConnId, Vec<u8>)>) -> (bool, bool) {
        let mut fx = Effects::default();
        for (conn, bytes) in burst {
            let (more, error) = self.room.receive(conn, &bytes);
            fx.then(more);
            if let Some(e) = error {
                tracing::warn!(file = %self.file, error = %e, "dropping a room client");
                self.clients.remove(&conn);
                fx.then(self.room.leave(conn));
            }
        }
        let edited = !fx.stored.is_empty();
        (self.apply(fx).await, edited)
    }

    /// Ends the clients `which` picks (close code 4403 with `reason`), and tells the others
    /// they left; false when storing failed.
    async fn drop_clients(
        &mut self,
        which: impl Fn(&Client) -> bool,
        reason: &'static str,
    ) -> bool {
        let gone: Vec<ConnId> = self
            .clients
            .iter()
            .filter(|(_, c)| which(c))
            .map(|(conn, _)| *conn)
            .collect();
        let mut ok = true;
        for conn in gone {
            if let Some(c) = self.clients.remove(&conn) {
                let _ = c.out.try_send(ToClient::Close(
                    cloudos_proto::terminal::CLOSE_REVOKED,
                    reason,
                ));
            }
            let fx = self.room.leave(conn);
            ok &= self.apply(fx).await;
        }
        ok
    }

    /// Stores what the room accepted, then sends what it says; false when storing failed
    /// (nothing of it was sent).
    async fn apply(&mut self, mut fx: Effects) -> bool {
        let stored = std::mem::take(&mut fx.stored);
        let n = stored.len() as i64;
        if n > 0 {
            if let Err(e) = self.log.append_all(self.next_seq, stored).await {
                tracing::error!(file = %self.file, error = %e, "storing room updates");
                return false;
            }
            self.next_seq += n;
        }
        self.deliver(fx.out);
        store::after(&self.app, &self.file, fx.holder_left).await;
        true
    }

    fn deliver(&mut self, out: Vec<Out>) {
        for out in out {
            match out {
                Out::To(conn, bytes) => self.send(conn, bytes.into()),
                Out::AllBut(from, bytes) => {
                    let bytes = bytes::Bytes::from(bytes);
                    let to: Vec<ConnId> = self
                        .clients
                        .keys()
                        .copied()
                        .filter(|c| *c != from)
                        .collect();
                    for conn in to {
                        self.send(conn, bytes.clone());
                    }
                }
            }
        }
    }

    fn send(&mut self, conn: ConnId, bytes: bytes::Bytes) {
        let Some(client) = self.clients.get(&conn) else {
            return;
        };
        if client.out.try_send(ToClient::Frame(bytes)).is_err() {
            // Too far behind (or gone): dropped; its relay ends and it leaves.
            self.clients.remove(&conn);
        }
    }

    /// Merges any save made without the room, then writes the room's text into the file;
    /// false when that failed (logged; tried again later).
    async fn checkpoint(&mut self) -> bool {
        let (out, done) = store::write_back(
            &self.app,
            &self.log,
            &self.owner,
            &self.file,
            &mut self.room,
            &mut self.next_seq,
        )
        .await;
        self.deliver(out);
        if let Err(e) = &done {
            tracing::error!(file = %self.file, error = %e, "writing a room into its file");
        }
        done.is_ok()
    }

    /// Leaves the registry and ends every client (their relays see their channels close).
    async fn close(&mut self, rx: &mut mpsc::Receiver<Cmd>) {
        let mut rooms = self.hub.rooms.lock().await;
        if rooms
            .get(self.file.as_str())
            .is_some_and(|tx| tx.same_channel(&self.me))
        {
            rooms.remove(self.file.as_str());
            self.mark_closed().await;
        }
        self.clients.clear();
        rx.close();
    }

    /// The room is empty and checkpointed: it leaves the registry unless someone joined
    /// meanwhile (their join is then handled as usual).
    async fn close_if_still_empty(&mut self, rx: &mut mpsc::Receiver<Cmd>) -> bool {
        let mut rooms = self.hub.rooms.lock().await;
        if !rx.is_empty() {
            return false;
        }
        if rooms
            .get(self.file.as_str())
            .is_some_and(|tx| tx.same_channel(&self.me))
        {
            rooms.remove(self.file.as_str());
            self.mark_closed().await;
        }
        rx.close();
        true
    }
}

impl RoomTask {
    /// Called with the registry locked, so a room opening next for the file marks itself
    /// open after this.
    async fn mark_closed(&self) {
        if let Err(e) = store::mark_closed(&self.app, &self.file).await {
            tracing::warn!(file = %self.file, error = %e, "marking a room closed");
        }
    }
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
