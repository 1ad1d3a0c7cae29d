use chrono::{DateTime, Utc};

/// The only source of "now" for the application: expiry, leases and
/// abandonment are computed from it, so tests pin it instead of sleeping.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Clock: Send + Sync {
    /// The current time. Implementations MUST NOT go backwards by more than
    /// the host clock does; the application tolerates no other anomaly.
    fn now(&self) -> DateTime<Utc>;
}

/// The only source of chance in the use cases (which region serves a
/// download, which receives an upload), so tests pin it too.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Chance: Send + Sync {
    /// A number in `0..n`, uniformly distributed; `n` is at least 1.
    /// Implementations MUST answer below `n`.
    fn below(&self, n: usize) -> usize;
}
