//! The API client: JSON over `gloo-net` with the session's token, problems as readable errors.

use std::fmt;

use cloudos_proto::Problem;
use gloo_net::http::{Request, RequestBuilder, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::session;

/// A failed call, worded for the person at the screen.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiErr {
    /// HTTP status; 0 when the server could not be reached.
    pub status: u16,
    /// The problem's stable `type`, e.g. `/errors/conflict`.
    pub kind: String,
    pub message: String,
}

impl fmt::Display for ApiErr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl ApiErr {
    /// The server did not answer at all.
    pub fn unreachable() -> Self {
        ApiErr {
            status: 0,
            kind: "/errors/unreachable".into(),
            message: "Cannot reach the server. Check your connection and try again.".into(),
        }
    }

    /// Turns an error answer into a message; problem+json details are shown as they are.
    pub async fn from_response(res: Response) -> Self {
        let status = res.status();
        match res.json::<Problem>().await {
            Ok(p) => ApiErr {
                status,
                kind: p.kind,
                message: p.detail,
            },
            Err(_) => ApiErr {
                status,
                kind: String::new(),
                message: format!("The server answered {status} {}.", res.status_text()),
            },
        }
    }
}

/// The request with the session's bearer token, if signed in.
pub fn authed(builder: RequestBuilder) -> RequestBuilder {
    match session::token() {
        Some(t) => builder.header("Authorization", &format!("Bearer {t}")),
        None => builder,
    }
}

/// Sends and returns the response when it is a success; a 401 ends the session.
pub async fn send(req: Request) -> Result<Response, ApiErr> {
    let res = req.send().await.map_err(|_| ApiErr::unreachable())?;
    if res.ok() {
        return Ok(res);
    }
    let err = ApiErr::from_response(res).await;
    if err.status == 401 && session::token().is_some() {
        session::expired();
    }
    Err(err)
}

async fn json<T: DeserializeOwned>(res: Response) -> Result<T, ApiErr> {
    res.json().await.map_err(|e| ApiErr {
        status: 0,
        kind: "/errors/bad-answer".into(),
        message: format!("The server's answer was not understood: {e}"),
    })
}

/// A single-use ticket for opening one WebSocket, so the API token never sits in a URL.
pub async fn ws_ticket() -> Option<String> {
    post::<_, cloudos_proto::Ticket>("/auth/ticket", &serde_json::json!({}))
        .await
        .ok()
        .map(|t| t.ticket)
}

/// Ends the session on the server: every token of the user stops working. Best effort;
/// the caller forgets `token` locally at once, whatever the answer.
pub async fn logout(token: Option<String>) {
    let Some(token) = token else { return };
    let req = Request::post("/auth/logout").header("Authorization", &format!("Bearer {token}"));
    if let Ok(req) = req.build() {
        let _ = req.send().await;
    }
}

/// `GET path` as JSON.
pub async fn get<T: DeserializeOwned>(path: &str) -> Result<T, ApiErr> {
    // Said outright: some paths answer browsers with a page (a share link's `/s/:token`).
    let req = authed(Request::get(path)).header("Accept", "application/json");
    json(send(req.build().map_err(build_err)?).await?).await
}

fn build_err(e: gloo_net::Error) -> ApiErr {
    ApiErr {
        status: 0,
        kind: "/errors/client".into(),
        message: e.to_string(),
    }
}

/// A request with a JSON body, answered with JSON.
pub async fn send_json<B: Serialize, T: DeserializeOwned>(
    builder: RequestBuilder,
    body: &B,
) -> Result<T, ApiErr> {
    json(send(authed(builder).json(body).map_err(build_err)?).await?).await
}

/// `POST path` with a JSON body.
pub async fn post<B: Serialize, T: DeserializeOwned>(path: &str, body: &B) -> Result<T, ApiErr> {
    send_json(Request::post(path), body).await
}

/// `PATCH path` with a JSON body.
pub async fn patch<B: Serialize, T: DeserializeOwned>(path: &str, body: &B) -> Result<T, ApiErr> {
    send_json(Request::patch(path), body).await
}

/// `PUT path` with a JSON body, no answer body expected.
pub async fn put_no_content<B: Serialize>(path: &str, body: &B) -> Result<(), ApiErr> {
    send(authed(Request::put(path)).json(body).map_err(build_err)?)
        .await
        .map(drop)
}

/// `PUT path` with a JSON body as a `keepalive` fetch: it completes even when the page is
/// going away (a reload, a closed tab), which an ordinary request does not. Not awaited:
/// there is nobody left to tell.
pub fn put_keepalive<B: Serialize>(path: &str, body: &B) {
    let Ok(json) = serde_json::to_string(body) else {
        return;
    };
    let Some(window) = web_sys::window() else {
        return;
    };
    let Ok(headers) = web_sys::Headers::new() else {
        return;
    };
    let _ = headers.set("Content-Type", "application/json");
    if let Some(t) = session::token() {
        let _ = headers.set("Authorization", &format!("Bearer {t}"));
    }
    let init = web_sys::RequestInit::new();
    init.set_method("PUT");
    // web-sys has no setter for it; the fetch standard's member is set directly.
    let _ = js_sys::Reflect::set(&init, &"keepalive".into(), &true.into());
    init.set_headers(&headers);
    init.set_body(&wasm_bindgen::JsValue::from_str(&json));
    let _ = window.fetch_with_str_and_init(path, &init);
}

/// `DELETE path`.
pub async fn delete(path: &str) -> Result<(), ApiErr> {
    send(authed(Request::delete(path)).build().map_err(build_err)?)
        .await
        .map(drop)
}

/// `GET path` as text (file previews).
pub async fn get_text(path: &str) -> Result<String, ApiErr> {
    let res = send(authed(Request::get(path)).build().map_err(build_err)?).await?;
    res.text().await.map_err(|_| ApiErr::unreachable())
}

/// Percent-encodes one query or path component.
pub fn enc(s: &str) -> String {
    js_sys::encode_uri_component(s).into()
}
