//! One terminal session, transport-free (sshx's session core): PTY output and client messages
//! go in, what to send where comes out. The host (`host.rs`) owns the PTY and the sockets.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use cloudos_proto::terminal::{ClientControl, NoticeKind, Role, ServerControl};

/// Bytes of output kept for clients that attach or reconnect.
pub const SCROLLBACK_BYTES: usize = 512 * 1024;

/// A client of a session, numbered from 1 in attach order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientId(pub u64);

/// A frame for one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Bytes(Bytes),
    Control(ServerControl),
}

/// What the host must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send to one client.
    To(ClientId, Frame),
    /// Write to the PTY.
    Pty(Bytes),
    /// Resize the PTY.
    ResizePty { cols: u16, rows: u16 },
}

/// The last `cap` bytes of a stream, addressed by stream offset (a sequence number).
#[derive(Debug)]
pub struct Scrollback {
    chunks: VecDeque<Bytes>,
    /// Stream offset of the first kept byte.
    start: u64,
    len: usize,
    cap: usize,
}

impl Scrollback {
    /// An empty buffer keeping at most `cap` bytes.
    pub fn new(cap: usize) -> Self {
        Scrollback {
            chunks: VecDeque::new(),
            start: 0,
            len: 0,
            cap,
        }
    }

    /// Stream offset just past the last byte.
    pub fn end(&self) -> u64 {
        self.start + self.len as u64
    }

    /// Appends and drops the oldest bytes beyond the cap.
    pub fn push(&mut self, data: Bytes) {
        self.len += data.len();
        self.chunks.push_back(data);
        while self.len > self.cap {
            let excess = self.len - self.cap;
            let front = self.chunks.front_mut().expect("len > 0 means chunks");
            if front.len() <= excess {
                let n = front.len();
                self.chunks.pop_front();
                self.len -= n;
                self.start += n as u64;
            } else {
                let _ = front.split_to(excess);
                self.len -= excess;
                self.start += excess as u64;
            }
        }
    }

    /// The kept bytes from offset `since` on (all kept bytes if `since` is older), and the
    /// offset they start at.
    pub fn since(&self, since: u64) -> (u64, Vec<Bytes>) {
        let from = since.clamp(self.start, self.end());
        let mut skip = (from - self.start) as usize;
        let mut out = Vec::new();
        for chunk in &self.chunks {
            if skip >= chunk.len() {
                skip -= chunk.len();
                continue;
            }
            out.push(chunk.slice(skip..));
            skip = 0;
        }
        (from, out)
    }
}

/// A terminal session: scrollback, clients and who drives.
#[derive(Debug)]
pub struct Session {
    scrollback: Scrollback,
    clients: BTreeMap<ClientId, Role>,
    driver: Option<ClientId>,
    next_id: u64,
    cols: u16,
    rows: u16,
}

impl Default for Session {
    fn default() -> Self {
        Session::new(SCROLLBACK_BYTES, 80, 24)
    }
}

impl Session {
    /// A session with `cap` bytes of scrollback and an initial size.
    pub fn new(cap: usize, cols: u16, rows: u16) -> Self {
        Session {
            scrollback: Scrollback::new(cap),
            clients: BTreeMap::new(),
            driver: None,
            next_id: 1,
            cols,
            rows,
        }
    }

    /// Number of attached clients.
    pub fn client_count(&self) -> usize {
        self.clients.len()
    }

    /// The PTY's size.
    pub fn size(&self) -> (u16, u16) {
        (self.cols, self.rows)
    }

    /// A client attaches with the role its token grants; it gets a hello and the scrollback
    /// from `since` on. A driver takes the seat from the previous one, who becomes a viewer.
    pub fn attach(&mut self, role: Role, since: Option<u64>) -> (ClientId, Vec<Output>) {
        let id = ClientId(self.next_id);
        self.next_id += 1;
        let mut out = Vec::new();
        if role == Role::Driver {
            if let Some(prev) = self.driver.replace(id) {
                self.clients.insert(prev, Role::Viewer);
                out.push(Output::To(
                    prev,
                    Frame::Control(ServerControl::Role {
                        role: Role::Viewer,
                        reason: "another window took over typing".into(),
                    }),
                ));
            }
        }
        self.clients.insert(id, role);
        let (seq, replay) = self.scrollback.since(since.unwrap_or(0));
        out.push(Output::To(
            id,
            Frame::Control(ServerControl::Hello {
                role,
                seq,
                cols: self.cols,
                rows: self.rows,
            }),
        ));
        out.extend(replay.into_iter().map(|b| Output::To(id, Frame::Bytes(b))));
        (id, out)
    }

    /// A client went away. The driver seat stays empty until a driver attaches again.
    pub fn detach(&mut self, id: ClientId) {
        self.clients.remove(&id);
        if self.driver == Some(id) {
            self.driver = None;
        }
    }

    /// Output of the PTY: kept, and sent to every client.
    pub fn pty_output(&mut self, data: Bytes) -> Vec<Output> {
        self.scrollback.push(data.clone());
        self.broadcast_bytes(data)
    }

    /// A line the agent writes into the terminal itself (e.g. why a process was killed): it
    /// is part of the scrollback, so a reconnecting client sees it too, and a notice follows.
    pub fn notice(&mut self, kind: NoticeKind, message: &str) -> Vec<Output> {
        let line = Bytes::from(format!("\r\n\x1b[1;33m[cloudos] {message}\x1b[0m\r\n"));
        let mut out = self.pty_output(line);
        for &id in self.clients.keys() {
            out.push(Output::To(
                id,
                Frame::Control(ServerControl::Notice {
                    kind,
                    message: message.to_owned(),
                }),
            ));
        }
        out
    }

    /// Keystrokes (or a paste) from a client: the driver's reach the PTY; a viewer is told.
    pub fn input(&mut self, id: ClientId, data: Bytes) -> Vec<Output> {
        match self.clients.get(&id) {
            Some(Role::Driver) => vec![Output::Pty(data)],
            Some(Role::Viewer) => vec![Output::To(
                id,
                Frame::Control(ServerControl::Notice {
                    kind: NoticeKind::ViewOnly,
                    message: "this terminal is view-only for you".into(),
                }),
            )],
            None => vec![],
        }
    }

    /// A control message from a client; only the driver resizes.
    pub fn control(&mut self, id: ClientId, msg: ClientControl) -> Vec<Output> {
        match msg {
            ClientControl::Resize { cols, rows } => {
                if self.clients.get(&id) != Some(&Role::Driver) || cols == 0 || rows == 0 {
                    return vec![];
                }
                if (cols, rows) == (self.cols, self.rows) {
                    return vec![];
                }
                (self.cols, self.rows) = (cols.min(1000), rows.min(1000));
                let (cols, rows) = (self.cols, self.rows);
                let mut out = vec![Output::ResizePty { cols, rows }];
                for &other in self.clients.keys().filter(|&&c| c != id) {
                    out.push(Output::To(
                        other,
                        Frame::Control(ServerControl::Resized { cols, rows }),
                    ));
                }
                out
            }
        }
    }

    /// The shell ended: every client is told.
    pub fn exited(&mut self, code: Option<i32>) -> Vec<Output> {
        self.clients
            .keys()
            .map(|&id| Output::To(id, Frame::Control(ServerControl::Exit { code })))
            .collect()
    }

    fn broadcast_bytes(&self, data: Bytes) -> Vec<Output> {
        self.clients
            .keys()
            .map(|&id| Output::To(id, Frame::Bytes(data.clone())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_for(out: &[Output], id: ClientId) -> Vec<u8> {
        out.iter()
            .filter_map(|o| match o {
                Output::To(c, Frame::Bytes(b)) if *c == id => Some(b.to_vec()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    #[test]
    fn scrollback_keeps_the_last_bytes_with_their_offsets() {
        let mut s = Scrollback::new(10);
        s.push(Bytes::from_static(b"0123456"));
        s.push(Bytes::from_static(b"789abc"));
        assert_eq!(s.end(), 13);
        let (from, chunks) = s.since(0);
        assert_eq!(from, 3, "the 3 oldest bytes were dropped");
        assert_eq!(chunks.concat(), b"3456789abc");
        let (from, chunks) = s.since(11);
        assert_eq!((from, chunks.concat()), (11, b"bc".to_vec()));
        let (from, chunks) = s.since(99);
        assert_eq!((from, chunks.concat()), (13, Vec::new()));
    }

    #[test]
    fn a_reconnecting_client_gets_what_it_missed() {
        let mut s = Session::default();
        let (a, _) = s.attach(Role::Driver, None);
        s.pty_output(Bytes::from_static(b"$ ls\r\n"));
        s.detach(a);
        s.pty_output(Bytes::from_static(b"notes.txt\r\n"));
        let (b, out) = s.attach(Role::Driver, Some(6));
        assert_eq!(
            out[0],
            Output::To(
                b,
                Frame::Control(ServerControl::Hello {
                    role: Role::Driver,
                    seq: 6,
                    cols: 80,
                    rows: 24
                })
            )
        );
        assert_eq!(bytes_for(&out, b), b"notes.txt\r\n");
        let (c, out) = s.attach(Role::Viewer, None);
        assert_eq!(bytes_for(&out, c), b"$ ls\r\nnotes.txt\r\n");
    }

    #[test]
    fn viewers_cannot_type_or_resize() {
        let mut s = Session::default();
        let (d, _) = s.attach(Role::Driver, None);
        let (v, _) = s.attach(Role::Viewer, None);
        assert_eq!(
            s.input(d, Bytes::from_static(b"ls\r")),
            vec![Output::Pty(Bytes::from_static(b"ls\r"))]
        );
        let out = s.input(v, Bytes::from_static(b"rm -rf ~\r"));
        assert!(matches!(
            &out[..],
            [Output::To(id, Frame::Control(ServerControl::Notice { kind: NoticeKind::ViewOnly, .. }))] if *id == v
        ));
        assert!(s
            .control(v, ClientControl::Resize { cols: 10, rows: 10 })
            .is_empty());
        let out = s.control(
            d,
            ClientControl::Resize {
                cols: 120,
                rows: 40,
            },
        );
        assert_eq!(
            out,
            vec![
                Output::ResizePty {
                    cols: 120,
                    rows: 40
                },
                Output::To(
                    v,
                    Frame::Control(ServerControl::Resized {
                        cols: 120,
                        rows: 40
                    })
                )
            ]
        );
        assert_eq!(s.size(), (120, 40));
    }

    #[test]
    fn the_newest_driver_takes_the_seat() {
        let mut s = Session::default();
        let (old, _) = s.attach(Role::Driver, None);
        let (new, out) = s.attach(Role::Driver, None);
        assert!(out.contains(&Output::To(
            old,
            Frame::Control(ServerControl::Role {
                role: Role::Viewer,
                reason: "another window took over typing".into()
            })
        )));
        assert!(matches!(
            s.input(old, Bytes::from_static(b"x"))[0],
            Output::To(..)
        ));
        assert!(matches!(
            s.input(new, Bytes::from_static(b"x"))[0],
            Output::Pty(_)
        ));
    }

    #[test]
    fn notices_reach_everyone_and_stay_in_the_scrollback() {
        let mut s = Session::default();
        let (a, _) = s.attach(Role::Driver, None);
        let out = s.notice(NoticeKind::MemoryLimit, "out of memory");
        assert!(String::from_utf8_lossy(&bytes_for(&out, a)).contains("out of memory"));
        let (b, out) = s.attach(Role::Viewer, None);
        assert!(String::from_utf8_lossy(&bytes_for(&out, b)).contains("[cloudos] out of memory"));
    }
}
