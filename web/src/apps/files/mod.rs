//! The Files app: folder tree, list and grid views, breadcrumbs, sorting, selection,
//! context menu, uploads with progress, drag-and-drop moves, rename, delete and quota.

mod tree;
pub mod upload;
mod visible;

use cloudos_proto::{CreateFolder, File, FileKind, FileList, Me, PatchFile};
use leptos::prelude::*;
use leptos::task::spawn_local;
use send_wrapper::SendWrapper;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{DragEvent, KeyboardEvent, MouseEvent};

use super::human_size;
use crate::api::{self, ApiErr};
use crate::desktop::notify::Notifications;
use crate::desktop::wm::{Win, Wm};
use upload::{file_list, UploadState, Uploads};
use visible::Viewport;

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

/// A pending context menu.
#[derive(Clone)]
struct Menu {
    x: i32,
    y: i32,
    /// Right-clicked on an item (else the background).
    on_item: bool,
}

/// Everything one Files window knows, as copyable handles.
#[derive(Clone, Copy)]
pub struct FilesState {
    folder: RwSignal<Option<String>>,
    items: RwSignal<Vec<File>>,
    /// The items in display order (folders first, then by the chosen key).
    view: Memo<Vec<File>>,
    /// The scrolling list's size and scroll position, for drawing only what is in view.
    viewport: RwSignal<Viewport>,
    crumbs: RwSignal<Vec<File>>,
    loading: RwSignal<bool>,
    error: RwSignal<Option<String>>,
    grid: RwSignal<bool>,
    sort: RwSignal<(SortKey, bool)>,
    selected: RwSignal<Vec<String>>,
    anchor: StoredValue<Option<String>>,
    /// The item the keyboard moves from: the last one clicked or reached with the arrows.
    cursor: StoredValue<Option<String>>,
    /// The scrolling list element.
    list: NodeRef<leptos::html::Div>,
    renaming: RwSignal<Option<String>>,
    menu: RwSignal<Option<Menu>>,
    confirm: RwSignal<Option<Vec<File>>>,
    quota: RwSignal<Option<Me>>,
    uploads: Uploads,
    title: RwSignal<String>,
    /// Bumped whenever any folder's content changed, so trees refresh.
    pub tree_rev: RwSignal<u64>,
    generation: StoredValue<u64>,
}

impl FilesState {
    fn new(win: &Win) -> Self {
        let items = RwSignal::new(vec![]);
        let sort = RwSignal::new((SortKey::Name, true));
        FilesState {
            folder: win.arg,
            items,
            view: Memo::new(move |_| sorted(&items.get(), sort.get())),
            viewport: RwSignal::new(Viewport::default()),
            crumbs: RwSignal::new(vec![]),
            loading: RwSignal::new(true),
            error: RwSignal::new(None),
            grid: RwSignal::new(false),
            sort,
            selected: RwSignal::new(vec![]),
            anchor: StoredValue::new(None),
            cursor: StoredValue::new(None),
            list: NodeRef::new(),
            renaming: RwSignal::new(None),
            menu: RwSignal::new(None),
            confirm: RwSignal::new(None),
            quota: RwSignal::new(None),
            uploads: Uploads::new(),
            title: win.title,
            tree_rev: RwSignal::new(0),
            generation: StoredValue::new(0),
        }
    }

    fn fail(self, e: ApiErr) {
        self.error.set(Some(e.message));
    }

    /// Reloads the current folder, its path and the quota; late answers are dropped.
    fn reload(self) {
        let folder = self.folder.get_untracked();
        let gen = self.generation.get_value() + 1;
        self.generation.set_value(gen);
        self.loading.set(true);
        spawn_local(async move {
            let path = match &folder {
                Some(id) => format!("/files?parent={}", api::enc(id)),
                None => "/files".into(),
            };
            let listing = api::get::<FileList>(&path).await;
            let crumbs = match &folder {
                Some(id) => {
                    let up =
                        api::get::<FileList>(&format!("/files/{}/ancestors", api::enc(id))).await;
                    let here = api::get::<File>(&format!("/files/{}", api::enc(id))).await;
                    up.and_then(|u| here.map(|h| u.items.into_iter().chain([h]).collect()))
                }
                None => Ok(vec![]),
            };
            if self.generation.get_value() != gen {
                return;
            }
            self.loading.set(false);
            match (listing, crumbs) {
                (Ok(list), Ok(crumbs)) => {
                    let names: Vec<String> = list.items.iter().map(|f| f.id.clone()).collect();
                    self.selected.update(|s| s.retain(|id| names.contains(id)));
                    self.items.set(list.items);
                    self.title.set(
                        crumbs
                            .last()
                            .map_or_else(|| "Files".to_owned(), |f: &File| f.name.clone()),
                    );
                    self.crumbs.set(crumbs);
                    mark_listed();
                }
                (Err(e), _) | (_, Err(e)) => {
                    if e.status == 404 && folder.is_some() {
                        // The folder is gone (deleted elsewhere): fall back to the root.
                        self.error.set(Some("That folder no longer exists.".into()));
                        self.go(None);
                    } else {
                        self.fail(e);
                    }
                }
            }
            if let Ok(me) = api::get::<Me>("/me").await {
                self.quota.set(Some(me));
            }
        });
    }

    /// Records the list's size and scroll position.
    fn measure(self) {
        if let Some(el) = self.list.get_untracked() {
            self.viewport.set(Viewport {
                scroll_top: f64::from(el.scroll_top()),
                width: f64::from(el.client_width()),
                height: f64::from(el.client_height()),
            });
        }
    }

    /// Scrolls the list just enough to show the item at `index` in display order.
    fn reveal(self, index: usize) {
        let grid = self.grid.get_untracked();
        let to = visible::scroll_to_show(index, grid, self.viewport.get_untracked());
        if let (Some(to), Some(el)) = (to, self.list.get_untracked()) {
            el.set_scroll_top(to.round() as i32);
            self.measure();
        }
    }

    /// Opens a folder in this window.
    fn go(self, folder: Option<String>) {
        if let Some(el) = self.list.get_untracked() {
            el.set_scroll_top(0);
        }
        self.selected.set(vec![]);
        self.renaming.set(None);
        self.folder.set(folder);
        self.reload();
    }

    fn selection(self) -> Vec<File> {
        let sel = self.selected.get_untracked();
        self.items.with_untracked(|items| {
            items
                .iter()
                .filter(|f| sel.contains(&f.id))
                .cloned()
                .collect()
        })
    }

    /// Click selection: plain replaces, Ctrl/Cmd toggles, Shift extends from the anchor.
    fn click_select(self, id: &str, ctrl: bool, shift: bool) {
        self.cursor.set_value(Some(id.to_owned()));
        if shift {
            if let Some(anchor) = self.anchor.get_value() {
                let order: Vec<String> = self.sorted_ids();
                let (a, b) = (
                    order.iter().position(|x| *x == anchor),
                    order.iter().position(|x| x == id),
                );
                if let (Some(a), Some(b)) = (a, b) {
                    let (lo, hi) = (a.min(b), a.max(b));
                    self.selected.set(order[lo..=hi].to_vec());
                    return;
                }
            }
        }
        if ctrl {
            self.selected.update(|s| {
                if let Some(i) = s.iter().position(|x| x == id) {
                    s.remove(i);
                } else {
                    s.push(id.to_owned());
                }
            });
        } else {
            self.selected.set(vec![id.to_owned()]);
        }
        self.anchor.set_value(Some(id.to_owned()));
    }

    fn sorted_ids(self) -> Vec<String> {
        self.view
            .with_untracked(|v| v.iter().map(|f| f.id.clone()).collect())
    }

    fn open_item(self, wm: Wm, f: &File) {
        if f.kind == FileKind::Folder {
            self.go(Some(f.id.clone()));
        } else {
            wm.open("viewer", Some(f.id.clone()));
        }
    }

    fn new_folder(self) {
        let taken: Vec<String> = self
            .items
            .with_untracked(|i| i.iter().map(|f| f.name.clone()).collect());
        let name = (1..)
            .map(|n| {
                if n == 1 {
                    "New folder".to_owned()
                } else {
                    format!("New folder {n}")
                }
            })
            .find(|n| !taken.contains(n))
            .unwrap_or_default();
        let parent = self.folder.get_untracked();
        spawn_local(async move {
            match api::post::<_, File>(
                "/folders",
                &CreateFolder {
                    parent_id: parent,
                    name,
                },
            )
            .await
            {
                Ok(f) => {
                    self.items.update(|i| i.push(f.clone()));
                    self.selected.set(vec![f.id.clone()]);
                    self.renaming.set(Some(f.id));
                    self.tree_rev.update(|r| *r += 1);
                }
                Err(e) => self.fail(e),
            }
        });
    }

    fn rename(self, id: String, name: String) {
        self.renaming.set(None);
        let current = self
            .items
            .with_untracked(|i| i.iter().find(|f| f.id == id).map(|f| f.name.clone()));
        let name = name.trim().to_owned();
        if name.is_empty() || current.as_deref() == Some(name.as_str()) {
            return;
        }
        spawn_local(async move {
            let patch = PatchFile {
                name: Some(name),
                parent_id: None,
            };
            match api::patch::<_, File>(&format!("/files/{}", api::enc(&id)), &patch).await {
                Ok(f) => {
                    self.items.update(|i| {
                        if let Some(x) = i.iter_mut().find(|x| x.id == f.id) {
                            *x = f;
                        }
                    });
                    self.tree_rev.update(|r| *r += 1);
                }
                Err(e) => self.fail(e),
            }
        });
    }

    /// Moves entries into `target` (`None`: the root).
    fn move_to(self, ids: Vec<String>, target: Option<String>) {
        let ids: Vec<String> = ids
            .into_iter()
            .filter(|id| Some(id) != target.as_ref())
            .collect();
        if ids.is_empty() {
            return;
        }
        spawn_local(async move {
            let mut errors = vec![];
            for id in &ids {
                let patch = PatchFile {
                    name: None,
                    parent_id: Some(target.clone()),
                };
                if let Err(e) =
                    api::patch::<_, File>(&format!("/files/{}", api::enc(id)), &patch).await
                {
                    errors.push(e.message);
                }
            }
            if !errors.is_empty() {
                self.error.set(Some(format!(
                    "Some items could not be moved: {}",
                    errors.join("; ")
                )));
            }
            self.tree_rev.update(|r| *r += 1);
            self.reload();
        });
    }

    fn delete(self, files: Vec<File>) {
        self.confirm.set(None);
        spawn_local(async move {
            for f in &files {
                if let Err(e) = api::delete(&format!("/files/{}", api::enc(&f.id))).await {
                    if e.status != 404 {
                        self.error.set(Some(format!(
                            "{} could not be deleted: {}",
                            f.name, e.message
                        )));
                    }
                }
            }
            self.selected.set(vec![]);
            self.tree_rev.update(|r| *r += 1);
            self.reload();
        });
    }

    fn download(self, files: Vec<File>) {
        for f in files.into_iter().filter(|f| f.kind == FileKind::File) {
            spawn_local(async move {
                match api::get::<File>(&format!("/files/{}", api::enc(&f.id))).await {
                    Ok(meta) => {
                        if let Some(url) = meta.download_url {
                            trigger_download(&url, &meta.name);
                        }
                    }
                    Err(e) => self.fail(e),
                }
            });
        }
    }

    fn upload(self, files: Vec<web_sys::File>, parent: Option<String>) {
        if files.is_empty() {
            return;
        }
        let here = self.folder.get_untracked() == parent;
        self.uploads.start(
            files,
            parent,
            std::rc::Rc::new(move || {
                if here {
                    self.reload();
                }
            }),
        );
    }

    /// Handles a drop of desktop files or of files from the operating system onto `target`.
    fn drop_on(self, ev: &DragEvent, target: Option<String>) {
        ev.prevent_default();
        ev.stop_propagation();
        let Some(dt) = ev.data_transfer() else { return };
        let ours = dt.get_data(DRAG_TYPE).unwrap_or_default();
        if !ours.is_empty() {
            if let Ok(ids) = serde_json::from_str::<Vec<String>>(&ours) {
                self.move_to(ids, target);
            }
        } else {
            self.upload(file_list(dt.files()), target);
        }
    }
}

/// Folders first, then by the chosen key and direction.
fn sorted(items: &[File], (key, asc): (SortKey, bool)) -> Vec<File> {
    let mut items = items.to_vec();
    let is_file = |f: &File| f.kind != FileKind::Folder;
    match key {
        // Lowercase each name once, not in every comparison.
        SortKey::Name => items.sort_by_cached_key(|f| (is_file(f), f.name.to_lowercase())),
        SortKey::Size => items.sort_by_key(|f| (is_file(f), f.size)),
        SortKey::Modified => {
            items.sort_by(|a, b| (is_file(a), &a.updated_at).cmp(&(is_file(b), &b.updated_at)))
        }
    }
    if !asc {
        let folders = items.iter().take_while(|f| !is_file(f)).count();
        items[..folders].reverse();
        items[folders..].reverse();
    }
    items
}

fn mark_listed() {
    if let Some(p) = web_sys::window().and_then(|w| w.performance()) {
        let _ = p.mark("cloudos:files-listed");
    }
}

fn trigger_download(url: &str, name: &str) {
    let doc = leptos::prelude::document();
    if let Ok(a) = doc.create_element("a") {
        let a: web_sys::HtmlAnchorElement = a.unchecked_into();
        a.set_href(url);
        a.set_download(name);
        let _ = doc.body().map(|b| b.append_child(&a));
        a.click();
        a.remove();
    }
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
        if st.renaming.get_untracked().is_some() || crate::desktop::typing_in_field(&ev) {
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
                <QuotaBar />
            </aside>
            <div class="files-main">
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
    let modified = file
        .updated_at
        .replace('T', " ")
        .chars()
        .take(16)
        .collect::<String>();
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
    view! {
        {move || st.menu.get().map(|m| view! {
            <div class="menu context-menu" role="menu" node_ref=menu_ref data-context-menu
                style:left=format!("{}px", m.x) style:top=format!("{}px", m.y)
                on:keydown=on_key on:click=|ev| ev.stop_propagation()>
                <Show when=move || m.on_item>
                    <button role="menuitem" on:click=act(|st, wm| { if let Some(f) = st.selection().first() { st.open_item(wm, f) } })>"Open"</button>
                    <button role="menuitem" on:click=act(|st, _| st.download(st.selection()))>"Download"</button>
                    <button role="menuitem" on:click=act(|st, _| { if let Some(f) = st.selection().first() { st.renaming.set(Some(f.id.clone())) } })>"Rename"</button>
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
                        <p>{if folders { "Folders are deleted with everything in them. This cannot be undone." } else { "This cannot be undone." }}</p>
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

#[cfg(test)]
mod tests {
    use super::*;

    fn item(name: &str, kind: FileKind, size: u64) -> File {
        File {
            id: name.to_owned(),
            parent_id: None,
            name: name.to_owned(),
            kind,
            size,
            mime: None,
            version: 1,
            checksum: None,
            shared: false,
            created_at: String::new(),
            updated_at: String::new(),
            download_url: None,
        }
    }

    #[test]
    fn folders_come_first_in_either_direction_and_names_ignore_case() {
        let items = vec![
            item("b.txt", FileKind::File, 3),
            item("Zeta", FileKind::Folder, 0),
            item("A.txt", FileKind::File, 9),
            item("alpha", FileKind::Folder, 0),
        ];
        let names = |v: Vec<File>| v.into_iter().map(|f| f.name).collect::<Vec<_>>();
        assert_eq!(
            names(sorted(&items, (SortKey::Name, true))),
            ["alpha", "Zeta", "A.txt", "b.txt"]
        );
        assert_eq!(
            names(sorted(&items, (SortKey::Name, false))),
            ["Zeta", "alpha", "b.txt", "A.txt"]
        );
        assert_eq!(
            names(sorted(&items, (SortKey::Size, false))),
            ["alpha", "Zeta", "A.txt", "b.txt"],
            "largest file first, folders still on top"
        );
    }
}
