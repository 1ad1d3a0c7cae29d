//! The production [`MetadataStore`] on PostgreSQL (deadpool-postgres +
//! tokio-postgres), migrations from `migrations/postgres` applied under an
//! advisory lock so that processes starting together do not collide.
//!
//! Several server processes share one database: every claim is a single
//! `UPDATE … WHERE` (one slot) or `FOR UPDATE SKIP LOCKED` (a batch of
//! work), so no two processes hold the same item, and a holder that died
//! loses its items when its lease ends.
//!
//! This file holds the pool, the migrations and the one transaction
//! helper; the statements live by concern in `batches.rs`, `files.rs`,
//! `uploads.rs`, `replication.rs` and `import.rs`, row decoding and error
//! mapping in `rows.rs`.

mod batches;
mod files;
mod import;
pub mod legacy;
mod listen;
mod nonces;
mod replication;
mod rows;
mod startup;
mod statements;
mod tls;
mod uploads;

use std::sync::Weak;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;
use tooltool_domain::{Digest, PatchOp, RegionName, StagingKey};
use tooltool_ports::{
    BatchRecord, Cause, CreatedBatch, FileChanges, FileRecord, FileUpload, Imported, ImportedBatch,
    MetadataError, MetadataStore, NewBatch, PendingUpload, UploadState, WhenTaken,
};

use crate::rows::{db_error, pool_error};
pub use crate::startup::StartupError;

mod embedded {
    refinery::embed_migrations!("../../migrations/postgres");
}

/// Key of the advisory lock that serializes migrations across processes.
const MIGRATION_LOCK: i64 = 0x746f_6f6c_746f_6f6c; // "tooltool"

#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    /// The pool's connection settings, for the session that listens for
    /// file changes (`listen.rs`), and its TLS when the URL requires it.
    listen_config: tokio_postgres::Config,
    listen_tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("pool", &self.pool.status())
            .finish()
    }
}

/// Settings of the pool.
#[derive(Debug, Clone)]
pub struct PgOptions {
    pub pool_size: usize,
    /// Longest a statement may run (server side) before it is cancelled.
    pub statement_timeout: Duration,
    /// Longest a request waits for a connection.
    pub connect_timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            pool_size: 16,
            statement_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

impl PgStore {
    /// Connects to `url` (`postgres://` or `postgresql://`) and migrates,
    /// retrying for up to `startup_wait` while the server does not answer
    /// (or answers that it is starting or full).
    ///
    /// `sslmode=require` in the URL encrypts the connection (see `tls.rs`);
    /// without it the connection is plain TCP.
    ///
    /// # Errors
    /// An invalid URL; a refusal by the server (unknown database or role,
    /// wrong password), at once; a server still unreachable after
    /// `startup_wait`; a failed migration. Each says why in one line.
    pub async fn connect(
        url: &str,
        options: &PgOptions,
        startup_wait: Duration,
    ) -> Result<Self, StartupError> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(StartupError::Scheme);
        }
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| StartupError::Url(e.to_string()))?;
        let server = startup::describe(&config);
        let existing = config.get_options().unwrap_or_default().to_owned();
        config.options(format!(
            "{existing} -c statement_timeout={}",
            options.statement_timeout.as_millis()
        ));
        config.connect_timeout(options.connect_timeout);
        // Lets operators find (and tests terminate) this service's sessions.
        if config.get_application_name().is_none() {
            config.application_name("tooltool");
        }
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        // TLS exactly when the URL asks for it; anything else is plain TCP.
        let mut listen_config = config.clone();
        // Operators (and tests) tell the listening session from the pool's.
        let name = format!(
            "{}{}",
            config.get_application_name().unwrap_or_default(),
            listen::APPLICATION_SUFFIX
        );
        listen_config.application_name(&name);
        let (manager, listen_tls) =
            if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
                let tls = tls::require().map_err(|e| StartupError::Tls(e.to_string()))?;
                (
                    Manager::from_config(config, tls.clone(), manager_config),
                    Some(tls),
                )
            } else {
                config.ssl_mode(tokio_postgres::config::SslMode::Disable);
                listen_config.ssl_mode(tokio_postgres::config::SslMode::Disable);
                (Manager::from_config(config, NoTls, manager_config), None)
            };
        let pool = Pool::builder(manager)
            .max_size(options.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.connect_timeout))
            .create_timeout(Some(options.connect_timeout))
            .recycle_timeout(Some(options.connect_timeout))
            .build()
            .map_err(|e| StartupError::Pool(e.to_string()))?;
        let store = Self {
            pool,
            listen_config,
            listen_tls,
        };
        let started = tokio::time::Instant::now();
        let mut delay = Duration::from_millis(100);
        let mut warned = false;
        let conn = loop {
            let e = match store.pool.get().await {
                Ok(conn) => break conn,
                Err(e) => e,
            };
            match startup::attempt(&e, options.connect_timeout) {
                startup::Attempt::Permanent { reason, hint } => {
                    return Err(StartupError::Refused {
                        server,
                        reason,
                        hint,
                    });
                }
                startup::Attempt::Transient(reason) => {
                    if started.elapsed() + delay >= startup_wait {
                        return Err(StartupError::Unreachable {
                            server,
                            waited: started.elapsed(),
                            reason,
                        });
                    }
                    // One line while waiting, not one per attempt.
                    if !warned {
                        tracing::warn!(%server, %reason, wait = ?startup_wait, "waiting for PostgreSQL");
                        warned = true;
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        };
        Self::migrate(conn)
            .await
            .map_err(|e| startup::migration(&server, &*e))?;
        Ok(store)
    }

    /// Applies pending migrations under a session advisory lock.
    async fn migrate(mut conn: deadpool_postgres::Object) -> Result<(), Cause> {
        conn.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        let client: &mut tokio_postgres::Client = &mut conn;
        let result = embedded::migrations::runner()
            .run_async(client)
            .await
            .map(|_| ())
            .map_err(Cause::from);
        let unlock = conn
            .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
            .await;
        result?;
        unlock?;
        Ok(())
    }

    /// A connection of the pool.
    async fn client(&self) -> Result<deadpool_postgres::Object, MetadataError> {
        self.pool.get().await.map_err(pool_error)
    }

    /// Runs `f` in one transaction (a read-only snapshot when `snapshot`),
    /// committed when `f` succeeds and rolled back (dropped) otherwise: the
    /// one place a transaction is set up.
    async fn in_transaction<T>(
        &self,
        snapshot: bool,
        f: impl AsyncFnOnce(&deadpool_postgres::Transaction<'_>) -> Result<T, MetadataError>,
    ) -> Result<T, MetadataError> {
        let mut conn = self.client().await?;
        let builder = conn.build_transaction();
        let builder = if snapshot {
            builder
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
        } else {
            builder
        };
        let tx = builder.start().await.map_err(db_error)?;
        let value = f(&tx).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(value)
    }
}

#[async_trait]
impl MetadataStore for PgStore {
    async fn create_batch(&self, batch: NewBatch) -> Result<CreatedBatch, MetadataError> {
        self.in_transaction(false, async |tx| batches::create(tx, &batch).await)
            .await
    }

    async fn get_batch(&self, id: i64) -> Result<Option<BatchRecord>, MetadataError> {
        batches::by_id(&self.client().await?, id).await
    }

    async fn search_batches(
        &self,
        q: &str,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<BatchRecord>, MetadataError> {
        batches::search(&self.client().await?, q, before, limit).await
    }

    async fn get_file(&self, digest: &Digest) -> Result<Option<FileRecord>, MetadataError> {
        Ok(rows::file_by_digest(&self.client().await?, digest)
            .await?
            .map(|(_, f)| f))
    }

    async fn search_files(
        &self,
        q: &str,
        after: Option<Digest>,
        limit: usize,
    ) -> Result<Vec<FileRecord>, MetadataError> {
        files::search(&self.client().await?, q, after.as_ref(), limit).await
    }

    async fn file_uploads(
        &self,
        digest: &Digest,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<FileUpload>, MetadataError> {
        batches::uploads_of(&self.client().await?, digest, before, limit).await
    }

    async fn patch_file(
        &self,
        digest: &Digest,
        ops: Vec<PatchOp>,
    ) -> Result<Option<FileRecord>, MetadataError> {
        self.in_transaction(false, async |tx| files::patch(tx, digest, &ops).await)
            .await
    }

    async fn upload_state(&self, digest: &Digest) -> Result<UploadState, MetadataError> {
        // One snapshot for the three reads.
        self.in_transaction(true, async |tx| uploads::state(tx, digest).await)
            .await
    }

    async fn pending_upload(
        &self,
        key: &StagingKey,
    ) -> Result<Option<PendingUpload>, MetadataError> {
        uploads::pending(&self.client().await?, key).await
    }

    async fn claim_upload(
        &self,
        key: &StagingKey,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<bool, MetadataError> {
        uploads::claim(&self.client().await?, key, now, lease_until).await
    }

    async fn claim_due_uploads(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<PendingUpload>, MetadataError> {
        uploads::claim_due(&self.client().await?, now, lease_until, limit).await
    }

    async fn release_upload(&self, key: &StagingKey) -> Result<(), MetadataError> {
        uploads::release(&self.client().await?, key).await
    }

    async fn renew_upload(
        &self,
        key: &StagingKey,
        lease_until: DateTime<Utc>,
    ) -> Result<(), MetadataError> {
        uploads::renew(&self.client().await?, key, lease_until).await
    }

    async fn complete_upload(&self, key: &StagingKey, size: u64) -> Result<(), MetadataError> {
        self.in_transaction(false, async |tx| uploads::complete(tx, key, size).await)
            .await
    }

    async fn reject_upload(&self, key: &StagingKey, reason: String) -> Result<(), MetadataError> {
        self.in_transaction(false, async |tx| uploads::reject(tx, key, &reason).await)
            .await
    }

    async fn drop_abandoned_uploads(
        &self,
        expired_before: DateTime<Utc>,
    ) -> Result<Vec<PendingUpload>, MetadataError> {
        uploads::drop_abandoned(&self.client().await?, expired_before).await
    }

    async fn claim_replication(
        &self,
        regions: Vec<RegionName>,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<FileRecord>, MetadataError> {
        replication::claim(&self.client().await?, &regions, now, lease_until, limit).await
    }

    async fn add_instance(
        &self,
        digest: &Digest,
        region: &RegionName,
    ) -> Result<(), MetadataError> {
        replication::add_instance(&self.client().await?, digest, region).await
    }

    async fn backlog(&self, regions: Vec<RegionName>) -> Result<(u64, u64), MetadataError> {
        replication::backlog(&self.client().await?, &regions).await
    }

    async fn instance_regions(&self) -> Result<Vec<(RegionName, u64)>, MetadataError> {
        replication::instance_regions(&self.client().await?).await
    }

    async fn import_batch(
        &self,
        batch: ImportedBatch,
        when_taken: WhenTaken,
    ) -> Result<Imported, MetadataError> {
        self.in_transaction(false, async |tx| {
            import::batch(tx, &batch, when_taken).await
        })
        .await
    }

    /// A session of its own LISTENs for the triggers' notifications
    /// (`listen.rs`), reconnecting while `sink` lives.
    fn watch_files(&self, sink: Weak<dyn FileChanges>) {
        let config = self.listen_config.clone();
        match self.listen_tls.clone() {
            Some(tls) => tokio::spawn(listen::run(config, tls, sink)),
            None => tokio::spawn(listen::run(config, NoTls, sink)),
        };
    }

    fn connections_in_use(&self) -> Option<u64> {
        let s = self.pool.status();
        Some(s.size.saturating_sub(s.available) as u64)
    }

    async fn spend_nonce(
        &self,
        key: [u8; 32],
        expires: DateTime<Utc>,
    ) -> Result<bool, MetadataError> {
        nonces::spend(&self.client().await?, &key, expires).await
    }

    async fn forget_nonces(&self, before: DateTime<Utc>) -> Result<u64, MetadataError> {
        nonces::forget(&self.client().await?, before).await
    }

    async fn ping(&self) -> Result<(), MetadataError> {
        statements::Statements::execute(&self.client().await?, "SELECT 1", &[])
            .await
            .map_err(db_error)?;
        Ok(())
    }
}

#[cfg(any(test, feature = "testing"))]
pub mod testing;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod listen_tests;
