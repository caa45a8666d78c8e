//! The terminal wire protocol, shared by the sandbox agent, the edge relay, the desktop and
//! the tests. On `WS /terminal/:sandboxId/attach` (and the agent's `WS /attach`), binary
//! frames carry terminal bytes both ways; text frames carry these JSON control messages.

use serde::{Deserialize, Serialize};

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// Whether `name` is a valid terminal (session) name: 1–64 letters, digits, `-` or `_`.
/// The edge and the agent both check it (the agent is its own trust boundary).
pub fn valid_session_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The largest message a terminal client may send (keys, a resize, a paste of up to 1 MiB);
/// the edge and the agent close a socket that sends more rather than buffer it.
pub const MAX_CLIENT_MESSAGE: usize = 1024 * 1024;

/// Seconds without an attached terminal or a running command after which a sandbox's
/// agent stops by itself (its shells end, its home stays; the next attach starts it again).
pub const DEFAULT_IDLE_SECS: u64 = 30 * 60;

/// The first host uid of sandbox users: far above any distribution's users, system
/// accounts and the usual subordinate-id ranges (100000 + 65536 per login user).
pub const SANDBOX_UID_BASE: u32 = 1_000_000;
/// How many host uids sandbox users spread over.
pub const SANDBOX_UID_COUNT: u32 = 1_000_000;

/// The host uid of allocation `slot` (the edge allocates one slot per user, so no two users
/// share a uid), or `None` past the range.
pub fn sandbox_uid_of_slot(slot: u32) -> Option<u32> {
    (slot < SANDBOX_UID_COUNT).then(|| SANDBOX_UID_BASE + slot)
}

/// A stable host uid for an agent started without one (`--run-as`), e.g. on its own in
/// tests: derived from `owner`, so two owners may share one by a 1 in a million chance.
/// The edge always passes the user's allocated uid.
pub fn sandbox_uid(owner: &str) -> u32 {
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let hash = owner.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    SANDBOX_UID_BASE + (hash % u64::from(SANDBOX_UID_COUNT)) as u32
}

/// What network a sandbox gets. The edge's flag and the agent's share these names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SandboxNetwork {
    /// A network namespace of its own with outbound access through a user-mode stack
    /// (slirp4netns) that cannot reach the host's loopback, link-local or private ranges.
    #[default]
    Outbound,
    /// A network namespace of its own with loopback only.
    None,
    /// The host's network, loopback services included: an explicit opt-out for hosts that
    /// cannot make namespaces (the sandbox reaches whatever the host reaches).
    Host,
}

impl SandboxNetwork {
    /// The name used on command lines and in settings.
    pub fn as_str(self) -> &'static str {
        match self {
            SandboxNetwork::Outbound => "outbound",
            SandboxNetwork::None => "none",
            SandboxNetwork::Host => "host",
        }
    }
}

impl std::fmt::Display for SandboxNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SandboxNetwork {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "outbound" => Ok(SandboxNetwork::Outbound),
            "none" => Ok(SandboxNetwork::None),
            "host" => Ok(SandboxNetwork::Host),
            other => Err(format!(
                "{other:?} is not a sandbox network: outbound, none or host"
            )),
        }
    }
}

/// What a client may do on a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Types and resizes. One per terminal: the newest driver takes the seat.
    Driver,
    /// Watches; what it sends is dropped.
    Viewer,
}

/// A control message from a client (a text frame).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientControl {
    /// The terminal's size in character cells; only the driver's reaches the PTY.
    Resize { cols: u16, rows: u16 },
}

/// A control message to a client (a text frame).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerControl {
    /// Sent first on every attach. `seq` is the stream offset of the first byte that follows
    /// (the scrollback replay); a client that reconnects passes its last offset as `since`.
    Hello {
        role: Role,
        seq: u64,
        cols: u16,
        rows: u16,
    },
    /// The client's role changed (e.g. another window of the owner took the driver seat).
    Role { role: Role, reason: String },
    /// Something the user should know, e.g. a sandbox limit that stopped a process.
    Notice { kind: NoticeKind, message: String },
    /// The PTY was resized by the driver.
    Resized { cols: u16, rows: u16 },
    /// The shell ended; attaching again starts a new one.
    Exit { code: Option<i32> },
}

/// Why a notice was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// Input from a viewer was dropped.
    ViewOnly,
    /// A process was killed because the sandbox ran out of memory.
    MemoryLimit,
    /// A fork failed because the sandbox reached its process limit.
    ProcessLimit,
    /// The client fell too far behind and will be disconnected.
    TooSlow,
    /// The home's sync with the drive needs the user to know something (a conflict, a
    /// file that stays local).
    Sync,
}

/// Body of the agent's `POST /exec` (and `POST /exec/stream`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ExecRequest {
    /// Program and arguments; no shell is involved unless `argv[0]` is one.
    pub argv: Vec<String>,
    /// Working directory inside the sandbox (default: the home).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Extra environment variables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<(String, String)>,
    /// Seconds before the process is killed (default 30, at most 600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
    /// Bytes written to the process's stdin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
}

/// Answer of `POST /exec`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ExecResponse {
    /// The exit code; `None` when a signal (or the timeout) ended the process.
    pub exit_code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
    /// Output past the cap (1 MiB per stream) was dropped.
    pub truncated: bool,
    pub duration_ms: u64,
}

/// One line of `POST /exec/stream` (newline-delimited JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ExecEvent {
    Stdout {
        data: String,
    },
    Stderr {
        data: String,
    },
    Exit {
        exit_code: Option<i32>,
        timed_out: bool,
        duration_ms: u64,
    },
}

/// A user's sandbox: `POST /sandbox`, `GET /sandbox/:id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Sandbox {
    pub id: String,
    /// `running` or `stopped`.
    pub state: String,
    pub created_at: String,
}

/// Answer of `POST /sandbox/:id/share`: a link that lets another signed-in user watch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct SandboxShare {
    /// Names the link in the owner's list (`GET /sandbox/:id/shares`) and in `DELETE
    /// /shares/:id`, without its token.
    #[serde(default)]
    pub id: String,
    /// Pass as `share=` on `WS /terminal/:sandboxId/attach` (view only); `DELETE
    /// /shares/:token` revokes it, and whoever watches through it is dropped at once.
    pub token: String,
    /// The desktop link that opens the Terminal app watching this sandbox.
    pub url: String,
    pub expires_at: String,
}

/// Claims of a token the edge signs for one sandbox (audience `sandbox`), with a key derived
/// for that sandbox alone, so a sandbox can never mint tokens for another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentClaims {
    /// The user the token was issued to.
    pub sub: String,
    /// The sandbox it is valid for.
    pub sbx: String,
    pub role: Role,
    /// Expiry, seconds since the Unix epoch (of the token: it opens a socket within it).
    pub exp: u64,
    pub aud: String,
    /// What the access rests on (a share link, the holder's sign-in session): the edge may
    /// revoke any of them at the agent (`POST /revoke`), which then drops the sockets
    /// resting on it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<String>,
    /// When a socket opened with this token must end (seconds since the Unix epoch): the
    /// share's or the session's expiry, whichever comes first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<u64>,
}

/// How long an agent token is good for: it opens a socket within this time. The agent
/// remembers a revoked grant at least this long, so no token issued before a revocation
/// can open a socket after it.
pub const AGENT_TOKEN_TTL_SECS: u64 = 120;

/// Body of the agent's `POST /revoke` (driver tokens only): drop every socket resting on one
/// of these grants, and refuse them from now on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revoke {
    pub grants: Vec<String>,
}

/// Terminal sockets one sandbox's agent carries at once (drivers and viewers): beyond, an
/// attach is refused (429) so a script cannot pile sockets up on an agent.
pub const MAX_SOCKETS_PER_SANDBOX: usize = 64;
/// Of those, at most this many viewers' (through share links): the owner always has room
/// for their own terminals, whatever a link's holders open.
pub const MAX_VIEWER_SOCKETS_PER_SANDBOX: usize = 48;

/// The close code a socket ends with when its grant was revoked (a private-use code, RFC
/// 6455 §7.4.2); the reason says which.
pub const CLOSE_REVOKED: u16 = 4403;
/// The close code a live room's sockets end with when its file went to the Trash.
pub const CLOSE_GONE: u16 = 4404;
/// The close code a socket ends with when its share or session expired.
pub const CLOSE_EXPIRED: u16 = 4401;

/// The audience of sandbox tokens.
pub const AGENT_AUDIENCE: &str = "sandbox";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_uids_are_stable_unprivileged_and_spread() {
        assert_eq!(sandbox_uid("ann"), sandbox_uid("ann"));
        let uids: std::collections::HashSet<u32> = (0..1000)
            .map(|i| sandbox_uid(&format!("user{i}")))
            .collect();
        assert!(uids.len() > 995, "{} distinct of 1000", uids.len());
        assert!(uids
            .iter()
            .all(|u| (SANDBOX_UID_BASE..SANDBOX_UID_BASE + SANDBOX_UID_COUNT).contains(u)));
    }

    #[test]
    fn session_names_are_short_and_plain() {
        assert!(valid_session_name("t0a1-b_c"));
        assert!(!valid_session_name(""));
        assert!(!valid_session_name("../etc"));
        assert!(!valid_session_name(&"x".repeat(65)));
    }

    #[test]
    fn control_messages_have_the_documented_shape() {
        let resize: ClientControl =
            serde_json::from_str(r#"{"type":"resize","cols":120,"rows":40}"#).unwrap();
        assert_eq!(
            resize,
            ClientControl::Resize {
                cols: 120,
                rows: 40
            }
        );
        let hello = serde_json::to_value(ServerControl::Hello {
            role: Role::Viewer,
            seq: 7,
            cols: 80,
            rows: 24,
        })
        .unwrap();
        assert_eq!(
            hello,
            serde_json::json!({"type":"hello","role":"viewer","seq":7,"cols":80,"rows":24})
        );
    }
}
