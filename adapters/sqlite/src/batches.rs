//! Upload batches: recording one (the batch transaction of the port),
//! reading one, and searching them.

use rusqlite::{Connection, OptionalExtension, params};
use tooltool_domain::{ExistingFile, batches_in_page, reconcile};
use tooltool_ports::{
    BatchRecord, CreatedBatch, FileUpload, MetadataError, NewBatch, PendingUpload,
};

use crate::rows::{
    FILE_COLUMNS, file_record, from_micros, internal, micros, parse_visibility, raw_file, to_i64,
    to_u64,
};

/// Records `batch` (the caller holds the write transaction).
pub(crate) fn create(tx: &Connection, batch: &NewBatch) -> Result<CreatedBatch, MetadataError> {
    tx.execute(
        "INSERT INTO batches (uploaded, author, message) VALUES (?1, ?2, ?3)",
        params![micros(batch.uploaded), batch.author, batch.message],
    )
    .map_err(internal)?;
    let batch_id = tx.last_insert_rowid();
    let mut uploads: Vec<PendingUpload> = Vec::new();
    for (declared, slot) in batch.files_in_digest_order() {
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
        let disposition = reconcile(declared, existing.as_ref().map(|(_, e)| e), batch.max_size)?;
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
        // One slot per digest per batch, for a file without a verified copy.
        let needs_slot = disposition.needs_upload()
            && !uploads.iter().any(|u| u.key.digest() == &declared.digest);
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
}

pub(crate) fn batch_by_id(tx: &Connection, id: i64) -> Result<Option<BatchRecord>, MetadataError> {
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

/// The batches that declared `digest`, newest first, below `before`: through
/// the `batch_files (file_id)` index, one row per batch, the filenames
/// joined with `/` (which no filename contains).
pub(crate) fn uploads_of(
    tx: &Connection,
    digest: &str,
    before: Option<i64>,
    limit: usize,
) -> Result<Vec<FileUpload>, MetadataError> {
    tx.prepare_cached(
        "SELECT b.id, b.uploaded, b.author, b.message, group_concat(bf.filename, '/') \
         FROM batch_files bf JOIN batches b ON b.id = bf.batch_id \
         WHERE bf.file_id = (SELECT id FROM files WHERE digest = ?1) AND bf.batch_id < ?2 \
         GROUP BY b.id ORDER BY b.id DESC LIMIT ?3",
    )
    .map_err(internal)?
    .query_map(
        params![digest, before.unwrap_or(i64::MAX), to_i64(limit as u64)?],
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        },
    )
    .map_err(internal)?
    .map(|row| {
        let (batch_id, uploaded, author, message, names) = row.map_err(internal)?;
        let mut filenames: Vec<String> = names.split('/').map(str::to_owned).collect();
        filenames.sort();
        Ok(FileUpload {
            batch_id,
            uploaded: from_micros(uploaded)?,
            author,
            message,
            filenames,
        })
    })
    .collect()
}

/// Batches whose author or message contains `q`, newest first, below `before`.
pub(crate) fn search(
    tx: &Connection,
    q: &str,
    before: Option<i64>,
    limit: usize,
) -> Result<Vec<BatchRecord>, MetadataError> {
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
    // The page ends where its files would pass the budget (see
    // `batches_in_page`), counted on the primary key before any file is read.
    let mut count = tx
        .prepare_cached("SELECT count(*) FROM batch_files WHERE batch_id = ?1")
        .map_err(internal)?;
    let counts = ids
        .iter()
        .map(|id| {
            count
                .query_row([id], |r| r.get::<_, i64>(0))
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
                .map_err(internal)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let taken = batches_in_page(counts);
    ids.into_iter()
        .take(taken)
        .filter_map(|id| batch_by_id(tx, id).transpose())
        .collect()
}
