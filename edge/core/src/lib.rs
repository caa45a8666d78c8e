//! Cloud OS, host-agnostic: the router and product rules over narrow ports.
//!
//! Never names a cloud vendor, an async runtime or a filesystem path: the native server
//! and the Cloudflare Worker both call [`router`] with their own adapters.
#![forbid(unsafe_code)]

pub mod auth;
pub mod config;
pub mod desktop;
pub mod error;
pub mod events;
pub mod files;
pub mod ids;
pub mod locks;
pub mod metrics;
pub mod notifications;
pub mod ports;
pub mod rooms;
pub mod sandboxes;
pub mod schema;
pub mod shares;
pub mod sweep;
pub mod sync;

use std::sync::{Arc, OnceLock};

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap};
use axum::response::IntoResponse;
use axum::{Json, Router};
use cloudos_proto::Health;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use config::Config;
pub use error::ApiError;
pub use ports::Ports;

/// The product with its ports and settings: the state of every handler.
#[derive(Clone)]
pub struct App {
    pub ports: Ports,
    pub config: Arc<Config>,
    /// Request counters for `GET /metrics`; `None` on a host whose processes share none
    /// (a Worker's isolates), where `/metrics` says so.
    pub metrics: Option<Arc<metrics::Metrics>>,
}

impl App {
    /// The product over the given ports.
    pub fn new(ports: Ports, config: Config) -> Self {
        App {
            ports,
            config: Arc::new(config),
            metrics: Some(Arc::new(metrics::Metrics::default())),
        }
    }

    /// The same product without request counters (see [`App::metrics`]).
    pub fn without_metrics(mut self) -> Self {
        self.metrics = None;
        self
    }

    /// Now, from the host's clock.
    pub fn now_ms(&self) -> i64 {
        self.ports.clock.now_ms()
    }

    /// Brings the metadata store's schema up to date.
    pub async fn migrate(&self) -> Result<Vec<i64>, ports::DbError> {
        schema::migrate(self.ports.meta.as_ref(), schema::MIGRATIONS, self.now_ms()).await
    }
}

/// Milliseconds since the epoch as RFC 3339 (UTC).
pub fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// `scheme://host` for absolute URLs in answers: the configured public URL, else the
/// request's `Host`. `X-Forwarded-Host` is never trusted (anyone may send it, and a cache
/// in front would then serve links to their host); `X-Forwarded-Proto` only picks between
/// http and https.
pub(crate) fn origin(app: &App, headers: &HeaderMap) -> String {
    if let Some(url) = &app.config.public_url {
        return url.clone();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    let scheme = match headers.get("x-forwarded-proto").map(|v| v.as_bytes()) {
        Some(b"https") => "https",
        _ => "http",
    };
    format!("{scheme}://{host}")
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Cloud OS API", description = "The public API of Cloud OS (see shared/API.md)."),
    modifiers(&BearerAuth),
    tags((name = "auth"), (name = "files"), (name = "shares"), (name = "desktop"), (name = "notifications"), (name = "sandboxes"), (name = "ops"))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// `GET /healthz`
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

/// `GET /metrics` (Prometheus text format; native hosts only)
#[utoipa::path(get, path = "/metrics", tag = "ops", responses(
    (status = 200, description = "Prometheus text", content_type = "text/plain"),
    (status = 501, body = cloudos_proto::Problem, description = "this host keeps no counters (the Cloudflare Worker: use Workers analytics)")))]
async fn metrics_text(
    State(app): State<App>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    if let Some(token) = &app.config.metrics_token {
        use subtle::ConstantTimeEq;
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !bool::from(given.as_bytes().ct_eq(token.as_bytes())) {
            return Err(ApiError::new(
                axum::http::StatusCode::UNAUTHORIZED,
                "unauthorized",
                "GET /metrics needs the metrics token (CLOUDOS_METRICS_TOKEN) as a bearer token",
            ));
        }
    }
    let metrics = app.metrics.as_ref().ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::NOT_IMPLEMENTED,
            "metrics-unavailable",
            "this host keeps no request counters (its instances share none); use the platform's analytics",
        )
    })?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics.render(),
    ))
}

/// `GET /openapi.json`
#[utoipa::path(get, path = "/openapi.json", tag = "ops", responses((status = 200, description = "this document", content_type = "application/json")))]
async fn openapi_json() -> impl IntoResponse {
    static DOC: OnceLock<String> = OnceLock::new();
    let doc = DOC.get_or_init(|| openapi().to_pretty_json().expect("the document serializes"));
    ([(header::CONTENT_TYPE, "application/json")], doc.as_str())
}

/// The 404 problem for paths no route serves (hosts use it behind their static files).
pub async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint")
}

/// The OpenAPI document and the routes it describes, before state is attached.
fn api() -> (Router<App>, utoipa::openapi::OpenApi) {
    // Uploads stream through the quota check, so the default 2 MB body limit is lifted here only.
    let uploads = OpenApiRouter::new()
        .routes(routes!(files::handlers::upload, files::handlers::list))
        .routes(routes!(
            files::handlers::download,
            files::handlers::replace_content
        ))
        .layer(DefaultBodyLimit::disable());
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(healthz))
        .routes(routes!(metrics_text))
        .routes(routes!(openapi_json))
        .routes(routes!(auth::handlers::signup))
        .routes(routes!(auth::handlers::login))
        .routes(routes!(auth::handlers::ticket))
        .routes(routes!(auth::handlers::logout))
        .routes(routes!(auth::handlers::me))
        .routes(routes!(files::handlers::create_folder))
        .routes(routes!(files::handlers::search))
        .routes(routes!(files::recovery::versions))
        .routes(routes!(files::recovery::version_content))
        .routes(routes!(files::recovery::restore_version))
        .routes(routes!(files::recovery::remove_version))
        .routes(routes!(
            files::recovery::list_trash,
            files::recovery::empty_trash
        ))
        .routes(routes!(files::recovery::restore_trashed))
        .routes(routes!(files::recovery::purge_trashed))
        .routes(routes!(files::handlers::ancestors))
        .routes(routes!(sync::handlers::tree))
        .routes(routes!(sync::handlers::report))
        .routes(routes!(desktop::handlers::apps))
        .routes(routes!(
            desktop::handlers::get_layout,
            desktop::handlers::put_layout
        ))
        .routes(routes!(notifications::handlers::list))
        .routes(routes!(notifications::handlers::mark_read))
        .routes(routes!(sandboxes::handlers::create))
        .routes(routes!(
            sandboxes::handlers::get,
            sandboxes::handlers::delete
        ))
        .routes(routes!(sandboxes::handlers::share))
        .routes(routes!(sandboxes::handlers::shares))
        .routes(routes!(shares::handlers::delete))
        .routes(routes!(shares::handlers::share_file))
        .routes(routes!(shares::handlers::file_shares))
        .routes(routes!(
            locks::handlers::take,
            locks::handlers::get,
            locks::handlers::release
        ))
        .routes(routes!(shares::handlers::public))
        .routes(routes!(shares::handlers::public_content))
        .routes(routes!(shares::handlers::unlock))
        .routes(routes!(sandboxes::terminal::attach))
        .routes(routes!(events::socket))
        .routes(routes!(rooms::handlers::socket))
        .routes(routes!(
            files::handlers::get_file,
            files::handlers::patch,
            files::handlers::delete
        ))
        .merge(uploads)
        .split_for_parts()
}

/// The OpenAPI document of every route.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().1
}

/// The whole product as one router; hosts add static assets and transport concerns.
pub fn router(app: App) -> Router {
    api()
        .0
        .fallback(not_found)
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            metrics::track,
        ))
        .with_state(app)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_milliseconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }
}
