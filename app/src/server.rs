//! The server loop: the HTTP application of a wired service, served with
//! the background jobs (and `/metrics` on its own listener when asked)
//! until shutdown, which lets in-flight requests finish.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tooltool_http::serve::{Caps, ServeOptions, Timeouts};

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
            client_script_url: config.listen.client_script_url.clone(),
            browser: Some(tooltool_http::Browser {
                handles: tooltool_web::is_browser_path,
                endpoint: Arc::new(poem::EndpointExt::boxed(tooltool_web::routes(
                    Arc::new(wired.service.clone()),
                    tooltool_web::WebConfig {
                        bug_url: config.web.bug_tracker_url.clone(),
                        public_url: config.listen.public_url.trim_end_matches('/').to_owned(),
                        sessions: tooltool_web::Sessions::new(
                            wired.session_key.clone(),
                            config.web.session_lifetime,
                            config.listen.public_url.starts_with("https://"),
                        ),
                    },
                ))),
            }),
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
/// at start-up (see [`bind`]), and how many connections they may hold.
pub struct Listeners {
    pub main: TcpListener,
    /// `/metrics` on its own address (`METRICS_LISTEN`).
    pub metrics: Option<TcpListener>,
    /// `MAX_CONNECTIONS`, or what the open-file limit allows.
    pub max_connections: usize,
}

/// Connections the default `MAX_CONNECTIONS` allows at most.
const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// Descriptors kept for everything but client connections: database
/// connections, files being read or written, refusals in flight.
const RESERVED_FILES: u64 = 256;

/// Serves until `shutdown` resolves, with the background jobs running (and
/// `/metrics` on its own listener when one is given). In-flight requests
/// get 30 s to finish (Heroku's grace period).
pub async fn serve(
    wired: Wired,
    listeners: Listeners,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listen = &wired.config.listen;
    // Only the main listener reports its connections: the gauge is one
    // number, and `/metrics` on its own address is the scraper's alone.
    let options = |grace, metrics: Option<Arc<dyn tooltool_ports::Metrics>>| ServeOptions {
        timeouts: Timeouts {
            header: listen.header_timeout,
            idle: listen.idle_timeout,
        },
        caps: Caps {
            total: listeners.max_connections,
            per_peer: listen.max_connections_per_peer,
        },
        grace,
        metrics,
    };
    let stop = tokio_util::sync::CancellationToken::new();
    let metrics_server = match listeners.metrics {
        Some(listener) => {
            let app = tooltool_http::metrics_app(Arc::new(wired.service.clone()));
            let stop = stop.clone();
            Some(tokio::spawn(tooltool_http::serve::serve(
                listener,
                app,
                options(Duration::from_secs(5), None),
                async move { stop.cancelled().await },
            )))
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
    let result = tooltool_http::serve::serve(
        listeners.main,
        app,
        options(
            Duration::from_secs(30),
            Some(Arc::clone(wired.service.metrics())),
        ),
        async move { stop.cancelled().await },
    )
    .await;
    stop_rest.cancel();
    jobs.stop().await;
    if let Some(server) = metrics_server {
        let _ = server.await;
    }
    result
}

/// Binds `LISTEN` (and `METRICS_LISTEN`) and settles `MAX_CONNECTIONS`
/// against the open-file limit (raised to its hard limit first). Start-up
/// does this first, so that an address in use stops it before a data
/// directory is created or a database migrated.
///
/// # Errors
/// One line naming the variable, the address and the system's reason.
pub async fn bind(config: &Resolved) -> Result<Listeners, String> {
    async fn one(variable: &str, addr: std::net::SocketAddr) -> Result<TcpListener, String> {
        TcpListener::bind(addr)
            .await
            .map_err(|e| format!("{variable}: cannot listen on {addr}: {e}"))
    }
    let max_connections = max_connections(config.listen.max_connections, open_file_limit())?;
    Ok(Listeners {
        main: one("LISTEN", config.listen.listen).await?,
        metrics: match config.telemetry.metrics_listen {
            Some(addr) => Some(one("METRICS_LISTEN", addr).await?),
            None => None,
        },
        max_connections,
    })
}

/// The soft open-file limit, raised to the hard one: a server's
/// connections are its descriptors, and the usual soft default (1024) is
/// far below what the system allows.
fn open_file_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise the open-file limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
        }
    }
}

/// `MAX_CONNECTIONS` as asked, or its default, within `file_limit`.
fn max_connections(asked: Option<usize>, file_limit: u64) -> Result<usize, String> {
    let room = usize::try_from(file_limit.saturating_sub(RESERVED_FILES)).unwrap_or(usize::MAX);
    match asked {
        None if room == 0 => Err(format!(
            "the open-file limit ({file_limit}) leaves no room for connections; raise it (ulimit -n)"
        )),
        None => Ok(room.min(DEFAULT_MAX_CONNECTIONS)),
        Some(n) if n > room => Err(format!(
            "MAX_CONNECTIONS: {n} connections need {} open files, but the limit is {file_limit}; \
             raise it (ulimit -n) or lower MAX_CONNECTIONS",
            n as u64 + RESERVED_FILES
        )),
        Some(n) => Ok(n),
    }
}

#[cfg(test)]
mod tests {
    use super::max_connections;

    #[test]
    fn max_connections_fits_the_open_file_limit() {
        assert_eq!(max_connections(None, 1_048_576), Ok(4096));
        assert_eq!(max_connections(None, 1024), Ok(768));
        assert_eq!(max_connections(Some(100), 1024), Ok(100));
        assert_eq!(max_connections(Some(768), 1024), Ok(768));
        let refused = max_connections(Some(769), 1024).expect_err("beyond the limit");
        assert!(
            refused.starts_with(
                "MAX_CONNECTIONS: 769 connections need 1025 open files, but the limit is 1024"
            ),
            "{refused}"
        );
        assert!(max_connections(None, 200).is_err());
    }
}
