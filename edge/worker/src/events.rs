//! Live events on the edge: one `UserEvents` Durable Object per user owns that user's
//! `WS /events` sockets (hibernating, so an idle desktop costs nothing); the core checks the
//! token, the `Sockets` port hands the upgrade to the object, and what the core publishes is
//! delivered after the response, inside `ctx.wait_until`.

use std::cell::RefCell;

use cloudos_core::ports::Events;
use worker::{
    durable_object, DurableObject, Env, Method, ObjectNamespace, Request, RequestInit, Response,
    Result, State, WebSocket, WebSocketIncomingMessage, WebSocketPair,
};

/// The binding of the `UserEvents` namespace in `wrangler.toml`.
pub const BINDING: &str = "EVENTS";

thread_local! {
    /// Events published while requests of this isolate ran, as (user id, JSON text). Isolates
    /// are single-threaded, and whichever request drains the queue delivers them; each request
    /// drains after its own response, so nothing it published waits for a later request.
    static PENDING: RefCell<Vec<(String, String)>> = const { RefCell::new(Vec::new()) };
}

/// The core's `Events` port on the Worker: queues, because delivery is an async fetch to the
/// user's Durable Object and must outlive the response (`deliver`).
pub struct QueuedEvents;

impl Events for QueuedEvents {
    fn publish(&self, user_id: &str, event: &cloudos_proto::Event) {
        if let Ok(text) = serde_json::to_string(event) {
            PENDING.with(|p| p.borrow_mut().push((user_id.to_owned(), text)));
        }
    }
}

/// Takes the queued events; hand them to `deliver` inside `ctx.wait_until`.
pub fn take_pending() -> Vec<(String, String)> {
    PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()))
}

/// Sends each event to its user's object, in order (a desktop sees a folder change before
/// the notification about it). Nobody listening is fine; a failure is logged, not retried,
/// because the desktop refetches what it shows when its socket reconnects.
pub async fn deliver(namespace: ObjectNamespace, events: Vec<(String, String)>) {
    for (user_id, text) in events {
        if let Err(e) = publish_to(&namespace, &user_id, text).await {
            worker::console_error!("delivering a live event: {e}");
        }
    }
}

async fn publish_to(namespace: &ObjectNamespace, user_id: &str, text: String) -> Result<()> {
    let stub = namespace.id_from_name(user_id)?.get_stub()?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_body(Some(text.into()));
    let req = Request::new_with_init("https://events/publish", &init)?;
    stub.fetch_with_request(req).await?;
    Ok(())
}

/// The header that tells the object when the socket's session expires (ms since the epoch).
const UNTIL_HEADER: &str = "x-cloudos-until-ms";

/// The upgrade of one `WS /events` socket, answered by the caller's `UserEvents` object;
/// nothing is delivered to it after `until_ms`.
pub(crate) async fn connect(
    namespace: &ObjectNamespace,
    user_id: &str,
    until_ms: i64,
) -> Result<Response> {
    let stub = namespace.id_from_name(user_id)?.get_stub()?;
    let mut init = RequestInit::new();
    let headers = worker::Headers::new();
    headers.set("Upgrade", "websocket")?;
    headers.set(UNTIL_HEADER, &until_ms.to_string())?;
    init.with_headers(headers);
    stub.fetch_with_request(Request::new_with_init("https://events/connect", &init)?)
        .await
}

/// Whether the session `socket` was opened in has expired (its attachment is the expiry).
fn expired(socket: &WebSocket, now_ms: i64) -> bool {
    let until_ms = socket.deserialize_attachment::<i64>().ok().flatten();
    until_ms.is_none_or(|until| until <= now_ms)
}

fn close_expired(socket: &WebSocket) {
    let _ = socket.close(
        Some(cloudos_proto::terminal::CLOSE_EXPIRED),
        Some("the session expired; sign in again"),
    );
}

/// The sockets of one user's open desktops.
#[durable_object]
pub struct UserEvents {
    state: State,
}

impl DurableObject for UserEvents {
    fn new(state: State, _env: Env) -> Self {
        UserEvents { state }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        match req.path().as_str() {
            "/connect" => {
                // Sockets of expired sessions give up their places first.
                let now_ms = worker::Date::now().as_millis() as i64;
                let mut open = 0;
                for socket in self.state.get_websockets() {
                    if expired(&socket, now_ms) {
                        close_expired(&socket);
                    } else {
                        open += 1;
                    }
                }
                if open >= cloudos_core::events::MAX_SOCKETS_PER_USER {
                    return Response::error("too many sockets", 429);
                }
                let until_ms: i64 = req
                    .headers()
                    .get(UNTIL_HEADER)?
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let pair = WebSocketPair::new()?;
                // Hibernation API: the runtime keeps the socket while the object sleeps, and
                // its attachment (the session's expiry) with it.
                self.state.accept_web_socket(&pair.server);
                pair.server.serialize_attachment(until_ms)?;
                Response::from_websocket(pair.client)
            }
            "/publish" => {
                let text = req.text().await?;
                let ends = serde_json::from_str::<cloudos_proto::Event>(&text)
                    .is_ok_and(|e| e.ends_socket());
                let now_ms = worker::Date::now().as_millis() as i64;
                for socket in self.state.get_websockets() {
                    // An expired session's socket gets no more events: it is closed the
                    // first time one would reach it (an idle socket learns nothing anyway).
                    if expired(&socket, now_ms) {
                        close_expired(&socket);
                        continue;
                    }
                    // A socket closing right now is not an error worth reporting.
                    let _ = socket.send_with_str(&text);
                    if ends {
                        let _ = socket.close(Some(1000), Some("signed out"));
                    }
                }
                Ok(Response::empty()?.with_status(204))
            }
            _ => Response::error("not found", 404),
        }
    }

    async fn websocket_message(
        &self,
        _ws: WebSocket,
        _message: WebSocketIncomingMessage,
    ) -> Result<()> {
        // Desktops only listen; anything they send is ignored, as on the native host.
        Ok(())
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        code: usize,
        reason: String,
        _was_clean: bool,
    ) -> Result<()> {
        crate::sockets::echo_close(&ws, code, reason);
        Ok(())
    }

    async fn websocket_error(&self, _ws: WebSocket, _error: worker::Error) -> Result<()> {
        // The runtime closes the socket; the desktop reconnects.
        Ok(())
    }
}
