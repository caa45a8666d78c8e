//! The desktop: windows over a wallpaper, the dock, the launcher and notifications.

pub mod dock;
pub mod launcher;
pub mod notify;
pub mod window;
pub mod wm;

use cloudos_proto::{AppList, DesktopLayout};
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;

use crate::api;
use crate::apps::AppContent;
use window::WindowFrame;
use wm::{Mode, SavedLayout, Wm};

/// Waits this long after the last change before saving the layout.
const SAVE_DELAY_MS: u32 = 400;

fn mark(name: &str) {
    if let Some(p) = web_sys::window().and_then(|w| w.performance()) {
        let _ = p.mark(name);
    }
}

/// Whether a key event comes from a text field (where shortcuts must not fire).
pub fn typing_in_field(ev: &web_sys::KeyboardEvent) -> bool {
    ev.target()
        .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
        .is_some_and(|el| {
            matches!(el.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT")
                || el.has_attribute("contenteditable")
        })
}

/// Opens what a link names: a terminal to watch (`#terminal?sandbox=…&share=…&session=…`)
/// or a file in the Editor, one's own or through a share link (`#editor?file=…[&share=…]`),
/// then takes the link out of the address bar.
fn open_shared_terminal(wm: Wm) {
    let Some(window) = web_sys::window() else {
        return;
    };
    let hash = window.location().hash().unwrap_or_default();
    if let Some(query) = hash.strip_prefix("#editor?") {
        let Ok(params) = web_sys::UrlSearchParams::new_with_str(query) else {
            return;
        };
        match (params.get("file"), params.get("share")) {
            (Some(file), Some(share)) => {
                crate::apps::editor::open_file(wm, &format!("{file}~{share}"))
            }
            (Some(file), None) => crate::apps::editor::open_file(wm, &file),
            _ => {}
        }
        if let Ok(history) = window.history() {
            let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some("/"));
        }
        return;
    }
    let Some(query) = hash.strip_prefix("#terminal?") else {
        return;
    };
    let Ok(params) = web_sys::UrlSearchParams::new_with_str(query) else {
        return;
    };
    let (Some(sandbox), Some(share)) = (params.get("sandbox"), params.get("share")) else {
        return;
    };
    let session = params.get("session").unwrap_or_else(|| "main".into());
    let target = crate::apps::terminal::Target::Shared {
        sandbox,
        share,
        session,
    };
    wm.open("terminal", Some(target.to_arg()));
    if let Ok(history) = window.history() {
        let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some("/"));
    }
}

/// The signed-in desktop.
#[component]
pub fn Desktop() -> impl IntoView {
    let wm = Wm::new();
    provide_context(wm);
    let launcher_open = RwSignal::new(false);
    provide_context(launcher::LauncherOpen(launcher_open));
    let notes = notify::Notifications::new();
    provide_context(notes);
    let ready = RwSignal::new(false);
    let load_error = RwSignal::new(None::<String>);

    // Apps first (the layout refers to them), then the saved layout.
    spawn_local(async move {
        let apps = api::get::<AppList>("/apps").await;
        let layout = api::get::<DesktopLayout>("/desktop").await;
        match (apps, layout) {
            (Ok(apps), Ok(layout)) => {
                wm.apps.set(apps.apps);
                let saved: SavedLayout = serde_json::from_value(layout.layout).unwrap_or_default();
                wm.restore(saved);
                open_shared_terminal(wm);
                ready.set(true);
                mark("cloudos:desktop-ready");
            }
            (Err(e), _) | (_, Err(e)) => load_error.set(Some(e.message)),
        }
    });
    notes.connect();
    // A view-only link pasted into a tab that already shows the desktop.
    if let Some(window) = web_sys::window() {
        let on_hash = wasm_bindgen::closure::Closure::<dyn FnMut()>::new(move || {
            if ready.get_untracked() {
                open_shared_terminal(wm);
            }
        });
        let _ =
            window.add_event_listener_with_callback("hashchange", on_hash.as_ref().unchecked_ref());
        let keep = send_wrapper::SendWrapper::new((window, on_hash));
        on_cleanup(move || {
            let _ = keep
                .0
                .remove_event_listener_with_callback("hashchange", keep.1.as_ref().unchecked_ref());
        });
    }

    // Save the layout a moment after the last change; the first revision is the restore.
    let pending = StoredValue::new_local(None::<gloo_timers::callback::Timeout>);
    let unsaved = StoredValue::new_local(false);
    let layout_body = move || DesktopLayout {
        layout: serde_json::to_value(wm.saved()).unwrap_or_default(),
        updated_at: None,
    };
    Effect::new(move |_| {
        wm.revision.track();
        if !ready.get_untracked() {
            return;
        }
        unsaved.set_value(true);
        pending.set_value(Some(gloo_timers::callback::Timeout::new(
            SAVE_DELAY_MS,
            move || {
                let body = layout_body();
                let rev = wm.revision.get_untracked();
                spawn_local(async move {
                    match api::put_no_content("/desktop", &body).await {
                        // Unsaved until the server has it (a reload cuts a request short),
                        // and only if nothing changed meanwhile.
                        Ok(()) if wm.revision.try_get_untracked() == Some(rev) => {
                            let _ = unsaved.try_set_value(false);
                        }
                        Ok(()) => {}
                        Err(e) => web_sys::console::warn_1(
                            &format!("saving the layout failed: {e}").into(),
                        ),
                    }
                });
            },
        )));
    });
    // A reload or a closed tab right after a change: the pending save goes now, in a
    // request that outlives the page.
    let pagehide = window_event_listener(leptos::ev::pagehide, move |_| {
        if unsaved.try_get_value() == Some(true) {
            let _ = unsaved.try_set_value(false);
            let _ = pending.try_set_value(None);
            api::put_keepalive("/desktop", &layout_body());
        }
    });
    // Signed out, the desktop is gone and so is what the listener reads.
    on_cleanup(move || pagehide.remove());

    let _resize = window_event_listener(leptos::ev::resize, move |_| wm.refresh_viewport());
    let _keys = window_event_listener(leptos::ev::keydown, move |ev| {
        shortcut(wm, launcher_open, ev)
    });

    view! {
        <div class="desktop" data-desktop data-ready=move || ready.get().to_string()>
            <div class="windows">
                <For
                    each=move || wm.windows.get()
                    key=|w| w.id
                    children=move |w| {
                        let win = w.clone();
                        view! { <WindowFrame win=w><AppContent win=win /></WindowFrame> }
                    }
                />
            </div>
            <div
                class="snap-preview"
                class:visible=move || wm.snap_preview.get().is_some()
                style:left=move || match wm.snap_preview.get() { Some(Mode::Right) => "50%", _ => "0" }
                style:width=move || match wm.snap_preview.get() { Some(Mode::Left) | Some(Mode::Right) => "50%", _ => "100%" }
                aria-hidden="true"
            ></div>
            <Show when=move || load_error.get().is_some()>
                <div class="desktop-error" role="alert">
                    "The desktop could not load: " {move || load_error.get().unwrap_or_default()}
                </div>
            </Show>
            <launcher::Launcher />
            <notify::Toasts />
            <dock::Dock />
        </div>
    }
}

/// The desktop's keyboard shortcuts (Alt-based, since browsers keep Ctrl+W and Ctrl+Tab).
fn shortcut(wm: Wm, launcher: RwSignal<bool>, ev: web_sys::KeyboardEvent) {
    let key = ev.key();
    let focused = wm.focused.get_untracked();
    let handled = match (ev.alt_key(), ev.ctrl_key() || ev.meta_key(), key.as_str()) {
        (_, true, " ") | (true, false, " ") | (true, false, "k") | (true, false, "K") => {
            launcher.update(|o| *o = !*o);
            true
        }
        (_, _, "Escape") if launcher.get_untracked() => {
            launcher.set(false);
            true
        }
        (true, false, "`") | (true, false, "~") => {
            wm.cycle(ev.shift_key());
            true
        }
        (true, false, "w") | (true, false, "W") => focused.map(|id| wm.close(id)).is_some(),
        (true, false, "m") | (true, false, "M") => focused.map(|id| wm.minimize(id)).is_some(),
        (true, false, "ArrowUp") => focused.map(|id| wm.toggle_maximize(id)).is_some(),
        (true, false, "ArrowDown") => focused.map(|id| wm.set_mode(id, Mode::Normal)).is_some(),
        (true, false, "ArrowLeft") if ev.shift_key() => {
            focused.map(|id| wm.set_mode(id, Mode::Left)).is_some()
        }
        (true, false, "ArrowRight") if ev.shift_key() => {
            focused.map(|id| wm.set_mode(id, Mode::Right)).is_some()
        }
        _ => false,
    };
    // A plain character typed into a field still reaches the field.
    let plain_typing = typing_in_field(&ev) && key.len() == 1 && !ev.alt_key() && !ev.ctrl_key();
    if handled && !plain_typing {
        ev.prevent_default();
    }
}
