//! Upload batches: creating one (permission per visibility, one
//! transaction in the store, a signed PUT URL per new slot), reading and
//! searching them.

use std::collections::BTreeMap;

use tooltool_domain::{
    Principal, RegionName, StagingKey, Visibility, check_batch_shape, check_declared,
    check_search_term,
};
use tooltool_ports::{BatchRecord, BatchRequest, CreatedBatchView, NewBatch, UseCaseError};

use super::errors::{batch_error, blob_error, store_error};
use super::{Service, later};

/// A random slot id: 64 bits, which make slots unique (their URLs are
/// signed, so the id needs no secrecy). Short, because S3-compatible stores
/// that keep objects as files (s3s-fs) run into file-name limits with the
/// 128-digit digest already in the key.
fn new_slot_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

impl Service {
    pub async fn create_batch(
        &self,
        principal: &Principal,
        request: BatchRequest,
        region: Option<RegionName>,
    ) -> Result<CreatedBatchView, UseCaseError> {
        check_batch_shape(&request.message, request.files.len(), request.author_given)
            .map_err(batch_error)?;
        for visibility in Visibility::ALL {
            let needed = request.files.iter().any(|f| f.visibility == visibility);
            if needed && !self.settings.permissions.may_upload(principal, visibility) {
                return Err(UseCaseError::denied(format!(
                    "no permission to upload {visibility} files"
                )));
            }
        }
        // Every rule a file can break on its own, before the store sees it
        // (a database refuses some such values with an error of its own).
        for file in &request.files {
            check_declared(file, self.settings.max_file_size).map_err(batch_error)?;
        }
        let upload_region = self
            .choose(region.as_ref(), &self.region_names())
            .ok_or_else(|| UseCaseError::internal("no storage region configured"))?;
        let now = self.clock.now();
        let expires = later(now, self.settings.upload_expires);
        let slots = request
            .files
            .iter()
            .map(|f| {
                StagingKey::new(f.digest.clone(), new_slot_id())
                    .ok_or_else(|| UseCaseError::internal("invalid generated slot id"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let created = self
            .store
            .create_batch(NewBatch {
                author: principal.id().unwrap_or_default().to_owned(),
                message: request.message,
                uploaded: now,
                files: request.files,
                slots,
                region: upload_region.region().clone(),
                slot_expires: expires,
                max_size: self.settings.max_file_size,
            })
            .await
            .map_err(store_error)?;
        let mut put_urls = BTreeMap::new();
        for slot in &created.uploads {
            let url = upload_region
                .presign_put(&slot.key, slot.size, slot.expires)
                .await
                .map_err(blob_error)?;
            put_urls.insert(slot.key.digest().clone(), url);
        }
        self.metrics.uploads_created(put_urls.len() as u64);
        tracing::info!(batch = created.batch.id, author = %created.batch.author, files = created.batch.files.len(), uploads = put_urls.len(), "batch created");
        Ok(CreatedBatchView {
            batch: created.batch,
            put_urls,
        })
    }

    /// A page of batches matching `q`, newest first, below id `before`.
    pub async fn search_batches(
        &self,
        q: &str,
        before: Option<i64>,
        limit: Option<usize>,
    ) -> Result<Vec<BatchRecord>, UseCaseError> {
        check_search_term(q).map_err(UseCaseError::invalid)?;
        self.store
            .search_batches(q, before, self.page_size(limit)?)
            .await
            .map_err(store_error)
    }

    pub async fn get_batch(&self, id: i64) -> Result<BatchRecord, UseCaseError> {
        self.store
            .get_batch(id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| UseCaseError::not_found(format!("no upload batch with id {id}")))
    }
}
