//! Replication: leasing files that lack a configured region (`FOR UPDATE
//! SKIP LOCKED`, so processes never share one), recording copies, and the
//! backlog counts for metrics.

use crate::statements::Statements;
use chrono::{DateTime, Utc};
use tooltool_domain::{Digest, RegionName};
use tooltool_ports::{FileRecord, MetadataError};

use crate::rows::{FILE_COLUMNS, db_error, file_from_row, get, parse_region, to_i64_count, to_u64};

pub(crate) async fn claim<C: Statements>(
    c: &C,
    regions: &[RegionName],
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<FileRecord>, MetadataError> {
    if regions.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<&str> = regions.iter().map(RegionName::as_str).collect();
    c.query(
        &format!(
            "WITH claimed AS ( \
               UPDATE files SET replication_lease = $1 WHERE id IN ( \
                 SELECT f.id FROM files f \
                 WHERE (f.replication_lease IS NULL OR f.replication_lease <= $2) \
                 AND EXISTS (SELECT 1 FROM file_instances i WHERE i.file_id = f.id) \
                 AND (SELECT count(*) FROM file_instances i WHERE i.file_id = f.id AND i.region = ANY($3)) < $4 \
                 ORDER BY f.id LIMIT $5 FOR UPDATE SKIP LOCKED) \
               RETURNING id) \
             SELECT {FILE_COLUMNS} FROM files f JOIN claimed c ON c.id = f.id ORDER BY f.id"
        ),
        &[
            &lease_until,
            &now,
            &names,
            &to_i64_count(names.len())?,
            &to_i64_count(limit)?,
        ],
    )
    .await
    .map_err(db_error)?
    .iter()
    .map(|r| Ok(file_from_row(r, 0)?.1))
    .collect()
}

pub(crate) async fn add_instance<C: Statements>(
    c: &C,
    digest: &Digest,
    region: &RegionName,
) -> Result<(), MetadataError> {
    c.execute(
        "INSERT INTO file_instances (file_id, region) SELECT id, $2 FROM files WHERE digest = $1 \
         ON CONFLICT DO NOTHING",
        &[&digest.as_str(), &region.as_str()],
    )
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Pending uploads, and files with an instance that lack one of `regions`.
pub(crate) async fn backlog<C: Statements>(
    c: &C,
    regions: &[RegionName],
) -> Result<(u64, u64), MetadataError> {
    let names: Vec<&str> = regions.iter().map(RegionName::as_str).collect();
    let row = c
        .query_one(
            "SELECT (SELECT count(*) FROM pending_uploads), \
             (SELECT count(*) FROM files f \
              WHERE EXISTS (SELECT 1 FROM file_instances i WHERE i.file_id = f.id) \
              AND (SELECT count(*) FROM file_instances i WHERE i.file_id = f.id AND i.region = ANY($1)) < $2)",
            &[&names, &to_i64_count(names.len())?],
        )
        .await
        .map_err(db_error)?;
    Ok((to_u64(get(&row, 0)?)?, to_u64(get(&row, 1)?)?))
}

pub(crate) async fn instance_regions<C: Statements>(
    c: &C,
) -> Result<Vec<(RegionName, u64)>, MetadataError> {
    let rows = c
        .query(
            "SELECT region, count(*) FROM file_instances GROUP BY region ORDER BY region COLLATE \"C\"",
            &[],
        )
        .await
        .map_err(db_error)?;
    rows.iter()
        .map(|row| {
            let name: String = get(row, 0)?;
            Ok((parse_region(&name)?, to_u64(get(row, 1)?)?))
        })
        .collect()
}
