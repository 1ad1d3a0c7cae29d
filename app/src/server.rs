//! The server loop: the HTTP application of a wired service, served with
//! the background jobs (and `/metrics` on its own listener when asked)
//! until shutdown, which lets in-flight requests finish.

use std::sync::Arc;

use poem::listener::{Acceptor, Listener, TcpListener};

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

/// Serves until `shutdown` resolves, with the background jobs running (and
/// `/metrics` on its own listener when `METRICS_LISTEN` is set). In-flight
/// requests get 30 s to finish (Heroku's grace period).
pub async fn serve<A: Acceptor + 'static>(
    wired: Wired,
    acceptor: A,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stop = tokio_util::sync::CancellationToken::new();
    let metrics_server = match wired.config.telemetry.metrics_listen {
        Some(addr) => {
            let acceptor = TcpListener::bind(addr).into_acceptor().await.map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("METRICS_LISTEN: cannot listen on {addr}: {e}"),
                )
            })?;
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
    let result = poem::Server::new_with_acceptor(acceptor)
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

/// Binds the configured address.
pub async fn bind(config: &Resolved) -> std::io::Result<impl Acceptor + 'static> {
    TcpListener::bind(config.listen.listen)
        .into_acceptor()
        .await
}
