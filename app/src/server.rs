//! The server loop: the HTTP application of a wired service, served with
//! the background jobs (and `/metrics` on its own listener when asked)
//! until shutdown, which lets in-flight requests finish.

use std::sync::Arc;

use poem::listener::{Listener, TcpAcceptor, TcpListener};

use crate::config::Resolved;
use crate::wiring::Wired;
use crate::{jobs, version_info};

/// The HTTP application of a wired service.
pub fn http_app(wired: &Wired) -> impl poem::Endpoint + 'static {
    let config = &wired.config;
    tooltool_http::app(
        Arc::new(wired.service.clone()),
        tooltool_http::HttpConfig {
            public_url: config.listen.public_url.clone(),
            max_json_body: config.listen.max_request_body,
            trust_proxy_headers: config.auth.trust_proxy_headers,
            version: version_info(),
            cors_origins: config.listen.cors_origins.clone(),
            metrics: Some(Arc::clone(wired.service.metrics())),
            serve_metrics: config.telemetry.metrics_listen.is_none(),
        },
    )
}

/// Logs what runs, in one line (metadata store, storage regions,
/// authenticators, background jobs), then, without holding up start-up,
/// warns about regions the metadata lists copies in that this
/// configuration lacks: downloads from them cannot be served.
pub fn announce(wired: &Wired) {
    let config = &wired.config;
    let summary = config.summary();
    tracing::info!(
        listen = %config.listen.listen,
        public_url = %config.listen.public_url,
        metadata = %summary.metadata,
        storage = %summary.storage,
        auth = %summary.auth,
        jobs = %summary.jobs,
        "tooltool serving"
    );
    let service = wired.service.clone();
    tokio::spawn(async move {
        match service.unconfigured_regions().await {
            Ok(regions) if regions.is_empty() => {}
            Ok(regions) => {
                let list: Vec<String> = regions
                    .iter()
                    .map(|(name, files)| {
                        let plural = if *files == 1 { "" } else { "s" };
                        format!("{name} ({files} file{plural})")
                    })
                    .collect();
                tracing::warn!(
                    regions = %list.join(", "),
                    "the metadata lists copies in regions this configuration lacks; \
                     they cannot be downloaded from there (check LOCAL_REGIONS or S3_REGIONS)"
                );
            }
            Err(e) => tracing::warn!(
                error = &e as &(dyn std::error::Error + 'static),
                "cannot compare the metadata's regions with the configuration"
            ),
        }
    });
}

/// The sockets a server answers on, bound before anything else happens
/// at start-up (see [`bind`]).
pub struct Listeners {
    pub main: TcpAcceptor,
    /// `/metrics` on its own address (`METRICS_LISTEN`).
    pub metrics: Option<TcpAcceptor>,
}

/// Serves until `shutdown` resolves, with the background jobs running (and
/// `/metrics` on its own listener when one is given). In-flight requests
/// get 30 s to finish (Heroku's grace period).
pub async fn serve(
    wired: Wired,
    listeners: Listeners,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stop = tokio_util::sync::CancellationToken::new();
    let metrics_server = match listeners.metrics {
        Some(acceptor) => {
            let app = tooltool_http::metrics_app(Arc::new(wired.service.clone()));
            let stop = stop.clone();
            Some(tokio::spawn(
                poem::Server::new_with_acceptor(acceptor).run_with_graceful_shutdown(
                    app,
                    async move { stop.cancelled().await },
                    Some(std::time::Duration::from_secs(5)),
                ),
            ))
        }
        None => None,
    };
    let jobs = jobs::spawn(&wired.service, &wired.config.jobs);
    let app = http_app(&wired);
    let stop_main = stop.clone();
    tokio::spawn(async move {
        shutdown.await;
        stop_main.cancel();
    });
    let stop_rest = stop.clone();
    let result = poem::Server::new_with_acceptor(listeners.main)
        // Idle keep-alive connections are closed after this long (poem 3.1
        // exposes no separate timeout for reading request headers).
        .idle_timeout(std::time::Duration::from_secs(75))
        .run_with_graceful_shutdown(
            app,
            async move { stop.cancelled().await },
            Some(std::time::Duration::from_secs(30)),
        )
        .await;
    // Also when the main server stopped on its own (an accept error).
    stop_rest.cancel();
    jobs.stop().await;
    if let Some(server) = metrics_server {
        let _ = server.await;
    }
    result
}

/// Binds `LISTEN` (and `METRICS_LISTEN`). Start-up does this first, so
/// that an address in use stops it before a data directory is created or
/// a database migrated.
///
/// # Errors
/// One line naming the variable, the address and the system's reason.
pub async fn bind(config: &Resolved) -> Result<Listeners, String> {
    async fn one(variable: &str, addr: std::net::SocketAddr) -> Result<TcpAcceptor, String> {
        TcpListener::bind(addr)
            .into_acceptor()
            .await
            .map_err(|e| format!("{variable}: cannot listen on {addr}: {e}"))
    }
    Ok(Listeners {
        main: one("LISTEN", config.listen.listen).await?,
        metrics: match config.telemetry.metrics_listen {
            Some(addr) => Some(one("METRICS_LISTEN", addr).await?),
            None => None,
        },
    })
}
