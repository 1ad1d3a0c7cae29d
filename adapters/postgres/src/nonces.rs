//! Spent Hawk nonces (migration V3): one row per nonce until its window
//! closes, shared by every process on the database.

use crate::statements::Statements;
use chrono::{DateTime, Utc};
use tooltool_ports::MetadataError;

use crate::rows::db_error;

/// `true` when this call inserted the row: the primary key makes exactly
/// one of any number of concurrent spends of one key win, across
/// processes.
pub(crate) async fn spend<C: Statements>(
    c: &C,
    key: &[u8; 32],
    expires: DateTime<Utc>,
) -> Result<bool, MetadataError> {
    let inserted = c
        .execute(
            "INSERT INTO hawk_nonces (key, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&key.as_slice(), &expires],
        )
        .await
        .map_err(db_error)?;
    Ok(inserted == 1)
}

pub(crate) async fn forget<C: Statements>(
    c: &C,
    before: DateTime<Utc>,
) -> Result<u64, MetadataError> {
    c.execute("DELETE FROM hawk_nonces WHERE expires_at < $1", &[&before])
        .await
        .map_err(db_error)
}
