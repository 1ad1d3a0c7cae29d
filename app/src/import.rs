//! `tooltool import-legacy`: copies an original tooltool database into
//! the configured store (reading it is the PostgreSQL adapter's `legacy`).

use tooltool_ports::{Chain, FileRecord};

use crate::config::Resolved;
use crate::wiring::open_store;

/// Copies an original tooltool database into the configured store, batch
/// by batch (each in one transaction), printing progress on stderr.
/// Idempotent: batches already present are skipped.
///
/// # Errors
/// When either database fails, or a batch id of the original is taken here
/// by a different batch; what was imported until then stays.
pub async fn import_legacy(config: &Resolved, from: &str) -> Result<String, String> {
    const PAGE: i64 = 500;
    let reader = tooltool_postgres::legacy::LegacyReader::connect(from).await?;
    let counts = reader.counts().await?;
    let store = open_store(config).await?;
    eprintln!(
        "original database: {} batches, {} files, {} instances, {} pending uploads",
        counts.batches, counts.files, counts.instances, counts.pending_uploads
    );
    let (mut imported, mut present, mut skipped) = (0u64, 0u64, 0u64);
    let mut after = i64::MIN;
    loop {
        let page = reader.batches_after(after, PAGE).await?;
        let Some(last) = page.last_id else { break };
        after = last;
        for why in page.skipped {
            eprintln!("skipped {why}");
            skipped += 1;
        }
        for batch in page.batches {
            let id = batch.id;
            let wanted = contents(&batch.author, &batch.message, &batch.files);
            if store
                .import_batch(batch)
                .await
                .map_err(|e| Chain(&e).to_string())?
            {
                imported += 1;
                continue;
            }
            // The id is taken: by this batch, imported before (running
            // again changes nothing), or by another one, which must not
            // leave the original's batch and its files silently out.
            let here = store
                .get_batch(id)
                .await
                .map_err(|e| Chain(&e).to_string())?
                .map(|b| contents(&b.author, &b.message, &b.files));
            if here.as_ref() != Some(&wanted) {
                return Err(format!(
                    "batch {id} of the original ({} by {}) is not batch {id} of this \
                     database: ids are kept so that links stay valid, so import into a database \
                     that has no batches of its own ({imported} imported before stopping)",
                    describe(&wanted),
                    wanted.0,
                ));
            }
            present += 1;
        }
        eprintln!(
            "… {}/{} batches",
            imported + present + skipped,
            counts.batches
        );
    }
    Ok(format!(
        "import-legacy: {imported} batches imported, {present} already present, {} skipped; \
         {} pending uploads not imported (their files come without a copy: upload them again)",
        skipped, counts.pending_uploads
    ))
}

/// What identifies a batch's contents: author, message, filename → digest.
type Contents = (String, String, Vec<(String, String)>);

fn contents(author: &str, message: &str, files: &[(String, FileRecord)]) -> Contents {
    let mut files: Vec<(String, String)> = files
        .iter()
        .map(|(name, f)| (name.clone(), f.digest.to_string()))
        .collect();
    files.sort();
    (author.to_owned(), message.to_owned(), files)
}

fn describe(c: &Contents) -> String {
    let plural = if c.2.len() == 1 { "" } else { "s" };
    format!("{} file{plural}", c.2.len())
}
