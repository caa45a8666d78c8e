//! The Files app: folder tree, list and grid views, breadcrumbs, sorting, selection,
//! context menu, uploads with progress, drag-and-drop moves, rename, delete and quota.

mod calls;
mod share;
mod state;
mod trash;
mod tree;
pub mod upload;
mod visible;

use cloudos_proto::{File, FileKind};
use leptos::prelude::*;
use send_wrapper::SendWrapper;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{DragEvent, KeyboardEvent, MouseEvent};

use super::human_size;
use crate::desktop::notify::Notifications;
use crate::desktop::wm::{Win, Wm};
use state::{FilesState, Menu};
use upload::{file_list, UploadState};

/// The drag payload of files moved inside the desktop.
pub const DRAG_TYPE: &str = "application/x-cloudos-files";

/// The icon of a file or folder, by kind and type.
pub fn icon_for(f: &File) -> &'static str {
    if f.kind == FileKind::Folder {
        return "/icons/folder.svg";
    }
    let mime = f.mime.as_deref().unwrap_or("");
    if mime.starts_with("image/") {
        "/icons/image.svg"
    } else if mime.starts_with("text/") || mime.contains("json") || mime.contains("javascript") {
        "/icons/text.svg"
    } else {
        "/icons/file.svg"
    }
}

/// Sort order of the listing.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Name,
    Size,
    Modified,
}

/// Whether a drag carries something Files can take (desktop files or OS files).
pub fn accepts(ev: &DragEvent) -> bool {
    ev.data_transfer().is_some_and(|dt| {
        let types = dt.types();
        (0..types.length()).any(|i| {
            let t = types.get(i).as_string().unwrap_or_default();
            t == DRAG_TYPE || t == "Files"
        })
    })
}

/// A drop target's dragover/dragleave handling: highlight while something droppable hovers.
pub fn drop_highlight(
    hover: RwSignal<bool>,
) -> (impl Fn(DragEvent) + Copy, impl Fn(DragEvent) + Copy) {
    let over = move |ev: DragEvent| {
        if accepts(&ev) {
            ev.prevent_default();
            ev.stop_propagation();
            hover.set(true);
        }
    };
    let leave = move |_: DragEvent| hover.set(false);
    (over, leave)
}

/// The Files window.
#[component]
pub fn FilesApp(win: Win) -> impl IntoView {
    let wm = expect_context::<Wm>();
    let notes = expect_context::<Notifications>();
    let st = FilesState::new(&win);
    provide_context(st);
    st.reload();
    // Files is where files are opened from: the Editor gets ready meanwhile.
    crate::apps::editor::warm_up();

    // Another window or tab changed this folder: show it.
    Effect::new(move |prev: Option<u64>| {
        let (n, parent) = notes.files_changed.get();
        if prev.is_some_and(|p| p != n) {
            st.tree_rev.update(|r| *r += 1);
            if parent == st.folder.get_untracked() {
                st.reload();
            }
        }
        n
    });

    let file_input = NodeRef::<leptos::html::Input>::new();
    // The rows to draw and where. One memo over the sorted items: For then only re-diffs when
    // the drawn slice changes, not on every scrolled pixel.
    let shown = Memo::new(move |_| {
        let (grid, vp) = (st.grid.get(), st.viewport.get());
        st.view.with(|v| {
            let s = visible::span(v.len(), grid, vp);
            (s, v[s.start..s.end].to_vec())
        })
    });
    let span = move || shown.with(|(s, _)| *s);
    // Window resizes, snaps and maximizes change how many rows fit: measure again.
    Effect::new(move |_| {
        let Some(el) = st.list.get() else { return };
        let on_resize = Closure::<dyn FnMut()>::new(move || st.measure());
        let Ok(observer) = web_sys::ResizeObserver::new(on_resize.as_ref().unchecked_ref()) else {
            return;
        };
        observer.observe(&el);
        let keep = SendWrapper::new((observer, on_resize));
        on_cleanup(move || keep.0.disconnect());
    });
    let bg_hover = RwSignal::new(false);
    let (bg_over, bg_leave) = drop_highlight(bg_hover);

    let on_key = move |ev: KeyboardEvent| {
        // The Trash, shown over the listing, has its own buttons; the listing's keys wait.
        if st.renaming.get_untracked().is_some()
            || st.in_trash.get_untracked()
            || crate::desktop::typing_in_field(&ev)
        {
            return;
        }
        let ctrl = ev.ctrl_key() || ev.meta_key();
        match ev.key().as_str() {
            "Enter" => {
                if let Some(f) = st.selection().first() {
                    st.open_item(wm, f);
                }
            }
            "Delete" => {
                let sel = st.selection();
                if !sel.is_empty() {
                    st.confirm.set(Some(sel));
                }
            }
            "F2" => {
                if let Some(f) = st.selection().first() {
                    st.renaming.set(Some(f.id.clone()));
                }
            }
            "a" | "A" if ctrl => st.selected.set(st.sorted_ids()),
            "Backspace" => {
                let crumbs = st.crumbs.get_untracked();
                if !crumbs.is_empty() {
                    st.go(crumbs.last().and_then(|c| c.parent_id.clone()));
                }
            }
            "ArrowDown" | "ArrowUp" | "ArrowRight" | "ArrowLeft" | "Home" | "End" => {
                let ids = st.sorted_ids();
                if ids.is_empty() {
                    return;
                }
                let grid = st.grid.get_untracked();
                let cols = visible::columns(grid, st.viewport.get_untracked().width) as isize;
                let last = ids.len() as isize - 1;
                let cur = st
                    .cursor
                    .get_value()
                    .and_then(|c| ids.iter().position(|x| *x == c))
                    .map(|c| c as isize);
                let next = match (ev.key().as_str(), cur) {
                    ("Home", _) => 0,
                    ("End", _) => last,
                    (_, None) => 0,
                    ("ArrowDown", Some(c)) => c + cols,
                    ("ArrowUp", Some(c)) => c - cols,
                    ("ArrowRight", Some(c)) if grid => c + 1,
                    ("ArrowLeft", Some(c)) if grid => c - 1,
                    _ => return,
                }
                .clamp(0, last) as usize;
                st.click_select(&ids[next], false, ev.shift_key());
                st.reveal(next);
            }
            "Escape" => {
                st.selected.set(vec![]);
                st.menu.set(None);
            }
            _ => return,
        }
        ev.prevent_default();
    };

    view! {
        <div class="files" data-files tabindex="0" on:keydown=on_key
            on:click=move |_| st.menu.set(None)>
            <aside class="files-side" aria-label="Folders">
                <tree::Tree />
                <button class="trash-link" data-action="open-trash" aria-pressed=move || st.in_trash.get().to_string()
                    on:click=move |_| { st.selected.set(vec![]); st.in_trash.set(true); }>
                    <img src="/icons/trash.svg" alt="" class="file-icon" />"Trash"
                </button>
                <QuotaBar />
            </aside>
            <div class="files-main">
                {move || st.in_trash.get().then(|| view! { <trash::TrashView /> })}
                <div class="files-toolbar" role="toolbar" aria-label="Files">
                    <button class="icon-btn" title="Up (Backspace)" aria-label="Parent folder"
                        disabled=move || st.crumbs.with(Vec::is_empty)
                        on:click=move |_| { let c = st.crumbs.get_untracked(); st.go(c.last().and_then(|c| c.parent_id.clone())); }>"↑"</button>
                    <Breadcrumbs />
                    <span class="spacer"></span>
                    <button data-action="new-folder" on:click=move |_| st.new_folder()>"New folder"</button>
                    <button data-action="upload" class="primary" on:click=move |_| {
                        if let Some(i) = file_input.get() { i.click(); }
                    }>"Upload"</button>
                    <input node_ref=file_input type="file" multiple hidden data-upload-input
                        on:change=move |ev| {
                            let input: web_sys::HtmlInputElement = event_target(&ev);
                            st.upload(file_list(input.files()), st.folder.get_untracked());
                            input.set_value("");
                        } />
                    <select aria-label="Sort by" on:change=move |ev| {
                        let key = match event_target_value(&ev).as_str() { "size" => SortKey::Size, "modified" => SortKey::Modified, _ => SortKey::Name };
                        st.sort.update(|s| s.0 = key);
                    }>
                        <option value="name">"Name"</option>
                        <option value="size">"Size"</option>
                        <option value="modified">"Modified"</option>
                    </select>
                    <button class="icon-btn" aria-label="Reverse order" title="Reverse order"
                        on:click=move |_| st.sort.update(|s| s.1 = !s.1)>{move || if st.sort.get().1 { "↓" } else { "↑" }}</button>
                    <button class="icon-btn" data-action="toggle-view" aria-pressed=move || st.grid.get().to_string()
                        title="List or grid" aria-label="Grid view" on:click=move |_| st.grid.update(|g| *g = !*g)>
                        {move || if st.grid.get() { "☰" } else { "▦" }}
                    </button>
                </div>
                <Show when=move || st.error.get().is_some()>
                    <div class="files-error" role="alert" data-files-error>
                        <span>{move || st.error.get().unwrap_or_default()}</span>
                        <button class="link" on:click=move |_| st.error.set(None)>"Dismiss"</button>
                    </div>
                </Show>
                <Show when=move || !st.grid.get()>
                    <div class="files-head" aria-hidden="true">
                        <span>"Name"</span><span>"Size"</span><span>"Modified"</span>
                    </div>
                </Show>
                <div
                    class="files-list"
                    class:drop-target=move || bg_hover.get()
                    node_ref=st.list
                    data-files-list
                    role="listbox"
                    aria-multiselectable="true"
                    aria-label="Contents"
                    aria-busy=move || st.loading.get().to_string()
                    on:scroll=move |_| st.measure()
                    on:dragover=bg_over
                    on:dragleave=bg_leave
                    on:drop=move |ev| { bg_hover.set(false); st.drop_on(&ev, st.folder.get_untracked()); }
                    on:click=move |ev: MouseEvent| {
                        // Delegated events: a click on the background, not on an item in it.
                        let on_item = ev.target().and_then(|t| t.dyn_into::<web_sys::Element>().ok())
                            .is_some_and(|el| el.closest(".file-item").ok().flatten().is_some());
                        if !on_item { st.selected.set(vec![]); }
                    }
                    on:contextmenu=move |ev: MouseEvent| {
                        ev.prevent_default();
                        st.menu.set(Some(Menu { x: ev.client_x(), y: ev.client_y(), on_item: false }));
                    }
                >
                    <div class="files-rows" style:height=move || format!("{}px", span().total)>
                        <div
                            class="files-window"
                            class:grid=move || st.grid.get()
                            style:transform=move || format!("translateY({}px)", span().offset)
                            style:grid-template-columns=move || st.grid.get().then(|| format!("repeat({}, minmax(0, 1fr))", span().cols))
                        >
                            <For
                                each=move || shown.with(|(_, rows)| rows.clone())
                                key=|f| (f.id.clone(), f.name.clone(), f.updated_at.clone())
                                children=move |f| view! { <Item file=f /> }
                            />
                        </div>
                    </div>
                    <Show when=move || !st.loading.get() && st.items.with(Vec::is_empty)>
                        <p class="files-empty">"This folder is empty. Drop files here or use Upload."</p>
                    </Show>
                </div>
                <UploadList />
                <div class="files-status">
                    {move || {
                        let n = st.items.with(Vec::len);
                        let s = st.selected.with(Vec::len);
                        if s > 0 { format!("{s} of {n} selected") } else { format!("{n} items") }
                    }}
                </div>
            </div>
            <ContextMenu />
            <ConfirmDelete />
            <share::ShareDialog />
            <crate::apps::history::HistoryDialog target=st.history
                restored=Callback::new(move |_| st.reload()) />
        </div>
    }
}

/// One file or folder in the list or grid.
#[component]
fn Item(file: File) -> impl IntoView {
    let st = expect_context::<FilesState>();
    let wm = expect_context::<Wm>();
    let id = file.id.clone();
    let is_folder = file.kind == FileKind::Folder;
    let hover = RwSignal::new(false);
    let (over, leave) = drop_highlight(hover);
    let sel_id = id.clone();
    let selected = Memo::new(move |_| st.selected.with(|s| s.contains(&sel_id)));
    let ren_id = id.clone();
    let renaming = Memo::new(move |_| st.renaming.get().as_deref() == Some(ren_id.as_str()));
    let f_open = file.clone();
    let f_drag = id.clone();
    let f_click = id.clone();
    let f_menu = id.clone();
    let f_drop = id.clone();
    let f_rename = id.clone();
    let modified = super::when(&file.updated_at);
    let name = file.name.clone();

    view! {
        <div
            class="file-item"
            class:selected=selected
            class:drop-target=move || hover.get()
            role="option"
            aria-selected=move || selected.get().to_string()
            data-file=file.name.clone()
            data-kind=file.kind.as_str()
            draggable=move || (!renaming.get()).to_string()
            on:click=move |ev: MouseEvent| { ev.stop_propagation(); st.click_select(&f_click, ev.ctrl_key() || ev.meta_key(), ev.shift_key()); }
            on:dblclick=move |_| st.open_item(wm, &f_open)
            on:contextmenu=move |ev: MouseEvent| {
                ev.prevent_default();
                ev.stop_propagation();
                if !st.selected.with_untracked(|s| s.contains(&f_menu)) { st.selected.set(vec![f_menu.clone()]); }
                st.menu.set(Some(Menu { x: ev.client_x(), y: ev.client_y(), on_item: true }));
            }
            on:dragstart=move |ev: DragEvent| {
                if !st.selected.with_untracked(|s| s.contains(&f_drag)) { st.selected.set(vec![f_drag.clone()]); }
                if let Some(dt) = ev.data_transfer() {
                    let ids = serde_json::to_string(&st.selected.get_untracked()).unwrap_or_default();
                    let _ = dt.set_data(DRAG_TYPE, &ids);
                    dt.set_effect_allowed("move");
                }
            }
            on:dragover=move |ev| if is_folder { over(ev) }
            on:dragleave=leave
            on:drop=move |ev| if is_folder { hover.set(false); st.drop_on(&ev, Some(f_drop.clone())); }
        >
            <img class="file-icon" src=icon_for(&file) alt="" draggable="false" />
            {move || if renaming.get() {
                let id = f_rename.clone();
                let id2 = f_rename.clone();
                let input_ref = NodeRef::<leptos::html::Input>::new();
                Effect::new(move |_| {
                    if let Some(el) = input_ref.get() {
                        let _ = el.focus();
                    }
                });
                view! {
                    <input class="rename" data-rename value=name.clone() aria-label="New name" node_ref=input_ref
                        on:click=|ev| ev.stop_propagation()
                        on:keydown=move |ev: KeyboardEvent| {
                            ev.stop_propagation();
                            match ev.key().as_str() {
                                "Enter" => st.rename(id.clone(), event_target_value(&ev)),
                                "Escape" => st.renaming.set(None),
                                _ => {}
                            }
                        }
                        on:blur=move |ev| { if st.renaming.try_get_untracked().flatten().as_deref() == Some(id2.as_str()) { st.rename(id2.clone(), event_target_value(&ev)) } }
                        on:focus=|ev| {
                            let input: web_sys::HtmlInputElement = event_target(&ev);
                            // Select the name without its extension, as file managers do.
                            let v = input.value();
                            let end = v.rfind('.').filter(|&i| i > 0).unwrap_or(v.len());
                            let _ = input.set_selection_range(0, end as u32);
                        }
                        />
                }.into_any()
            } else {
                view! { <span class="file-name" title=name.clone()>{name.clone()}</span> }.into_any()
            }}
            <span class="file-size">{if is_folder { "—".to_owned() } else { human_size(file.size) }}</span>
            <span class="file-date">{modified}</span>
        </div>
    }
}

/// The path from the root to the open folder; each part is a drop target.
#[component]
fn Breadcrumbs() -> impl IntoView {
    let st = expect_context::<FilesState>();
    let crumb = move |target: Option<String>, label: String, last: bool| {
        let hover = RwSignal::new(false);
        let (over, leave) = drop_highlight(hover);
        let go = target.clone();
        view! {
            <button class="crumb" class:drop-target=move || hover.get() data-crumb=label.clone()
                aria-current=if last { Some("page") } else { None }
                on:click=move |_| st.go(go.clone())
                on:dragover=over on:dragleave=leave
                on:drop=move |ev| { hover.set(false); st.drop_on(&ev, target.clone()); }>
                {label.clone()}
            </button>
        }
    };
    view! {
        <nav class="crumbs" aria-label="Path">
            {move || {
                let crumbs = st.crumbs.get();
                let n = crumbs.len();
                let mut parts = vec![crumb(None, "Home".into(), n == 0).into_any()];
                for (i, c) in crumbs.into_iter().enumerate() {
                    parts.push(view! { <span class="crumb-sep" aria-hidden="true">"›"</span> }.into_any());
                    parts.push(crumb(Some(c.id), c.name, i + 1 == n).into_any());
                }
                parts
            }}
        </nav>
    }
}

/// Uploads in progress, with progress bars and cancel.
#[component]
fn UploadList() -> impl IntoView {
    let st = expect_context::<FilesState>();
    let rows = st.uploads.rows;
    view! {
        <Show when=move || rows.with(|r| !r.is_empty())>
            <div class="uploads" data-uploads aria-label="Uploads">
                <For each=move || rows.get() key=|u| (u.id, u.loaded as u64, format!("{:?}", u.state)) children=move |u| {
                    let pct = if u.total > 0.0 { (u.loaded / u.total * 100.0).round() } else { 0.0 };
                    let id = u.id;
                    let (label, sending) = match &u.state {
                        UploadState::Sending => (format!("{pct}%"), true),
                        UploadState::Done => ("Done".to_owned(), false),
                        UploadState::Failed(why) => (format!("Failed: {why}"), false),
                        UploadState::Cancelled => ("Cancelled".to_owned(), false),
                    };
                    let failed = matches!(u.state, UploadState::Failed(_));
                    view! {
                        <div class="upload" data-upload=u.name.clone() data-state=if sending { "sending" } else if failed { "failed" } else { "finished" }>
                            <span class="upload-name">{u.name.clone()}</span>
                            <progress max="100" value=pct.to_string() aria-label=format!("Uploading {}", u.name)></progress>
                            <span class="upload-label" class:form-error=failed>{label}</span>
                            <Show when=move || sending>
                                <button class="link" data-action="cancel-upload" on:click=move |_| st.uploads.cancel(id)>"Cancel"</button>
                            </Show>
                        </div>
                    }
                } />
                <button class="link" on:click=move |_| st.uploads.clear_finished()>"Clear finished"</button>
            </div>
        </Show>
    }
}

/// The right-click menu, keyboard-navigable.
#[component]
fn ContextMenu() -> impl IntoView {
    let st = expect_context::<FilesState>();
    let wm = expect_context::<Wm>();
    let menu_ref = NodeRef::<leptos::html::Div>::new();
    Effect::new(move |_| {
        if st.menu.get().is_some() {
            if let Some(first) = menu_ref
                .get()
                .and_then(|m| m.query_selector("button").ok().flatten())
            {
                let _ = first.unchecked_into::<web_sys::HtmlElement>().focus();
            }
        }
    });
    let on_key = move |ev: KeyboardEvent| {
        let Some(menu) = menu_ref.get_untracked() else {
            return;
        };
        let buttons = menu.query_selector_all("button").ok();
        let Some(buttons) = buttons else { return };
        let n = buttons.length();
        let active = leptos::prelude::document().active_element();
        let cur = (0..n).find(|&i| {
            buttons
                .get(i)
                .map(|b| b.unchecked_into::<web_sys::Element>())
                == active
        });
        let next = match ev.key().as_str() {
            "ArrowDown" => cur.map_or(0, |c| (c + 1) % n),
            "ArrowUp" => cur.map_or(n - 1, |c| (c + n - 1) % n),
            "Escape" => {
                st.menu.set(None);
                ev.stop_propagation();
                return;
            }
            _ => return,
        };
        ev.prevent_default();
        ev.stop_propagation();
        if let Some(b) = buttons.get(next) {
            let _ = b.unchecked_into::<web_sys::HtmlElement>().focus();
        }
    };
    let act = move |f: fn(FilesState, Wm)| {
        move |_| {
            st.menu.set(None);
            f(st, wm);
        }
    };
    // A lock from Files is for files nobody edits live (an image, a document): it lasts
    // the longest lease, an hour, or until unlocked here.
    let notes = expect_context::<Notifications>();
    let lock = move |take: bool| {
        move |_| {
            st.menu.set(None);
            let Some(f) = st
                .selection()
                .first()
                .filter(|f| f.kind == FileKind::File)
                .cloned()
            else {
                return;
            };
            leptos::task::spawn_local(async move {
                let path = format!("/files/{}/lock", crate::api::enc(&f.id));
                let said = if take {
                    crate::api::post::<_, cloudos_proto::FileLock>(
                        &path,
                        &serde_json::json!({"ttl": 3600}),
                    )
                    .await
                    .map(|l| {
                        format!(
                            "{} is locked until {}: nobody else can change it until you unlock it.",
                            f.name,
                            crate::apps::editor::clock_time(l.expires_at_ms as f64)
                        )
                    })
                } else {
                    crate::api::delete(&path)
                        .await
                        .map(|()| format!("{} is unlocked.", f.name))
                };
                match said {
                    Ok(msg) => notes.say(if take { "Locked" } else { "Unlocked" }, &msg),
                    Err(e) => notes.say("Lock", &e.message),
                }
            });
        }
    };
    view! {
        {move || st.menu.get().map(|m| view! {
            <div class="menu context-menu" role="menu" node_ref=menu_ref data-context-menu
                style:left=format!("{}px", m.x) style:top=format!("{}px", m.y)
                on:keydown=on_key on:click=|ev| ev.stop_propagation()>
                <Show when=move || m.on_item>
                    <button role="menuitem" on:click=act(|st, wm| { if let Some(f) = st.selection().first() { st.open_item(wm, f) } })>"Open"</button>
                    <button role="menuitem" data-action="open-in-editor" on:click=act(|st, wm| { if let Some(f) = st.selection().first().filter(|f| f.kind == FileKind::File) { crate::apps::editor::open_file(wm, &f.id) } })>"Open with Editor"</button>
                    <button role="menuitem" data-action="open-in-viewer" on:click=act(|st, wm| { if let Some(f) = st.selection().first().filter(|f| f.kind == FileKind::File) { wm.open("viewer", Some(f.id.clone())); } })>"Open with Viewer"</button>
                    <button role="menuitem" on:click=act(|st, _| st.download(st.selection()))>"Download"</button>
                    <button role="menuitem" on:click=act(|st, _| { if let Some(f) = st.selection().first() { st.renaming.set(Some(f.id.clone())) } })>"Rename"</button>
                    <button role="menuitem" data-action="share" on:click=act(|st, _| { if let Some(f) = st.selection().first() { st.sharing.set(Some(f.clone())) } })>"Share…"</button>
                    <button role="menuitem" data-action="history" on:click=act(|st, _| { if let Some(f) = st.selection().first().filter(|f| f.kind == FileKind::File) { st.history.set(Some((f.id.clone(), f.name.clone()))) } })>"History…"</button>
                    <button role="menuitem" data-action="lock" on:click=lock(true)>"Lock"</button>
                    <button role="menuitem" data-action="unlock" on:click=lock(false)>"Unlock"</button>
                    <button role="menuitem" class="danger" on:click=act(|st, _| st.confirm.set(Some(st.selection())))>"Delete…"</button>
                </Show>
                <Show when=move || !m.on_item>
                    <button role="menuitem" on:click=act(|st, _| st.new_folder())>"New folder"</button>
                    <button role="menuitem" on:click=act(|st, _| st.reload())>"Refresh"</button>
                    <button role="menuitem" on:click=act(|st, _| st.selected.set(st.sorted_ids()))>"Select all"</button>
                </Show>
            </div>
        })}
    }
}

/// Asks before deleting.
#[component]
fn ConfirmDelete() -> impl IntoView {
    let st = expect_context::<FilesState>();
    view! {
        {move || st.confirm.get().map(|files| {
            let n = files.len();
            let what = if n == 1 { format!("“{}”", files[0].name) } else { format!("{n} items") };
            let folders = files.iter().any(|f| f.kind == FileKind::Folder);
            let doomed = files.clone();
            view! {
                <div class="dialog-backdrop">
                    <div class="dialog" role="alertdialog" aria-modal="true" aria-labelledby="confirm-title" data-confirm-delete
                        on:keydown=move |ev: KeyboardEvent| { if ev.key() == "Escape" { st.confirm.set(None); } }>
                        <h3 id="confirm-title">"Delete " {what} "?"</h3>
                        <p>{if folders { "Folders go with everything in them. " } else { "" }} "Deleted items wait in the Trash, where they can be restored with their history until they expire."</p>
                        <div class="dialog-buttons">
                            <button on:click=move |_| st.confirm.set(None) autofocus>"Cancel"</button>
                            <button class="danger" data-action="confirm-delete" on:click=move |_| st.delete(doomed.clone())>"Delete"</button>
                        </div>
                    </div>
                </div>
            }
        })}
    }
}

/// How much of the quota is used.
#[component]
fn QuotaBar() -> impl IntoView {
    let st = expect_context::<FilesState>();
    view! {
        {move || st.quota.get().map(|me| {
            let pct = if me.quota_bytes > 0 { (me.used_bytes as f64 / me.quota_bytes as f64 * 100.0).min(100.0) } else { 0.0 };
            view! {
                <div class="quota" data-quota>
                    <meter min="0" max="100" value=pct.to_string() high="90" aria-label="Storage used"></meter>
                    <span>{human_size(me.used_bytes)} " of " {human_size(me.quota_bytes)}</span>
                </div>
            }
        })}
    }
}
