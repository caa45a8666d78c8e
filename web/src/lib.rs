//! The Cloud OS desktop in the browser: Leptos, rendered on the client.
#![forbid(unsafe_code)]

pub mod api;
pub mod apps;
pub mod desktop;
pub mod login;
pub mod session;

use leptos::prelude::*;

/// Login screen or desktop, following the session.
#[component]
fn Root() -> impl IntoView {
    let session = session::Session::restore();
    session::install(session);
    provide_context(session);
    // Signed out, a view link to a text file opens the file alone, following its edits
    // live; "Sign in" leaves it for the login screen (the desktop then opens the link). It
    // is for a page opened signed out: signing out later always ends at the login screen.
    let link = RwSignal::new(
        session
            .user
            .get_untracked()
            .is_none()
            .then(apps::editor::link_in_address)
            .flatten(),
    );
    Effect::new(move |_| {
        if session.user.get().is_some() {
            link.set(None);
        }
    });
    view! {
        {move || if session.user.get().is_some() {
            view! { <desktop::Desktop /> }.into_any()
        } else if let Some((file, share)) = link.get() {
            let leave = Callback::new(move |()| link.set(None));
            view! { <apps::editor::LinkPage file=file share=share on_sign_in=leave /> }.into_any()
        } else {
            view! { <login::Login /> }.into_any()
        }}
    }
}

/// Entry point, called by the wasm-bindgen glue.
#[wasm_bindgen::prelude::wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
    if let Some(loading) = leptos::prelude::document().get_element_by_id("boot") {
        loading.remove();
    }
    leptos::mount::mount_to_body(Root);
}
