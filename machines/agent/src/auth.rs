//! The agent trusts only tokens the edge signed for this sandbox, with this sandbox's key.

use cloudos_proto::terminal::{AgentClaims, AGENT_AUDIENCE};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing token")]
    Missing,
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("the token is for another sandbox")]
    OtherSandbox,
}

/// Verifies sandbox tokens.
#[derive(Clone)]
pub struct AgentAuth {
    key: DecodingKey,
    sandbox_id: String,
}

impl AgentAuth {
    /// Tokens for `sandbox_id`, signed (HS256) with `key`.
    pub fn new(key: &[u8], sandbox_id: &str) -> Self {
        AgentAuth {
            key: DecodingKey::from_secret(key),
            sandbox_id: sandbox_id.to_owned(),
        }
    }

    /// The claims of a valid, unexpired token for this sandbox.
    pub fn verify(&self, token: Option<&str>) -> Result<AgentClaims, AuthError> {
        let token = token.filter(|t| !t.is_empty()).ok_or(AuthError::Missing)?;
        let mut v = Validation::new(Algorithm::HS256);
        v.set_audience(&[AGENT_AUDIENCE]);
        v.leeway = 5;
        let claims = jsonwebtoken::decode::<AgentClaims>(token, &self.key, &v)
            .map_err(|e| AuthError::Invalid(e.to_string()))?
            .claims;
        if claims.sbx != self.sandbox_id {
            return Err(AuthError::OtherSandbox);
        }
        Ok(claims)
    }
}

/// Signs a sandbox token (the edge's side; the agent's tests use it too).
pub fn sign(key: &[u8], claims: &AgentClaims) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(key),
    )
    .expect("HS256 signing cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudos_proto::terminal::Role;

    fn claims(sbx: &str, exp: u64) -> AgentClaims {
        AgentClaims {
            sub: "u1".into(),
            sbx: sbx.into(),
            role: Role::Driver,
            exp,
            aud: AGENT_AUDIENCE.into(),
            grants: vec![],
            until: None,
        }
    }

    fn far() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 600
    }

    #[test]
    fn accepts_only_this_sandboxs_tokens_signed_with_its_key() {
        let auth = AgentAuth::new(b"key-of-s1", "s1");
        let ok = sign(b"key-of-s1", &claims("s1", far()));
        assert_eq!(auth.verify(Some(&ok)).unwrap().sub, "u1");
        let other = sign(b"key-of-s1", &claims("s2", far()));
        assert!(matches!(
            auth.verify(Some(&other)),
            Err(AuthError::OtherSandbox)
        ));
        let forged = sign(b"key-of-s2", &claims("s1", far()));
        assert!(matches!(
            auth.verify(Some(&forged)),
            Err(AuthError::Invalid(_))
        ));
        let expired = sign(b"key-of-s1", &claims("s1", 1000));
        assert!(matches!(
            auth.verify(Some(&expired)),
            Err(AuthError::Invalid(_))
        ));
        assert!(matches!(auth.verify(None), Err(AuthError::Missing)));
    }
}
