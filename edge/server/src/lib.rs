//! The native host: embedded libSQL, local or S3 blobs, tokio, and the core's router.
#![forbid(unsafe_code)]

pub mod blobs;
pub mod cpu;
pub mod events;
pub mod hrana;
pub mod rooms;
pub mod sandboxes;
pub mod settings;
pub mod sockets;
pub mod telemetry;
pub mod terminal;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::{MatchedPath, Request};
use axum::handler::HandlerWithoutStateExt;
use axum::http::{header, HeaderValue};
use axum::response::Html;
use axum::routing::get;
use axum::Router;
use cloudos_core::ports::{Clock, Ids, Ports};
use cloudos_core::{App, Config};
use rand::RngCore;
use tower::ServiceBuilder;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::blobs::{LocalBlobs, S3Blobs, S3Settings};
use crate::events::EventHub;
use crate::sandboxes::{fly_provider, LocalSandboxes};
use crate::settings::{BlobBackend, SandboxProvider, ServeArgs};
use crate::sockets::NativeSockets;
use cloudos_libsql::LibsqlMeta;

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }
}

/// Time-ordered UUIDv7 ids and OS randomness.
pub struct RandomIds;

impl Ids for RandomIds {
    fn new_id(&self) -> String {
        uuid::Uuid::now_v7().simple().to_string()
    }

    fn random_bytes(&self, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        rand::rng().fill_bytes(&mut buf);
        buf
    }
}

/// Reads the signing secret from the data dir, creating it on a fresh install.
async fn load_or_create_secret(data: &Path) -> anyhow::Result<Vec<u8>> {
    let path = data.join("secret.key");
    match tokio::fs::read_to_string(&path).await {
        Ok(hex_secret) => {
            let secret = hex::decode(hex_secret.trim()).context("data/secret.key is not hex")?;
            // A short key (e.g. a crash between creating the file and writing it) would
            // make every token forgeable: refuse to start rather than sign with it.
            if secret.len() < 32 {
                anyhow::bail!(
                    "{} holds {} bytes; a signing key needs 32 (delete it to make a new one, which signs everyone out)",
                    path.display(),
                    secret.len()
                );
            }
            Ok(secret)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let secret = RandomIds.random_bytes(32);
            write_private(&path, hex::encode(&secret).as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            Ok(secret)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Opens the stores named by `args`, migrates the schema and returns the product.
pub async fn build_app(
    args: &ServeArgs,
    hub: Arc<EventHub>,
    sandboxes: Arc<dyn cloudos_core::ports::Sandboxes>,
) -> anyhow::Result<App> {
    tokio::fs::create_dir_all(&args.data)
        .await
        .with_context(|| format!("creating data dir {}", args.data.display()))?;
    let secret = match &args.secret {
        Some(s) if !s.is_empty() => s.as_bytes().to_vec(),
        _ => load_or_create_secret(&args.data).await?,
    };
    let config = Config::from_vars(secret, |var| args.core_var(var)).map_err(|e| {
        anyhow::anyhow!(
            "{e} (set by {} or the environment)",
            settings::flag_of(e.var())
        )
    })?;
    let rooms = Arc::new(rooms::RoomHub::default());
    let meta = LibsqlMeta::open(&args.data.join("cloudos.db"))
        .await
        .context("opening the libSQL database")?;
    let blobs: Arc<dyn cloudos_core::ports::BlobStore> = match args.blobs {
        BlobBackend::Local => Arc::new(LocalBlobs::open(args.data.join("blobs")).await?),
        BlobBackend::S3 => {
            let s3 = S3Blobs::new(&S3Settings {
                endpoint: args.s3_endpoint.clone(),
                region: args.s3_region.clone(),
                bucket: args.s3_bucket.clone(),
                access_key: args.s3_access_key.clone(),
                secret_key: args.s3_secret_key.clone(),
            });
            s3.ensure_bucket().await.context("reaching the S3 bucket")?;
            Arc::new(s3)
        }
    };
    let ports = Ports {
        meta: Arc::new(meta),
        blobs,
        clock: Arc::new(SystemClock),
        ids: Arc::new(RandomIds),
        events: hub.clone(),
        sandboxes,
        sockets: Arc::new(NativeSockets {
            hub,
            rooms: rooms.clone(),
        }),
        cpu: Arc::new(cpu::BlockingCpu::for_this_machine()),
    };
    let app = App::new(ports, config);
    rooms.attach(app.clone());
    app.migrate().await.context("migrating the schema")?;
    Ok(app)
}

const PLACEHOLDER: &str = "<!doctype html><meta charset=utf-8><title>Cloud OS</title>\
<body style=\"font-family:system-ui;max-width:40rem;margin:4rem auto\"><h1>Cloud OS</h1>\
<p>The server is running. The desktop is not built into this install yet; the API is \
described at <a href=\"/openapi.json\">/openapi.json</a>.</p>";

/// Hashed build output never changes under its name; everything else is revalidated.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// `Cache-Control` for successful static answers only, so a 404 is never cached for a year.
fn cache_control(
    value: &'static str,
) -> SetResponseHeaderLayer<
    impl Fn(&axum::response::Response<ServeBody>) -> Option<HeaderValue> + Clone,
> {
    SetResponseHeaderLayer::overriding(
        header::CACHE_CONTROL,
        move |res: &axum::response::Response<ServeBody>| {
            res.status()
                .is_success()
                .then(|| HeaderValue::from_static(value))
        },
    )
}

type ServeBody = tower_http::services::fs::ServeFileSystemResponseBody;

/// The core's router plus what only this host does: the desktop's static files and request
/// spans.
pub fn router(app: App, web_dir: &Path) -> Router {
    let mut router = cloudos_core::router(app);
    if web_dir.join("index.html").exists() {
        let not_found = cloudos_core::not_found.into_service();
        let assets = ServiceBuilder::new()
            .layer(cache_control(IMMUTABLE))
            .service(
                ServeDir::new(web_dir.join("assets"))
                    .precompressed_gzip()
                    .not_found_service(not_found.clone()),
            );
        // The desktop's page gets its security headers (the Worker's `_headers` has the same).
        let [(csp, csp_value), (frame, frame_value), (sniff, sniff_value)] =
            cloudos_proto::DESKTOP_HEADERS
        else {
            unreachable!("three desktop headers")
        };
        let set = |name: &'static str, value: &'static str| {
            SetResponseHeaderLayer::overriding(
                header::HeaderName::from_static(name),
                HeaderValue::from_static(value),
            )
        };
        let rest = ServiceBuilder::new()
            .layer(cache_control("no-cache"))
            .layer(set(csp, csp_value))
            .layer(set(frame, frame_value))
            .layer(set(sniff, sniff_value))
            .service(
                ServeDir::new(web_dir)
                    .precompressed_gzip()
                    .not_found_service(not_found),
            );
        router = router
            .nest_service("/assets", assets)
            .fallback_service(rest);
    } else {
        router = router.route("/", get(|| async { Html(PLACEHOLDER) }));
    }
    router
        .layer(axum::middleware::map_request(client_addr))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let route = req
                .extensions()
                .get::<MatchedPath>()
                .map_or(req.uri().path(), |p| p.as_str());
            tracing::info_span!(
                "request",
                otel.name = format!("{} {}", req.method(), route),
                http.request.method = %req.method(),
                url.path = %req.uri().path(),
            )
        }))
}

/// Tells the core who the client is: the TCP peer (this server trusts no forwarding
/// header, so behind a reverse proxy every client is the proxy).
async fn client_addr(mut req: Request) -> Request {
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    if let Some(ip) = peer {
        req.extensions_mut()
            .insert(cloudos_core::auth::ClientAddr(ip));
    }
    req
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    args: ServeArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let hub = Arc::new(EventHub::default());
    let local = Arc::new(LocalSandboxes::new(args.sandbox.clone(), &args.data));
    let sandboxes: Arc<dyn cloudos_core::ports::Sandboxes> = match args.sandbox.sandbox_provider {
        SandboxProvider::Local => local.clone(),
        SandboxProvider::Fly => Arc::new(fly_provider(&args.sandbox)?),
        SandboxProvider::None => Arc::new(cloudos_core::ports::NoSandboxes),
    };
    let app = build_app(&args, hub, sandboxes).await?;
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("binding {}", args.addr))?;
    let addr = listener.local_addr()?;
    // Agents sync homes through the API over loopback (an unspecified bind address is
    // reached there too).
    let api_host = match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => std::net::IpAddr::from([127, 0, 0, 1]),
        ip if ip.is_unspecified() => std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    local.set_api_url(format!(
        "http://{}",
        std::net::SocketAddr::new(api_host, addr.port())
    ));
    spawn_sweeper(app.clone(), args.sweep_interval_secs);
    let router = router(app, &args.web_dir);
    tracing::info!(addr = %addr, url = %format!("http://{addr}"), data = %args.data.display(), "listening");
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .context("serving")?;
    // Local agents end with the server; Fly Machines stop on their own when idle.
    local.stop_all().await;
    tracing::info!("stopped");
    Ok(())
}

/// Runs the core's sweep (Trash expiry, version retention, orphans) at start and then every `every_secs` (0: only once).
fn spawn_sweeper(app: App, every_secs: u64) {
    tokio::spawn(async move {
        loop {
            if let Err(e) = cloudos_core::sweep::sweep(&app).await {
                tracing::warn!(error = %e, "sweep failed");
            }
            if every_secs == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_secs(every_secs)).await;
        }
    });
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
