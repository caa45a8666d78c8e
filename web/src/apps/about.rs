//! About Cloud OS: storage use and the keyboard shortcuts.

use cloudos_proto::Me;
use leptos::prelude::*;

use super::human_size;
use crate::api;

const SHORTCUTS: &[(&str, &str)] = &[
    ("Ctrl+Space or Alt+K", "Open the launcher"),
    ("Alt+`  /  Alt+Shift+`", "Next / previous window"),
    ("Alt+W", "Close the focused window"),
    ("Alt+M", "Minimize the focused window"),
    ("Alt+↑ / Alt+↓", "Maximize or restore / restore"),
    ("Alt+Shift+← / →", "Snap to the left / right half"),
    (
        "Files: Enter, F2, Delete",
        "Open, rename, delete the selection",
    ),
    (
        "Files: Ctrl+A, Backspace",
        "Select all, go to the parent folder",
    ),
];

/// The About window.
#[component]
pub fn About() -> impl IntoView {
    let me = LocalResource::new(|| api::get::<Me>("/me"));
    view! {
        <div class="about">
            <h3>"Cloud OS"</h3>
            <p>"Version " {env!("CARGO_PKG_VERSION")}</p>
            <Suspense fallback=|| view! { <p>"Loading…"</p> }>
                {move || me.get().map(|r| match r {
                    Ok(me) => view! { <p>{me.email.clone()} ": " {human_size(me.used_bytes)} " of " {human_size(me.quota_bytes)} " used"</p> }.into_any(),
                    Err(e) => view! { <p class="form-error">{e.message}</p> }.into_any(),
                })}
            </Suspense>
            <h4>"Keyboard shortcuts"</h4>
            <table class="shortcuts">
                {SHORTCUTS.iter().map(|(k, v)| view! { <tr><td><kbd>{*k}</kbd></td><td>{*v}</td></tr> }).collect_view()}
            </table>
        </div>
    }
}
