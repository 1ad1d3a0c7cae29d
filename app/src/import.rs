//! `tooltool import-legacy`: copies an original tooltool database into
//! the configured store (reading it is the PostgreSQL adapter's `legacy`).

use tooltool_ports::Chain;

use crate::config::Resolved;
use crate::wiring::open_store;

/// Copies an original tooltool database into the configured store, batch
/// by batch (each in one transaction), printing progress on stderr.
/// Idempotent: batches already present are skipped.
///
/// # Errors
/// When either database fails; what was imported until then stays.
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
            if store
                .import_batch(batch)
                .await
                .map_err(|e| Chain(&e).to_string())?
            {
                imported += 1;
            } else {
                present += 1;
            }
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
