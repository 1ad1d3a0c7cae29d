//! Replication: leasing files that lack a configured region, recording
//! copies, and the backlog counts for metrics.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};
use tooltool_domain::{Digest, RegionName};
use tooltool_ports::{FileRecord, MetadataError};

use crate::rows::{FILE_COLUMNS, file_rows, internal, micros, parse_region, to_i64, to_u64};

pub(crate) fn claim(
    tx: &Connection,
    regions: &[RegionName],
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<FileRecord>, MetadataError> {
    // A file needs work when it has some instance but fewer instances
    // among the configured regions than there are regions.
    let placeholders = (0..regions.len())
        .map(|i| format!("?{}", i + 4))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT {FILE_COLUMNS} FROM files f \
         WHERE (f.replication_lease IS NULL OR f.replication_lease <= ?1) \
         AND EXISTS (SELECT 1 FROM file_instances i WHERE i.file_id = f.id) \
         AND (SELECT count(*) FROM file_instances i WHERE i.file_id = f.id \
              AND i.region IN ({placeholders})) < ?2 \
         ORDER BY f.id LIMIT ?3"
    );
    let mut values: Vec<rusqlite::types::Value> = vec![
        micros(now).into(),
        to_i64(regions.len() as u64)?.into(),
        to_i64(limit as u64)?.into(),
    ];
    values.extend(regions.iter().map(|r| r.as_str().to_owned().into()));
    if regions.is_empty() {
        return Ok(Vec::new());
    }
    let candidates = file_rows(tx, &sql, rusqlite::params_from_iter(values))?;
    let mut claimed = Vec::new();
    for (id, file) in candidates {
        tx.execute(
            "UPDATE files SET replication_lease = ?1 WHERE id = ?2",
            params![micros(lease_until), id],
        )
        .map_err(internal)?;
        claimed.push(file);
    }
    Ok(claimed)
}

pub(crate) fn add_instance(
    tx: &Connection,
    digest: &Digest,
    region: &RegionName,
) -> Result<(), MetadataError> {
    tx.execute(
        "INSERT OR IGNORE INTO file_instances (file_id, region) \
         SELECT id, ?2 FROM files WHERE digest = ?1",
        params![digest.as_str(), region.as_str()],
    )
    .map_err(internal)?;
    Ok(())
}

pub(crate) fn backlog(
    tx: &Connection,
    regions: &[RegionName],
) -> Result<(u64, u64), MetadataError> {
    let pending: i64 = tx
        .query_row("SELECT count(*) FROM pending_uploads", [], |r| r.get(0))
        .map_err(internal)?;
    let placeholders = (0..regions.len())
        .map(|i| format!("?{}", i + 2))
        .collect::<Vec<_>>()
        .join(", ");
    let missing: i64 = if regions.is_empty() {
        0
    } else {
        let sql = format!(
            "SELECT count(*) FROM files f \
             WHERE EXISTS (SELECT 1 FROM file_instances i WHERE i.file_id = f.id) \
             AND (SELECT count(*) FROM file_instances i WHERE i.file_id = f.id \
                  AND i.region IN ({placeholders})) < ?1"
        );
        let mut values: Vec<rusqlite::types::Value> = vec![to_i64(regions.len() as u64)?.into()];
        values.extend(regions.iter().map(|r| r.as_str().to_owned().into()));
        tx.query_row(&sql, rusqlite::params_from_iter(values), |r| r.get(0))
            .map_err(internal)?
    };
    Ok((to_u64(pending)?, to_u64(missing)?))
}

pub(crate) fn instance_regions(tx: &Connection) -> Result<Vec<(RegionName, u64)>, MetadataError> {
    let mut stmt = tx
        .prepare("SELECT region, count(*) FROM file_instances GROUP BY region ORDER BY region")
        .map_err(internal)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .map_err(internal)?;
    let mut out = Vec::new();
    for row in rows {
        let (name, count) = row.map_err(internal)?;
        out.push((parse_region(&name)?, to_u64(count)?));
    }
    Ok(out)
}
