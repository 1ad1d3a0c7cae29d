//! Importing batches of the original service (`import-legacy`), ids kept.
//! Reading the original database is `legacy.rs`.

use tokio_postgres::Transaction;
use tooltool_domain::RegionName;
use tooltool_ports::{ImportedBatch, MetadataError};

use crate::rows::{db_error, to_i64};

/// Imports `batch` inside `tx` unless its id exists; `false` when it did.
pub(crate) async fn batch(
    tx: &Transaction<'_>,
    batch: &ImportedBatch,
) -> Result<bool, MetadataError> {
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
            "INSERT INTO files (digest, size, visibility) VALUES ($1, $2, $3) \
             ON CONFLICT (digest) DO NOTHING",
            &[
                &file.digest.as_str(),
                &to_i64(file.size)?,
                &file.visibility.as_str(),
            ],
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
    Ok(true)
}
