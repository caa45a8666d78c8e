//! Product settings, read by variable name for every host: the native server's flags and
//! environment and the Worker's vars and secrets answer the same names, and a bad value
//! stops the start with an error that names the variable.

use std::fmt;
use std::str::FromStr;

/// The variable of the signing secret. Hosts read it themselves, since where a missing one
/// comes from is theirs to decide (the native server generates one into its data dir; the
/// Worker refuses to start).
pub const SECRET_VAR: &str = "CLOUDOS_SECRET";

/// The shortest signing secret accepted: shorter ones could be guessed.
pub const MIN_SECRET_BYTES: usize = 32;

/// One setting: its variable, its default, what it means.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    pub var: &'static str,
    pub default: &'static str,
    pub about: &'static str,
}

/// Variable names of the settings, for hosts that map flags onto them.
pub mod vars {
    pub const TOKEN_TTL_SECS: &str = "CLOUDOS_TOKEN_TTL_SECS";
    pub const DOWNLOAD_TTL_SECS: &str = "CLOUDOS_DOWNLOAD_TTL_SECS";
    pub const DEFAULT_QUOTA_BYTES: &str = "CLOUDOS_DEFAULT_QUOTA_BYTES";
    pub const LOGIN_MAX_FAILURES: &str = "CLOUDOS_LOGIN_MAX_FAILURES";
    pub const LOGIN_WINDOW_SECS: &str = "CLOUDOS_LOGIN_WINDOW_SECS";
    pub const LOGIN_MAX_CLIENT_FAILURES: &str = "CLOUDOS_LOGIN_MAX_CLIENT_FAILURES";
    pub const MAX_ITEMS_PER_USER: &str = "CLOUDOS_MAX_ITEMS_PER_USER";
    pub const ORPHAN_GRACE_SECS: &str = "CLOUDOS_ORPHAN_GRACE_SECS";
    pub const TRASH_KEEP_SECS: &str = "CLOUDOS_TRASH_KEEP_SECS";
    pub const HISTORY_KEEP_ALL_SECS: &str = "CLOUDOS_HISTORY_KEEP_ALL_SECS";
    pub const PUBLIC_URL: &str = "CLOUDOS_PUBLIC_URL";
    pub const METRICS_TOKEN: &str = "CLOUDOS_METRICS_TOKEN";
}

/// Every setting [`Config::from_vars`] reads (besides the secret), for help texts and docs.
pub const SETTINGS: &[Setting] = &[
    Setting {
        var: vars::TOKEN_TTL_SECS,
        default: "43200",
        about: "lifetime of an access token, in seconds",
    },
    Setting {
        var: vars::DOWNLOAD_TTL_SECS,
        default: "300",
        about: "longest lifetime of a signed download URL, in seconds",
    },
    Setting {
        var: vars::DEFAULT_QUOTA_BYTES,
        default: "10737418240",
        about: "storage quota of a new user, in bytes",
    },
    Setting {
        var: vars::MAX_ITEMS_PER_USER,
        default: "100000",
        about: "files and folders one user may have (the quota bounds their bytes, this their number)",
    },
    Setting {
        var: vars::LOGIN_MAX_FAILURES,
        default: "5",
        about: "failed logins for one email within the window before 429",
    },
    Setting {
        var: vars::LOGIN_MAX_CLIENT_FAILURES,
        default: "100",
        about: "failed logins from one client (address; IPv6 /64) within the window before 429, whatever the emails",
    },
    Setting {
        var: vars::LOGIN_WINDOW_SECS,
        default: "900",
        about: "the window of the login throttle, in seconds",
    },
    Setting {
        var: vars::ORPHAN_GRACE_SECS,
        default: "3600",
        about: "age an unreferenced blob or unfinished upload must reach before the sweep removes it, in seconds",
    },
    Setting {
        var: vars::TRASH_KEEP_SECS,
        default: "2592000",
        about: "how long deleted files and folders wait in the Trash before the sweep removes them, in seconds",
    },
    Setting {
        var: vars::HISTORY_KEEP_ALL_SECS,
        default: "2592000",
        about: "how long every version of a file is kept, in seconds; older ones are thinned to the last of each day (the current version is always kept)",
    },
    Setting {
        var: vars::PUBLIC_URL,
        default: "",
        about: "the address users reach the desktop at (e.g. https://os.example.com), for links in answers; unset: the request's Host (X-Forwarded-Host is never trusted)",
    },
    Setting {
        var: vars::METRICS_TOKEN,
        default: "",
        about: "a bearer token GET /metrics requires (at least 16 bytes); unset: /metrics is open",
    },
];

/// A setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{var} is not set")]
    Missing { var: &'static str },
    #[error("{var}={value:?} is not valid: {why}")]
    Invalid {
        var: &'static str,
        value: String,
        why: String,
    },
}

impl ConfigError {
    /// The variable at fault.
    pub fn var(&self) -> &'static str {
        match self {
            ConfigError::Missing { var } | ConfigError::Invalid { var, .. } => var,
        }
    }
}

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
    /// Files and folders one user may have.
    pub max_items_per_user: u64,
    /// Failed logins for one email within `login_window_secs` before 429.
    pub login_max_failures: i64,
    /// Failed logins from one client within `login_window_secs` before 429.
    pub login_max_client_failures: i64,
    /// The window of the login throttle.
    pub login_window_secs: i64,
    /// How old an unreferenced blob or pending upload must be before the sweep removes it.
    pub orphan_grace_secs: i64,
    /// How long the Trash keeps what was deleted.
    pub trash_keep_secs: i64,
    /// How long every version is kept before the retention rule thins them to one a day.
    pub history_keep_all_secs: i64,
    /// `scheme://host[:port]` users reach the desktop at, for absolute links.
    pub public_url: Option<String>,
    /// The bearer token `GET /metrics` requires, if any.
    pub metrics_token: Option<String>,
}

impl Config {
    /// Defaults suitable for a single machine, with the given secret.
    pub fn with_secret(secret: Vec<u8>) -> Self {
        Self::from_vars(secret, |_| None).expect("the defaults are valid")
    }

    /// Reads every setting of [`SETTINGS`] through `get` (a variable's value, `None` when
    /// unset; an empty value counts as unset), each checked for its range.
    pub fn from_vars(
        secret: Vec<u8>,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        if secret.is_empty() {
            return Err(ConfigError::Missing { var: SECRET_VAR });
        }
        if secret.len() < MIN_SECRET_BYTES {
            return Err(ConfigError::Invalid {
                var: SECRET_VAR,
                // Never the secret itself, not even a short one.
                value: "<redacted>".into(),
                why: format!("a signing secret needs at least {MIN_SECRET_BYTES} bytes"),
            });
        }
        let read = Reader(&get);
        Ok(Config {
            secret,
            token_ttl_secs: read.number(vars::TOKEN_TTL_SECS, 60..=365 * 86_400)?,
            download_ttl_secs: read.number(vars::DOWNLOAD_TTL_SECS, 1..=7 * 86_400)?,
            default_quota_bytes: read.number(vars::DEFAULT_QUOTA_BYTES, 0..=u64::MAX / 2)?,
            max_items_per_user: read.number(vars::MAX_ITEMS_PER_USER, 1..=1_000_000_000)?,
            login_max_failures: read.number(vars::LOGIN_MAX_FAILURES, 1..=1_000_000)?,
            login_max_client_failures: read
                .number(vars::LOGIN_MAX_CLIENT_FAILURES, 1..=1_000_000_000)?,
            login_window_secs: read.number(vars::LOGIN_WINDOW_SECS, 1..=30 * 86_400)?,
            orphan_grace_secs: read.number(vars::ORPHAN_GRACE_SECS, 0..=365 * 86_400)?,
            trash_keep_secs: read.number(vars::TRASH_KEEP_SECS, 0..=10 * 365 * 86_400)?,
            history_keep_all_secs: read
                .number(vars::HISTORY_KEEP_ALL_SECS, 0..=10 * 365 * 86_400)?,
            public_url: read.origin(vars::PUBLIC_URL)?,
            metrics_token: read.secret(vars::METRICS_TOKEN, 16)?,
        })
    }
}

struct Reader<'a, F>(&'a F);

impl<F: Fn(&str) -> Option<String>> Reader<'_, F> {
    fn given(&self, var: &str) -> Option<String> {
        (self.0)(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// An `http(s)://host[:port]` origin (a trailing slash is dropped), if set.
    fn origin(&self, var: &'static str) -> Result<Option<String>, ConfigError> {
        let Some(v) = self.given(var) else {
            return Ok(None);
        };
        let v = v.trim_end_matches('/').to_owned();
        let host = v
            .strip_prefix("https://")
            .or_else(|| v.strip_prefix("http://"));
        match host {
            Some(h) if !h.is_empty() && !h.contains(['/', '?', '#', '@', ' ']) => Ok(Some(v)),
            _ => Err(ConfigError::Invalid {
                var,
                value: v.clone(),
                why: "expected http(s)://host[:port], with no path".into(),
            }),
        }
    }

    /// A secret of at least `min` bytes, if set (never echoed in an error).
    fn secret(&self, var: &'static str, min: usize) -> Result<Option<String>, ConfigError> {
        match self.given(var) {
            Some(v) if v.len() < min => Err(ConfigError::Invalid {
                var,
                value: "<redacted>".into(),
                why: format!("expected at least {min} bytes"),
            }),
            v => Ok(v),
        }
    }

    /// The variable's whole number within `range`, or its default.
    fn number<T>(
        &self,
        var: &'static str,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + fmt::Display,
    {
        let given = (self.0)(var).filter(|v| !v.trim().is_empty());
        let text = match &given {
            Some(v) => v.trim().to_owned(),
            None => default_of(var).to_owned(),
        };
        let invalid = |why: String| ConfigError::Invalid {
            var,
            value: text.clone(),
            why,
        };
        let value: T = text
            .parse()
            .map_err(|_| invalid("expected a whole number".into()))?;
        if !range.contains(&value) {
            return Err(invalid(format!(
                "expected {} to {}",
                range.start(),
                range.end()
            )));
        }
        Ok(value)
    }
}

fn default_of(var: &str) -> &'static str {
    SETTINGS
        .iter()
        .find(|s| s.var == var)
        .map_or("", |s| s.default)
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
            .field("login_max_client_failures", &self.login_max_client_failures)
            .field("max_items_per_user", &self.max_items_per_user)
            .field("login_window_secs", &self.login_window_secs)
            .field("orphan_grace_secs", &self.orphan_grace_secs)
            .field("trash_keep_secs", &self.trash_keep_secs)
            .field("history_keep_all_secs", &self.history_keep_all_secs)
            .field("public_url", &self.public_url)
            .field(
                "metrics_token",
                &self.metrics_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_vars(b"0123456789abcdef0123456789abcdef".to_vec(), move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn debug_redacts_secret() {
        let c = Config::with_secret(b"hunter2-very-secret-hunter2-very-secret".to_vec());
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"));
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn defaults_apply_to_unset_and_empty_variables() {
        let c = with(&[(vars::LOGIN_WINDOW_SECS, "")]).unwrap();
        assert_eq!(c.token_ttl_secs, 12 * 3600);
        assert_eq!(c.default_quota_bytes, 10 * 1024 * 1024 * 1024);
        assert_eq!(c.login_window_secs, 15 * 60);
        assert_eq!(
            (
                c.download_ttl_secs,
                c.login_max_failures,
                c.orphan_grace_secs
            ),
            (300, 5, 3600)
        );
        assert_eq!(
            (c.trash_keep_secs, c.history_keep_all_secs),
            (30 * 86_400, 30 * 86_400)
        );
    }

    #[test]
    fn every_variable_is_read_by_its_name() {
        let c = with(&[
            (vars::TOKEN_TTL_SECS, "120"),
            (vars::DOWNLOAD_TTL_SECS, "30"),
            (vars::DEFAULT_QUOTA_BYTES, " 16777216 "),
            (vars::LOGIN_MAX_FAILURES, "3"),
            (vars::LOGIN_MAX_CLIENT_FAILURES, "7"),
            (vars::LOGIN_WINDOW_SECS, "60"),
            (vars::ORPHAN_GRACE_SECS, "0"),
            (vars::TRASH_KEEP_SECS, "86400"),
            (vars::HISTORY_KEEP_ALL_SECS, "3600"),
        ])
        .unwrap();
        assert_eq!((c.trash_keep_secs, c.history_keep_all_secs), (86_400, 3600));
        assert_eq!(
            (c.token_ttl_secs, c.download_ttl_secs, c.default_quota_bytes),
            (120, 30, 16_777_216)
        );
        assert_eq!(
            (
                c.login_max_failures,
                c.login_window_secs,
                c.orphan_grace_secs
            ),
            (3, 60, 0)
        );
        assert_eq!(c.login_max_client_failures, 7);
    }

    #[test]
    fn the_public_url_is_an_origin_and_the_metrics_token_long_enough() {
        let c = with(&[
            (vars::PUBLIC_URL, "https://os.example.com/"),
            (vars::METRICS_TOKEN, "0123456789abcdef"),
        ])
        .unwrap();
        assert_eq!(c.public_url.as_deref(), Some("https://os.example.com"));
        assert_eq!(c.metrics_token.as_deref(), Some("0123456789abcdef"));
        assert!(!format!("{c:?}").contains("0123456789abcdef"));
        for bad in [
            "os.example.com",
            "https://",
            "https://a.example/path",
            "ftp://a",
        ] {
            let err = with(&[(vars::PUBLIC_URL, bad)]).unwrap_err();
            assert_eq!(err.var(), vars::PUBLIC_URL, "{bad}");
        }
        let err = with(&[(vars::METRICS_TOKEN, "short")]).unwrap_err();
        assert_eq!(err.var(), vars::METRICS_TOKEN);
        assert!(!err.to_string().contains("short"), "{err}");
        let unset = with(&[]).unwrap();
        assert_eq!((unset.public_url, unset.metrics_token), (None, None));
    }

    #[test]
    fn a_bad_value_is_an_error_that_names_the_variable() {
        let err = with(&[(vars::DEFAULT_QUOTA_BYTES, "10GB")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "CLOUDOS_DEFAULT_QUOTA_BYTES=\"10GB\" is not valid: expected a whole number"
        );
        let err = with(&[(vars::LOGIN_MAX_FAILURES, "0")]).unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::Invalid {
                    var: vars::LOGIN_MAX_FAILURES,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("expected 1 to"), "{err}");
        let err = with(&[(vars::TOKEN_TTL_SECS, "-5")]).unwrap_err();
        assert!(
            err.to_string().starts_with("CLOUDOS_TOKEN_TTL_SECS="),
            "{err}"
        );
        let err = Config::from_vars(Vec::new(), |_| None).unwrap_err();
        assert_eq!(err, ConfigError::Missing { var: SECRET_VAR });
        let err = Config::from_vars(b"short-secret".to_vec(), |_| None).unwrap_err();
        assert!(!err.to_string().contains("short-secret"), "{err}");
        assert!(err.to_string().contains("at least 32 bytes"), "{err}");
    }
}
