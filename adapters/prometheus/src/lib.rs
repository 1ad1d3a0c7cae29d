//! The [`Metrics`] port on `prometheus-client`, in the text exposition
//! format. Label sets are bounded: routes are operation ids, statuses are
//! HTTP codes, outcomes and jobs are fixed names.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::Ordering;

use tooltool_ports::{CacheStats, Metrics};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    job: &'static str,
    result: &'static str,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms … ~16 s
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

fn job_histogram() -> Histogram {
    // 1 ms … ~1 h
    Histogram::new(exponential_buckets(0.001, 3.0, 15))
}

pub struct Prometheus {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    uploads: Counter,
    verifications: Family<OutcomeLabels, Counter>,
    bytes_verified: Counter,
    jobs: Family<JobLabels, Histogram, fn() -> Histogram>,
    pending: Gauge,
    missing: Gauge,
    db_in_use: Gauge,
    connections: Gauge,
    closed: Family<ReasonLabels, Counter>,
    cache_lookups: Family<ResultLabels, Counter>,
    cache_drops: Family<ReasonLabels, Counter>,
    cache_entries: Gauge,
    cache_bytes: Gauge,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

impl std::fmt::Debug for Prometheus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Prometheus")
    }
}

impl Default for Prometheus {
    fn default() -> Self {
        Self::new()
    }
}

impl Prometheus {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tooltool");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        let latency = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            latency.clone(),
        );
        let uploads = Counter::default();
        registry.register(
            "uploads_created",
            "Upload slots handed out",
            uploads.clone(),
        );
        let verifications = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "verifications",
            "Upload verifications by outcome",
            verifications.clone(),
        );
        let bytes_verified = Counter::default();
        registry.register(
            "verified_bytes",
            "Bytes hashed by verification",
            bytes_verified.clone(),
        );
        let jobs =
            Family::<JobLabels, Histogram, fn() -> Histogram>::new_with_constructor(job_histogram);
        registry.register(
            "job_duration_seconds",
            "Background job runs by job and result",
            jobs.clone(),
        );
        let pending = Gauge::default();
        registry.register(
            "pending_uploads",
            "Upload slots waiting for content",
            pending.clone(),
        );
        let missing = Gauge::default();
        registry.register(
            "files_missing_a_region",
            "Files with a copy but not in every configured region (replication backlog)",
            missing.clone(),
        );
        let db_in_use = Gauge::default();
        registry.register(
            "db_connections_in_use",
            "Database connections checked out of the pool",
            db_in_use.clone(),
        );
        let connections = Gauge::default();
        registry.register(
            "connections_open",
            "Client connections open",
            connections.clone(),
        );
        let closed = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "connections_closed_by_limit",
            "Client connections refused or closed by a limit, by reason",
            closed.clone(),
        );
        let cache_lookups = Family::<ResultLabels, Counter>::default();
        registry.register(
            "file_cache_lookups",
            "Downloads' file-record lookups in the cache, by result (hit, miss)",
            cache_lookups.clone(),
        );
        let cache_drops = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "file_cache_drops",
            "Cached file records dropped, by reason (evicted: size or age; changed: the file changed, or the whole cache on a lost change feed)",
            cache_drops.clone(),
        );
        let cache_entries = Gauge::default();
        registry.register(
            "file_cache_entries",
            "File records cached",
            cache_entries.clone(),
        );
        let cache_bytes = Gauge::default();
        registry.register(
            "file_cache_bytes",
            "Estimated bytes of the cached file records",
            cache_bytes.clone(),
        );
        Self {
            cache_lookups,
            cache_drops,
            cache_entries,
            cache_bytes,
            connections,
            closed,
            db_in_use,
            registry,
            requests,
            latency,
            uploads,
            verifications,
            bytes_verified,
            jobs,
            pending,
            missing,
        }
    }
}

fn gauge_value(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Metrics for Prometheus {
    fn request(&self, route: &'static str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels { route, status })
            .inc();
        self.latency
            .get_or_create(&RouteLabels { route })
            .observe(seconds);
    }

    fn uploads_created(&self, count: u64) {
        self.uploads.inc_by(count);
    }

    fn verification(&self, outcome: &'static str, bytes_hashed: u64) {
        self.verifications
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
        self.bytes_verified.inc_by(bytes_hashed);
    }

    fn job_run(&self, job: &'static str, seconds: f64, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.jobs
            .get_or_create(&JobLabels { job, result })
            .observe(seconds);
    }

    fn backlog(&self, pending_uploads: u64, files_missing_a_region: u64) {
        self.pending.set(gauge_value(pending_uploads));
        self.missing.set(gauge_value(files_missing_a_region));
    }

    fn db_connections_in_use(&self, connections: u64) {
        self.db_in_use.set(gauge_value(connections));
    }

    fn connections_open(&self, open: u64) {
        self.connections.set(gauge_value(open));
    }

    fn connection_closed(&self, reason: &'static str) {
        self.closed.get_or_create(&ReasonLabels { reason }).inc();
    }

    fn file_cache(&self, stats: &CacheStats) {
        // The cache counts; a scrape copies its totals (so the request
        // path pays an atomic increment, not a label lookup).
        for (result, v) in [("hit", stats.hits), ("miss", stats.misses)] {
            self.cache_lookups
                .get_or_create(&ResultLabels { result })
                .inner()
                .store(v, Ordering::Relaxed);
        }
        for (reason, v) in [
            ("evicted", stats.evictions),
            ("changed", stats.invalidations),
        ] {
            self.cache_drops
                .get_or_create(&ReasonLabels { reason })
                .inner()
                .store(v, Ordering::Relaxed);
        }
        self.cache_entries.set(gauge_value(stats.entries));
        self.cache_bytes.set(gauge_value(stats.bytes));
    }

    fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_what_was_recorded() {
        let m = Prometheus::new();
        m.request("download", 302, 0.001);
        m.request("download", 302, 0.002);
        m.request("create_batch", 400, 0.01);
        m.uploads_created(3);
        m.verification("valid", 1024);
        m.verification("digest_mismatch", 10);
        m.job_run("verify", 0.5, true);
        m.backlog(4, 2);
        m.db_connections_in_use(3);
        m.connections_open(7);
        m.connection_closed("header_timeout");
        m.connection_closed("header_timeout");
        m.file_cache(&CacheStats {
            hits: 9,
            misses: 2,
            evictions: 1,
            invalidations: 3,
            entries: 5,
            bytes: 3000,
        });
        let text = m.render();
        for line in [
            r#"tooltool_http_requests_total{route="download",status="302"} 2"#,
            r#"tooltool_http_requests_total{route="create_batch",status="400"} 1"#,
            r#"tooltool_http_request_duration_seconds_count{route="download"} 2"#,
            "tooltool_uploads_created_total 3",
            r#"tooltool_verifications_total{outcome="valid"} 1"#,
            r#"tooltool_verifications_total{outcome="digest_mismatch"} 1"#,
            "tooltool_verified_bytes_total 1034",
            r#"tooltool_job_duration_seconds_count{job="verify",result="ok"} 1"#,
            "tooltool_pending_uploads 4",
            "tooltool_files_missing_a_region 2",
            "tooltool_db_connections_in_use 3",
            "tooltool_connections_open 7",
            r#"tooltool_file_cache_lookups_total{result="hit"} 9"#,
            r#"tooltool_file_cache_lookups_total{result="miss"} 2"#,
            r#"tooltool_file_cache_drops_total{reason="evicted"} 1"#,
            r#"tooltool_file_cache_drops_total{reason="changed"} 3"#,
            "tooltool_file_cache_entries 5",
            "tooltool_file_cache_bytes 3000",
            r#"tooltool_connections_closed_by_limit_total{reason="header_timeout"} 2"#,
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }
}
