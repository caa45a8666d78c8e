//! Access tokens: HS256 JWTs with the API audience, checked against the host's clock.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::AuthError;

/// Audience of tokens that act as the user on the API.
const API_AUDIENCE: &str = "api";

/// Claims of an access token.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    aud: String,
    iat: i64,
    exp: i64,
    /// The user's token generation when it was issued; a logout moves the user to the next
    /// one, and tokens of an earlier generation stop working. (Absent in tokens issued
    /// before logout existed: generation 0.)
    #[serde(default)]
    gen: i64,
}

/// Who a valid token stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSubject {
    pub user_id: String,
    /// The token generation it was issued in.
    pub gen: i64,
    /// When it expires, in milliseconds since the Unix epoch.
    pub expires_at_ms: i64,
}

/// Signs an access token for `user_id` (in token generation `gen`) valid for `ttl_secs`
/// from `now_ms`.
pub fn issue_token(secret: &[u8], user_id: &str, gen: i64, now_ms: i64, ttl_secs: i64) -> String {
    let iat = now_ms / 1000;
    let claims = Claims {
        sub: user_id.to_owned(),
        aud: API_AUDIENCE.to_owned(),
        iat,
        exp: iat + ttl_secs,
        gen,
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .expect("HS256 signing of plain claims cannot fail")
}

/// Checks a token's signature, audience and expiry (against the host's clock, since
/// wasm32 has no system time) and returns whom it stands for.
pub fn verify_token(secret: &[u8], token: &str, now_ms: i64) -> Result<TokenSubject, AuthError> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_audience(&[API_AUDIENCE]);
    validation.validate_exp = false;
    let data =
        jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(secret), &validation)
            .map_err(|_| AuthError::Unauthorized("invalid token"))?;
    if data.claims.exp <= now_ms / 1000 {
        return Err(AuthError::Unauthorized("token expired"));
    }
    Ok(TokenSubject {
        user_id: data.claims.sub,
        gen: data.claims.gen,
        expires_at_ms: data.claims.exp * 1000,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"test-secret-test-secret-test-sec";

    #[test]
    fn token_round_trip_and_expiry() {
        let t = issue_token(SECRET, "u1", 3, 1_000_000, 60);
        let who = verify_token(SECRET, &t, 1_000_000).unwrap();
        assert_eq!((who.user_id.as_str(), who.gen), ("u1", 3));
        assert!(verify_token(SECRET, &t, 1_000_000 + 61_000).is_err());
        assert!(verify_token(b"another-secret-another-secret-xx", &t, 1_000_000).is_err());
        assert!(verify_token(SECRET, "not.a.token", 1_000_000).is_err());
    }
}
