//! The tunables of the use cases, resolved from configuration.

use std::time::Duration;

use tooltool_domain::Permissions;

#[derive(Debug, Clone)]
pub struct Settings {
    pub permissions: Permissions,
    pub upload_expires: Duration,
    pub download_expires: Duration,
    pub max_file_size: u64,
    /// How long an upload lease lasts unless its holder renews it (it does
    /// every third of this while it works; see `lease.rs`): after a crash,
    /// the slot is free again within this.
    pub verify_lease: Duration,
    pub replicate_lease: Duration,
    /// Slots whose URL expired longer ago than this are abandoned.
    pub abandon_after: Duration,
    /// Staging objects younger than this are never swept.
    pub sweep_grace: Duration,
    /// How long `upload/complete` waits for a verification before answering
    /// "not yet".
    pub complete_wait: Duration,
    /// How long after its URL expired a slot may still receive its content
    /// (a transfer that started in time may finish late). After that, a slot
    /// with nothing in it is dead and `upload/complete` stops answering
    /// "not yet".
    pub upload_grace: Duration,
    /// The delay `upload/complete` asks for when not yet done (`X-Retry-After`).
    pub retry_after_secs: u64,
    /// The most results a search page may hold.
    pub search_limit: usize,
    /// The results of a search page when the client names no limit.
    pub search_page: usize,
    /// Verifications (HEAD, hash, promote) that run at once in this process,
    /// whether started by the job or by `upload/complete`.
    pub verify_concurrency: usize,
}

impl Settings {
    pub fn new(permissions: Permissions) -> Self {
        Self {
            permissions,
            upload_expires: Duration::from_secs(60),
            download_expires: Duration::from_secs(60),
            max_file_size: 50 * 1024 * 1024 * 1024,
            verify_lease: Duration::from_secs(30),
            replicate_lease: Duration::from_secs(600),
            abandon_after: Duration::from_secs(24 * 3600),
            sweep_grace: Duration::from_secs(3600),
            complete_wait: Duration::from_secs(10),
            upload_grace: Duration::from_secs(600),
            retry_after_secs: 1,
            search_limit: tooltool_domain::MAX_PAGE_LIMIT,
            search_page: 100,
            verify_concurrency: 4,
        }
    }
}
