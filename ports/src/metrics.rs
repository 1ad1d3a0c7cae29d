use crate::CacheStats;

/// Counters, gauges and histograms an operator reads (Prometheus `/metrics`).
///
/// Implementations MUST be cheap and non-blocking (they are called on the
/// request path) and MUST NOT fail: metrics never break a request.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Metrics: Send + Sync {
    /// One served request, by route template (operation id) and status.
    /// Routes are a fixed set of names, so labels need no allocation.
    fn request(&self, route: &'static str, status: u16, seconds: f64);
    /// Upload slots handed out by a batch.
    fn uploads_created(&self, count: u64);
    /// One verification verdict (`valid`, `size_mismatch`,
    /// `digest_mismatch`, `missing`) and the bytes it hashed.
    fn verification(&self, outcome: &'static str, bytes_hashed: u64);
    /// One run of a background job (`verify`, `replicate`, `sweep`).
    fn job_run(&self, job: &'static str, seconds: f64, ok: bool);
    /// Work waiting: pending uploads, and files lacking a configured region.
    fn backlog(&self, pending_uploads: u64, files_missing_a_region: u64);
    /// Database connections in use (stores with a pool).
    fn db_connections_in_use(&self, connections: u64);
    /// Client connections open now.
    fn connections_open(&self, open: u64);
    /// A client connection refused or closed by a limit (`refused_full`,
    /// `refused_peer`, `header_timeout`, `idle_timeout`, `stalled`).
    fn connection_closed(&self, reason: &'static str);
    /// The totals of the file-record cache (set at each scrape).
    fn file_cache(&self, stats: &CacheStats);
    /// The text exposition format.
    fn render(&self) -> String;
}

/// Metrics for deployments and tests that do not collect any.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoMetrics;

impl Metrics for NoMetrics {
    fn request(&self, _: &'static str, _: u16, _: f64) {}
    fn uploads_created(&self, _: u64) {}
    fn verification(&self, _: &'static str, _: u64) {}
    fn job_run(&self, _: &'static str, _: f64, _: bool) {}
    fn backlog(&self, _: u64, _: u64) {}
    fn db_connections_in_use(&self, _: u64) {}
    fn connections_open(&self, _: u64) {}
    fn connection_closed(&self, _: &'static str) {}
    fn file_cache(&self, _: &CacheStats) {}
    fn render(&self) -> String {
        String::new()
    }
}
