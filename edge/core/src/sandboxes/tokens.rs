//! Keys and tokens of sandboxes. Each sandbox gets its own agent key, derived from the
//! edge's secret, so code running in one sandbox can never mint tokens for another. (View
//! links are stored shares: `crate::shares`.)

use cloudos_proto::terminal::{AgentClaims, Role, AGENT_AUDIENCE, AGENT_TOKEN_TTL_SECS};
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use sha2::Sha256;

/// The agent key of `sandbox_id`.
pub fn agent_key(secret: &[u8], sandbox_id: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(b"cloudos-sandbox-key\0");
    mac.update(sandbox_id.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// What an agent token grants beyond its role: the grant it rests on (revocable at the
/// agent) and when its socket must end.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    /// What the socket rests on; revoking any of them ends it.
    pub ids: Vec<String>,
    /// Milliseconds since the Unix epoch.
    pub until_ms: Option<i64>,
}

/// A token the sandbox's agent accepts for `user_id` with `role`.
pub fn agent_token(
    secret: &[u8],
    sandbox_id: &str,
    user_id: &str,
    role: Role,
    grant: &Grant,
    now_ms: i64,
) -> String {
    let claims = AgentClaims {
        sub: user_id.to_owned(),
        sbx: sandbox_id.to_owned(),
        role,
        exp: (now_ms / 1000) as u64 + AGENT_TOKEN_TTL_SECS,
        aud: AGENT_AUDIENCE.to_owned(),
        grants: grant.ids.clone(),
        until: grant.until_ms.map(|ms| (ms.max(0) / 1000) as u64),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(&agent_key(secret, sandbox_id)),
    )
    .expect("HS256 signing of plain claims cannot fail")
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

    use jsonwebtoken::{DecodingKey, Validation};

    #[test]
    fn agent_tokens_verify_with_that_sandboxs_key_only() {
        let grant = Grant {
            ids: vec!["share:s1".into(), "session:u1:0".into()],
            until_ms: Some(5_000_000),
        };
        let t = agent_token(b"secret", "sbx1", "u1", Role::Viewer, &grant, 1_000_000);
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
        assert_eq!(ok.exp, 1000 + AGENT_TOKEN_TTL_SECS);
        assert_eq!(ok.grants, ["share:s1", "session:u1:0"]);
        assert_eq!(ok.until, Some(5000));
        assert!(jsonwebtoken::decode::<AgentClaims>(
            &t,
            &DecodingKey::from_secret(&agent_key(b"secret", "sbx2")),
            &v
        )
        .is_err());
    }
}
