//! Importing batches of the original service, ids kept.

use rusqlite::{Connection, OptionalExtension, params};
use tooltool_ports::{ImportedBatch, MetadataError};

use crate::rows::{internal, micros, to_i64};

/// Imports `batch` unless its id exists (the caller holds the write
/// transaction); `false` when it was there already.
pub(crate) fn batch(tx: &Connection, batch: &ImportedBatch) -> Result<bool, MetadataError> {
    let exists = tx
        .query_row(
            "SELECT 1 FROM batches WHERE id = ?1",
            [batch.id],
            |_| Ok(()),
        )
        .optional()
        .map_err(internal)?
        .is_some();
    if exists {
        return Ok(false);
    }
    tx.execute(
        "INSERT INTO batches (id, uploaded, author, message) VALUES (?1, ?2, ?3, ?4)",
        params![
            batch.id,
            micros(batch.uploaded),
            batch.author,
            batch.message
        ],
    )
    .map_err(internal)?;
    for (filename, file) in &batch.files {
        tx.execute(
            "INSERT OR IGNORE INTO files (digest, size, visibility) VALUES (?1, ?2, ?3)",
            params![
                file.digest.as_str(),
                to_i64(file.size)?,
                file.visibility.as_str()
            ],
        )
        .map_err(internal)?;
        let file_id: i64 = tx
            .query_row(
                "SELECT id FROM files WHERE digest = ?1",
                [file.digest.as_str()],
                |r| r.get(0),
            )
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
}
