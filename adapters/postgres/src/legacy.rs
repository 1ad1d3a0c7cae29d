//! Reads a database of the original tooltool service, for `tooltool
//! import-legacy`. Its schema (all columns NOT NULL):
//! `releng_tooltool_files(id, size, sha512, visibility)`,
//! `releng_tooltool_file_instances(file_id, region)`,
//! `releng_tooltool_batches(id, uploaded timestamp (UTC), author, message)`,
//! `releng_tooltool_batch_files(file_id, batch_id, filename)`,
//! `releng_tooltool_pending_upload(file_id, expires, region)`.

use chrono::NaiveDateTime;
use tokio_postgres::types::FromSql;
use tokio_postgres::{NoTls, Row};
use tooltool_domain::{Digest, RegionName, Visibility};
use tooltool_ports::{FileRecord, ImportedBatch};

/// How much the original database holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LegacyCounts {
    pub batches: u64,
    pub files: u64,
    pub instances: u64,
    pub pending_uploads: u64,
}

/// A page of batches, and the rows that could not be imported (with why).
#[derive(Debug, Default)]
pub struct LegacyPage {
    pub batches: Vec<ImportedBatch>,
    pub skipped: Vec<String>,
    /// The highest batch id read (the cursor for the next page); `None`
    /// when there was nothing left.
    pub last_id: Option<i64>,
}

pub struct LegacyReader {
    client: tokio_postgres::Client,
}

impl std::fmt::Debug for LegacyReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LegacyReader")
    }
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or_default()
}

/// Column `at` of a row of the original database: a column of another
/// type than its schema promises is an error naming it, never a panic.
fn col<'r, T: FromSql<'r>>(row: &'r Row, at: usize) -> Result<T, String> {
    row.try_get(at)
        .map_err(|e| format!("unexpected column {at} in the original database: {e}"))
}

impl LegacyReader {
    /// # Errors
    /// When the database cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, String> {
        let (client, connection) = tokio_postgres::connect(url, NoTls)
            .await
            .map_err(|e| format!("cannot connect to the original database: {e}"))?;
        tokio::spawn(connection);
        Ok(Self { client })
    }

    /// # Errors
    /// When the tables are not the original service's.
    pub async fn counts(&self) -> Result<LegacyCounts, String> {
        let row = self
            .client
            .query_one(
                "SELECT (SELECT count(*) FROM releng_tooltool_batches), \
                 (SELECT count(*) FROM releng_tooltool_files), \
                 (SELECT count(*) FROM releng_tooltool_file_instances), \
                 (SELECT count(*) FROM releng_tooltool_pending_upload)",
                &[],
            )
            .await
            .map_err(|e| format!("not an original tooltool database: {e}"))?;
        Ok(LegacyCounts {
            batches: count(col(&row, 0)?),
            files: count(col(&row, 1)?),
            instances: count(col(&row, 2)?),
            pending_uploads: count(col(&row, 3)?),
        })
    }

    /// Up to `limit` batches with ids above `after`, in id order.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn batches_after(&self, after: i64, limit: i64) -> Result<LegacyPage, String> {
        let fail = |e: tokio_postgres::Error| format!("reading the original database: {e}");
        let heads = self
            .client
            .query(
                "SELECT id::bigint, uploaded, author, message FROM releng_tooltool_batches \
                 WHERE id::bigint > $1 ORDER BY id LIMIT $2",
                &[&after, &limit],
            )
            .await
            .map_err(fail)?;
        let ids: Vec<i64> = heads.iter().map(|r| col(r, 0)).collect::<Result<_, _>>()?;
        let files = self
            .client
            .query(
                "SELECT bf.batch_id::bigint, bf.filename, f.sha512, f.size::bigint, f.visibility::text, \
                 COALESCE(array_agg(i.region::text ORDER BY i.region::text) \
                          FILTER (WHERE i.region IS NOT NULL), '{}') \
                 FROM releng_tooltool_batch_files bf \
                 JOIN releng_tooltool_files f ON f.id = bf.file_id \
                 LEFT JOIN releng_tooltool_file_instances i ON i.file_id = f.id \
                 WHERE bf.batch_id::bigint = ANY($1) \
                 GROUP BY bf.batch_id, bf.filename, f.sha512, f.size, f.visibility \
                 ORDER BY bf.batch_id, bf.filename",
                &[&ids],
            )
            .await
            .map_err(fail)?;
        let mut page = LegacyPage {
            last_id: ids.last().copied(),
            ..LegacyPage::default()
        };
        for head in heads {
            let id: i64 = col(&head, 0)?;
            let uploaded: NaiveDateTime = col(&head, 1)?;
            let mut batch = ImportedBatch {
                id,
                uploaded: uploaded.and_utc(),
                author: col(&head, 2)?,
                message: col(&head, 3)?,
                files: Vec::new(),
            };
            let mut broken = None;
            for row in &files {
                if col::<i64>(row, 0)? != id {
                    continue;
                }
                let filename: String = col(row, 1)?;
                let sha512: String = col(row, 2)?;
                let size: i64 = col(row, 3)?;
                let visibility: String = col(row, 4)?;
                let regions: Vec<String> = col(row, 5)?;
                let file = (|| {
                    Ok::<_, String>(FileRecord {
                        digest: Digest::parse(&sha512).map_err(|e| format!("{e} {sha512:?}"))?,
                        size: u64::try_from(size).map_err(|_| format!("negative size {size}"))?,
                        visibility: Visibility::parse(&visibility).map_err(|e| e.to_string())?,
                        instances: regions
                            .iter()
                            .map(|r| RegionName::parse(r).map_err(|e| e.to_string()))
                            .collect::<Result<_, _>>()?,
                    })
                })();
                match file {
                    Ok(file) => batch.files.push((filename, file)),
                    Err(why) => broken = Some(format!("batch {id}, file {filename:?}: {why}")),
                }
            }
            match broken {
                // A batch is imported whole or not at all.
                Some(why) => page.skipped.push(why),
                None => page.batches.push(batch),
            }
        }
        Ok(page)
    }
}
