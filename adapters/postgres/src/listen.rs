//! File changes heard from the database: one dedicated session per store
//! LISTENs on the channel the triggers of `V5__file_changes.sql` notify
//! (every committed change of a file's visibility, size, instances or
//! existence, by any process), and reports each digest to the sink.
//!
//! The session is outside the pool (a pooled connection is recycled, and
//! LISTEN belongs to one session). When it ends, or stops answering the
//! ping, notifications may have been missed: the sink is told at once
//! (`interrupted`), and only once the new session LISTENs again is it told
//! `watching` (which drops everything it held). So the staleness is the
//! notification's latency while the session lives, and at most
//! [`PING_EVERY`] + [`PING_TIMEOUT`] when it dies without closing its
//! socket (a network partition).

use std::sync::Weak;
use std::time::Duration;

use futures_util::StreamExt;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{AsyncMessage, Socket};
use tooltool_domain::Digest;
use tooltool_ports::FileChanges;

/// Appended to the pool's `application_name` for the listening session
/// (`tooltool-listener` by default).
pub const APPLICATION_SUFFIX: &str = "-listener";

/// The channel the triggers notify, the digest as payload.
pub(crate) const CHANNEL: &str = "tooltool_files";

/// How often the session proves it is alive.
pub(crate) const PING_EVERY: Duration = Duration::from_secs(1);
/// How long a ping may take before the session counts as lost.
pub(crate) const PING_TIMEOUT: Duration = Duration::from_secs(1);

/// The longest wait between attempts to listen again.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Listens until `sink` is dropped, reconnecting with backoff.
pub(crate) async fn run<T>(config: tokio_postgres::Config, tls: T, sink: Weak<dyn FileChanges>)
where
    T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
    T::Stream: Send + 'static,
    T::TlsConnect: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    let mut backoff = Duration::from_millis(50);
    loop {
        match session(&config, tls.clone(), &sink).await {
            // It listened, then lost the session: from now on changes may
            // be missed, until the next session listens. Try again at once.
            Ok(()) => {
                let Some(alive) = sink.upgrade() else { return };
                alive.interrupted();
                backoff = Duration::from_millis(50);
            }
            // It never listened (the sink was told nothing new: it is not
            // watching since the last interruption, or since it started).
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for file changes; cached file records are not used until it can");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
        if sink.strong_count() == 0 {
            return;
        }
    }
}

/// One session: connects, LISTENs, says `watching`, then reports every
/// notification until the connection ends or a ping fails (`Ok`, and the
/// caller says `interrupted` at once); `Err` when it never listened.
async fn session<T>(
    config: &tokio_postgres::Config,
    tls: T,
    sink: &Weak<dyn FileChanges>,
) -> Result<(), tokio_postgres::Error>
where
    T: MakeTlsConnect<Socket> + Send + 'static,
    T::Stream: Send + 'static,
    T::TlsConnect: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    let (client, mut connection) = config.connect(tls).await?;
    // The connection's messages, notifications among them, are read by one
    // task that reports each as it comes, whatever the ping loop is doing;
    // the loop below returns as soon as that task ends (the connection
    // ended), so nothing cached is served while nobody listens.
    let mut messages = {
        let sink = sink.clone();
        let mut stream = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        tokio::spawn(async move {
            loop {
                match stream.next().await {
                    Some(Ok(AsyncMessage::Notification(n))) => {
                        let Some(sink) = sink.upgrade() else { return };
                        match Digest::parse(n.payload()) {
                            Ok(digest) => sink.changed(&digest),
                            // Not a digest: something changed that cannot
                            // be named, so nothing held is trusted.
                            Err(_) => {
                                sink.interrupted();
                                sink.watching();
                            }
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "the session listening for file changes ended");
                        break;
                    }
                    None => break,
                }
            }
        })
    };
    let result = async {
        client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
        let Some(alive) = sink.upgrade() else {
            return Ok(());
        };
        // From here on this session's end is reported (`Ok`).
        alive.watching();
        drop(alive);
        let mut ticks = tokio::time::interval(PING_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut messages => return Ok(()),
                _ = ticks.tick() => {}
            }
            if sink.strong_count() == 0 {
                return Ok(());
            }
            match tokio::time::timeout(PING_TIMEOUT, client.simple_query("")).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "the session listening for file changes failed");
                    return Ok(());
                }
                Err(_) => {
                    tracing::warn!("the session listening for file changes stopped answering");
                    return Ok(());
                }
            }
        }
    }
    .await;
    messages.abort();
    result
}
