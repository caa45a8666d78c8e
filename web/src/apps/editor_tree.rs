//! The Editor's file tree: the user's Home, folders expanded on demand and opened down to
//! the active file, files opened in a tab by a click. It follows changes made anywhere
//! (the event socket says which folder changed).

use std::collections::HashSet;

use cloudos_proto::{File, FileKind, FileList};
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api;
use crate::desktop::notify::Notifications;
use crate::desktop::wm::Wm;

/// Which folders are open, and which file is active (its id), shared by every node.
#[derive(Clone, Copy)]
struct TreeState {
    open: RwSignal<HashSet<String>>,
    active: Signal<Option<String>>,
}

/// The tree, from Home; `active` is the active tab's own file (none for a link's tab).
#[component]
pub fn EditorTree(active: Signal<Option<String>>) -> impl IntoView {
    let state = TreeState {
        open: RwSignal::new(HashSet::new()),
        active,
    };
    // The active file's folders open, so it shows where it is.
    Effect::new(move |_| {
        let Some(id) = active.get() else { return };
        spawn_local(async move {
            let path = format!("/files/{}/ancestors", api::enc(&id));
            if let Ok(up) = api::get::<FileList>(&path).await {
                state
                    .open
                    .update(|o| o.extend(up.items.into_iter().map(|f| f.id)));
            }
        });
    });
    provide_context(state);
    view! {
        <ul class="editor-tree" role="tree" aria-label="Your files">{folder(None, 0)}</ul>
    }
}

/// The children of a folder (`None`: Home), loaded while it is open and again when it
/// changes.
fn folder(id: Option<String>, depth: usize) -> AnyView {
    let notes = expect_context::<Notifications>();
    let items = RwSignal::new(Vec::<File>::new());
    let loaded = StoredValue::new(false);
    let path = match &id {
        Some(id) => format!("/files?parent={}", api::enc(id)),
        None => "/files".into(),
    };
    Effect::new(move |_| {
        let (_, changed) = notes.files_changed.get();
        // The listing loads once; then only a change in this folder reloads it.
        let mine = changed.as_deref() == id.as_deref();
        if loaded.get_value() && !mine {
            return;
        }
        loaded.set_value(true);
        let path = path.clone();
        spawn_local(async move {
            if let Ok(list) = api::get::<FileList>(&path).await {
                let _ = items.try_set(list.items);
            }
        });
    });
    view! {
        {move || items.get().into_iter().map(|f| entry(f, depth)).collect_view()}
    }
    .into_any()
}

fn entry(f: File, depth: usize) -> AnyView {
    let state = expect_context::<TreeState>();
    let wm = expect_context::<Wm>();
    let pad = format!("{}px", 8 + depth * 14);
    if f.kind == FileKind::Folder {
        let id = f.id.clone();
        let is_open = {
            let id = id.clone();
            Memo::new(move |_| state.open.with(|o| o.contains(&id)))
        };
        let toggle = move |_| {
            let id = id.clone();
            state.open.update(|o| {
                if !o.remove(&id) {
                    o.insert(id);
                }
            });
        };
        let child = f.id.clone();
        view! {
            <li role="treeitem" aria-expanded=move || is_open.get().to_string()>
                <button class="editor-tree-row" style:padding-left=pad data-editor-folder=f.name.clone() on:click=toggle>
                    <span aria-hidden="true">{move || if is_open.get() { "▾ " } else { "▸ " }}</span>
                    {f.name.clone()}
                </button>
                <Show when=move || is_open.get()>
                    <ul role="group">{folder(Some(child.clone()), depth + 1)}</ul>
                </Show>
            </li>
        }
        .into_any()
    } else {
        let id = f.id.clone();
        let current = {
            let id = id.clone();
            Memo::new(move |_| state.active.get().as_deref() == Some(id.as_str()))
        };
        view! {
            <li role="treeitem" aria-selected=move || current.get().to_string()>
                <button class="editor-tree-row" class:current=current style:padding-left=pad
                    data-editor-file=f.name.clone()
                    on:click=move |_| super::editor::open_file(wm, &id)>
                    {f.name.clone()}
                </button>
            </li>
        }
        .into_any()
    }
}
