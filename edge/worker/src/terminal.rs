//! `WS /terminal/:sandboxId/attach` on the Worker: the core decides who may attach and where;
//! the Worker opens the agent's WebSocket with a `fetch` upgrade and answers the client with
//! that socket, so the runtime carries the frames both ways and no code of ours runs per
//! frame.

use cloudos_core::sandboxes::attach::{agent_refused, AttachTicket};
use cloudos_core::sandboxes::SandboxesError;
use worker::{Fetch, Headers, Request, RequestInit, Response};

/// The agent's socket: `fetch` with `Upgrade: websocket` (Workers open outbound WebSockets
/// over http(s) URLs), with the headers the provider routes by.
pub(crate) async fn connect(ticket: &AttachTicket) -> Result<Response, SandboxesError> {
    let unreachable = |e: worker::Error| agent_refused(None, e);
    // ws:// → http://, wss:// → https://
    let url = ticket.url.replacen("ws", "http", 1);
    let headers = Headers::new();
    headers.set("Upgrade", "websocket").map_err(unreachable)?;
    for (k, v) in &ticket.headers {
        headers.set(k, v).map_err(unreachable)?;
    }
    let mut init = RequestInit::new();
    init.with_headers(headers);
    let req = Request::new_with_init(&url, &init).map_err(unreachable)?;
    let res = Fetch::Request(req).send().await.map_err(unreachable)?;
    match res.status_code() {
        101 => Ok(res),
        status => Err(agent_refused(
            Some(status),
            format!("it answered {status} instead of switching protocols"),
        )),
    }
}
