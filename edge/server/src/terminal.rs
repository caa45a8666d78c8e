//! The relay of `WS /terminal/:sandboxId/attach`: the core decides who may attach and where;
//! this host opens the socket to the sandbox's agent first (so a dead agent is a 502, not a
//! socket that closes at once) and then relays frames both ways.

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use cloudos_core::sandboxes::attach::{agent_refused, AttachTicket};
use cloudos_core::ApiError;
use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};

type AgentSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects to the ticket's agent, then upgrades the client and relays.
pub async fn open(ticket: &AttachTicket, ws: WebSocketUpgrade) -> Result<Response, ApiError> {
    let mut req = ticket
        .url
        .as_str()
        .into_client_request()
        .map_err(ApiError::internal)?;
    for (k, v) in &ticket.headers {
        if let (Ok(k), Ok(v)) = (
            axum::http::HeaderName::try_from(k.as_str()),
            axum::http::HeaderValue::try_from(v.as_str()),
        ) {
            req.headers_mut().insert(k, v);
        }
    }
    let (agent, _) = tokio_tungstenite::connect_async(req).await.map_err(|e| {
        let status = match &e {
            tungstenite::Error::Http(res) => Some(res.status().as_u16()),
            _ => None,
        };
        ApiError::from(agent_refused(status, e))
    })?;
    Ok(ws.on_upgrade(move |client| relay(client, agent)))
}

fn to_agent(m: Message) -> Option<tungstenite::Message> {
    Some(match m {
        Message::Binary(b) => tungstenite::Message::Binary(b),
        Message::Text(t) => tungstenite::Message::Text(t.as_str().into()),
        // Closing is handled by the relay; each side answers its own pings.
        Message::Close(_) | Message::Ping(_) | Message::Pong(_) => return None,
    })
}

fn to_client(m: tungstenite::Message) -> Option<Message> {
    Some(match m {
        tungstenite::Message::Binary(b) => Message::Binary(b),
        tungstenite::Message::Text(t) => Message::Text(t.as_str().into()),
        _ => return None,
    })
}

/// Tells the client the agent's side is gone (it then reconnects, or shows why not), with
/// the agent's close code and reason when it gave one (a revoked or expired access).
async fn terminal_ended(
    ctx: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    agent_close: Option<tungstenite::Message>,
) {
    let frame = match agent_close {
        Some(tungstenite::Message::Close(Some(f))) => CloseFrame {
            code: f.code.into(),
            reason: f.reason.as_str().into(),
        },
        _ => CloseFrame {
            code: 1000,
            reason: "the terminal ended".into(),
        },
    };
    let _ = ctx.send(Message::Close(Some(frame))).await;
}

async fn relay(client: WebSocket, agent: AgentSocket) {
    let (mut ctx, mut crx) = client.split();
    let (mut atx, mut arx) = agent.split();
    // Two directions that never wait on each other: the agent stops reading a client whose
    // program is not taking input, and output must keep flowing meanwhile (else both ends
    // wait on each other for good).
    let input = async {
        while let Some(Ok(m)) = crx.next().await {
            if matches!(m, Message::Close(_)) {
                break;
            }
            if let Some(m) = to_agent(m) {
                if atx.send(m).await.is_err() {
                    break;
                }
            }
        }
    };
    let output = async {
        while let Some(m) = arx.next().await {
            let m = match m {
                Ok(m) if !m.is_close() => m,
                Ok(close) => return terminal_ended(&mut ctx, Some(close)).await,
                Err(_) => return terminal_ended(&mut ctx, None).await,
            };
            // Pass on what already arrived, then flush once.
            let mut next = Some(m);
            let (mut failed, mut ended, mut batch) = (false, None, 0);
            while let Some(m) = next.take() {
                if let Some(m) = to_client(m) {
                    failed |= ctx.feed(m).await.is_err();
                }
                batch += 1;
                if failed || batch >= 64 {
                    break;
                }
                next = match arx.next().now_or_never() {
                    Some(Some(Ok(m))) if !m.is_close() => Some(m),
                    // Closed or failed: pass on what came before, then end.
                    Some(Some(Ok(close))) => {
                        ended = Some(Some(close));
                        None
                    }
                    Some(Some(Err(_))) | Some(None) => {
                        ended = Some(None);
                        None
                    }
                    None => None,
                };
            }
            if failed || ctx.flush().await.is_err() {
                return;
            }
            if let Some(close) = ended {
                terminal_ended(&mut ctx, close).await;
                return;
            }
        }
        terminal_ended(&mut ctx, None).await;
    };
    tokio::select! {
        () = input => {}
        () = output => {}
    }
    let _ = atx.close().await;
}
