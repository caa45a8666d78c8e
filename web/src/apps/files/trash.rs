//! The Trash view: what was deleted, from where and when, until when it is kept; each item
//! restored (with everything that was in it) or deleted for good, or the whole Trash emptied.

use cloudos_proto::{File, FileKind, TrashItem, TrashList};
use leptos::prelude::*;
use leptos::task::spawn_local;
use web_sys::KeyboardEvent;

use super::state::FilesState;
use crate::api;
use crate::apps::{human_size, when};

/// The Trash, shown over the listing while `FilesState::in_trash` is set.
#[component]
pub fn TrashView() -> impl IntoView {
    let st = expect_context::<FilesState>();
    let list = RwSignal::new(None::<TrashList>);
    let error = RwSignal::new(None::<String>);
    let status = RwSignal::new(None::<String>);
    let confirm_empty = RwSignal::new(false);
    let refresh = move || {
        spawn_local(async move {
            match api::get::<TrashList>("/trash").await {
                Ok(l) => list.set(Some(l)),
                Err(e) => error.set(Some(e.message)),
            }
        });
    };
    refresh();
    let changed = move || {
        st.tree_rev.update(|r| *r += 1);
        st.reload();
        refresh();
    };
    let restore = move |item: TrashItem| {
        spawn_local(async move {
            let path = format!("/trash/{}/restore", api::enc(&item.id));
            match api::post::<_, File>(&path, &serde_json::json!({})).await {
                Ok(f) => {
                    let place = if f.name == item.name {
                        format!("“{}” is back", f.name)
                    } else {
                        format!(
                            "“{}” is back as “{}” (the name was taken)",
                            item.name, f.name
                        )
                    };
                    status.set(Some(format!(
                        "{place} in {}.",
                        if f.parent_id.is_some() {
                            "its folder"
                        } else {
                            "Home"
                        }
                    )));
                    changed();
                }
                Err(e) => error.set(Some(e.message)),
            }
        });
    };
    let purge = move |item: TrashItem| {
        spawn_local(async move {
            match api::delete(&format!("/trash/{}", api::enc(&item.id))).await {
                Ok(()) => {
                    status.set(Some(format!("“{}” is deleted for good.", item.name)));
                    changed();
                }
                Err(e) => error.set(Some(e.message)),
            }
        });
    };
    let empty = move || {
        confirm_empty.set(false);
        spawn_local(async move {
            match api::delete("/trash").await {
                Ok(()) => {
                    status.set(Some("The Trash is empty.".into()));
                    changed();
                }
                Err(e) => error.set(Some(e.message)),
            }
        });
    };
    view! {
        <section class="trash-view" data-trash aria-labelledby="trash-title">
            <div class="files-toolbar" role="toolbar" aria-label="Trash">
                <button class="icon-btn" aria-label="Back to the folder" title="Back to the folder"
                    on:click=move |_| st.in_trash.set(false)>"←"</button>
                <h3 id="trash-title">"Trash"</h3>
                <span class="spacer"></span>
                <button class="danger" data-action="empty-trash"
                    disabled=move || list.with(|l| l.as_ref().is_none_or(|l| l.items.is_empty()))
                    on:click=move |_| confirm_empty.set(true)>"Empty Trash"</button>
            </div>
            {move || error.get().map(|e| view! {
                <div class="files-error" role="alert"><span>{e}</span>
                    <button class="link" on:click=move |_| error.set(None)>"Dismiss"</button></div>
            })}
            {move || status.get().map(|s| view! { <p class="trash-status" role="status" data-trash-status>{s}</p> })}
            <p class="muted trash-note">{move || list.get().map(|l| format!(
                "Deleted items wait here until their time is up, then go for good. They take {} of your storage.",
                human_size(l.bytes)
            ))}</p>
            <ul class="trash-list" data-trash-list>
                {move || match list.get() {
                    None => view! { <li class="muted">"Loading…"</li> }.into_any(),
                    Some(l) if l.items.is_empty() => view! { <li class="muted">"The Trash is empty."</li> }.into_any(),
                    Some(l) => l.items.into_iter().map(|item| {
                        let (r, p) = (item.clone(), item.clone());
                        let icon = if item.kind == FileKind::Folder { "/icons/folder.svg" } else { "/icons/file.svg" };
                        let inside = (item.kind == FileKind::Folder).then(|| match item.items {
                            1 => " · 1 item inside".to_owned(),
                            n => format!(" · {n} items inside"),
                        });
                        view! {
                            <li data-trash-item=item.name.clone()>
                                <img src=icon alt="" class="file-icon" />
                                <span class="trash-what">
                                    <strong>{item.name.clone()}</strong>
                                    <span class="muted">" from " {item.path.clone()}</span>
                                </span>
                                <span class="trash-when muted">
                                    "deleted " {when(&item.deleted_at)} " · " {human_size(item.size)} {inside}
                                    " · kept until " {when(&item.expires_at)}
                                </span>
                                <span class="trash-actions">
                                    <button data-action="restore-trashed" on:click=move |_| restore(r.clone())>"Restore"</button>
                                    <button class="danger" data-action="purge-trashed" on:click=move |_| purge(p.clone())>"Delete for good"</button>
                                </span>
                            </li>
                        }
                    }).collect_view().into_any(),
                }}
            </ul>
            {move || confirm_empty.get().then(|| view! {
                <div class="dialog-backdrop">
                    <div class="dialog" role="alertdialog" aria-modal="true" aria-labelledby="empty-title" data-confirm-empty
                        on:keydown=move |ev: KeyboardEvent| { if ev.key() == "Escape" { confirm_empty.set(false) } }>
                        <h3 id="empty-title">"Empty the Trash?"</h3>
                        <p>"Everything in it, with all its versions, is deleted for good. This cannot be undone."</p>
                        <div class="dialog-buttons">
                            <button on:click=move |_| confirm_empty.set(false) autofocus>"Cancel"</button>
                            <button class="danger" data-action="confirm-empty" on:click=move |_| empty()>"Empty Trash"</button>
                        </div>
                    </div>
                </div>
            })}
        </section>
    }
}
