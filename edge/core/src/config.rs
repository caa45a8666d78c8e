//! Product settings a host reads from its environment and hands to the core.

use std::fmt;

/// Settings of the product (not of a host).
#[derive(Clone)]
pub struct Config {
    /// HMAC key for access tokens and signed download URLs.
    pub secret: Vec<u8>,
    /// Lifetime of an access token.
    pub token_ttl_secs: i64,
    /// Default lifetime of a signed download URL (a client may ask for less).
    pub download_ttl_secs: i64,
    /// Storage quota of a new user.
    pub default_quota_bytes: u64,
    /// Failed logins for one email within `login_window_secs` before 429.
    pub login_max_failures: i64,
    /// The window of the login throttle.
    pub login_window_secs: i64,
    /// How old an unreferenced blob or pending upload must be before the sweep removes it.
    pub orphan_grace_secs: i64,
}

impl Config {
    /// Defaults suitable for a single machine, with the given secret.
    pub fn with_secret(secret: Vec<u8>) -> Self {
        Config {
            secret,
            token_ttl_secs: 12 * 3600,
            download_ttl_secs: 300,
            default_quota_bytes: 10 * 1024 * 1024 * 1024,
            login_max_failures: 5,
            login_window_secs: 15 * 60,
            orphan_grace_secs: 3600,
        }
    }
}

// The secret must never reach a log line.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("secret", &"<redacted>")
            .field("token_ttl_secs", &self.token_ttl_secs)
            .field("download_ttl_secs", &self.download_ttl_secs)
            .field("default_quota_bytes", &self.default_quota_bytes)
            .field("login_max_failures", &self.login_max_failures)
            .field("login_window_secs", &self.login_window_secs)
            .field("orphan_grace_secs", &self.orphan_grace_secs)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_secret() {
        let c = Config::with_secret(b"hunter2-very-secret".to_vec());
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"));
        assert!(shown.contains("<redacted>"));
    }
}
