//! [`CachedStore`]: a [`MetadataStore`] decorator that answers
//! [`MetadataStore::get_file`] (every download's one metadata read) from
//! memory, in front of any store.
//!
//! A decorating adapter rather than a use-case concern: the use cases
//! stay as they are (they ask the port for a file), every store gets the
//! same cache by wiring, and whether a cache may be used at all depends on
//! what the store can tell about other writers ([`MetadataStore::watch_files`]),
//! which is the store's business, not the use cases'.
//!
//! Coherence (see `entries.rs` for the rule): a write through this
//! decorator drops its file's entry as soon as the write returns, so this
//! process reads its own writes; writes of other processes arrive through
//! the store's change reports (PostgreSQL: LISTEN/NOTIFY), so another
//! process sees a change within the notification's latency. Nothing is
//! cached while the store does not report changes (before it starts, and
//! whenever it may miss one), and everything is dropped when it reports
//! again. Only files with a verified copy are kept: "not found" and "not
//! verified yet" are always read from the store, so a freshly verified
//! upload is never refused from memory.

mod entries;

use std::sync::{Arc, Weak};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tooltool_domain::{Digest, PatchOp, RegionName, StagingKey};
use tooltool_ports::{
    BatchRecord, CacheStats, CreatedBatch, FileChanges, FileRecord, FileUpload, Imported,
    ImportedBatch, MetadataError, MetadataStore, NewBatch, PendingUpload, UploadState, WhenTaken,
};

use crate::entries::Entries;
pub use crate::entries::MAX_AGE;

/// `inner` with its file records cached, up to `max_bytes` of them.
pub struct CachedStore {
    inner: Arc<dyn MetadataStore>,
    entries: Arc<Entries>,
}

impl std::fmt::Debug for CachedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedStore")
            .field("stats", &self.entries.stats())
            .finish_non_exhaustive()
    }
}

impl CachedStore {
    /// Caches up to `max_bytes` of `inner`'s file records, and asks
    /// `inner` to report changes by other processes (the cache is used
    /// once it does).
    pub fn new(inner: Arc<dyn MetadataStore>, max_bytes: u64) -> Self {
        let entries = Arc::new(Entries::new(max_bytes));
        let sink: Arc<dyn FileChanges> = entries.clone();
        inner.watch_files(Arc::downgrade(&sink));
        Self { inner, entries }
    }

    /// Drops the entries of `digests` after a write of them through this
    /// process, whether the write reported success or not (a failed
    /// commit may still have committed).
    fn wrote<'a>(&self, digests: impl IntoIterator<Item = &'a Digest>) {
        for digest in digests {
            self.entries.changed(digest);
        }
    }
}

#[async_trait]
impl MetadataStore for CachedStore {
    async fn get_file(&self, digest: &Digest) -> Result<Option<FileRecord>, MetadataError> {
        if let Some(file) = self.entries.get(digest) {
            return Ok(Some(file));
        }
        let ticket = self.entries.ticket(digest);
        let found = self.inner.get_file(digest).await?;
        if let (Some(ticket), Some(file)) = (ticket, &found)
            && file.has_instances()
        {
            self.entries.keep(ticket, file.clone());
        }
        Ok(found)
    }

    async fn create_batch(&self, batch: NewBatch) -> Result<CreatedBatch, MetadataError> {
        let digests: Vec<Digest> = batch.files.iter().map(|f| f.digest.clone()).collect();
        let result = self.inner.create_batch(batch).await;
        self.wrote(&digests);
        result
    }

    async fn get_batch(&self, id: i64) -> Result<Option<BatchRecord>, MetadataError> {
        self.inner.get_batch(id).await
    }

    async fn search_batches(
        &self,
        q: &str,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<BatchRecord>, MetadataError> {
        self.inner.search_batches(q, before, limit).await
    }

    async fn search_files(
        &self,
        q: &str,
        after: Option<Digest>,
        limit: usize,
    ) -> Result<Vec<FileRecord>, MetadataError> {
        self.inner.search_files(q, after, limit).await
    }

    async fn file_uploads(
        &self,
        digest: &Digest,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<FileUpload>, MetadataError> {
        self.inner.file_uploads(digest, before, limit).await
    }

    async fn patch_file(
        &self,
        digest: &Digest,
        ops: Vec<PatchOp>,
    ) -> Result<Option<FileRecord>, MetadataError> {
        let result = self.inner.patch_file(digest, ops).await;
        self.wrote([digest]);
        result
    }

    async fn upload_state(&self, digest: &Digest) -> Result<UploadState, MetadataError> {
        self.inner.upload_state(digest).await
    }

    async fn pending_upload(
        &self,
        key: &StagingKey,
    ) -> Result<Option<PendingUpload>, MetadataError> {
        self.inner.pending_upload(key).await
    }

    async fn claim_upload(
        &self,
        key: &StagingKey,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<bool, MetadataError> {
        self.inner.claim_upload(key, now, lease_until).await
    }

    async fn claim_due_uploads(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<PendingUpload>, MetadataError> {
        self.inner.claim_due_uploads(now, lease_until, limit).await
    }

    async fn release_upload(&self, key: &StagingKey) -> Result<(), MetadataError> {
        self.inner.release_upload(key).await
    }

    async fn renew_upload(
        &self,
        key: &StagingKey,
        lease_until: DateTime<Utc>,
    ) -> Result<(), MetadataError> {
        self.inner.renew_upload(key, lease_until).await
    }

    async fn complete_upload(&self, key: &StagingKey, size: u64) -> Result<(), MetadataError> {
        let result = self.inner.complete_upload(key, size).await;
        self.wrote([key.digest()]);
        result
    }

    async fn reject_upload(&self, key: &StagingKey, reason: String) -> Result<(), MetadataError> {
        self.inner.reject_upload(key, reason).await
    }

    async fn drop_abandoned_uploads(
        &self,
        expired_before: DateTime<Utc>,
    ) -> Result<Vec<PendingUpload>, MetadataError> {
        self.inner.drop_abandoned_uploads(expired_before).await
    }

    async fn claim_replication(
        &self,
        regions: Vec<RegionName>,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<FileRecord>, MetadataError> {
        self.inner
            .claim_replication(regions, now, lease_until, limit)
            .await
    }

    async fn add_instance(
        &self,
        digest: &Digest,
        region: &RegionName,
    ) -> Result<(), MetadataError> {
        let result = self.inner.add_instance(digest, region).await;
        self.wrote([digest]);
        result
    }

    async fn backlog(&self, regions: Vec<RegionName>) -> Result<(u64, u64), MetadataError> {
        self.inner.backlog(regions).await
    }

    async fn instance_regions(&self) -> Result<Vec<(RegionName, u64)>, MetadataError> {
        self.inner.instance_regions().await
    }

    async fn import_batch(
        &self,
        batch: ImportedBatch,
        when_taken: WhenTaken,
    ) -> Result<Imported, MetadataError> {
        let digests: Vec<Digest> = batch.files.iter().map(|(_, f)| f.digest.clone()).collect();
        let result = self.inner.import_batch(batch, when_taken).await;
        self.wrote(&digests);
        result
    }

    async fn spend_nonce(
        &self,
        key: [u8; 32],
        expires: DateTime<Utc>,
    ) -> Result<bool, MetadataError> {
        self.inner.spend_nonce(key, expires).await
    }

    async fn forget_nonces(&self, before: DateTime<Utc>) -> Result<u64, MetadataError> {
        self.inner.forget_nonces(before).await
    }

    fn watch_files(&self, sink: Weak<dyn FileChanges>) {
        self.inner.watch_files(sink);
    }

    fn cache_stats(&self) -> Option<CacheStats> {
        Some(self.entries.stats())
    }

    fn connections_in_use(&self) -> Option<u64> {
        self.inner.connections_in_use()
    }

    async fn ping(&self) -> Result<(), MetadataError> {
        self.inner.ping().await
    }
}

#[cfg(test)]
mod tests;
