//! The folder tree beside the listing: lazily expanded, every folder a drop target.

use cloudos_proto::{FileKind, FileList};
use leptos::prelude::*;
use leptos::task::spawn_local;

use super::{drop_highlight, FilesState};
use crate::api;

/// The tree, starting at Home.
#[component]
pub fn Tree() -> impl IntoView {
    view! { <ul class="tree" role="tree" aria-label="Folders">{node(None, "Home".into(), 0, true)}</ul> }
}

fn node(id: Option<String>, name: String, depth: usize, start_open: bool) -> AnyView {
    let st = expect_context::<FilesState>();
    let open = RwSignal::new(start_open);
    let children = RwSignal::new(None::<Vec<(String, String)>>);
    let hover = RwSignal::new(false);
    let (over, leave) = drop_highlight(hover);

    let load_id = id.clone();
    // Reload an open node's children whenever something changed in the tree.
    Effect::new(move |_| {
        st.tree_rev.track();
        if !open.get() {
            return;
        }
        let path = match &load_id {
            Some(id) => format!("/files?parent={}", api::enc(id)),
            None => "/files".into(),
        };
        spawn_local(async move {
            if let Ok(list) = api::get::<FileList>(&path).await {
                children.set(Some(
                    list.items
                        .into_iter()
                        .filter(|f| f.kind == FileKind::Folder)
                        .map(|f| (f.id, f.name))
                        .collect(),
                ));
            }
        });
    });

    let current_id = id.clone();
    let is_current = Memo::new(move |_| st.folder.get() == current_id);
    let go = id.clone();
    let target = id.clone();
    view! {
        <li role="treeitem" aria-expanded=move || open.get().to_string() aria-selected=move || is_current.get().to_string()>
            <div class="tree-row" class:current=is_current class:drop-target=move || hover.get()
                style:padding-left=format!("{}px", 6 + depth * 14)
                data-tree=name.clone()
                on:dragover=over on:dragleave=leave
                on:drop=move |ev| { hover.set(false); st.drop_on(&ev, target.clone()); }>
                <button class="tree-toggle" aria-label=move || if open.get() { "Collapse" } else { "Expand" }
                    on:click=move |_| open.update(|o| *o = !*o)>
                    {move || if open.get() { "▾" } else { "▸" }}
                </button>
                <button class="tree-name" on:click=move |_| st.go(go.clone())>
                    <img src="/icons/folder.svg" alt="" draggable="false" />
                    {name.clone()}
                </button>
            </div>
            <Show when=move || open.get()>
                <ul role="group">
                    {move || children.get().unwrap_or_default().into_iter()
                        .map(|(cid, cname)| node(Some(cid), cname, depth + 1, false))
                        .collect_view()}
                </ul>
            </Show>
        </li>
    }
    .into_any()
}
