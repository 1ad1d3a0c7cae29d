//! Upload batches: recording one (the batch transaction of the port),
//! loading them with their files, and searching them.

use std::collections::HashMap;

use crate::statements::Statements;
use tokio_postgres::types::{ToSql, Type};
use tooltool_domain::{Digest, ExistingFile, Visibility, batches_in_page, reconcile};
use tooltool_ports::{
    BatchRecord, CreatedBatch, FileRecord, FileUpload, MetadataError, NewBatch, PendingUpload,
};

use crate::rows::{
    FILE_COLUMNS, db_error, file_from_row, get, internal, like_literal, to_i64, to_i64_count,
    to_u64,
};

/// Up to this many authors matching a batch search are looked up one by one.
const FEW_AUTHORS: usize = 32;

/// Records `batch` inside `tx`.
pub(crate) async fn create(
    tx: &impl Statements,
    batch: &NewBatch,
) -> Result<CreatedBatch, MetadataError> {
    let row = tx
        .query_one(
            "INSERT INTO batches (uploaded, author, message) VALUES ($1, $2, $3) RETURNING id",
            &[&batch.uploaded, &batch.author, &batch.message],
        )
        .await
        .map_err(db_error)?;
    let batch_id: i64 = get(&row, 0)?;
    let mut uploads: Vec<PendingUpload> = Vec::new();
    // Files are locked in digest order, whatever the order of their
    // filenames: two batches sharing digests then lock them in the same
    // order and take turns, where crossed orders deadlocked.
    for (declared, slot) in batch.files_in_digest_order() {
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
            Some(row) => (get::<i64>(&row, 0)?, None),
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
                    visibility: Visibility::parse(get(&row, 1)?).map_err(internal)?,
                    size: to_u64(get(&row, 2)?)?,
                    has_instance: get(&row, 3)?,
                };
                (get::<i64>(&row, 0)?, Some(existing))
            }
        };
        let disposition = reconcile(declared, existing.as_ref(), batch.max_size)?;
        tx.execute(
            "INSERT INTO batch_files (batch_id, file_id, filename) VALUES ($1, $2, $3)",
            &[&batch_id, &file_id, &declared.filename],
        )
        .await
        .map_err(db_error)?;
        // One slot per digest per batch, for a file without a verified copy.
        let needs_slot = disposition.needs_upload()
            && !uploads.iter().any(|u| u.key.digest() == &declared.digest);
        if needs_slot {
            tx.execute(
                "INSERT INTO pending_uploads (staging_key, file_id, size, region, expires) \
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &slot.to_string(),
                    &file_id,
                    &size,
                    &batch.region.as_str(),
                    &batch.slot_expires,
                ],
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
    let record = by_id(tx, batch_id)
        .await?
        .ok_or_else(|| internal("batch vanished inside its transaction"))?;
    Ok(CreatedBatch {
        batch: record,
        uploads,
    })
}

/// The batches that declared `digest`, newest first, below `before`:
/// through the `batch_files (file_id)` index, one row per batch.
pub(crate) async fn uploads_of<C: Statements>(
    c: &C,
    digest: &Digest,
    before: Option<i64>,
    limit: usize,
) -> Result<Vec<FileUpload>, MetadataError> {
    let rows = c
        .query_typed(
            "SELECT b.id, b.uploaded, b.author, b.message, \
                    array_agg(bf.filename ORDER BY bf.filename) \
             FROM batch_files bf JOIN batches b ON b.id = bf.batch_id \
             WHERE bf.file_id = (SELECT id FROM files WHERE digest = $1) AND bf.batch_id < $2 \
             GROUP BY b.id ORDER BY b.id DESC LIMIT $3",
            &[
                (&digest.as_str(), Type::TEXT),
                (&before.unwrap_or(i64::MAX), Type::INT8),
                (&to_i64_count(limit)?, Type::INT8),
            ],
        )
        .await
        .map_err(db_error)?;
    rows.iter()
        .map(|r| {
            Ok(FileUpload {
                batch_id: get(r, 0)?,
                uploaded: get(r, 1)?,
                author: get(r, 2)?,
                message: get(r, 3)?,
                filenames: get(r, 4)?,
            })
        })
        .collect()
}

pub(crate) async fn by_id<C: Statements>(
    c: &C,
    id: i64,
) -> Result<Option<BatchRecord>, MetadataError> {
    Ok(by_ids(c, &[id]).await?.pop())
}

/// Loads batches with their files in two pipelined statements, in the
/// order of `ids` (unknown ids are left out): searches return up to a
/// thousand batches, which must not cost a thousand round trips.
async fn by_ids<C: Statements>(c: &C, ids: &[i64]) -> Result<Vec<BatchRecord>, MetadataError> {
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
    let mut files: HashMap<i64, Vec<(String, FileRecord)>> = HashMap::new();
    for r in &rows {
        let batch_id: i64 = get(r, 0)?;
        let name: String = get(r, 1)?;
        files
            .entry(batch_id)
            .or_default()
            .push((name, file_from_row(r, 2)?.1));
    }
    let mut by_id: HashMap<i64, BatchRecord> = HashMap::new();
    for head in heads {
        let id: i64 = get(&head, 0)?;
        by_id.insert(
            id,
            BatchRecord {
                id,
                uploaded: get(&head, 1)?,
                author: get(&head, 2)?,
                message: get(&head, 3)?,
                files: files.remove(&id).unwrap_or_default(),
            },
        );
    }
    Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
}

/// Batches whose author or message contains `q` literally, newest first,
/// below `before`, at most `limit`.
pub(crate) async fn search<C: Statements>(
    c: &C,
    q: &str,
    before: Option<i64>,
    limit: usize,
) -> Result<Vec<BatchRecord>, MetadataError> {
    let pattern = format!("%{}%", like_literal(q));
    // Matching authors first (a small table, see migration V2), passed
    // as values so that the plan fits how many batches they have.
    let authors: Vec<String> = c
        .query_typed(
            "SELECT author FROM batch_authors WHERE author LIKE $1",
            &[(&pattern, Type::TEXT)],
        )
        .await
        .map_err(db_error)?
        .iter()
        .map(|r| get(r, 0))
        .collect::<Result<_, _>>()?;
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
    let rows = c
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
                (&to_i64_count(limit)?, Type::INT8),
                (&before.unwrap_or(i64::MAX), Type::INT8),
                (&authors, Type::TEXT_ARRAY),
            ],
        )
        .await
        .map_err(db_error)?;
    let ids: Vec<i64> = rows.iter().map(|r| get(r, 0)).collect::<Result<_, _>>()?;
    // The page ends where its files would pass the budget (see
    // `batches_in_page`), counted on the primary key before any file is read.
    let counted: HashMap<i64, i64> = c
        .query_typed(
            "SELECT batch_id, count(*) FROM batch_files WHERE batch_id = ANY($1) GROUP BY batch_id",
            &[(&ids, Type::INT8_ARRAY)],
        )
        .await
        .map_err(db_error)?
        .iter()
        .map(|r| Ok((get(r, 0)?, get(r, 1)?)))
        .collect::<Result<_, MetadataError>>()?;
    let taken =
        batches_in_page(ids.iter().map(|id| {
            usize::try_from(counted.get(id).copied().unwrap_or(0)).unwrap_or(usize::MAX)
        }));
    by_ids(c, &ids[..taken]).await
}
