//! First-party apps; the window manager picks one by its manifest's `entry`.

pub mod about;
pub mod editor;
mod editor_tree;
pub mod files;
pub mod history;
pub mod terminal;
pub mod viewer;

use leptos::prelude::*;

use crate::desktop::wm::Win;

/// The content of a window, chosen by the app's manifest.
#[component]
pub fn AppContent(win: Win) -> impl IntoView {
    match win.app.entry.as_str() {
        "builtin:files" => view! { <files::FilesApp win=win /> }.into_any(),
        "builtin:viewer" => view! { <viewer::Viewer win=win /> }.into_any(),
        "builtin:editor" => view! { <editor::EditorApp win=win /> }.into_any(),
        "builtin:about" => view! { <about::About /> }.into_any(),
        "builtin:terminal" => view! { <terminal::TerminalApp win=win /> }.into_any(),
        other => {
            let other = other.to_owned();
            view! { <p class="app-missing">"This app cannot run here: " {other}</p> }.into_any()
        }
    }
}

/// Bytes for people: 1.5 MB, 320 KB.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// An RFC 3339 time as `2026-12-02 09:41` (UTC, as the server sends it).
pub fn when(rfc3339: &str) -> String {
    rfc3339.replace('T', " ").chars().take(16).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_read_well() {
        assert_eq!(super::human_size(999), "999 B");
        assert_eq!(super::human_size(1_500_000), "1.5 MB");
    }

    #[test]
    fn times_read_well() {
        assert_eq!(super::when("2026-12-02T09:41:07.123Z"), "2026-12-02 09:41");
    }
}
