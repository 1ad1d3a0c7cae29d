use chrono::{DateTime, Utc};

/// The only source of "now" for the application: expiry, leases and
/// abandonment are computed from it, so tests pin it instead of sleeping.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Clock: Send + Sync {
    /// The current time. Implementations MUST NOT go backwards by more than
    /// the host clock does; the application tolerates no other anomaly.
    fn now(&self) -> DateTime<Utc>;
}
