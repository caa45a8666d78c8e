//! Live rooms on the edge: one `Room` Durable Object per file runs the core's room over
//! hibernating WebSockets, with the room's snapshot and update log in the object's own
//! SQLite storage. The core decides who may join (`WS /collab/:fileId`) and every rule of
//! the room and its file (`rooms::store`); this object only carries bytes, stores what the
//! core says to store, and wakes on an alarm to write the text back.

use cloudos_core::files::FilesError;
use cloudos_core::ids::{FileId, UserId};
use cloudos_core::ports::DbError;
use cloudos_core::rooms::log::{Logged, RoomLog};
use cloudos_core::rooms::schedule::{Schedule, RETRY_AFTER_MS};
use cloudos_core::rooms::{self as core_rooms, store, Access, ConnId, Effects, Out, RoomError};
use cloudos_core::{ApiError, App};
use futures_util::lock::Mutex;
use serde::{Deserialize, Serialize};
use worker::send::SendWrapper;
use worker::{
    durable_object, DurableObject, Env, ObjectNamespace, Request, RequestInit, Response, Result,
    SqlStorage, SqlStorageValue, State, WebSocket, WebSocketIncomingMessage, WebSocketPair,
};

/// The binding of the `Room` namespace in `wrangler.toml`.
pub const BINDING: &str = "ROOMS";

const FILE_HEADER: &str = "x-cloudos-file";
const OWNER_HEADER: &str = "x-cloudos-owner";
const EDIT_HEADER: &str = "x-cloudos-edit";
const UNTIL_HEADER: &str = "x-cloudos-until-ms";
const SHARE_HEADER: &str = "x-cloudos-share";
const USER_HEADER: &str = "x-cloudos-user";
/// On `/revoke`: every socket goes (the file went to the Trash).
const ALL_HEADER: &str = "x-cloudos-all";

/// The most bytes one stored row holds (a Durable Object's SQLite rows are limited to
/// 2 MB); longer snapshots and updates are stored in parts.
const PART: usize = 1 << 20;

/// What the object keeps with each socket, across hibernation.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Attached {
    conn: ConnId,
    edit: bool,
    /// The session's or the link's expiry (ms since the epoch): the socket ends then.
    until_ms: i64,
    /// The link the socket came through: revoking it ends the socket.
    share_id: Option<String>,
    /// Who opened it, signed in: signing out ends the socket.
    #[serde(default)]
    user_id: Option<String>,
}

impl Attached {
    fn expired(&self, now_ms: i64) -> bool {
        self.until_ms <= now_ms
    }

    fn access(&self) -> Access {
        if self.edit {
            Access::Edit
        } else {
            Access::View
        }
    }
}

/// The upgrade of one `WS /collab/:fileId` socket, answered by the file's `Room` object (or
/// a problem, when the file cannot be a room).
pub(crate) async fn connect(
    namespace: &ObjectNamespace,
    file: &FileId,
    owner: &UserId,
    access: Access,
    until_ms: i64,
    share_id: Option<&str>,
    user_id: Option<&UserId>,
) -> Result<Response> {
    let stub = namespace.id_from_name(file.as_str())?.get_stub()?;
    let headers = worker::Headers::new();
    headers.set("Upgrade", "websocket")?;
    headers.set(FILE_HEADER, file.as_str())?;
    headers.set(OWNER_HEADER, owner.as_str())?;
    headers.set(EDIT_HEADER, if access == Access::Edit { "1" } else { "0" })?;
    headers.set(UNTIL_HEADER, &until_ms.to_string())?;
    if let Some(share) = share_id {
        headers.set(SHARE_HEADER, share)?;
    }
    if let Some(user) = user_id {
        headers.set(USER_HEADER, user.as_str())?;
    }
    let mut init = RequestInit::new();
    init.with_headers(headers);
    stub.fetch_with_request(Request::new_with_init("https://rooms/connect", &init)?)
        .await
}

/// What a room is told of its file.
pub(crate) enum News {
    /// The file was saved without the room: it merges the save now.
    Saved,
    /// The file's lock changed: it reads the lock again.
    Lock,
}

/// Tells `file`'s room the news.
pub(crate) async fn tell(namespace: &ObjectNamespace, file: &FileId, news: News) -> Result<()> {
    let stub = namespace.id_from_name(file.as_str())?.get_stub()?;
    let mut init = RequestInit::new();
    init.with_method(worker::Method::Post);
    let url = match news {
        News::Saved => "https://rooms/saved",
        News::Lock => "https://rooms/lock",
    };
    stub.fetch_with_request(Request::new_with_init(url, &init)?)
        .await?;
    Ok(())
}

/// Tells `file`'s room that the link `share_id` was revoked: its sockets there close, and
/// none opens through it again.
pub(crate) async fn revoke(
    namespace: &ObjectNamespace,
    file: &FileId,
    share_id: &str,
) -> Result<()> {
    end_sockets(namespace, file, SHARE_HEADER, share_id).await
}

/// Tells `file`'s room that `user` signed out: their sockets there close.
pub(crate) async fn end_user(
    namespace: &ObjectNamespace,
    file: &FileId,
    user: &UserId,
) -> Result<()> {
    end_sockets(namespace, file, USER_HEADER, user.as_str()).await
}

/// Tells `file`'s room that its file went to the Trash: every socket there closes.
pub(crate) async fn trashed(namespace: &ObjectNamespace, file: &FileId) -> Result<()> {
    end_sockets(namespace, file, ALL_HEADER, "1").await
}

/// Asks `file`'s room to end the sockets whose link (`SHARE_HEADER`) or user
/// (`USER_HEADER`) is `value`, or all of them (`ALL_HEADER`).
async fn end_sockets(
    namespace: &ObjectNamespace,
    file: &FileId,
    header: &str,
    value: &str,
) -> Result<()> {
    let stub = namespace.id_from_name(file.as_str())?.get_stub()?;
    let headers = worker::Headers::new();
    headers.set(header, value)?;
    let mut init = RequestInit::new();
    init.with_method(worker::Method::Post).with_headers(headers);
    stub.fetch_with_request(Request::new_with_init("https://rooms/revoke", &init)?)
        .await?;
    Ok(())
}

fn now_ms() -> i64 {
    worker::Date::now().as_millis() as i64
}

fn db(e: worker::Error) -> RoomError {
    RoomError::Db(DbError::Other(e.to_string()))
}

fn int(v: Option<&SqlStorageValue>) -> Option<i64> {
    match v? {
        SqlStorageValue::Integer(i) => Some(*i),
        SqlStorageValue::Float(f) => Some(*f as i64),
        _ => None,
    }
}

fn blob(v: Option<&SqlStorageValue>) -> Vec<u8> {
    match v {
        Some(SqlStorageValue::Blob(b)) => b.clone(),
        _ => Vec::new(),
    }
}

fn text(v: Option<&SqlStorageValue>) -> Option<String> {
    match v? {
        SqlStorageValue::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// Splits `bytes` into stored parts; an empty value is one empty part, so it exists.
fn parts(bytes: &[u8]) -> Vec<Vec<u8>> {
    if bytes.is_empty() {
        return vec![Vec::new()];
    }
    bytes.chunks(PART).map(<[u8]>::to_vec).collect()
}

/// The room's state in the object's SQLite storage. Every method runs its statements with
/// no `await` between them, which the runtime commits as one atomic write.
struct DoLog {
    sql: SendWrapper<SqlStorage>,
}

impl DoLog {
    fn new(state: &State) -> std::result::Result<Self, RoomError> {
        let sql = state.storage().sql();
        for ddl in [
            "CREATE TABLE IF NOT EXISTS room (id INTEGER PRIMARY KEY CHECK (id = 1),
                 owner TEXT NOT NULL, file TEXT NOT NULL, upto INTEGER, file_version INTEGER)",
            "CREATE TABLE IF NOT EXISTS blobs (name TEXT NOT NULL, part INTEGER NOT NULL,
                 bytes BLOB NOT NULL, PRIMARY KEY (name, part))",
            "CREATE TABLE IF NOT EXISTS updates (seq INTEGER NOT NULL, part INTEGER NOT NULL,
                 bytes BLOB NOT NULL, PRIMARY KEY (seq, part))",
            "CREATE TABLE IF NOT EXISTS revoked (share_id TEXT PRIMARY KEY)",
        ] {
            sql.exec(ddl, None).map_err(db)?;
        }
        Ok(DoLog {
            sql: SendWrapper::new(sql),
        })
    }

    fn rows(
        &self,
        query: &str,
        args: Vec<SqlStorageValue>,
    ) -> std::result::Result<Vec<Vec<SqlStorageValue>>, RoomError> {
        self.sql
            .exec(query, args)
            .map_err(db)?
            .raw()
            .collect::<Result<Vec<_>>>()
            .map_err(db)
    }

    fn run(&self, query: &str, args: Vec<SqlStorageValue>) -> std::result::Result<(), RoomError> {
        self.sql.exec(query, args).map_err(db).map(|_| ())
    }

    /// Which file (and whose) this object is the room of: set by the first socket.
    fn identify(&self, owner: &str, file: &str) -> std::result::Result<(), RoomError> {
        self.run(
            "INSERT INTO room (id, owner, file) VALUES (1, ?, ?) ON CONFLICT(id) DO NOTHING",
            vec![owner.into(), file.into()],
        )
    }

    fn identity(&self) -> std::result::Result<Option<(UserId, FileId)>, RoomError> {
        let rows = self.rows("SELECT owner, file FROM room WHERE id = 1", vec![])?;
        Ok(rows.first().and_then(|r| {
            Some((
                UserId::from(text(r.first())?),
                FileId::from(text(r.get(1))?),
            ))
        }))
    }

    fn revoke(&self, share_id: &str) -> std::result::Result<(), RoomError> {
        self.run(
            "INSERT INTO revoked (share_id) VALUES (?) ON CONFLICT DO NOTHING",
            vec![share_id.into()],
        )
    }

    fn is_revoked(&self, share_id: &str) -> std::result::Result<bool, RoomError> {
        Ok(!self
            .rows(
                "SELECT 1 FROM revoked WHERE share_id = ?",
                vec![share_id.into()],
            )?
            .is_empty())
    }

    fn put_blob(&self, name: &str, bytes: &[u8]) -> std::result::Result<(), RoomError> {
        self.run("DELETE FROM blobs WHERE name = ?", vec![name.into()])?;
        for (i, part) in parts(bytes).into_iter().enumerate() {
            self.run(
                "INSERT INTO blobs (name, part, bytes) VALUES (?, ?, ?)",
                vec![name.into(), (i as i64).into(), part.into()],
            )?;
        }
        Ok(())
    }

    fn get_blob(&self, name: &str) -> std::result::Result<Vec<u8>, RoomError> {
        let rows = self.rows(
            "SELECT bytes FROM blobs WHERE name = ? ORDER BY part",
            vec![name.into()],
        )?;
        Ok(rows.iter().flat_map(|r| blob(r.first())).collect())
    }

    fn put_update(&self, seq: i64, update: &[u8]) -> std::result::Result<(), RoomError> {
        for (i, part) in parts(update).into_iter().enumerate() {
            self.run(
                "INSERT INTO updates (seq, part, bytes) VALUES (?, ?, ?)",
                vec![seq.into(), (i as i64).into(), part.into()],
            )?;
        }
        Ok(())
    }

    fn versions(&self) -> std::result::Result<Option<(i64, i64)>, RoomError> {
        let rows = self.rows("SELECT upto, file_version FROM room WHERE id = 1", vec![])?;
        Ok(rows
            .first()
            .and_then(|r| Some((int(r.first())?, int(r.get(1))?))))
    }
}

#[async_trait::async_trait]
impl RoomLog for DoLog {
    async fn load(&self) -> std::result::Result<Option<Logged>, RoomError> {
        let Some((upto, _)) = self.versions()? else {
            return Ok(None);
        };
        let mut updates: Vec<(i64, Vec<u8>)> = Vec::new();
        for row in self.rows(
            "SELECT seq, bytes FROM updates WHERE seq > ? ORDER BY seq, part",
            vec![upto.into()],
        )? {
            let seq = int(row.first()).unwrap_or_default();
            let bytes = blob(row.get(1));
            match updates.last_mut() {
                Some((last, body)) if *last == seq => body.extend(bytes),
                _ => updates.push((seq, bytes)),
            }
        }
        Ok(Some(Logged {
            snapshot: self.get_blob("snapshot")?,
            upto,
            updates,
        }))
    }

    async fn start(
        &self,
        state: Vec<u8>,
        file_version: i64,
        _now_ms: i64,
    ) -> std::result::Result<(), RoomError> {
        if self.versions()?.is_some() {
            return Ok(());
        }
        self.put_blob("snapshot", &state)?;
        self.put_blob("base", &state)?;
        self.run(
            "UPDATE room SET upto = 0, file_version = ? WHERE id = 1",
            vec![file_version.into()],
        )
    }

    async fn append(&self, seq: i64, update: &[u8]) -> std::result::Result<(), RoomError> {
        self.put_update(seq, update)
    }

    async fn base(&self) -> std::result::Result<(Vec<u8>, i64), RoomError> {
        let (_, version) = self
            .versions()?
            .ok_or(RoomError::Files(FilesError::NotFound))?;
        Ok((self.get_blob("base")?, version))
    }

    async fn merged(
        &self,
        first_seq: i64,
        updates: Vec<Vec<u8>>,
        base: Vec<u8>,
        file_version: i64,
    ) -> std::result::Result<(), RoomError> {
        for (seq, update) in (first_seq..).zip(&updates) {
            self.put_update(seq, update)?;
        }
        self.put_blob("base", &base)?;
        self.run(
            "UPDATE room SET file_version = ? WHERE id = 1",
            vec![file_version.into()],
        )
    }

    async fn compact(
        &self,
        state: Vec<u8>,
        upto: i64,
        file_version: i64,
        _now_ms: i64,
    ) -> std::result::Result<(), RoomError> {
        self.put_blob("snapshot", &state)?;
        self.put_blob("base", &state)?;
        self.run(
            "UPDATE room SET upto = ?, file_version = ? WHERE id = 1",
            vec![upto.into(), file_version.into()],
        )?;
        self.run("DELETE FROM updates WHERE seq <= ?", vec![upto.into()])
    }
}

/// Whose sockets a `/revoke` ends.
enum Ending {
    /// Those opened through a revoked link.
    Link(String),
    /// Those of a user who signed out.
    User(String),
    /// Everyone's: the file went to the Trash.
    All,
}

impl Ending {
    fn picks(&self, a: &Attached) -> bool {
        match self {
            Ending::Link(id) => a.share_id.as_deref() == Some(id.as_str()),
            Ending::User(id) => a.user_id.as_deref() == Some(id.as_str()),
            Ending::All => true,
        }
    }

    fn code(&self) -> u16 {
        match self {
            Ending::All => cloudos_proto::terminal::CLOSE_GONE,
            _ => cloudos_proto::terminal::CLOSE_REVOKED,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            Ending::Link(_) => "the link was revoked",
            Ending::User(_) => "signed out",
            Ending::All => "the file was deleted",
        }
    }
}

/// A room in memory: gone when the object hibernates, rebuilt from storage on the next
/// message or alarm.
struct Live {
    app: App,
    log: DoLog,
    owner: UserId,
    file: FileId,
    room: core_rooms::Room,
    next_seq: i64,
    schedule: Schedule,
}

impl Live {
    /// The core's write-back: saves made without the room merged in, the text into the file.
    async fn sync_file(&mut self) -> (Vec<Out>, std::result::Result<(), RoomError>) {
        store::write_back(
            &self.app,
            &self.log,
            &self.owner,
            &self.file,
            &mut self.room,
            &mut self.next_seq,
        )
        .await
    }
}

/// One file's live room.
#[durable_object]
pub struct Room {
    state: State,
    env: Env,
    /// Held across the awaits of a message, an alarm or a write-back, so the room handles
    /// one thing at a time (the runtime may deliver the next message meanwhile).
    live: Mutex<Option<Live>>,
}

fn attached(ws: &WebSocket) -> Option<Attached> {
    ws.deserialize_attachment::<Attached>().ok().flatten()
}

/// Marks a socket ended in its attachment, so a frame it sends after its close (in flight,
/// or from a client that ignores the close) is refused rather than rejoining the room.
fn end(ws: &WebSocket, at: &Attached) {
    let mut ended = at.clone();
    ended.until_ms = 0;
    let _ = ws.serialize_attachment(ended);
}

fn close_expired(ws: &WebSocket) {
    let _ = ws.close(
        Some(cloudos_proto::terminal::CLOSE_EXPIRED),
        Some("the session or the link expired"),
    );
}

fn problem(e: ApiError) -> Result<Response> {
    use axum::response::IntoResponse;
    Response::try_from(e.into_response())
}

impl Room {
    /// The room from storage, with any save made while it was closed merged in.
    async fn open(&self) -> std::result::Result<Live, ApiError> {
        let (app, _) = crate::host(&self.env).await.map_err(ApiError::internal)?;
        let log = DoLog::new(&self.state)?;
        let (owner, file) = log
            .identity()?
            .ok_or_else(|| ApiError::internal("a room object with no file"))?;
        let opened = match store::open(&app, &log, &owner, &file).await {
            Err(RoomError::Removed) => {
                // The file is gone for good: so is everything kept of it here.
                let _ = self.state.storage().delete_all().await;
                return Err(RoomError::Removed.into());
            }
            other => other?,
        };
        store::mark_open(&app, &file).await?;
        let room = store::room(&app, opened.doc, &file).await;
        let mut live = Live {
            app,
            log,
            owner,
            file,
            room,
            next_seq: opened.next_seq,
            schedule: Schedule::default(),
        };
        // Woken from hibernation, the sockets still here were in sync with the room: they
        // join it again (their join frames are not needed), so what the room sends from now
        // on reaches them even if they only listen.
        let now = now_ms();
        for (at, _) in self.sockets() {
            if !at.expired(now) {
                live.room.join(at.conn, at.access(), at.user_id.clone());
            }
        }
        let (out, done) = live.sync_file().await;
        self.deliver(out);
        done?;
        Ok(live)
    }

    /// The sockets of this room with what each carries.
    fn sockets(&self) -> Vec<(Attached, WebSocket)> {
        self.state
            .get_websockets()
            .into_iter()
            .filter_map(|ws| Some((attached(&ws)?, ws)))
            .collect()
    }

    fn deliver(&self, out: Vec<Out>) {
        if out.is_empty() {
            return;
        }
        // A socket whose session or link expired gets nothing more: it is closed the first
        // time something would reach it (an idle one learns nothing anyway).
        let now = now_ms();
        let (expired, sockets): (Vec<_>, Vec<_>) = self
            .sockets()
            .into_iter()
            .partition(|(a, _)| a.expired(now));
        for (_, ws) in expired {
            close_expired(&ws);
        }
        // A socket closing right now is not an error worth reporting.
        for out in out {
            match out {
                Out::To(conn, bytes) => {
                    for (_, ws) in sockets.iter().filter(|(a, _)| a.conn == conn) {
                        let _ = ws.send_with_bytes(&bytes);
                    }
                }
                Out::AllBut(from, bytes) => {
                    for (_, ws) in sockets.iter().filter(|(a, _)| a.conn != from) {
                        let _ = ws.send_with_bytes(&bytes);
                    }
                }
            }
        }
    }

    /// Stores what the room accepted, then sends what it says and sets the alarm that
    /// writes the text back; false when storing failed (nothing of it was sent).
    async fn apply(&self, live: &mut Live, fx: Effects) -> bool {
        for update in &fx.stored {
            if let Err(e) = live.log.append(live.next_seq, update).await {
                worker::console_error!("storing a room update: {e}");
                return false;
            }
            live.next_seq += 1;
        }
        let edited = !fx.stored.is_empty();
        self.deliver(fx.out);
        store::after(&live.app, &live.file, fx.holder_left).await;
        if edited {
            let now = now_ms();
            live.schedule.edited(now);
            self.wake_at(live.schedule.due(), now).await;
        }
        true
    }

    async fn wake_at(&self, due: Option<i64>, now: i64) {
        if let Some(due) = due {
            if let Err(e) = self.state.storage().set_alarm((due - now).max(0)).await {
                worker::console_error!("setting a room's alarm: {e}");
            }
        }
    }

    /// Writes the room back into its file (merging saves made meanwhile); on a failure the
    /// alarm tries again.
    async fn write_back(&self, live: &mut Live) {
        let (out, done) = live.sync_file().await;
        self.deliver(out);
        match done {
            Ok(()) => live.schedule.written(),
            Err(e) => {
                worker::console_error!("writing a room into its file: {e}");
                let now = now_ms();
                live.schedule.failed(now);
                self.wake_at(Some(now + RETRY_AFTER_MS), now).await;
            }
        }
    }

    /// Ends every socket: the room in memory is ahead of its storage, or cannot open. The
    /// clients reconnect and resync from what is stored.
    fn close_all(&self, reason: &str) {
        for ws in self.state.get_websockets() {
            let _ = ws.close(Some(1011), Some(reason));
        }
    }

    async fn accept(&self, req: &Request) -> std::result::Result<Response, ApiError> {
        let optional = |name: &str| req.headers().get(name).ok().flatten();
        let header = |name: &str| -> std::result::Result<String, ApiError> {
            optional(name)
                .ok_or_else(|| ApiError::internal(format!("a room connect without {name}")))
        };
        let (file, owner) = (header(FILE_HEADER)?, header(OWNER_HEADER)?);
        let edit = header(EDIT_HEADER)? == "1";
        let until_ms = header(UNTIL_HEADER)?.parse().unwrap_or(0);
        // Optional: a connect through a link has no user, an owner's has no link.
        let share_id = optional(SHARE_HEADER);
        let user_id = optional(USER_HEADER);
        let log = DoLog::new(&self.state)?;
        log.identify(&owner, &file)?;
        if log.identity()? != Some((UserId::from(owner), FileId::from(file))) {
            return Err(ApiError::internal("a room object asked for another file"));
        }
        // A link revoked between its check and now.
        if let Some(share) = &share_id {
            if log.is_revoked(share)? {
                return Err(cloudos_core::shares::SharesError::Gone.into());
            }
        }
        {
            let mut live = self.live.lock().await;
            match live.as_mut() {
                None => *live = Some(self.open().await?),
                Some(l) => {
                    // Marked again: the last socket may have left (and the mark with it)
                    // while this one waited for the room.
                    store::mark_open(&l.app, &l.file).await?;
                    // Still in memory after everyone left, the room merges a save made
                    // meanwhile (when nobody was there to be told of it) before anyone joins,
                    // as a room opening from storage does.
                    self.write_back(l).await;
                }
            }
        }
        let mut conn = [0u8; 8];
        getrandom::fill(&mut conn).map_err(ApiError::internal)?;
        let pair = WebSocketPair::new().map_err(ApiError::internal)?;
        // Hibernation API: the runtime keeps the socket while the object sleeps, and its
        // attachment with it. The socket joins the room with its first message (every Yjs
        // client opens with sync step 1).
        self.state.accept_web_socket(&pair.server);
        let attached = Attached {
            // Attachments go through JS numbers: 53 bits at most.
            conn: u64::from_le_bytes(conn) >> 11,
            edit,
            until_ms,
            share_id,
            user_id,
        };
        if let Err(e) = pair.server.serialize_attachment(attached) {
            let _ = pair
                .server
                .close(Some(1011), Some("the room could not take the socket"));
            return Err(ApiError::internal(e));
        }
        Response::from_websocket(pair.client).map_err(ApiError::internal)
    }
}

impl DurableObject for Room {
    fn new(state: State, env: Env) -> Self {
        Room {
            state,
            env,
            live: Mutex::new(None),
        }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        match req.path().as_str() {
            "/connect" => match self.accept(&req).await {
                Ok(res) => Ok(res),
                Err(e) => problem(e),
            },
            "/saved" => {
                // Nobody here: the room opens with the save when someone joins.
                if self.sockets().is_empty() {
                    return Ok(Response::empty()?.with_status(204));
                }
                let mut guard = self.live.lock().await;
                match guard.as_mut() {
                    Some(live) => self.write_back(live).await,
                    // Opening merges every save made meanwhile.
                    None => match self.open().await {
                        Ok(live) => *guard = Some(live),
                        Err(e) => worker::console_error!("opening a room: {}", e.detail),
                    },
                }
                Ok(Response::empty()?.with_status(204))
            }
            "/lock" => {
                // Nobody here: the room reads the lock when it opens. Asleep with sockets,
                // it wakes (opening reads the lock) so they hear of it now.
                if self.sockets().is_empty() {
                    return Ok(Response::empty()?.with_status(204));
                }
                let mut guard = self.live.lock().await;
                match guard.as_mut() {
                    Some(live) => {
                        let fx = store::refresh_lock(&live.app, &mut live.room, &live.file).await;
                        self.apply(live, fx).await;
                    }
                    None => match self.open().await {
                        Ok(mut live) => {
                            let fx = live.room.set_lock(live.room.lock().cloned());
                            self.apply(&mut live, fx).await;
                            *guard = Some(live);
                        }
                        Err(e) => worker::console_error!("opening a room: {}", e.detail),
                    },
                }
                Ok(Response::empty()?.with_status(204))
            }
            "/revoke" => {
                let share = req.headers().get(SHARE_HEADER)?;
                let user = req.headers().get(USER_HEADER)?;
                let all = req.headers().get(ALL_HEADER)?.is_some();
                let ending = match (share, user) {
                    _ if all => Ending::All,
                    (Some(share), _) => {
                        DoLog::new(&self.state)
                            .and_then(|log| log.revoke(&share))
                            .map_err(|e| worker::Error::RustError(e.to_string()))?;
                        Ending::Link(share)
                    }
                    (None, Some(user)) => Ending::User(user),
                    (None, None) => return Response::error("nothing named", 400),
                };
                let gone: Vec<Attached> = self
                    .sockets()
                    .into_iter()
                    .filter(|(a, _)| ending.picks(a))
                    .map(|(a, ws)| {
                        end(&ws, &a);
                        let _ = ws.close(Some(ending.code()), Some(ending.reason()));
                        a
                    })
                    .collect();
                let mut guard = self.live.lock().await;
                if let Some(live) = guard.as_mut() {
                    for a in gone {
                        let fx = live.room.leave(a.conn);
                        self.apply(live, fx).await;
                    }
                }
                Ok(Response::empty()?.with_status(204))
            }
            _ => Response::error("not found", 404),
        }
    }

    async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> Result<()> {
        let WebSocketIncomingMessage::Binary(bytes) = message else {
            return Ok(());
        };
        let Some(at) = attached(&ws) else {
            let _ = ws.close(Some(1011), Some("a socket the room does not know"));
            return Ok(());
        };
        if at.expired(now_ms()) {
            close_expired(&ws);
            return Ok(());
        }
        let mut guard = self.live.lock().await;
        if guard.is_none() {
            match self.open().await {
                Ok(live) => *guard = Some(live),
                Err(e) => {
                    worker::console_error!("opening a room: {}", e.detail);
                    self.close_all("the room could not open; try again");
                    return Ok(());
                }
            }
        }
        let Some(live) = guard.as_mut() else {
            return Ok(());
        };
        if !live.room.contains(at.conn) {
            for frame in live.room.join(at.conn, at.access(), at.user_id.clone()) {
                let _ = ws.send_with_bytes(&frame);
            }
        }
        let (fx, error) = live.room.receive(at.conn, &bytes);
        if !self.apply(live, fx).await {
            *guard = None;
            self.close_all("the room restarts");
            return Ok(());
        }
        if let Some(e) = error {
            worker::console_log!("dropping a room client: {e}");
            end(&ws, &at);
            let _ = ws.close(Some(1003), Some("not a y-websocket message"));
            let fx = live.room.leave(at.conn);
            self.apply(live, fx).await;
        }
        Ok(())
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        code: usize,
        reason: String,
        _was_clean: bool,
    ) -> Result<()> {
        crate::sockets::echo_close(&ws, code, reason);
        let Some(at) = attached(&ws) else {
            return Ok(());
        };
        let mut guard = self.live.lock().await;
        // Asleep, the room wakes to see this one leave (its alarm writes what is unwritten,
        // but the lock of a holder who left must start to end now, as natively).
        if guard.is_none() {
            match self.open().await {
                Ok(live) => *guard = Some(live),
                Err(e) => {
                    worker::console_error!("opening a room for a leave: {}", e.detail);
                    return Ok(());
                }
            }
        }
        let Some(live) = guard.as_mut() else {
            return Ok(());
        };
        if !live.room.contains(at.conn) {
            // Woken by this close: the socket joins for the room to see it leave.
            live.room.join(at.conn, at.access(), at.user_id.clone());
        }
        let fx = live.room.leave(at.conn);
        self.apply(live, fx).await;
        let others = self.sockets().iter().any(|(a, _)| a.conn != at.conn);
        if !others {
            // The last one left: the file gets the text now.
            self.write_back(live).await;
            if live.schedule.due().is_none() {
                if let Err(e) = store::mark_closed(&live.app, &live.file).await {
                    worker::console_error!("marking a room closed: {e}");
                }
            }
        }
        Ok(())
    }

    async fn websocket_error(&self, _ws: WebSocket, _error: worker::Error) -> Result<()> {
        // The runtime closes the socket (and calls `websocket_close`); clients reconnect.
        Ok(())
    }

    async fn alarm(&self) -> Result<Response> {
        let mut guard = self.live.lock().await;
        if guard.is_none() {
            match self.open().await {
                Ok(live) => *guard = Some(live),
                Err(e) => {
                    // `open` writes back too; it tries again shortly unless the file is gone.
                    if e.status != http::StatusCode::NOT_FOUND {
                        worker::console_error!("opening a room for its alarm: {}", e.detail);
                        let now = now_ms();
                        self.wake_at(Some(now + RETRY_AFTER_MS), now).await;
                    }
                    return Response::empty();
                }
            }
        } else if let Some(live) = guard.as_mut() {
            self.write_back(live).await;
        }
        // Written back with nobody here (woken by its alarm after everyone left): the room
        // is closed, and saves need not be sent to it.
        if let Some(live) = guard.as_ref() {
            if self.sockets().is_empty() && live.schedule.due().is_none() {
                if let Err(e) = store::mark_closed(&live.app, &live.file).await {
                    worker::console_error!("marking a room closed: {e}");
                }
            }
        }
        Response::empty()
    }
}
