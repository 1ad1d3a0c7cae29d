//! Per-connection timeouts, which hyper and poem leave to us: hyper's own
//! header timer also runs while a keep-alive connection waits for its
//! next request, so one value would either close idle keep-alive
//! connections too early for proxies in front of us or let a slowloris
//! peer trickle its headers for as long.
//!
//! A connection is in one of three phases:
//! - **headers**: from the connection's first moment, or from the first
//!   byte after an idle pause, until a request's headers are complete
//!   (hyper calls the service): closed `header_timeout` after it began,
//!   however many bytes trickle in;
//! - **busy**: at least one request is being served (its body read or its
//!   response written): closed after `idle_timeout` without a byte moving
//!   either way (a stalled upload, a reader that stopped reading);
//! - **idle**: keep-alive between requests: closed `idle_timeout` after the
//!   last response ended.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// The two limits a [`Watch`] enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub header: Duration,
    pub idle: Duration,
}

/// Why a watched connection was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Request headers not complete in time.
    Headers,
    /// Keep-alive connection without a new request.
    Idle,
    /// A request in progress moved no byte.
    Stalled,
}

impl Expiry {
    /// The metric and log name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Headers => "header_timeout",
            Self::Idle => "idle_timeout",
            Self::Stalled => "stalled",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Headers,
    Busy,
    Idle,
}

#[derive(Debug)]
struct State {
    phase: Phase,
    /// When the phase began.
    since: Instant,
    /// When a byte last moved (read or written).
    last_io: Instant,
    /// Requests whose response has not finished.
    in_flight: u32,
}

/// The phase of one connection, updated by its socket ([`Watched`]), by
/// the service when a request's headers are complete ([`Watch::begin`])
/// and when its response ends ([`RequestGuard`]'s drop).
#[derive(Debug)]
pub struct Watch {
    state: Mutex<State>,
}

impl Watch {
    /// A connection just accepted: its first request's headers are due.
    pub fn new() -> Arc<Self> {
        let now = Instant::now();
        Arc::new(Self {
            state: Mutex::new(State {
                phase: Phase::Headers,
                since: now,
                last_io: now,
                in_flight: 0,
            }),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        // A panic elsewhere cannot leave `State` inconsistent (plain
        // assignments), so a poisoned lock is still good.
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn moved(&self, read: bool) {
        let now = Instant::now();
        self.with(|s| {
            s.last_io = now;
            if read && s.phase == Phase::Idle {
                s.phase = Phase::Headers;
                s.since = now;
            }
        });
    }

    /// A request's headers are complete; the returned guard ends the
    /// request when dropped (with its response body, or with the
    /// connection).
    pub fn begin(self: &Arc<Self>) -> RequestGuard {
        self.with(|s| {
            s.in_flight += 1;
            s.phase = Phase::Busy;
        });
        RequestGuard(Arc::clone(self))
    }

    fn deadline(&self, limits: Timeouts) -> (Instant, Expiry) {
        self.with(|s| match s.phase {
            Phase::Headers => (s.since + limits.header, Expiry::Headers),
            Phase::Idle => (s.since + limits.idle, Expiry::Idle),
            Phase::Busy => (s.last_io + limits.idle, Expiry::Stalled),
        })
    }

    /// Resolves when the connection has outstayed its phase's limit.
    pub async fn expired(&self, limits: Timeouts) -> Expiry {
        loop {
            let (deadline, why) = self.deadline(limits);
            if Instant::now() >= deadline {
                return why;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// One request in progress (see [`Watch::begin`]).
#[derive(Debug)]
pub struct RequestGuard(Arc<Watch>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let now = Instant::now();
        self.0.with(|s| {
            s.in_flight = s.in_flight.saturating_sub(1);
            if s.in_flight == 0 {
                s.phase = Phase::Idle;
                s.since = now;
            }
        });
    }
}

/// A socket that tells its [`Watch`] whenever a byte moves.
#[derive(Debug)]
pub struct Watched<Io> {
    pub inner: Io,
    pub watch: Arc<Watch>,
}

impl<Io: AsyncRead + Unpin> AsyncRead for Watched<Io> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.watch.moved(true);
        }
        result
    }
}

impl<Io: AsyncWrite + Unpin> AsyncWrite for Watched<Io> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.watch.moved(false);
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.watch.moved(false);
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Timeouts = Timeouts {
        header: Duration::from_secs(10),
        idle: Duration::from_secs(75),
    };

    async fn expiry_after(watch: &Watch) -> (Expiry, Duration) {
        let start = Instant::now();
        let why = watch.expired(LIMITS).await;
        (why, start.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_connection_has_the_header_timeout() {
        let watch = Watch::new();
        assert_eq!(
            expiry_after(&watch).await,
            (Expiry::Headers, Duration::from_secs(10))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn trickled_bytes_do_not_extend_the_header_timeout() {
        let watch = Watch::new();
        let trickle = {
            let watch = Arc::clone(&watch);
            async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    watch.moved(true);
                }
            }
        };
        let why = tokio::select! {
            why = expiry_after(&watch) => why,
            () = trickle => unreachable!(),
        };
        assert_eq!(why, (Expiry::Headers, Duration::from_secs(10)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_progress_lives_while_bytes_move() {
        let watch = Watch::new();
        let guard = watch.begin();
        let start = Instant::now();
        // A response written every 60 s, four times, then nothing.
        let writer = {
            let watch = Arc::clone(&watch);
            async move {
                for _ in 0..4 {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    watch.moved(false);
                }
                std::future::pending::<()>().await;
            }
        };
        let why = tokio::select! {
            why = watch.expired(LIMITS) => why,
            () = writer => unreachable!(),
        };
        assert_eq!(
            (why, start.elapsed()),
            (Expiry::Stalled, Duration::from_secs(240 + 75))
        );
        drop(guard);
    }

    #[tokio::test(start_paused = true)]
    async fn keep_alive_waits_the_idle_timeout_then_headers_are_due() {
        let watch = Watch::new();
        drop(watch.begin());
        tokio::time::sleep(Duration::from_secs(30)).await;
        // Idle since the response ended: 75 s from then.
        assert_eq!(
            expiry_after(&watch).await,
            (Expiry::Idle, Duration::from_secs(45))
        );
        // A byte of the next request starts its header clock.
        watch.moved(true);
        assert_eq!(
            expiry_after(&watch).await,
            (Expiry::Headers, Duration::from_secs(10))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_connection_is_busy_until_its_last_request_ends() {
        let watch = Watch::new();
        let first = watch.begin();
        let second = watch.begin();
        drop(first);
        tokio::time::sleep(Duration::from_secs(20)).await;
        watch.moved(true); // more of the second request's body
        assert_eq!(
            expiry_after(&watch).await,
            (Expiry::Stalled, Duration::from_secs(75))
        );
        drop(second);
        assert_eq!(
            expiry_after(&watch).await,
            (Expiry::Idle, Duration::from_secs(75))
        );
    }
}
