//! Replication: copies every verified file to each configured region
//! that lacks it, server-side when the two stores share a copy domain and
//! streamed through this process otherwise (one rule, in `copy_file`).

use tooltool_domain::{Digest, ObjectKey, RegionName};
use tooltool_ports::{BlobStore, FileRecord, UseCaseError};

use super::errors::{storage_error, store_error};
use super::{Service, later};

impl Service {
    /// One run of the replication job: copies every file missing from a
    /// configured region there, from a region that has it.
    pub async fn replicate(
        &self,
        limit: usize,
    ) -> Result<Vec<(Digest, RegionName, Result<(), UseCaseError>)>, UseCaseError> {
        let now = self.clock.now();
        let files = self
            .store
            .claim_replication(
                self.region_names(),
                now,
                later(now, self.settings.replicate_lease),
                limit,
            )
            .await
            .map_err(store_error)?;
        let mut report = Vec::new();
        for file in files {
            let Some(source) = file.instances.iter().find_map(|r| self.region(r)) else {
                continue;
            };
            for target in &self.regions {
                if file.instances.contains(target.region()) {
                    continue;
                }
                let result = self
                    .copy_file(&file, source.as_ref(), target.as_ref())
                    .await;
                if let Err(e) = &result {
                    tracing::warn!(digest = %file.digest, region = %target.region(), error = %e, "replication failed");
                }
                report.push((file.digest.clone(), target.region().clone(), result));
            }
        }
        Ok(report)
    }

    async fn copy_file(
        &self,
        file: &FileRecord,
        source: &dyn BlobStore,
        target: &dyn BlobStore,
    ) -> Result<(), UseCaseError> {
        let key = ObjectKey::File(file.digest.clone());
        // Server-side when both stores share a copy domain (one S3
        // endpoint and account); streamed through this process otherwise.
        let from = source.copy_source().filter(|from| {
            target
                .copy_source()
                .is_some_and(|to| to.domain == from.domain)
        });
        match &from {
            Some(from) => target.copy_from(from, &file.digest, file.size).await,
            None => match source.get(&key).await {
                Ok(body) => target.put(&key, file.size, body).await,
                Err(e) => Err(e),
            },
        }
        .map_err(storage_error)?;
        self.store
            .add_instance(&file.digest, target.region())
            .await
            .map_err(store_error)?;
        tracing::info!(digest = %file.digest, region = %target.region(), server_side = from.is_some(), "replicated");
        Ok(())
    }
}
