//! The launcher: fuzzy search over apps and the user's files, driven by the keyboard.

use cloudos_proto::{AppManifest, File, FileKind, FileList};
use leptos::prelude::*;
use leptos::task::spawn_local;
use nucleo_matcher::pattern::{CaseMatching, Normalization, Pattern};
use nucleo_matcher::{Config, Matcher, Utf32Str};

use super::wm::Wm;
use crate::api;
use crate::apps::files::icon_for;

/// Whether the launcher is open (context).
#[derive(Clone, Copy)]
pub struct LauncherOpen(pub RwSignal<bool>);

/// One line of results.
#[derive(Clone, PartialEq)]
enum Hit {
    App(AppManifest),
    File(File),
}

impl Hit {
    fn key(&self) -> String {
        match self {
            Hit::App(a) => format!("app:{}", a.id),
            Hit::File(f) => format!("file:{}", f.id),
        }
    }
}

/// Ranks `names` against `query` (fuzzy, case-insensitive); best first, misses dropped.
fn rank<T: Clone>(query: &str, items: &[T], name: impl Fn(&T) -> &str) -> Vec<T> {
    if query.trim().is_empty() {
        return items.to_vec();
    }
    let mut matcher = Matcher::new(Config::DEFAULT);
    let pattern = Pattern::parse(query, CaseMatching::Ignore, Normalization::Smart);
    let mut buf = Vec::new();
    let mut scored: Vec<(u32, usize)> = items
        .iter()
        .enumerate()
        .filter_map(|(i, it)| {
            pattern
                .score(Utf32Str::new(name(it), &mut buf), &mut matcher)
                .map(|s| (s, i))
        })
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.into_iter().map(|(_, i)| items[i].clone()).collect()
}

fn activate(wm: Wm, hit: &Hit) {
    match hit {
        Hit::App(a) => {
            wm.open(&a.id, None);
        }
        Hit::File(f) if f.kind == FileKind::Folder => {
            wm.open("files", Some(f.id.clone()));
        }
        Hit::File(f) => {
            wm.open("viewer", Some(f.id.clone()));
        }
    }
}

/// The launcher overlay.
#[component]
pub fn Launcher() -> impl IntoView {
    let wm = expect_context::<Wm>();
    let LauncherOpen(open) = expect_context::<LauncherOpen>();
    let query = RwSignal::new(String::new());
    let files = RwSignal::new(Vec::<File>::new());
    let selected = RwSignal::new(0usize);
    let searching = RwSignal::new(false);
    let input = NodeRef::<leptos::html::Input>::new();
    let generation = StoredValue::new(0u64);

    // Files are searched on the server, a moment after typing stops; late answers are dropped.
    let pending = StoredValue::new_local(None::<gloo_timers::callback::Timeout>);
    Effect::new(move |_| {
        let q = query.get();
        selected.set(0);
        let gen = generation.get_value() + 1;
        generation.set_value(gen);
        if q.trim().is_empty() {
            files.set(vec![]);
            pending.set_value(None);
            return;
        }
        searching.set(true);
        pending.set_value(Some(gloo_timers::callback::Timeout::new(120, move || {
            spawn_local(async move {
                let found =
                    api::get::<FileList>(&format!("/files/search?limit=30&q={}", api::enc(&q)))
                        .await;
                if generation.get_value() == gen {
                    searching.set(false);
                    files.set(found.map(|l| l.items).unwrap_or_default());
                }
            });
        })));
    });

    Effect::new(move |_| {
        if open.get() {
            query.set(String::new());
            if let Some(el) = input.get() {
                let _ = el.focus();
            }
        }
    });

    let hits = Memo::new(move |_| {
        let q = query.get();
        let apps = wm.apps.with(|a| rank(&q, a, |m| m.name.as_str()));
        let files = files.with(|f| rank(&q, f, |f| f.name.as_str()));
        apps.into_iter()
            .map(Hit::App)
            .chain(files.into_iter().take(20).map(Hit::File))
            .collect::<Vec<_>>()
    });

    let choose = move |i: usize| {
        if let Some(hit) = hits.with_untracked(|h| h.get(i).cloned()) {
            open.set(false);
            activate(wm, &hit);
        }
    };

    let on_key = move |ev: web_sys::KeyboardEvent| {
        let n = hits.with_untracked(Vec::len);
        match ev.key().as_str() {
            "ArrowDown" => {
                ev.prevent_default();
                if n > 0 {
                    selected.update(|s| *s = (*s + 1) % n);
                }
            }
            "ArrowUp" => {
                ev.prevent_default();
                if n > 0 {
                    selected.update(|s| *s = (*s + n - 1) % n);
                }
            }
            "Enter" => {
                ev.prevent_default();
                choose(selected.get_untracked());
            }
            "Escape" => {
                ev.prevent_default();
                open.set(false);
            }
            _ => {}
        }
    };

    view! {
        <Show when=move || open.get()>
            <div class="launcher-backdrop" on:pointerdown=move |_| open.set(false)></div>
            <div class="launcher" data-launcher role="dialog" aria-label="Launcher">
                <input
                    node_ref=input
                    class="launcher-input"
                    type="search"
                    placeholder="Search apps and files"
                    aria-label="Search apps and files"
                    aria-controls="launcher-results"
                    aria-activedescendant=move || format!("launcher-hit-{}", selected.get())
                    prop:value=move || query.get()
                    on:input=move |ev| query.set(event_target_value(&ev))
                    on:keydown=on_key
                />
                <ul class="launcher-results" id="launcher-results" role="listbox" aria-label="Results">
                    {move || {
                        hits.get()
                            .into_iter()
                            .enumerate()
                            .map(|(i, hit)| {
                                let (icon, name, detail) = match &hit {
                                    Hit::App(a) => (a.icon.clone(), a.name.clone(), a.description.clone()),
                                    Hit::File(f) => (
                                        icon_for(f).to_owned(),
                                        f.name.clone(),
                                        if f.kind == FileKind::Folder { "Folder".to_owned() } else { f.mime.clone().unwrap_or_else(|| "File".into()) },
                                    ),
                                };
                                view! {
                                    <li
                                        id=format!("launcher-hit-{i}")
                                        role="option"
                                        class="launcher-hit"
                                        data-hit=hit.key()
                                        aria-selected=move || (selected.get() == i).to_string()
                                        on:pointerenter=move |_| selected.set(i)
                                        on:click=move |_| choose(i)
                                    >
                                        <img src=icon alt="" />
                                        <span class="hit-name">{name}</span>
                                        <span class="hit-detail">{detail}</span>
                                    </li>
                                }
                            })
                            .collect_view()
                    }}
                </ul>
                <Show when=move || searching.get()>
                    <p class="launcher-status">"Searching your files…"</p>
                </Show>
                <Show when=move || !searching.get() && !query.get().trim().is_empty() && hits.with(Vec::is_empty)>
                    <p class="launcher-status">"Nothing matches."</p>
                </Show>
            </div>
        </Show>
    }
}

#[cfg(test)]
mod tests {
    use super::rank;

    #[test]
    fn fuzzy_rank_prefers_closer_matches() {
        let names = vec!["Notes.md", "Files", "profile.jpg"];
        let got = rank("fil", &names, |s| s);
        assert_eq!(got.first(), Some(&"Files"));
        assert!(!rank("xyz", &names, |s| s).contains(&"Files"));
    }
}
