//! Upload slots: the state `upload/complete` reads, the leases that make
//! verification exclusive, and settling or dropping a slot.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use tooltool_domain::Digest;
use tooltool_ports::{MetadataError, PendingUpload, UploadState};

use crate::rows::{PENDING_COLUMNS, file_by_digest, internal, micros, pending_rows, to_i64};

pub(crate) fn state(tx: &Connection, digest: &Digest) -> Result<UploadState, MetadataError> {
    let Some((id, file)) = file_by_digest(tx, digest)? else {
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
}

pub(crate) fn pending(tx: &Connection, key: &str) -> Result<Option<PendingUpload>, MetadataError> {
    Ok(pending_rows(
        tx,
        &format!("SELECT {PENDING_COLUMNS} FROM pending_uploads p WHERE p.staging_key = ?1"),
        [key],
    )?
    .pop())
}

pub(crate) fn claim(
    tx: &Connection,
    key: &str,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<bool, MetadataError> {
    let n = tx
        .execute(
            "UPDATE pending_uploads SET lease_until = ?1 WHERE staging_key = ?2 \
             AND (lease_until IS NULL OR lease_until <= ?3)",
            params![micros(lease_until), key, micros(now)],
        )
        .map_err(internal)?;
    Ok(n == 1)
}

pub(crate) fn claim_due(
    tx: &Connection,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<PendingUpload>, MetadataError> {
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
}

pub(crate) fn release(tx: &Connection, key: &str) -> Result<(), MetadataError> {
    tx.execute(
        "UPDATE pending_uploads SET lease_until = NULL WHERE staging_key = ?1",
        [key],
    )
    .map_err(internal)?;
    Ok(())
}

pub(crate) fn renew(
    tx: &Connection,
    key: &str,
    lease_until: DateTime<Utc>,
) -> Result<(), MetadataError> {
    tx.execute(
        "UPDATE pending_uploads SET lease_until = ?1 \
         WHERE staging_key = ?2 AND lease_until IS NOT NULL",
        params![micros(lease_until), key],
    )
    .map_err(internal)?;
    Ok(())
}

pub(crate) fn complete(tx: &Connection, key: &str, size: u64) -> Result<(), MetadataError> {
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
}

pub(crate) fn reject(tx: &Connection, key: &str, reason: &str) -> Result<(), MetadataError> {
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
}

pub(crate) fn drop_abandoned(
    tx: &Connection,
    expired_before: DateTime<Utc>,
) -> Result<Vec<PendingUpload>, MetadataError> {
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
}
