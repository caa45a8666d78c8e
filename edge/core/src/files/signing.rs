//! Signed, short-lived download URLs that work without a token.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::FilesError;

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &[u8], file_id: &str, expires: i64) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    // A distinct prefix keeps these signatures from ever validating anything else.
    mac.update(b"cloudos-download\0");
    mac.update(file_id.as_bytes());
    mac.update(b"\0");
    mac.update(expires.to_string().as_bytes());
    mac
}

/// The signature (lowercase hex) for downloading `file_id` until `expires` (Unix seconds).
pub fn sign(secret: &[u8], file_id: &str, expires: i64) -> String {
    hex::encode(mac(secret, file_id, expires).finalize().into_bytes())
}

/// Checks a signature and its expiry against `now_secs`.
pub fn verify(
    secret: &[u8],
    file_id: &str,
    expires: i64,
    sig: &str,
    now_secs: i64,
) -> Result<(), FilesError> {
    let bytes = hex::decode(sig).map_err(|_| FilesError::BadSignature)?;
    mac(secret, file_id, expires)
        .verify_slice(&bytes)
        .map_err(|_| FilesError::BadSignature)?;
    if now_secs >= expires {
        return Err(FilesError::BadSignature);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_until_expiry_only() {
        let s = sign(b"k", "f1", 1000);
        assert!(verify(b"k", "f1", 1000, &s, 999).is_ok());
        assert!(verify(b"k", "f1", 1000, &s, 1000).is_err());
    }

    #[test]
    fn bound_to_file_expiry_and_key() {
        let s = sign(b"k", "f1", 1000);
        assert!(verify(b"k", "f2", 1000, &s, 0).is_err());
        assert!(verify(b"k", "f1", 2000, &s, 0).is_err());
        assert!(verify(b"other", "f1", 1000, &s, 0).is_err());
        assert!(verify(b"k", "f1", 1000, "zz", 0).is_err());
    }
}
