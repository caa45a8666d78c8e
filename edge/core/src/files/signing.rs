//! Signed, short-lived grants that work without a token: download URLs here, and a link's
//! pass after its password (`shares::passwords`), one HMAC scheme for both.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::FilesError;

type HmacSha256 = Hmac<Sha256>;

/// What a signature grants: its prefix keeps one kind from ever validating another.
#[derive(Debug, Clone, Copy)]
pub enum Purpose {
    Download,
    LinkPass,
}

fn mac(secret: &[u8], purpose: Purpose, subject: &str, expires: i64) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(match purpose {
        Purpose::Download => b"cloudos-download\0".as_slice(),
        Purpose::LinkPass => b"cloudos-link-pass\0".as_slice(),
    });
    mac.update(subject.as_bytes());
    mac.update(b"\0");
    mac.update(expires.to_string().as_bytes());
    mac
}

/// The signature (lowercase hex) granting `purpose` on `subject` until `expires` (Unix
/// seconds).
pub fn sign_for(secret: &[u8], purpose: Purpose, subject: &str, expires: i64) -> String {
    hex::encode(
        mac(secret, purpose, subject, expires)
            .finalize()
            .into_bytes(),
    )
}

/// Whether `sig` grants `purpose` on `subject` until `expires`, and that is after `now_secs`.
pub fn holds(
    secret: &[u8],
    purpose: Purpose,
    subject: &str,
    expires: i64,
    sig: &str,
    now_secs: i64,
) -> bool {
    hex::decode(sig).is_ok_and(|bytes| {
        mac(secret, purpose, subject, expires)
            .verify_slice(&bytes)
            .is_ok()
    }) && now_secs < expires
}

/// The signature for downloading `file_id` until `expires` (Unix seconds).
pub fn sign(secret: &[u8], file_id: &str, expires: i64) -> String {
    sign_for(secret, Purpose::Download, file_id, expires)
}

/// Checks a download signature and its expiry against `now_secs`.
pub fn verify(
    secret: &[u8],
    file_id: &str,
    expires: i64,
    sig: &str,
    now_secs: i64,
) -> Result<(), FilesError> {
    holds(secret, Purpose::Download, file_id, expires, sig, now_secs)
        .then_some(())
        .ok_or(FilesError::BadSignature)
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
    fn a_signature_grants_only_its_own_purpose() {
        let download = sign(b"k", "s1", 1000);
        assert!(!holds(b"k", Purpose::LinkPass, "s1", 1000, &download, 0));
        let pass = sign_for(b"k", Purpose::LinkPass, "s1", 1000);
        assert!(holds(b"k", Purpose::LinkPass, "s1", 1000, &pass, 0));
        assert!(verify(b"k", "s1", 1000, &pass, 0).is_err());
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
