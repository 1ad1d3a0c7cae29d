//! What operators read: the dependency checks behind `/__heartbeat__`, the
//! metrics text with its backlog gauges and cache totals refreshed, and the regions the
//! metadata knows but the configuration lacks.

use tooltool_domain::{Digest, ObjectKey, RegionName};
use tooltool_ports::{HealthChecks, MetadataError};

use super::Service;

impl Service {
    /// The metadata store, every storage region, and every authority an
    /// authenticator asks (Taskcluster), each with its verdict.
    pub async fn health(&self) -> HealthChecks {
        let mut checks: HealthChecks = vec![(
            "database".to_owned(),
            self.store.ping().await.map_err(Into::into),
        )];
        // A HEAD of a key that never exists proves the region answers.
        let probe = ObjectKey::File(Digest::from_bytes(&[0; 64]));
        for blobs in &self.regions {
            let verdict = match blobs.low_on_space() {
                Some(why) => Err(why.into()),
                None => blobs.head(&probe).await.map(|_| ()).map_err(Into::into),
            };
            checks.push((format!("storage:{}", blobs.region()), verdict));
        }
        for authenticator in &self.authenticators {
            if let Some(authority) = authenticator.authority() {
                let verdict = authenticator.check().await.map_err(Into::into);
                checks.push((authority.to_owned(), verdict));
            }
        }
        checks
    }

    /// Regions that hold recorded copies but are not configured here, with
    /// how many files have a copy in each: downloads from them cannot be
    /// served (a region renamed or removed from the configuration by
    /// mistake), so start-up warns about them.
    ///
    /// # Errors
    /// The metadata store cannot answer.
    pub async fn unconfigured_regions(&self) -> Result<Vec<(RegionName, u64)>, MetadataError> {
        let configured = self.region_names();
        let mut regions = self.store.instance_regions().await?;
        regions.retain(|(name, _)| !configured.contains(name));
        Ok(regions)
    }

    /// The metrics in the text exposition format, backlog refreshed.
    pub async fn metrics_text(&self) -> String {
        match self.store.backlog(self.region_names()).await {
            Ok((pending, missing)) => self.metrics.backlog(pending, missing),
            // A scrape still answers the counters; the gauges keep their last values.
            Err(e) => tracing::warn!(
                error = &e as &(dyn std::error::Error + 'static),
                "cannot count the backlog for metrics"
            ),
        }
        if let Some(n) = self.store.connections_in_use() {
            self.metrics.db_connections_in_use(n);
        }
        if let Some(stats) = self.store.cache_stats() {
            self.metrics.file_cache(&stats);
        }
        self.metrics.render()
    }
}
