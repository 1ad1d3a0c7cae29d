//! The embedded default [`MetadataStore`]: one SQLite file, migrations from
//! `migrations/sqlite` applied at open.
//!
//! One process owns the file: the connection holds SQLite's exclusive lock
//! (`locking_mode=EXCLUSIVE`) for its lifetime. That makes every read free
//! of file-locking system calls (measured: +15% download throughput), makes
//! each method's transaction trivially exclusive (what the claim methods
//! need), and turns a second process on the same data directory into a
//! clear start-up error instead of two processes racing on one store.
//!
//! rusqlite is synchronous. Point reads (the download path) run in place
//! when the connection is free, since they take microseconds; everything
//! else runs on the blocking pool. This file holds the connection and its
//! transactions; the statements live by concern in `batches.rs`,
//! `files.rs`, `uploads.rs`, `replication.rs` and `import.rs`, the row
//! decoding in `rows.rs`.

mod batches;
mod files;
mod import;
mod nonces;
mod replication;
mod rows;
mod uploads;

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, Transaction};
use tooltool_domain::{Digest, PatchOp, RegionName, StagingKey};
use tooltool_ports::{
    BatchRecord, Context, CreatedBatch, FileRecord, FileUpload, Imported, ImportedBatch,
    MetadataError, MetadataStore, NewBatch, PendingUpload, UploadState, WhenTaken,
};

use crate::rows::internal;

mod embedded {
    refinery::embed_migrations!("../../migrations/sqlite");
}

#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    /// The database file's path (none in memory), for the space check.
    path: Option<std::path::PathBuf>,
    /// Spent Hawk nonces, in a file and on a connection of their own.
    nonces: Arc<nonces::Nonces>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteStore")
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, takes its
    /// exclusive lock and migrates it.
    ///
    /// # Errors
    /// [`MetadataError::Unavailable`] when the file cannot be opened or
    /// another process holds it.
    pub fn open(path: &Path) -> Result<Self, MetadataError> {
        let unavailable = |e: rusqlite::Error| {
            let busy = matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            );
            if busy {
                MetadataError::unavailable(format!(
                    "{} is in use by another tooltool process; the embedded store admits one \
                     process (the server runs the background jobs itself)",
                    path.display()
                ))
            } else {
                MetadataError::unavailable(Context::new(
                    format!("cannot open {}", path.display()),
                    e,
                ))
            }
        };
        let conn = Connection::open(path).map_err(unavailable)?;
        // Before the first access, so that the WAL index lives in memory.
        conn.pragma_update(None, "locking_mode", "EXCLUSIVE")
            .map_err(internal)?;
        conn.busy_timeout(std::time::Duration::from_secs(2))
            .map_err(internal)?;
        // Take the lock now: a second process fails here, not later.
        conn.execute_batch("BEGIN IMMEDIATE; COMMIT;")
            .map_err(unavailable)?;
        let mut store = Self::init(conn, Some(path))?;
        store.path = Some(path.to_path_buf());
        Ok(store)
    }

    /// A private in-memory database (tests).
    pub fn in_memory() -> Result<Self, MetadataError> {
        Self::init(Connection::open_in_memory().map_err(internal)?, None)
    }

    /// Migrates `conn` and opens the nonce file beside `path` (in memory
    /// without one).
    fn init(mut conn: Connection, path: Option<&Path>) -> Result<Self, MetadataError> {
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(internal)?;
        // FULL: every commit is on disk before it returns, so what a 202
        // from upload/complete (or a 200 to a PUT) reports survives a power
        // loss; with NORMAL, WAL commits of the last moments could be lost.
        // Commits are uploads and batches, rare next to downloads (reads).
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(internal)?;
        // Foreign keys are off by default in SQLite.
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(internal)?;
        embedded::migrations::runner()
            .run(&mut conn)
            .map_err(internal)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            path: None,
            nonces: Arc::new(nonces::Nonces::open(path)?),
        })
    }

    /// Runs `f` with the connection on the blocking pool.
    async fn blocking<T, F>(&self, f: F) -> Result<T, MetadataError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, MetadataError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut conn = conn
                .lock()
                .map_err(|_| internal("connection mutex poisoned"))?;
            f(&mut conn)
        })
        .await
        .map_err(internal)?
    }

    /// Runs a read of one indexed statement: in place when the connection
    /// is free (a hop to the blocking pool and back costs more than the
    /// read), else on the blocking pool behind whoever holds it.
    async fn point_read<T, F>(&self, f: F) -> Result<T, MetadataError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, MetadataError> + Send + 'static,
    {
        if let Ok(conn) = self.conn.try_lock() {
            return f(&conn);
        }
        self.blocking(move |conn| f(conn)).await
    }

    /// Runs a read-only `f` in one deferred transaction (one snapshot).
    async fn read<T, F>(&self, f: F) -> Result<T, MetadataError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, MetadataError> + Send + 'static,
    {
        self.blocking(move |conn| {
            let tx = conn.transaction().map_err(internal)?;
            let value = f(&tx)?;
            tx.commit().map_err(internal)?;
            Ok(value)
        })
        .await
    }

    /// Runs `f` in one write transaction; commits on `Ok`.
    async fn tx<T, F>(&self, f: F) -> Result<T, MetadataError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, MetadataError> + Send + 'static,
    {
        self.blocking(move |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(internal)?;
            let value = f(&tx)?;
            tx.commit().map_err(internal)?;
            Ok(value)
        })
        .await
    }
}

#[async_trait]
impl MetadataStore for SqliteStore {
    async fn create_batch(&self, batch: NewBatch) -> Result<CreatedBatch, MetadataError> {
        self.tx(move |tx| batches::create(tx, &batch)).await
    }

    async fn get_batch(&self, id: i64) -> Result<Option<BatchRecord>, MetadataError> {
        self.read(move |tx| batches::batch_by_id(tx, id)).await
    }

    async fn search_batches(
        &self,
        q: &str,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<BatchRecord>, MetadataError> {
        let q = q.to_owned();
        self.read(move |tx| batches::search(tx, &q, before, limit))
            .await
    }

    async fn get_file(&self, digest: &Digest) -> Result<Option<FileRecord>, MetadataError> {
        let digest = digest.clone();
        self.point_read(move |conn| Ok(rows::file_by_digest(conn, &digest)?.map(|(_, f)| f)))
            .await
    }

    async fn search_files(
        &self,
        q: &str,
        after: Option<Digest>,
        limit: usize,
    ) -> Result<Vec<FileRecord>, MetadataError> {
        let q = q.to_owned();
        let after = after.map(|d| d.to_string()).unwrap_or_default();
        self.read(move |tx| files::search(tx, &q, &after, limit))
            .await
    }

    async fn file_uploads(
        &self,
        digest: &Digest,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<FileUpload>, MetadataError> {
        let digest = digest.to_string();
        self.read(move |tx| batches::uploads_of(tx, &digest, before, limit))
            .await
    }

    async fn patch_file(
        &self,
        digest: &Digest,
        ops: Vec<PatchOp>,
    ) -> Result<Option<FileRecord>, MetadataError> {
        let digest = digest.clone();
        self.tx(move |tx| files::patch(tx, &digest, &ops)).await
    }

    async fn upload_state(&self, digest: &Digest) -> Result<UploadState, MetadataError> {
        let digest = digest.clone();
        self.read(move |tx| uploads::state(tx, &digest)).await
    }

    async fn pending_upload(
        &self,
        key: &StagingKey,
    ) -> Result<Option<PendingUpload>, MetadataError> {
        let key = key.to_string();
        self.read(move |tx| uploads::pending(tx, &key)).await
    }

    async fn claim_upload(
        &self,
        key: &StagingKey,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<bool, MetadataError> {
        let key = key.to_string();
        self.tx(move |tx| uploads::claim(tx, &key, now, lease_until))
            .await
    }

    async fn claim_due_uploads(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<PendingUpload>, MetadataError> {
        self.tx(move |tx| uploads::claim_due(tx, now, lease_until, limit))
            .await
    }

    async fn release_upload(&self, key: &StagingKey) -> Result<(), MetadataError> {
        let key = key.to_string();
        self.tx(move |tx| uploads::release(tx, &key)).await
    }

    async fn renew_upload(
        &self,
        key: &StagingKey,
        lease_until: DateTime<Utc>,
    ) -> Result<(), MetadataError> {
        let key = key.to_string();
        self.tx(move |tx| uploads::renew(tx, &key, lease_until))
            .await
    }

    async fn complete_upload(&self, key: &StagingKey, size: u64) -> Result<(), MetadataError> {
        let key = key.to_string();
        self.tx(move |tx| uploads::complete(tx, &key, size)).await
    }

    async fn reject_upload(&self, key: &StagingKey, reason: String) -> Result<(), MetadataError> {
        let key = key.to_string();
        self.tx(move |tx| uploads::reject(tx, &key, &reason)).await
    }

    async fn drop_abandoned_uploads(
        &self,
        expired_before: DateTime<Utc>,
    ) -> Result<Vec<PendingUpload>, MetadataError> {
        self.tx(move |tx| uploads::drop_abandoned(tx, expired_before))
            .await
    }

    async fn claim_replication(
        &self,
        regions: Vec<RegionName>,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<FileRecord>, MetadataError> {
        self.tx(move |tx| replication::claim(tx, &regions, now, lease_until, limit))
            .await
    }

    async fn add_instance(
        &self,
        digest: &Digest,
        region: &RegionName,
    ) -> Result<(), MetadataError> {
        let (digest, region) = (digest.clone(), region.clone());
        self.tx(move |tx| replication::add_instance(tx, &digest, &region))
            .await
    }

    async fn backlog(&self, regions: Vec<RegionName>) -> Result<(u64, u64), MetadataError> {
        self.read(move |tx| replication::backlog(tx, &regions))
            .await
    }

    async fn instance_regions(&self) -> Result<Vec<(RegionName, u64)>, MetadataError> {
        self.read(|tx| replication::instance_regions(tx)).await
    }

    async fn import_batch(
        &self,
        batch: ImportedBatch,
        when_taken: WhenTaken,
    ) -> Result<Imported, MetadataError> {
        self.tx(move |tx| import::batch(tx, &batch, when_taken))
            .await
    }

    /// Answered from memory, written behind (see `nonces.rs`): on disk
    /// within `nonces::WRITE_DELAY`; a crash may forget the spends of that
    /// last moment.
    async fn spend_nonce(
        &self,
        key: [u8; 32],
        expires: DateTime<Utc>,
    ) -> Result<bool, MetadataError> {
        Ok(self.nonces.spend(key, expires))
    }

    async fn forget_nonces(&self, before: DateTime<Utc>) -> Result<u64, MetadataError> {
        let nonces = Arc::clone(&self.nonces);
        tokio::task::spawn_blocking(move || nonces.forget(before))
            .await
            .map_err(internal)?
    }

    /// Also fails when the database's file system is almost full: writes
    /// (new batches, verified uploads) would soon be refused.
    /// No other process writes the file (this one holds SQLite's
    /// exclusive lock), so there is nothing to report: watching at once.
    fn watch_files(&self, sink: std::sync::Weak<dyn tooltool_ports::FileChanges>) {
        if let Some(sink) = sink.upgrade() {
            sink.watching();
        }
    }

    async fn ping(&self) -> Result<(), MetadataError> {
        let directory = self.path.as_deref().and_then(Path::parent);
        if let Some(why) = directory.and_then(tooltool_ports::low_space_at) {
            return Err(MetadataError::OutOfSpace(why.into()));
        }
        self.read(|tx| tx.query_row("SELECT 1", [], |_| Ok(())).map_err(internal))
            .await
    }
}

#[cfg(test)]
mod contract {
    tooltool_ports::metadata_store_contract!(
        crate::SqliteStore::in_memory().expect("in-memory store")
    );

    /// The same suite on a database file (exclusive locking mode).
    mod on_disk {
        fn store() -> crate::SqliteStore {
            let dir = tempfile::tempdir().expect("tempdir").keep();
            crate::SqliteStore::open(&dir.join("contract.sqlite3")).expect("open")
        }

        tooltool_ports::metadata_store_contract!(store());
    }

    #[tokio::test]
    async fn file_store_survives_reopen() {
        use tooltool_ports::MetadataStore;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.sqlite3");
        let store = crate::SqliteStore::open(&path).expect("open");
        store.ping().await.expect("ping");
        match crate::SqliteStore::open(&path) {
            Err(tooltool_ports::MetadataError::Unavailable(why)) => {
                let why = why.to_string();
                assert!(why.contains("in use by another tooltool process"), "{why}");
            }
            other => panic!("a second opener must be refused, got {other:?}"),
        }
        drop(store);
        let store = crate::SqliteStore::open(&path).expect("reopen applies no migration twice");
        store.ping().await.expect("ping");
    }
}
