//! Who is signed in: the token lives in localStorage so a reload keeps the session.

use cloudos_proto::UserSummary;
use leptos::prelude::*;

const TOKEN_KEY: &str = "cloudos.token";
const USER_KEY: &str = "cloudos.user";

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

/// The saved token, if any.
pub fn token() -> Option<String> {
    storage()?.get_item(TOKEN_KEY).ok()?
}

/// The signed-in user as saved at login.
pub fn saved_user() -> Option<UserSummary> {
    serde_json::from_str(&storage()?.get_item(USER_KEY).ok()??).ok()
}

/// The app-wide session state.
#[derive(Clone, Copy)]
pub struct Session {
    pub user: RwSignal<Option<UserSummary>>,
    /// Why the last session ended, shown on the login screen.
    pub ended: RwSignal<Option<String>>,
}

impl Session {
    /// The session restored from storage.
    pub fn restore() -> Self {
        let user = token().and_then(|_| saved_user());
        Session {
            user: RwSignal::new(user),
            ended: RwSignal::new(None),
        }
    }

    /// Keeps a fresh login.
    pub fn signed_in(&self, token: &str, user: UserSummary) {
        if let Some(s) = storage() {
            let _ = s.set_item(TOKEN_KEY, token);
            let _ = s.set_item(USER_KEY, &serde_json::to_string(&user).unwrap_or_default());
        }
        self.ended.set(None);
        self.user.set(Some(user));
    }

    /// Forgets the session.
    pub fn sign_out(&self, why: Option<String>) {
        if let Some(s) = storage() {
            let _ = s.remove_item(TOKEN_KEY);
            let _ = s.remove_item(USER_KEY);
        }
        self.ended.set(why);
        self.user.set(None);
    }
}

thread_local! {
    // Async work outlives the component that started it, so the session is found here
    // rather than through the reactive context.
    static CURRENT: std::cell::Cell<Option<Session>> = const { std::cell::Cell::new(None) };
}

/// Makes `s` the session that [`expired`] ends.
pub fn install(s: Session) {
    CURRENT.with(|c| c.set(Some(s)));
}

/// Called when the server refuses the token (expired, or the account is gone).
pub fn expired() {
    match CURRENT.with(|c| c.get()) {
        Some(s) => s.sign_out(Some("Your session has ended. Please sign in again.".into())),
        None => {
            if let Some(s) = storage() {
                let _ = s.remove_item(TOKEN_KEY);
            }
        }
    }
}
