//! Logs (`tracing`, text or JSON) and Sentry. Error-level events become
//! Sentry events and lower levels breadcrumbs, through the tracing layer,
//! so the rest of the code only ever logs.

use std::borrow::Cow;

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

/// Sentry options for `dsn`, tagged with the environment and this build's
/// release; personal data (IPs, headers) is never sent.
///
/// # Errors
/// An invalid DSN, as one line naming SENTRY_DSN.
pub fn sentry_options(dsn: &str, environment: &str) -> Result<sentry::ClientOptions, String> {
    let dsn: sentry::types::Dsn = dsn
        .parse()
        .map_err(|e| format!("SENTRY_DSN: not a valid DSN ({e})"))?;
    let version = crate::version_info();
    let mut options = sentry::ClientOptions::default();
    options.dsn = Some(dsn);
    options.release = Some(Cow::Owned(format!(
        "tooltool@{}+{}",
        version.version, version.commit
    )));
    options.environment = Some(Cow::Owned(environment.to_owned()));
    options.send_default_pii = false;
    options.attach_stacktrace = true;
    Ok(options)
}

/// What must live as long as the process: dropping it flushes the log
/// lines still queued and Sentry's events.
pub struct TelemetryGuard {
    _log: tracing_appender::non_blocking::WorkerGuard,
    _sentry: Option<sentry::ClientInitGuard>,
}

/// Bytes of log lines gathered into one write to standard error.
const LOG_BUFFER: usize = 64 * 1024;

/// Installs the global subscriber (and Sentry when `sentry` is given);
/// keep the guard alive for the life of the process so events are flushed.
///
/// Log lines are written to standard error by a thread of their own: a
/// request formats its line and queues it, and never waits for the write
/// (a pipe to a slow log collector would otherwise stall the workers);
/// that thread writes what is queued in one go and flushes when the
/// queue is empty, so no line waits for more to come.
/// The queue holds 128 Ki lines; when it is full, requests wait for room
/// rather than lose lines.
pub fn install(level: &str, format: &str, sentry: Option<sentry::ClientOptions>) -> TelemetryGuard {
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (writer, log_guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("tooltool-log")
        // Buffered: the writer thread takes every line queued, then
        // flushes once, so a busy server makes one write per batch rather
        // than a system call per line (measured: a quarter of the 400
        // path's time went to the log line, a fifth of it to these writes).
        .finish(std::io::BufWriter::with_capacity(
            LOG_BUFFER,
            std::io::stderr(),
        ));
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(ansi)
        .with_writer(writer);
    let fmt = if format == "json" {
        fmt.json().boxed()
    } else {
        fmt.boxed()
    };
    let guard = sentry.map(sentry::init);
    // Errors become events; what led to them rides along as breadcrumbs.
    let sentry_layers = guard.as_ref().map(|_| {
        use sentry::integrations::tracing::{BreadcrumbLayer, ErrorLayer};
        ErrorLayer::new()
            .with_filter(LevelFilter::ERROR)
            .and_then(BreadcrumbLayer::new().with_filter(LevelFilter::INFO))
    });
    tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .with(sentry_layers)
        .init();
    TelemetryGuard {
        _log: log_guard,
        _sentry: guard,
    }
}
