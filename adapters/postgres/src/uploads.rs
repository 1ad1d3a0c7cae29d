//! Upload slots: the state `upload/complete` reads, the leases that make
//! verification exclusive across processes (a single `UPDATE … WHERE` for
//! one slot, `FOR UPDATE SKIP LOCKED` for a batch of them), and settling or
//! dropping a slot.

use crate::statements::Statements;
use chrono::{DateTime, Utc};
use tooltool_domain::{Digest, StagingKey};
use tooltool_ports::{MetadataError, PendingUpload, UploadState};

use crate::rows::{
    PENDING_COLUMNS, db_error, file_by_digest, get, pending_from_row, pending_rows, to_i64,
    to_i64_count,
};

/// Everything about `digest`'s uploads, read inside one snapshot `tx`.
pub(crate) async fn state(
    tx: &impl Statements,
    digest: &Digest,
) -> Result<UploadState, MetadataError> {
    let Some((id, file)) = file_by_digest(tx, digest).await? else {
        return Ok(UploadState::default());
    };
    let pending = pending_rows(
        tx,
        &format!(
            "SELECT {PENDING_COLUMNS} FROM pending_uploads p WHERE p.file_id = $1 ORDER BY p.expires"
        ),
        &[&id],
    )
    .await?;
    let row = tx
        .query_one("SELECT rejection FROM files WHERE id = $1", &[&id])
        .await
        .map_err(db_error)?;
    Ok(UploadState {
        file: Some(file),
        pending,
        rejection: get(&row, 0)?,
    })
}

pub(crate) async fn pending<C: Statements>(
    c: &C,
    key: &StagingKey,
) -> Result<Option<PendingUpload>, MetadataError> {
    c.query_opt(
        &format!("SELECT {PENDING_COLUMNS} FROM pending_uploads p WHERE p.staging_key = $1"),
        &[&key.to_string()],
    )
    .await
    .map_err(db_error)?
    .map(|r| pending_from_row(&r))
    .transpose()
}

pub(crate) async fn claim<C: Statements>(
    c: &C,
    key: &StagingKey,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<bool, MetadataError> {
    let n = c
        .execute(
            "UPDATE pending_uploads SET lease_until = $1 WHERE staging_key = $2 \
             AND (lease_until IS NULL OR lease_until <= $3)",
            &[&lease_until, &key.to_string(), &now],
        )
        .await
        .map_err(db_error)?;
    Ok(n == 1)
}

pub(crate) async fn claim_due<C: Statements>(
    c: &C,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<PendingUpload>, MetadataError> {
    let mut due = pending_rows(
        c,
        &format!(
            "UPDATE pending_uploads p SET lease_until = $1 WHERE p.staging_key IN ( \
               SELECT staging_key FROM pending_uploads \
               WHERE lease_until IS NULL OR lease_until <= $2 \
               ORDER BY expires LIMIT $3 FOR UPDATE SKIP LOCKED) \
             RETURNING {PENDING_COLUMNS}"
        ),
        &[&lease_until, &now, &to_i64_count(limit)?],
    )
    .await?;
    due.sort_by_key(|p| p.expires);
    Ok(due)
}

pub(crate) async fn release<C: Statements>(c: &C, key: &StagingKey) -> Result<(), MetadataError> {
    c.execute(
        "UPDATE pending_uploads SET lease_until = NULL WHERE staging_key = $1",
        &[&key.to_string()],
    )
    .await
    .map_err(db_error)?;
    Ok(())
}

pub(crate) async fn renew<C: Statements>(
    c: &C,
    key: &StagingKey,
    lease_until: DateTime<Utc>,
) -> Result<(), MetadataError> {
    c.execute(
        "UPDATE pending_uploads SET lease_until = $1 \
         WHERE staging_key = $2 AND lease_until IS NOT NULL",
        &[&lease_until, &key.to_string()],
    )
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Removes the slot inside `tx`; its file id and region, `None` when it
/// was already gone (settling is idempotent).
async fn take(
    tx: &impl Statements,
    key: &StagingKey,
) -> Result<Option<(i64, String)>, MetadataError> {
    let row = tx
        .query_opt(
            "DELETE FROM pending_uploads WHERE staging_key = $1 RETURNING file_id, region",
            &[&key.to_string()],
        )
        .await
        .map_err(db_error)?;
    row.map(|r| Ok((get(&r, 0)?, get(&r, 1)?))).transpose()
}

pub(crate) async fn complete(
    tx: &impl Statements,
    key: &StagingKey,
    size: u64,
) -> Result<(), MetadataError> {
    let Some((file_id, region)) = take(tx, key).await? else {
        return Ok(());
    };
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
    Ok(())
}

pub(crate) async fn reject(
    tx: &impl Statements,
    key: &StagingKey,
    reason: &str,
) -> Result<(), MetadataError> {
    if let Some((file_id, _)) = take(tx, key).await? {
        tx.execute(
            "UPDATE files SET rejection = $1 WHERE id = $2",
            &[&reason, &file_id],
        )
        .await
        .map_err(db_error)?;
    }
    Ok(())
}

pub(crate) async fn drop_abandoned<C: Statements>(
    c: &C,
    expired_before: DateTime<Utc>,
) -> Result<Vec<PendingUpload>, MetadataError> {
    pending_rows(
        c,
        &format!("DELETE FROM pending_uploads p WHERE p.expires < $1 RETURNING {PENDING_COLUMNS}"),
        &[&expired_before],
    )
    .await
}
