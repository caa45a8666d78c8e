//! Rooms speak the y-websocket protocol with real Yjs documents (`yrs` clients; the hosts'
//! suite, `tests/tests/collab.rs`, puts them on sockets): concurrent edits converge,
//! a late joiner syncs, a viewer's edits are dropped, every accepted update is in the log
//! (which rebuilds the room), a save made without the room merges instead of clobbering.

use std::collections::VecDeque;

use cloudos_core::rooms::{Access, ConnId, Effects, Out, Room, TEXT};
use yrs::encoding::read::Cursor;
use yrs::sync::{Message, MessageReader, SyncMessage};
use yrs::updates::decoder::{Decode, DecoderV1};
use yrs::updates::encoder::{Encode, Encoder, EncoderV1};
use yrs::{Doc, GetString, ReadTxn, Text, Transact, Update};

/// A Yjs client as y-websocket runs one: syncs on connect, answers step 1, applies step 2
/// and updates, and sends its own edits as updates.
struct Client {
    conn: ConnId,
    doc: Doc,
    inbox: VecDeque<Vec<u8>>,
}

fn encode(msg: &Message) -> Vec<u8> {
    let mut e = EncoderV1::new();
    msg.encode(&mut e);
    e.to_vec()
}

impl Client {
    fn new(conn: ConnId) -> Self {
        Client {
            conn,
            doc: Doc::with_client_id(conn + 100),
            inbox: VecDeque::new(),
        }
    }

    fn text(&self) -> String {
        let t = self.doc.get_or_insert_text(TEXT);
        t.get_string(&self.doc.transact())
    }

    /// What it sends on connecting: its state vector.
    fn hello(&self) -> Vec<u8> {
        let sv = self.doc.transact().state_vector();
        encode(&Message::Sync(SyncMessage::SyncStep1(sv)))
    }

    /// Handles what the room sent; what it answers.
    fn handle(&self, bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut replies = Vec::new();
        let mut d = DecoderV1::new(Cursor::new(bytes));
        for msg in MessageReader::new(&mut d) {
            match msg.unwrap() {
                Message::Sync(SyncMessage::SyncStep1(sv)) => {
                    let u = self.doc.transact().encode_state_as_update_v1(&sv);
                    replies.push(encode(&Message::Sync(SyncMessage::SyncStep2(u))));
                }
                Message::Sync(SyncMessage::SyncStep2(u) | SyncMessage::Update(u)) => {
                    let mut txn = self.doc.transact_mut();
                    txn.apply_update(Update::decode_v1(&u).unwrap()).unwrap();
                }
                _ => {}
            }
        }
        replies
    }

    /// Makes a local edit; the update message it sends for it.
    fn edit(&self, rng: &mut Rng) -> Vec<u8> {
        let t = self.doc.get_or_insert_text(TEXT);
        let before = self.doc.transact().state_vector();
        {
            let mut txn = self.doc.transact_mut();
            // yrs indexes text by UTF-8 bytes: edits start and end on characters.
            let text = t.get_string(&txn);
            let bounds: Vec<u32> = text
                .char_indices()
                .map(|(i, _)| i as u32)
                .chain([text.len() as u32])
                .collect();
            let chars = bounds.len() as u32 - 1;
            if chars > 0 && rng.below(3) == 0 {
                let from = rng.below(chars);
                let to = (from + 1 + rng.below(4)).min(chars);
                let (at, end) = (bounds[from as usize], bounds[to as usize]);
                t.remove_range(&mut txn, at, end - at);
            } else {
                let at = bounds[rng.below(chars + 1) as usize];
                let word = ["a", "bc", "def", "é", "日本", "\n"][rng.below(6) as usize];
                t.insert(&mut txn, at, word);
            }
        }
        let u = self.doc.transact().encode_state_as_update_v1(&before);
        encode(&Message::Sync(SyncMessage::Update(u)))
    }
}

/// A small deterministic generator, so a failing seed can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u32) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % u64::from(n.max(1))) as u32
    }
}

fn clock() -> impl yrs::sync::time::Clock + Clone + 'static {
    || 1_000_u64
}

/// Routes the room's effects to the clients' inboxes; keeps the log.
fn route(fx: Effects, clients: &mut [Client], log: &mut Vec<Vec<u8>>) {
    log.extend(fx.stored);
    for out in fx.out {
        for c in clients.iter_mut() {
            match &out {
                Out::To(to, bytes) if *to == c.conn => c.inbox.push_back(bytes.clone()),
                Out::AllBut(from, bytes) if *from != c.conn => c.inbox.push_back(bytes.clone()),
                _ => {}
            }
        }
    }
}

/// What the room makes of `bytes` from `conn`, which must be fine.
fn recv(room: &mut Room, conn: ConnId, bytes: &[u8]) -> Effects {
    let (fx, error) = room.receive(conn, bytes);
    assert!(error.is_none(), "{error:?}");
    fx
}

/// Connects a client: the room's hello to it, its hello to the room.
fn connect(room: &mut Room, c: &mut Client, access: Access) -> Effects {
    c.inbox.extend(room.join(c.conn, access, None));
    recv(room, c.conn, &c.hello())
}

/// Delivers one message from a client's inbox, and sends its answers to the room.
fn deliver_one(room: &mut Room, clients: &mut [Client], i: usize, log: &mut Vec<Vec<u8>>) {
    let Some(bytes) = clients[i].inbox.pop_front() else {
        return;
    };
    for reply in clients[i].handle(&bytes) {
        let fx = recv(room, clients[i].conn, &reply);
        route(fx, clients, log);
    }
}

fn drain(room: &mut Room, clients: &mut [Client], log: &mut Vec<Vec<u8>>) {
    while clients.iter().any(|c| !c.inbox.is_empty()) {
        for i in 0..clients.len() {
            deliver_one(room, clients, i, log);
        }
    }
}

#[test]
fn concurrent_random_edits_converge_and_a_late_joiner_syncs() {
    for seed in [7_u64, 42, 1234, 99_991] {
        let mut rng = Rng(seed);
        let mut room = Room::new(Room::doc_with_text("shared start\n"), clock());
        // What the room started from is the log's base: the host stores it first.
        let start = room.snapshot();
        let mut clients: Vec<Client> = (1..=4).map(Client::new).collect();
        let mut log = Vec::new();
        for i in 0..clients.len() {
            let fx = connect(&mut room, &mut clients[i], Access::Edit);
            route(fx, &mut clients, &mut log);
        }
        // Edits and deliveries interleave at random: each client edits on whatever it has
        // seen so far, as people typing at once do.
        for _ in 0..400 {
            let i = rng.below(clients.len() as u32) as usize;
            if rng.below(2) == 0 {
                let msg = clients[i].edit(&mut rng);
                let fx = recv(&mut room, clients[i].conn, &msg);
                route(fx, &mut clients, &mut log);
            } else {
                deliver_one(&mut room, &mut clients, i, &mut log);
            }
        }
        drain(&mut room, &mut clients, &mut log);
        let text = room.text();
        for c in &clients {
            assert_eq!(c.text(), text, "seed {seed}: client {} diverged", c.conn);
        }
        assert!(
            text.len() > "shared start\n".len() / 2,
            "seed {seed}: {text:?}"
        );

        // A late joiner gets everything.
        let mut late = vec![Client::new(9)];
        let fx = connect(&mut room, &mut late[0], Access::Edit);
        route(fx, &mut late, &mut log);
        drain(&mut room, &mut late, &mut log);
        assert_eq!(late[0].text(), text, "seed {seed}: the late joiner");

        // The log (after what the room started from) rebuilds the room.
        let rebuilt = Room::new(
            Room::doc_from_log(Some(&start), log.iter().map(Vec::as_slice)).unwrap(),
            clock(),
        );
        assert_eq!(
            rebuilt.text(),
            text,
            "seed {seed}: the log holds every edit"
        );
        let again = Room::new(
            Room::doc_from_log(Some(&room.snapshot()), []).unwrap(),
            clock(),
        );
        assert_eq!(again.text(), text, "seed {seed}: the snapshot");
    }
}

#[test]
fn a_viewer_sees_every_edit_and_changes_nothing() {
    let mut room = Room::new(Room::doc_with_text("read me"), clock());
    let mut clients = vec![Client::new(1), Client::new(2)];
    let mut log = Vec::new();
    let fx = connect(&mut room, &mut clients[0], Access::Edit);
    route(fx, &mut clients, &mut log);
    let fx = connect(&mut room, &mut clients[1], Access::View);
    route(fx, &mut clients, &mut log);
    drain(&mut room, &mut clients, &mut log);
    assert_eq!(clients[1].text(), "read me");

    let mut rng = Rng(5);
    let sneaky = clients[1].edit(&mut rng);
    let fx = recv(&mut room, 2, &sneaky);
    assert_eq!(fx, Effects::default(), "nothing stored, nothing passed on");
    assert_eq!(room.text(), "read me");

    let edit = clients[0].edit(&mut rng);
    let fx = recv(&mut room, 1, &edit);
    assert_eq!(fx.stored.len(), 1);
    route(fx, &mut clients, &mut log);
    drain(&mut room, &mut clients, &mut log);
    // The viewer holds the editor's edit on top of its own (local, never accepted) one.
    let editors = clients[0].text();
    assert_eq!(room.text(), editors);
    assert_ne!(clients[1].text(), "read me", "the viewer received the edit");
}

#[test]
fn a_repeated_update_is_neither_stored_nor_passed_on() {
    let mut room = Room::new(Room::doc_with_text(""), clock());
    let mut clients = vec![Client::new(1)];
    let mut log = Vec::new();
    let fx = connect(&mut room, &mut clients[0], Access::Edit);
    route(fx, &mut clients, &mut log);
    let edit = clients[0].edit(&mut Rng(3));
    assert_eq!(recv(&mut room, 1, &edit).stored.len(), 1);
    assert_eq!(recv(&mut room, 1, &edit), Effects::default());
}

#[test]
fn a_save_made_without_the_room_merges_with_live_edits() {
    let mut room = Room::new(Room::doc_with_text("hello world"), clock());
    let mut clients = vec![Client::new(1)];
    let mut log = Vec::new();
    let fx = connect(&mut room, &mut clients[0], Access::Edit);
    route(fx, &mut clients, &mut log);
    drain(&mut room, &mut clients, &mut log);
    // The editor types at the start while a REST save changes the middle.
    let t = clients[0].doc.get_or_insert_text(TEXT);
    let before = clients[0].doc.transact().state_vector();
    t.insert(&mut clients[0].doc.transact_mut(), 0, ">> ");
    let typed = clients[0].doc.transact().encode_state_as_update_v1(&before);
    let fx = room.merge_text("hello brave world");
    assert_eq!(fx.stored.len(), 1, "the merge is logged");
    route(fx, &mut clients, &mut log);
    let msg = encode(&Message::Sync(SyncMessage::Update(typed)));
    let fx = recv(&mut room, 1, &msg);
    route(fx, &mut clients, &mut log);
    drain(&mut room, &mut clients, &mut log);
    assert_eq!(room.text(), ">> hello brave world");
    assert_eq!(clients[0].text(), room.text());
    assert_eq!(room.merge_text(">> hello brave world"), Effects::default());
}

#[test]
fn presence_is_shared_and_goes_with_its_connection() {
    use yrs::sync::Awareness;
    let mut room = Room::new(Room::doc_with_text(""), clock());
    room.join(1, Access::Edit, None);
    room.join(2, Access::View, None);
    let mut ann = Awareness::with_clock(Doc::with_client_id(11), clock());
    ann.set_local_state(serde_json::json!({"user": {"name": "Ann", "color": "#e06c75"}}))
        .unwrap();
    let hello = encode(&Message::Awareness(ann.update().unwrap()));
    let fx = recv(&mut room, 1, &hello);
    assert!(fx.stored.is_empty(), "presence is not stored");
    assert_eq!(fx.out, [Out::AllBut(1, hello.clone())]);
    // A viewer's presence is shared too (their cursor shows), a joiner gets everyone's.
    let first = room.join(3, Access::Edit, None);
    assert_eq!(
        first.len(),
        2,
        "sync step 1, then presence: one message per frame"
    );
    assert!(
        MessageReader::new(&mut DecoderV1::new(Cursor::new(&first[1])))
            .any(|m| matches!(m, Ok(Message::Awareness(u)) if u.clients.contains_key(&yrs::block::ClientID::new(11)))),
        "a joiner learns who is there"
    );
    let fx = room.leave(1);
    let told: Vec<ConnId> = fx
        .out
        .iter()
        .map(|o| match o {
            Out::To(c, _) => *c,
            Out::AllBut(..) => panic!("leaving tells each connection"),
        })
        .collect();
    assert_eq!(told.len(), 2);
    let Out::To(_, bytes) = &fx.out[0] else {
        unreachable!()
    };
    let gone = MessageReader::new(&mut DecoderV1::new(Cursor::new(bytes)))
        .find_map(|m| match m {
            Ok(Message::Awareness(u)) => Some(u),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        gone.clients[&yrs::block::ClientID::new(11)].json.as_ref(),
        "null",
        "Ann's presence is gone"
    );
    assert!(
        room.receive(1, &hello).1.is_some(),
        "a left connection is unknown"
    );
    assert!(
        room.receive(2, b"\x00\x09\x00").1.is_some(),
        "an unknown sync message is refused"
    );
}

/// Updates can arrive before what they build on (another client's edit relayed late):
/// the room holds one back until its dependency comes, then stores and passes on both, so
/// the log replays to the same text. A frame whose second message is garbage still keeps
/// (and reports) what its first one changed.
#[test]
fn an_update_ahead_of_its_dependency_is_kept_and_logged_with_it() {
    let mut room = Room::new(Room::doc_with_text(""), clock());
    let start = room.snapshot();
    room.join(1, Access::Edit, None);
    let author = Doc::with_client_id(77);
    let t = author.get_or_insert_text(TEXT);
    let sv0 = author.transact().state_vector();
    t.insert(&mut author.transact_mut(), 0, "first ");
    let first = author.transact().encode_state_as_update_v1(&sv0);
    let sv1 = author.transact().state_vector();
    t.insert(&mut author.transact_mut(), 6, "second");
    let second = author.transact().encode_state_as_update_v1(&sv1);
    let msg = |u: &Vec<u8>| encode(&Message::Sync(SyncMessage::Update(u.clone())));
    let early = recv(&mut room, 1, &msg(&second));
    assert!(
        early.stored.is_empty() && early.out.is_empty(),
        "held back: {early:?}"
    );
    assert_eq!(room.text(), "");
    let mut frame = msg(&first);
    frame.extend_from_slice(b"\x00\x09\x00");
    let (fx, error) = room.receive(1, &frame);
    assert!(error.is_some(), "the garbage after it is refused");
    assert_eq!(room.text(), "first second");
    assert!(!fx.stored.is_empty(), "what changed is stored");
    let replayed = Room::doc_from_log(Some(&start), fx.stored.iter().map(Vec::as_slice)).unwrap();
    assert_eq!(Room::new(replayed, clock()).text(), "first second");
}

/// A save that only deletes is an edit too: stored and sent.
#[test]
fn a_save_that_only_deletes_is_merged() {
    let mut room = Room::new(Room::doc_with_text("keep this, drop that"), clock());
    room.join(1, Access::Edit, None);
    let fx = room.merge_text("keep this");
    assert_eq!(room.text(), "keep this");
    assert_eq!(fx.stored.len(), 1);
    assert_eq!(fx.out.len(), 1);
}

#[test]
fn nobody_speaks_for_someone_elses_presence() {
    use yrs::sync::Awareness;
    let mut room = Room::new(Room::doc_with_text(""), clock());
    room.join(1, Access::Edit, None);
    room.join(2, Access::View, None);
    let mut ann = Awareness::with_clock(Doc::with_client_id(11), clock());
    ann.set_local_state(serde_json::json!({"user": {"name": "Ann"}}))
        .unwrap();
    let fx = recv(
        &mut room,
        1,
        &encode(&Message::Awareness(ann.update().unwrap())),
    );
    assert_eq!(fx.out.len(), 1, "Ann's presence goes to the others");
    // A viewer replays Ann's client id with a state of its own: dropped, nothing sent.
    let mut fake = Awareness::with_clock(Doc::with_client_id(11), clock());
    fake.set_local_state(serde_json::json!({"user": {"name": "Not Ann"}}))
        .unwrap();
    let fx = recv(
        &mut room,
        2,
        &encode(&Message::Awareness(fake.update().unwrap())),
    );
    assert!(fx.out.is_empty(), "{:?}", fx.out);
    // And leaving does not take Ann's presence with it.
    let fx = room.leave(2);
    assert!(fx.out.is_empty(), "the viewer spoke for nobody");
    // One connection speaks for a few client ids at most, each state a few KiB at most.
    let mut sent = 0;
    for id in 100..120u64 {
        let mut a = Awareness::with_clock(Doc::with_client_id(id), clock());
        a.set_local_state(serde_json::json!({"n": id})).unwrap();
        let fx = recv(
            &mut room,
            1,
            &encode(&Message::Awareness(a.update().unwrap())),
        );
        sent += fx.out.len();
    }
    assert_eq!(
        sent,
        cloudos_core::rooms::MAX_PRESENCE_IDS - 1,
        "Ann's own id counts too"
    );
    room.join(3, Access::Edit, None);
    let mut big = Awareness::with_clock(Doc::with_client_id(31), clock());
    big.set_local_state(serde_json::json!({"pad": "x".repeat(10_000)}))
        .unwrap();
    let fx = recv(
        &mut room,
        3,
        &encode(&Message::Awareness(big.update().unwrap())),
    );
    assert!(fx.out.is_empty(), "an oversized state is not passed on");
}

/// Whether some frame of `fx` goes to `conn` and contains `needle`.
fn tells(fx: &Effects, conn: ConnId, needle: &str) -> bool {
    fx.out.iter().any(|o| match o {
        Out::To(to, bytes) => *to == conn && String::from_utf8_lossy(bytes).contains(needle),
        Out::AllBut(from, bytes) => {
            *from != conn && String::from_utf8_lossy(bytes).contains(needle)
        }
    })
}

/// A client's typed text as the update message it sends.
fn typed(c: &Client, what: &str) -> Vec<u8> {
    let t = c.doc.get_or_insert_text(TEXT);
    let before = c.doc.transact().state_vector();
    t.insert(&mut c.doc.transact_mut(), 0, what);
    let update = c.doc.transact().encode_state_as_update_v1(&before);
    encode(&Message::Sync(SyncMessage::Update(update)))
}

#[test]
fn a_lock_lets_only_its_holder_edit_and_goes_when_they_leave() {
    use cloudos_core::rooms::RoomLock;
    // The clock says 1 000 ms; the room speaks for itself as client 77.
    let now = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(1_000));
    let time = {
        let now = now.clone();
        move || now.load(std::sync::atomic::Ordering::SeqCst)
    };
    let mut room = Room::new(Room::doc_with_text("start"), time).with_presence_id(77);
    let mut clients = [Client::new(1), Client::new(2), Client::new(3)];
    let mut log = Vec::new();
    clients[0]
        .inbox
        .extend(room.join(1, Access::Edit, Some("ann".into())));
    clients[1]
        .inbox
        .extend(room.join(2, Access::Edit, Some("bob".into())));
    drain(&mut room, &mut clients[..2], &mut log);
    let fx = room.set_lock(Some(RoomLock {
        holder: "ann".into(),
        name: "Ann".into(),
        until_ms: 60_000,
    }));
    // Everyone is told who holds it, as the room's own presence.
    assert!(tells(&fx, 1, "\"holder\":\"ann\"") && tells(&fx, 2, "\"name\":\"Ann\""));
    // Someone joining later hears of it with everyone's presence.
    let hello = room.join(3, Access::Edit, Some("cat".into()));
    assert!(hello
        .iter()
        .any(|f| String::from_utf8_lossy(f).contains("\"holder\":\"ann\"")));
    room.leave(3);

    // Bob's edit is dropped; Ann's goes in.
    let bobs = typed(&clients[1], "bob ");
    assert!(recv(&mut room, 2, &bobs).stored.is_empty());
    let anns = typed(&clients[0], "ann ");
    assert_eq!(recv(&mut room, 1, &anns).stored.len(), 1);
    assert_eq!(room.text(), "ann start");

    // Nobody speaks for the room: presence claiming a lock is dropped, and so is what only
    // a lenient parser reads (a browser's JSON.parse takes a lone surrogate, serde does not).
    let mut fake = yrs::sync::Awareness::with_clock(Doc::with_client_id(22), clock());
    fake.set_local_state(serde_json::json!({"room": {"lock": {"holder": "bob", "name": "Bob"}}}))
        .unwrap();
    let forged = encode(&Message::Awareness(fake.update().unwrap()));
    assert!(recv(&mut room, 2, &forged).out.is_empty());
    fake.set_local_state_raw(
        r#"{"room":{"lock":{"holder":"x","name":"Ann","until":9e15}},"z":"\udc00"}"#,
    );
    let sneaky = encode(&Message::Awareness(fake.update().unwrap()));
    assert!(recv(&mut room, 2, &sneaky).out.is_empty());
    // Nor may a client speak under the room's own id.
    let mut twin = yrs::sync::Awareness::with_clock(Doc::with_client_id(77), clock());
    twin.set_local_state(serde_json::json!({"user": {"name": "Bob"}}))
        .unwrap();
    let as_room = encode(&Message::Awareness(twin.update().unwrap()));
    assert!(recv(&mut room, 2, &as_room).out.is_empty());

    // A client asking for the room's state (every 15 s) hears of the lock again, renewed.
    let ask = clients[1].hello();
    assert!(tells(&recv(&mut room, 2, &ask), 2, "\"holder\":\"ann\""));

    // Ann leaves: her lock ends 10 s later unless she comes back (the clock says 1 000 ms,
    // so it ends at 11 000 ms), and Bob is told so.
    let fx = room.leave(1);
    assert_eq!(fx.holder_left.as_deref(), Some("ann"));
    assert!(tells(&fx, 2, "\"until\":11000"));
    assert_eq!(room.lock().map(|l| l.until_ms), Some(11_000));
    // Once that has passed, the room forgets it, and says so to whoever asks.
    now.store(11_000, std::sync::atomic::Ordering::SeqCst);
    let fx = recv(&mut room, 2, &clients[1].hello());
    assert!(tells(&fx, 2, "null") && room.lock().is_none());
    // Bob's client sends what the room lacks when it next syncs (every 15 s), the
    // dropped edit among it.
    let fx = recv(&mut room, 2, &clients[1].hello());
    route(fx, &mut clients[1..2], &mut log);
    drain(&mut room, &mut clients[1..2], &mut log);
    assert!(room.text().contains("bob "), "{}", room.text());
    assert_eq!(clients[1].text(), room.text());
}

#[test]
fn an_expired_lock_stops_holding_and_a_holder_with_two_tabs_keeps_it() {
    use cloudos_core::rooms::RoomLock;
    let mut room = Room::new(Room::doc_with_text("x"), clock());
    let bob = Client::new(2);
    room.join(1, Access::Edit, Some("ann".into()));
    room.join(4, Access::Edit, Some("ann".into()));
    room.join(2, Access::Edit, Some("bob".into()));
    recv(&mut room, 2, &bob.hello());
    room.set_lock(Some(RoomLock {
        holder: "ann".into(),
        name: "Ann".into(),
        until_ms: 60_000,
    }));
    // One of Ann's two tabs closes: she is still here, and still holds it.
    assert_eq!(room.leave(4).holder_left, None);
    assert!(room.lock().is_some());
    // A lease that ended (the clock is past it) holds nothing, even before anyone says so.
    room.set_lock(Some(RoomLock {
        holder: "ann".into(),
        name: "Ann".into(),
        until_ms: 999,
    }));
    let edit = typed(&bob, "bob ");
    assert_eq!(recv(&mut room, 2, &edit).stored.len(), 1);
}
