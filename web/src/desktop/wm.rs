//! The window manager's state: windows, focus and z-order, geometry, snapping, and the
//! layout that is saved per user and restored after a reload.

use cloudos_proto::AppManifest;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// Height of the dock at the bottom of the screen.
pub const DOCK_HEIGHT: f64 = 56.0;
/// How much of a window always stays on screen so it can be grabbed again.
const REACHABLE: f64 = 96.0;
/// Height of a title bar, which must never leave the top of the screen.
pub const TITLE_HEIGHT: f64 = 36.0;
/// Distance from a screen edge at which a drag snaps.
pub const SNAP_EDGE: f64 = 6.0;

/// A window's position and size in CSS pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

/// How a window is placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Normal,
    Maximized,
    Left,
    Right,
}

/// One open window; the signals let a drag update only this window's style.
#[derive(Clone)]
pub struct Win {
    pub id: u32,
    pub app: AppManifest,
    /// What the window shows: a folder for Files, a file for the Viewer.
    pub arg: RwSignal<Option<String>>,
    pub title: RwSignal<String>,
    /// The normal-mode geometry, kept while maximized or snapped.
    pub rect: RwSignal<Rect>,
    pub mode: RwSignal<Mode>,
    pub minimized: RwSignal<bool>,
    pub z: RwSignal<u32>,
}

/// A window as saved in the layout.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedWindow {
    pub app: String,
    pub arg: Option<String>,
    pub title: String,
    pub rect: Rect,
    pub mode: Mode,
    pub minimized: bool,
    pub z: u32,
}

/// The whole saved desktop.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SavedLayout {
    pub windows: Vec<SavedWindow>,
}

/// The window manager, shared through context (all handles, so it is `Copy`).
#[derive(Clone, Copy)]
pub struct Wm {
    pub apps: RwSignal<Vec<AppManifest>>,
    pub windows: RwSignal<Vec<Win>>,
    pub focused: RwSignal<Option<u32>>,
    /// Browser viewport size.
    pub viewport: RwSignal<(f64, f64)>,
    /// Where a dragged window would land if dropped now.
    pub snap_preview: RwSignal<Option<Mode>>,
    /// Bumped on every change worth saving.
    pub revision: RwSignal<u64>,
    next_id: StoredValue<u32>,
    top_z: StoredValue<u32>,
    /// The desktop's reactive owner: windows are opened from event handlers of views that
    /// may go away (the launcher closes as it opens one), so their signals live here.
    owner: StoredValue<Option<Owner>>,
}

fn viewport_now() -> (f64, f64) {
    let w = web_sys::window().expect("a window");
    let width = w
        .inner_width()
        .ok()
        .and_then(|v| v.as_f64())
        .unwrap_or(1280.0);
    let height = w
        .inner_height()
        .ok()
        .and_then(|v| v.as_f64())
        .unwrap_or(800.0);
    (width, height)
}

impl Default for Wm {
    fn default() -> Self {
        Self::new()
    }
}

impl Wm {
    /// An empty desktop.
    pub fn new() -> Self {
        Wm {
            apps: RwSignal::new(Vec::new()),
            windows: RwSignal::new(Vec::new()),
            focused: RwSignal::new(None),
            viewport: RwSignal::new(viewport_now()),
            snap_preview: RwSignal::new(None),
            revision: RwSignal::new(0),
            next_id: StoredValue::new(1),
            top_z: StoredValue::new(10),
            owner: StoredValue::new(Owner::current()),
        }
    }

    /// Re-reads the browser viewport (on resize).
    pub fn refresh_viewport(&self) {
        self.viewport.set(viewport_now());
    }

    /// Marks the layout as changed so it is saved.
    pub fn touch(&self) {
        self.revision.update(|r| *r += 1);
    }

    /// The manifest of an app id.
    pub fn manifest(&self, app: &str) -> Option<AppManifest> {
        self.apps
            .with_untracked(|a| a.iter().find(|m| m.id == app).cloned())
    }

    /// The area windows live in: the screen above the dock.
    pub fn area(&self) -> Rect {
        let (w, h) = self.viewport.get();
        Rect {
            x: 0.0,
            y: 0.0,
            w,
            h: (h - DOCK_HEIGHT).max(TITLE_HEIGHT),
        }
    }

    /// Where a window is drawn: its mode applied, and kept reachable on a small screen.
    pub fn placed(&self, rect: Rect, mode: Mode) -> Rect {
        let area = self.area();
        match mode {
            Mode::Maximized => area,
            Mode::Left => Rect {
                w: (area.w / 2.0).floor(),
                ..area
            },
            Mode::Right => Rect {
                x: (area.w / 2.0).floor(),
                w: area.w - (area.w / 2.0).floor(),
                ..area
            },
            Mode::Normal => {
                let w = rect.w.min(area.w);
                let h = rect.h.min(area.h);
                Rect {
                    x: rect.x.clamp(REACHABLE - w, (area.w - REACHABLE).max(0.0)),
                    y: rect.y.clamp(0.0, (area.h - TITLE_HEIGHT).max(0.0)),
                    w,
                    h,
                }
            }
        }
    }

    /// Runs `f` under the desktop's owner, so signals made there live as long as it.
    fn owned<R>(&self, f: impl FnOnce() -> R) -> R {
        match self.owner.get_value() {
            Some(owner) => owner.with(f),
            None => f(),
        }
    }

    fn next_z(&self) -> u32 {
        let z = self.top_z.get_value() + 1;
        self.top_z.set_value(z);
        z
    }

    /// Opens a new window of `app`, cascaded from the last one.
    pub fn open(&self, app: &str, arg: Option<String>) -> Option<u32> {
        let manifest = self.manifest(app)?;
        if !manifest.multi_window {
            if let Some(id) = self
                .windows
                .with_untracked(|ws| ws.iter().find(|w| w.app.id == app).map(|w| w.id))
            {
                self.focus(id);
                return Some(id);
            }
        }
        let id = self.next_id.get_value();
        self.next_id.set_value(id + 1);
        let area = self.area();
        let n = self.windows.with_untracked(Vec::len) as f64;
        let w = manifest
            .default_size
            .width
            .min(area.w - 24.0)
            .max(manifest.min_size.width.min(area.w));
        let h = manifest
            .default_size
            .height
            .min(area.h - 24.0)
            .max(manifest.min_size.height.min(area.h));
        let offset = (n % 8.0) * 28.0;
        let rect = Rect {
            x: ((area.w - w) / 2.0 - 80.0 + offset).max(8.0),
            y: ((area.h - h) / 2.0 - 60.0 + offset).max(8.0),
            w,
            h,
        };
        let title = manifest.name.clone();
        let win = self.owned(|| Win {
            id,
            app: manifest,
            arg: RwSignal::new(arg),
            title: RwSignal::new(title),
            rect: RwSignal::new(rect),
            mode: RwSignal::new(Mode::Normal),
            minimized: RwSignal::new(false),
            z: RwSignal::new(0),
        });
        self.add(win);
        Some(id)
    }

    fn add(&self, win: Win) {
        let id = win.id;
        self.windows.update(|ws| ws.push(win));
        self.focus(id);
    }

    fn with_win<R>(&self, id: u32, f: impl FnOnce(&Win) -> R) -> Option<R> {
        self.windows
            .with_untracked(|ws| ws.iter().find(|w| w.id == id).map(f))
    }

    /// Raises and focuses a window, restoring it if minimized.
    pub fn focus(&self, id: u32) {
        let z = self.next_z();
        self.with_win(id, |w| {
            w.minimized.set(false);
            if w.z.get_untracked() != z {
                w.z.set(z);
            }
        });
        if self.focused.get_untracked() != Some(id) {
            self.focused.set(Some(id));
        }
        self.touch();
    }

    /// Closes a window and focuses the next one down.
    pub fn close(&self, id: u32) {
        self.windows.update(|ws| ws.retain(|w| w.id != id));
        if self.focused.get_untracked() == Some(id) {
            self.focus_topmost();
        }
        self.touch();
    }

    fn focus_topmost(&self) {
        let top = self.windows.with_untracked(|ws| {
            ws.iter()
                .filter(|w| !w.minimized.get_untracked())
                .max_by_key(|w| w.z.get_untracked())
                .map(|w| w.id)
        });
        self.focused.set(top);
    }

    /// Minimizes a window to the dock.
    pub fn minimize(&self, id: u32) {
        self.with_win(id, |w| w.minimized.set(true));
        if self.focused.get_untracked() == Some(id) {
            self.focus_topmost();
        }
        self.touch();
    }

    /// Maximizes a normal window, or restores a maximized or snapped one.
    pub fn toggle_maximize(&self, id: u32) {
        self.with_win(id, |w| {
            let next = if w.mode.get_untracked() == Mode::Normal {
                Mode::Maximized
            } else {
                Mode::Normal
            };
            w.mode.set(next);
        });
        self.touch();
    }

    /// Puts a window into a mode (snap left/right, maximize, normal).
    pub fn set_mode(&self, id: u32, mode: Mode) {
        self.with_win(id, |w| w.mode.set(mode));
        self.touch();
    }

    /// Windows of one app, bottom to top.
    pub fn windows_of(&self, app: &str) -> Vec<Win> {
        let mut ws: Vec<Win> = self
            .windows
            .with(|ws| ws.iter().filter(|w| w.app.id == app).cloned().collect());
        ws.sort_by_key(|w| w.z.get_untracked());
        ws
    }

    /// The dock's action for an app: open it, bring it back, or minimize the focused one.
    pub fn activate_app(&self, app: &str) {
        let ws = self.windows_of(app);
        let focused = self.focused.get_untracked();
        match ws.last() {
            None => {
                self.open(app, None);
            }
            Some(top) if focused == Some(top.id) && !top.minimized.get_untracked() => {
                // Cycle through the app's windows; with one, clicking again minimizes it.
                if ws.len() > 1 {
                    self.focus(ws[0].id);
                } else {
                    self.minimize(top.id);
                }
            }
            Some(top) => self.focus(top.id),
        }
    }

    /// Focuses the next (or previous) window in z-order, minimized ones included.
    pub fn cycle(&self, backwards: bool) {
        let mut ws: Vec<(u32, u32)> = self
            .windows
            .with_untracked(|ws| ws.iter().map(|w| (w.z.get_untracked(), w.id)).collect());
        if ws.len() < 2 {
            if let Some((_, id)) = ws.first() {
                self.focus(*id);
            }
            return;
        }
        ws.sort_unstable();
        // Forward brings the bottom window up; backward sends the top one down.
        if backwards {
            let (_, top) = ws[ws.len() - 1];
            let z_bottom = ws[0].0.saturating_sub(1);
            self.with_win(top, |w| w.z.set(z_bottom));
            self.focus_topmost();
            self.touch();
        } else {
            self.focus(ws[0].1);
        }
    }

    /// The layout to save.
    pub fn saved(&self) -> SavedLayout {
        SavedLayout {
            windows: self.windows.with_untracked(|ws| {
                ws.iter()
                    .map(|w| SavedWindow {
                        app: w.app.id.clone(),
                        arg: w.arg.get_untracked(),
                        title: w.title.get_untracked(),
                        rect: w.rect.get_untracked(),
                        mode: w.mode.get_untracked(),
                        minimized: w.minimized.get_untracked(),
                        z: w.z.get_untracked(),
                    })
                    .collect()
            }),
        }
    }

    /// Reopens a saved layout (apps that no longer exist are skipped).
    pub fn restore(&self, layout: SavedLayout) {
        let mut saved = layout.windows;
        saved.sort_by_key(|w| w.z);
        for s in saved {
            let Some(app) = self.manifest(&s.app) else {
                continue;
            };
            let id = self.next_id.get_value();
            self.next_id.set_value(id + 1);
            let z = self.next_z();
            let rect = Rect {
                w: s.rect.w.max(app.min_size.width),
                h: s.rect.h.max(app.min_size.height),
                ..s.rect
            };
            let win = self.owned(|| Win {
                id,
                app,
                arg: RwSignal::new(s.arg),
                title: RwSignal::new(s.title),
                rect: RwSignal::new(rect),
                mode: RwSignal::new(s.mode),
                minimized: RwSignal::new(s.minimized),
                z: RwSignal::new(z),
            });
            self.windows.update(|ws| ws.push(win));
        }
        self.focus_topmost();
    }
}
