//! A Yjs client (yrs) on a room's socket, as y-websocket runs one: it syncs on connect,
//! answers the room's sync step 1, applies what it gets, and sends its own edits.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use yrs::encoding::read::Cursor;
use yrs::sync::{Message, MessageReader, SyncMessage};
use yrs::updates::decoder::{Decode, DecoderV1};
use yrs::updates::encoder::{Encode, Encoder, EncoderV1};
use yrs::{Doc, GetString, ReadTxn, Text, TextRef, Transact, TransactionMut, Update};

/// The shared text rooms hold.
pub const TEXT: &str = "content";

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn encode(msg: &Message) -> Vec<u8> {
    let mut e = EncoderV1::new();
    msg.encode(&mut e);
    e.to_vec()
}

/// One Yjs client connected to a room.
pub struct YClient {
    socket: Socket,
    pub doc: Doc,
    /// Whether the socket closed.
    pub closed: bool,
    /// The code the room closed the socket with, if it did.
    pub close_code: Option<u16>,
    /// Everyone's presence as last heard (JSON per Yjs client id; `null` once gone).
    pub presence: std::collections::HashMap<u64, String>,
}

impl YClient {
    /// Connects and syncs (until the room's sync step 2 arrived), or gives the HTTP status
    /// the socket was refused with.
    pub async fn connect(url: &str) -> Result<YClient, u16> {
        let socket = match tokio_tungstenite::connect_async(url).await {
            Ok((s, _)) => s,
            Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
                return Err(res.status().as_u16())
            }
            Err(e) => panic!("connecting to {url}: {e}"),
        };
        let mut c = YClient {
            socket,
            doc: Doc::new(),
            closed: false,
            close_code: None,
            presence: Default::default(),
        };
        let sv = c.doc.transact().state_vector();
        c.send(encode(&Message::Sync(SyncMessage::SyncStep1(sv))))
            .await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let next = tokio::time::timeout_at(deadline, c.socket.next())
                .await
                .expect("the room's sync within 10 s");
            match next {
                Some(Ok(WsMessage::Binary(bytes))) => {
                    if c.handle(&bytes).await {
                        return Ok(c);
                    }
                }
                // Pings and the like.
                Some(Ok(_)) => {}
                _ => panic!("the room closed before syncing: {next:?}"),
            }
        }
    }

    async fn send(&mut self, bytes: Vec<u8>) {
        if self
            .socket
            .send(WsMessage::Binary(bytes.into()))
            .await
            .is_err()
        {
            self.closed = true;
        }
    }

    /// Handles what the room sent; whether it held the room's sync step 2.
    async fn handle(&mut self, bytes: &[u8]) -> bool {
        let mut replies = Vec::new();
        let mut synced = false;
        {
            let mut d = DecoderV1::new(Cursor::new(bytes));
            for msg in MessageReader::new(&mut d) {
                match msg.expect("a y-websocket message") {
                    Message::Sync(SyncMessage::SyncStep1(sv)) => {
                        let u = self.doc.transact().encode_state_as_update_v1(&sv);
                        replies.push(encode(&Message::Sync(SyncMessage::SyncStep2(u))));
                    }
                    Message::Sync(SyncMessage::SyncStep2(u)) => {
                        self.apply(&u);
                        synced = true;
                    }
                    Message::Sync(SyncMessage::Update(u)) => self.apply(&u),
                    Message::Awareness(update) => {
                        for (id, entry) in update.clients {
                            self.presence.insert(id.get(), entry.json.to_string());
                        }
                    }
                    _ => {}
                }
            }
        }
        for r in replies {
            self.send(r).await;
        }
        synced
    }

    fn apply(&self, update: &[u8]) {
        let mut txn = self.doc.transact_mut();
        txn.apply_update(Update::decode_v1(update).expect("an update"))
            .expect("it applies");
    }

    /// The text as this client has it.
    pub fn text(&self) -> String {
        let t = self.doc.get_or_insert_text(TEXT);
        t.get_string(&self.doc.transact())
    }

    /// Edits the text locally and sends the edit.
    pub async fn edit(&mut self, f: impl FnOnce(&TextRef, &mut TransactionMut)) {
        let t = self.doc.get_or_insert_text(TEXT);
        let before = self.doc.transact().state_vector();
        f(&t, &mut self.doc.transact_mut());
        let u = self.doc.transact().encode_state_as_update_v1(&before);
        self.send(encode(&Message::Sync(SyncMessage::Update(u))))
            .await;
    }

    /// Inserts `s` at byte offset `at`.
    pub async fn insert(&mut self, at: u32, s: &str) {
        self.edit(|t, txn| t.insert(txn, at, s)).await;
    }

    /// Reads what arrives for `within`, or until the socket closes.
    pub async fn pump(&mut self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while let Ok(next) = tokio::time::timeout_at(deadline, self.socket.next()).await {
            match next {
                Some(Ok(WsMessage::Binary(bytes))) => {
                    self.handle(&bytes).await;
                }
                Some(Ok(WsMessage::Close(frame))) => {
                    self.close_code = frame.map(|f| u16::from(f.code));
                    self.closed = true;
                    return;
                }
                Some(Ok(_)) => {}
                None | Some(Err(_)) => {
                    self.closed = true;
                    return;
                }
            }
        }
    }

    /// The room's lock as this client last heard of it (the room's own presence), if any.
    pub fn lock(&self) -> Option<serde_json::Value> {
        self.presence.values().find_map(|json| {
            let v: serde_json::Value = serde_json::from_str(json).ok()?;
            Some(v.get("room")?.get("lock")?.clone())
        })
    }

    /// Asks the room for its state (sync step 1, as the Editor does every 15 s): it sends
    /// what this client lacks and asks for what it lacks.
    pub async fn resync(&mut self) {
        let sv = self.doc.transact().state_vector();
        self.send(encode(&Message::Sync(SyncMessage::SyncStep1(sv))))
            .await;
    }

    /// Reads until `done` holds of this client (panics after `within`).
    pub async fn wait_until(&mut self, within: Duration, done: impl Fn(&YClient) -> bool) {
        let deadline = tokio::time::Instant::now() + within;
        while !done(self) {
            assert!(tokio::time::Instant::now() < deadline, "timed out");
            self.pump(Duration::from_millis(50)).await;
        }
    }

    /// Reads until the text satisfies `done` (panics after `within`).
    pub async fn wait_for(&mut self, within: Duration, done: impl Fn(&str) -> bool) {
        let deadline = tokio::time::Instant::now() + within;
        while !done(&self.text()) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out; the text is {:?}",
                self.text()
            );
            self.pump(Duration::from_millis(50)).await;
        }
    }

    /// Reads until the room closes the socket (panics after `within`); its close code.
    pub async fn wait_closed(&mut self, within: Duration) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + within;
        while !self.closed {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the socket is still open"
            );
            self.pump(Duration::from_millis(50)).await;
        }
        self.close_code
    }

    /// Closes the socket.
    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}

/// The `WS /collab/:fileId` URL of `file` on the server at `base`, with `query` (`token=…`,
/// `share=…`).
pub fn room_url(base: &str, file: &str, query: &str) -> String {
    format!("{}/collab/{file}?{query}", base.replacen("http", "ws", 1))
}

/// The room URL of `file` for its owner `api` (their token on the URL).
pub fn owner_room_url(base: &str, api: &crate::Client, file: &str) -> String {
    let token = api.token.as_deref().expect("a signed-in client");
    room_url(base, file, &format!("token={token}"))
}

/// The room URL of `file` through the link `share` for the signed-in `api` (an edit link's
/// colleague).
pub fn link_room_url(base: &str, api: &crate::Client, file: &str, share: &str) -> String {
    let token = api.token.as_deref().expect("a signed-in client");
    room_url(base, file, &format!("share={share}&token={token}"))
}

/// Waits until `file`'s content is `text` (a room writes it when idle or left; panics
/// after 15 s, saying what the file holds).
pub async fn wait_for_content(api: &crate::Client, file: &str, text: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let now = String::from_utf8_lossy(&api.content(file).await).into_owned();
        if now == text {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the file holds {now:?}, not {text:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
