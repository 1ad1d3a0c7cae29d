//! The production [`MetadataStore`] on PostgreSQL (deadpool-postgres +
//! tokio-postgres), migrations from `migrations/postgres` applied under an
//! advisory lock so that processes starting together do not collide.
//!
//! Several server processes share one database: every claim is a single
//! `UPDATE … WHERE` (one slot) or `FOR UPDATE SKIP LOCKED` (a batch of
//! work), so no two processes hold the same item, and a holder that died
//! loses its items when its lease ends.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{NoTls, Row};
use tooltool_domain::{
    Digest, ExistingFile, FileDisposition, PatchOp, RegionName, StagingKey, Visibility, reconcile,
};
use tooltool_ports::{
    BatchRecord, CreatedBatch, FileRecord, ImportedBatch, MetadataError, MetadataStore, NewBatch,
    PendingUpload, UploadState,
};

pub mod legacy;
mod tls;

mod embedded {
    refinery::embed_migrations!("../../migrations/postgres");
}

/// Key of the advisory lock that serializes migrations across processes.
const MIGRATION_LOCK: i64 = 0x746f_6f6c_746f_6f6c; // "tooltool"

#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
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

fn internal(e: impl std::fmt::Display) -> MetadataError {
    MetadataError::Internal(e.to_string())
}

/// Connection-level failures are retryable (503); the rest is a bug or a
/// constraint the application should have checked (500).
fn db_error(e: tokio_postgres::Error) -> MetadataError {
    let detail = e.as_db_error().map_or_else(
        || format!("{e}"),
        |d| format!("{} ({})", d.message(), d.code().code()),
    );
    let transient = e.is_closed()
        || e.code().is_none()
        || e.code().is_some_and(|c| {
            matches!(
                *c,
                SqlState::ADMIN_SHUTDOWN
                    | SqlState::CRASH_SHUTDOWN
                    | SqlState::CANNOT_CONNECT_NOW
                    | SqlState::QUERY_CANCELED
                    | SqlState::T_R_SERIALIZATION_FAILURE
                    | SqlState::T_R_DEADLOCK_DETECTED
                    | SqlState::TOO_MANY_CONNECTIONS
            )
        });
    if transient {
        MetadataError::Unavailable(detail)
    } else {
        MetadataError::Internal(detail)
    }
}

fn pool_error(e: deadpool_postgres::PoolError) -> MetadataError {
    MetadataError::Unavailable(format!("no database connection: {e}"))
}

fn to_u64(v: i64) -> Result<u64, MetadataError> {
    u64::try_from(v).map_err(internal)
}

fn to_i64(v: u64) -> Result<i64, MetadataError> {
    i64::try_from(v).map_err(internal)
}

fn parse_region(s: &str) -> Result<RegionName, MetadataError> {
    RegionName::parse(s).map_err(internal)
}

/// `%`, `_` and `\` taken literally in a LIKE pattern.
/// Up to this many authors matching a batch search are looked up one by one.
const FEW_AUTHORS: usize = 32;

fn like_literal(q: &str) -> String {
    let mut out = String::with_capacity(q.len() + 2);
    for c in q.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

const FILE_COLUMNS: &str = "f.id, f.digest, f.size, f.visibility, \
    COALESCE((SELECT array_agg(region ORDER BY region) FROM file_instances i WHERE i.file_id = f.id), '{}')";

fn file_from_row(row: &Row, at: usize) -> Result<(i64, FileRecord), MetadataError> {
    let regions: Vec<String> = row.try_get(at + 4).map_err(internal)?;
    Ok((
        row.try_get(at).map_err(internal)?,
        FileRecord {
            digest: Digest::parse(row.try_get(at + 1).map_err(internal)?).map_err(internal)?,
            size: to_u64(row.try_get(at + 2).map_err(internal)?)?,
            visibility: Visibility::parse(row.try_get(at + 3).map_err(internal)?)
                .map_err(internal)?,
            instances: regions
                .iter()
                .map(|r| parse_region(r))
                .collect::<Result<_, _>>()?,
        },
    ))
}

const PENDING_COLUMNS: &str = "p.staging_key, p.size, p.region, p.expires";

fn pending_from_row(row: &Row) -> Result<PendingUpload, MetadataError> {
    let key: &str = row.try_get(0).map_err(internal)?;
    Ok(PendingUpload {
        key: StagingKey::parse(key).ok_or_else(|| internal(format!("bad staging key {key}")))?,
        size: to_u64(row.try_get(1).map_err(internal)?)?,
        region: parse_region(row.try_get(2).map_err(internal)?)?,
        expires: row.try_get(3).map_err(internal)?,
    })
}

async fn file_by_digest<C: GenericClient>(
    c: &C,
    digest: &Digest,
) -> Result<Option<(i64, FileRecord)>, MetadataError> {
    let row = c
        .query_opt(
            &format!("SELECT {FILE_COLUMNS} FROM files f WHERE f.digest = $1"),
            &[&digest.as_str()],
        )
        .await
        .map_err(db_error)?;
    row.map(|r| file_from_row(&r, 0)).transpose()
}

async fn batch_by_id<C: tokio_postgres::GenericClient>(
    c: &C,
    id: i64,
) -> Result<Option<BatchRecord>, MetadataError> {
    Ok(batches_by_ids(c, &[id]).await?.pop())
}

/// Loads batches with their files in two pipelined statements, in the order of `ids`
/// (unknown ids are left out): searches return up to a thousand batches,
/// which must not cost a thousand round trips.
async fn batches_by_ids<C: tokio_postgres::GenericClient>(
    c: &C,
    ids: &[i64],
) -> Result<Vec<BatchRecord>, MetadataError> {
    // Typed (one round trip each, no prepare) and pipelined: both are sent
    // before either answer is awaited.
    let files_sql = format!(
        "SELECT bf.batch_id, bf.filename, {FILE_COLUMNS} FROM batch_files bf \
         JOIN files f ON f.id = bf.file_id WHERE bf.batch_id = ANY($1) \
         ORDER BY bf.batch_id, bf.filename"
    );
    let params: [(&(dyn ToSql + Sync), Type); 1] = [(&ids, Type::INT8_ARRAY)];
    let (heads, rows) = tokio::try_join!(
        c.query_typed(
            "SELECT id, uploaded, author, message FROM batches WHERE id = ANY($1)",
            &params,
        ),
        c.query_typed(&files_sql, &params),
    )
    .map_err(db_error)?;
    let mut files: std::collections::HashMap<i64, Vec<(String, FileRecord)>> =
        std::collections::HashMap::new();
    for r in &rows {
        let batch_id: i64 = r.try_get(0).map_err(internal)?;
        let name: String = r.try_get(1).map_err(internal)?;
        files
            .entry(batch_id)
            .or_default()
            .push((name, file_from_row(r, 2)?.1));
    }
    let mut by_id: std::collections::HashMap<i64, BatchRecord> = std::collections::HashMap::new();
    for head in heads {
        let id: i64 = head.try_get(0).map_err(internal)?;
        by_id.insert(
            id,
            BatchRecord {
                id,
                uploaded: head.try_get(1).map_err(internal)?,
                author: head.try_get(2).map_err(internal)?,
                message: head.try_get(3).map_err(internal)?,
                files: files.remove(&id).unwrap_or_default(),
            },
        );
    }
    Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
}

impl PgStore {
    /// Connects to `url` (`postgres://` or `postgresql://`) and migrates,
    /// retrying for up to `startup_wait` while the database is unreachable.
    ///
    /// `sslmode=require` in the URL encrypts the connection (see `tls.rs`);
    /// without it the connection is plain TCP.
    ///
    /// # Errors
    /// An invalid URL, or a database still unreachable after `startup_wait`.
    pub async fn connect(
        url: &str,
        options: &PgOptions,
        startup_wait: Duration,
    ) -> Result<Self, MetadataError> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(MetadataError::Unavailable(
                "DATABASE_URL must start with postgres:// or postgresql://".into(),
            ));
        }
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
            MetadataError::Unavailable(format!("DATABASE_URL is not a valid PostgreSQL URL: {e}"))
        })?;
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
        let manager = if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
            let tls = tls::require()
                .map_err(|e| MetadataError::Unavailable(format!("TLS setup failed: {e}")))?;
            Manager::from_config(config, tls, manager_config)
        } else {
            config.ssl_mode(tokio_postgres::config::SslMode::Disable);
            Manager::from_config(config, NoTls, manager_config)
        };
        let pool = Pool::builder(manager)
            .max_size(options.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.connect_timeout))
            .create_timeout(Some(options.connect_timeout))
            .recycle_timeout(Some(options.connect_timeout))
            .build()
            .map_err(internal)?;
        let store = Self { pool };
        let deadline = tokio::time::Instant::now() + startup_wait;
        let mut delay = Duration::from_millis(100);
        loop {
            match store.migrate().await {
                Ok(()) => return Ok(store),
                Err(MetadataError::Unavailable(why))
                    if tokio::time::Instant::now() + delay < deadline =>
                {
                    tracing::warn!(%why, retry_in = ?delay, "database unreachable; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Applies pending migrations under a session advisory lock.
    async fn migrate(&self) -> Result<(), MetadataError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        conn.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(db_error)?;
        let client: &mut tokio_postgres::Client = &mut conn;
        let result = embedded::migrations::runner()
            .run_async(client)
            .await
            .map(|_| ())
            .map_err(|e| MetadataError::Internal(format!("migration failed: {e}")));
        let unlock = conn
            .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(db_error);
        result.and(unlock.map(|_| ()))
    }
}

#[async_trait]
impl MetadataStore for PgStore {
    async fn create_batch(&self, batch: NewBatch) -> Result<CreatedBatch, MetadataError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let tx = conn.transaction().await.map_err(db_error)?;
        let batch_id: i64 = tx
            .query_one(
                "INSERT INTO batches (uploaded, author, message) VALUES ($1, $2, $3) RETURNING id",
                &[&batch.uploaded, &batch.author, &batch.message],
            )
            .await
            .map_err(db_error)?
            .get(0);
        let mut uploads: Vec<PendingUpload> = Vec::new();
        for (declared, slot) in batch.files.iter().zip(&batch.slots) {
            // Insert-if-absent first: a racer creating the same digest makes
            // us wait for its commit, then we read and lock its row, so
            // batches sharing a digest take turns instead of deadlocking.
            let size = to_i64(declared.size)?;
            let inserted = tx
                .query_opt(
                    "INSERT INTO files (digest, size, visibility) VALUES ($1, $2, $3) \
                     ON CONFLICT (digest) DO NOTHING RETURNING id",
                    &[
                        &declared.digest.as_str(),
                        &size,
                        &declared.visibility.as_str(),
                    ],
                )
                .await
                .map_err(db_error)?;
            let (file_id, existing) = match inserted {
                Some(row) => (row.get::<_, i64>(0), None),
                None => {
                    let row = tx
                        .query_one(
                            "SELECT f.id, f.visibility, f.size, \
                             EXISTS (SELECT 1 FROM file_instances i WHERE i.file_id = f.id) \
                             FROM files f WHERE f.digest = $1 FOR UPDATE",
                            &[&declared.digest.as_str()],
                        )
                        .await
                        .map_err(db_error)?;
                    let existing = ExistingFile {
                        visibility: Visibility::parse(row.get(1)).map_err(internal)?,
                        size: to_u64(row.get(2))?,
                        has_instance: row.get(3),
                    };
                    (row.get::<_, i64>(0), Some(existing))
                }
            };
            let disposition = reconcile(declared, existing.as_ref(), batch.max_size)?;
            tx.execute(
                "INSERT INTO batch_files (batch_id, file_id, filename) VALUES ($1, $2, $3)",
                &[&batch_id, &file_id, &declared.filename],
            )
            .await
            .map_err(db_error)?;
            let needs_slot = matches!(
                disposition,
                FileDisposition::New | FileDisposition::AwaitingContent
            ) && !uploads.iter().any(|u| u.key.digest() == &declared.digest);
            if needs_slot {
                tx.execute(
                    "INSERT INTO pending_uploads (staging_key, file_id, size, region, expires) VALUES ($1, $2, $3, $4, $5)",
                    &[&slot.to_string(), &file_id, &size, &batch.region.as_str(), &batch.slot_expires],
                )
                .await
                .map_err(db_error)?;
                tx.execute(
                    "UPDATE files SET rejection = NULL WHERE id = $1",
                    &[&file_id],
                )
                .await
                .map_err(db_error)?;
                uploads.push(PendingUpload {
                    key: slot.clone(),
                    size: declared.size,
                    region: batch.region.clone(),
                    expires: batch.slot_expires,
                });
            }
        }
        let record = batch_by_id::<tokio_postgres::Transaction>(&tx, batch_id)
            .await?
            .ok_or_else(|| internal("batch vanished inside its transaction"))?;
        tx.commit().await.map_err(db_error)?;
        Ok(CreatedBatch {
            batch: record,
            uploads,
        })
    }

    async fn get_batch(&self, id: i64) -> Result<Option<BatchRecord>, MetadataError> {
        let conn = self.pool.get().await.map_err(pool_error)?;
        batch_by_id::<tokio_postgres::Client>(&conn, id).await
    }

    async fn search_batches(
        &self,
        q: &str,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<BatchRecord>, MetadataError> {
        let conn = self.pool.get().await.map_err(pool_error)?;
        let pattern = format!("%{}%", like_literal(q));
        // Matching authors first (a small table, see migration V2), passed
        // as values so that the plan fits how many batches they have.
        let authors: Vec<String> = conn
            .query_typed(
                "SELECT author FROM batch_authors WHERE author LIKE $1",
                &[(&pattern, Type::TEXT)],
            )
            .await
            .map_err(db_error)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        // A few matching authors: each one's newest batches come straight
        // from the (author, id) index. Many: the term is generic (a domain
        // name), matches are dense, and a walk down the batches newest first
        // fills a page quickly.
        let by_author = if authors.len() <= FEW_AUTHORS {
            "SELECT x.id FROM unnest($4::text[]) AS a (author) CROSS JOIN LATERAL \
               (SELECT id FROM batches b WHERE b.author = a.author AND b.id < $3 \
                ORDER BY b.id DESC LIMIT $2) x \
             ORDER BY x.id DESC LIMIT $2"
        } else {
            "SELECT id FROM batches WHERE author = ANY($4) AND id < $3 ORDER BY id DESC LIMIT $2"
        };
        let rows = conn
            .query_typed(
                // Each side yields its newest `limit` matches with its own
                // best plan; an OR of the two would share one plan.
                &format!(
                    "({by_author}) UNION \
                     (SELECT id FROM batches WHERE message LIKE $1 AND id < $3 \
                      ORDER BY id DESC LIMIT $2) \
                     ORDER BY id DESC LIMIT $2"
                ),
                &[
                    (&pattern, Type::TEXT),
                    (&to_i64(limit as u64)?, Type::INT8),
                    (&before.unwrap_or(i64::MAX), Type::INT8),
                    (&authors, Type::TEXT_ARRAY),
                ],
            )
            .await
            .map_err(db_error)?;
        let ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
        batches_by_ids::<tokio_postgres::Client>(&conn, &ids).await
    }

    async fn get_file(&self, digest: &Digest) -> Result<Option<FileRecord>, MetadataError> {
        let conn = self.pool.get().await.map_err(pool_error)?;
        Ok(file_by_digest(&conn, digest).await?.map(|(_, f)| f))
    }

    async fn search_files(
        &self,
        q: &str,
        after: Option<Digest>,
        limit: usize,
    ) -> Result<Vec<FileRecord>, MetadataError> {
        let conn = self.pool.get().await.map_err(pool_error)?;
        let literal = like_literal(q);
        let rows = conn
            .query_typed(
                &format!(
                    // Each side yields its first `limit` matches by digest,
                    // so a broad term walks the digest index and stops early.
                    "SELECT {FILE_COLUMNS} FROM files f WHERE f.id IN ( \
                       (SELECT id FROM files WHERE digest LIKE $1 AND digest > $4 ORDER BY digest LIMIT $3) \
                       UNION (SELECT g.id FROM files g WHERE g.digest > $4 AND EXISTS \
                                (SELECT 1 FROM batch_files bf WHERE bf.file_id = g.id AND bf.filename LIKE $2) \
                              ORDER BY g.digest LIMIT $3)) \
                     ORDER BY f.digest LIMIT $3"
                ),
                &[
                    (&format!("{literal}%"), Type::TEXT),
                    (&format!("%{literal}%"), Type::TEXT),
                    (&to_i64(limit as u64)?, Type::INT8),
                    (&after.map(|d| d.to_string()).unwrap_or_default(), Type::TEXT),
                ],
            )
            .await
            .map_err(db_error)?;
        rows.iter().map(|r| Ok(file_from_row(r, 0)?.1)).collect()
    }

    async fn patch_file(
        &self,
        digest: &Digest,
        ops: Vec<PatchOp>,
    ) -> Result<Option<FileRecord>, MetadataError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let tx = conn.transaction().await.map_err(db_error)?;
        let Some(row) = tx
            .query_opt(
                "SELECT id FROM files WHERE digest = $1 FOR UPDATE",
                &[&digest.as_str()],
            )
            .await
            .map_err(db_error)?
        else {
            return Ok(None);
        };
        let id: i64 = row.get(0);
        for op in ops {
            match op {
                PatchOp::SetVisibility(v) => tx
                    .execute(
                        "UPDATE files SET visibility = $1 WHERE id = $2",
                        &[&v.as_str(), &id],
                    )
                    .await
                    .map_err(db_error)?,
                PatchOp::DeleteInstances => tx
                    .execute("DELETE FROM file_instances WHERE file_id = $1", &[&id])
                    .await
                    .map_err(db_error)?,
            };
        }
        let file = file_by_digest(&tx, digest).await?.map(|(_, f)| f);
        tx.commit().await.map_err(db_error)?;
        Ok(file)
    }

    async fn upload_state(&self, digest: &Digest) -> Result<UploadState, MetadataError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        // One snapshot for the three reads.
        let tx = conn
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(db_error)?;
        let Some((id, file)) = file_by_digest(&tx, digest).await? else {
            return Ok(UploadState::default());
        };
        let pending = tx
            .query(
                &format!("SELECT {PENDING_COLUMNS} FROM pending_uploads p WHERE p.file_id = $1 ORDER BY p.expires"),
                &[&id],
            )
            .await
            .map_err(db_error)?
            .iter()
            .map(pending_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let rejection: Option<String> = tx
            .query_one("SELECT rejection FROM files WHERE id = $1", &[&id])
            .await
            .map_err(db_error)?
            .get(0);
        tx.commit().await.map_err(db_error)?;
        Ok(UploadState {
            file: Some(file),
            pending,
            rejection,
        })
    }

    async fn pending_upload(
        &self,
        key: &StagingKey,
    ) -> Result<Option<PendingUpload>, MetadataError> {
        let conn = self.pool.get().await.map_err(pool_error)?;
        conn.query_opt(
            &format!("SELECT {PENDING_COLUMNS} FROM pending_uploads p WHERE p.staging_key = $1"),
            &[&key.to_string()],
        )
        .await
        .map_err(db_error)?
        .map(|r| pending_from_row(&r))
        .transpose()
    }

    async fn claim_upload(
        &self,
        key: &StagingKey,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<bool, MetadataError> {
        let conn = self.pool.get().await.map_err(pool_error)?;
        let n = conn
            .execute(
                "UPDATE pending_uploads SET lease_until = $1 WHERE staging_key = $2 \
                 AND (lease_until IS NULL OR lease_until <= $3)",
                &[&lease_until, &key.to_string(), &now],
            )
            .await
            .map_err(db_error)?;
        Ok(n == 1)
    }

    async fn claim_due_uploads(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<PendingUpload>, MetadataError> {
        let conn = self.pool.get().await.map_err(pool_error)?;
        conn.query(
            &format!(
                "UPDATE pending_uploads p SET lease_until = $1 WHERE p.staging_key IN ( \
                   SELECT staging_key FROM pending_uploads \
                   WHERE lease_until IS NULL OR lease_until <= $2 \
                   ORDER BY expires LIMIT $3 FOR UPDATE SKIP LOCKED) \
                 RETURNING {PENDING_COLUMNS}"
            ),
            &[&lease_until, &now, &to_i64(limit as u64)?],
        )
        .await
        .map_err(db_error)?
        .iter()
        .map(pending_from_row)
        .collect::<Result<Vec<_>, _>>()
        .map(|mut v| {
            v.sort_by_key(|p| p.expires);
            v
        })
    }

    async fn release_upload(&self, key: &StagingKey) -> Result<(), MetadataError> {
        let conn = self.pool.get().await.map_err(pool_error)?;
        conn.execute(
            "UPDATE pending_uploads SET lease_until = NULL WHERE staging_key = $1",
            &[&key.to_string()],
        )
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn complete_upload(&self, key: &StagingKey, size: u64) -> Result<(), MetadataError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let tx = conn.transaction().await.map_err(db_error)?;
        let Some(slot) = tx
            .query_opt(
                "DELETE FROM pending_uploads WHERE staging_key = $1 RETURNING file_id, region",
                &[&key.to_string()],
            )
            .await
            .map_err(db_error)?
        else {
            return Ok(());
        };
        let (file_id, region): (i64, String) = (slot.get(0), slot.get(1));
        tx.execute(
            "INSERT INTO file_instances (file_id, region) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&file_id, &region],
        )
        .await
        .map_err(db_error)?;
        tx.execute(
            "UPDATE files SET size = $1, rejection = NULL WHERE id = $2",
            &[&to_i64(size)?, &file_id],
        )
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)
    }

    async fn reject_upload(&self, key: &StagingKey, reason: String) -> Result<(), MetadataError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let tx = conn.transaction().await.map_err(db_error)?;
        if let Some(slot) = tx
            .query_opt(
                "DELETE FROM pending_uploads WHERE staging_key = $1 RETURNING file_id",
                &[&key.to_string()],
            )
            .await
            .map_err(db_error)?
        {
            let file_id: i64 = slot.get(0);
            tx.execute(
                "UPDATE files SET rejection = $1 WHERE id = $2",
                &[&reason, &file_id],
            )
            .await
            .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)
    }

    async fn drop_abandoned_uploads(
        &self,
        expired_before: DateTime<Utc>,
    ) -> Result<Vec<PendingUpload>, MetadataError> {
        let conn = self.pool.get().await.map_err(pool_error)?;
        conn.query(
            &format!(
                "DELETE FROM pending_uploads p WHERE p.expires < $1 RETURNING {PENDING_COLUMNS}"
            ),
            &[&expired_before],
        )
        .await
        .map_err(db_error)?
        .iter()
        .map(pending_from_row)
        .collect()
    }

    async fn claim_replication(
        &self,
        regions: Vec<RegionName>,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<FileRecord>, MetadataError> {
        if regions.is_empty() {
            return Ok(Vec::new());
        }
        let names: Vec<&str> = regions.iter().map(RegionName::as_str).collect();
        let conn = self.pool.get().await.map_err(pool_error)?;
        conn.query(
            &format!(
                "WITH claimed AS ( \
                   UPDATE files SET replication_lease = $1 WHERE id IN ( \
                     SELECT f.id FROM files f \
                     WHERE (f.replication_lease IS NULL OR f.replication_lease <= $2) \
                     AND EXISTS (SELECT 1 FROM file_instances i WHERE i.file_id = f.id) \
                     AND (SELECT count(*) FROM file_instances i WHERE i.file_id = f.id AND i.region = ANY($3)) < $4 \
                     ORDER BY f.id LIMIT $5 FOR UPDATE SKIP LOCKED) \
                   RETURNING id) \
                 SELECT {FILE_COLUMNS} FROM files f JOIN claimed c ON c.id = f.id ORDER BY f.id"
            ),
            &[&lease_until, &now, &names, &to_i64(names.len() as u64)?, &to_i64(limit as u64)?],
        )
        .await
        .map_err(db_error)?
        .iter()
        .map(|r| Ok(file_from_row(r, 0)?.1))
        .collect()
    }

    async fn add_instance(
        &self,
        digest: &Digest,
        region: &RegionName,
    ) -> Result<(), MetadataError> {
        let conn = self.pool.get().await.map_err(pool_error)?;
        conn.execute(
            "INSERT INTO file_instances (file_id, region) SELECT id, $2 FROM files WHERE digest = $1 ON CONFLICT DO NOTHING",
            &[&digest.as_str(), &region.as_str()],
        )
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn backlog(&self, regions: Vec<RegionName>) -> Result<(u64, u64), MetadataError> {
        let names: Vec<&str> = regions.iter().map(RegionName::as_str).collect();
        let conn = self.pool.get().await.map_err(pool_error)?;
        let row = conn
            .query_one(
                "SELECT (SELECT count(*) FROM pending_uploads), \
                 (SELECT count(*) FROM files f \
                  WHERE EXISTS (SELECT 1 FROM file_instances i WHERE i.file_id = f.id) \
                  AND (SELECT count(*) FROM file_instances i WHERE i.file_id = f.id AND i.region = ANY($1)) < $2)",
                &[&names, &to_i64(names.len() as u64)?],
            )
            .await
            .map_err(db_error)?;
        Ok((to_u64(row.get(0))?, to_u64(row.get(1))?))
    }

    async fn import_batch(&self, batch: ImportedBatch) -> Result<bool, MetadataError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let tx = conn.transaction().await.map_err(db_error)?;
        let inserted = tx
            .execute(
                "INSERT INTO batches (id, uploaded, author, message) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (id) DO NOTHING",
                &[&batch.id, &batch.uploaded, &batch.author, &batch.message],
            )
            .await
            .map_err(db_error)?;
        if inserted == 0 {
            return Ok(false);
        }
        for (filename, file) in &batch.files {
            tx.execute(
                "INSERT INTO files (digest, size, visibility) VALUES ($1, $2, $3) ON CONFLICT (digest) DO NOTHING",
                &[&file.digest.as_str(), &to_i64(file.size)?, &file.visibility.as_str()],
            )
            .await
            .map_err(db_error)?;
            let names: Vec<&str> = file.instances.iter().map(RegionName::as_str).collect();
            tx.execute(
                "INSERT INTO file_instances (file_id, region) \
                 SELECT f.id, r FROM files f, unnest($2::text[]) r WHERE f.digest = $1 ON CONFLICT DO NOTHING",
                &[&file.digest.as_str(), &names],
            )
            .await
            .map_err(db_error)?;
            tx.execute(
                "INSERT INTO batch_files (batch_id, file_id, filename) \
                 SELECT $1, id, $3 FROM files WHERE digest = $2 ON CONFLICT DO NOTHING",
                &[&batch.id, &file.digest.as_str(), filename],
            )
            .await
            .map_err(db_error)?;
        }
        // New batches must not collide with imported ids.
        tx.execute(
            "SELECT setval(pg_get_serial_sequence('batches', 'id'), GREATEST((SELECT max(id) FROM batches), 1))",
            &[],
        )
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(true)
    }

    fn connections_in_use(&self) -> Option<u64> {
        let s = self.pool.status();
        Some(s.size.saturating_sub(s.available) as u64)
    }

    async fn ping(&self) -> Result<(), MetadataError> {
        let conn = self.pool.get().await.map_err(pool_error)?;
        conn.execute("SELECT 1", &[]).await.map_err(db_error)?;
        Ok(())
    }
}

/// Test support (feature `testing`): fresh, empty schemas on the throwaway
/// test database.
#[cfg(any(test, feature = "testing"))]
pub mod testing {
    /// Creates a schema on `TOOLTOOL_TEST_DATABASE_URL` and answers a URL
    /// whose sessions use it (and `public`, for pg_trgm), with its name.
    /// Without a database it panics: such tests must not pass silently.
    pub async fn fresh_schema() -> (String, String) {
        let url = std::env::var("TOOLTOOL_TEST_DATABASE_URL").expect(
            "TOOLTOOL_TEST_DATABASE_URL must name a throwaway PostgreSQL database (scripts/test creates one)",
        );
        let schema = {
            use std::hash::{BuildHasher, RandomState};
            format!(
                "t{:016x}",
                RandomState::new().hash_one(std::time::Instant::now())
            )
        };
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .expect("the test database answers");
        tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .await
            .expect("create schema");
        let separator = if url.contains('?') { '&' } else { '?' };
        (
            format!("{url}{separator}options=-c%20search_path%3D{schema},public"),
            schema,
        )
    }
}

#[cfg(test)]
mod contract {
    use std::time::Duration;

    /// A store on a fresh schema, so every test starts empty.
    pub(crate) async fn store() -> crate::PgStore {
        let (url, _) = crate::testing::fresh_schema().await;
        crate::PgStore::connect(&url, &crate::PgOptions::default(), Duration::from_secs(5))
            .await
            .expect("store")
    }

    tooltool_ports::metadata_store_contract!(store().await);
}

#[cfg(test)]
mod tls_tests {
    use tooltool_ports::MetadataStore;

    #[tokio::test]
    async fn sslmode_require_encrypts_the_connection() {
        let plain = super::contract::store().await;
        plain.ping().await.expect("plain");
        let url = std::env::var("TOOLTOOL_TEST_DATABASE_URL").expect("test database");
        let separator = if url.contains('?') { '&' } else { '?' };
        let tls_url = format!("{url}{separator}sslmode=require");
        let store = crate::PgStore::connect(
            &tls_url,
            &crate::PgOptions::default(),
            std::time::Duration::from_secs(5),
        )
        .await
        .expect("TLS connection (the local server has ssl=on)");
        let conn = store.pool.get().await.expect("connection");
        let ssl: bool = conn
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .expect("query")
            .get(0);
        assert!(ssl, "the session is encrypted");
        let conn = plain.pool.get().await.expect("connection");
        let ssl: bool = conn
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .expect("query")
            .get(0);
        assert!(!ssl, "without sslmode=require the session is plain");
    }
}

#[cfg(test)]
mod migration_tests {
    use std::time::Duration;

    use tooltool_ports::MetadataStore;

    /// Four processes starting at once on a new database: the advisory lock
    /// serializes their migrations, so all of them start.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_start_ups_all_migrate() {
        let (url, schema) = crate::testing::fresh_schema().await;
        let admin = std::env::var("TOOLTOOL_TEST_DATABASE_URL").expect("test database");
        let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        let starts = (0..4).map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                crate::PgStore::connect(&url, &crate::PgOptions::default(), Duration::from_secs(5))
                    .await
            })
        });
        for start in starts {
            let store = start.await.expect("join").expect("every process starts");
            store.ping().await.expect("ping");
        }
        let applied: i64 = client
            .query_one(
                &format!("SELECT count(*) FROM {schema}.refinery_schema_history"),
                &[],
            )
            .await
            .expect("history")
            .get(0);
        let embedded = crate::embedded::migrations::runner().get_migrations().len();
        assert_eq!(
            applied,
            i64::try_from(embedded).expect("few"),
            "each migration ran once"
        );
    }
}
