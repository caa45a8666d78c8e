//! Terminal: a shell in the user's sandbox, or a view of someone else's through a share,
//! drawn by xterm.js. The socket and the protocol live here. A reconnect resumes from the
//! last stream offset, so a dropped connection or a reload loses nothing on screen.

use std::cell::Cell;
use std::rc::Rc;

use cloudos_proto::terminal::{
    ClientControl, NoticeKind, Role, Sandbox, SandboxShare, ServerControl, CLOSE_EXPIRED,
    CLOSE_REVOKED,
};
use futures_channel::mpsc;
use futures_util::{SinkExt, StreamExt};
use gloo_net::websocket::{futures::WebSocket, Message};
use leptos::html::Div;
use leptos::prelude::*;
use leptos::task::spawn_local;
use send_wrapper::SendWrapper;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::desktop::notify::Notifications;
use crate::desktop::wm::Win;
use crate::{api, session};

/// Bytes per message of a paste, far below the edge's cap on one message
/// (`cloudos_proto::terminal::MAX_CLIENT_MESSAGE`).
const PASTE_CHUNK: usize = 64 * 1024;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = cloudosVendor, js_name = loadTerminal)]
    fn load_terminal() -> js_sys::Promise;

    /// The xterm.js bundle (`window.cloudosTerminal`).
    type TerminalLib;
    #[wasm_bindgen(method)]
    fn create(
        this: &TerminalLib,
        el: &web_sys::HtmlElement,
        on_data: &js_sys::Function,
        on_resize: &js_sys::Function,
        on_copy: &js_sys::Function,
    ) -> XTerm;

    /// One xterm.js terminal.
    type XTerm;
    #[wasm_bindgen(method)]
    fn write(this: &XTerm, data: &js_sys::Uint8Array);
    #[wasm_bindgen(method)]
    fn fit(this: &XTerm) -> js_sys::Array;
    #[wasm_bindgen(method)]
    fn focus(this: &XTerm);
    #[wasm_bindgen(method)]
    fn reset(this: &XTerm);
    #[wasm_bindgen(method)]
    fn dispose(this: &XTerm);
}

/// Which terminal a window shows; kept in the window's saved `arg`, so a reload reattaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One of the user's own terminals.
    Own { session: String },
    /// Someone else's terminal, through a view-only share.
    Shared {
        sandbox: String,
        share: String,
        session: String,
    },
}

impl Target {
    /// Reads a window arg (`s:<session>` or `v:<sandbox>:<share>:<session>`).
    pub fn parse(arg: &str) -> Option<Target> {
        let mut parts = arg.split(':');
        match parts.next()? {
            "s" => Some(Target::Own {
                session: parts.next()?.to_owned(),
            }),
            "v" => Some(Target::Shared {
                sandbox: parts.next()?.to_owned(),
                share: parts.next()?.to_owned(),
                session: parts.next()?.to_owned(),
            }),
            _ => None,
        }
    }

    /// The window arg.
    pub fn to_arg(&self) -> String {
        match self {
            Target::Own { session } => format!("s:{session}"),
            Target::Shared {
                sandbox,
                share,
                session,
            } => format!("v:{sandbox}:{share}:{session}"),
        }
    }

    fn session(&self) -> &str {
        match self {
            Target::Own { session } | Target::Shared { session, .. } => session,
        }
    }
}

/// A new terminal name: several windows are several shells.
fn new_session() -> String {
    format!("t{:08x}", (js_sys::Math::random() * u32::MAX as f64) as u32)
}

/// What the status bar says.
#[derive(Debug, Clone, PartialEq)]
enum Status {
    Starting,
    Connected,
    Reconnecting { attempt: u32, secs: u32 },
    Ended(Option<i32>),
    Failed(String),
}

enum Input {
    Data(String),
    Resize(u16, u16),
    /// The element changed size: fit the terminal to it (xterm then reports a `Resize`).
    Fit,
    Restart,
    Close,
}

/// The signals the view shows.
#[derive(Clone, Copy)]
struct TermUi {
    status: RwSignal<Status>,
    role: RwSignal<Option<Role>>,
    notice: RwSignal<Option<String>>,
    sandbox: RwSignal<Option<String>>,
    /// The view-only link just made, and its id (to revoke it).
    share_link: RwSignal<Option<(String, String)>>,
}

fn attach_url(sandbox: &str, target: &Target, since: Option<u64>, ticket: &str) -> Option<String> {
    let loc = web_sys::window()?.location();
    let scheme = if loc.protocol().ok()? == "https:" {
        "wss"
    } else {
        "ws"
    };
    let mut url = format!(
        "{scheme}://{}/terminal/{}/attach?ticket={}&session={}",
        loc.host().ok()?,
        api::enc(sandbox),
        api::enc(ticket),
        api::enc(target.session())
    );
    if let Target::Shared { share, .. } = target {
        url.push_str(&format!("&share={}", api::enc(share)));
    }
    if let Some(s) = since {
        url.push_str(&format!("&since={s}"));
    }
    Some(url)
}

/// Backoff before reconnect attempt `n`: 0.5 s, 1 s, 2 s … at most 10 s.
pub fn backoff_ms(n: u32) -> u32 {
    (250u32 << n.min(6)).min(10_000)
}

/// The user's live sandbox (started if needed).
/// Why there is no sandbox, and whether asking again may help.
struct NoSandbox {
    message: String,
    retry: bool,
}

async fn own_sandbox() -> Result<String, NoSandbox> {
    api::post::<_, Sandbox>("/sandbox", &serde_json::json!({}))
        .await
        .map(|s| s.id)
        .map_err(|e| NoSandbox {
            // This deployment has no terminals: asking again will not change that.
            retry: e.kind != "/errors/sandboxes-unavailable",
            message: e.message,
        })
}

/// Connects, pumps frames until the socket ends, and says why it ended.
enum Ended {
    /// The socket dropped; reconnect from `since`.
    Dropped { got_hello: bool },
    /// The shell exited.
    Exited(Option<i32>),
    /// The access ended: the view link was revoked or expired, or the session ended.
    AccessGone(String),
    /// The window closed.
    Closed,
}

async fn session_once(
    url: &str,
    term: &XTerm,
    inputs: &mut mpsc::UnboundedReceiver<Input>,
    seq: &mut u64,
    since: Option<u64>,
    ui: TermUi,
) -> Ended {
    let Ok(socket) = WebSocket::open(url) else {
        return Ended::Dropped { got_hello: false };
    };
    let (mut tx, rx) = socket.split();
    let mut rx = rx.fuse();
    let mut got_hello = false;
    loop {
        futures_util::select! {
            msg = rx.next() => match msg {
                Some(Ok(Message::Bytes(b))) => {
                    *seq += b.len() as u64;
                    term.write(&js_sys::Uint8Array::from(&b[..]));
                }
                Some(Ok(Message::Text(t))) => match serde_json::from_str::<ServerControl>(&t) {
                    Ok(ServerControl::Hello { role, seq: from, .. }) => {
                        got_hello = true;
                        // Bytes between what we have and what the server still keeps are gone:
                        // start the screen over rather than show a torn one.
                        if since != Some(from) {
                            term.reset();
                        }
                        *seq = from;
                        ui.role.set(Some(role));
                        ui.status.set(Status::Connected);
                        if role == Role::Driver {
                            let size = term.fit();
                            let cols = size.get(0).as_f64().unwrap_or(80.0) as u16;
                            let rows = size.get(1).as_f64().unwrap_or(24.0) as u16;
                            let msg = serde_json::to_string(&ClientControl::Resize { cols, rows })
                                .unwrap_or_default();
                            let _ = tx.send(Message::Text(msg)).await;
                        }
                    }
                    Ok(ServerControl::Role { role, reason }) => {
                        ui.role.set(Some(role));
                        ui.notice.set(Some(reason));
                    }
                    Ok(ServerControl::Notice { kind, message }) => {
                        let text = if kind == NoticeKind::ViewOnly {
                            "View only: your keys are not sent".to_owned()
                        } else {
                            message
                        };
                        ui.notice.set(Some(text));
                    }
                    Ok(ServerControl::Exit { code }) => return Ended::Exited(code),
                    Ok(ServerControl::Resized { .. }) | Err(_) => {}
                },
                Some(Err(gloo_net::websocket::WebSocketError::ConnectionClose(close)))
                    if close.code == CLOSE_REVOKED || close.code == CLOSE_EXPIRED =>
                {
                    let why = if close.code == CLOSE_REVOKED {
                        "The access to this terminal was revoked."
                    } else {
                        "The access to this terminal has expired."
                    };
                    return Ended::AccessGone(why.into());
                }
                Some(Err(_)) | None => return Ended::Dropped { got_hello },
            },
            input = inputs.next() => match input {
                Some(Input::Data(d)) => {
                    // A large paste goes in pieces: the edge closes a socket whose message
                    // passes its cap rather than buffer it.
                    for piece in d.into_bytes().chunks(PASTE_CHUNK) {
                        if tx.send(Message::Bytes(piece.to_vec())).await.is_err() {
                            return Ended::Dropped { got_hello };
                        }
                    }
                }
                Some(Input::Resize(cols, rows)) => {
                    let msg = serde_json::to_string(&ClientControl::Resize { cols, rows })
                        .unwrap_or_default();
                    let _ = tx.send(Message::Text(msg)).await;
                }
                Some(Input::Fit) => {
                    term.fit();
                }
                Some(Input::Restart) => {}
                Some(Input::Close) | None => return Ended::Closed,
            },
        }
    }
}

async fn run(
    target: Target,
    host: web_sys::HtmlElement,
    mut inputs: mpsc::UnboundedReceiver<Input>,
    callbacks: Rc<[js_sys::Function; 3]>,
    closed: Rc<Cell<bool>>,
    ui: TermUi,
) {
    let lib = match wasm_bindgen_futures::JsFuture::from(load_terminal()).await {
        Ok(lib) => lib.unchecked_into::<TerminalLib>(),
        Err(_) => {
            ui.status
                .set(Status::Failed("The terminal could not be loaded.".into()));
            return;
        }
    };
    if closed.get() {
        return;
    }
    let term = lib.create(&host, &callbacks[0], &callbacks[1], &callbacks[2]);
    term.fit();
    term.focus();
    let mut since: Option<u64> = None;
    let mut seq = 0u64;
    let mut attempt = 0u32;
    let mut sandbox: Option<String> = None;
    while !closed.get() {
        let id = match (&target, &sandbox) {
            (_, Some(id)) => id.clone(),
            (Target::Own { .. }, None) => match own_sandbox().await {
                Ok(id) => id,
                Err(NoSandbox { message, retry }) => {
                    ui.status.set(Status::Failed(message));
                    if !retry {
                        break;
                    }
                    attempt += 1;
                    gloo_timers::future::TimeoutFuture::new(backoff_ms(attempt).max(2000)).await;
                    continue;
                }
            },
            (Target::Shared { sandbox, .. }, None) => sandbox.clone(),
        };
        sandbox = Some(id.clone());
        ui.sandbox.set(Some(id.clone()));
        if session::token().is_none() {
            ui.status.set(Status::Failed("Signed out.".into()));
            break;
        }
        // No ticket (the server is out of reach): wait and try again, as for a lost socket.
        let Some(url) = api::ws_ticket()
            .await
            .and_then(|t| attach_url(&id, &target, since, &t))
        else {
            attempt += 1;
            let wait = backoff_ms(attempt);
            ui.status.set(Status::Reconnecting {
                attempt,
                secs: wait.div_ceil(1000),
            });
            gloo_timers::future::TimeoutFuture::new(wait).await;
            continue;
        };
        match session_once(&url, &term, &mut inputs, &mut seq, since, ui).await {
            Ended::Closed => break,
            Ended::AccessGone(why) => {
                ui.notice.set(None);
                ui.status.set(Status::Failed(why));
                break;
            }
            Ended::Exited(code) => {
                ui.status.set(Status::Ended(code));
                // Wait for "Start a new shell" (or the window closing).
                loop {
                    match inputs.next().await {
                        Some(Input::Restart) => break,
                        Some(Input::Fit) => {
                            term.fit();
                        }
                        Some(Input::Close) | None => {
                            term.dispose();
                            return;
                        }
                        Some(_) => {}
                    }
                }
                term.reset();
                since = None;
                attempt = 0;
                ui.status.set(Status::Starting);
                continue;
            }
            Ended::Dropped { got_hello } => {
                since = got_hello.then_some(seq).or(since);
                attempt = if got_hello { 1 } else { attempt + 1 };
                // Without a hello the sandbox may have stopped or been replaced: ask again
                // which one is live (a shared one is what the link names).
                if !got_hello && matches!(target, Target::Own { .. }) {
                    sandbox = None;
                    since = None;
                }
                if matches!(target, Target::Shared { .. }) && attempt > 5 {
                    ui.status.set(Status::Failed(
                        "This view-only link expired, or the terminal's sandbox stopped.".into(),
                    ));
                    break;
                }
            }
        }
        let wait = backoff_ms(attempt);
        ui.status.set(Status::Reconnecting {
            attempt,
            secs: wait.div_ceil(1000),
        });
        gloo_timers::future::TimeoutFuture::new(wait).await;
    }
    // Ended for good (access revoked or expired, signed out, no sandbox): what was on the
    // screen stays readable until the window closes.
    while !closed.get() {
        match inputs.next().await {
            Some(Input::Fit) => {
                term.fit();
            }
            Some(Input::Close) | None => break,
            Some(_) => {}
        }
    }
    term.dispose();
}

/// The Terminal window.
#[component]
pub fn TerminalApp(win: Win) -> impl IntoView {
    let target = match win.arg.get_untracked().as_deref().and_then(Target::parse) {
        Some(t) => t,
        None => {
            let t = Target::Own {
                session: new_session(),
            };
            // Saved with the layout: after a reload this window finds the same shell.
            win.arg.set(Some(t.to_arg()));
            t
        }
    };
    let viewing = matches!(target, Target::Shared { .. });
    if viewing {
        win.title.set("Terminal (view only)".into());
    }
    let ui = TermUi {
        status: RwSignal::new(Status::Starting),
        role: RwSignal::new(None),
        notice: RwSignal::new(None),
        sandbox: RwSignal::new(None),
        share_link: RwSignal::new(None),
    };
    let host = NodeRef::<Div>::new();
    let (in_tx, in_rx) = mpsc::unbounded::<Input>();
    let closed = Rc::new(Cell::new(false));
    let notes = use_context::<Notifications>();

    let tx = in_tx.clone();
    let on_data = Closure::<dyn FnMut(String)>::new(move |d: String| {
        let _ = tx.unbounded_send(Input::Data(d));
    });
    let tx = in_tx.clone();
    let on_resize = Closure::<dyn FnMut(u16, u16)>::new(move |c: u16, r: u16| {
        let _ = tx.unbounded_send(Input::Resize(c, r));
    });
    let on_copy = Closure::<dyn FnMut(String)>::new(move |_t: String| {
        if let Some(n) = notes {
            n.say("Copied", "The selection is on the clipboard.");
        }
    });
    let callbacks: Rc<[js_sys::Function; 3]> = Rc::new([
        on_data.as_ref().unchecked_ref::<js_sys::Function>().clone(),
        on_resize
            .as_ref()
            .unchecked_ref::<js_sys::Function>()
            .clone(),
        on_copy.as_ref().unchecked_ref::<js_sys::Function>().clone(),
    ]);

    // Start once the element exists; refit whenever the window changes size.
    let started = StoredValue::new_local(false);
    let rx_slot = StoredValue::new_local(Some(in_rx));
    let closed_run = closed.clone();
    let target_run = target.clone();
    Effect::new(move |_| {
        let Some(el) = host.get() else { return };
        if started.get_value() {
            return;
        }
        started.set_value(true);
        let Some(rx) = rx_slot.try_update_value(Option::take).flatten() else {
            return;
        };
        let el: web_sys::HtmlElement = el.unchecked_into();
        spawn_local(run(
            target_run.clone(),
            el,
            rx,
            callbacks.clone(),
            closed_run.clone(),
            ui,
        ));
    });
    let fit_tx = in_tx.clone();
    Effect::new(move |_| {
        let Some(el) = host.get() else { return };
        // The run loop owns the terminal: it fits, and xterm reports the new size.
        let tx = fit_tx.clone();
        let on_box = Closure::<dyn FnMut()>::new(move || {
            let _ = tx.unbounded_send(Input::Fit);
        });
        let Ok(observer) = web_sys::ResizeObserver::new(on_box.as_ref().unchecked_ref()) else {
            return;
        };
        observer.observe(&el);
        let keep = SendWrapper::new((observer, on_box));
        on_cleanup(move || keep.0.disconnect());
    });
    let keep = SendWrapper::new((on_data, on_resize, on_copy, in_tx.clone(), closed));
    on_cleanup(move || {
        keep.4.set(true);
        let _ = keep.3.unbounded_send(Input::Close);
    });

    let restart_tx = in_tx.clone();
    let restart = move |_| {
        let _ = restart_tx.unbounded_send(Input::Restart);
    };
    let share = move |_| {
        let Some(id) = ui.sandbox.get_untracked() else {
            return;
        };
        let session = target.session().to_owned();
        spawn_local(async move {
            match api::post::<_, SandboxShare>(
                &format!("/sandbox/{}/share", api::enc(&id)),
                &serde_json::json!({}),
            )
            .await
            {
                Ok(s) => {
                    let link = format!("{}&session={}", s.url, api::enc(&session));
                    ui.share_link.set(Some((link, s.id)));
                }
                Err(e) => ui.notice.set(Some(e.message)),
            }
        });
    };
    let revoke_link = move |_| {
        let Some((_, share_id)) = ui.share_link.get_untracked() else {
            return;
        };
        spawn_local(async move {
            match api::delete(&format!("/shares/{}", api::enc(&share_id))).await {
                Ok(()) => {
                    ui.share_link.set(None);
                    if let Some(n) = notes {
                        n.say(
                            "Link revoked",
                            "It no longer opens, and whoever watched through it was disconnected.",
                        );
                    }
                }
                Err(e) => ui.notice.set(Some(e.message)),
            }
        });
    };
    // Every link still working, including ones whose bar was closed or made in another tab.
    let revoke_all = move |_| {
        let Some(id) = ui.sandbox.get_untracked() else {
            return;
        };
        spawn_local(async move {
            let list = match api::get::<cloudos_proto::ShareList>(&format!(
                "/sandbox/{}/shares",
                api::enc(&id)
            ))
            .await
            {
                Ok(list) => list,
                Err(e) => return ui.notice.set(Some(e.message)),
            };
            let mut revoked = 0;
            for link in list.items.iter().filter(|l| l.state == "active") {
                match api::delete(&format!("/shares/{}", api::enc(&link.id))).await {
                    Ok(()) => revoked += 1,
                    Err(e) => return ui.notice.set(Some(e.message)),
                }
            }
            ui.share_link.set(None);
            let text = match revoked {
                0 => "No view-only link of this terminal works now.".to_owned(),
                1 => "1 link revoked; whoever watched through it was disconnected.".to_owned(),
                n => format!("{n} links revoked; whoever watched through them was disconnected."),
            };
            ui.notice.set(Some(text));
        });
    };
    let copy_link = move |_| {
        let Some((link, _)) = ui.share_link.get_untracked() else {
            return;
        };
        if let Some(w) = web_sys::window() {
            let _ = w.navigator().clipboard().write_text(&link);
        }
        if let Some(n) = notes {
            n.say(
                "Link copied",
                "Anyone signed in who opens it can watch this terminal (not type).",
            );
        }
    };

    let status_text = move || match ui.status.get() {
        Status::Starting => "Starting your sandbox…".to_owned(),
        Status::Connected => match ui.role.get() {
            Some(Role::Viewer) => "Connected · view only".to_owned(),
            _ => "Connected".to_owned(),
        },
        Status::Reconnecting { attempt, secs } => {
            format!("Connection lost · reconnecting in {secs} s (attempt {attempt})")
        }
        Status::Ended(code) => match code {
            Some(c) => format!("The shell ended (exit {c})"),
            None => "The shell ended".to_owned(),
        },
        Status::Failed(why) => why,
    };
    let state_class = move || match ui.status.get() {
        Status::Connected => "term-status ok",
        Status::Starting | Status::Reconnecting { .. } => "term-status wait",
        Status::Ended(_) | Status::Failed(_) => "term-status bad",
    };

    view! {
        <div class="term-app">
            <div class="term-host" node_ref=host></div>
            <div class=state_class role="status" aria-live="polite">
                <span class="term-dot"></span>
                <span class="term-text">{status_text}</span>
                {move || ui.notice.get().map(|n| view! { <span class="term-notice">{n}</span> })}
                <span class="term-spacer"></span>
                {move || matches!(ui.status.get(), Status::Ended(_)).then(|| view! {
                    <button class="term-btn" on:click=restart.clone()>"Start a new shell"</button>
                })}
                {(!viewing).then(|| view! {
                    <button class="term-btn" title="Let another signed-in user watch (not type)"
                        disabled=move || ui.sandbox.get().is_none()
                        on:click=share>"Share view-only"</button>
                    <button class="term-btn" data-revoke-all title="Revoke every view-only link to this terminal's sandbox"
                        disabled=move || ui.sandbox.get().is_none()
                        on:click=revoke_all>"Stop sharing"</button>
                })}
            </div>
            {move || ui.share_link.get().map(|(link, _)| view! {
                <div class="term-share">
                    <input class="term-share-link" readonly value=link aria-label="View-only link" />
                    <button class="term-btn" on:click=copy_link>"Copy link"</button>
                    <button class="term-btn" data-revoke title="Stop the link working and disconnect whoever watches" on:click=revoke_link>"Revoke"</button>
                    <button class="term-btn" aria-label="Close" on:click=move |_| ui.share_link.set(None)>"×"</button>
                </div>
            })}
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_round_trip_through_the_window_arg() {
        for t in [
            Target::Own {
                session: "t1".into(),
            },
            Target::Shared {
                sandbox: "sb".into(),
                share: "a.b.c".into(),
                session: "t2".into(),
            },
        ] {
            assert_eq!(Target::parse(&t.to_arg()), Some(t));
        }
        assert_eq!(Target::parse("x:y"), None);
    }

    #[test]
    fn backoff_grows_to_ten_seconds() {
        assert_eq!(backoff_ms(1), 500);
        assert_eq!(backoff_ms(2), 1000);
        assert_eq!(backoff_ms(9), 10_000);
    }
}
