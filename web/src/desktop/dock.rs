//! The dock: launcher button, pinned and running apps, notifications, clock and account.

use leptos::prelude::*;

use super::launcher::LauncherOpen;
use super::notify::{NotificationCenter, Notifications};
use super::wm::Wm;
use crate::session::Session;

fn clock_text() -> String {
    let d = js_sys::Date::new_0();
    format!("{:02}:{:02}", d.get_hours(), d.get_minutes())
}

/// The bar at the bottom of the screen.
#[component]
pub fn Dock() -> impl IntoView {
    let wm = expect_context::<Wm>();
    let LauncherOpen(launcher) = expect_context::<LauncherOpen>();
    let notes = expect_context::<Notifications>();
    let session = expect_context::<Session>();
    let clock = RwSignal::new(clock_text());
    let tick = StoredValue::new_local(Some(gloo_timers::callback::Interval::new(
        5_000,
        move || clock.set(clock_text()),
    )));
    on_cleanup(move || tick.set_value(None));
    let center_open = RwSignal::new(false);
    let account_open = RwSignal::new(false);

    let items = move || {
        let running: Vec<String> = wm
            .windows
            .with(|ws| ws.iter().map(|w| w.app.id.clone()).collect());
        wm.apps.with(|apps| {
            apps.iter()
                .filter(|a| a.pinned || running.contains(&a.id))
                .cloned()
                .collect::<Vec<_>>()
        })
    };

    view! {
        <nav class="dock" aria-label="Dock">
            <button class="dock-launcher" data-launcher-button title="Launcher (Ctrl+Space)" aria-label="Open the launcher"
                on:click=move |_| launcher.update(|o| *o = !*o)>
                <svg viewBox="0 0 24 24" aria-hidden="true">
                    <circle cx="6" cy="6" r="2" /><circle cx="12" cy="6" r="2" /><circle cx="18" cy="6" r="2" />
                    <circle cx="6" cy="12" r="2" /><circle cx="12" cy="12" r="2" /><circle cx="18" cy="12" r="2" />
                    <circle cx="6" cy="18" r="2" /><circle cx="12" cy="18" r="2" /><circle cx="18" cy="18" r="2" />
                </svg>
            </button>
            <ul class="dock-apps">
                <For each=items key=|a| a.id.clone() children=move |app| {
                    let id = app.id.clone();
                    let id_count = app.id.clone();
                    let id_focus = app.id.clone();
                    let count = Memo::new(move |_| wm.windows.with(|ws| ws.iter().filter(|w| w.app.id == id_count).count()));
                    let active = Memo::new(move |_| {
                        let f = wm.focused.get();
                        wm.windows.with(|ws| ws.iter().any(|w| Some(w.id) == f && w.app.id == id_focus))
                    });
                    view! {
                        <li>
                            <button class="dock-app" data-app=app.id.clone() title=app.name.clone() aria-label=app.name.clone()
                                class:running=move || { count.get() > 0 } class:active=move || active.get()
                                on:click=move |_| wm.activate_app(&id)>
                                <img src=app.icon.clone() alt="" draggable="false" />
                                <span class="dock-dots" aria-hidden="true">
                                    {move || "•".repeat(count.get().min(3))}
                                </span>
                            </button>
                        </li>
                    }
                } />
            </ul>
            <div class="dock-tray">
                <button class="dock-bell" data-notifications-button aria-label=move || format!("Notifications, {} unread", notes.unread.get())
                    title="Notifications" on:click=move |_| {
                        center_open.update(|o| *o = !*o);
                        if center_open.get_untracked() { notes.mark_all_read(); }
                    }>
                    <svg viewBox="0 0 24 24" aria-hidden="true"><path d="M12 3a6 6 0 0 0-6 6v4l-2 3h16l-2-3V9a6 6 0 0 0-6-6zm-2 15a2 2 0 0 0 4 0" /></svg>
                    <Show when=move || { notes.unread.get() > 0 }>
                        <span class="badge" data-unread>{move || notes.unread.get().to_string()}</span>
                    </Show>
                </button>
                <time class="dock-clock" data-clock>{move || clock.get()}</time>
                <div class="dock-account">
                    <button class="avatar" aria-haspopup="menu" aria-expanded=move || account_open.get().to_string()
                        title=move || session.user.get().map(|u| u.email).unwrap_or_default()
                        on:click=move |_| account_open.update(|o| *o = !*o)>
                        {move || session.user.get().and_then(|u| u.name.chars().next()).unwrap_or('?').to_uppercase().to_string()}
                    </button>
                    <Show when=move || account_open.get()>
                        <div class="menu account-menu" role="menu">
                            <div class="menu-header">{move || session.user.get().map(|u| u.email).unwrap_or_default()}</div>
                            <button role="menuitem" on:click=move |_| { account_open.set(false); wm.open("about", None); }>"About Cloud OS"</button>
                            <button role="menuitem" data-logout on:click=move |_| {
                                account_open.set(false);
                                if crate::apps::editor::unsent_edits() && !crate::apps::editor::confirm(
                                    "Some edits in the Editor have not reached the server yet. Signing out deletes the copies kept in this browser, and those edits with them. Sign out anyway?",
                                ) {
                                    return;
                                }
                                leptos::task::spawn_local(crate::api::logout(crate::session::token()));
                                session.sign_out_here();
                            }>"Sign out"</button>
                        </div>
                    </Show>
                </div>
            </div>
            <Show when=move || center_open.get()>
                <NotificationCenter on_close=Callback::new(move |_| center_open.set(false)) />
            </Show>
        </nav>
    }
}
