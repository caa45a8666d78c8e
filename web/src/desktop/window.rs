//! A window's frame: title bar, drag to move and snap, resize from every edge and corner.

use leptos::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::PointerEvent;

use super::wm::{Mode, Rect, Win, Wm, SNAP_EDGE};

/// What a pointer drag on a window is doing.
#[derive(Clone, Copy)]
enum DragKind {
    Move,
    /// Horizontal and vertical edge: -1 west/north, 1 east/south, 0 neither.
    Resize(i8, i8),
}

#[derive(Clone, Copy)]
struct Drag {
    kind: DragKind,
    px: f64,
    py: f64,
    start: Rect,
    /// A maximized or snapped window comes out only once the pointer really moves, so a
    /// double-click on its title bar still restores it.
    unsnap: bool,
}

/// How far the pointer must travel before a press on a title bar becomes a drag.
const DRAG_SLOP: f64 = 4.0;

const EDGES: [(&str, i8, i8); 8] = [
    ("n", 0, -1),
    ("s", 0, 1),
    ("e", 1, 0),
    ("w", -1, 0),
    ("ne", 1, -1),
    ("nw", -1, -1),
    ("se", 1, 1),
    ("sw", -1, 1),
];

fn capture(ev: &PointerEvent) {
    // Events are delegated (Leptos `delegation`), so `currentTarget` is the document: the
    // element to capture for is the title bar or resize handle the press started on.
    let grip = ev
        .target()
        .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
        .and_then(|el| el.closest("[data-titlebar], [data-resize]").ok().flatten());
    if let Some(el) = grip {
        let _ = el.set_pointer_capture(ev.pointer_id());
    }
}

fn on_control(ev: &web_sys::Event) -> bool {
    ev.target()
        .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
        .and_then(|el| el.closest("button, input, [data-no-drag]").ok().flatten())
        .is_some()
}

/// A window of the desktop with `content` inside.
#[component]
pub fn WindowFrame(win: Win, children: Children) -> impl IntoView {
    let wm = expect_context::<Wm>();
    let id = win.id;
    let (rect, mode) = (win.rect, win.mode);
    let placed = Memo::new(move |_| wm.placed(rect.get(), mode.get()));
    let drag = StoredValue::new(None::<Drag>);
    let dragging = RwSignal::new(false);
    let min = (win.app.min_size.width, win.app.min_size.height);

    let begin = move |ev: &PointerEvent, kind: DragKind| {
        if ev.button() != 0 {
            return;
        }
        let current = placed.get_untracked();
        let mut start = rect.get_untracked();
        let mut unsnap = false;
        if mode.get_untracked() != Mode::Normal {
            match kind {
                DragKind::Move => unsnap = true,
                DragKind::Resize(..) => {
                    start = current;
                    rect.set(start);
                    mode.set(Mode::Normal);
                }
            }
        }
        capture(ev);
        drag.set_value(Some(Drag {
            kind,
            px: ev.client_x() as f64,
            py: ev.client_y() as f64,
            start,
            unsnap,
        }));
        dragging.set(true);
        ev.prevent_default();
    };

    let track = move |ev: PointerEvent| {
        let Some(mut d) = drag.get_value() else {
            return;
        };
        let (dx, dy) = (ev.client_x() as f64 - d.px, ev.client_y() as f64 - d.py);
        if d.unsnap {
            if dx.abs().max(dy.abs()) < DRAG_SLOP {
                return;
            }
            // Pull the window out at its normal size, keeping the grabbed point under the pointer.
            let current = placed.get_untracked();
            let normal = rect.get_untracked();
            let ratio = ((d.px - current.x) / current.w).clamp(0.0, 1.0);
            d.start = Rect {
                x: d.px - normal.w * ratio,
                y: current.y,
                ..normal
            };
            d.unsnap = false;
            drag.set_value(Some(d));
            mode.set(Mode::Normal);
        }
        let s = d.start;
        match d.kind {
            DragKind::Move => {
                rect.set(Rect {
                    x: s.x + dx,
                    y: (s.y + dy).max(0.0),
                    ..s
                });
                let (vw, _) = wm.viewport.get_untracked();
                let (x, y) = (ev.client_x() as f64, ev.client_y() as f64);
                let preview = if y <= SNAP_EDGE {
                    Some(Mode::Maximized)
                } else if x <= SNAP_EDGE {
                    Some(Mode::Left)
                } else if x >= vw - SNAP_EDGE {
                    Some(Mode::Right)
                } else {
                    None
                };
                if wm.snap_preview.get_untracked() != preview {
                    wm.snap_preview.set(preview);
                }
            }
            DragKind::Resize(hx, hy) => {
                let mut r = s;
                match hx {
                    1 => r.w = (s.w + dx).max(min.0),
                    -1 => {
                        r.w = (s.w - dx).max(min.0);
                        r.x = s.x + s.w - r.w;
                    }
                    _ => {}
                }
                match hy {
                    1 => r.h = (s.h + dy).max(min.1),
                    -1 => {
                        r.h = (s.h - dy).max(min.1);
                        r.y = (s.y + s.h - r.h).max(0.0);
                        r.h = s.y + s.h - r.y;
                    }
                    _ => {}
                }
                rect.set(r);
            }
        }
    };

    let finish = move |_: PointerEvent| {
        if drag.get_value().is_none() {
            return;
        }
        drag.set_value(None);
        dragging.set(false);
        if let Some(m) = wm.snap_preview.get_untracked() {
            wm.snap_preview.set(None);
            wm.set_mode(id, m);
        } else {
            wm.touch();
        }
    };

    let title_id = format!("window-title-{id}");
    let labelled_by = title_id.clone();
    let app_id = win.app.id.clone();
    let icon = win.app.icon.clone();
    let title = win.title;
    let focused = move || wm.focused.get() == Some(id);

    view! {
        <section
            class="window"
            class:focused=focused
            class:dragging=move || dragging.get()
            class:maximized=move || mode.get() == Mode::Maximized
            class:minimized=move || win.minimized.get()
            role="dialog"
            aria-modal="false"
            aria-labelledby=labelled_by
            data-window=app_id
            data-window-id=id.to_string()
            data-mode=move || format!("{:?}", mode.get()).to_lowercase()
            style:transform=move || { let r = placed.get(); format!("translate3d({}px,{}px,0)", r.x, r.y) }
            style:width=move || format!("{}px", placed.get().w)
            style:height=move || format!("{}px", placed.get().h)
            style:z-index=move || win.z.get().to_string()
            on:pointerdown=move |_| { if wm.focused.get_untracked() != Some(id) { wm.focus(id) } }
        >
            <header
                class="titlebar"
                data-titlebar
                on:pointerdown=move |ev| { if !on_control(&ev) { begin(&ev, DragKind::Move) } }
                on:pointermove=track
                on:pointerup=finish
                on:pointercancel=finish
                on:dblclick=move |ev| { if !on_control(&ev) { wm.toggle_maximize(id) } }
            >
                <img class="titlebar-icon" src=icon alt="" draggable="false" />
                <h2 class="titlebar-title" id=title_id>{move || title.get()}</h2>
                <div class="titlebar-buttons">
                    <button class="wbtn" data-action="minimize" title="Minimize (Alt+M)" aria-label="Minimize"
                        on:click=move |_| wm.minimize(id)>
                        <svg viewBox="0 0 12 12" aria-hidden="true"><path d="M2 6h8" /></svg>
                    </button>
                    <button class="wbtn" data-action="maximize" title="Maximize or restore (Alt+↑)" aria-label="Maximize or restore"
                        on:click=move |_| wm.toggle_maximize(id)>
                        <svg viewBox="0 0 12 12" aria-hidden="true"><rect x="2.5" y="2.5" width="7" height="7" rx="1" /></svg>
                    </button>
                    <button class="wbtn close" data-action="close" title="Close (Alt+W)" aria-label="Close"
                        on:click=move |_| wm.close(id)>
                        <svg viewBox="0 0 12 12" aria-hidden="true"><path d="M3 3l6 6M9 3l-6 6" /></svg>
                    </button>
                </div>
            </header>
            <div class="window-body">{children()}</div>
            {EDGES
                .iter()
                .map(|&(name, hx, hy)| {
                    view! {
                        <div
                            class=format!("resize resize-{name}")
                            data-resize=name
                            aria-hidden="true"
                            on:pointerdown=move |ev| begin(&ev, DragKind::Resize(hx, hy))
                            on:pointermove=track
                            on:pointerup=finish
                            on:pointercancel=finish
                        ></div>
                    }
                })
                .collect_view()}
        </section>
    }
}
