use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tooltool_domain::{
    BatchError, DeclaredFile, Digest, PatchOp, RegionName, StagingKey, Visibility,
};

use crate::Cause;

/// A file as stored: its instances are the regions holding a verified copy,
/// sorted by region name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    pub digest: Digest,
    pub size: u64,
    pub visibility: Visibility,
    pub instances: Vec<RegionName>,
}

impl FileRecord {
    pub fn has_instances(&self) -> bool {
        !self.instances.is_empty()
    }
}

/// A batch with its files sorted by filename.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRecord {
    pub id: i64,
    pub uploaded: DateTime<Utc>,
    pub author: String,
    pub message: String,
    pub files: Vec<(String, FileRecord)>,
}

/// The batch a file was declared in, with the filenames it had there
/// (sorted; two when a batch declared the same content twice).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileUpload {
    pub batch_id: i64,
    pub uploaded: DateTime<Utc>,
    pub author: String,
    pub message: String,
    pub filenames: Vec<String>,
}

/// A batch to record. `slots[i]` is the staging key to use for `files[i]`
/// if that file needs an upload; callers generate them unguessable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBatch {
    pub author: String,
    pub message: String,
    pub uploaded: DateTime<Utc>,
    pub files: Vec<DeclaredFile>,
    pub slots: Vec<StagingKey>,
    pub region: RegionName,
    pub slot_expires: DateTime<Utc>,
    /// The largest size a file may declare.
    pub max_size: u64,
}

impl NewBatch {
    /// Each declared file with its slot, in the order stores MUST examine
    /// them: by digest, whatever the filenames. Stores that lock files
    /// thereby lock them in one global order, so batches sharing digests
    /// take turns instead of deadlocking, and every store reports the same
    /// first broken rule for the same batch.
    pub fn files_in_digest_order(&self) -> Vec<(&DeclaredFile, &StagingKey)> {
        let mut files: Vec<_> = self.files.iter().zip(&self.slots).collect();
        // Stable: a digest declared twice keeps its filenames' order.
        files.sort_by(|(a, _), (b, _)| a.digest.as_str().cmp(b.digest.as_str()));
        files
    }
}

/// An upload slot waiting for (or being checked for) its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingUpload {
    pub key: StagingKey,
    /// The size declared when the slot was handed out.
    pub size: u64,
    pub region: RegionName,
    /// When the slot's signed PUT URL expires.
    pub expires: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedBatch {
    pub batch: BatchRecord,
    /// The slots created by this batch, at most one per digest.
    pub uploads: Vec<PendingUpload>,
}

/// A batch of the original service, as `import-legacy` reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedBatch {
    /// Its id in the original; kept when free, so links to `/upload/<id>`
    /// stay valid, and recorded as its legacy id in any case.
    pub id: i64,
    pub uploaded: DateTime<Utc>,
    pub author: String,
    pub message: String,
    /// Filename → file with the regions that hold it.
    pub files: Vec<(String, FileRecord)>,
}

/// What [`MetadataStore::import_batch`] does when the batch's id is taken
/// by a batch not imported from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenTaken {
    /// Store nothing and answer [`Imported::Taken`].
    Refuse,
    /// Store it under a new id, as a new batch would get.
    Renumber,
}

/// Where [`MetadataStore::import_batch`] put a batch of the original.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Imported {
    /// Stored under its own id.
    Kept,
    /// Stored under this new id, its own being taken.
    Renumbered(i64),
    /// Imported before, as this batch (found by its legacy id); nothing
    /// changed.
    Present(i64),
    /// Its id is taken by a batch with no legacy id of it (one of ours, or
    /// one imported before legacy ids were recorded); nothing changed.
    Taken,
}

/// Everything `upload/complete` needs to know about one digest.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UploadState {
    pub file: Option<FileRecord>,
    pub pending: Vec<PendingUpload>,
    /// Why the last verification of this digest failed, until a new slot is
    /// handed out or a copy is verified.
    pub rejection: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// The batch breaks a rule against what is stored; nothing was written.
    #[error(transparent)]
    Rejected(#[from] BatchError),
    /// The store cannot be reached or refused for a passing reason
    /// (connection lost, overload, a deadlock broken): retryable.
    #[error("metadata store unavailable")]
    Unavailable(#[source] Cause),
    #[error("metadata store failure")]
    Internal(#[source] Cause),
    /// The database has no space left for the write; nothing was kept.
    #[error("metadata store full")]
    OutOfSpace(#[source] Cause),
}

impl MetadataError {
    pub fn unavailable(cause: impl Into<Cause>) -> Self {
        Self::Unavailable(cause.into())
    }

    /// A failure of the store; [`MetadataError::OutOfSpace`] when the
    /// cause says the disk is full.
    pub fn internal(cause: impl Into<Cause>) -> Self {
        let cause = cause.into();
        if crate::is_out_of_space(&*cause) {
            Self::OutOfSpace(cause)
        } else {
            Self::Internal(cause)
        }
    }
}

/// Files, instances, batches and upload slots.
///
/// # Errors
/// Every method maps native failures to [`MetadataError::Unavailable`]
/// (cannot reach the store: retryable) or [`MetadataError::Internal`],
/// keeping the native error as the cause; no method leaves a partial write
/// behind when it fails.
/// Where a store reports changes to files (see
/// [`MetadataStore::watch_files`]): a cache of [`FileRecord`]s in front
/// of the store, which drops what it holds of a file when told.
///
/// Implementations MUST be cheap and non-blocking: a store calls them from
/// the task that reads its notifications.
pub trait FileChanges: Send + Sync {
    /// `digest`'s record (visibility, size, instances, existence) changed
    /// in a committed write.
    fn changed(&self, digest: &Digest);
    /// Changes may be missed from now on (the store lost the connection it
    /// hears them on): nothing held may be trusted or kept until
    /// [`FileChanges::watching`].
    fn interrupted(&self);
    /// Every change committed from now on will be reported; any held
    /// before may be stale and MUST be dropped.
    fn watching(&self);
}

/// Counters of a cache in front of a store, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    /// Entries dropped to stay within the size bound or for age.
    pub evictions: u64,
    /// Entries dropped because the file changed, and whole-cache drops.
    pub invalidations: u64,
    pub entries: u64,
    /// Estimated bytes the entries take.
    pub bytes: u64,
}

#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait MetadataStore: Send + Sync {
    /// Records a batch in ONE transaction: each declared file, in
    /// [`NewBatch::files_in_digest_order`], is checked
    /// with [`tooltool_domain::reconcile`] against the state inside that
    /// transaction (so concurrent batches with the same new digest both
    /// succeed and leave one file), files are created, and a slot is created
    /// for every file without an instance (one per digest per batch).
    /// Creating a slot clears the digest's recorded rejection.
    ///
    /// # Errors
    /// [`MetadataError::Rejected`] with the first broken rule; nothing stored.
    async fn create_batch(&self, batch: NewBatch) -> Result<CreatedBatch, MetadataError>;

    async fn get_batch(&self, id: i64) -> Result<Option<BatchRecord>, MetadataError>;

    /// Batches whose author or message contains `q` literally (no
    /// wildcards), newest first, only those with an id below `before` when
    /// given (the cursor of the next page), at most `limit`. Empty `q`
    /// matches all. The page MUST end before a batch that would bring
    /// the files of its batches above `MAX_FILES_PER_PAGE`, unless that
    /// batch comes first (`tooltool_domain::batches_in_page`), and MUST
    /// count files without loading those it leaves out.
    async fn search_batches(
        &self,
        q: &str,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<BatchRecord>, MetadataError>;

    async fn get_file(&self, digest: &Digest) -> Result<Option<FileRecord>, MetadataError>;

    /// Files with a filename containing `q` literally or a digest starting
    /// with `q`, each once, ordered by digest, only those after `after`
    /// when given (the cursor of the next page), the first `limit`.
    async fn search_files(
        &self,
        q: &str,
        after: Option<Digest>,
        limit: usize,
    ) -> Result<Vec<FileRecord>, MetadataError>;

    /// The batches that declared `digest`, one entry per batch with every
    /// filename it gave the file, newest batch first, only batches with an
    /// id below `before` when given, at most `limit`. Empty for an unknown
    /// digest. MUST find the batches through an index on the file, not by
    /// scanning batches.
    async fn file_uploads(
        &self,
        digest: &Digest,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<FileUpload>, MetadataError>;

    /// Applies `ops` in order in one transaction; `None` if the file is unknown.
    /// `DeleteInstances` removes every instance record (the caller deletes
    /// the objects).
    async fn patch_file(
        &self,
        digest: &Digest,
        ops: Vec<PatchOp>,
    ) -> Result<Option<FileRecord>, MetadataError>;

    async fn upload_state(&self, digest: &Digest) -> Result<UploadState, MetadataError>;

    async fn pending_upload(
        &self,
        key: &StagingKey,
    ) -> Result<Option<PendingUpload>, MetadataError>;

    /// Takes an exclusive lease on one slot until `lease_until`; `false` if
    /// the slot is gone or another live lease holds it. Across processes
    /// sharing a store, at most one holder at a time.
    async fn claim_upload(
        &self,
        key: &StagingKey,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<bool, MetadataError>;

    /// Leases up to `limit` slots that nobody holds, oldest first.
    async fn claim_due_uploads(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<PendingUpload>, MetadataError>;

    /// Gives a lease back early (nothing to do yet, or a retryable failure).
    async fn release_upload(&self, key: &StagingKey) -> Result<(), MetadataError>;

    /// Moves a held lease's end to `lease_until` (its holder renews it
    /// while the work goes on, so leases can be short and a dead holder's
    /// lapses soon). MUST NOT take a lease on a slot nobody holds; a slot
    /// that is gone is `Ok`.
    async fn renew_upload(
        &self,
        key: &StagingKey,
        lease_until: DateTime<Utc>,
    ) -> Result<(), MetadataError>;

    /// The slot's content was verified and promoted: records the instance in
    /// the slot's region, sets the file's size to `size`, drops the slot and
    /// the digest's rejection. Idempotent: a slot already gone is `Ok`.
    async fn complete_upload(&self, key: &StagingKey, size: u64) -> Result<(), MetadataError>;

    /// The slot's content was wrong: drops the slot and records `reason` as
    /// the digest's rejection. Idempotent like `complete_upload`.
    async fn reject_upload(&self, key: &StagingKey, reason: String) -> Result<(), MetadataError>;

    /// Drops every slot whose URL expired before `expired_before` and
    /// returns them (so their staging objects can be deleted).
    async fn drop_abandoned_uploads(
        &self,
        expired_before: DateTime<Utc>,
    ) -> Result<Vec<PendingUpload>, MetadataError>;

    /// Leases up to `limit` files that have at least one instance but lack
    /// one of `regions`, and that no live lease holds.
    async fn claim_replication(
        &self,
        regions: Vec<RegionName>,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<FileRecord>, MetadataError>;

    /// Records a verified copy in `region` (idempotent). Replication leases
    /// are not released: they expire, which spaces out retries of a region
    /// that keeps failing.
    async fn add_instance(&self, digest: &Digest, region: &RegionName)
    -> Result<(), MetadataError>;

    /// Counts pending uploads, and files that have an instance but lack one
    /// of `regions` (the replication backlog), for metrics.
    async fn backlog(&self, regions: Vec<RegionName>) -> Result<(u64, u64), MetadataError>;

    /// Every region at least one instance is recorded in, with the number
    /// of files that have a copy there, ordered by region name. Start-up
    /// compares them with the configured regions: a copy in a region that
    /// is no longer configured cannot be served.
    async fn instance_regions(&self) -> Result<Vec<(RegionName, u64)>, MetadataError>;

    /// Imports one batch of the original service in one transaction, its
    /// original id recorded as its legacy id: files are created when absent
    /// (an existing file keeps its state), their instances added.
    /// Idempotent: a batch whose legacy id is recorded is
    /// [`Imported::Present`]. Otherwise the batch keeps its id when free;
    /// when taken, `when_taken` decides. Later new batches MUST get ids
    /// above every imported one. Legacy ids are those of one original
    /// database.
    async fn import_batch(
        &self,
        batch: ImportedBatch,
        when_taken: WhenTaken,
    ) -> Result<Imported, MetadataError>;

    /// Spends a one-time credential value (a Hawk nonce: `key` is a hash of
    /// client id, nonce and timestamp) until `expires`, the end of the
    /// window in which its credential is accepted. MUST answer `Ok(true)`
    /// to exactly one of all calls with one key — concurrent calls, other
    /// processes sharing the store, calls after a restart — until
    /// [`MetadataStore::forget_nonces`] forgets it, and `Ok(false)` to the
    /// others. A store MAY write the key within moments after answering
    /// (refusing it meanwhile), so that a request does not wait for a
    /// commit; it MUST then say what a crash can forget.
    async fn spend_nonce(
        &self,
        key: [u8; 32],
        expires: DateTime<Utc>,
    ) -> Result<bool, MetadataError>;

    /// Forgets the nonces whose `expires` is before `before` (their
    /// credentials are refused by the timestamp window anyway), returning
    /// how many; the sweep job calls it so the table stays the size of one
    /// window's traffic.
    async fn forget_nonces(&self, before: DateTime<Utc>) -> Result<u64, MetadataError>;

    /// Starts telling `sink` of every file change committed by other
    /// processes sharing the store (changes made through this handle MAY
    /// be reported too: a cache drops those itself). A store MUST call
    /// [`FileChanges::watching`] once such changes are reported (at once,
    /// if no other process can write it), [`FileChanges::interrupted`] as
    /// soon as it may miss one, and `watching` again when it hears them
    /// again; it MUST stop calling once `sink` is gone (it keeps only
    /// the weak reference). A store that cannot tell never calls
    /// `watching` (the default): nothing of it may be cached.
    fn watch_files(&self, sink: std::sync::Weak<dyn FileChanges>) {
        drop(sink);
    }

    /// The counters of a cache in front of the store, if there is one.
    fn cache_stats(&self) -> Option<CacheStats> {
        None
    }

    /// Database connections checked out of the pool right now, for metrics;
    /// `None` for stores without a pool.
    fn connections_in_use(&self) -> Option<u64> {
        None
    }

    /// Cheap liveness check for health endpoints.
    async fn ping(&self) -> Result<(), MetadataError>;
}
