//! One Files window's state and what it does: load a folder, select, open, create, rename,
//! move, delete, download, upload. The API calls are in `calls`; the view in `mod.rs`.

use cloudos_proto::{File, FileKind, Me};
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;
use web_sys::DragEvent;

use super::calls;
use super::upload::{file_list, Uploads};
use super::visible::{self, Viewport};
use super::{SortKey, DRAG_TYPE};
use crate::api::ApiErr;
use crate::desktop::wm::{Win, Wm};

/// A pending context menu.
#[derive(Clone)]
pub(super) struct Menu {
    pub(super) x: i32,
    pub(super) y: i32,
    /// Right-clicked on an item (else the background).
    pub(super) on_item: bool,
}

/// Everything one Files window knows, as copyable handles.
#[derive(Clone, Copy)]
pub struct FilesState {
    pub(super) folder: RwSignal<Option<String>>,
    pub(super) items: RwSignal<Vec<File>>,
    /// The items in display order (folders first, then by the chosen key).
    pub(super) view: Memo<Vec<File>>,
    /// The scrolling list's size and scroll position, for drawing only what is in view.
    pub(super) viewport: RwSignal<Viewport>,
    pub(super) crumbs: RwSignal<Vec<File>>,
    pub(super) loading: RwSignal<bool>,
    pub(super) error: RwSignal<Option<String>>,
    pub(super) grid: RwSignal<bool>,
    pub(super) sort: RwSignal<(SortKey, bool)>,
    pub(super) selected: RwSignal<Vec<String>>,
    pub(super) anchor: StoredValue<Option<String>>,
    /// The item the keyboard moves from: the last one clicked or reached with the arrows.
    pub(super) cursor: StoredValue<Option<String>>,
    /// The scrolling list element.
    pub(super) list: NodeRef<leptos::html::Div>,
    pub(super) renaming: RwSignal<Option<String>>,
    pub(super) menu: RwSignal<Option<Menu>>,
    pub(super) confirm: RwSignal<Option<Vec<File>>>,
    /// The item whose Share dialog is open.
    pub(super) sharing: RwSignal<Option<File>>,
    /// The file whose History dialog is open (id, name).
    pub(super) history: crate::apps::history::HistoryTarget,
    /// The Trash is shown instead of a folder.
    pub(super) in_trash: RwSignal<bool>,
    pub(super) quota: RwSignal<Option<Me>>,
    pub(super) uploads: Uploads,
    pub(super) title: RwSignal<String>,
    /// Bumped whenever any folder's content changed, so trees refresh.
    pub tree_rev: RwSignal<u64>,
    pub(super) generation: StoredValue<u64>,
}

impl FilesState {
    pub(super) fn new(win: &Win) -> Self {
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
            sharing: RwSignal::new(None),
            history: RwSignal::new(None),
            in_trash: RwSignal::new(false),
            quota: RwSignal::new(None),
            uploads: Uploads::new(),
            title: win.title,
            tree_rev: RwSignal::new(0),
            generation: StoredValue::new(0),
        }
    }

    pub(super) fn fail(self, e: ApiErr) {
        self.error.set(Some(e.message));
    }

    /// Reloads the current folder, its path and the quota; late answers are dropped.
    pub(super) fn reload(self) {
        let folder = self.folder.get_untracked();
        let gen = self.generation.get_value() + 1;
        self.generation.set_value(gen);
        self.loading.set(true);
        spawn_local(async move {
            let listing = calls::children(folder.as_deref()).await;
            let crumbs = match &folder {
                Some(id) => calls::path_to(id).await,
                None => Ok(vec![]),
            };
            if self.generation.get_value() != gen {
                return;
            }
            self.loading.set(false);
            match (listing, crumbs) {
                (Ok(items), Ok(crumbs)) => {
                    let names: Vec<String> = items.iter().map(|f| f.id.clone()).collect();
                    self.selected.update(|s| s.retain(|id| names.contains(id)));
                    self.items.set(items);
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
            if let Ok(me) = calls::me().await {
                self.quota.set(Some(me));
            }
        });
    }

    /// Records the list's size and scroll position.
    pub(super) fn measure(self) {
        if let Some(el) = self.list.get_untracked() {
            self.viewport.set(Viewport {
                scroll_top: f64::from(el.scroll_top()),
                width: f64::from(el.client_width()),
                height: f64::from(el.client_height()),
            });
        }
    }

    /// Scrolls the list just enough to show the item at `index` in display order.
    pub(super) fn reveal(self, index: usize) {
        let grid = self.grid.get_untracked();
        let to = visible::scroll_to_show(index, grid, self.viewport.get_untracked());
        if let (Some(to), Some(el)) = (to, self.list.get_untracked()) {
            el.set_scroll_top(to.round() as i32);
            self.measure();
        }
    }

    /// Opens a folder in this window.
    pub(super) fn go(self, folder: Option<String>) {
        if let Some(el) = self.list.get_untracked() {
            el.set_scroll_top(0);
        }
        self.selected.set(vec![]);
        self.renaming.set(None);
        self.in_trash.set(false);
        self.folder.set(folder);
        self.reload();
    }

    pub(super) fn selection(self) -> Vec<File> {
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
    pub(super) fn click_select(self, id: &str, ctrl: bool, shift: bool) {
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

    pub(super) fn sorted_ids(self) -> Vec<String> {
        self.view
            .with_untracked(|v| v.iter().map(|f| f.id.clone()).collect())
    }

    pub(super) fn open_item(self, wm: Wm, f: &File) {
        if f.kind == FileKind::Folder {
            self.go(Some(f.id.clone()));
        } else if crate::apps::viewer::editable(f) {
            crate::apps::editor::open_file(wm, &f.id);
        } else {
            wm.open("viewer", Some(f.id.clone()));
        }
    }

    pub(super) fn new_folder(self) {
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
            match calls::create_folder(parent, name).await {
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

    pub(super) fn rename(self, id: String, name: String) {
        self.renaming.set(None);
        let current = self
            .items
            .with_untracked(|i| i.iter().find(|f| f.id == id).map(|f| f.name.clone()));
        let name = name.trim().to_owned();
        if name.is_empty() || current.as_deref() == Some(name.as_str()) {
            return;
        }
        spawn_local(async move {
            match calls::rename(&id, name).await {
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
    pub(super) fn move_to(self, ids: Vec<String>, target: Option<String>) {
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
                if let Err(e) = calls::move_into(id, target.clone()).await {
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

    pub(super) fn delete(self, files: Vec<File>) {
        self.confirm.set(None);
        spawn_local(async move {
            for f in &files {
                if let Err(e) = calls::delete(&f.id).await {
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

    pub(super) fn download(self, files: Vec<File>) {
        for f in files.into_iter().filter(|f| f.kind == FileKind::File) {
            spawn_local(async move {
                match calls::details(&f.id).await {
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

    pub(super) fn upload(self, files: Vec<web_sys::File>, parent: Option<String>) {
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
    pub(super) fn drop_on(self, ev: &DragEvent, target: Option<String>) {
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
pub(super) fn sorted(items: &[File], (key, asc): (SortKey, bool)) -> Vec<File> {
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
            executable: false,
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
