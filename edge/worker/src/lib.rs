//! The Cloudflare Worker host: the core router over libSQL (Hrana over `fetch`), R2 and
//! Durable Objects. Adapters only; every product rule is in `cloudos-core`.
#![forbid(unsafe_code)]

mod blobs;
mod body;
mod meta;
mod rooms;

use std::cell::RefCell;
use std::sync::Arc;

use cloudos_core::config::Config;
use cloudos_core::ports::{Clock, Events, Ids, Ports};
use cloudos_core::App;
use tower::ServiceExt;
use worker::{event, Context, Env, HttpRequest};

pub use rooms::Room;

/// Wall-clock time from the Workers runtime.
struct JsClock;

impl Clock for JsClock {
    fn now_ms(&self) -> i64 {
        worker::js_sys::Date::now() as i64
    }
}

/// UUIDv7 ids and the runtime's CSPRNG.
struct JsIds;

impl Ids for JsIds {
    fn new_id(&self) -> String {
        uuid::Uuid::now_v7().simple().to_string()
    }

    fn random_bytes(&self, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        // crypto.getRandomValues cannot fail for buffers this small.
        let _ = getrandom::fill(&mut buf);
        buf
    }
}

/// Live events are not delivered by the Worker yet: a per-user Durable Object will own the
/// `/events` sockets. Publishing is a no-op, so the product works without them.
struct NoEvents;

impl Events for NoEvents {
    fn publish(&self, _user_id: &str, _event: &cloudos_proto::Event) {}
}

thread_local! {
    /// One router per isolate: built, and its schema migrated, on the first request (building
    /// it also builds the OpenAPI document, which is too much work for every request).
    static ROUTER: RefCell<Option<axum::Router>> = const { RefCell::new(None) };
}

fn var(env: &Env, name: &str) -> Option<String> {
    env.secret(name)
        .map(|s| s.to_string())
        .or_else(|_| env.var(name).map(|v| v.to_string()))
        .ok()
        .filter(|v| !v.is_empty())
}

async fn router(env: &Env) -> worker::Result<axum::Router> {
    if let Some(router) = ROUTER.with(|r| r.borrow().clone()) {
        return Ok(router);
    }
    let url = var(env, "LIBSQL_URL")
        .ok_or_else(|| worker::Error::RustError("LIBSQL_URL is not set".into()))?;
    let secret = var(env, "CLOUDOS_SECRET")
        .ok_or_else(|| worker::Error::RustError("the CLOUDOS_SECRET secret is not set".into()))?;
    let ids: Arc<dyn Ids> = Arc::new(JsIds);
    let ports = Ports {
        meta: Arc::new(meta::HranaMeta::new(&url, var(env, "LIBSQL_AUTH_TOKEN"))),
        blobs: Arc::new(blobs::R2Blobs::new(env.bucket("BLOBS")?, ids.clone())),
        clock: Arc::new(JsClock),
        ids,
        events: Arc::new(NoEvents),
    };
    let mut config = Config::with_secret(secret.into_bytes());
    let num = |name: &str| var(env, name).and_then(|v| v.parse::<i64>().ok());
    if let Some(q) = num("CLOUDOS_DEFAULT_QUOTA_BYTES") {
        config.default_quota_bytes = q as u64;
    }
    if let Some(v) = num("CLOUDOS_TOKEN_TTL_SECS") {
        config.token_ttl_secs = v;
    }
    if let Some(v) = num("CLOUDOS_DOWNLOAD_TTL_SECS") {
        config.download_ttl_secs = v;
    }
    if let Some(v) = num("CLOUDOS_LOGIN_MAX_FAILURES") {
        config.login_max_failures = v;
    }
    let app = App::new(ports, config);
    app.migrate()
        .await
        .map_err(|e| worker::Error::RustError(format!("migrating the schema: {e}")))?;
    let router = cloudos_core::router(app);
    ROUTER.with(|r| *r.borrow_mut() = Some(router.clone()));
    Ok(router)
}

#[event(fetch)]
async fn fetch(
    req: HttpRequest,
    env: Env,
    _ctx: Context,
) -> worker::Result<http::Response<axum::body::Body>> {
    let router = router(&env).await?;
    let (parts, body) = req.into_parts();
    let (body, leftover) = body::Shared::new(body);
    let res = router
        .oneshot(http::Request::from_parts(
            parts,
            axum::body::Body::new(body),
        ))
        .await?;
    leftover.drain().await;
    Ok(res)
}
