//! The connection loop: accepts TCP connections and serves a poem
//! endpoint on each with hyper, with the limits poem's own server lacks
//! (it has no header timeout, no connection cap, and retries a failing
//! `accept` at once, spinning a core while descriptors are exhausted):
//! - admission by [`gate`]: a cap in all and per peer address; a refused
//!   connection gets a 503 in the error shape and is closed;
//! - timeouts by [`watch`]: request headers, keep-alive idle, stalled
//!   transfers;
//! - a paused retry when `accept` fails;
//! - graceful shutdown: stop accepting, let requests in progress finish
//!   within a grace period, then close what is left.

mod gate;
mod watch;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use poem::Endpoint;
use poem::http::StatusCode;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tooltool_ports::Metrics;

pub use gate::Caps;
pub use watch::Timeouts;

use gate::{Backoff, Gate, Refusal, Ticket};
use watch::{RequestGuard, Watch, Watched};

/// How a server treats its connections.
#[derive(Clone)]
pub struct ServeOptions {
    pub timeouts: Timeouts,
    pub caps: Caps,
    /// How long requests in progress may run on after shutdown begins.
    pub grace: Duration,
    /// Told about open connections and early closes.
    pub metrics: Option<Arc<dyn Metrics>>,
}

/// Refused connections answered at once, at most: beyond, they are
/// closed without an answer, so that refusing cannot itself hold
/// descriptors without bound.
const REFUSALS_IN_FLIGHT: usize = 64;
/// How long a refused connection is given to receive its answer.
const REFUSAL_TIME: Duration = Duration::from_secs(1);
/// Repeated warnings (refusals, accept errors) are logged at most this often.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Serves `endpoint` on `listener` until `shutdown` resolves.
///
/// # Errors
/// Only when the listener's own address cannot be read; accept errors
/// are retried after a pause (see [`gate::Backoff`]).
pub async fn serve<E>(
    listener: TcpListener,
    endpoint: E,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()>
where
    E: Endpoint + 'static,
{
    let local = listener.local_addr()?;
    let endpoint = Arc::new(endpoint);
    let gate = Gate::new(options.caps);
    let refusals = Arc::new(tokio::sync::Semaphore::new(REFUSALS_IN_FLIGHT));
    let refusal = Bytes::from(refusal_response());
    let connections = TaskTracker::new();
    let graceful = CancellationToken::new();
    let hard = CancellationToken::new();
    let mut backoff = Backoff::default();
    let (mut accept_warning, mut refusal_warning) = (Every::default(), Every::default());
    tokio::pin!(shutdown);
    tracing::info!(addr = %local, "listening");
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (socket, peer) = match accepted {
            Ok(accepted) => {
                let failures = backoff.succeeded();
                if failures > 0 {
                    tracing::info!(failures, "accepting connections again");
                }
                accepted
            }
            Err(e) => {
                let pause = backoff.failed();
                if accept_warning.due() {
                    tracing::warn!(
                        error = %e,
                        pause_ms = pause.as_millis(),
                        "cannot accept a connection; pausing"
                    );
                }
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(pause) => continue,
                }
            }
        };
        match gate.admit(peer.ip()) {
            Ok(ticket) => {
                if let Some(metrics) = &options.metrics {
                    metrics.connections_open(gate.open() as u64);
                }
                connections.spawn(connection(Connection {
                    socket,
                    local,
                    peer,
                    endpoint: Arc::clone(&endpoint),
                    options: options.clone(),
                    graceful: graceful.clone(),
                    hard: hard.clone(),
                    gate: Arc::clone(&gate),
                    ticket,
                }));
            }
            Err(why) => {
                if let Some(metrics) = &options.metrics {
                    metrics.connection_closed(why.name());
                }
                if refusal_warning.due() {
                    tracing::warn!(
                        peer = %peer.ip(),
                        reason = why.name(),
                        open = gate.open(),
                        "refusing connections: {}",
                        match why {
                            Refusal::Full => "the server holds MAX_CONNECTIONS",
                            Refusal::PeerFull => "this peer holds MAX_CONNECTIONS_PER_PEER",
                        }
                    );
                }
                if let Ok(permit) = Arc::clone(&refusals).try_acquire_owned() {
                    let refusal = refusal.clone();
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(REFUSAL_TIME, refuse(socket, &refusal)).await;
                        drop(permit);
                    });
                }
            }
        }
    }
    drop(listener);
    graceful.cancel();
    connections.close();
    if tokio::time::timeout(options.grace, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            open = gate.open(),
            "closing connections still open after the grace period"
        );
        hard.cancel();
        connections.wait().await;
    }
    Ok(())
}

/// Rate-limits a repeated warning to one per [`WARN_EVERY`].
#[derive(Default)]
struct Every {
    last: Option<Instant>,
}

impl Every {
    fn due(&mut self) -> bool {
        let now = Instant::now();
        match self.last {
            Some(at) if now.duration_since(at) < WARN_EVERY => false,
            _ => {
                self.last = Some(now);
                true
            }
        }
    }
}

/// The answer to a refused connection, in the error shape.
fn refusal_response() -> Vec<u8> {
    let problem = crate::problem::Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "The server has too many connections open (from your address or in all); retry shortly.",
    );
    let body = poem_openapi::types::ToJSON::to_json(&problem)
        .map(|json| json.to_string())
        .unwrap_or_default();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Writes the refusal, then waits for the peer to close (reading what it
/// sent), so that closing with unread data does not reset the connection
/// before the peer has read the answer.
async fn refuse(mut socket: TcpStream, refusal: &[u8]) -> std::io::Result<()> {
    socket.write_all(refusal).await?;
    socket.shutdown().await?;
    let mut sink = [0u8; 4096];
    loop {
        socket.readable().await?;
        match socket.try_read(&mut sink) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
}

struct Connection<E> {
    socket: TcpStream,
    local: SocketAddr,
    peer: SocketAddr,
    endpoint: Arc<E>,
    options: ServeOptions,
    graceful: CancellationToken,
    hard: CancellationToken,
    gate: Arc<Gate>,
    ticket: Ticket,
}

async fn connection<E: Endpoint + 'static>(c: Connection<E>) {
    // Responses are written whole; waiting to coalesce them only adds latency.
    let _ = c.socket.set_nodelay(true);
    let watch = Watch::new();
    let io = TokioIo::new(Watched {
        inner: c.socket,
        watch: Arc::clone(&watch),
    });
    let service = {
        let watch = Arc::clone(&watch);
        let endpoint = c.endpoint;
        let (local, peer) = (c.local, c.peer);
        hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            // Taken before the future runs, so that a request dropped
            // unfinished (the peer left) still ends its phase.
            let guard = watch.begin();
            let endpoint = Arc::clone(&endpoint);
            async move {
                let request = poem::Request::from((
                    request,
                    poem::web::LocalAddr(local.into()),
                    poem::web::RemoteAddr(peer.into()),
                    poem::http::uri::Scheme::HTTP,
                ));
                let response: hyper::Response<_> = endpoint.get_response(request).await.into();
                Ok::<_, Infallible>(response.map(|body| Tracked { body, guard }))
            }
        })
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http2().max_pending_accept_reset_streams(Some(20));
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let timeouts = c.options.timeouts;
    tokio::select! {
        _ = conn.as_mut() => {}
        why = watch.expired(timeouts) => {
            tracing::debug!(peer = %c.peer, reason = why.name(), "closing connection");
            if let Some(metrics) = &c.options.metrics {
                metrics.connection_closed(why.name());
            }
        }
        () = c.graceful.cancelled() => {
            conn.as_mut().graceful_shutdown();
            tokio::select! {
                _ = conn.as_mut() => {}
                () = c.hard.cancelled() => {}
                _ = watch.expired(timeouts) => {}
            }
        }
    }
    drop(c.ticket);
    if let Some(metrics) = &c.options.metrics {
        metrics.connections_open(c.gate.open() as u64);
    }
}

/// A response body that ends its request (see [`watch::RequestGuard`])
/// when hyper is done with it, whether sent in full or abandoned.
struct Tracked<B> {
    body: B,
    guard: RequestGuard,
}

impl<B> hyper::body::Body for Tracked<B>
where
    B: hyper::body::Body + Unpin,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

impl<B> std::fmt::Debug for Tracked<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracked")
            .field("guard", &self.guard)
            .finish()
    }
}
