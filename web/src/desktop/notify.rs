//! Notifications: toasts, the notification center, and the live event socket that feeds them.

use cloudos_proto::{Event, MarkRead, Notification, NotificationList};
use futures_util::StreamExt;
use gloo_net::websocket::futures::WebSocket;
use gloo_net::websocket::Message;
use leptos::prelude::*;
use leptos::task::spawn_local;

use super::wm::Wm;
use crate::{api, session};

/// How long a toast stays.
const TOAST_MS: u32 = 6_000;

/// Notification state (context); also relays file changes to open Files windows.
#[derive(Clone, Copy)]
pub struct Notifications {
    pub items: RwSignal<Vec<Notification>>,
    pub unread: RwSignal<u64>,
    pub toasts: RwSignal<Vec<Notification>>,
    /// Bumped with the folder whose listing changed (`None`: the root).
    pub files_changed: RwSignal<(u64, Option<String>)>,
    pub live: RwSignal<bool>,
}

impl Default for Notifications {
    fn default() -> Self {
        Self::new()
    }
}

impl Notifications {
    /// Empty state.
    pub fn new() -> Self {
        Notifications {
            items: RwSignal::new(vec![]),
            unread: RwSignal::new(0),
            toasts: RwSignal::new(vec![]),
            files_changed: RwSignal::new((0, None)),
            live: RwSignal::new(false),
        }
    }

    async fn refresh(self) {
        if let Ok(list) = api::get::<NotificationList>("/notifications").await {
            self.items.set(list.items);
            self.unread.set(list.unread);
        }
    }

    /// Keeps the event socket open while signed in, reconnecting with backoff.
    pub fn connect(self) {
        spawn_local(async move {
            let mut backoff = 500;
            while session::token().is_some() {
                self.refresh().await;
                let url = match api::ws_ticket().await {
                    Some(ticket) => events_url(&ticket),
                    None => None,
                };
                if let Some(Ok(mut socket)) = url.map(|u| WebSocket::open(&u)) {
                    while let Some(msg) = socket.next().await {
                        match msg {
                            Ok(Message::Text(text)) => {
                                self.live.set(true);
                                backoff = 500;
                                if let Ok(event) = serde_json::from_str::<Event>(&text) {
                                    self.on_event(event);
                                }
                            }
                            Ok(Message::Bytes(_)) => {}
                            Err(_) => break,
                        }
                    }
                }
                self.live.set(false);
                gloo_timers::future::TimeoutFuture::new(backoff).await;
                backoff = (backoff * 2).min(15_000);
            }
        });
    }

    fn on_event(self, event: Event) {
        match event {
            Event::Notification { notification } => {
                self.items.update(|v| v.insert(0, notification.clone()));
                self.unread.update(|u| *u += 1);
                self.toast(notification);
            }
            Event::FilesChanged { parent_id } => {
                self.files_changed.update(|(n, p)| {
                    *n += 1;
                    *p = parent_id;
                });
            }
            // Signed out everywhere (in another tab or device): this desktop ends too. The
            // tab that signed out has already forgotten its token and says nothing more.
            Event::SessionEnded => {
                if session::token().is_some() {
                    session::expired();
                }
            }
        }
    }

    /// Shows a toast for a while.
    pub fn toast(self, n: Notification) {
        let id = n.id.clone();
        self.toasts.update(|t| t.push(n));
        gloo_timers::callback::Timeout::new(TOAST_MS, move || {
            self.toasts.update(|t| t.retain(|x| x.id != id));
        })
        .forget();
    }

    /// Shows a local message (errors of the desktop itself) as a toast, not stored.
    pub fn say(self, title: &str, body: &str) {
        let n = Notification {
            id: format!("local-{}", js_sys::Math::random()),
            kind: "local".into(),
            title: title.into(),
            body: body.into(),
            file_id: None,
            read: true,
            created_at: String::new(),
        };
        self.toast(n);
    }

    /// Marks everything read (when the center opens).
    pub fn mark_all_read(self) {
        if self.unread.get_untracked() == 0 {
            return;
        }
        self.unread.set(0);
        spawn_local(async move {
            if let Ok(list) =
                api::post::<_, NotificationList>("/notifications/read", &MarkRead { ids: None })
                    .await
            {
                self.items.set(list.items);
                self.unread.set(list.unread);
            }
        });
    }
}

fn events_url(ticket: &str) -> Option<String> {
    let loc = web_sys::window()?.location();
    let scheme = if loc.protocol().ok()? == "https:" {
        "wss"
    } else {
        "ws"
    };
    Some(format!(
        "{scheme}://{}/events?ticket={}",
        loc.host().ok()?,
        api::enc(ticket)
    ))
}

fn open_target(wm: Wm, n: &Notification) {
    if let Some(file) = &n.file_id {
        wm.open("viewer", Some(file.clone()));
    }
}

/// Toasts in the corner.
#[component]
pub fn Toasts() -> impl IntoView {
    let notes = expect_context::<Notifications>();
    let wm = expect_context::<Wm>();
    view! {
        <div class="toasts" role="status" aria-live="polite">
            <For each=move || notes.toasts.get() key=|n| n.id.clone() children=move |n| {
                let id = n.id.clone();
                let target = n.clone();
                view! {
                    <div class="toast" data-toast=n.kind.clone() on:click=move |_| open_target(wm, &target)>
                        <strong>{n.title.clone()}</strong>
                        <span>{n.body.clone()}</span>
                        <button class="toast-close" aria-label="Dismiss" on:click=move |ev| {
                            ev.stop_propagation();
                            notes.toasts.update(|t| t.retain(|x| x.id != id));
                        }>"×"</button>
                    </div>
                }
            } />
        </div>
    }
}

/// The notification center: the history, newest first.
#[component]
pub fn NotificationCenter(on_close: Callback<()>) -> impl IntoView {
    let notes = expect_context::<Notifications>();
    let wm = expect_context::<Wm>();
    view! {
        <aside class="center" data-notification-center aria-label="Notifications">
            <header>
                <h2>"Notifications"</h2>
                <span class="live" class:on=move || notes.live.get()
                    title=move || if notes.live.get() { "Live" } else { "Reconnecting…" }></span>
                <button class="link" on:click=move |_| on_close.run(())>"Close"</button>
            </header>
            <Show when=move || notes.items.with(Vec::is_empty)>
                <p class="empty">"Nothing yet. Uploads and shares show up here."</p>
            </Show>
            <ul>
                <For each=move || notes.items.get() key=|n| n.id.clone() children=move |n| {
                    let target = n.clone();
                    view! {
                        <li class="center-item" class:unread=!n.read on:click=move |_| open_target(wm, &target)>
                            <strong>{n.title.clone()}</strong>
                            <span>{n.body.clone()}</span>
                            <time>{n.created_at.replace('T', " ").chars().take(16).collect::<String>()}</time>
                        </li>
                    }
                } />
            </ul>
        </aside>
    }
}
