//! `tooltool import-legacy`: copies an original tooltool database into
//! the configured store (reading it is the PostgreSQL adapter's `legacy`).

use tooltool_ports::{Chain, FileRecord, Imported, MetadataError, MetadataStore, WhenTaken};

use crate::config::Resolved;
use crate::wiring::open_store;

/// Copies an original tooltool database into the configured store, batch
/// by batch (each in one transaction), printing progress on stderr.
/// Idempotent: batches already present are skipped. With
/// [`WhenTaken::Renumber`], batches whose id is taken here by a different
/// batch are imported in a second pass, under new ids above every id of
/// the first, so that no renumbered batch takes the id of an original
/// batch that comes later.
///
/// # Errors
/// When either database fails, or (with [`WhenTaken::Refuse`]) a batch id
/// of the original is taken here by a different batch; what was imported
/// until then stays.
pub async fn import_legacy(
    config: &Resolved,
    from: &str,
    when_taken: WhenTaken,
) -> Result<String, String> {
    let reader = tooltool_postgres::legacy::LegacyReader::connect(from).await?;
    let counts = reader.counts().await?;
    let store = open_store(config).await?;
    eprintln!(
        "original database: {} batches, {} files, {} instances, {} pending uploads",
        counts.batches, counts.files, counts.instances, counts.pending_uploads
    );
    let mut tally = Tally::default();
    pass(
        &reader,
        &*store,
        Pass::KeepIds(when_taken),
        counts.batches,
        &mut tally,
    )
    .await?;
    if !tally.deferred.is_empty() {
        eprintln!(
            "{} batches have ids taken here: renumbering them",
            tally.deferred.len()
        );
        let mut second = Tally {
            deferred: std::mem::take(&mut tally.deferred),
            ..Tally::default()
        };
        pass(
            &reader,
            &*store,
            Pass::Renumber,
            counts.batches,
            &mut second,
        )
        .await?;
        tally.renumbered = second.renumbered;
    }
    Ok(format!(
        "import-legacy: {} batches imported ({} under new ids), {} already present, {} skipped; \
         {} pending uploads not imported (their files come without a copy: upload them again)",
        tally.imported + tally.renumbered,
        tally.renumbered,
        tally.present,
        tally.skipped,
        counts.pending_uploads
    ))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// Batches keep their ids; taken ones are refused, or deferred to a
    /// renumbering pass.
    KeepIds(WhenTaken),
    /// The deferred batches are given new ids.
    Renumber,
}

#[derive(Default)]
struct Tally {
    imported: u64,
    renumbered: u64,
    present: u64,
    skipped: u64,
    /// Ids taken here by different batches, for the renumbering pass.
    deferred: std::collections::HashSet<i64>,
}

/// One walk over the original's batches.
async fn pass(
    reader: &tooltool_postgres::legacy::LegacyReader,
    store: &dyn MetadataStore,
    mode: Pass,
    total: u64,
    tally: &mut Tally,
) -> Result<(), String> {
    const PAGE: i64 = 500;
    let failed = |e: MetadataError| Chain(&e).to_string();
    let mut after = i64::MIN;
    let mut seen = 0u64;
    loop {
        let page = reader.batches_after(after, PAGE).await?;
        let Some(last) = page.last_id else { break };
        after = last;
        for why in page.skipped {
            if matches!(mode, Pass::KeepIds(_)) {
                eprintln!("skipped {why}");
            }
            tally.skipped += 1;
            seen += 1;
        }
        for batch in page.batches {
            seen += 1;
            let id = batch.id;
            if let Pass::Renumber = mode {
                if !tally.deferred.contains(&id) {
                    continue;
                }
                match store
                    .import_batch(batch, WhenTaken::Renumber)
                    .await
                    .map_err(failed)?
                {
                    Imported::Renumbered(new) => {
                        eprintln!("batch {id} of the original is batch {new} here");
                        tally.renumbered += 1;
                    }
                    Imported::Kept | Imported::Present(_) | Imported::Taken => {}
                }
                continue;
            }
            let wanted = contents(&batch.author, &batch.message, &batch.files);
            match store
                .import_batch(batch, WhenTaken::Refuse)
                .await
                .map_err(failed)?
            {
                Imported::Kept | Imported::Renumbered(_) => tally.imported += 1,
                Imported::Present(_) => tally.present += 1,
                Imported::Taken => {
                    // Taken: by this batch, imported before legacy ids
                    // were recorded (running again changes nothing), or by
                    // another one, which must not leave the original's
                    // batch and its files silently out.
                    let here = store
                        .get_batch(id)
                        .await
                        .map_err(failed)?
                        .map(|b| contents(&b.author, &b.message, &b.files));
                    if here.as_ref() == Some(&wanted) {
                        tally.present += 1;
                    } else if mode == Pass::KeepIds(WhenTaken::Renumber) {
                        tally.deferred.insert(id);
                    } else {
                        return Err(format!(
                            "batch {id} of the original ({} by {}) is not batch {id} of this \
                             database: ids are kept so that links stay valid; run with \
                             --renumber to import such batches under new ids ({} imported \
                             before stopping)",
                            describe(&wanted),
                            wanted.0,
                            tally.imported,
                        ));
                    }
                }
            }
        }
        if matches!(mode, Pass::KeepIds(_)) {
            eprintln!("… {seen}/{total} batches");
        }
    }
    Ok(())
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
