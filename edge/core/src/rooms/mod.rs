//! Live rooms: one per text file being edited together, speaking the y-websocket protocol
//! (sync step 1/2, updates, awareness) over `yrs`, so any Yjs client can join.
//!
//! A [`Room`] is sans-IO: the host hands it each connection's bytes and sends what it says
//! to whom; the room never touches a socket, a task or storage. Every update it accepts is
//! returned as [`Effects::stored`], which the host appends to the room's durable log before
//! sending anything on (so nothing is acknowledged that is not kept); a read-only
//! connection's updates are dropped here, whatever the host does, and so are everyone's but
//! the holder's while the file is locked ([`crate::locks`]). The room tells its clients of
//! the lock as its own presence (`{"room": {"lock": {holder, name, until}}}`), which any Yjs
//! client receives and no client can forge.

pub mod admit;
pub mod handlers;
pub mod log;
pub mod schedule;
pub mod store;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use yrs::encoding::read::Cursor;
use yrs::sync::time::Clock;
use yrs::sync::{Awareness, Message, MessageReader, SyncMessage};
use yrs::updates::decoder::{Decode, DecoderV1};
use yrs::updates::encoder::{Encode, Encoder, EncoderV1};
use yrs::{Doc, GetString, ReadTxn, StateVector, Text, Transact, Update};

/// The shared text every client binds to (`ydoc.getText("content")`).
pub const TEXT: &str = "content";

/// The most presence entries (Yjs client ids) one connection speaks for: a tab is one,
/// a few for a client that reloads its document.
pub const MAX_PRESENCE_IDS: usize = 8;
/// The largest presence state (JSON) kept for one client: a name, a colour, a cursor.
pub const MAX_PRESENCE_BYTES: usize = 4 * 1024;
/// How long a lock outlives its holder's last connection: a reconnect within it (a lost
/// network, a reload) keeps the lock; otherwise it ends then.
pub const LEAVE_GRACE_MS: i64 = 10_000;

/// A connection to a room, numbered by its host.
pub type ConnId = u64;

/// What a connection may do in its room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Owners and edit-link holders: their updates are applied and passed on.
    Edit,
    /// View-link holders: they receive everything; what they send besides presence is dropped.
    View,
}

/// Why a room, or its storage, refused something.
#[derive(Debug, thiserror::Error)]
pub enum RoomError {
    #[error("not a y-websocket message: {0}")]
    Malformed(String),
    #[error("an update that does not apply: {0}")]
    BadUpdate(String),
    #[error("no such connection in this room")]
    UnknownConnection,
    /// An edit link, or no link, needs someone signed in.
    #[error("sign in to edit")]
    SignInNeeded,
    /// The link is dead, or does not reach the file.
    #[error(transparent)]
    Shares(#[from] crate::shares::SharesError),
    /// The file is missing, someone else's, or not text a room can hold.
    #[error(transparent)]
    Files(#[from] crate::files::FilesError),
    #[error(transparent)]
    Db(#[from] crate::ports::DbError),
    /// The file was removed for good (not just moved to the Trash): whatever a host keeps
    /// of its room can go.
    #[error("no such file or folder")]
    Removed,
}

/// Where a message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    /// To one connection.
    To(ConnId, Vec<u8>),
    /// To every connection but one (the one it came from).
    AllBut(ConnId, Vec<u8>),
}

/// What handling some bytes led to, in order: first store, then send.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Effects {
    /// Updates (Yjs v1) to append to the room's log, in order, before `out` is sent.
    pub stored: Vec<Vec<u8>>,
    pub out: Vec<Out>,
    /// The lock's holder left the room (their last connection): the host shortens the lock
    /// to [`LEAVE_GRACE_MS`] ([`crate::locks::left_room`]).
    pub holder_left: Option<String>,
}

impl Effects {
    /// Adds what handling later bytes led to, keeping the order: a host handling a burst
    /// stores everything once, then sends everything.
    pub fn then(&mut self, later: Effects) {
        self.stored.extend(later.stored);
        self.out.extend(later.out);
        self.holder_left = self.holder_left.take().or(later.holder_left);
    }
}

/// A file's lock as its room enforces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomLock {
    /// The holder's user id.
    pub holder: String,
    pub name: String,
    /// When the lease ends (ms since the epoch): from then on anyone who edits, edits.
    pub until_ms: i64,
}

struct Conn {
    access: Access,
    /// Who opened it, signed in (a view link's holder may be nobody).
    user: Option<String>,
    /// The awareness clients this connection spoke for, removed when it leaves.
    clients: HashSet<yrs::block::ClientID>,
}

/// One file's live document, its presence, and its connections.
pub struct Room {
    awareness: Awareness,
    conns: HashMap<ConnId, Conn>,
    /// What each transaction actually changed, as yrs reports it on commit: what is stored
    /// and passed on (an update held back for a missing dependency changes nothing until
    /// the dependency arrives, and then comes out with it).
    changes: Arc<Mutex<Vec<Vec<u8>>>>,
    lock: Option<RoomLock>,
    clock: Box<dyn Clock>,
    /// The Yjs client id the room speaks for itself under (its lock), the same across
    /// restarts of the room, and no client may use; and that presence's clock.
    presence_id: u64,
    presence_clock: u32,
    /// Who changed the text since the last write-back: the authors of the next version.
    editors: BTreeSet<String>,
}

/// Dates presence with `app`'s clock (hosts build rooms without naming `yrs`).
pub fn clock_of(app: &crate::App) -> impl Clock + Clone + 'static {
    let clock = app.ports.clock.clone();
    move || clock.now_ms().max(0) as u64
}

fn encode(msg: &Message) -> Vec<u8> {
    let mut e = EncoderV1::new();
    msg.encode(&mut e);
    e.to_vec()
}

impl Room {
    /// A room over `doc` (loaded by the host from the file, or from its snapshot and log).
    /// `clock` dates presence and lock leases (milliseconds; the host's clock).
    pub fn new(doc: Doc, clock: impl Clock + Clone + 'static) -> Self {
        let changes = Arc::new(Mutex::new(Vec::new()));
        let sink = changes.clone();
        // A new document has no transaction open, so subscribing cannot fail.
        let _ = doc.observe_update_v1("room", move |_, event| {
            if let Ok(mut c) = sink.lock() {
                c.push(event.update.clone());
            }
        });
        Room {
            awareness: Awareness::with_clock(doc, clock.clone()),
            conns: HashMap::new(),
            changes,
            lock: None,
            clock: Box::new(clock),
            presence_id: 0,
            presence_clock: 0,
            editors: BTreeSet::new(),
        }
    }

    /// The room speaks for itself under `id` (derived from its file, so a restarted room
    /// replaces what clients heard from it before).
    pub fn with_presence_id(mut self, id: u64) -> Self {
        self.presence_id = id;
        self
    }

    /// The changes committed since the last call.
    fn take_changes(&self) -> Vec<Vec<u8>> {
        self.changes
            .lock()
            .map(|mut c| std::mem::take(&mut *c))
            .unwrap_or_default()
    }

    /// A document holding `text`, as a room starts for a file nobody has edited live yet.
    pub fn doc_with_text(text: &str) -> Doc {
        let doc = Doc::new();
        let content = doc.get_or_insert_text(TEXT);
        content.insert(&mut doc.transact_mut(), 0, text);
        doc
    }

    /// A document from a snapshot and the updates logged after it, in order.
    pub fn doc_from_log<'a>(
        snapshot: Option<&'a [u8]>,
        log: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Doc, RoomError> {
        let doc = Doc::new();
        doc.get_or_insert_text(TEXT);
        {
            let mut txn = doc.transact_mut();
            for bytes in snapshot.into_iter().chain(log) {
                let update =
                    Update::decode_v1(bytes).map_err(|e| RoomError::BadUpdate(e.to_string()))?;
                txn.apply_update(update)
                    .map_err(|e| RoomError::BadUpdate(e.to_string()))?;
            }
        }
        Ok(doc)
    }

    /// Who changed the text since [`Room::written_back`] (user ids, sorted).
    pub fn editors(&self) -> Vec<String> {
        self.editors.iter().cloned().collect()
    }

    /// The text is in the file: the next version's authors start afresh.
    pub fn written_back(&mut self) {
        self.editors.clear();
    }

    /// The room's document.
    pub fn doc(&self) -> &Doc {
        self.awareness.doc()
    }

    /// The text as it is now.
    pub fn text(&self) -> String {
        let doc = self.awareness.doc();
        let content = doc.get_or_insert_text(TEXT);
        let txn = doc.transact();
        content.get_string(&txn)
    }

    /// The whole document as one update (Yjs v1): the snapshot a compacted log starts from.
    pub fn snapshot(&self) -> Vec<u8> {
        self.awareness
            .doc()
            .transact()
            .encode_state_as_update_v1(&StateVector::default())
    }

    /// How many connections are in the room.
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    /// Whether `conn` has joined (a host that forgets its room, like a hibernating Durable
    /// Object, joins its sockets again as they speak).
    pub fn contains(&self, conn: ConnId) -> bool {
        self.conns.contains_key(&conn)
    }

    /// Whether nobody is in the room.
    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// Someone joins (`user`: who, when signed in): the frames to send them first (the
    /// room's sync step 1, so they send what it lacks, then everyone's presence, the lock
    /// among it; one message per frame, as y-websocket's clients read them).
    pub fn join(&mut self, conn: ConnId, access: Access, user: Option<String>) -> Vec<Vec<u8>> {
        self.conns.insert(
            conn,
            Conn {
                access,
                user,
                clients: HashSet::new(),
            },
        );
        let sv = self.awareness.doc().transact().state_vector();
        let mut frames = vec![encode(&Message::Sync(SyncMessage::SyncStep1(sv)))];
        if let Ok(update) = self.awareness.update() {
            if !update.clients.is_empty() {
                frames.push(encode(&Message::Awareness(update)));
            }
        }
        if self.lock_now().is_some() {
            frames.push(self.own_state());
        }
        frames
    }

    /// Handles the bytes `conn` sent (one or more messages). On an error the effects of what
    /// came before it are still there (and must still be stored and sent): a frame's first
    /// update may have changed the document before its second turned out malformed.
    pub fn receive(&mut self, conn: ConnId, bytes: &[u8]) -> (Effects, Option<RoomError>) {
        let mut fx = Effects::default();
        let error = self.receive_into(conn, bytes, &mut fx).err();
        (fx, error)
    }

    fn receive_into(
        &mut self,
        conn: ConnId,
        bytes: &[u8],
        fx: &mut Effects,
    ) -> Result<(), RoomError> {
        let (access, user) = self
            .conns
            .get(&conn)
            .map(|c| (c.access, c.user.clone()))
            .ok_or(RoomError::UnknownConnection)?;
        let mut decoder = DecoderV1::new(Cursor::new(bytes));
        for msg in MessageReader::new(&mut decoder) {
            let msg = msg.map_err(|e| RoomError::Malformed(e.to_string()))?;
            match msg {
                Message::Sync(SyncMessage::SyncStep1(sv)) => {
                    // What the client lacks, then the room's own state: a client compares
                    // it with its own to know the room holds (has stored) all its edits.
                    let (update, mine) = {
                        let txn = self.awareness.doc().transact();
                        (txn.encode_state_as_update_v1(&sv), txn.state_vector())
                    };
                    let reply = Message::Sync(SyncMessage::SyncStep2(update));
                    fx.out.push(Out::To(conn, encode(&reply)));
                    let state = Message::Sync(SyncMessage::SyncStep1(mine));
                    fx.out.push(Out::To(conn, encode(&state)));
                    // Clients forget presence not renewed within 30 s: a client asking
                    // (every 15 s for the Editor) hears of the lock again. A lease that
                    // ended since is told to everyone as gone.
                    if self.lock.is_some() {
                        let ended = self.lock_now().is_none();
                        let frame = self.own_state();
                        if ended {
                            fx.out
                                .extend(self.conns.keys().map(|c| Out::To(*c, frame.clone())));
                        } else {
                            fx.out.push(Out::To(conn, frame));
                        }
                    }
                }
                Message::Sync(SyncMessage::SyncStep2(update) | SyncMessage::Update(update)) => {
                    if !crate::locks::may_edit(access, user.as_deref(), self.lock_now()) {
                        continue;
                    }
                    let applied = self.apply(&update);
                    let changes = self.take_changes();
                    if let (false, Some(who)) = (changes.is_empty(), &user) {
                        self.editors.insert(who.clone());
                    }
                    for change in changes {
                        let msg = encode(&Message::Sync(SyncMessage::Update(change.clone())));
                        fx.stored.push(change);
                        fx.out.push(Out::AllBut(conn, msg));
                    }
                    applied?;
                }
                Message::Awareness(mut update) => {
                    self.own_presence(conn, &mut update);
                    if update.clients.is_empty() {
                        continue;
                    }
                    let ids: Vec<_> = update.clients.keys().copied().collect();
                    self.awareness
                        .apply_update(update.clone())
                        .map_err(|e| RoomError::Malformed(e.to_string()))?;
                    if let Some(c) = self.conns.get_mut(&conn) {
                        c.clients.extend(ids);
                    }
                    fx.out
                        .push(Out::AllBut(conn, encode(&Message::Awareness(update))));
                }
                Message::AwarenessQuery => {
                    if let Ok(update) = self.awareness.update() {
                        fx.out
                            .push(Out::To(conn, encode(&Message::Awareness(update))));
                    }
                }
                // Permissions are the host's (checked before the socket opened); anything
                // else is an extension this room does not speak.
                Message::Auth(_) | Message::Custom(..) => {}
            }
        }
        Ok(())
    }

    /// The lock, unless its lease has ended (then it is forgotten).
    fn lock_now(&mut self) -> Option<&RoomLock> {
        let now = self.clock.now() as i64;
        if self.lock.as_ref().is_some_and(|l| l.until_ms <= now) {
            self.lock = None;
        }
        self.lock.as_ref()
    }

    /// The room's own presence, renewed, as a frame: the lock, or `null` (none). Its clock
    /// is wall-clock seconds at least, so a restarted room's word is newer than its last.
    fn own_state(&mut self) -> Vec<u8> {
        let json = match self.lock_now() {
            Some(l) => serde_json::json!({"room": {"lock": {
                "holder": l.holder, "name": l.name, "until": l.until_ms}}})
            .to_string(),
            None => "null".to_owned(),
        };
        let now_secs = (self.clock.now() / 1000).min(u64::from(u32::MAX)) as u32;
        self.presence_clock = (self.presence_clock.saturating_add(1)).max(now_secs);
        let entry = yrs::sync::awareness::AwarenessUpdateEntry {
            clock: self.presence_clock,
            json: json.into(),
        };
        let update = yrs::sync::AwarenessUpdate {
            clients: HashMap::from([(yrs::block::ClientID::new(self.presence_id), entry)]),
        };
        encode(&Message::Awareness(update))
    }

    /// The file's lock changed (taken, renewed, released or broken): the room enforces the
    /// new one and tells everyone.
    pub fn set_lock(&mut self, lock: Option<RoomLock>) -> Effects {
        let mut fx = Effects::default();
        if lock.is_none() && self.lock.is_none() {
            return fx;
        }
        self.lock = lock;
        let frame = self.own_state();
        fx.out
            .extend(self.conns.keys().map(|c| Out::To(*c, frame.clone())));
        fx
    }

    /// The lock the room enforces.
    pub fn lock(&self) -> Option<&RoomLock> {
        self.lock.as_ref()
    }

    /// Keeps of a presence update what `conn` may say: about client ids no other connection
    /// speaks for (nobody moves or removes someone else's cursor, or the room's own
    /// presence, or claims to speak for the room), at most [`MAX_PRESENCE_IDS`] of them,
    /// each state at most [`MAX_PRESENCE_BYTES`].
    fn own_presence(&self, conn: ConnId, update: &mut yrs::sync::AwarenessUpdate) {
        let mine = self
            .conns
            .get(&conn)
            .map(|c| c.clients.clone())
            .unwrap_or_default();
        let theirs: HashSet<yrs::block::ClientID> = self
            .conns
            .iter()
            .filter(|(c, _)| **c != conn)
            .flat_map(|(_, c)| c.clients.iter().copied())
            .collect();
        let mut room_for = MAX_PRESENCE_IDS.saturating_sub(mine.len());
        let room = yrs::block::ClientID::new(self.presence_id);
        update.clients.retain(|id, entry| {
            if theirs.contains(id) || *id == room || entry.json.len() > MAX_PRESENCE_BYTES {
                return false;
            }
            if !plain_presence(&entry.json) {
                return false;
            }
            if mine.contains(id) {
                return true;
            }
            if room_for == 0 {
                return false;
            }
            room_for -= 1;
            true
        });
    }

    /// Applies an update; what it changed is in `take_changes` (nothing for a repeat), even
    /// when yrs refuses it part way.
    fn apply(&mut self, bytes: &[u8]) -> Result<(), RoomError> {
        let update = Update::decode_v1(bytes).map_err(|e| RoomError::BadUpdate(e.to_string()))?;
        let mut txn = self.awareness.doc().transact_mut();
        txn.apply_update(update)
            .map_err(|e| RoomError::BadUpdate(e.to_string()))
    }

    /// Someone leaves: their presence goes, and everyone else is told. The lock's holder
    /// leaving with their last connection leaves the lock [`LEAVE_GRACE_MS`] more (enough
    /// to come back after a lost network or a reload).
    pub fn leave(&mut self, conn: ConnId) -> Effects {
        let mut fx = Effects::default();
        let Some(gone) = self.conns.remove(&conn) else {
            return fx;
        };
        let holder = self.lock_now().map(|l| l.holder.clone());
        if holder.is_some() && gone.user == holder {
            let still_here = self.conns.values().any(|c| c.user == gone.user);
            if !still_here {
                let until = self.clock.now() as i64 + LEAVE_GRACE_MS;
                let lock = self.lock.clone().map(|mut l| {
                    l.until_ms = l.until_ms.min(until);
                    l
                });
                fx = self.set_lock(lock);
                fx.holder_left = holder;
            }
        }
        if gone.clients.is_empty() {
            return fx;
        }
        for id in &gone.clients {
            self.awareness.remove_state(*id);
        }
        if let Ok(update) = self
            .awareness
            .update_with_clients(gone.clients.iter().copied())
        {
            let msg = encode(&Message::Awareness(update));
            fx.out
                .extend(self.conns.keys().map(|c| Out::To(*c, msg.clone())));
        }
        fx
    }

    /// Applies an update made outside the room's connections (a merged save): stored, and
    /// sent to everyone.
    pub fn apply_outside(&mut self, update: Vec<u8>) -> Result<Effects, RoomError> {
        let applied = self.apply(&update);
        let fx = self.to_everyone();
        applied.map(|()| fx)
    }

    /// What was committed since the last look, stored and sent to every connection.
    fn to_everyone(&self) -> Effects {
        let mut fx = Effects::default();
        for change in self.take_changes() {
            let msg = encode(&Message::Sync(SyncMessage::Update(change.clone())));
            fx.stored.push(change);
            fx.out
                .extend(self.conns.keys().map(|c| Out::To(*c, msg.clone())));
        }
        fx
    }

    /// Merges a new full text (a save made without the room, e.g. `PUT /files/:id/content`)
    /// into the document as the smallest edit from what it holds, so concurrent edits in the
    /// room are kept rather than overwritten; the edit is stored and sent to everyone.
    pub fn merge_text(&mut self, new_text: &str) -> Effects {
        let doc = self.awareness.doc();
        let content = doc.get_or_insert_text(TEXT);
        {
            let mut txn = doc.transact_mut();
            let old = content.get_string(&txn);
            let (start, removed, inserted) = text_diff(&old, new_text);
            if removed > 0 {
                content.remove_range(&mut txn, start, removed);
            }
            if !inserted.is_empty() {
                content.insert(&mut txn, start, inserted);
            }
        }
        self.to_everyone()
    }
}

/// Whether a client's presence state is one it may send: `null` (gone), or a JSON object
/// without the room's own `room` field. Anything else (what only a lenient parser reads, a
/// claim to speak for the room) is dropped, so no client can show others a lock.
fn plain_presence(json: &str) -> bool {
    json.trim() == "null"
        || serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(json)
            .is_ok_and(|state| !state.contains_key("room"))
}

/// The smallest single edit turning `old` into `new`: where it starts, how much it removes
/// and what it inserts, in the units Yjs text indexes by (UTF-8 bytes in yrs's default
/// offset kind), cut on character boundaries.
fn text_diff<'a>(old: &str, new: &'a str) -> (u32, u32, &'a str) {
    let prefix = old
        .char_indices()
        .zip(new.chars())
        .find(|((_, a), b)| a != b)
        .map_or(old.len().min(new.len()), |((i, _), _)| i);
    let prefix = floor_boundary(new, prefix.min(new.len()));
    let (old_rest, new_rest) = (&old[prefix..], &new[prefix..]);
    let suffix = old_rest
        .chars()
        .rev()
        .zip(new_rest.chars().rev())
        .take_while(|(a, b)| a == b)
        .map(|(a, _)| a.len_utf8())
        .sum::<usize>();
    let removed = old_rest.len() - suffix;
    let inserted = &new_rest[..new_rest.len() - suffix];
    (prefix as u32, removed as u32, inserted)
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smallest_edit_between_two_texts() {
        assert_eq!(
            text_diff("hello world", "hello brave world"),
            (6, 0, "brave ")
        );
        assert_eq!(text_diff("abc", "abc"), (3, 0, ""));
        assert_eq!(text_diff("abcdef", "abXef"), (2, 2, "X"));
        assert_eq!(text_diff("", "new"), (0, 0, "new"));
        assert_eq!(text_diff("gone", ""), (0, 4, ""));
        // Characters of several bytes are never cut.
        assert_eq!(text_diff("née", "nue"), (1, 2, "u"));
        assert_eq!(text_diff("aa", "a"), (1, 1, ""));
    }
}
