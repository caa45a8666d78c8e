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
        // Copies of someone else's unsent edits have no business here any more.
        forget_local_copies(Some(user.id.clone()));
        self.ended.set(None);
        self.user.set(Some(user));
    }

    /// Signs out on purpose: forgets the session and every copy of a file this browser
    /// keeps for the Editor (a shared computer keeps nothing of the user's files). An
    /// expired session keeps them, so the same user signing in again sends what waited.
    pub fn sign_out_here(&self) {
        forget_local_copies(None);
        self.sign_out(None);
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

/// Deletes the Editor's IndexedDB stores (`cloudos:<user>:<file>`), all of them or those of
/// users other than `keep`. A store still open is deleted once its editor closes.
fn forget_local_copies(keep: Option<String>) {
    use wasm_bindgen::{JsCast, JsValue};
    let Some(idb) = web_sys::window()
        .and_then(|w| js_sys::Reflect::get(&w, &JsValue::from_str("indexedDB")).ok())
        .filter(|v| v.is_object())
    else {
        return;
    };
    let call = move |name: &str, args: &js_sys::Array| {
        js_sys::Reflect::get(&idb, &JsValue::from_str(name))
            .ok()
            .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
            .and_then(|f| f.apply(&idb, args).ok())
    };
    let Some(list) = call("databases", &js_sys::Array::new()) else {
        return;
    };
    let Ok(list) = list.dyn_into::<js_sys::Promise>() else {
        return;
    };
    let mine = keep.map(|u| format!("cloudos:{u}:"));
    leptos::task::spawn_local(async move {
        let Ok(dbs) = wasm_bindgen_futures::JsFuture::from(list).await else {
            return;
        };
        for db in js_sys::Array::from(&dbs).iter() {
            let Some(name) = js_sys::Reflect::get(&db, &JsValue::from_str("name"))
                .ok()
                .and_then(|n| n.as_string())
            else {
                continue;
            };
            let theirs = mine.as_ref().is_none_or(|m| !name.starts_with(m.as_str()));
            if name.starts_with("cloudos:") && theirs {
                let _ = call(
                    "deleteDatabase",
                    &js_sys::Array::of1(&JsValue::from_str(&name)),
                );
            }
        }
    });
}
