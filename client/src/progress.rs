//! What `fetch` shows while it works: a bar per transfer and one for the
//! whole when standard error is a terminal, one line per file otherwise
//! (logs of build jobs), and nothing but errors when quiet.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::fetch::{Fetched, Progress};
use crate::manifest::FileRecord;

impl std::fmt::Display for Fetched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Present => f.write_str("present"),
            Self::FromCache => f.write_str("from the cache"),
            Self::Downloaded { bytes } => write!(f, "downloaded, {bytes} bytes"),
        }
    }
}

/// The line told of one file's outcome.
fn line(record: &FileRecord, outcome: &Result<Fetched, String>) -> String {
    match outcome {
        Ok(how) => format!("{}: {how}", record.filename),
        Err(e) => format!("error: {e}"),
    }
}

/// One line per finished file (errors always, the rest unless quiet).
/// Lines are gathered for at most a tenth of a second before they are
/// written: a thousand cache hits take a few milliseconds, and a write
/// each would cost more than the hits.
pub struct Lines {
    quiet: bool,
    pending: Mutex<(Vec<u8>, Instant)>,
}

impl Lines {
    pub fn new(quiet: bool) -> Self {
        Self {
            quiet,
            pending: Mutex::new((Vec::new(), Instant::now())),
        }
    }

    fn write_out(pending: &mut (Vec<u8>, Instant)) {
        use std::io::Write as _;
        // A log that cannot be written is no reason to fail the fetch.
        let _ = std::io::stderr().write_all(&pending.0);
        pending.0.clear();
        pending.1 = Instant::now();
    }
}

impl Progress for Lines {
    fn finished(&self, record: &FileRecord, outcome: &Result<Fetched, String>) {
        if outcome.is_ok() && self.quiet {
            return;
        }
        let mut pending = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        pending
            .0
            .extend_from_slice(line(record, outcome).as_bytes());
        pending.0.push(b'\n');
        if outcome.is_err() || pending.1.elapsed() >= Duration::from_millis(100) {
            Self::write_out(&mut pending);
        }
    }

    fn flush(&self) {
        Self::write_out(
            &mut self
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        let pending = self
            .pending
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Self::write_out(pending);
    }
}

/// Bars on a terminal: one per running transfer, one for the manifest.
pub struct Bars {
    multi: MultiProgress,
    total: ProgressBar,
    running: Mutex<HashMap<String, ProgressBar>>,
    files: usize,
    done: AtomicUsize,
}

impl Bars {
    /// `records`: everything this fetch may download (the whole bar's length).
    pub fn new(records: &[&FileRecord]) -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let total = multi.add(ProgressBar::new(records.iter().map(|r| r.size).sum()));
        total.set_style(
            ProgressStyle::with_template(
                "{prefix:>12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        total.set_prefix("all");
        total.set_message(format!("0/{} files", records.len()));
        Self {
            multi,
            total,
            running: Mutex::new(HashMap::new()),
            files: records.len(),
            done: AtomicUsize::new(0),
        }
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<String, ProgressBar>> {
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The whole bar counts the bytes that cross the network in this run: its
/// length starts at every file's size and loses what need not come (a file
/// in place or in the cache, the part a resumed download already has, the
/// rest of a file that failed), so its rate and its end stay true.
impl Progress for Bars {
    fn started(&self, record: &FileRecord, have: u64) {
        let bar = self
            .multi
            .insert_before(&self.total, ProgressBar::new(record.size));
        bar.set_style(
            ProgressStyle::with_template("{prefix:>12} [{bar:30}] {bytes}/{total_bytes} {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        let name: String = record.filename.chars().take(12).collect();
        bar.set_prefix(name);
        bar.set_position(have);
        match self.running().insert(record.filename.clone(), bar) {
            // A retry: what arrived before is counted already.
            Some(old) => old.finish_and_clear(),
            None => self.shorten(have),
        }
    }

    fn advanced(&self, record: &FileRecord, bytes: u64) {
        if let Some(bar) = self.running().get(&record.filename) {
            bar.inc(bytes);
        }
        self.total.inc(bytes);
    }

    fn finished(&self, record: &FileRecord, outcome: &Result<Fetched, String>) {
        let on_disk = self.running().remove(&record.filename).map(|bar| {
            bar.finish_and_clear();
            bar.position()
        });
        match (outcome, on_disk) {
            (Ok(_), Some(_)) => {}
            (Ok(_), None) => self.shorten(record.size),
            (Err(_), arrived) => self.shorten(record.size.saturating_sub(arrived.unwrap_or(0))),
        }
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        self.total
            .set_message(format!("{done}/{} files", self.files));
        // Printed above the bars; the bars are redrawn below it.
        self.multi
            .suspend(|| eprintln!("{}", line(record, outcome)));
    }
}

impl Bars {
    fn shorten(&self, by: u64) {
        let length = self.total.length().unwrap_or(0);
        self.total.set_length(length.saturating_sub(by));
    }
}

impl Drop for Bars {
    fn drop(&mut self) {
        self.total.finish_and_clear();
    }
}
