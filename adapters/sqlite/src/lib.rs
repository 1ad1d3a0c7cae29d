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
//! else runs on the blocking pool.

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use tooltool_domain::{
    Digest, ExistingFile, FileDisposition, PatchOp, RegionName, StagingKey, Visibility, reconcile,
};
use tooltool_ports::{
    BatchRecord, CreatedBatch, FileRecord, ImportedBatch, MetadataError, MetadataStore, NewBatch,
    PendingUpload, UploadState,
};

mod embedded {
    refinery::embed_migrations!("../../migrations/sqlite");
}

#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteStore")
    }
}

fn internal(e: impl std::fmt::Display) -> MetadataError {
    MetadataError::Internal(e.to_string())
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn from_micros(v: i64) -> Result<DateTime<Utc>, MetadataError> {
    DateTime::from_timestamp_micros(v).ok_or_else(|| internal(format!("bad timestamp {v}")))
}

fn to_u64(v: i64) -> Result<u64, MetadataError> {
    u64::try_from(v).map_err(internal)
}

fn to_i64(v: u64) -> Result<i64, MetadataError> {
    i64::try_from(v).map_err(internal)
}

fn parse_digest(s: &str) -> Result<Digest, MetadataError> {
    Digest::parse(s).map_err(internal)
}

fn parse_visibility(s: &str) -> Result<Visibility, MetadataError> {
    Visibility::parse(s).map_err(internal)
}

fn parse_region(s: &str) -> Result<RegionName, MetadataError> {
    RegionName::parse(s).map_err(internal)
}

fn parse_key(s: &str) -> Result<StagingKey, MetadataError> {
    StagingKey::parse(s).ok_or_else(|| internal(format!("bad staging key {s}")))
}

/// A file row with its instances folded into one column (region names
/// cannot contain commas), so that reading files is one statement. A macro
/// so that hot queries can be assembled at compile time with `concat!`.
macro_rules! file_columns {
    () => {
        "f.id, f.digest, f.size, f.visibility, \
         (SELECT group_concat(region, ',') FROM \
           (SELECT region FROM file_instances i WHERE i.file_id = f.id ORDER BY region))"
    };
}
const FILE_COLUMNS: &str = file_columns!();
/// The download path's query.
const FILE_BY_DIGEST: &str = concat!(
    "SELECT ",
    file_columns!(),
    " FROM files f WHERE f.digest = ?1"
);

fn split_regions(list: Option<String>) -> Result<Vec<RegionName>, MetadataError> {
    list.as_deref()
        .unwrap_or_default()
        .split(',')
        .filter(|r| !r.is_empty())
        .map(parse_region)
        .collect()
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
            MetadataError::Unavailable(if busy {
                format!(
                    "{} is in use by another tooltool process; the embedded store admits one \
                     process (the server runs the background jobs itself)",
                    path.display()
                )
            } else {
                format!("cannot open {}: {e}", path.display())
            })
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
        Self::init(conn)
    }

    /// A private in-memory database (tests).
    pub fn in_memory() -> Result<Self, MetadataError> {
        Self::init(Connection::open_in_memory().map_err(internal)?)
    }

    fn init(mut conn: Connection) -> Result<Self, MetadataError> {
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(internal)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(internal)?;
        // Foreign keys are off by default in SQLite.
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(internal)?;
        embedded::migrations::runner()
            .run(&mut conn)
            .map_err(internal)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
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

/// The raw columns of [`FILE_COLUMNS`].
type RawFile = (i64, String, i64, String, Option<String>);

/// Reads the [`FILE_COLUMNS`] starting at column `at`.
fn raw_file(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<RawFile> {
    Ok((
        r.get(at)?,
        r.get(at + 1)?,
        r.get(at + 2)?,
        r.get(at + 3)?,
        r.get(at + 4)?,
    ))
}

fn file_record(
    (id, digest, size, vis, regions): RawFile,
) -> Result<(i64, FileRecord), MetadataError> {
    Ok((
        id,
        FileRecord {
            digest: parse_digest(&digest)?,
            size: to_u64(size)?,
            visibility: parse_visibility(&vis)?,
            instances: split_regions(regions)?,
        },
    ))
}

/// Reads rows of [`FILE_COLUMNS`] into records.
fn file_rows(
    tx: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<(i64, FileRecord)>, MetadataError> {
    let mut stmt = tx.prepare_cached(sql).map_err(internal)?;
    let raw = stmt
        .query_map(params, |r| raw_file(r, 0))
        .map_err(internal)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(internal)?;
    raw.into_iter().map(file_record).collect()
}

fn file_by_digest(
    tx: &Connection,
    digest: &Digest,
) -> Result<Option<(i64, FileRecord)>, MetadataError> {
    Ok(file_rows(tx, FILE_BY_DIGEST, [digest.as_str()])?.pop())
}

fn batch_by_id(tx: &Connection, id: i64) -> Result<Option<BatchRecord>, MetadataError> {
    let head = tx
        .query_row(
            "SELECT uploaded, author, message FROM batches WHERE id = ?1",
            [id],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            },
        )
        .optional()
        .map_err(internal)?;
    let Some((uploaded, author, message)) = head else {
        return Ok(None);
    };
    let files = tx
        .prepare_cached(&format!(
            "SELECT bf.filename, {FILE_COLUMNS} FROM batch_files bf \
             JOIN files f ON f.id = bf.file_id WHERE bf.batch_id = ?1 ORDER BY bf.filename"
        ))
        .map_err(internal)?
        .query_map([id], |r| Ok((r.get::<_, String>(0)?, raw_file(r, 1)?)))
        .map_err(internal)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(internal)?
        .into_iter()
        .map(|(name, raw)| Ok((name, file_record(raw)?.1)))
        .collect::<Result<Vec<_>, MetadataError>>()?;
    Ok(Some(BatchRecord {
        id,
        uploaded: from_micros(uploaded)?,
        author,
        message,
        files,
    }))
}

fn pending_rows(
    tx: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<PendingUpload>, MetadataError> {
    let mut stmt = tx.prepare_cached(sql).map_err(internal)?;
    let raw = stmt
        .query_map(params, |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .map_err(internal)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(internal)?;
    raw.into_iter()
        .map(|(key, size, region, expires)| {
            Ok(PendingUpload {
                key: parse_key(&key)?,
                size: to_u64(size)?,
                region: parse_region(&region)?,
                expires: from_micros(expires)?,
            })
        })
        .collect()
}

const PENDING_COLUMNS: &str = "p.staging_key, p.size, p.region, p.expires";

#[async_trait]
impl MetadataStore for SqliteStore {
    async fn create_batch(&self, batch: NewBatch) -> Result<CreatedBatch, MetadataError> {
        self.tx(move |tx| {
            tx.execute(
                "INSERT INTO batches (uploaded, author, message) VALUES (?1, ?2, ?3)",
                params![micros(batch.uploaded), batch.author, batch.message],
            )
            .map_err(internal)?;
            let batch_id = tx.last_insert_rowid();
            let mut uploads: Vec<PendingUpload> = Vec::new();
            for (declared, slot) in batch.files.iter().zip(&batch.slots) {
                let existing = tx
                    .query_row(
                        "SELECT f.id, f.visibility, f.size, \
                         EXISTS (SELECT 1 FROM file_instances i WHERE i.file_id = f.id) \
                         FROM files f WHERE f.digest = ?1",
                        [declared.digest.as_str()],
                        |r| {
                            Ok((
                                r.get::<_, i64>(0)?,
                                r.get::<_, String>(1)?,
                                r.get::<_, i64>(2)?,
                                r.get::<_, bool>(3)?,
                            ))
                        },
                    )
                    .optional()
                    .map_err(internal)?;
                let existing = existing
                    .map(|(id, vis, size, has_instance)| {
                        Ok::<_, MetadataError>((
                            id,
                            ExistingFile {
                                visibility: parse_visibility(&vis)?,
                                size: to_u64(size)?,
                                has_instance,
                            },
                        ))
                    })
                    .transpose()?;
                let disposition =
                    reconcile(declared, existing.as_ref().map(|(_, e)| e), batch.max_size)?;
                let file_id = match existing {
                    Some((id, _)) => id,
                    None => {
                        tx.execute(
                            "INSERT INTO files (digest, size, visibility) VALUES (?1, ?2, ?3)",
                            params![
                                declared.digest.as_str(),
                                to_i64(declared.size)?,
                                declared.visibility.as_str()
                            ],
                        )
                        .map_err(internal)?;
                        tx.last_insert_rowid()
                    }
                };
                let inserted = tx
                    .execute(
                        "INSERT OR IGNORE INTO batch_files (batch_id, file_id, filename) VALUES (?1, ?2, ?3)",
                        params![batch_id, file_id, declared.filename],
                    )
                    .map_err(internal)?;
                if inserted == 0 {
                    return Err(internal(format!(
                        "duplicate filename {:?} in one batch",
                        declared.filename
                    )));
                }
                let needs_slot = matches!(
                    disposition,
                    FileDisposition::New | FileDisposition::AwaitingContent
                ) && !uploads.iter().any(|u| u.key.digest() == &declared.digest);
                if needs_slot {
                    tx.execute(
                        "INSERT INTO pending_uploads (staging_key, file_id, size, region, expires) \
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![
                            slot.to_string(),
                            file_id,
                            to_i64(declared.size)?,
                            batch.region.as_str(),
                            micros(batch.slot_expires)
                        ],
                    )
                    .map_err(internal)?;
                    tx.execute("UPDATE files SET rejection = NULL WHERE id = ?1", [file_id])
                        .map_err(internal)?;
                    uploads.push(PendingUpload {
                        key: slot.clone(),
                        size: declared.size,
                        region: batch.region.clone(),
                        expires: batch.slot_expires,
                    });
                }
            }
            let record = batch_by_id(tx, batch_id)?
                .ok_or_else(|| internal("batch vanished inside its transaction"))?;
            Ok(CreatedBatch {
                batch: record,
                uploads,
            })
        })
        .await
    }

    async fn get_batch(&self, id: i64) -> Result<Option<BatchRecord>, MetadataError> {
        self.read(move |tx| batch_by_id(tx, id)).await
    }

    async fn search_batches(
        &self,
        q: &str,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<BatchRecord>, MetadataError> {
        let q = q.to_owned();
        self.read(move |tx| {
            let ids = tx
                .prepare_cached(
                    "SELECT id FROM batches WHERE (instr(author, ?1) > 0 OR instr(message, ?1) > 0) \
                     AND id < ?3 ORDER BY id DESC LIMIT ?2",
                )
                .map_err(internal)?
                .query_map(
                    params![q, to_i64(limit as u64)?, before.unwrap_or(i64::MAX)],
                    |r| r.get::<_, i64>(0),
                )
                .map_err(internal)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(internal)?;
            ids.into_iter()
                .filter_map(|id| batch_by_id(tx, id).transpose())
                .collect()
        })
        .await
    }

    async fn get_file(&self, digest: &Digest) -> Result<Option<FileRecord>, MetadataError> {
        let digest = digest.clone();
        self.point_read(move |conn| Ok(file_by_digest(conn, &digest)?.map(|(_, f)| f)))
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
        self.read(move |tx| {
            // `substr(...) = ?1` keeps `%`/`_` literal; the filename side uses instr.
            let sql = format!(
                "SELECT {FILE_COLUMNS} FROM files f WHERE f.digest > ?3 \
                 AND (substr(f.digest, 1, length(?1)) = ?1 \
                 OR EXISTS (SELECT 1 FROM batch_files bf WHERE bf.file_id = f.id AND instr(bf.filename, ?1) > 0)) \
                 ORDER BY f.digest LIMIT ?2"
            );
            Ok(file_rows(tx, &sql, params![q, to_i64(limit as u64)?, after])?
                .into_iter()
                .map(|(_, f)| f)
                .collect())
        })
        .await
    }

    async fn patch_file(
        &self,
        digest: &Digest,
        ops: Vec<PatchOp>,
    ) -> Result<Option<FileRecord>, MetadataError> {
        let digest = digest.clone();
        self.tx(move |tx| {
            let Some((id, _)) = file_by_digest(tx, &digest)? else {
                return Ok(None);
            };
            for op in ops {
                match op {
                    PatchOp::SetVisibility(v) => tx
                        .execute(
                            "UPDATE files SET visibility = ?1 WHERE id = ?2",
                            params![v.as_str(), id],
                        )
                        .map_err(internal)?,
                    PatchOp::DeleteInstances => tx
                        .execute("DELETE FROM file_instances WHERE file_id = ?1", [id])
                        .map_err(internal)?,
                };
            }
            Ok(file_by_digest(tx, &digest)?.map(|(_, f)| f))
        })
        .await
    }

    async fn upload_state(&self, digest: &Digest) -> Result<UploadState, MetadataError> {
        let digest = digest.clone();
        self.read(move |tx| {
            let Some((id, file)) = file_by_digest(tx, &digest)? else {
                return Ok(UploadState::default());
            };
            let pending = pending_rows(
                tx,
                &format!(
                    "SELECT {PENDING_COLUMNS} FROM pending_uploads p WHERE p.file_id = ?1 ORDER BY p.expires"
                ),
                [id],
            )?;
            let rejection = tx
                .query_row("SELECT rejection FROM files WHERE id = ?1", [id], |r| {
                    r.get::<_, Option<String>>(0)
                })
                .map_err(internal)?;
            Ok(UploadState {
                file: Some(file),
                pending,
                rejection,
            })
        })
        .await
    }

    async fn pending_upload(
        &self,
        key: &StagingKey,
    ) -> Result<Option<PendingUpload>, MetadataError> {
        let key = key.to_string();
        self.read(move |tx| {
            Ok(pending_rows(
                tx,
                &format!(
                    "SELECT {PENDING_COLUMNS} FROM pending_uploads p WHERE p.staging_key = ?1"
                ),
                [key],
            )?
            .pop())
        })
        .await
    }

    async fn claim_upload(
        &self,
        key: &StagingKey,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<bool, MetadataError> {
        let key = key.to_string();
        self.tx(move |tx| {
            let n = tx
                .execute(
                    "UPDATE pending_uploads SET lease_until = ?1 WHERE staging_key = ?2 \
                     AND (lease_until IS NULL OR lease_until <= ?3)",
                    params![micros(lease_until), key, micros(now)],
                )
                .map_err(internal)?;
            Ok(n == 1)
        })
        .await
    }

    async fn claim_due_uploads(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<PendingUpload>, MetadataError> {
        self.tx(move |tx| {
            let due = pending_rows(
                tx,
                &format!(
                    "SELECT {PENDING_COLUMNS} FROM pending_uploads p \
                     WHERE p.lease_until IS NULL OR p.lease_until <= ?1 ORDER BY p.expires LIMIT ?2"
                ),
                params![micros(now), to_i64(limit as u64)?],
            )?;
            for p in &due {
                tx.execute(
                    "UPDATE pending_uploads SET lease_until = ?1 WHERE staging_key = ?2",
                    params![micros(lease_until), p.key.to_string()],
                )
                .map_err(internal)?;
            }
            Ok(due)
        })
        .await
    }

    async fn release_upload(&self, key: &StagingKey) -> Result<(), MetadataError> {
        let key = key.to_string();
        self.tx(move |tx| {
            tx.execute(
                "UPDATE pending_uploads SET lease_until = NULL WHERE staging_key = ?1",
                [key],
            )
            .map_err(internal)?;
            Ok(())
        })
        .await
    }

    async fn complete_upload(&self, key: &StagingKey, size: u64) -> Result<(), MetadataError> {
        let key = key.to_string();
        self.tx(move |tx| {
            let slot = tx
                .query_row(
                    "SELECT file_id, region FROM pending_uploads WHERE staging_key = ?1",
                    [&key],
                    |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
                )
                .optional()
                .map_err(internal)?;
            let Some((file_id, region)) = slot else {
                return Ok(());
            };
            tx.execute(
                "INSERT OR IGNORE INTO file_instances (file_id, region) VALUES (?1, ?2)",
                params![file_id, region],
            )
            .map_err(internal)?;
            tx.execute(
                "UPDATE files SET size = ?1, rejection = NULL WHERE id = ?2",
                params![to_i64(size)?, file_id],
            )
            .map_err(internal)?;
            tx.execute("DELETE FROM pending_uploads WHERE staging_key = ?1", [&key])
                .map_err(internal)?;
            Ok(())
        })
        .await
    }

    async fn reject_upload(&self, key: &StagingKey, reason: String) -> Result<(), MetadataError> {
        let key = key.to_string();
        self.tx(move |tx| {
            let file_id = tx
                .query_row(
                    "SELECT file_id FROM pending_uploads WHERE staging_key = ?1",
                    [&key],
                    |r| r.get::<_, i64>(0),
                )
                .optional()
                .map_err(internal)?;
            let Some(file_id) = file_id else {
                return Ok(());
            };
            tx.execute(
                "UPDATE files SET rejection = ?1 WHERE id = ?2",
                params![reason, file_id],
            )
            .map_err(internal)?;
            tx.execute("DELETE FROM pending_uploads WHERE staging_key = ?1", [&key])
                .map_err(internal)?;
            Ok(())
        })
        .await
    }

    async fn drop_abandoned_uploads(
        &self,
        expired_before: DateTime<Utc>,
    ) -> Result<Vec<PendingUpload>, MetadataError> {
        self.tx(move |tx| {
            let gone = pending_rows(
                tx,
                &format!("SELECT {PENDING_COLUMNS} FROM pending_uploads p WHERE p.expires < ?1"),
                [micros(expired_before)],
            )?;
            tx.execute(
                "DELETE FROM pending_uploads WHERE expires < ?1",
                [micros(expired_before)],
            )
            .map_err(internal)?;
            Ok(gone)
        })
        .await
    }

    async fn claim_replication(
        &self,
        regions: Vec<RegionName>,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<FileRecord>, MetadataError> {
        self.tx(move |tx| {
            // A file needs work when it has some instance but fewer instances
            // among the configured regions than there are regions.
            let placeholders = (0..regions.len())
                .map(|i| format!("?{}", i + 4))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "SELECT {FILE_COLUMNS} FROM files f \
                 WHERE (f.replication_lease IS NULL OR f.replication_lease <= ?1) \
                 AND EXISTS (SELECT 1 FROM file_instances i WHERE i.file_id = f.id) \
                 AND (SELECT count(*) FROM file_instances i WHERE i.file_id = f.id \
                      AND i.region IN ({placeholders})) < ?2 \
                 ORDER BY f.id LIMIT ?3"
            );
            let mut values: Vec<rusqlite::types::Value> = vec![
                micros(now).into(),
                to_i64(regions.len() as u64)?.into(),
                to_i64(limit as u64)?.into(),
            ];
            values.extend(regions.iter().map(|r| r.as_str().to_owned().into()));
            if regions.is_empty() {
                return Ok(Vec::new());
            }
            let candidates = file_rows(tx, &sql, rusqlite::params_from_iter(values))?;
            let mut claimed = Vec::new();
            for (id, file) in candidates {
                tx.execute(
                    "UPDATE files SET replication_lease = ?1 WHERE id = ?2",
                    params![micros(lease_until), id],
                )
                .map_err(internal)?;
                claimed.push(file);
            }
            Ok(claimed)
        })
        .await
    }

    async fn add_instance(
        &self,
        digest: &Digest,
        region: &RegionName,
    ) -> Result<(), MetadataError> {
        let digest = digest.clone();
        let region = region.clone();
        self.tx(move |tx| {
            tx.execute(
                "INSERT OR IGNORE INTO file_instances (file_id, region) \
                 SELECT id, ?2 FROM files WHERE digest = ?1",
                params![digest.as_str(), region.as_str()],
            )
            .map_err(internal)?;
            Ok(())
        })
        .await
    }

    async fn backlog(&self, regions: Vec<RegionName>) -> Result<(u64, u64), MetadataError> {
        self.read(move |tx| {
            let pending: i64 = tx
                .query_row("SELECT count(*) FROM pending_uploads", [], |r| r.get(0))
                .map_err(internal)?;
            let placeholders = (0..regions.len())
                .map(|i| format!("?{}", i + 2))
                .collect::<Vec<_>>()
                .join(", ");
            let missing: i64 = if regions.is_empty() {
                0
            } else {
                let sql = format!(
                    "SELECT count(*) FROM files f \
                     WHERE EXISTS (SELECT 1 FROM file_instances i WHERE i.file_id = f.id) \
                     AND (SELECT count(*) FROM file_instances i WHERE i.file_id = f.id \
                          AND i.region IN ({placeholders})) < ?1"
                );
                let mut values: Vec<rusqlite::types::Value> =
                    vec![to_i64(regions.len() as u64)?.into()];
                values.extend(regions.iter().map(|r| r.as_str().to_owned().into()));
                tx.query_row(&sql, rusqlite::params_from_iter(values), |r| r.get(0))
                    .map_err(internal)?
            };
            Ok((to_u64(pending)?, to_u64(missing)?))
        })
        .await
    }

    async fn import_batch(&self, batch: ImportedBatch) -> Result<bool, MetadataError> {
        self.tx(move |tx| {
            let exists = tx
                .query_row("SELECT 1 FROM batches WHERE id = ?1", [batch.id], |_| Ok(()))
                .optional()
                .map_err(internal)?
                .is_some();
            if exists {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO batches (id, uploaded, author, message) VALUES (?1, ?2, ?3, ?4)",
                params![batch.id, micros(batch.uploaded), batch.author, batch.message],
            )
            .map_err(internal)?;
            for (filename, file) in &batch.files {
                tx.execute(
                    "INSERT OR IGNORE INTO files (digest, size, visibility) VALUES (?1, ?2, ?3)",
                    params![file.digest.as_str(), to_i64(file.size)?, file.visibility.as_str()],
                )
                .map_err(internal)?;
                let file_id: i64 = tx
                    .query_row("SELECT id FROM files WHERE digest = ?1", [file.digest.as_str()], |r| r.get(0))
                    .map_err(internal)?;
                for region in &file.instances {
                    tx.execute(
                        "INSERT OR IGNORE INTO file_instances (file_id, region) VALUES (?1, ?2)",
                        params![file_id, region.as_str()],
                    )
                    .map_err(internal)?;
                }
                tx.execute(
                    "INSERT OR IGNORE INTO batch_files (batch_id, file_id, filename) VALUES (?1, ?2, ?3)",
                    params![batch.id, file_id, filename],
                )
                .map_err(internal)?;
            }
            Ok(true)
        })
        .await
    }

    async fn ping(&self) -> Result<(), MetadataError> {
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
                assert!(why.contains("in use by another tooltool process"), "{why}");
            }
            other => panic!("a second opener must be refused, got {other:?}"),
        }
        drop(store);
        let store = crate::SqliteStore::open(&path).expect("reopen applies no migration twice");
        store.ping().await.expect("ping");
    }
}
