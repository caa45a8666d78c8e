//! The live-rooms benchmark run by `cargo xtask bench collab` (release build): Cloud OS's
//! rooms (`cloudos serve`, `WS /collab/:fileId`) beside two peers, `@y/websocket-server`
//! (Node) and y-sweet (Rust), with the same Rust Yjs client (yrs over the y-websocket
//! protocol) for all three on loopback. Writes a Markdown section to the path given as the
//! first argument.
//!
//! Env: CLOUDOS_BIN (a release `cloudos`), YWS_SERVER (the peer's `server.js`), YWS_VERSION,
//! YSWEET_BIN (a `y-sweet` binary), YSWEET_VERSION; BENCH_SECS shortens the runs.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cloudos_tests::bench::percentile;
use cloudos_tests::{ServerOptions, TestServer};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use yrs::encoding::read::Cursor;
use yrs::sync::{Message, MessageReader, SyncMessage};
use yrs::updates::decoder::{Decode, DecoderV1};
use yrs::updates::encoder::{Encode, Encoder, EncoderV1};
use yrs::{Doc, ReadTxn, Text, Transact, Update};

/// One room, many editors: 50 clients each making 10 edits a second.
const BIG_ROOM_CLIENTS: usize = 50;
/// Many small rooms: 200 rooms of 3.
const ROOMS: usize = 200;
const PER_ROOM: usize = 3;
/// Edits per second per client in the big room, and in the small ones.
const RATE: u64 = 10;
const SMALL_RATE: u64 = 1;

fn encode(msg: &Message) -> Vec<u8> {
    let mut e = EncoderV1::new();
    msg.encode(&mut e);
    e.to_vec()
}

/// When each sender's edits were made: per Yjs client id, the client's clock after each
/// edit and the instant it was sent, in order.
type Sent = Arc<Mutex<HashMap<u64, Vec<(u32, Instant)>>>>;

/// A scenario's result on one server.
#[derive(Default)]
struct Run {
    /// Send → arrival at each other client in the room, sorted.
    latencies: Vec<Duration>,
    /// Deliveries that never happened: an edit that did not reach some other client of its
    /// room within the drain time.
    missing: usize,
    /// The server's resident memory before the clients came, at the end, and its peak
    /// (KiB).
    idle_kib: u64,
    rss_kib: u64,
    peak_kib: u64,
}

/// What one client saw: the latency of each other client's edit it received, and how many
/// edits it sent.
struct Seen {
    latencies: Vec<Duration>,
    sent: usize,
}

/// A client: a Yjs doc on one socket. It syncs, waits at `start` for every client of the
/// run, sends an edit every `1/rate` s for `secs`, and keeps reading for `DRAIN` after,
/// recording when each other client's edit arrives.
async fn client(
    url: String,
    sent: Sent,
    start: Arc<tokio::sync::Barrier>,
    rate: u64,
    secs: u64,
) -> Result<Seen> {
    let (socket, _) = tokio_tungstenite::connect_async(&url)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    let (mut tx, mut rx) = socket.split();
    // A 32-bit client id, as Yjs in a browser makes them (y-sweet 0.9.1 keeps only 32 bits
    // of a longer one, and its clients would never recognise their edits).
    let doc = Doc::with_client_id(u64::from(rand_u32()));
    let text = doc.get_or_insert_text("content");
    let me = doc.client_id().get();
    let sv = doc.transact().state_vector();
    tx.send(WsMessage::Binary(
        encode(&Message::Sync(SyncMessage::SyncStep1(sv))).into(),
    ))
    .await?;
    let mut latencies = Vec::new();
    // Per sender: how many of its edits this client has seen.
    let mut seen: HashMap<u64, usize> = HashMap::new();
    let mut until = None::<Instant>;
    let mut count = 0usize;
    let mut tick = tokio::time::interval(Duration::from_millis(1000 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let now = Instant::now();
        let sending = until.is_some_and(|u| now < u);
        let end = until.map(|u| u + DRAIN);
        if end.is_some_and(|e| now >= e) {
            break;
        }
        tokio::select! {
            msg = rx.next() => {
                let Some(msg) = msg else { bail!("the server closed {url}") };
                let WsMessage::Binary(bytes) = msg? else { continue };
                let mut replies = Vec::new();
                let mut synced = false;
                let before = doc.transact().state_vector();
                {
                    let mut d = DecoderV1::new(Cursor::new(&bytes));
                    for m in MessageReader::new(&mut d) {
                        match m? {
                            Message::Sync(SyncMessage::SyncStep1(sv)) => {
                                let u = doc.transact().encode_state_as_update_v1(&sv);
                                replies.push(encode(&Message::Sync(SyncMessage::SyncStep2(u))));
                            }
                            Message::Sync(SyncMessage::SyncStep2(u)) => {
                                doc.transact_mut().apply_update(Update::decode_v1(&u)?)?;
                                synced = true;
                            }
                            Message::Sync(SyncMessage::Update(u)) => {
                                doc.transact_mut().apply_update(Update::decode_v1(&u)?)?;
                            }
                            _ => {}
                        }
                    }
                }
                let after = doc.transact().state_vector();
                if after != before {
                    let now = Instant::now();
                    let sent = sent.lock().expect("sent");
                    for (client, clock) in after.iter() {
                        let client = client.get();
                        let Some(edits) = sent.get(&client).filter(|_| client != me) else {
                            continue;
                        };
                        let n = seen.entry(client).or_default();
                        while *n < edits.len() && edits[*n].0 <= *clock {
                            latencies.push(now - edits[*n].1);
                            *n += 1;
                        }
                    }
                }
                for r in replies {
                    tx.send(WsMessage::Binary(r.into())).await?;
                }
                if synced && until.is_none() {
                    // Everyone starts editing together, once every client has synced.
                    start.wait().await;
                    until = Some(Instant::now() + Duration::from_secs(secs));
                    tick.reset();
                }
            }
            _ = tick.tick(), if sending => {
                let update = {
                    let mut txn = doc.transact_mut();
                    let sv = txn.state_vector();
                    text.insert(&mut txn, 0, "edit");
                    txn.encode_diff_v1(&sv)
                };
                let clock = doc.transact().state_vector().get(&doc.client_id());
                sent.lock().expect("sent").entry(me).or_default().push((clock, Instant::now()));
                count += 1;
                let msg = encode(&Message::Sync(SyncMessage::Update(update)));
                tx.send(WsMessage::Binary(msg.into())).await?;
            }
            () = tokio::time::sleep(Duration::from_millis(100)), if !sending => {}
        }
    }
    let _ = tx.close().await;
    Ok(Seen {
        latencies,
        sent: count,
    })
}

fn rand_u32() -> u32 {
    let b = uuid::Uuid::new_v4().into_bytes();
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// How long clients keep reading after the edits stop.
const DRAIN: Duration = Duration::from_secs(5);

/// `urls.len()` rooms of `per_room` clients each, every client editing at `rate` for
/// `secs`; `pid` is the server's process (its memory is read at the end).
async fn scenario(urls: &[String], per_room: usize, rate: u64, secs: u64, pid: u32) -> Result<Run> {
    let idle_kib = memory(pid).0;
    let start = Arc::new(tokio::sync::Barrier::new(urls.len() * per_room));
    let mut rooms = Vec::new();
    for url in urls {
        let sent: Sent = Arc::default();
        let clients: Vec<_> = (0..per_room)
            .map(|_| tokio::spawn(client(url.clone(), sent.clone(), start.clone(), rate, secs)))
            .collect();
        rooms.push(clients);
    }
    let mut run = Run {
        idle_kib,
        ..Run::default()
    };
    for clients in rooms {
        let mut sent = 0;
        let mut received = 0;
        for c in clients {
            let seen = c.await??;
            sent += seen.sent;
            received += seen.latencies.len();
            run.latencies.extend(seen.latencies);
        }
        run.missing += (sent * (per_room - 1)).saturating_sub(received);
    }
    run.latencies.sort();
    (run.rss_kib, run.peak_kib) = memory(pid);
    Ok(run)
}

/// Resident memory now and at its peak (KiB) of a process and its children.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// A server under test: its process, and the socket URL of each room it was given.
struct Side {
    name: String,
    pid: u32,
    urls: Vec<String>,
    /// Stops the server when dropped.
    _stop: Box<dyn std::any::Any>,
}

/// Kills a peer's process when dropped.
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Waits until something accepts connections on `port`.
async fn listening(port: u16, what: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if Instant::now() > deadline {
            bail!("{what} did not listen on {port} within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Cloud OS: `rooms` empty text files of one user, each a room (`?token=` on the URL).
async fn cloudos(rooms: usize) -> Result<Side> {
    let server = TestServer::native(ServerOptions::default().env("RUST_LOG", "warn"));
    let user = server.new_user("bench").await;
    let names: Vec<(String, Vec<u8>)> = (0..rooms)
        .map(|i| (format!("room-{i}.txt"), vec![]))
        .collect();
    let parts: Vec<(&str, Vec<u8>)> = names.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    let files = user.api.upload(None, &parts).await;
    let token = user.api.token.clone().context("a token")?;
    let ws = server.base.replacen("http", "ws", 1);
    Ok(Side {
        name: "Cloud OS".into(),
        pid: server.pid().context("a started server")?,
        urls: files
            .iter()
            .map(|f| format!("{ws}/collab/{}?token={token}", f.id))
            .collect(),
        _stop: Box::new((server, user)),
    })
}

/// `@y/websocket-server` on Node: a room per path, kept in memory.
async fn y_websocket(rooms: usize) -> Result<Side> {
    let script = std::env::var("YWS_SERVER").context("YWS_SERVER names the peer's server.js")?;
    let port = free_port()?;
    let child = Command::new("node")
        .arg(&script)
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .spawn()
        .context("starting node")?;
    let peer = Peer(child);
    listening(port, "@y/websocket-server").await?;
    Ok(Side {
        name: format!(
            "@y/websocket-server {}",
            std::env::var("YWS_VERSION").unwrap_or_default()
        ),
        pid: peer.0.id(),
        urls: (0..rooms)
            .map(|i| format!("ws://127.0.0.1:{port}/room-{i}"))
            .collect(),
        _stop: Box::new(peer),
    })
}

/// y-sweet: a room per document (made with `POST /doc/new`; no auth), kept in memory and
/// checkpointed to a directory of its own.
async fn y_sweet(rooms: usize) -> Result<Side> {
    let bin = std::env::var("YSWEET_BIN").context("YSWEET_BIN names a y-sweet binary")?;
    let store = tempfile::tempdir()?;
    let port = free_port()?;
    let child = Command::new(&bin)
        .arg("serve")
        .arg(store.path())
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .context("starting y-sweet")?;
    let peer = Peer(child);
    listening(port, "y-sweet").await?;
    // Each document is made before anyone connects: sockets that arrive together at a
    // document that does not exist yet each load their own copy, and never hear each other.
    let http = reqwest::Client::new();
    for i in 0..rooms {
        let res = http
            .post(format!("http://127.0.0.1:{port}/doc/new"))
            .json(&serde_json::json!({ "docId": format!("room-{i}") }))
            .send()
            .await?;
        if !res.status().is_success() {
            bail!("y-sweet made no document: {}", res.status());
        }
    }
    Ok(Side {
        name: format!(
            "y-sweet {}",
            std::env::var("YSWEET_VERSION").unwrap_or_default()
        ),
        pid: peer.0.id(),
        urls: (0..rooms)
            .map(|i| format!("ws://127.0.0.1:{port}/d/room-{i}/ws/room-{i}"))
            .collect(),
        _stop: Box::new((peer, store)),
    })
}

/// Runs one scenario on a fresh server of each kind, one after the other.
async fn compare(
    rooms: usize,
    per_room: usize,
    rate: u64,
    secs: u64,
) -> Result<Vec<(String, Run)>> {
    let mut out = Vec::new();
    for make in [Kind::CloudOs, Kind::YWebsocket, Kind::YSweet] {
        let side = match make {
            Kind::CloudOs => cloudos(rooms).await?,
            Kind::YWebsocket => y_websocket(rooms).await?,
            Kind::YSweet => y_sweet(rooms).await?,
        };
        let run = scenario(&side.urls, per_room, rate, secs, side.pid)
            .await
            .with_context(|| format!("{} with {rooms} rooms of {per_room}", side.name))?;
        eprintln!(
            "bench-collab: {} {rooms}×{per_room}: p50 {} ms, p99 {} ms, missing {}, peak {} KiB",
            side.name,
            ms(percentile(&run.latencies, 0.5)),
            ms(percentile(&run.latencies, 0.99)),
            run.missing,
            run.peak_kib
        );
        out.push((side.name.clone(), run));
    }
    Ok(out)
}

#[derive(Clone, Copy)]
enum Kind {
    CloudOs,
    YWebsocket,
    YSweet,
}

fn table(title: &str, runs: &[(String, Run)]) -> String {
    let mut t = format!(
        "**{title}**\n\n| server | fan-out p50 (ms) | p99 (ms) | deliveries | not delivered | server memory idle / peak (MiB) | peak − idle (MiB) |\n|---|---|---|---|---|---|---|\n"
    );
    for (name, r) in runs {
        t.push_str(&format!(
            "| {name} | {} | {} | {} | {} | {:.1} / {:.1} | {:.1} |\n",
            ms(percentile(&r.latencies, 0.5)),
            ms(percentile(&r.latencies, 0.99)),
            r.latencies.len(),
            r.missing,
            r.idle_kib as f64 / 1024.0,
            r.peak_kib as f64 / 1024.0,
            r.peak_kib.saturating_sub(r.idle_kib) as f64 / 1024.0
        ));
    }
    t
}

/// The verdicts for one scenario: p99 no worse than the better peer's; memory no more than
/// y-sweet's and at most half of the Node server's, for the whole process (peak) and for
/// what the rooms took (peak − idle: Cloud OS's process is the whole product).
fn verdicts(runs: &[(String, Run)]) -> (bool, bool, bool) {
    let p99 = |r: &Run| percentile(&r.latencies, 0.99);
    let grown = |r: &Run| r.peak_kib.saturating_sub(r.idle_kib);
    let (ours, node, ysweet) = (&runs[0].1, &runs[1].1, &runs[2].1);
    let latency = p99(ours) <= p99(node).min(p99(ysweet)) && ours.missing == 0;
    let whole = ours.peak_kib <= ysweet.peak_kib && ours.peak_kib * 2 <= node.peak_kib;
    let rooms = grown(ours) <= grown(ysweet) && grown(ours) * 2 <= grown(node);
    (latency, whole, rooms)
}

#[tokio::main]
async fn main() -> Result<()> {
    let out = std::env::args()
        .nth(1)
        .context("usage: bench-collab REPORT.md")?;
    let secs: u64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let big = compare(1, BIG_ROOM_CLIENTS, RATE, secs).await?;
    let small = compare(ROOMS, PER_ROOM, SMALL_RATE, secs).await?;
    let verdict = |ok: bool| if ok { "met" } else { "missed" };
    let (big_lat, big_mem, big_rooms) = verdicts(&big);
    let (small_lat, small_mem, small_rooms) = verdicts(&small);
    let report = format!(
        "Measured by `cargo xtask bench collab` on this machine in one run: one Rust client \
(yrs over the y-websocket protocol, one socket per client, all in one process) for the three \
servers on loopback, each server fresh for each scenario. A client syncs, waits for every \
other client, then inserts 4 characters at its rate; fan-out latency is from an edit's \
send to its arrival at each other client of its room. Cloud OS stores every update in the \
room's libSQL log before it passes it on (and writes the text back into the file); \
@y/websocket-server keeps rooms in memory only; y-sweet {ysweet} keeps them in memory and \
writes snapshots to its directory.\n\n{}\n{}\n\
| target | one room of {BIG_ROOM_CLIENTS} | {ROOMS} rooms of {PER_ROOM} |\n|---|---|---|\n\
| p99 no worse than the better peer's, nothing lost | **{}** | **{}** |\n\
| memory no more than y-sweet's and at most half of the Node server's: whole process (peak) | **{}** | **{}** |\n\
| the same for what the rooms took (peak − idle) | **{}** | **{}** |\n",
        table(
            &format!("One room, {BIG_ROOM_CLIENTS} clients × {RATE} edits/s for {secs} s"),
            &big
        ),
        table(
            &format!("{ROOMS} rooms × {PER_ROOM} clients × {SMALL_RATE} edit/s for {secs} s"),
            &small
        ),
        verdict(big_lat),
        verdict(small_lat),
        verdict(big_mem),
        verdict(small_mem),
        verdict(big_rooms),
        verdict(small_rooms),
        ysweet = std::env::var("YSWEET_VERSION").unwrap_or_default(),
    );
    std::fs::write(&out, &report)?;
    println!("{report}");
    Ok(())
}
