//! Spent Hawk nonces (migration V2): one row per nonce until its window
//! closes.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};
use tooltool_ports::MetadataError;

use crate::rows::{internal, micros};

/// `true` when this call inserted the row: the primary key makes exactly
/// one of any number of spends of one key win, inside the write lock.
pub(crate) fn spend(
    tx: &Connection,
    key: &[u8; 32],
    expires: DateTime<Utc>,
) -> Result<bool, MetadataError> {
    let inserted = tx
        .execute(
            "INSERT OR IGNORE INTO hawk_nonces (key, expires_at) VALUES (?1, ?2)",
            params![key.as_slice(), micros(expires)],
        )
        .map_err(internal)?;
    Ok(inserted == 1)
}

pub(crate) fn forget(tx: &Connection, before: DateTime<Utc>) -> Result<u64, MetadataError> {
    let deleted = tx
        .execute(
            "DELETE FROM hawk_nonces WHERE expires_at < ?1",
            [micros(before)],
        )
        .map_err(internal)?;
    Ok(deleted as u64)
}
