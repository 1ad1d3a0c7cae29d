//! The shared content-addressed cache (`-c/--cache-folder`), laid out as
//! `tooltool.py`'s (one file per entry, named by its digest), safe for
//! several processes at once: entries appear only by rename, whole and
//! verified, and files leave it by hard link (or copy) to a temporary name
//! beside the destination, then rename.
//!
//! A hit is not re-hashed: beside each entry `<digest>.verified` records
//! the entry's size and modification time when it was last hashed. An
//! entry that no longer matches its record (written since, or put there
//! by `tooltool.py`, or truncated by a job killed mid-copy) is hashed
//! again, and removed when its bytes are wrong.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::digest::hash_file_blocking;
use crate::manifest::FileRecord;

#[derive(Clone)]
pub struct Cache {
    dir: PathBuf,
}

/// Distinguishes the temporary names of one process.
static SEQUENCE: AtomicU64 = AtomicU64::new(0);

fn temporary(dir: &Path, stem: &str) -> PathBuf {
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let n = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let pid = PID.get_or_init(std::process::id);
    dir.join(format!(".{stem}.tmp-{pid}-{n}"))
}

/// The size and modification time (ns) that identify an entry's bytes.
fn stamp(m: &std::fs::Metadata) -> String {
    let mtime = m
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("{} {mtime}", m.len())
}

impl Cache {
    /// The cache in `dir`, created when missing.
    pub fn open(dir: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create the cache folder {}: {e}", dir.display()))?;
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    /// Puts the entry of `record` at `dest`, when the cache holds it.
    ///
    /// Each call is one trip to the blocking pool: a hit is a handful of
    /// system calls, and a hop per call would cost more than they do.
    pub async fn copy_out(&self, record: &FileRecord, dest: &Path) -> Result<bool, String> {
        let (entries, record, dest) = (self.entries(), record.clone(), dest.to_owned());
        tokio::task::spawn_blocking(move || entries.copy_out(&record, &dest))
            .await
            .map_err(|e| e.to_string())?
    }

    /// [`Cache::copy_out`] on the calling thread, for code already on the
    /// blocking pool.
    pub fn copy_out_blocking(&self, record: &FileRecord, dest: &Path) -> Result<bool, String> {
        self.entries().copy_out(record, dest)
    }

    /// Adds the verified file at `path` as the entry of `record`.
    pub async fn store(&self, record: &FileRecord, path: &Path) -> Result<(), String> {
        let (entries, record, path) = (self.entries(), record.clone(), path.to_owned());
        tokio::task::spawn_blocking(move || entries.store(&record, &path))
            .await
            .map_err(|e| e.to_string())?
    }

    /// Holds the entry of `record` for this process until the lock is
    /// dropped; waits while another process holds it. The lock saves a
    /// second download of what another job is fetching; correctness does
    /// not rest on it (entries appear only whole, by rename), so a lock
    /// file removed by `purge` meanwhile costs at most that download.
    pub async fn lock(&self, record: &FileRecord) -> Result<EntryLock, String> {
        let path = self.dir.join(format!(".{}.lock", record.digest));
        tokio::task::spawn_blocking(move || {
            let file = std::fs::File::options()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            file.lock()
                .map_err(|e| format!("cannot lock {}: {e}", path.display()))?;
            Ok(EntryLock(file))
        })
        .await
        .map_err(|e| e.to_string())?
    }

    /// `purge`: removes entries, least recently used first (by the time of
    /// their `.verified` record, which every hit touches), until the
    /// folder's file system has `free` bytes available; all of them when
    /// `free` is 0, as `tooltool.py` does. Returns how many were removed.
    pub fn purge(&self, free: u64) -> Result<usize, String> {
        let available = || available_space(&self.dir);
        if free > 0 && available()? >= free {
            return Ok(0);
        }
        let listing =
            std::fs::read_dir(&self.dir).map_err(|e| format!("{}: {e}", self.dir.display()))?;
        let mut entries = Vec::new();
        for item in listing.flatten() {
            let name = item.file_name().to_string_lossy().into_owned();
            // Only what this cache writes: entries named by their digest.
            if name.len() != 128 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
                continue;
            }
            let used = std::fs::metadata(self.dir.join(format!("{name}.verified")))
                .or_else(|_| item.metadata())
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            entries.push((used, name));
        }
        entries.sort();
        let mut removed = 0;
        for (_, name) in entries {
            if free > 0 && available()? >= free {
                break;
            }
            let path = self.dir.join(&name);
            match std::fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(e) => eprintln!("warning: cannot remove {}: {e}", path.display()),
            }
            let _ = std::fs::remove_file(self.dir.join(format!("{name}.verified")));
            let _ = std::fs::remove_file(self.dir.join(format!(".{name}.lock")));
        }
        Ok(removed)
    }

    fn entries(&self) -> Entries {
        Entries {
            dir: self.dir.clone(),
        }
    }
}

/// An entry's lock (see [`Cache::lock`]); released when dropped.
pub struct EntryLock(#[allow(dead_code, reason = "held for its lock")] std::fs::File);

/// Bytes available to this user on the file system holding `dir`.
fn available_space(dir: &Path) -> Result<u64, String> {
    let stat = rustix::fs::statvfs(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// The cache's files, handled with blocking calls.
struct Entries {
    dir: PathBuf,
}

impl Entries {
    fn entry(&self, record: &FileRecord) -> PathBuf {
        self.dir.join(&record.digest)
    }

    fn verified(&self, record: &FileRecord) -> PathBuf {
        self.dir.join(format!("{}.verified", record.digest))
    }

    /// Whether the entry of `record` holds its bytes; a wrong entry is
    /// removed.
    fn valid(&self, record: &FileRecord) -> Result<bool, String> {
        let entry = self.entry(record);
        let meta = match std::fs::metadata(&entry) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(format!("{}: {e}", entry.display())),
        };
        if meta.len() == record.size {
            if read_small(&self.verified(record)).as_deref() == Some(stamp(&meta).as_bytes()) {
                return Ok(true);
            }
            let digest =
                hash_file_blocking(&entry).map_err(|e| format!("{}: {e}", entry.display()))?;
            if digest == record.digest {
                self.record_verified(record, &meta);
                return Ok(true);
            }
        }
        eprintln!("cache: {} is corrupt; replacing it", entry.display());
        let _ = std::fs::remove_file(&entry);
        let _ = std::fs::remove_file(self.verified(record));
        Ok(false)
    }

    fn record_verified(&self, record: &FileRecord, meta: &std::fs::Metadata) {
        let tmp = temporary(&self.dir, &record.digest);
        // Best effort: without its record an entry is only hashed again.
        if std::fs::write(&tmp, stamp(meta)).is_ok()
            && std::fs::rename(&tmp, self.verified(record)).is_err()
        {
            let _ = std::fs::remove_file(&tmp);
        }
    }

    fn copy_out(&self, record: &FileRecord, dest: &Path) -> Result<bool, String> {
        if !self.valid(record)? {
            return Ok(false);
        }
        let entry = self.entry(record);
        // Straight to the destination when nothing is there (the link
        // fails rather than replace what appeared meanwhile); else by a
        // temporary name and a rename, so it is never seen half-written.
        if std::fs::hard_link(&entry, dest).is_ok() {
            let _ = touch(&self.verified(record));
            return Ok(true);
        }
        let dir = dest.parent().unwrap_or(Path::new("."));
        let tmp = temporary(dir, &record.filename);
        if std::fs::hard_link(&entry, &tmp).is_err() {
            std::fs::copy(&entry, &tmp)
                .map_err(|e| format!("{}: cannot copy out of the cache: {e}", record.filename))?;
        }
        if let Err(e) = std::fs::rename(&tmp, dest) {
            let _ = std::fs::remove_file(&tmp);
            return Err(format!("{}: {e}", dest.display()));
        }
        // The record's own time says when the entry was last used (purge).
        let _ = touch(&self.verified(record));
        Ok(true)
    }

    fn store(&self, record: &FileRecord, path: &Path) -> Result<(), String> {
        let tmp = temporary(&self.dir, &record.digest);
        if std::fs::hard_link(path, &tmp).is_err() {
            std::fs::copy(path, &tmp).map_err(|e| e.to_string())?;
        }
        let meta = std::fs::metadata(&tmp).map_err(|e| e.to_string())?;
        std::fs::rename(&tmp, self.entry(record)).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            e.to_string()
        })?;
        self.record_verified(record, &meta);
        Ok(())
    }
}

/// The contents of a small file (a `.verified` record) in one read; `None`
/// when it is missing or larger than a record.
fn read_small(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read as _;
    let mut buf = [0u8; 64];
    let n = std::fs::File::open(path).ok()?.read(&mut buf).ok()?;
    (n < buf.len()).then(|| buf[..n].to_vec())
}

/// Sets a file's modification time to now (by its path: no open).
fn touch(path: &Path) -> std::io::Result<()> {
    use rustix::fs::{AtFlags, CWD, Timespec, Timestamps, UTIME_NOW, UTIME_OMIT};
    let times = Timestamps {
        last_access: Timespec {
            tv_sec: 0,
            tv_nsec: UTIME_OMIT,
        },
        last_modification: Timespec {
            tv_sec: 0,
            tv_nsec: UTIME_NOW,
        },
    };
    rustix::fs::utimensat(CWD, path, &times, AtFlags::empty()).map_err(std::io::Error::from)
}
