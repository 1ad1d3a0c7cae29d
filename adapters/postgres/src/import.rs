//! Importing batches of the original service (`import-legacy`): ids kept
//! when free, the original id recorded as the legacy id.
//! Reading the original database is `legacy.rs`.

use crate::statements::Statements;
use tooltool_domain::RegionName;
use tooltool_ports::{Imported, ImportedBatch, MetadataError, WhenTaken};

use crate::rows::{db_error, to_i64};

/// Imports `batch` inside `tx`.
pub(crate) async fn batch(
    tx: &impl Statements,
    batch: &ImportedBatch,
    when_taken: WhenTaken,
) -> Result<Imported, MetadataError> {
    if let Some(row) = tx
        .query_opt("SELECT id FROM batches WHERE legacy_id = $1", &[&batch.id])
        .await
        .map_err(db_error)?
    {
        return Ok(Imported::Present(row.get(0)));
    }
    let kept = tx
        .query_opt(
            "INSERT INTO batches (id, uploaded, author, message, legacy_id) \
             VALUES ($1, $2, $3, $4, $1) ON CONFLICT (id) DO NOTHING RETURNING id",
            &[&batch.id, &batch.uploaded, &batch.author, &batch.message],
        )
        .await
        .map_err(db_error)?;
    let (id, outcome) = match (kept, when_taken) {
        (Some(_), _) => (batch.id, Imported::Kept),
        (None, WhenTaken::Refuse) => return Ok(Imported::Taken),
        (None, WhenTaken::Renumber) => {
            // The id the sequence gives a new batch.
            let row = tx
                .query_one(
                    "INSERT INTO batches (uploaded, author, message, legacy_id) \
                     VALUES ($1, $2, $3, $4) RETURNING id",
                    &[&batch.uploaded, &batch.author, &batch.message, &batch.id],
                )
                .await
                .map_err(db_error)?;
            let id: i64 = row.get(0);
            (id, Imported::Renumbered(id))
        }
    };
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
            &[&id, &file.digest.as_str(), filename],
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
    Ok(outcome)
}
