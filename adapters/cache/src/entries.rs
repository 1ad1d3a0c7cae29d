//! The cached file records and the rule that keeps them coherent.
//!
//! A record is only kept when no change of its file can have slipped
//! between the read that produced it and the moment it is kept:
//!
//! - a reader takes a [`Ticket`] (the whole cache's generation and its
//!   digest's stripe counter) BEFORE it reads the store;
//! - a change bumps the counter of its digest's stripe, THEN drops the
//!   entry; dropping everything bumps the generation, then drops all;
//! - the reader inserts, THEN checks that its ticket still holds, and
//!   drops what it inserted if not.
//!
//! If the change's bump comes before the reader's check, the reader drops
//! its entry; if after, the change's drop comes after the reader's insert
//! and removes it. Either way no record older than a change survives it.
//! A change that committed before the reader's read is seen by the read.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use moka::notification::RemovalCause;
use tooltool_domain::Digest;
use tooltool_ports::{CacheStats, FileChanges, FileRecord};

/// Stripes of change counters: a change only spoils concurrent reads of
/// digests in its stripe.
const STRIPES: usize = 64;

/// What moka and the map spend per entry beside the record itself (an
/// estimate: hash table slot, access-order node, timestamps).
const ENTRY_OVERHEAD: usize = 160;

/// The longest any record is kept, whatever the notifications say: a
/// bound on staleness that does not depend on this design being right.
pub const MAX_AGE: Duration = Duration::from_secs(15 * 60);

/// What a reader saw before reading the store.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket {
    generation: u64,
    stripe: u64,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
    invalidations: AtomicU64,
}

/// The entries, whether they may be used, and the counters.
pub(crate) struct Entries {
    map: moka::sync::Cache<Digest, FileRecord>,
    /// Changes are being reported: entries may be used and kept.
    live: AtomicBool,
    generation: AtomicU64,
    stripes: [AtomicU64; STRIPES],
    counters: Arc<Counters>,
}

fn stripe_of(digest: &Digest) -> usize {
    // Digests are uniformly distributed hex: the first two digits spread.
    let hex = digest.as_str().as_bytes();
    let nibble = |b: u8| (b as char).to_digit(16).unwrap_or(0) as usize;
    (nibble(hex[0]) * 16 + nibble(hex[1])) % STRIPES
}

/// Bytes an entry is counted for.
fn weight(digest: &Digest, file: &FileRecord) -> u32 {
    let regions: usize = file
        .instances
        .iter()
        .map(|r| size_of_val(r) + r.as_str().len())
        .sum();
    let bytes = ENTRY_OVERHEAD
        + size_of::<Digest>()
        + digest.as_str().len()
        + size_of::<FileRecord>()
        + file.digest.as_str().len()
        + regions;
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

impl Entries {
    /// At most `max_bytes` of entries (so at most `max_bytes` / ~600
    /// entries); not live until the store says it watches.
    pub(crate) fn new(max_bytes: u64) -> Self {
        let counters = Arc::new(Counters::default());
        let evicted = Arc::clone(&counters);
        let map = moka::sync::Cache::builder()
            .max_capacity(max_bytes)
            .weigher(weight)
            .time_to_live(MAX_AGE)
            .eviction_listener(move |_, _, cause| {
                if matches!(cause, RemovalCause::Size | RemovalCause::Expired) {
                    evicted.evictions.fetch_add(1, SeqCst);
                }
            })
            .build();
        Self {
            map,
            live: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            stripes: std::array::from_fn(|_| AtomicU64::new(0)),
            counters,
        }
    }

    /// The cached record, counted as a hit or a miss; `None` while not live.
    pub(crate) fn get(&self, digest: &Digest) -> Option<FileRecord> {
        if !self.live.load(SeqCst) {
            return None;
        }
        let found = self.map.get(digest);
        let counter = if found.is_some() {
            &self.counters.hits
        } else {
            &self.counters.misses
        };
        counter.fetch_add(1, SeqCst);
        found
    }

    /// Taken before reading the store; `None` while not live (nothing
    /// read then may be kept).
    pub(crate) fn ticket(&self, digest: &Digest) -> Option<Ticket> {
        if !self.live.load(SeqCst) {
            return None;
        }
        Some(Ticket {
            generation: self.generation.load(SeqCst),
            stripe: self.stripes[stripe_of(digest)].load(SeqCst),
        })
    }

    /// Keeps `file`, read after `ticket` was taken, unless a change came
    /// in between (see the module's rule).
    pub(crate) fn keep(&self, ticket: Ticket, file: FileRecord) {
        let digest = file.digest.clone();
        self.map.insert(digest.clone(), file);
        let holds = self.live.load(SeqCst)
            && self.generation.load(SeqCst) == ticket.generation
            && self.stripes[stripe_of(&digest)].load(SeqCst) == ticket.stripe;
        if !holds {
            self.map.invalidate(&digest);
        }
    }

    /// Drops everything: bump, then drop.
    fn drop_all(&self) {
        self.generation.fetch_add(1, SeqCst);
        self.map.invalidate_all();
        self.counters.invalidations.fetch_add(1, SeqCst);
    }

    pub(crate) fn stats(&self) -> CacheStats {
        self.map.run_pending_tasks();
        let c = &self.counters;
        CacheStats {
            hits: c.hits.load(SeqCst),
            misses: c.misses.load(SeqCst),
            evictions: c.evictions.load(SeqCst),
            invalidations: c.invalidations.load(SeqCst),
            entries: self.map.entry_count(),
            bytes: self.map.weighted_size(),
        }
    }
}

impl FileChanges for Entries {
    fn changed(&self, digest: &Digest) {
        self.stripes[stripe_of(digest)].fetch_add(1, SeqCst);
        self.map.invalidate(digest);
        self.counters.invalidations.fetch_add(1, SeqCst);
    }

    fn interrupted(&self) {
        self.live.store(false, SeqCst);
        self.drop_all();
    }

    fn watching(&self) {
        self.drop_all();
        self.live.store(true, SeqCst);
    }
}
