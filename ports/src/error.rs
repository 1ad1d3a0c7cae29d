//! The error of the driving port, in the use cases' own words, and what
//! every port error keeps: its cause, as a `source`, so that logs and
//! Sentry show the whole chain rather than a flattened string.

use std::fmt;

/// The cause of a port error: the adapter's native error (SQL, io, SDK),
/// opaque to everyone past the port, or a sentence where there is none.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Renders an error with its chain of sources, `outer: inner: innermost`
/// (each without a final period, so sentences join), for the one-line
/// messages a person reads (start-up, CLI commands). Logs record errors as
/// values instead (`error = &e as &dyn Error`).
#[derive(Clone, Copy)]
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut error = Some(self.0);
        let mut separator = "";
        while let Some(e) = error {
            let text = e.to_string();
            write!(f, "{separator}{}", text.trim_end_matches('.'))?;
            separator = ": ";
            error = e.source();
        }
        Ok(())
    }
}

impl fmt::Debug for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A sentence saying where something failed, over the error that failed
/// it: the cause adapters keep when the native error alone would not say
/// what was being done (`cannot open /data/tooltool.sqlite3`, `copy object`).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Context {
    message: String,
    #[source]
    source: Cause,
}

impl Context {
    pub fn new(message: impl Into<String>, source: impl Into<Cause>) -> Self {
        Self {
            message: message.into(),
            source: source.into(),
        }
    }
}

/// What went wrong in a use case. The driving adapters hold the one table
/// from kind to their own answer (an HTTP status, a page).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The input breaks a rule: malformed, inconsistent with what is stored,
    /// or content that does not match its declaration.
    Invalid,
    /// Credentials are needed but missing, or present and not acceptable.
    NotAuthenticated,
    /// The caller is known but may not do this (a missing scope, a signed
    /// URL that does not grant it).
    Denied,
    NotFound,
    /// In progress: the same request may succeed later.
    NotYet,
    /// What the request addresses is no longer open (a settled upload slot).
    Closed,
    /// A declared size (or a body) above what this server accepts.
    TooLarge,
    /// A byte range outside the object.
    OutOfRange,
    /// A dependency (database, storage, an authentication service) cannot
    /// be reached; retrying later may succeed.
    Unavailable,
    /// The storage or the database has no space left for what the request
    /// writes; nothing was kept.
    OutOfSpace,
    /// A fault of this server (a bug, an inconsistent deployment).
    Internal,
}

impl ErrorKind {
    /// Whether the fault is the server's (its cause is logged, and the
    /// caller only learns that something failed).
    pub fn is_server_fault(self) -> bool {
        matches!(self, Self::Unavailable | Self::OutOfSpace | Self::Internal)
    }
}

/// A failed use case: its kind, a sentence the caller may be shown, and
/// the cause behind it (for logs, never shown).
#[derive(Debug)]
pub struct UseCaseError {
    kind: ErrorKind,
    message: String,
    source: Option<Cause>,
}

/// What callers are told when the server is at fault: the cause may name
/// hosts, queries or paths, so it goes to the logs only.
pub const UNAVAILABLE_MESSAGE: &str =
    "A service this server depends on is unavailable; retry in a moment.";
/// What a request for a URL that names nothing is told, whatever made it
/// unknown (a route, a region, a store, a key): the original's wording.
pub const URL_NOT_FOUND_MESSAGE: &str = "The requested URL was not found on the server.";
pub const INTERNAL_MESSAGE: &str = "The server failed to handle this request; it has been logged.";
/// What a request that found the storage or the database full is told.
pub const OUT_OF_SPACE_MESSAGE: &str =
    "The server is out of storage space; nothing was kept. Retry later.";
/// Free space below which a store's health check fails: at most this, or
/// a twentieth of a small file system, whichever is less.
pub const LOW_SPACE_BYTES: u64 = 64 << 20;

/// Whether a file system with `total` bytes and `available` free is low on
/// space (see [`LOW_SPACE_BYTES`]).
pub fn is_low_on_space(available: u64, total: u64) -> bool {
    available < LOW_SPACE_BYTES.min(total / 20)
}

/// What a store on a local file system says in its health check when the
/// file system holding `path` is low on space (see [`is_low_on_space`]);
/// `None` when there is room, or when the system cannot tell.
pub fn low_space_at(path: &std::path::Path) -> Option<String> {
    let stat = rustix::fs::statvfs(path).ok()?;
    let available = stat.f_bavail.saturating_mul(stat.f_frsize);
    let total = stat.f_blocks.saturating_mul(stat.f_frsize);
    is_low_on_space(available, total).then(|| {
        format!(
            "{} is almost full: {} KiB free of {} KiB",
            path.display(),
            available >> 10,
            total >> 10
        )
    })
}

/// Whether `error`, or an error it was caused by, is an I/O error saying
/// the disk or a quota is full.
pub fn is_out_of_space(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
            )
        {
            return true;
        }
        next = e.source();
    }
    false
}

impl UseCaseError {
    /// A refusal whose `message` is shown to the caller as is; it MUST NOT
    /// carry secrets. Server faults are made with
    /// [`UseCaseError::unavailable`] and [`UseCaseError::internal`].
    fn refusal(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::refusal(ErrorKind::Invalid, message)
    }

    pub fn not_authenticated(message: impl Into<String>) -> Self {
        Self::refusal(ErrorKind::NotAuthenticated, message)
    }

    pub fn denied(message: impl Into<String>) -> Self {
        Self::refusal(ErrorKind::Denied, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::refusal(ErrorKind::NotFound, message)
    }

    pub fn not_yet(message: impl Into<String>) -> Self {
        Self::refusal(ErrorKind::NotYet, message)
    }

    pub fn closed(message: impl Into<String>) -> Self {
        Self::refusal(ErrorKind::Closed, message)
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Self::refusal(ErrorKind::TooLarge, message)
    }

    pub fn out_of_range(message: impl Into<String>) -> Self {
        Self::refusal(ErrorKind::OutOfRange, message)
    }

    /// A dependency failed; the caller is told to retry, the cause is logged.
    pub fn unavailable(cause: impl Into<Cause>) -> Self {
        Self::refusal(ErrorKind::Unavailable, UNAVAILABLE_MESSAGE).caused_by(cause)
    }

    /// [`UseCaseError::unavailable`] with a sentence of its own, for a
    /// dependency the caller should know about (e.g. the authentication
    /// service); `message` MUST NOT carry the cause's details.
    pub fn unavailable_because(message: impl Into<String>, cause: impl Into<Cause>) -> Self {
        Self::refusal(ErrorKind::Unavailable, message).caused_by(cause)
    }

    /// The storage or the database is full; the caller is told so, and
    /// nothing of the cause.
    pub fn out_of_space(cause: impl Into<Cause>) -> Self {
        Self::refusal(ErrorKind::OutOfSpace, OUT_OF_SPACE_MESSAGE).caused_by(cause)
    }

    /// A fault of this server; the caller learns nothing of the cause.
    pub fn internal(cause: impl Into<Cause>) -> Self {
        Self::refusal(ErrorKind::Internal, INTERNAL_MESSAGE).caused_by(cause)
    }

    /// Keeps `cause` as this error's source.
    #[must_use]
    fn caused_by(mut self, cause: impl Into<Cause>) -> Self {
        self.source = Some(cause.into());
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The sentence the caller may be shown.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for UseCaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for UseCaseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn chains_render_every_source_and_server_faults_hide_their_cause() {
        let e = UseCaseError::unavailable(Outer(std::io::Error::other("inner")));
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert_eq!(e.message(), UNAVAILABLE_MESSAGE);
        assert_eq!(
            Chain(&e).to_string(),
            "A service this server depends on is unavailable; retry in a moment: outer: inner"
        );
        let refused = UseCaseError::denied("no");
        assert_eq!(Chain(&refused).to_string(), "no");
        assert!(!refused.kind().is_server_fault());
        assert!(UseCaseError::internal("bug").kind().is_server_fault());
    }
}
