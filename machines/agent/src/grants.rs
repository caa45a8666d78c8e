//! Grants the edge revoked. A socket rests on the grant named in its token (a share link,
//! or the owner's session); when the edge revokes it, every socket on it closes at once
//! and new tokens naming it are refused. A revoked grant is remembered only as long as a
//! token issued before the revocation could still be presented: the edge issues no token
//! for a revoked grant, and agent tokens live `AGENT_TOKEN_TTL_SECS`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cloudos_proto::terminal::AGENT_TOKEN_TTL_SECS;
use tokio::sync::watch;

/// How long a revocation is remembered: a token's life plus the agent's clock leeway.
const REMEMBER: Duration = Duration::from_secs(AGENT_TOKEN_TTL_SECS + 10);

/// The revoked grants of this sandbox, and a signal that wakes every socket to look.
pub struct Grants {
    revoked: Mutex<HashMap<String, Instant>>,
    changed: watch::Sender<u64>,
}

impl Default for Grants {
    fn default() -> Self {
        Grants {
            revoked: Mutex::new(HashMap::new()),
            changed: watch::channel(0).0,
        }
    }
}

impl Grants {
    /// Revokes `grants`: their sockets close, their tokens are refused.
    pub fn revoke(&self, grants: &[String]) {
        let now = Instant::now();
        {
            let mut revoked = self.revoked.lock().expect("not poisoned");
            revoked.retain(|_, at| now.duration_since(*at) < REMEMBER);
            for g in grants {
                revoked.insert(g.clone(), now);
            }
        }
        self.changed.send_modify(|n| *n += 1);
    }

    /// Whether `grant` was revoked (recently enough to matter).
    pub fn is_revoked(&self, grant: &str) -> bool {
        let revoked = self.revoked.lock().expect("not poisoned");
        revoked.get(grant).is_some_and(|at| at.elapsed() < REMEMBER)
    }

    /// A signal that changes with every revocation.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_revocation_names_its_grants_and_wakes_watchers() {
        let g = Grants::default();
        let mut w = g.watch();
        assert!(!g.is_revoked("share:a"));
        g.revoke(&["share:a".into()]);
        assert!(g.is_revoked("share:a"));
        assert!(!g.is_revoked("share:b"));
        tokio::time::timeout(Duration::from_secs(1), w.changed())
            .await
            .expect("woken")
            .unwrap();
    }
}
