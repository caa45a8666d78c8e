//! Ids as types at the service boundary, so a file id can never be passed as a user id
//! (zed's `db/ids.rs`). On the wire they stay plain strings.

use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The id as text (for SQL parameters and answers).
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The id's text, moved out.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                $name(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                $name(id.to_owned())
            }
        }

        // Code that has not moved to typed ids yet reads it as `&str`; a `&str` never
        // becomes an id by itself, which is what keeps ids from being swapped.
        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&$name> for crate::ports::Value {
            fn from(id: &$name) -> Self {
                crate::ports::Value::Text(id.0.clone())
            }
        }
    };
}

id_type!(
    /// A user: the principal every service acts for.
    UserId
);
id_type!(
    /// A file or folder of the drive.
    FileId
);
id_type!(
    /// A terminal sandbox.
    SandboxId
);
