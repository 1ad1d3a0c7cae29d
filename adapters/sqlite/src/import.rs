//! Importing batches of the original service: ids kept when free, the
//! original id recorded as the legacy id.

use rusqlite::{Connection, OptionalExtension, params};
use tooltool_ports::{Imported, ImportedBatch, MetadataError, WhenTaken};

use crate::rows::{internal, micros, to_i64};

/// Imports `batch` (the caller holds the write transaction).
pub(crate) fn batch(
    tx: &Connection,
    batch: &ImportedBatch,
    when_taken: WhenTaken,
) -> Result<Imported, MetadataError> {
    let by_legacy = tx
        .query_row(
            "SELECT id FROM batches WHERE legacy_id = ?1",
            [batch.id],
            |r| r.get::<_, i64>(0),
        )
        .optional()
        .map_err(internal)?;
    if let Some(id) = by_legacy {
        return Ok(Imported::Present(id));
    }
    let taken = tx
        .query_row(
            "SELECT 1 FROM batches WHERE id = ?1",
            [batch.id],
            |_| Ok(()),
        )
        .optional()
        .map_err(internal)?
        .is_some();
    let renumber = match (taken, when_taken) {
        (false, _) => false,
        (true, WhenTaken::Refuse) => return Ok(Imported::Taken),
        (true, WhenTaken::Renumber) => true,
    };
    // NULL lets AUTOINCREMENT choose, above every id ever used.
    let id = (!renumber).then_some(batch.id);
    let id: i64 = tx
        .query_row(
            "INSERT INTO batches (id, uploaded, author, message, legacy_id) \
             VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
            params![
                id,
                micros(batch.uploaded),
                batch.author,
                batch.message,
                batch.id
            ],
            |r| r.get(0),
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
            params![id, file_id, filename],
        )
        .map_err(internal)?;
    }
    Ok(if renumber {
        Imported::Renumbered(id)
    } else {
        Imported::Kept
    })
}
