//! The sign-in and sign-up screen.

use cloudos_proto::{AuthResponse, LoginRequest, SignupRequest};
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api;
use crate::session::Session;

/// Marks when the user asked to sign in, for the login-to-desktop measurement.
fn mark(name: &str) {
    if let Some(p) = web_sys::window().and_then(|w| w.performance()) {
        let _ = p.mark(name);
    }
}

/// Sign in, or create an account.
#[component]
pub fn Login() -> impl IntoView {
    let session = expect_context::<Session>();
    let signup = RwSignal::new(false);
    let email = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let name = RwSignal::new(String::new());
    let error = RwSignal::new(session.ended.get_untracked());
    let busy = RwSignal::new(false);

    let submit = move |ev: web_sys::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        error.set(None);
        mark("cloudos:login-submit");
        let (e, p, n) = (
            email.get_untracked(),
            password.get_untracked(),
            name.get_untracked(),
        );
        let creating = signup.get_untracked();
        spawn_local(async move {
            let answer: Result<AuthResponse, api::ApiErr> = if creating {
                api::post(
                    "/auth/signup",
                    &SignupRequest {
                        email: e,
                        password: p,
                        name: n,
                    },
                )
                .await
            } else {
                api::post(
                    "/auth/login",
                    &LoginRequest {
                        email: e,
                        password: p,
                    },
                )
                .await
            };
            busy.set(false);
            match answer {
                Ok(a) => session.signed_in(&a.token, a.user),
                Err(err) => error.set(Some(match (err.status, err.kind.as_str()) {
                    (401, _) => "Wrong email or password.".into(),
                    (409, _) => {
                        "An account with this email already exists. Sign in instead?".into()
                    }
                    (429, _) => format!("Too many attempts. {}", err.message),
                    _ => err.message,
                })),
            }
        });
    };

    view! {
        <main class="login" data-login>
            <form class="login-card" on:submit=submit aria-labelledby="login-title">
                <div class="login-logo" aria-hidden="true"></div>
                <h1 id="login-title">{move || if signup.get() { "Create your Cloud OS account" } else { "Sign in to Cloud OS" }}</h1>
                <Show when=move || signup.get()>
                    <label>"Name"
                        <input name="name" autocomplete="name" required
                            prop:value=move || name.get()
                            on:input=move |ev| name.set(event_target_value(&ev)) />
                    </label>
                </Show>
                <label>"Email"
                    <input name="email" type="email" autocomplete="email" required autofocus
                        prop:value=move || email.get()
                        on:input=move |ev| email.set(event_target_value(&ev)) />
                </label>
                <label>"Password"
                    <input name="password" type="password" required minlength="8"
                        autocomplete=move || if signup.get() { "new-password" } else { "current-password" }
                        prop:value=move || password.get()
                        on:input=move |ev| password.set(event_target_value(&ev)) />
                </label>
                <Show when=move || error.get().is_some()>
                    <p class="form-error" role="alert" data-login-error>{move || error.get().unwrap_or_default()}</p>
                </Show>
                <button type="submit" class="primary" disabled=move || busy.get()>
                    {move || match (busy.get(), signup.get()) {
                        (true, _) => "Please wait…",
                        (false, true) => "Create account",
                        (false, false) => "Sign in",
                    }}
                </button>
                <p class="login-switch">
                    {move || if signup.get() { "Already have an account?" } else { "New here?" }}
                    " "
                    <button type="button" class="link" data-login-switch
                        on:click=move |_| { signup.update(|s| *s = !*s); error.set(None); }>
                        {move || if signup.get() { "Sign in" } else { "Create an account" }}
                    </button>
                </p>
            </form>
        </main>
    }
}
