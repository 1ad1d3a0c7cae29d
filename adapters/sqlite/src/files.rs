//! Files: looking one up (the download path), searching them, and the
//! management operations.

use rusqlite::{Connection, params};
use tooltool_domain::{Digest, PatchOp};
use tooltool_ports::{FileRecord, MetadataError};

use crate::rows::{FILE_COLUMNS, file_by_digest, file_rows, internal, to_i64};

/// Files with a filename containing `q` or a digest starting with it, by
/// digest, after `after` (empty: from the start).
pub(crate) fn search(
    tx: &Connection,
    q: &str,
    after: &str,
    limit: usize,
) -> Result<Vec<FileRecord>, MetadataError> {
    // `substr(...) = ?1` keeps `%`/`_` literal; the filename side uses instr.
    let sql = format!(
        "SELECT {FILE_COLUMNS} FROM files f WHERE f.digest > ?3 \
         AND (substr(f.digest, 1, length(?1)) = ?1 \
         OR EXISTS (SELECT 1 FROM batch_files bf WHERE bf.file_id = f.id AND instr(bf.filename, ?1) > 0)) \
         ORDER BY f.digest LIMIT ?2"
    );
    Ok(
        file_rows(tx, &sql, params![q, to_i64(limit as u64)?, after])?
            .into_iter()
            .map(|(_, f)| f)
            .collect(),
    )
}

/// Applies `ops` in order (the caller holds the write transaction).
pub(crate) fn patch(
    tx: &Connection,
    digest: &Digest,
    ops: &[PatchOp],
) -> Result<Option<FileRecord>, MetadataError> {
    let Some((id, _)) = file_by_digest(tx, digest)? else {
        return Ok(None);
    };
    for op in ops {
        match op {
            PatchOp::SetVisibility(v) => tx
                .execute(
                    "UPDATE files SET visibility = ?1 WHERE id = ?2",
                    params![v.as_str(), id],
                )
                .map_err(internal)?,
            PatchOp::DeleteInstances => tx
                .execute("DELETE FROM file_instances WHERE file_id = ?1", [id])
                .map_err(internal)?,
        };
    }
    Ok(file_by_digest(tx, digest)?.map(|(_, f)| f))
}
