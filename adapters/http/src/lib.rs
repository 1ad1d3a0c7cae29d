//! The HTTP front: PROTOCOL.md on poem + poem-openapi.
//!
//! This crate turns requests into calls of the driving port
//! ([`tooltool_ports::ToolTool`]) and port results into responses; it holds
//! no business rule. Errors become HTTP statuses in one place
//! (`problem.rs`), and every error leaves in the protocol's error shape.
//!
//! Files: `api.rs` (the protocol's operations), `allow.rs` (`Allow` on 405), `dockerflow.rs`
//! (`/__permissions__`, heartbeats, version), `client_script.rs` (`/tooltool.py`), `model.rs` (wire types and
//! request parsing), `resolve.rs` (`POST /fetch`: its body and answer), `params.rs` (digest and search-term parameters), `payload.rs` (exact JSON content types), `auth.rs`
//! (body limit and the caller's principal), `blobs.rs` (the storage
//! routes of the server's own signed URLs), `problem.rs` (error shape and statuses), `security.rs`
//! (the credentials the OpenAPI document declares), `timestamp.rs` (instants as the originals wrote them, documented as `date-time`), `observe.rs` (request
//! log, ids, metrics; the outermost layer), `hygiene.rs` (security headers, set
//! by `observe.rs`), `metrics.rs`
//! (`/metrics`), `serve/` (the connection loop: caps, timeouts, accept
//! backoff, graceful shutdown).

mod allow;
mod api;
mod auth;
mod blobs;
mod client_script;
mod dockerflow;
mod hygiene;
mod metrics;
mod model;
mod observe;
mod params;
mod payload;
mod problem;
mod resolve;
mod security;
pub mod serve;
mod timestamp;

#[cfg(test)]
mod schema_tests;

use std::sync::Arc;

use poem::{Endpoint, EndpointExt, Route, get};
use poem_openapi::OpenApiService;
use tooltool_ports::{Metrics, ToolTool};

pub use client_script::UPSTREAM_CLIENT_SCRIPT;
pub use dockerflow::VersionInfo;
pub use problem::Problem;

/// What the HTTP front needs besides the use cases.
pub struct HttpConfig {
    /// Public base URL, used as the OpenAPI server entry.
    pub public_url: String,
    /// Largest JSON request body accepted, in bytes (413 above).
    pub max_json_body: usize,
    /// Whether X-Forwarded-Host/Port/Proto say what the client addressed.
    pub trust_proxy_headers: bool,
    /// What `/__version__` answers.
    pub version: VersionInfo,
    /// Origins allowed by CORS; empty allows any (without credentials).
    pub cors_origins: Vec<String>,
    /// Told about every request.
    pub metrics: Option<Arc<dyn Metrics>>,
    /// Whether `/metrics` is served here (false when it has its own listener).
    pub serve_metrics: bool,
    /// Where `/tooltool.py` redirects.
    pub client_script_url: String,
    /// The web interface, when served.
    pub browser: Option<Browser>,
}

/// The web interface's endpoint and the paths it answers (the home page
/// and `/ui/…`): served beside the API, inside the same outer layers
/// (request log, metrics, security headers), outside the API's credential
/// check and error shape, since pages answer in HTML.
pub struct Browser {
    pub handles: fn(&str) -> bool,
    pub endpoint: Arc<poem::endpoint::BoxEndpoint<'static>>,
}

/// The operations of the document, with the service behind them (`None`
/// only to render the document, which calls no operation).
type Operations = (
    api::Api,
    dockerflow::Dockerflow,
    client_script::ClientScript,
);

fn openapi(
    service: Option<Arc<dyn ToolTool>>,
    version: VersionInfo,
    public_url: &str,
    client_script_url: &str,
) -> OpenApiService<Operations, ()> {
    let operations = (
        api::Api {
            service: service.clone(),
        },
        dockerflow::Dockerflow { service, version },
        client_script::ClientScript {
            url: client_script_url.to_owned(),
        },
    );
    OpenApiService::new(operations, "tooltool", env!("CARGO_PKG_VERSION"))
        .description(include_str!("openapi_description.md"))
        .server(public_url.trim_end_matches('/').to_owned())
}

/// The OpenAPI document as served at `/openapi.json`, for a given base URL.
pub fn openapi_json(public_url: &str) -> String {
    let version = VersionInfo {
        source: String::new(),
        version: String::new(),
        commit: String::new(),
        build: String::new(),
    };
    openapi(None, version, public_url, UPSTREAM_CLIENT_SCRIPT).spec()
}

/// The whole HTTP application.
pub fn app(service: Arc<dyn ToolTool>, config: HttpConfig) -> impl Endpoint + 'static {
    let api = openapi(
        Some(Arc::clone(&service)),
        config.version.clone(),
        &config.public_url,
        &config.client_script_url,
    );
    let docs = api.swagger_ui();
    let spec = api.spec_endpoint();
    let allow = allow::Allow::new(&api.spec(), allow::BLOB_ROUTES);
    let mut routes = Route::new();
    if config.serve_metrics {
        routes = routes.at("/metrics", get(metrics::metrics));
    }
    let api = routes
        .nest("/", api)
        .at("/openapi.json", spec)
        .nest("/docs", docs)
        .at(
            "/blob/:region/*key",
            get(blobs::get_blob).put(blobs::put_blob),
        )
        .data(Arc::clone(&service))
        .with(auth::AuthLayer {
            service,
            max_json_body: config.max_json_body,
            trust_proxy_headers: config.trust_proxy_headers,
        })
        .catch_all_error(problem::to_problem)
        .with(allow);
    let api = Arc::new(api);
    let browser = config.browser;
    poem::endpoint::make(move |req: poem::Request| {
        let to_browser = browser
            .as_ref()
            .and_then(|b| (b.handles)(req.uri().path()).then(|| Arc::clone(&b.endpoint)));
        let api = Arc::clone(&api);
        async move {
            match to_browser {
                Some(web) => web.get_response(req).await,
                None => api.get_response(req).await,
            }
        }
    })
    // A panic answers 500 in the error shape; the panic itself is
    // reported by the process's panic hook (Sentry).
    .with(poem::middleware::CatchPanic::new().with_handler(|_| problem::panicked()))
    .with(cors(&config.cors_origins))
    .with(observe::Observe {
        metrics: config.metrics.clone(),
        https: config.public_url.starts_with("https://"),
    })
}

/// `/metrics` alone, for a separate listener (`METRICS_LISTEN`).
pub fn metrics_app(service: Arc<dyn ToolTool>) -> impl Endpoint + 'static {
    Route::new()
        .at("/metrics", get(metrics::metrics))
        .data(service)
}

/// CORS as the original's extension: reads from any (or the configured)
/// origin, never with credentials; the headers clients need are exposed.
fn cors(origins: &[String]) -> poem::middleware::Cors {
    let cors = poem::middleware::Cors::new()
        .allow_credentials(false)
        .allow_methods(["GET", "HEAD", "POST", "PUT", "PATCH", "OPTIONS"])
        .allow_headers([
            "Authorization",
            "Authentication",
            "Content-Type",
            "X-Request-Id",
        ])
        .expose_headers(["Location", "X-Retry-After", "X-Request-Id"])
        .max_age(3600);
    origins.iter().fold(cors, |c, o| c.allow_origin(o.as_str()))
}
