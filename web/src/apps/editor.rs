//! The Editor: Monaco in tabs, each tab a file's live room (so two people editing one file
//! see each other's cursors and merge instead of overwriting), with a sidebar of the active
//! file's folder and a status bar that says whether the room has every edit. The window's
//! `arg` keeps its tabs (`<active>|<id>,<id>…`), so a reload reopens them.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};

use cloudos_proto::File;
use leptos::html::Div;
use leptos::prelude::*;
use leptos::task::spawn_local;
use send_wrapper::SendWrapper;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::api;
use crate::desktop::wm::{Win, Wm};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = cloudosVendor, js_name = loadEditor)]
    fn load_editor() -> js_sys::Promise;

    /// The editor bundle (`window.cloudosEditor`).
    type EditorLib;
    #[wasm_bindgen(method)]
    fn open(this: &EditorLib, el: &web_sys::HtmlElement, opts: &js_sys::Object) -> Handle;

    /// One open file's editor.
    type Handle;
    #[wasm_bindgen(method)]
    fn save(this: &Handle);
    #[wasm_bindgen(method)]
    fn focus(this: &Handle);
    #[wasm_bindgen(method)]
    fn format(this: &Handle);
    #[wasm_bindgen(method, js_name = gotoLine)]
    fn goto_line(this: &Handle);
    #[wasm_bindgen(method)]
    fn dispose(this: &Handle);
}

thread_local! {
    /// The panes (in any Editor window) whose edits the room may not have yet.
    static UNSENT: RefCell<HashSet<u64>> = RefCell::new(HashSet::new());
    static NEXT_PANE: Cell<u64> = const { Cell::new(0) };
    static UNLOAD_GUARD: Cell<bool> = const { Cell::new(false) };
    static WARMED: Cell<bool> = const { Cell::new(false) };
}

/// Whether any open tab holds edits the server may not have yet (they wait in this
/// browser's IndexedDB, and are sent when the file is next opened here).
pub fn unsent_edits() -> bool {
    UNSENT.with(|u| !u.borrow().is_empty())
}

/// Asks the user to confirm `question` (true when there is no window to ask in).
pub fn confirm(question: &str) -> bool {
    web_sys::window().is_none_or(|w| w.confirm_with_message(question).unwrap_or(true))
}

/// Makes the browser ask before the page goes while edits are unsent (once per page).
fn guard_unload() {
    if UNLOAD_GUARD.with(|g| g.replace(true)) {
        return;
    }
    let Some(w) = web_sys::window() else { return };
    let guard = Closure::<dyn FnMut(web_sys::Event)>::new(|ev: web_sys::Event| {
        if unsent_edits() {
            ev.prevent_default();
            let _ = js_sys::Reflect::set(&ev, &JsValue::from_str("returnValue"), &JsValue::TRUE);
        }
    });
    let _ = w.add_event_listener_with_callback("beforeunload", guard.as_ref().unchecked_ref());
    guard.forget();
}

/// What the status bar says of a tab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TabStatus {
    Loading,
    Connecting,
    Saved,
    Saving,
    Offline,
    /// Edits here the room refused: someone else (named) holds the lock.
    Conflict(String),
    /// The link was revoked, the session expired or the file is gone: read-only from now on.
    Ended(String),
    Failed(String),
}

impl TabStatus {
    fn text(&self) -> String {
        match self {
            TabStatus::Loading => "Loading the editor…".into(),
            TabStatus::Connecting => "Connecting…".into(),
            TabStatus::Saved => "Saved".into(),
            TabStatus::Saving => "Saving…".into(),
            TabStatus::Offline => "Offline — changes kept locally and sent on reconnect".into(),
            TabStatus::Conflict(who) => format!(
                "Conflict — {who} holds the lock: your edits here wait until it is released"
            ),
            TabStatus::Ended(why) if why == "revoked" => {
                "Your access was revoked — read only".into()
            }
            TabStatus::Ended(why) if why == "password" => {
                "This link asks for its password again: open the link's page to enter it".into()
            }
            TabStatus::Ended(why) if why == "gone" => {
                "This file was deleted or moved out of your reach — read only".into()
            }
            TabStatus::Ended(_) => "Your session expired — sign in again to edit".into(),
            TabStatus::Failed(why) => why.clone(),
        }
    }

    /// Whether the tab holds edits the room may not have yet.
    fn dirty(&self) -> bool {
        matches!(
            self,
            TabStatus::Saving | TabStatus::Offline | TabStatus::Conflict(_)
        )
    }
}

/// A file's lock as a tab shows it.
#[derive(Debug, Clone, PartialEq)]
struct LockView {
    name: String,
    until_ms: f64,
    /// Whether this person holds it.
    mine: bool,
}

/// How often held locks are looked after, and how much of a lease (the server's default is
/// 120 s) may be left before it is renewed.
const LOCK_TICK_MS: u32 = 5_000;
const RENEW_WHEN_LEFT_MS: f64 = 75_000.0;

/// "14:05", in this browser's time zone.
pub fn clock_time(ms: f64) -> String {
    let d = js_sys::Date::new(&JsValue::from_f64(ms));
    format!("{:02}:{:02}", d.get_hours(), d.get_minutes())
}

/// One open file.
#[derive(Clone)]
struct Tab {
    /// As kept in the arg: the file's id, and `~<token>` when it is opened through a link.
    key: String,
    id: String,
    share: Option<String>,
    name: RwSignal<String>,
    status: RwSignal<TabStatus>,
    /// Whether edits made in this tab may not be in the room yet (never for a view link).
    unsent: RwSignal<bool>,
    /// Whether this person may edit the file (not through a view link), once known.
    editable: RwSignal<bool>,
    /// The file's lock, as its room tells it.
    lock: RwSignal<Option<LockView>>,
    /// Why the last Lock or Unlock did not work, or why a held lock ended.
    lock_note: RwSignal<Option<String>>,
    /// Whether this person means to hold the file's lock (took it here, has not unlocked).
    holding: RwSignal<bool>,
    people: RwSignal<Vec<String>>,
}

impl Tab {
    /// A tab for `key` (`<id>` or `<id>~<link token>`), its file not loaded yet.
    fn new(key: &str) -> Self {
        let (id, share) = split_key(key);
        Tab {
            key: key.to_owned(),
            id,
            share,
            name: RwSignal::new("…".into()),
            status: RwSignal::new(TabStatus::Loading),
            unsent: RwSignal::new(false),
            editable: RwSignal::new(false),
            lock: RwSignal::new(None),
            lock_note: RwSignal::new(None),
            holding: RwSignal::new(false),
            people: RwSignal::new(vec![]),
        }
    }
}

/// The window's tabs as kept in its `arg`.
fn parse_arg(arg: Option<&str>) -> (Option<String>, Vec<String>) {
    let Some(arg) = arg else {
        return (None, vec![]);
    };
    let (active, ids) = arg.split_once('|').unwrap_or((arg, arg));
    let ids: Vec<String> = ids
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let active = (!active.is_empty()).then(|| active.to_owned());
    (active, ids)
}

fn to_arg(active: Option<&str>, ids: &[String]) -> String {
    format!("{}|{}", active.unwrap_or(""), ids.join(","))
}

/// Loads the Editor's bundle (Monaco, Yjs) in the background once per page, a moment after
/// Files opens: opening a file is then a matter of making its editor, not of fetching and
/// starting 1 MB of script first.
pub fn warm_up() {
    if WARMED.with(|w| w.replace(true)) {
        return;
    }
    gloo_timers::callback::Timeout::new(1_500, || {
        spawn_local(async {
            // A failure here is met again, and shown, when a file is opened.
            let _ = wasm_bindgen_futures::JsFuture::from(load_editor()).await;
        });
    })
    .forget();
}

/// Opens `file` in the Editor: a new tab in the open editor window, or a new window.
pub fn open_file(wm: Wm, file: &str) {
    if let Some(win) = wm.windows_of("editor").into_iter().last() {
        let (_, mut ids) = parse_arg(win.arg.get_untracked().as_deref());
        if !ids.iter().any(|i| i == file) {
            ids.push(file.to_owned());
        }
        win.arg.set(Some(to_arg(Some(file), &ids)));
        wm.focus(win.id);
    } else {
        wm.open("editor", Some(to_arg(Some(file), &[file.to_owned()])));
    }
}

/// The file and link of a tab's key (`<id>` or `<id>~<link token>`).
fn split_key(key: &str) -> (String, Option<String>) {
    match key.split_once('~') {
        Some((id, share)) => (id.to_owned(), Some(share.to_owned())),
        None => (key.to_owned(), None),
    }
}

/// A tab's file, and whether it is only to be watched: the caller's own, or the one a link
/// shows (a view link's is read-only).
async fn tab_file(id: &str, share: Option<&str>) -> Result<(File, bool), api::ApiErr> {
    match share {
        None => api::get::<File>(&format!("/files/{}", api::enc(id)))
            .await
            .map(|f| (f, false)),
        Some(token) => api::get::<cloudos_proto::PublicShare>(&format!(
            "/s/{}?file={}",
            api::enc(token),
            api::enc(id)
        ))
        .await
        .map(|s| (s.file, s.mode != "edit")),
    }
}

/// The lock route of a tab's file (through its link, for a colleague's).
fn lock_path(id: &str, share: Option<&str>) -> String {
    match share {
        Some(t) => format!("/files/{}/lock?share={}", api::enc(id), api::enc(t)),
        None => format!("/files/{}/lock", api::enc(id)),
    }
}

/// Takes (or renews) a lock.
async fn take_lock(path: &str) -> Result<LockView, api::ApiErr> {
    let l: cloudos_proto::FileLock = api::post(path, &serde_json::json!({})).await?;
    Ok(LockView {
        name: l.holder.name,
        until_ms: l.expires_at_ms as f64,
        mine: l.mine,
    })
}

/// Why a tab's room refused it, in the words `TabStatus::Ended` knows; `None` when it may
/// let it in again (the server could not be reached, or the file is still there for it).
async fn refused_because(id: &str, share: Option<&str>) -> Option<&'static str> {
    match tab_file(id, share).await {
        Err(e) if e.kind.ends_with("password-required") => Some("password"),
        Err(e) if e.status == 410 => Some("revoked"),
        Err(e) if e.status == 401 => Some("expired"),
        Err(e) if e.status == 404 => Some("gone"),
        _ => None,
    }
}

/// A stable colour for a person's cursor, from their id.
fn colour_for(id: &str) -> String {
    let h = id
        .bytes()
        .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
    format!("hsl({}, 70%, 45%)", h % 360)
}

fn room_base() -> Option<String> {
    let loc = web_sys::window()?.location();
    let scheme = if loc.protocol().ok()? == "https:" {
        "wss"
    } else {
        "ws"
    };
    Some(format!("{scheme}://{}/collab", loc.host().ok()?))
}

fn set(obj: &js_sys::Object, key: &str, value: &JsValue) {
    let _ = js_sys::Reflect::set(obj, &JsValue::from_str(key), value);
}

/// The Editor window.
#[component]
pub fn EditorApp(win: Win) -> impl IntoView {
    let (arg, title) = (win.arg, win.title);
    let tabs = RwSignal::new(Vec::<Tab>::new());
    let active = RwSignal::new(None::<String>);
    let handles: StoredValue<HashMap<String, SendWrapper<Handle>>, LocalStorage> =
        StoredValue::new_local(HashMap::new());
    // Held locks are renewed while their tab is open (the lease ends by itself otherwise),
    // also after a lost connection (the room keeps a leaving holder's lock a few seconds);
    // a lock that ended while this tab was connected (the owner broke it, someone else has
    // it) is not taken back.
    let lock_keeper = gloo_timers::callback::Interval::new(LOCK_TICK_MS, move || {
        let now = js_sys::Date::now();
        for tab in tabs.try_get_untracked().unwrap_or_default() {
            if !tab.holding.get_untracked() {
                continue;
            }
            let connected = matches!(
                tab.status.get_untracked(),
                TabStatus::Saved | TabStatus::Saving | TabStatus::Conflict(_)
            );
            match tab.lock.get_untracked() {
                Some(l) if l.mine && l.until_ms - now < RENEW_WHEN_LEFT_MS => {
                    let path = lock_path(&tab.id, tab.share.as_deref());
                    spawn_local(async move {
                        if let Err(e) = take_lock(&path).await {
                            let _ = tab.holding.try_set(false);
                            let _ = tab.lock_note.try_set(Some(e.message));
                        }
                    });
                }
                Some(l) if l.mine => {}
                Some(l) => {
                    tab.holding.set(false);
                    tab.lock_note
                        .set(Some(format!("{} has the lock now.", l.name)));
                }
                None if connected => {
                    tab.holding.set(false);
                    tab.lock_note.set(Some(
                        "Your lock ended: the file's owner released it, or it expired.".into(),
                    ));
                }
                None => {}
            }
        }
    });
    let lock_keeper = StoredValue::new_local(Some(lock_keeper));
    on_cleanup(move || lock_keeper.set_value(None));

    // A tab's signals belong to the window, not to the effect that makes them (an effect
    // disposes what it made when it runs again, and it runs whenever the tabs change).
    let owner = Owner::current().expect("a component has an owner");
    // The tabs follow the window's arg (Files adds to it); each new one gets its file's name.
    Effect::new(move |_| {
        let (want_active, ids) = parse_arg(arg.get().as_deref());
        let have: Vec<String> = tabs.with_untracked(|t| t.iter().map(|t| t.key.clone()).collect());
        for key in ids.iter().filter(|i| !have.contains(i)) {
            let tab = owner.with(|| Tab::new(key));
            tabs.update(|t| t.push(tab.clone()));
            spawn_local(async move {
                match tab_file(&tab.id, tab.share.as_deref()).await {
                    Ok((f, read_only)) => {
                        tab.name.set(f.name.clone());
                        tab.editable.set(!read_only);
                    }
                    Err(e) => tab.status.set(TabStatus::Failed(e.message)),
                }
            });
        }
        active.set(want_active.or_else(|| ids.first().cloned()));
    });
    // The title names the active file.
    Effect::new(move |_| {
        let name = active
            .get()
            .and_then(|a| tabs.with(|t| t.iter().find(|t| t.key == a).map(|t| t.name.get())));
        title.set(match name {
            Some(n) => format!("{n} — Editor"),
            None => "Editor".into(),
        });
    });
    // The tree shows the active tab's file when it is one's own (not a link's).
    let own_active = Signal::derive(move || active.get().filter(|k| !k.contains('~')));

    let activate = move |id: String| {
        let ids: Vec<String> = tabs.with_untracked(|t| t.iter().map(|t| t.key.clone()).collect());
        arg.set(Some(to_arg(Some(&id), &ids)));
    };
    let close_tab = move |id: String| {
        let unsent = tabs.with_untracked(|t| {
            t.iter()
                .find(|t| t.key == id && t.unsent.get_untracked())
                .map(|t| t.name.get_untracked())
        });
        if let Some(name) = unsent {
            let ask = format!(
                "Some edits to {name} have not reached the server yet. They stay in this browser \
                 and are sent the next time you open the file here. Close the tab anyway?"
            );
            if !confirm(&ask) {
                return;
            }
        }
        if let Some(h) = handles.try_update_value(|h| h.remove(&id)).flatten() {
            h.dispose();
        }
        tabs.update(|t| t.retain(|t| t.key != id));
        let ids: Vec<String> = tabs.with_untracked(|t| t.iter().map(|t| t.key.clone()).collect());
        let next = if active.get_untracked().as_deref() == Some(id.as_str()) {
            ids.last().cloned()
        } else {
            active.get_untracked()
        };
        arg.set(Some(to_arg(next.as_deref(), &ids)));
    };
    let toggle_lock = move || {
        let Some(key) = active.get_untracked() else {
            return;
        };
        let Some(tab) = tabs.with_untracked(|t| t.iter().find(|t| t.key == key).cloned()) else {
            return;
        };
        let path = lock_path(&tab.id, tab.share.as_deref());
        let held = tab.lock.get_untracked().is_some_and(|l| l.mine);
        tab.lock_note.set(None);
        spawn_local(async move {
            if held {
                tab.holding.set(false);
                match api::delete(&path).await {
                    Ok(()) => tab.lock.set(None),
                    Err(e) => tab.lock_note.set(Some(e.message)),
                }
                return;
            }
            match take_lock(&path).await {
                Ok(l) => {
                    tab.lock.set(Some(l));
                    tab.holding.set(true);
                }
                Err(e) => tab.lock_note.set(Some(e.message)),
            }
        });
    };
    // The owner's files have a history (a link's holder sees none).
    let history: crate::apps::history::HistoryTarget = RwSignal::new(None);
    let open_history = move || {
        let Some(key) = own_active.get_untracked() else {
            return;
        };
        let name = tabs.with_untracked(|t| {
            t.iter()
                .find(|t| t.key == key)
                .map(|t| t.name.get_untracked())
        });
        history.set(Some((key, name.unwrap_or_default())));
    };
    let with_active = move |f: &dyn Fn(&Handle)| {
        if let Some(a) = active.get_untracked() {
            handles.with_value(|h| {
                if let Some(h) = h.get(&a) {
                    f(h)
                }
            });
        }
    };
    on_cleanup(move || {
        handles.update_value(|h| {
            for (_, h) in h.drain() {
                h.dispose();
            }
        })
    });

    view! {
        <div class="editor-app" data-editor
            on:keydown=move |ev: web_sys::KeyboardEvent| {
                // Ctrl/Cmd+S: the room stores edits as they are typed; this says so.
                if (ev.ctrl_key() || ev.meta_key()) && ev.key().eq_ignore_ascii_case("s") {
                    ev.prevent_default();
                    with_active(&|h| h.save());
                }
            }>
            <nav class="editor-side" aria-label="Your files">
                <super::editor_tree::EditorTree active=own_active />
            </nav>
            <div class="editor-main">
                <div class="editor-tabs" role="group" aria-label="Open files">
                    {move || tabs.get().into_iter().map(|t| {
                        let id = t.key.clone();
                        let id2 = t.key.clone();
                        let id3 = t.key.clone();
                        let id_for_aria = id.clone();
                        let selected = move || active.get().as_deref() == Some(id.as_str());
                        let aria_current = move || (active.get().as_deref() == Some(id_for_aria.as_str())).to_string();
                        view! {
                            <div class="editor-tab" class:active=selected
                                data-tab=move || t.name.get()>
                                <button class="editor-tab-name" aria-current=aria_current
                                    on:click=move |_| activate(id2.clone())>
                                    {move || t.name.get()}
                                    {move || t.unsent.get().then(|| view! { <span class="dirty" title="Not saved yet">" ●"</span> })}
                                </button>
                                <button class="editor-tab-close" aria-label="Close tab" on:click=move |_| close_tab(id3.clone())>"×"</button>
                            </div>
                        }
                    }).collect_view()}
                </div>
                {move || {
                    let a = active.get();
                    tabs.with(|t| t.iter().find(|t| Some(&t.key) == a.as_ref()).cloned()).and_then(|t| {
                        let note = t.lock_note.get();
                        let lock = t.lock.get();
                        let text = match (&lock, &note) {
                            (_, Some(n)) => n.clone(),
                            (Some(l), _) if l.mine => "Locked by you: others can only watch until you unlock it or close this tab.".to_owned(),
                            (Some(l), _) => format!("Locked by {}: read only until they unlock it or leave (their lease ends at {} unless renewed).", l.name, clock_time(l.until_ms)),
                            (None, None) => return None,
                        };
                        Some(view! { <div class="editor-lock" role="status" data-editor-lock>{text}</div> })
                    })
                }}
                <div class="editor-panes">
                    <For each=move || tabs.get() key=|t| t.key.clone() let:tab>
                        <Pane tab=tab active=active handles=handles />
                    </For>
                    {move || tabs.with(Vec::is_empty).then(|| view! {
                        <p class="editor-empty">"Open a file from Files, or from the list on the left."</p>
                    })}
                </div>
                <div class="editor-status" role="status" aria-live="polite" data-editor-status>
                    {move || {
                        let a = active.get();
                        tabs.with(|t| t.iter().find(|t| Some(&t.key) == a.as_ref()).cloned()).map(|t| view! {
                            <span data-status=move || format!("{:?}", t.status.get()).to_lowercase()>{move || t.status.get().text()}</span>
                            <span class="editor-people">{move || {
                                let p = t.people.get();
                                if p.is_empty() { String::new() } else { format!("Also here: {}", p.join(", ")) }
                            }}</span>
                        })
                    }}
                    <span class="editor-spacer"></span>
                    {move || {
                        let a = active.get();
                        tabs.with(|t| t.iter().find(|t| Some(&t.key) == a.as_ref()).cloned())
                            // Nothing to lock in a tab whose access ended.
                            .filter(|t| t.editable.get() && !matches!(t.status.get(), TabStatus::Ended(_) | TabStatus::Failed(_)))
                            .map(|t| {
                                let label = move || match t.lock.get() {
                                    Some(l) if l.mine => "Unlock",
                                    Some(_) => "Locked",
                                    None => "Lock",
                                };
                                let theirs = move || t.lock.get().is_some_and(|l| !l.mine);
                                view! {
                                    <button data-editor-lock-button disabled=theirs
                                        title="Lock: only you edit this file until you unlock it or leave"
                                        on:click=move |_| toggle_lock()>{label}</button>
                                }
                            })
                    }}
                    {move || own_active.get().map(|_| view! {
                        <button data-action="editor-history" title="Every version of this file: preview, compare, restore"
                            on:click=move |_| open_history()>"History"</button>
                    })}
                    <button on:click=move |_| with_active(&|h| h.goto_line())>"Go to line"</button>
                    <button on:click=move |_| with_active(&|h| h.format())>"Format"</button>
                </div>
            </div>
            // A restore reaches the open tab through its live room, like any save.
            <crate::apps::history::HistoryDialog target=history />
        </div>
    }
}

/// The file and link a `#editor?file=…&share=…` address names, if it does.
pub fn link_in_address() -> Option<(String, String)> {
    let hash = web_sys::window()?.location().hash().ok()?;
    let params = web_sys::UrlSearchParams::new_with_str(hash.strip_prefix("#editor?")?).ok()?;
    Some((params.get("file")?, params.get("share")?))
}

/// A file opened through a link by someone signed out: the Editor alone, read-only,
/// following the owner's edits live. An edit link needs someone signed in: it says so.
#[component]
pub fn LinkPage(file: String, share: String, on_sign_in: Callback<()>) -> impl IntoView {
    let key = format!("{file}~{share}");
    let tab = Tab::new(&key);
    // None until known; then whether this is a view link (watched here) or an edit link.
    let view_link = RwSignal::new(None::<bool>);
    {
        let tab = tab.clone();
        spawn_local(async move {
            match tab_file(&tab.id, tab.share.as_deref()).await {
                Ok((f, read_only)) => {
                    tab.name.set(f.name);
                    view_link.set(Some(read_only));
                }
                Err(e) => {
                    tab.status.set(TabStatus::Failed(e.message));
                    view_link.set(Some(true));
                }
            }
        });
    }
    let active = RwSignal::new(Some(key));
    let handles: StoredValue<HashMap<String, SendWrapper<Handle>>, LocalStorage> =
        StoredValue::new_local(HashMap::new());
    on_cleanup(move || {
        handles.update_value(|h| {
            for (_, h) in h.drain() {
                h.dispose();
            }
        })
    });
    let (name, status, people) = (tab.name, tab.status, tab.people);
    view! {
        <main class="link-page" data-link-page>
            <header class="link-page-head">
                <h1>{move || name.get()}</h1>
                <span class="link-page-note">{move || match view_link.get() {
                    Some(false) => "An edit link: sign in to edit this file with them.",
                    _ => "Shared with you by link: you see every edit as it is made.",
                }}</span>
                <span class="editor-spacer"></span>
                <button on:click=move |_| on_sign_in.run(())>"Sign in"</button>
            </header>
            {move || (view_link.get() == Some(true)).then(|| view! {
                <div class="editor-panes">
                    <Pane tab=tab.clone() active=active handles=handles />
                </div>
            })}
            <div class="editor-status" role="status" aria-live="polite" data-editor-status>
                <span data-status=move || format!("{:?}", status.get()).to_lowercase()>{move || match status.get() {
                    // Nothing of a viewer's is sent: in sync is all "Saved" would mean.
                    TabStatus::Saved | TabStatus::Saving => "Live: following every edit".to_owned(),
                    other => other.text(),
                }}</span>
                <span class="editor-people">{move || {
                    let p = people.get();
                    if p.is_empty() { String::new() } else { format!("Also here: {}", p.join(", ")) }
                }}</span>
            </div>
        </main>
    }
}

/// One tab's editor, created once its element exists and kept while the tab is open.
#[component]
fn Pane(
    tab: Tab,
    active: RwSignal<Option<String>>,
    handles: StoredValue<HashMap<String, SendWrapper<Handle>>, LocalStorage>,
) -> impl IntoView {
    let host = NodeRef::<Div>::new();
    let id = tab.key.clone();
    let shown = {
        let id = id.clone();
        move || active.get().as_deref() == Some(id.as_str())
    };
    let started = StoredValue::new_local(false);
    // Cleared when the tab (or its window) closes: an editor finished loading after that is
    // disposed at once instead of living on unseen with its socket.
    let alive = std::rc::Rc::new(std::cell::Cell::new(true));
    let alive_drop = SendWrapper::new(alive.clone());
    let pane = NEXT_PANE.with(|n| n.replace(n.get() + 1));
    on_cleanup(move || {
        alive_drop.set(false);
        UNSENT.with(|u| u.borrow_mut().remove(&pane));
    });
    let alive = SendWrapper::new(alive);
    Effect::new(move |_| {
        let Some(el) = host.get() else { return };
        if started.get_value() {
            return;
        }
        started.set_value(true);
        let el: web_sys::HtmlElement = el.unchecked_into();
        let tab = tab.clone();
        let alive = (*alive).clone();
        spawn_local(async move {
            let lib = match wasm_bindgen_futures::JsFuture::from(load_editor()).await {
                Ok(lib) => lib.unchecked_into::<EditorLib>(),
                Err(_) => {
                    tab.status
                        .set(TabStatus::Failed("The editor could not be loaded.".into()));
                    return;
                }
            };
            // The name decides the language: wait for it.
            let (file, read_only) = match tab_file(&tab.id, tab.share.as_deref()).await {
                Ok(f) => f,
                Err(e) => return tab.status.set(TabStatus::Failed(e.message)),
            };
            let user = crate::session::saved_user();
            let (user_id, user_name) = user
                .map(|u| (u.id, u.name))
                .unwrap_or_else(|| ("guest".into(), "Guest".into()));
            let opts = js_sys::Object::new();
            set(&opts, "fileId", &JsValue::from_str(&file.id));
            set(&opts, "name", &JsValue::from_str(&file.name));
            set(&opts, "readOnly", &JsValue::from_bool(read_only));
            set(
                &opts,
                "base",
                &JsValue::from_str(&room_base().unwrap_or_default()),
            );
            let person = js_sys::Object::new();
            set(&person, "id", &JsValue::from_str(&user_id));
            set(&person, "name", &JsValue::from_str(&user_name));
            set(&person, "color", &JsValue::from_str(&colour_for(&user_id)));
            set(&opts, "user", &person);
            // Each connection needs a new single-use ticket; a link's tab adds the link (a
            // view link works signed out, so it connects without a ticket if none is had).
            let share = tab.share.clone();
            let ticket = Closure::<dyn FnMut() -> js_sys::Promise>::new(move || {
                let share = share.clone();
                wasm_bindgen_futures::future_to_promise(async move {
                    let ticket = api::ws_ticket().await;
                    let mut q = Vec::new();
                    if let Some(t) = &ticket {
                        q.push(format!("ticket={}", api::enc(t)));
                    }
                    if let Some(s) = &share {
                        q.push(format!("share={}", api::enc(s)));
                    }
                    Ok(if q.is_empty() {
                        JsValue::NULL
                    } else {
                        JsValue::from_str(&q.join("&"))
                    })
                })
            });
            set(&opts, "ticket", ticket.as_ref());
            // A refused upgrade reaches the page only as a socket that never opened; the
            // file's page (or the link's) says whether it was refused for good.
            let (file_id, share) = (tab.id.clone(), tab.share.clone());
            let probe = Closure::<dyn FnMut() -> js_sys::Promise>::new(move || {
                let (file_id, share) = (file_id.clone(), share.clone());
                wasm_bindgen_futures::future_to_promise(async move {
                    Ok(refused_because(&file_id, share.as_deref())
                        .await
                        .map_or(JsValue::NULL, JsValue::from_str))
                })
            });
            set(&opts, "probe", probe.as_ref());
            let (status, unsent) = (tab.status, tab.unsent);
            let on_status =
                Closure::<dyn FnMut(String, String)>::new(move |s: String, detail: String| {
                    let now = match s.as_str() {
                        "connecting" => TabStatus::Connecting,
                        "saved" => TabStatus::Saved,
                        "saving" => TabStatus::Saving,
                        "offline" => TabStatus::Offline,
                        "conflict" => TabStatus::Conflict(detail),
                        "ended" => TabStatus::Ended(detail),
                        other => TabStatus::Failed(other.to_owned()),
                    };
                    let waiting = now.dirty() && !read_only;
                    UNSENT.with(|u| {
                        let mut u = u.borrow_mut();
                        if waiting {
                            u.insert(pane);
                        } else {
                            u.remove(&pane);
                        }
                    });
                    unsent.set(waiting);
                    status.set(now);
                });
            set(&opts, "onStatus", on_status.as_ref());
            let people = tab.people;
            let on_people = Closure::<dyn FnMut(js_sys::Array)>::new(move |list: js_sys::Array| {
                people.set(list.iter().filter_map(|p| p.as_string()).collect());
            });
            set(&opts, "onPeople", on_people.as_ref());
            let (lock, holding, me) = (tab.lock, tab.holding, user_id.clone());
            let on_lock = Closure::<dyn FnMut(JsValue)>::new(move |l: JsValue| {
                let field = |k: &str| js_sys::Reflect::get(&l, &JsValue::from_str(k)).ok();
                let seen = (!l.is_null() && !l.is_undefined()).then(|| LockView {
                    mine: field("holder").and_then(|h| h.as_string()).as_deref()
                        == Some(me.as_str()),
                    name: field("name")
                        .and_then(|n| n.as_string())
                        .unwrap_or_default(),
                    until_ms: field("until").and_then(|u| u.as_f64()).unwrap_or(0.0),
                });
                // One's own lock seen from a new tab (after a reload, say) is kept up here too.
                if seen.as_ref().is_some_and(|l| l.mine) {
                    let _ = holding.try_set(true);
                }
                let _ = lock.try_set(seen);
            });
            set(&opts, "onLock", on_lock.as_ref());
            tab.status.set(TabStatus::Connecting);
            guard_unload();
            let handle = lib.open(&el, &opts);
            handle.focus();
            // The callbacks live as long as the page: a tab's editor may call them until it
            // is disposed, and they hold nothing but signals.
            ticket.forget();
            probe.forget();
            on_status.forget();
            on_people.forget();
            on_lock.forget();
            if !alive.get() {
                handle.dispose();
                return;
            }
            let replaced = handles
                .try_update_value(|h| h.insert(tab.key.clone(), SendWrapper::new(handle)))
                .flatten();
            if let Some(old) = replaced {
                old.dispose();
            }
        });
    });
    view! {
        <div class="editor-pane" node_ref=host data-pane=id style:display=move || if shown() { "block" } else { "none" }></div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tabs_round_trip_through_the_window_arg() {
        let arg = to_arg(Some("b"), &["a".into(), "b".into()]);
        assert_eq!(
            parse_arg(Some(&arg)),
            (Some("b".into()), vec!["a".into(), "b".into()])
        );
        // A bare id (an older arg, or a link) is one tab, active.
        assert_eq!(parse_arg(Some("x")), (Some("x".into()), vec!["x".into()]));
        assert_eq!(parse_arg(None), (None, vec![]));
    }
}
