//! Blob stores of the native host: a local directory (default) or any S3 API.

pub mod local;
pub mod s3;

pub use local::LocalBlobs;
pub use s3::{S3Blobs, S3Settings};

use cloudos_core::ports::BlobError;

fn io(e: impl std::fmt::Display) -> BlobError {
    BlobError::Io(e.to_string())
}

/// Whether a key is a lowercase hex SHA-256, the only keys the core commits; anything
/// else never reaches the storage layout.
fn valid_key(key: &str) -> bool {
    key.len() == 64
        && key
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}
