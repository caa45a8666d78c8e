//! The Share dialog: a link to a file or folder (view or edit, with an expiry and an
//! optional password), copied in one click, and the item's links with their use and a
//! Revoke each.

use cloudos_proto::{File, FileShare, FileShareRequest, ShareLink, ShareList};
use leptos::prelude::*;
use web_sys::KeyboardEvent;

use super::state::FilesState;
use crate::api;

/// Puts `text` on the clipboard where the page may (a secure origin); elsewhere the link
/// stays in its field to copy by hand.
fn copy(text: &str) {
    let Some(w) = web_sys::window() else { return };
    let navigator = w.navigator();
    let has = js_sys::Reflect::get(&navigator, &"clipboard".into())
        .map(|c| !c.is_undefined())
        .unwrap_or(false);
    if has {
        let _ = navigator.clipboard().write_text(text);
    }
}

/// Selects the link's text when its field gets focus (to copy it by hand).
fn select_all(ev: web_sys::FocusEvent) {
    event_target::<web_sys::HtmlInputElement>(&ev).select();
}

async fn links(id: &str) -> Vec<ShareLink> {
    api::get::<ShareList>(&format!("/files/{}/shares", api::enc(id)))
        .await
        .map(|l| l.items)
        .unwrap_or_default()
}

/// The dialog for the item in `FilesState::sharing`.
#[component]
pub fn ShareDialog() -> impl IntoView {
    let st = expect_context::<FilesState>();
    view! {
        {move || st.sharing.get().map(|file| view! { <Dialog file /> })}
    }
}

#[component]
fn Dialog(file: File) -> impl IntoView {
    let st = expect_context::<FilesState>();
    let mode = RwSignal::new("view".to_owned());
    let days = RwSignal::new(30_i64);
    let password = RwSignal::new(String::new());
    let made = RwSignal::new(None::<FileShare>);
    let list = RwSignal::new(Vec::<ShareLink>::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    // Kept in a StoredValue so every handler below is `Copy`.
    let id = StoredValue::new(file.id.clone());
    let refresh = move || {
        let id = id.get_value();
        leptos::task::spawn_local(async move { list.set(links(&id).await) });
    };
    refresh();
    let create = move |_| {
        let id = id.get_value();
        busy.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            let body = FileShareRequest {
                mode: Some(mode.get_untracked()),
                expires_in: Some(days.get_untracked() * 24 * 3600),
                password: Some(password.get_untracked()).filter(|p| !p.is_empty()),
            };
            match api::post::<_, FileShare>(&format!("/files/{}/share", api::enc(&id)), &body).await
            {
                Ok(share) => {
                    // The password is not kept here once the link has it.
                    password.set(String::new());
                    copy(&share.url);
                    made.set(Some(share));
                    refresh();
                }
                Err(e) => error.set(Some(e.message)),
            }
            busy.set(false);
        });
    };
    let revoke = move |link: String| {
        leptos::task::spawn_local(async move {
            match api::delete(&format!("/shares/{}", api::enc(&link))).await {
                Ok(()) => {
                    if made.get_untracked().is_some_and(|m| m.id == link) {
                        made.set(None);
                    }
                    refresh();
                }
                Err(e) => error.set(Some(e.message)),
            }
        });
    };
    let close = move || st.sharing.set(None);
    view! {
        <div class="dialog-backdrop">
            <div class="dialog share-dialog" role="dialog" aria-modal="true" aria-labelledby="share-title" data-share-dialog
                on:keydown=move |ev: KeyboardEvent| { if ev.key() == "Escape" { close() } }>
                <h3 id="share-title">"Share “" {file.name.clone()} "”"</h3>
                <div class="share-form">
                    <label>"Anyone with the link can "
                        <select aria-label="Link mode" data-share-mode
                            on:change=move |ev| mode.set(event_target_value(&ev))>
                            <option value="view" selected>"view"</option>
                            <option value="edit">"edit (signed in)"</option>
                        </select>
                    </label>
                    <label>" for "
                        <select aria-label="Link expiry" data-share-expiry
                            on:change=move |ev| days.set(event_target_value(&ev).parse().unwrap_or(30))>
                            <option value="1">"1 day"</option>
                            <option value="7">"7 days"</option>
                            <option value="30" selected>"30 days"</option>
                            <option value="365">"a year"</option>
                        </select>
                    </label>
                    <label>" password "
                        <input type="password" autocomplete="new-password" placeholder="none" data-share-password
                            aria-label="Link password (optional)" prop:value=move || password.get()
                            on:input=move |ev| password.set(event_target_value(&ev)) />
                    </label>
                    <button data-action="create-link" disabled=move || busy.get() on:click=create autofocus>"Create link"</button>
                </div>
                {move || made.get().map(|m| view! {
                    <p class="share-made">"The link (copied, where this browser allows): "
                        <input readonly aria-label="Share link" data-share-url value=m.url.clone()
                            on:focus=select_all />
                    </p>
                })}
                {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
                <h4>"Links"</h4>
                <ul class="share-list" data-share-list>
                    {move || {
                        let items = list.get();
                        if items.is_empty() {
                            return view! { <li class="muted">"No links yet."</li> }.into_any();
                        }
                        items.into_iter().map(|l| {
                            let id = l.id.clone();
                            let active = l.state == "active";
                            let opened = match l.access_count { 0 => "never opened".to_owned(), 1 => "opened once".to_owned(), n => format!("opened {n} times") };
                            view! {
                                <li data-share-link=l.state.clone()>
                                    <span>{l.mode.clone()} " · " {l.state.clone()} " · " {opened}
                                        {l.has_password.then_some(" · password")}</span>
                                    {active.then(|| view! {
                                        <button class="danger" data-action="revoke-link" on:click=move |_| revoke(id.clone())>"Revoke"</button>
                                    })}
                                </li>
                            }
                        }).collect_view().into_any()
                    }}
                </ul>
                <div class="dialog-buttons">
                    <button on:click=move |_| close()>"Done"</button>
                </div>
            </div>
        </div>
    }
}
