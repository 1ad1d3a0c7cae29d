//! The use cases behind the driving port: permission checks, batch
//! creation, verification, downloads, management, and the background jobs'
//! units of work. Everything here talks to the outside only through ports.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tooltool_domain::{
    BatchError, ContentHasher, Digest, Observed, PatchOp, Permissions, Principal, RegionName,
    StagingKey, VerificationOutcome, Visibility, check_batch_shape, choose_region, final_key,
};
use tooltool_ports::{
    ApiError, BatchRecord, BatchRequest, BlobError, BlobStore, ByteRange, ByteStream, Clock,
    CreatedBatchView, ErrorKind, FileRecord, MetadataError, MetadataStore, Metrics, NewBatch,
    ObjectInfo, Opened, PendingUpload, SignedMethod, ToolTool, UploadProgress,
};

/// Tunables of the use cases, resolved from configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub permissions: Permissions,
    pub upload_expires: Duration,
    pub download_expires: Duration,
    pub max_file_size: u64,
    /// How long a verification claim is held before another worker may retry.
    pub verify_lease: Duration,
    pub replicate_lease: Duration,
    /// Slots whose URL expired longer ago than this are abandoned.
    pub abandon_after: Duration,
    /// Staging objects younger than this are never swept.
    pub sweep_grace: Duration,
    /// How long `upload/complete` waits for a verification before answering 409.
    pub complete_wait: Duration,
    /// How long after its URL expired a slot may still receive its content
    /// (a transfer that started in time may finish late). After that, a slot
    /// with nothing in it is dead and `upload/complete` stops answering 409.
    pub upload_grace: Duration,
    /// The `X-Retry-After` of a 409.
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
            verify_lease: Duration::from_secs(600),
            replicate_lease: Duration::from_secs(600),
            abandon_after: Duration::from_secs(24 * 3600),
            sweep_grace: Duration::from_secs(3600),
            complete_wait: Duration::from_secs(10),
            upload_grace: Duration::from_secs(600),
            retry_after_secs: 1,
            search_limit: 1000,
            search_page: 100,
            verify_concurrency: 4,
        }
    }
}

/// The application: ports plus settings.
#[derive(Clone)]
pub struct Service {
    store: Arc<dyn MetadataStore>,
    /// In configuration order; the first is the default upload region.
    regions: Vec<Arc<dyn BlobStore>>,
    clock: Arc<dyn Clock>,
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

/// What one verification attempt of one slot concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// Promoted and recorded.
    Valid,
    /// Deleted; the reason is recorded for `upload/complete`.
    Rejected(String),
    /// Nothing to judge yet (no object, or another worker holds the slot).
    NotYet,
}

fn store_error(e: MetadataError) -> ApiError {
    match e {
        MetadataError::Rejected(BatchError::TooLarge { .. }) => {
            ApiError::new(ErrorKind::PayloadTooLarge, e.to_string())
        }
        MetadataError::Rejected(e) => ApiError::new(ErrorKind::BadRequest, e.to_string()),
        MetadataError::Unavailable(m) => ApiError::new(ErrorKind::Unavailable, m),
        MetadataError::Internal(m) => ApiError::new(ErrorKind::Internal, m),
    }
}

fn blob_error(e: BlobError) -> ApiError {
    match e {
        BlobError::NotFound | BlobError::Unsupported => ApiError::new(
            ErrorKind::NotFound,
            "The requested URL was not found on the server.",
        ),
        BlobError::Forbidden(m) => ApiError::new(ErrorKind::Forbidden, m),
        BlobError::RangeNotSatisfiable { .. } => {
            ApiError::new(ErrorKind::RangeNotSatisfiable, e.to_string())
        }
        BlobError::TooLarge { .. } | BlobError::Interrupted(_) => {
            ApiError::new(ErrorKind::BadRequest, e.to_string())
        }
        BlobError::Changed | BlobError::Unavailable(_) => {
            ApiError::new(ErrorKind::Unavailable, e.to_string())
        }
    }
}

fn later(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

fn earlier(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    now - chrono::Duration::from_std(d).unwrap_or(chrono::Duration::zero())
}

/// A random slot id: 64 bits, which make slots unique (their URLs are
/// signed, so the id needs no secrecy). Short, because S3-compatible stores
/// that keep objects as files (s3s-fs) run into file-name limits with the
/// 128-digit digest already in the key.
fn new_slot_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Hashes a stream on a blocking thread, so that hashing large objects
/// never stalls the async workers; the queue between them bounds memory.
pub async fn hash_stream(mut body: ByteStream) -> Result<Observed, BlobError> {
    let (tx, mut rx) = mpsc::channel::<bytes::Bytes>(16);
    let hasher = tokio::task::spawn_blocking(move || {
        let mut h = ContentHasher::new();
        while let Some(chunk) = rx.blocking_recv() {
            h.update(&chunk);
        }
        h.finish()
    });
    while let Some(chunk) = body.next().await {
        if tx.send(chunk?).await.is_err() {
            break;
        }
    }
    drop(tx);
    hasher
        .await
        .map_err(|e| BlobError::Unavailable(e.to_string()))
}

/// The metric label of a verdict.
fn outcome_name(outcome: &VerificationOutcome) -> &'static str {
    match outcome {
        VerificationOutcome::Valid => "valid",
        VerificationOutcome::Missing => "missing",
        VerificationOutcome::SizeMismatch { .. } => "size_mismatch",
        VerificationOutcome::DigestMismatch { .. } => "digest_mismatch",
    }
}

pub const FORBIDDEN_DOWNLOAD: &str = "You don't have the permission to access the requested resource. It is either read-protected or not readable by the server.";

impl Service {
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
            clock,
            metrics,
            verifications: Arc::new(tokio::sync::Semaphore::new(
                settings.verify_concurrency.max(1),
            )),
            settings,
        }
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

    /// The size of a search page: `limit` when within bounds, else the default.
    fn page_size(&self, limit: Option<usize>) -> Result<usize, ApiError> {
        match limit {
            None => Ok(self.settings.search_page),
            Some(n) if (1..=self.settings.search_limit).contains(&n) => Ok(n),
            Some(_) => Err(ApiError::new(
                ErrorKind::BadRequest,
                format!("limit must be between 1 and {}", self.settings.search_limit),
            )),
        }
    }

    /// The storage of a slot's region; a slot in a region this process is
    /// not configured for is a deployment error, not the client's.
    fn slot_region(&self, slot: &PendingUpload) -> Result<&Arc<dyn BlobStore>, ApiError> {
        self.region(&slot.region).ok_or_else(|| {
            ApiError::new(
                ErrorKind::Internal,
                format!("slot in unconfigured region {}", slot.region),
            )
        })
    }

    fn region_by_text(&self, name: &str) -> Result<&Arc<dyn BlobStore>, ApiError> {
        self.regions
            .iter()
            .find(|r| r.region().as_str() == name)
            .ok_or_else(|| blob_error(BlobError::NotFound))
    }

    /// Judges measured content against a slot and acts on the verdict:
    /// promote + record, or delete + record the rejection. The one place
    /// where an upload becomes a file instance.
    pub async fn settle(
        &self,
        slot: &PendingUpload,
        observed: &Observed,
        info: &ObjectInfo,
    ) -> Result<Verified, ApiError> {
        let blobs = self.slot_region(slot)?;
        let key = slot.key.to_string();
        let outcome = VerificationOutcome::judge(slot.size, slot.key.digest(), Some(observed));
        self.metrics
            .verification(outcome_name(&outcome), observed.size);
        match outcome.rejection_reason() {
            None => {
                match blobs.promote(&slot.key, info).await {
                    Ok(()) => {}
                    Err(BlobError::Changed) => {
                        // Someone re-uploaded after we hashed: judge again later.
                        self.store
                            .release_upload(&slot.key)
                            .await
                            .map_err(store_error)?;
                        return Ok(Verified::NotYet);
                    }
                    Err(e) => return Err(blob_error(e)),
                }
                self.store
                    .complete_upload(&slot.key, observed.size)
                    .await
                    .map_err(store_error)?;
                tracing::info!(digest = %slot.key.digest(), region = %slot.region, "upload verified");
                Ok(Verified::Valid)
            }
            Some(reason) => {
                blobs.delete(&key).await.map_err(blob_error)?;
                self.store
                    .reject_upload(&slot.key, reason.clone())
                    .await
                    .map_err(store_error)?;
                tracing::warn!(digest = %slot.key.digest(), %reason, "upload rejected");
                Ok(Verified::Rejected(reason))
            }
        }
    }

    /// Verifies a slot this worker has claimed: inspect, hash, settle. The
    /// claim is released when there is nothing to judge yet or on failure.
    pub async fn verify_claimed(&self, slot: &PendingUpload) -> Result<Verified, ApiError> {
        let result = async {
            let _permit = self
                .verifications
                .acquire()
                .await
                .map_err(|e| ApiError::new(ErrorKind::Internal, e.to_string()))?;
            let blobs = self.slot_region(slot)?;
            let key = slot.key.to_string();
            let Some(info) = blobs.head(&key).await.map_err(blob_error)? else {
                return Ok(None);
            };
            if info.size != slot.size {
                // No need to read a wrong-size object: the size alone condemns it.
                let observed_size_only = VerificationOutcome::SizeMismatch {
                    expected: slot.size,
                    actual: info.size,
                };
                let reason = observed_size_only.rejection_reason().unwrap_or_default();
                self.metrics
                    .verification(outcome_name(&observed_size_only), 0);
                blobs.delete(&key).await.map_err(blob_error)?;
                self.store
                    .reject_upload(&slot.key, reason.clone())
                    .await
                    .map_err(store_error)?;
                return Ok(Some(Verified::Rejected(reason)));
            }
            let read = match blobs.get(&key).await {
                Ok(stream) => hash_stream(stream).await,
                Err(e) => Err(e),
            };
            let observed = match read {
                Ok(observed) => observed,
                Err(BlobError::Changed) => {
                    // Replaced while we read it: judge the new version later.
                    self.store
                        .release_upload(&slot.key)
                        .await
                        .map_err(store_error)?;
                    return Ok(Some(Verified::NotYet));
                }
                Err(e) => return Err(blob_error(e)),
            };
            self.settle(slot, &observed, &info).await.map(Some)
        }
        .await;
        match result {
            Ok(Some(v)) => Ok(v),
            Ok(None) => {
                self.metrics
                    .verification(outcome_name(&VerificationOutcome::Missing), 0);
                self.store
                    .release_upload(&slot.key)
                    .await
                    .map_err(store_error)?;
                Ok(Verified::NotYet)
            }
            Err(e) => {
                let _ = self.store.release_upload(&slot.key).await;
                Err(e)
            }
        }
    }

    /// Claims and verifies one slot; `NotYet` when another worker holds it.
    pub async fn verify_slot(&self, slot: &PendingUpload) -> Result<Verified, ApiError> {
        let now = self.clock.now();
        let claimed = self
            .store
            .claim_upload(&slot.key, now, later(now, self.settings.verify_lease))
            .await
            .map_err(store_error)?;
        if !claimed {
            return Ok(Verified::NotYet);
        }
        self.verify_claimed(slot).await
    }

    /// One run of the verification job: claims due slots and verifies them.
    pub async fn verify_pending(
        &self,
        limit: usize,
    ) -> Result<Vec<(PendingUpload, Result<Verified, ApiError>)>, ApiError> {
        let now = self.clock.now();
        let due = self
            .store
            .claim_due_uploads(now, later(now, self.settings.verify_lease), limit)
            .await
            .map_err(store_error)?;
        let results = futures_util::stream::iter(due)
            .map(|slot| async move {
                let r = self.verify_claimed(&slot).await;
                (slot, r)
            })
            .buffer_unordered(self.settings.verify_concurrency.max(1))
            .collect()
            .await;
        Ok(results)
    }

    /// One run of the replication job: copies every file missing from a
    /// configured region there, from a region that has it.
    pub async fn replicate(
        &self,
        limit: usize,
    ) -> Result<Vec<(Digest, RegionName, Result<(), ApiError>)>, ApiError> {
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
    ) -> Result<(), ApiError> {
        let key = final_key(&file.digest);
        // Server-side when both stores share a copy domain (one S3
        // endpoint and account); streamed through this process otherwise.
        let from = source.copy_source().filter(|from| {
            target
                .copy_source()
                .is_some_and(|to| to.domain == from.domain)
        });
        match &from {
            Some(from) => target.copy_from(from, &key, file.size).await,
            None => match source.get(&key).await {
                Ok(body) => target.put(&key, file.size, body).await,
                Err(e) => Err(e),
            },
        }
        .map_err(blob_error)?;
        self.store
            .add_instance(&file.digest, target.region())
            .await
            .map_err(store_error)?;
        tracing::info!(digest = %file.digest, region = %target.region(), server_side = from.is_some(), "replicated");
        Ok(())
    }

    /// One run of the sweep: drops abandoned slots and deletes staging
    /// objects that no slot owns. Returns how many objects were deleted.
    pub async fn sweep(&self) -> Result<usize, ApiError> {
        let now = self.clock.now();
        let abandoned = self
            .store
            .drop_abandoned_uploads(earlier(now, self.settings.abandon_after))
            .await
            .map_err(store_error)?;
        let mut deleted = 0;
        for slot in abandoned {
            if let Some(blobs) = self.region(&slot.region) {
                blobs
                    .delete(&slot.key.to_string())
                    .await
                    .map_err(blob_error)?;
                deleted += 1;
            }
        }
        for blobs in &self.regions {
            let strays = blobs
                .list_staging(earlier(now, self.settings.sweep_grace))
                .await
                .map_err(blob_error)?;
            for key in strays {
                let owned = self.store.pending_upload(&key).await.map_err(store_error)?;
                if owned.is_none() {
                    blobs.delete(&key.to_string()).await.map_err(blob_error)?;
                    deleted += 1;
                }
            }
        }
        Ok(deleted)
    }
}

#[async_trait]
impl ToolTool for Service {
    fn permissions(&self) -> &Permissions {
        &self.settings.permissions
    }

    async fn download(
        &self,
        principal: &Principal,
        digest: &Digest,
        region: Option<RegionName>,
    ) -> Result<String, ApiError> {
        let file = self
            .store
            .get_file(digest)
            .await
            .map_err(store_error)?
            .filter(FileRecord::has_instances)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorKind::NotFound,
                    "No verified copy of this file is stored here.",
                )
            })?;
        if !self
            .settings
            .permissions
            .may_download(principal, file.visibility)
        {
            return Err(ApiError::new(ErrorKind::Forbidden, FORBIDDEN_DOWNLOAD));
        }
        // Only regions this process is configured for can sign URLs.
        let served: Vec<RegionName> = file
            .instances
            .iter()
            .filter(|r| self.region(r).is_some())
            .cloned()
            .collect();
        let chosen = choose_region(region.as_ref(), &served)
            .and_then(|r| self.region(r))
            .ok_or_else(|| {
                ApiError::new(
                    ErrorKind::NotFound,
                    "No verified copy of this file is stored in a configured region.",
                )
            })?;
        let expires = later(self.clock.now(), self.settings.download_expires);
        chosen
            .presign_get(&final_key(digest), expires)
            .await
            .map_err(blob_error)
    }

    async fn create_batch(
        &self,
        principal: &Principal,
        request: BatchRequest,
        region: Option<RegionName>,
    ) -> Result<CreatedBatchView, ApiError> {
        check_batch_shape(&request.message, request.files.len(), request.author_given)
            .map_err(|e| ApiError::new(ErrorKind::BadRequest, e.to_string()))?;
        for visibility in Visibility::ALL {
            let needed = request.files.iter().any(|f| f.visibility == visibility);
            if needed && !self.settings.permissions.may_upload(principal, visibility) {
                return Err(ApiError::new(
                    ErrorKind::Forbidden,
                    format!("no permission to upload {visibility} files"),
                ));
            }
        }
        let upload_region = region
            .as_ref()
            .and_then(|r| self.region(r))
            .unwrap_or(&self.regions[0]);
        let now = self.clock.now();
        let expires = later(now, self.settings.upload_expires);
        let slots = request
            .files
            .iter()
            .map(|f| {
                StagingKey::new(f.digest.clone(), new_slot_id())
                    .ok_or_else(|| ApiError::new(ErrorKind::Internal, "invalid generated slot id"))
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

    async fn upload_complete(&self, digest: &Digest) -> Result<UploadProgress, ApiError> {
        let pending = UploadProgress::Pending {
            retry_after_secs: self.settings.retry_after_secs,
        };
        let state = self.store.upload_state(digest).await.map_err(store_error)?;
        if state.file.as_ref().is_some_and(FileRecord::has_instances) {
            return Ok(UploadProgress::Done);
        }
        if state.pending.is_empty() {
            return match state.rejection {
                Some(reason) => Err(ApiError::new(ErrorKind::BadRequest, reason)),
                None => Ok(UploadProgress::Done),
            };
        }
        // Verify every slot at once in the background, and wait a bounded
        // time: a large object keeps verifying after we answer 409.
        let mut tasks = tokio::task::JoinSet::new();
        for slot in state.pending {
            let this = self.clone();
            tasks.spawn(async move { this.verify_slot(&slot).await });
        }
        let deadline = tokio::time::Instant::now() + self.settings.complete_wait;
        let mut rejection = None;
        loop {
            match tokio::time::timeout_at(deadline, tasks.join_next()).await {
                Err(_) => {
                    tasks.detach_all();
                    return Ok(pending);
                }
                Ok(None) => break,
                Ok(Some(Ok(Ok(Verified::Valid)))) => {
                    tasks.detach_all();
                    return Ok(UploadProgress::Done);
                }
                Ok(Some(Ok(Ok(Verified::Rejected(reason))))) => rejection = Some(reason),
                Ok(Some(Ok(Ok(Verified::NotYet)))) => {}
                Ok(Some(Ok(Err(e)))) => {
                    tasks.detach_all();
                    return Err(e);
                }
                Ok(Some(Err(join))) => {
                    tasks.detach_all();
                    return Err(ApiError::new(ErrorKind::Internal, join.to_string()));
                }
            }
        }
        // All attempts finished without a verified copy: decide from the state now.
        let state = self.store.upload_state(digest).await.map_err(store_error)?;
        let now = self.clock.now();
        let alive = |slot: &PendingUpload| now <= later(slot.expires, self.settings.upload_grace);
        if state.file.as_ref().is_some_and(FileRecord::has_instances) {
            Ok(UploadProgress::Done)
        } else if state.pending.iter().any(alive) {
            Ok(pending)
        } else if !state.pending.is_empty() {
            // The client would otherwise poll until the slot is abandoned.
            Err(ApiError::new(
                ErrorKind::BadRequest,
                "no content arrived for this file before its upload URL expired; upload it again",
            ))
        } else {
            let reason = state
                .rejection
                .or(rejection)
                .unwrap_or_else(|| "uploaded content does not match the declaration".to_owned());
            Err(ApiError::new(ErrorKind::BadRequest, reason))
        }
    }

    async fn search_batches(
        &self,
        q: &str,
        before: Option<i64>,
        limit: Option<usize>,
    ) -> Result<Vec<BatchRecord>, ApiError> {
        self.store
            .search_batches(q, before, self.page_size(limit)?)
            .await
            .map_err(store_error)
    }

    async fn get_batch(&self, id: i64) -> Result<BatchRecord, ApiError> {
        self.store
            .get_batch(id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| {
                ApiError::new(ErrorKind::NotFound, format!("no upload batch with id {id}"))
            })
    }

    async fn search_files(
        &self,
        q: &str,
        after: Option<Digest>,
        limit: Option<usize>,
    ) -> Result<Vec<FileRecord>, ApiError> {
        self.store
            .search_files(q, after, self.page_size(limit)?)
            .await
            .map_err(store_error)
    }

    async fn get_file(&self, digest: &Digest) -> Result<FileRecord, ApiError> {
        self.store
            .get_file(digest)
            .await
            .map_err(store_error)?
            .ok_or_else(|| ApiError::new(ErrorKind::NotFound, "no file with this digest"))
    }

    async fn patch_file(
        &self,
        principal: &Principal,
        digest: &Digest,
        ops: Vec<PatchOp>,
    ) -> Result<FileRecord, ApiError> {
        if principal.is_anonymous() {
            return Err(ApiError::new(
                ErrorKind::Unauthorized,
                "managing files needs credentials with the manage scope",
            ));
        }
        if !self.settings.permissions.may_manage(principal) {
            return Err(ApiError::new(
                ErrorKind::Forbidden,
                format!(
                    "no permission to manage files (needs {})",
                    self.settings.permissions.manage_scope()
                ),
            ));
        }
        let deletes = ops.contains(&PatchOp::DeleteInstances);
        let file = self
            .store
            .patch_file(digest, ops)
            .await
            .map_err(store_error)?
            .ok_or_else(|| ApiError::new(ErrorKind::NotFound, "no file with this digest"))?;
        if deletes {
            // Records first, so no download is sent to a copy being deleted;
            // every region is tried so that a retried request finishes the job.
            let key = final_key(digest);
            for blobs in &self.regions {
                blobs.delete(&key).await.map_err(blob_error)?;
            }
            tracing::info!(digest = %digest, by = ?principal.id(), "instances deleted");
        }
        Ok(file)
    }

    async fn metrics_text(&self) -> String {
        match self.store.backlog(self.region_names()).await {
            Ok((pending, missing)) => self.metrics.backlog(pending, missing),
            // A scrape still answers the counters; the gauges keep their last values.
            Err(e) => tracing::warn!(error = %e, "cannot count the backlog for metrics"),
        }
        if let Some(n) = self.store.connections_in_use() {
            self.metrics.db_connections_in_use(n);
        }
        self.metrics.render()
    }

    async fn health(&self) -> tooltool_ports::HealthChecks {
        let mut checks = vec![(
            "database".to_owned(),
            self.store.ping().await.map_err(|e| e.to_string()),
        )];
        // A HEAD of a key that never exists proves the region answers.
        let probe = final_key(&Digest::from_bytes(&[0; 64]));
        for blobs in &self.regions {
            let verdict = blobs
                .head(&probe)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string());
            checks.push((format!("storage:{}", blobs.region()), verdict));
        }
        checks
    }

    async fn receive_blob(
        &self,
        region: &str,
        key: &str,
        query: &str,
        body: ByteStream,
    ) -> Result<(), ApiError> {
        let blobs = self.region_by_text(region)?;
        let now = self.clock.now();
        blobs
            .authorize(SignedMethod::Put, key, query, now)
            .map_err(blob_error)?;
        let staging = StagingKey::parse(key).ok_or_else(|| blob_error(BlobError::NotFound))?;
        let slot = self
            .store
            .pending_upload(&staging)
            .await
            .map_err(store_error)?
            .filter(|s| s.region == *blobs.region())
            .ok_or_else(|| {
                ApiError::new(
                    ErrorKind::Conflict,
                    "this upload slot is closed (already verified, rejected or abandoned); ask for a new one with POST /upload",
                )
            })?;
        // Held for as long as a transfer may reasonably take; released on failure.
        let claimed = self
            .store
            .claim_upload(&staging, now, later(now, self.settings.verify_lease))
            .await
            .map_err(store_error)?;
        if !claimed {
            return Err(ApiError::new(
                ErrorKind::Conflict,
                "this upload slot is being uploaded or verified right now",
            ));
        }
        let (observed, info) = match blobs.receive(&staging, slot.size, body).await {
            Ok(received) => received,
            Err(BlobError::TooLarge { .. }) => {
                let reason = format!(
                    "uploaded content does not match the declared size: expected {} bytes, received more",
                    slot.size
                );
                self.store
                    .reject_upload(&staging, reason.clone())
                    .await
                    .map_err(store_error)?;
                return Err(ApiError::new(ErrorKind::BadRequest, reason));
            }
            Err(e) => {
                let _ = self.store.release_upload(&staging).await;
                return Err(blob_error(e));
            }
        };
        match self.settle(&slot, &observed, &info).await? {
            Verified::Valid => Ok(()),
            Verified::Rejected(reason) => Err(ApiError::new(ErrorKind::BadRequest, reason)),
            Verified::NotYet => Err(ApiError::new(
                ErrorKind::Conflict,
                "the upload changed while it was verified; retry",
            )),
        }
    }

    async fn serve_blob(
        &self,
        region: &str,
        key: &str,
        query: &str,
        range: ByteRange,
    ) -> Result<Opened, ApiError> {
        let blobs = self.region_by_text(region)?;
        blobs
            .authorize(SignedMethod::Get, key, query, self.clock.now())
            .map_err(blob_error)?;
        // Signed GETs are only ever issued for verified files.
        let is_final = key
            .strip_prefix("sha512/")
            .is_some_and(|d| Digest::parse(d).is_ok());
        if !is_final {
            return Err(blob_error(BlobError::NotFound));
        }
        blobs.open(key, range).await.map_err(blob_error)
    }
}
