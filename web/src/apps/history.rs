//! The History dialog, in Files and in the Editor: a file's versions with how and by whom
//! each was made; any one previewed, compared line by line with the current text, restored.

use cloudos_proto::{File, FileVersion, VersionList};
use leptos::prelude::*;
use leptos::task::spawn_local;
use similar::{ChangeTag, TextDiff};
use web_sys::KeyboardEvent;

use super::viewer::{preview_for, Preview};
use super::{human_size, when};
use crate::api;

/// The file whose history is open: its id and name.
pub type HistoryTarget = RwSignal<Option<(String, String)>>;

/// What the dialog shows under the list.
#[derive(Clone)]
enum Shown {
    Nothing,
    Loading,
    Text {
        version: i64,
        text: String,
    },
    Diff {
        version: i64,
        lines: Vec<(ChangeTag, String)>,
    },
    Binary {
        version: i64,
    },
}

/// How a version was made, for people.
fn origin_label(origin: &str) -> &'static str {
    match origin {
        "upload" => "Uploaded",
        "editor" => "Saved",
        "collab" => "Edited live",
        "sandbox" => "Changed in Terminal",
        "copilot" => "Written by the copilot",
        "restore" => "Restored",
        _ => "Changed",
    }
}

/// Whether a version's bytes are text worth showing.
fn is_text(name: &str, v: &FileVersion) -> bool {
    let mime = v.mime.as_deref().unwrap_or("");
    matches!(
        preview_for(name, mime, v.size),
        Preview::Text | Preview::Code(_) | Preview::Markdown
    )
}

/// The diff from `old` to `new`, line by line, with unchanged runs longer than six lines
/// folded to their first and last three.
fn diff_lines(old: &str, new: &str) -> Vec<(ChangeTag, String)> {
    let diff = TextDiff::from_lines(old, new);
    let all: Vec<(ChangeTag, String)> = diff
        .iter_all_changes()
        .map(|c| (c.tag(), c.value().trim_end_matches('\n').to_owned()))
        .collect();
    let mut out = Vec::with_capacity(all.len());
    let mut i = 0;
    while i < all.len() {
        let run = all[i..]
            .iter()
            .take_while(|(t, _)| *t == ChangeTag::Equal)
            .count();
        if run > 6 {
            out.extend_from_slice(&all[i..i + 3]);
            out.push((ChangeTag::Equal, format!("… {} unchanged lines …", run - 6)));
            out.extend_from_slice(&all[i + run - 3..i + run]);
            i += run;
        } else if run > 0 {
            out.extend_from_slice(&all[i..i + run]);
            i += run;
        } else {
            out.push(all[i].clone());
            i += 1;
        }
    }
    out
}

fn content_path(id: &str, version: i64) -> String {
    format!("/files/{}/versions/{version}/content", api::enc(id))
}

/// The History dialog for the file in `target`; `restored` hears of each restore.
#[component]
pub fn HistoryDialog(
    target: HistoryTarget,
    #[prop(optional, into)] restored: Option<Callback<File>>,
) -> impl IntoView {
    view! {
        {move || target.get().map(|(id, name)| view! { <Dialog id name target restored /> })}
    }
}

#[component]
fn Dialog(
    id: String,
    name: String,
    target: HistoryTarget,
    restored: Option<Callback<File>>,
) -> impl IntoView {
    let versions = RwSignal::new(Vec::<FileVersion>::new());
    let loading = RwSignal::new(true);
    let error = RwSignal::new(None::<String>);
    let status = RwSignal::new(None::<String>);
    let shown = RwSignal::new(Shown::Nothing);
    let busy = RwSignal::new(false);
    let dialog = NodeRef::<leptos::html::Div>::new();
    let id = StoredValue::new(id);
    let name = StoredValue::new(name);
    let refresh = move || {
        let id = id.get_value();
        spawn_local(async move {
            match api::get::<VersionList>(&format!("/files/{}/versions", api::enc(&id))).await {
                Ok(list) => versions.set(list.items),
                Err(e) => error.set(Some(e.message)),
            }
            loading.set(false);
        });
    };
    refresh();
    let preview = move |v: FileVersion| {
        if !is_text(&name.get_value(), &v) {
            shown.set(Shown::Binary { version: v.version });
            return;
        }
        shown.set(Shown::Loading);
        let id = id.get_value();
        spawn_local(async move {
            match api::get_text(&content_path(&id, v.version)).await {
                Ok(text) => shown.set(Shown::Text {
                    version: v.version,
                    text,
                }),
                Err(e) => {
                    shown.set(Shown::Nothing);
                    error.set(Some(e.message));
                }
            }
        });
    };
    let compare = move |v: FileVersion| {
        shown.set(Shown::Loading);
        let id = id.get_value();
        let current =
            versions.with_untracked(|vs| vs.iter().find(|c| c.current).map(|c| c.version));
        spawn_local(async move {
            let Some(current) = current else {
                shown.set(Shown::Nothing);
                return;
            };
            let old = api::get_text(&content_path(&id, v.version)).await;
            let new = api::get_text(&content_path(&id, current)).await;
            match (old, new) {
                (Ok(old), Ok(new)) => shown.set(Shown::Diff {
                    version: v.version,
                    lines: diff_lines(&old, &new),
                }),
                (Err(e), _) | (_, Err(e)) => {
                    shown.set(Shown::Nothing);
                    error.set(Some(e.message));
                }
            }
        });
    };
    let restore = move |version: i64| {
        // The button clicked is disabled below, which would leave the focus nowhere (and
        // Escape unheard): the dialog keeps it.
        if let Some(d) = dialog.get_untracked() {
            let _ = d.focus();
        }
        busy.set(true);
        error.set(None);
        let id = id.get_value();
        spawn_local(async move {
            let path = format!("/files/{}/versions/{version}/restore", api::enc(&id));
            match api::post::<_, File>(&path, &serde_json::json!({})).await {
                Ok(file) => {
                    status.set(Some(format!(
                        "Version {version} is back, as version {}.",
                        file.version
                    )));
                    shown.set(Shown::Nothing);
                    if let Some(cb) = restored {
                        cb.run(file);
                    }
                    refresh();
                }
                Err(e) => error.set(Some(e.message)),
            }
            busy.set(false);
        });
    };
    let remove = move |version: i64| {
        let sure = web_sys::window()
            .and_then(|w| {
                w.confirm_with_message(&format!(
                    "Delete version {version} for good? Its space is given back; this cannot be undone."
                ))
                .ok()
            })
            .unwrap_or(false);
        if !sure {
            return;
        }
        if let Some(d) = dialog.get_untracked() {
            let _ = d.focus();
        }
        error.set(None);
        let id = id.get_value();
        spawn_local(async move {
            match api::delete(&format!("/files/{}/versions/{version}", api::enc(&id))).await {
                Ok(()) => {
                    status.set(Some(format!("Version {version} is deleted.")));
                    shown.set(Shown::Nothing);
                    refresh();
                }
                Err(e) => error.set(Some(e.message)),
            }
        });
    };
    let close = move || target.set(None);
    view! {
        <div class="dialog-backdrop">
            <div class="dialog history-dialog" role="dialog" aria-modal="true" aria-labelledby="history-title" data-history
                node_ref=dialog tabindex="-1"
                on:keydown=move |ev: KeyboardEvent| { if ev.key() == "Escape" { close() } }>
                <h3 id="history-title">"History of “" {name.get_value()} "”"</h3>
                {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
                {move || status.get().map(|s| view! { <p class="history-status" role="status" data-history-status>{s}</p> })}
                <ol class="history-list" data-history-list aria-busy=move || loading.get().to_string()>
                    {move || versions.get().into_iter().map(|v| {
                        let (vp, vc) = (v.clone(), v.clone());
                        let number = v.version;
                        let authors = v.authors.iter().map(|a| a.name.clone()).collect::<Vec<_>>().join(", ");
                        view! {
                            <li data-version=number.to_string() data-origin=v.origin.clone() class:current=v.current>
                                <span class="history-what">
                                    <strong>"Version " {number}</strong>
                                    " · " {origin_label(&v.origin)}
                                    {(!authors.is_empty()).then(|| format!(" by {authors}"))}
                                    {v.current.then_some(" · current")}
                                </span>
                                <span class="history-when">{when(&v.created_at)} " · " {human_size(v.size)}</span>
                                <span class="history-actions">
                                    <button class="link" data-action="preview-version" on:click=move |_| preview(vp.clone())>"Preview"</button>
                                    {(!v.current && is_text(&name.get_value(), &v)).then(|| view! {
                                        <button class="link" data-action="compare-version" on:click=move |_| compare(vc.clone())>"Compare with current"</button>
                                    })}
                                    {(!v.current).then(|| view! {
                                        <button data-action="restore-version" disabled=move || busy.get()
                                            on:click=move |_| restore(number)>"Restore"</button>
                                        <button class="link" data-action="delete-version" title="Delete this version for good"
                                            on:click=move |_| remove(number)>"Delete"</button>
                                    })}
                                </span>
                            </li>
                        }
                    }).collect_view()}
                </ol>
                <div class="history-shown" data-history-shown>
                    {move || match shown.get() {
                        Shown::Nothing => view! { <p class="muted">"Pick a version to preview it or compare it with the current one."</p> }.into_any(),
                        Shown::Loading => view! { <p class="muted">"Loading…"</p> }.into_any(),
                        Shown::Text { version, text } => view! {
                            <p class="muted">"Version " {version} ":"</p>
                            <pre class="history-text" data-history-text>{text}</pre>
                        }.into_any(),
                        Shown::Diff { version, lines } => view! {
                            <p class="muted">"From version " {version} " to the current one:"</p>
                            <pre class="history-diff" data-history-diff>
                                {lines.into_iter().map(|(tag, line)| {
                                    let (class, mark) = match tag {
                                        ChangeTag::Delete => ("del", "- "),
                                        ChangeTag::Insert => ("ins", "+ "),
                                        ChangeTag::Equal => ("eq", "  "),
                                    };
                                    view! { <span class=class>{mark}{line}"\n"</span> }
                                }).collect_view()}
                            </pre>
                        }.into_any(),
                        Shown::Binary { version } => view! {
                            <p class="muted">"Version " {version} " is not text; restore it to open it."</p>
                        }.into_any(),
                    }}
                </div>
                <div class="dialog-buttons">
                    <button on:click=move |_| close() autofocus>"Close"</button>
                </div>
            </div>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diff_marks_changed_lines_and_folds_long_unchanged_runs() {
        let old: String = (1..=20).map(|i| format!("line {i}\n")).collect();
        let new = old.replace("line 10\n", "line ten\n");
        let lines = diff_lines(&old, &new);
        let changed: Vec<_> = lines
            .iter()
            .filter(|(t, _)| *t != ChangeTag::Equal)
            .map(|(t, l)| (*t, l.as_str()))
            .collect();
        assert_eq!(
            changed,
            [
                (ChangeTag::Delete, "line 10"),
                (ChangeTag::Insert, "line ten")
            ]
        );
        assert!(lines.iter().any(|(_, l)| l == "… 3 unchanged lines …"));
        assert!(lines.len() < 20, "{lines:?}");
    }
}
