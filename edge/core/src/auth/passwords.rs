//! Password hashing: argon2id in PHC strings.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use super::AuthError;
use crate::App;

/// Runs `f` where the app runs CPU-heavy work (never on the threads serving requests,
/// natively); `Busy` when too much is waiting.
async fn on_cpu<T: Send + 'static>(
    app: &App,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AuthError> {
    let out = std::sync::Arc::new(std::sync::Mutex::new(None));
    let slot = out.clone();
    app.ports
        .cpu
        .run(Box::new(move || {
            *slot.lock().expect("result slot") = Some(f());
        }))
        .await?;
    let result = out.lock().expect("result slot").take();
    result.ok_or_else(|| AuthError::Hash("the hashing job did not run".into()))
}

/// [`hash_password`] off the request threads.
pub async fn hash_on_cpu(app: &App, password: &str, salt: Vec<u8>) -> Result<String, AuthError> {
    let password = password.to_owned();
    on_cpu(app, move || hash_password(&password, &salt)).await?
}

/// [`verify_password`] off the request threads.
pub async fn verify_on_cpu(app: &App, password: &str, phc: String) -> Result<bool, AuthError> {
    let password = password.to_owned();
    on_cpu(app, move || verify_password(&password, &phc)).await
}

/// An argon2id hash (PHC string) of `password` with the given salt bytes.
pub fn hash_password(password: &str, salt: &[u8]) -> Result<String, AuthError> {
    let salt = SaltString::encode_b64(salt).map_err(|e| AuthError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Whether `password` matches a stored PHC hash.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_hash_verifies_only_the_right_password() {
        let h = hash_password("correct horse", b"0123456789abcdef").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
        assert!(!verify_password("x", "not a hash"));
    }
}
