//! The use cases behind the driving port. Everything here talks to the
//! outside only through ports; what a failure means is said in the use
//! cases' words ([`tooltool_ports::UseCaseError`]), never as a status.
//!
//! One file per use case: `access.rs` (who is asking, downloads),
//! `batches.rs` (upload batches), `files.rs` (file lookups and
//! management), `verify.rs` (judging and settling uploads), `complete.rs`
//! (`upload/complete`),
//! `replicate.rs`, `sweep.rs` (the background jobs' units of work),
//! `gateway.rs` (the storage routes of the server's own URLs), `ops.rs` (health,
//! metrics); `port.rs` presents them as the driving port, `errors.rs` maps
//! driven-port failures, `settings.rs` holds the tunables.

mod access;
mod batches;
mod complete;
mod errors;
mod files;
mod gateway;
mod lease;
mod ops;
mod port;
mod replicate;
mod settings;
mod sweep;
mod verify;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tooltool_domain::RegionName;
use tooltool_ports::{
    Authenticator, BlobStore, Chance, Clock, MetadataStore, Metrics, PendingUpload,
    SignInAuthority, UseCaseError,
};

pub use access::FORBIDDEN_DOWNLOAD;
pub use settings::Settings;
pub use verify::Verified;

/// The application: ports plus settings.
#[derive(Clone)]
pub struct Service {
    store: Arc<dyn MetadataStore>,
    /// In configuration order.
    regions: Vec<Arc<dyn BlobStore>>,
    /// One per credential scheme.
    authenticators: Vec<Arc<dyn Authenticator>>,
    /// Who people sign in with in a browser, if anyone.
    sign_in: Option<Arc<dyn SignInAuthority>>,
    clock: Arc<dyn Clock>,
    /// Which region serves a download or receives an upload, when the
    /// client's preference does not decide.
    chance: Arc<dyn Chance>,
    metrics: Arc<dyn Metrics>,
    settings: Settings,
    /// Permits of [`Settings::verify_concurrency`]: each verification reads
    /// a whole object, so their number bounds network, CPU and memory.
    verifications: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("regions", &self.region_names())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn later(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

fn earlier(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    now - chrono::Duration::from_std(d).unwrap_or(chrono::Duration::zero())
}

impl Service {
    /// A service without authenticators: every credential is refused
    /// until [`Service::with_authenticators`] names who checks which scheme.
    pub fn new(
        store: Arc<dyn MetadataStore>,
        regions: Vec<Arc<dyn BlobStore>>,
        clock: Arc<dyn Clock>,
        metrics: Arc<dyn Metrics>,
        settings: Settings,
    ) -> Self {
        assert!(!regions.is_empty(), "at least one storage region");
        Self {
            store,
            regions,
            authenticators: Vec::new(),
            sign_in: None,
            clock,
            chance: Arc::new(crate::ThreadChance),
            metrics,
            verifications: Arc::new(tokio::sync::Semaphore::new(
                settings.verify_concurrency.max(1),
            )),
            settings,
        }
    }

    /// The authenticators of the credential schemes this service accepts.
    #[must_use]
    pub fn with_authenticators(mut self, authenticators: Vec<Arc<dyn Authenticator>>) -> Self {
        self.authenticators = authenticators;
        self
    }

    /// The authority browsers sign in with (the web interface's
    /// "Sign in with Taskcluster").
    #[must_use]
    pub fn with_sign_in(mut self, authority: Arc<dyn SignInAuthority>) -> Self {
        self.sign_in = Some(authority);
        self
    }

    /// Replaces the random choice of regions (tests pin it).
    #[must_use]
    pub fn with_chance(mut self, chance: Arc<dyn Chance>) -> Self {
        self.chance = chance;
        self
    }

    pub fn metrics(&self) -> &Arc<dyn Metrics> {
        &self.metrics
    }

    pub fn region_names(&self) -> Vec<RegionName> {
        self.regions.iter().map(|r| r.region().clone()).collect()
    }

    fn region(&self, name: &RegionName) -> Option<&Arc<dyn BlobStore>> {
        self.regions.iter().find(|r| r.region() == name)
    }

    /// The store of `preferred` when it is among `candidates` (names of
    /// configured regions), else of a candidate chosen at random.
    fn choose(
        &self,
        preferred: Option<&RegionName>,
        candidates: &[RegionName],
    ) -> Option<&Arc<dyn BlobStore>> {
        tooltool_domain::choose_region(preferred, candidates, |n| self.chance.below(n).min(n - 1))
            .and_then(|r| self.region(r))
    }

    /// The storage of a slot's region; a slot in a region this process is
    /// not configured for is a deployment error, not the client's.
    fn slot_region(&self, slot: &PendingUpload) -> Result<&Arc<dyn BlobStore>, UseCaseError> {
        self.region(&slot.region).ok_or_else(|| {
            UseCaseError::internal(format!("slot in unconfigured region {}", slot.region))
        })
    }

    /// The size of a search page: `limit` when within bounds, else the default.
    fn page_size(&self, limit: Option<usize>) -> Result<usize, UseCaseError> {
        match limit {
            None => Ok(self.settings.search_page),
            Some(n) if (1..=self.settings.search_limit).contains(&n) => Ok(n),
            Some(_) => Err(UseCaseError::invalid(format!(
                "limit must be between 1 and {}",
                self.settings.search_limit
            ))),
        }
    }
}
