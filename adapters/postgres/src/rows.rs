//! Rows and errors: the column lists every query of files and slots
//! selects, their decoding into port records (every read is `try_get`: a
//! row of an unexpected shape is an error, never a panic), the value
//! conversions, and the mapping of driver errors to the port's.

use crate::statements::Statements;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::FromSql;
use tooltool_domain::{Digest, RegionName, StagingKey, Visibility};
use tooltool_ports::{Cause, Context, FileRecord, MetadataError, PendingUpload};

pub(crate) fn internal(e: impl Into<Cause>) -> MetadataError {
    MetadataError::internal(e)
}

/// Connection-level failures (and the passing refusals of a busy server:
/// deadlocks, serialization failures, cancelled statements) are retryable;
/// the rest is a bug or a constraint the application should have checked.
pub(crate) fn db_error(e: tokio_postgres::Error) -> MetadataError {
    let code = e.code().cloned();
    let full = code == Some(SqlState::DISK_FULL);
    let transient = e.is_closed()
        || code.as_ref().is_none_or(|c| {
            matches!(
                *c,
                SqlState::ADMIN_SHUTDOWN
                    | SqlState::CRASH_SHUTDOWN
                    | SqlState::CANNOT_CONNECT_NOW
                    | SqlState::QUERY_CANCELED
                    | SqlState::T_R_SERIALIZATION_FAILURE
                    | SqlState::T_R_DEADLOCK_DETECTED
                    | SqlState::TOO_MANY_CONNECTIONS
            )
        });
    // The SQLSTATE says what happened in a word that can be searched for.
    let cause: Cause = match code {
        Some(code) => Box::new(Context::new(format!("SQLSTATE {}", code.code()), e)),
        None => Box::new(e),
    };
    if full {
        MetadataError::OutOfSpace(cause)
    } else if transient {
        MetadataError::Unavailable(cause)
    } else {
        MetadataError::Internal(cause)
    }
}

pub(crate) fn pool_error(e: deadpool_postgres::PoolError) -> MetadataError {
    MetadataError::unavailable(Context::new("no database connection", e))
}

/// Column `at` of `row`, or an error when the row is not what the query
/// promised.
pub(crate) fn get<'r, T: FromSql<'r>>(row: &'r Row, at: usize) -> Result<T, MetadataError> {
    row.try_get(at).map_err(internal)
}

pub(crate) fn to_u64(v: i64) -> Result<u64, MetadataError> {
    u64::try_from(v).map_err(internal)
}

pub(crate) fn to_i64(v: u64) -> Result<i64, MetadataError> {
    i64::try_from(v).map_err(internal)
}

pub(crate) fn to_i64_count(v: usize) -> Result<i64, MetadataError> {
    i64::try_from(v).map_err(internal)
}

pub(crate) fn parse_region(s: &str) -> Result<RegionName, MetadataError> {
    RegionName::parse(s).map_err(internal)
}

/// `%`, `_` and `\` taken literally in a LIKE pattern.
pub(crate) fn like_literal(q: &str) -> String {
    let mut out = String::with_capacity(q.len() + 2);
    for c in q.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

pub(crate) const FILE_COLUMNS: &str = "f.id, f.digest, f.size, f.visibility, \
    COALESCE((SELECT array_agg(region ORDER BY region) FROM file_instances i WHERE i.file_id = f.id), '{}')";

/// The [`FILE_COLUMNS`] of `row` starting at column `at`: the file's id
/// and record.
pub(crate) fn file_from_row(row: &Row, at: usize) -> Result<(i64, FileRecord), MetadataError> {
    let regions: Vec<String> = get(row, at + 4)?;
    Ok((
        get(row, at)?,
        FileRecord {
            digest: Digest::parse(get(row, at + 1)?).map_err(internal)?,
            size: to_u64(get(row, at + 2)?)?,
            visibility: Visibility::parse(get(row, at + 3)?).map_err(internal)?,
            instances: regions
                .iter()
                .map(|r| parse_region(r))
                .collect::<Result<_, _>>()?,
        },
    ))
}

pub(crate) const PENDING_COLUMNS: &str = "p.staging_key, p.size, p.region, p.expires";

pub(crate) fn pending_from_row(row: &Row) -> Result<PendingUpload, MetadataError> {
    let key: &str = get(row, 0)?;
    Ok(PendingUpload {
        key: StagingKey::parse(key).ok_or_else(|| internal(format!("bad staging key {key}")))?,
        size: to_u64(get(row, 1)?)?,
        region: parse_region(get(row, 2)?)?,
        expires: get(row, 3)?,
    })
}

/// Runs `sql` and decodes every row as a pending upload.
pub(crate) async fn pending_rows<C: Statements>(
    c: &C,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<PendingUpload>, MetadataError> {
    c.query(sql, params)
        .await
        .map_err(db_error)?
        .iter()
        .map(pending_from_row)
        .collect()
}

pub(crate) async fn file_by_digest<C: Statements>(
    c: &C,
    digest: &Digest,
) -> Result<Option<(i64, FileRecord)>, MetadataError> {
    let row = c
        .query_opt(
            &format!("SELECT {FILE_COLUMNS} FROM files f WHERE f.digest = $1"),
            &[&digest.as_str()],
        )
        .await
        .map_err(db_error)?;
    row.map(|r| file_from_row(&r, 0)).transpose()
}
