//! Keys and tokens of sandboxes. Each sandbox gets its own agent key, derived from the
//! edge's secret, so code running in one sandbox can never mint tokens for another; view
//! shares are tokens of their own audience.

use cloudos_proto::terminal::{AgentClaims, Role, AGENT_AUDIENCE};
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::SandboxesError;

/// Audience of view-share tokens.
const SHARE_AUDIENCE: &str = "sandbox-view";
/// How long an agent token is good for: it is checked once, when the socket opens.
pub const AGENT_TOKEN_TTL_SECS: i64 = 120;

/// The agent key of `sandbox_id`.
pub fn agent_key(secret: &[u8], sandbox_id: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(b"cloudos-sandbox-key\0");
    mac.update(sandbox_id.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// A token the sandbox's agent accepts for `user_id` with `role`.
pub fn agent_token(
    secret: &[u8],
    sandbox_id: &str,
    user_id: &str,
    role: Role,
    now_ms: i64,
) -> String {
    let claims = AgentClaims {
        sub: user_id.to_owned(),
        sbx: sandbox_id.to_owned(),
        role,
        exp: (now_ms / 1000 + AGENT_TOKEN_TTL_SECS) as u64,
        aud: AGENT_AUDIENCE.to_owned(),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(&agent_key(secret, sandbox_id)),
    )
    .expect("HS256 signing of plain claims cannot fail")
}

#[derive(Debug, Serialize, Deserialize)]
struct ShareClaims {
    sbx: String,
    sub: String,
    aud: String,
    exp: i64,
}

/// A view-only share of `sandbox_id` by its owner, valid until `expires_ms`.
pub fn share_token(secret: &[u8], sandbox_id: &str, owner: &str, expires_ms: i64) -> String {
    let claims = ShareClaims {
        sbx: sandbox_id.to_owned(),
        sub: owner.to_owned(),
        aud: SHARE_AUDIENCE.to_owned(),
        exp: expires_ms / 1000,
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .expect("HS256 signing of plain claims cannot fail")
}

/// Checks a view share for `sandbox_id` against the host's clock.
pub fn verify_share(
    secret: &[u8],
    token: &str,
    sandbox_id: &str,
    now_ms: i64,
) -> Result<(), SandboxesError> {
    let mut v = Validation::new(Algorithm::HS256);
    v.set_audience(&[SHARE_AUDIENCE]);
    // wasm32 has no system clock: expiry is checked below against the host's.
    v.validate_exp = false;
    let claims = jsonwebtoken::decode::<ShareClaims>(token, &DecodingKey::from_secret(secret), &v)
        .map_err(|_| SandboxesError::BadShare)?
        .claims;
    if claims.sbx != sandbox_id || claims.exp <= now_ms / 1000 {
        return Err(SandboxesError::BadShare);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_sandbox_has_its_own_key() {
        assert_ne!(agent_key(b"s", "a"), agent_key(b"s", "b"));
        assert_ne!(agent_key(b"s", "a"), agent_key(b"t", "a"));
        assert_eq!(agent_key(b"s", "a").len(), 32);
    }

    #[test]
    fn agent_tokens_verify_with_that_sandboxs_key_only() {
        let t = agent_token(b"secret", "sbx1", "u1", Role::Viewer, 1_000_000);
        let mut v = Validation::new(Algorithm::HS256);
        v.set_audience(&[AGENT_AUDIENCE]);
        v.validate_exp = false;
        let ok = jsonwebtoken::decode::<AgentClaims>(
            &t,
            &DecodingKey::from_secret(&agent_key(b"secret", "sbx1")),
            &v,
        )
        .unwrap()
        .claims;
        assert_eq!((ok.sbx.as_str(), ok.role), ("sbx1", Role::Viewer));
        assert_eq!(ok.exp, 1000 + AGENT_TOKEN_TTL_SECS as u64);
        assert!(jsonwebtoken::decode::<AgentClaims>(
            &t,
            &DecodingKey::from_secret(&agent_key(b"secret", "sbx2")),
            &v
        )
        .is_err());
    }

    #[test]
    fn shares_name_one_sandbox_and_expire() {
        let t = share_token(b"k", "sbx1", "owner", 10_000);
        assert!(verify_share(b"k", &t, "sbx1", 9_000).is_ok());
        assert!(verify_share(b"k", &t, "sbx2", 9_000).is_err());
        assert!(verify_share(b"k", &t, "sbx1", 10_000).is_err());
        assert!(verify_share(b"other", &t, "sbx1", 9_000).is_err());
    }
}
