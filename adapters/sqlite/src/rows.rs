//! Reading and writing row values: the column lists every query of files
//! and slots selects, their decoding into port records, and the value
//! conversions (times as microseconds, sizes as i64).

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use tooltool_domain::{Digest, RegionName, StagingKey, Visibility};
use tooltool_ports::{Cause, FileRecord, MetadataError, PendingUpload};

/// Every failure of this store, classified: SQLite's "database or disk is
/// full" is [`MetadataError::OutOfSpace`], the rest internal.
pub(crate) fn internal(e: impl Into<Cause>) -> MetadataError {
    let cause = e.into();
    let full = matches!(
        cause.downcast_ref::<rusqlite::Error>(),
        Some(rusqlite::Error::SqliteFailure(f, _)) if f.code == rusqlite::ErrorCode::DiskFull
    );
    if full {
        MetadataError::OutOfSpace(cause)
    } else {
        MetadataError::internal(cause)
    }
}

pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub(crate) fn from_micros(v: i64) -> Result<DateTime<Utc>, MetadataError> {
    DateTime::from_timestamp_micros(v).ok_or_else(|| internal(format!("bad timestamp {v}")))
}

pub(crate) fn to_u64(v: i64) -> Result<u64, MetadataError> {
    u64::try_from(v).map_err(internal)
}

pub(crate) fn to_i64(v: u64) -> Result<i64, MetadataError> {
    i64::try_from(v).map_err(internal)
}

fn parse_digest(s: &str) -> Result<Digest, MetadataError> {
    Digest::parse(s).map_err(internal)
}

pub(crate) fn parse_visibility(s: &str) -> Result<Visibility, MetadataError> {
    Visibility::parse(s).map_err(internal)
}

pub(crate) fn parse_region(s: &str) -> Result<RegionName, MetadataError> {
    RegionName::parse(s).map_err(internal)
}

fn parse_key(s: &str) -> Result<StagingKey, MetadataError> {
    StagingKey::parse(s).ok_or_else(|| internal(format!("bad staging key {s}")))
}

/// A file row with its instances folded into one column (region names
/// cannot contain commas), so that reading files is one statement. A macro
/// so that hot queries can be assembled at compile time with `concat!`.
macro_rules! file_columns {
    () => {
        "f.id, f.digest, f.size, f.visibility, \
         (SELECT group_concat(region, ',') FROM \
           (SELECT region FROM file_instances i WHERE i.file_id = f.id ORDER BY region))"
    };
}
pub(crate) const FILE_COLUMNS: &str = file_columns!();
/// The download path's query.
pub(crate) const FILE_BY_DIGEST: &str = concat!(
    "SELECT ",
    file_columns!(),
    " FROM files f WHERE f.digest = ?1"
);

fn split_regions(list: Option<String>) -> Result<Vec<RegionName>, MetadataError> {
    list.as_deref()
        .unwrap_or_default()
        .split(',')
        .filter(|r| !r.is_empty())
        .map(parse_region)
        .collect()
}

/// The raw columns of [`FILE_COLUMNS`].
pub(crate) type RawFile = (i64, String, i64, String, Option<String>);

/// Reads the [`FILE_COLUMNS`] starting at column `at`.
pub(crate) fn raw_file(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<RawFile> {
    Ok((
        r.get(at)?,
        r.get(at + 1)?,
        r.get(at + 2)?,
        r.get(at + 3)?,
        r.get(at + 4)?,
    ))
}

pub(crate) fn file_record(
    (id, digest, size, vis, regions): RawFile,
) -> Result<(i64, FileRecord), MetadataError> {
    Ok((
        id,
        FileRecord {
            digest: parse_digest(&digest)?,
            size: to_u64(size)?,
            visibility: parse_visibility(&vis)?,
            instances: split_regions(regions)?,
        },
    ))
}

/// Reads rows of [`FILE_COLUMNS`] into records.
pub(crate) fn file_rows(
    tx: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<(i64, FileRecord)>, MetadataError> {
    let mut stmt = tx.prepare_cached(sql).map_err(internal)?;
    let raw = stmt
        .query_map(params, |r| raw_file(r, 0))
        .map_err(internal)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(internal)?;
    raw.into_iter().map(file_record).collect()
}

pub(crate) fn file_by_digest(
    tx: &Connection,
    digest: &Digest,
) -> Result<Option<(i64, FileRecord)>, MetadataError> {
    Ok(file_rows(tx, FILE_BY_DIGEST, [digest.as_str()])?.pop())
}

pub(crate) fn pending_rows(
    tx: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<PendingUpload>, MetadataError> {
    let mut stmt = tx.prepare_cached(sql).map_err(internal)?;
    let raw = stmt
        .query_map(params, |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .map_err(internal)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(internal)?;
    raw.into_iter()
        .map(|(key, size, region, expires)| {
            Ok(PendingUpload {
                key: parse_key(&key)?,
                size: to_u64(size)?,
                region: parse_region(&region)?,
                expires: from_micros(expires)?,
            })
        })
        .collect()
}

pub(crate) const PENDING_COLUMNS: &str = "p.staging_key, p.size, p.region, p.expires";
