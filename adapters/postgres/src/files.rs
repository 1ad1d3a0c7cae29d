//! Files: searching them, and the management operations.

use crate::statements::Statements;
use tokio_postgres::types::Type;
use tooltool_domain::{Digest, PatchOp};
use tooltool_ports::{FileRecord, MetadataError};

use crate::rows::{
    FILE_COLUMNS, db_error, file_by_digest, file_from_row, get, like_literal, to_i64_count,
};

/// Files with a filename containing `q` literally or a digest starting
/// with it, each once, by digest, after `after`, at most `limit`.
pub(crate) async fn search<C: Statements>(
    c: &C,
    q: &str,
    after: Option<&Digest>,
    limit: usize,
) -> Result<Vec<FileRecord>, MetadataError> {
    let literal = like_literal(q);
    let rows = c
        .query_typed(
            &format!(
                // Each side yields its first `limit` matches by digest,
                // so a broad term walks the digest index and stops early.
                "SELECT {FILE_COLUMNS} FROM files f WHERE f.id IN ( \
                   (SELECT id FROM files WHERE digest LIKE $1 AND digest > $4 ORDER BY digest LIMIT $3) \
                   UNION (SELECT g.id FROM files g WHERE g.digest > $4 AND EXISTS \
                            (SELECT 1 FROM batch_files bf WHERE bf.file_id = g.id AND bf.filename LIKE $2) \
                          ORDER BY g.digest LIMIT $3)) \
                 ORDER BY f.digest LIMIT $3"
            ),
            &[
                (&format!("{literal}%"), Type::TEXT),
                (&format!("%{literal}%"), Type::TEXT),
                (&to_i64_count(limit)?, Type::INT8),
                (&after.map(Digest::as_str).unwrap_or_default(), Type::TEXT),
            ],
        )
        .await
        .map_err(db_error)?;
    rows.iter().map(|r| Ok(file_from_row(r, 0)?.1)).collect()
}

/// Applies `ops` in order inside `tx`, the file's row locked; `None` when
/// the file is unknown.
pub(crate) async fn patch(
    tx: &impl Statements,
    digest: &Digest,
    ops: &[PatchOp],
) -> Result<Option<FileRecord>, MetadataError> {
    let Some(row) = tx
        .query_opt(
            "SELECT id FROM files WHERE digest = $1 FOR UPDATE",
            &[&digest.as_str()],
        )
        .await
        .map_err(db_error)?
    else {
        return Ok(None);
    };
    let id: i64 = get(&row, 0)?;
    for op in ops {
        match op {
            PatchOp::SetVisibility(v) => tx
                .execute(
                    "UPDATE files SET visibility = $1 WHERE id = $2",
                    &[&v.as_str(), &id],
                )
                .await
                .map_err(db_error)?,
            PatchOp::DeleteInstances => tx
                .execute("DELETE FROM file_instances WHERE file_id = $1", &[&id])
                .await
                .map_err(db_error)?,
        };
    }
    Ok(file_by_digest(tx, digest).await?.map(|(_, f)| f))
}
