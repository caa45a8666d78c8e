//! The Cloudflare Worker host: the core router over libSQL (Hrana over `fetch`), R2 and
//! Durable Objects. Adapters only; every product rule is in `cloudos-core`.
#![forbid(unsafe_code)]

mod blobs;
mod body;
mod events;
mod meta;
mod rooms;
mod sockets;
mod terminal;

use std::cell::RefCell;
use std::sync::Arc;

use cloudos_core::config::{Config, SECRET_VAR};
use cloudos_core::ports::{Clock, Ids, Ports, Sandboxes};
use cloudos_core::App;
use tower::ServiceExt;
use worker::{event, Context, Env, HttpRequest, ScheduleContext, ScheduledEvent};

pub use events::UserEvents;
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

/// The core logs through `tracing` (an internal error "has been logged", a migration, a
/// sweep): here, as JSON lines on the Workers console (`wrangler tail`, Workers Logs).
#[event(start)]
fn start() {
    use tracing_subscriber::prelude::*;
    let console = tracing_subscriber::fmt::layer()
        .json()
        .with_ansi(false)
        // The runtime stamps every console line; wasm32 has no clock for the formatter.
        .without_time()
        .with_writer(tracing_web::MakeConsoleWriter)
        .with_filter(tracing_subscriber::filter::LevelFilter::INFO);
    // `start` runs once per isolate; a second subscriber would be a bug, not a crash.
    let _ = tracing_subscriber::registry().with(console).try_init();
}

thread_local! {
    /// One app and router per isolate: built, and the schema migrated, on the first event
    /// (the router includes the OpenAPI document, which is too much work for every request).
    static HOST: RefCell<Option<(App, axum::Router)>> = const { RefCell::new(None) };
}

fn var(env: &Env, name: &str) -> Option<String> {
    env.secret(name)
        .map(|s| s.to_string())
        .or_else(|_| env.var(name).map(|v| v.to_string()))
        .ok()
        .filter(|v| !v.is_empty())
}

/// Sandboxes run as Fly Machines when `CLOUDOS_SANDBOX_PROVIDER=fly` (a Worker cannot start
/// processes); otherwise sandbox calls answer 503.
fn sandboxes(env: &Env) -> worker::Result<Arc<dyn Sandboxes>> {
    if var(env, "CLOUDOS_SANDBOX_PROVIDER").as_deref() != Some("fly") {
        return Ok(Arc::new(cloudos_core::ports::NoSandboxes));
    }
    let settings = cloudos_fly::FlySettings::from_vars(|name| var(env, name))
        .map_err(|e| worker::Error::RustError(format!("sandbox settings: {e}")))?;
    Ok(Arc::new(cloudos_fly::FlyProvider::new(settings)))
}

pub(crate) async fn host(env: &Env) -> worker::Result<(App, axum::Router)> {
    if let Some(host) = HOST.with(|h| h.borrow().clone()) {
        return Ok(host);
    }
    let url = var(env, "LIBSQL_URL")
        .ok_or_else(|| worker::Error::RustError("LIBSQL_URL is not set".into()))?;
    let secret = var(env, SECRET_VAR)
        .ok_or_else(|| worker::Error::RustError(format!("the {SECRET_VAR} secret is not set")))?;
    let ids: Arc<dyn Ids> = Arc::new(JsIds);
    let ports = Ports {
        meta: Arc::new(meta::HranaMeta::new(&url, var(env, "LIBSQL_AUTH_TOKEN"))),
        blobs: Arc::new(blobs::R2Blobs::new(env.bucket("BLOBS")?, ids.clone())),
        clock: Arc::new(JsClock),
        ids,
        events: Arc::new(events::QueuedEvents),
        sandboxes: sandboxes(env)?,
        sockets: Arc::new(sockets::WorkerSockets {
            events: env.durable_object(events::BINDING)?,
            rooms: env.durable_object(rooms::BINDING)?,
        }),
        // An isolate serves one request at a time on one thread: nothing to keep free.
        cpu: Arc::new(cloudos_core::ports::InlineCpu),
    };
    let config = Config::from_vars(secret.into_bytes(), |name| var(env, name))
        .map_err(|e| worker::Error::RustError(format!("settings: {e}")))?;
    // Isolates share no memory, so counters kept in one would mean nothing.
    let app = App::new(ports, config).without_metrics();
    app.migrate()
        .await
        .map_err(|e| worker::Error::RustError(format!("migrating the schema: {e}")))?;
    let router = cloudos_core::router(app.clone());
    HOST.with(|h| *h.borrow_mut() = Some((app.clone(), router.clone())));
    Ok((app, router))
}

#[event(fetch)]
async fn fetch(
    req: HttpRequest,
    env: Env,
    ctx: Context,
) -> worker::Result<http::Response<axum::body::Body>> {
    let (_, router) = host(&env).await?;
    let (mut parts, body) = req.into_parts();
    // Cloudflare sets this header itself (a client's own value is replaced), so it names the
    // client for the login throttle.
    let client = parts
        .headers
        .get("cf-connecting-ip")
        .and_then(|v| v.to_str().ok()?.parse::<std::net::IpAddr>().ok());
    if let Some(ip) = client {
        parts.extensions.insert(cloudos_core::auth::ClientAddr(ip));
    }
    let (body, leftover) = body::Shared::new(body);
    let res = router
        .oneshot(http::Request::from_parts(
            parts,
            axum::body::Body::new(body),
        ))
        .await?;
    leftover.drain().await;
    let published = events::take_pending();
    if !published.is_empty() {
        ctx.wait_until(events::deliver(
            env.durable_object(events::BINDING)?,
            published,
        ));
    }
    Ok(res)
}

/// The Cron Trigger of `wrangler.toml`: the core's sweep over R2 and libSQL (Trash expiry,
/// version retention, orphans; the native server runs the same sweep on a timer).
#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let app = match host(&env).await {
        Ok((app, _)) => app,
        Err(e) => return worker::console_error!("sweep: {e}"),
    };
    match cloudos_core::sweep::sweep(&app).await {
        Ok(r) => worker::console_log!(
            "sweep: {} Trash entries expired, {} old versions pruned, {} unreferenced blobs and {} stale uploads removed",
            r.trash_expired,
            r.versions_pruned,
            r.orphans_removed,
            r.pending_removed
        ),
        Err(e) => worker::console_error!("sweep failed: {e}"),
    }
}
