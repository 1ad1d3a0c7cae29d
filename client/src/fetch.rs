//! `fetch`: every file of a manifest, in parallel, each hashed while it
//! streams, written beside its destination and renamed into place only
//! when its size and SHA-512 match. An interrupted download leaves its
//! partial file, which the next run resumes with `Range`. Failures that may
//! pass (5xx, timeouts, resets) are retried with backoff, `X-Retry-After`
//! honoured; a 4xx is never retried. Where each file comes from is
//! `locate.rs`'s.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use openssl::hash::{Hasher, MessageDigest};
use tokio::io::AsyncWriteExt as _;

use crate::api;
use crate::auth::Credentials;
use crate::cache::Cache;
use crate::digest::hash_prefix;
pub use crate::digest::{hash_file, hash_file_blocking, matches_record, matches_record_blocking};
use crate::failure::{Failure, without_query};
use crate::locate::Hints;
use crate::manifest::FileRecord;
use crate::retry::{Attempt, Retry};

/// Where and how to fetch.
pub struct Fetcher {
    /// One generated client per server, tried in order.
    pub(crate) apis: Vec<api::Client>,
    pub(crate) credentials: Credentials,
    pub(crate) region: Option<String>,
    pub retry: Retry,
    /// Told about every file's transfer (bars or lines, in the CLI).
    pub progress: Arc<dyn Progress>,
    /// No redirects: the server's 302 is read, its URL fetched by hand
    /// (without the credentials, which must not reach the storage).
    pub(crate) http: reqwest::Client,
}

/// What became of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// Already in place and valid.
    Present,
    /// Linked or copied out of the cache.
    FromCache,
    /// Downloaded; `bytes` is what crossed the network (less than the
    /// size when a partial download was resumed).
    Downloaded { bytes: u64 },
}

/// Told what the transfers do; every method defaults to nothing.
pub trait Progress: Send + Sync {
    /// A transfer of `record` starts, `have` bytes of it already on disk.
    fn started(&self, _record: &FileRecord, _have: u64) {}
    /// `bytes` more of `record` arrived.
    fn advanced(&self, _record: &FileRecord, _bytes: u64) {}
    /// `record` is done, one way or the other.
    fn finished(&self, _record: &FileRecord, _outcome: &Result<Fetched, String>) {}
    /// Whatever was told should be shown now (a stage ended).
    fn flush(&self) {}
}

/// Says nothing.
pub struct Quiet;

impl Progress for Quiet {}

impl Fetcher {
    /// `urls`: the servers' base URLs, tried in order.
    pub fn new(
        urls: &[String],
        credentials: Credentials,
        region: Option<String>,
    ) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(60))
            .user_agent(concat!("tooltool-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot set up HTTP: {e}"))?;
        let apis = urls
            .iter()
            .map(|u| {
                api::Client::new_with_client(
                    u.trim_end_matches('/'),
                    http.clone(),
                    credentials.clone(),
                )
            })
            .collect();
        Ok(Self {
            apis,
            credentials,
            region,
            retry: Retry::default(),
            progress: Arc::new(Quiet),
            http,
        })
    }

    /// Fetches every record into `dir`, `jobs` at a time, through `cache`
    /// when there is one: what is in place or in the cache first, then the
    /// rest resolved in one request when the server offers it and
    /// downloaded. The outcomes come in the records' order.
    pub async fn fetch_all(
        &self,
        records: &[&FileRecord],
        dir: &Path,
        cache: Option<&Cache>,
        jobs: usize,
    ) -> Vec<Result<Fetched, String>> {
        // Unordered within each stage, so that a slow file never holds
        // back the start of the next; each outcome is told as it comes.
        let mut outcomes: Vec<Option<Result<Fetched, String>>> = vec![None; records.len()];
        for (i, o) in self.local_all(records, dir, cache, jobs).await {
            outcomes[i] = o;
        }
        self.progress.flush();
        let missing: Vec<(usize, &FileRecord)> = records
            .iter()
            .enumerate()
            .filter(|(i, _)| outcomes[*i].is_none())
            .map(|(i, r)| (i, *r))
            .collect();
        let wanted: Vec<&FileRecord> = missing.iter().map(|(_, r)| *r).collect();
        let hints = self.resolve_all(&wanted).await;
        let mut downloads = futures_util::stream::iter(missing)
            .map(|(i, record)| {
                let hints = &hints;
                async move {
                    let o = self.download_into(record, dir, cache, hints).await;
                    self.progress.finished(record, &o);
                    (i, o)
                }
            })
            .buffer_unordered(jobs);
        while let Some((i, o)) = downloads.next().await {
            outcomes[i] = Some(o);
        }
        drop(downloads);
        self.progress.flush();
        outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Err("not fetched".into())))
            .collect()
    }

    /// Fetches `record` into `dir`, through `cache` when there is one.
    pub async fn fetch(
        &self,
        record: &FileRecord,
        dir: &Path,
        cache: Option<&Cache>,
    ) -> Result<Fetched, String> {
        let mut outcomes = self.fetch_all(&[record], dir, cache, 1).await;
        outcomes.pop().unwrap_or_else(|| Err("not fetched".into()))
    }

    /// What is in place or in the cache, found on the blocking pool in
    /// `jobs` batches (at most one per core): a hit is a few system calls,
    /// and a trip to the pool for each would cost more than they do.
    /// Answers, by index, the records found, each told as it is.
    async fn local_all(
        &self,
        records: &[&FileRecord],
        dir: &Path,
        cache: Option<&Cache>,
        jobs: usize,
    ) -> Vec<(usize, Option<Result<Fetched, String>>)> {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let batches = jobs.min(cores).max(1);
        let per_batch = records.len().div_ceil(batches).max(1);
        let tasks: Vec<_> = records
            .iter()
            .enumerate()
            .map(|(i, r)| (i, (*r).clone()))
            .collect::<Vec<_>>()
            .chunks(per_batch)
            .map(|chunk| {
                let indices: Vec<usize> = chunk.iter().map(|(i, _)| *i).collect();
                let (chunk, dir, cache) = (chunk.to_vec(), dir.to_owned(), cache.cloned());
                let progress = Arc::clone(&self.progress);
                let task = tokio::task::spawn_blocking(move || {
                    chunk
                        .into_iter()
                        .map(|(i, record)| {
                            let dest = dir.join(&record.filename);
                            let o = local(&record, &dest, cache.as_ref()).transpose();
                            if let Some(o) = &o {
                                progress.finished(&record, o);
                            }
                            (i, o)
                        })
                        .collect::<Vec<_>>()
                });
                (indices, task)
            })
            .collect();
        let mut found = Vec::with_capacity(records.len());
        for (indices, task) in tasks {
            match task.await {
                Ok(batch) => found.extend(batch),
                // A batch that died says so for each of its files.
                Err(e) => found.extend(
                    indices
                        .into_iter()
                        .map(|i| (i, Some(Err(format!("the local check failed: {e}"))))),
                ),
            }
        }
        found
    }

    /// Downloads `record` into `dir`. With a cache, the entry's lock is
    /// held meanwhile: another process fetching the same file waits, then
    /// finds it in the cache instead of downloading it again.
    async fn download_into(
        &self,
        record: &FileRecord,
        dir: &Path,
        cache: Option<&Cache>,
        hints: &Hints,
    ) -> Result<Fetched, String> {
        let dest = dir.join(&record.filename);
        let _lock = match cache {
            Some(cache) => {
                let lock = cache.lock(record).await?;
                if cache.copy_out(record, &dest).await? {
                    return Ok(Fetched::FromCache);
                }
                Some(lock)
            }
            None => None,
        };
        let partial = partial_path(dir, record);
        let bytes = self.download(record, &partial, hints).await?;
        if let Some(cache) = cache {
            // A cache that cannot take the file costs only a later download.
            if let Err(e) = cache.store(record, &partial).await {
                eprintln!("warning: {}: not cached: {e}", record.filename);
            }
        }
        tokio::fs::rename(&partial, &dest).await.map_err(|e| {
            format!(
                "{}: cannot move the download into place: {e}",
                record.filename
            )
        })?;
        Ok(Fetched::Downloaded { bytes })
    }

    /// Downloads into `partial` (resuming what is there) until its size and
    /// digest match, trying the servers in order; returns the bytes that
    /// crossed the network.
    async fn download(
        &self,
        record: &FileRecord,
        partial: &Path,
        hints: &Hints,
    ) -> Result<u64, String> {
        // Rounds over the servers: a server that is down costs one attempt
        // per round, not a whole backoff before the next one is asked;
        // the pause comes between rounds, and only while some server's
        // failure may pass.
        let mut fetched = 0;
        let mut attempt = Attempt::default();
        loop {
            let mut last = Failure::Final(String::from("no server URL given"));
            for base in 0..self.apis.len() {
                let outcome = async {
                    let location = self.locate(base, record, hints).await?;
                    self.transfer(&location, record, partial, &mut fetched)
                        .await
                }
                .await;
                match outcome {
                    Ok(()) => return Ok(fetched),
                    // A transient failure is the one to report and retry,
                    // whatever the servers after it said.
                    Err(f @ Failure::Transient(..)) => last = f,
                    Err(f) if matches!(last, Failure::Final(_)) => last = f,
                    Err(_) => {}
                }
            }
            match last {
                Failure::Final(e) => return Err(e),
                Failure::Transient(e, after) => match attempt.next(&self.retry, after) {
                    Some(pause) => tokio::time::sleep(pause).await,
                    None => return Err(e),
                },
            }
        }
    }

    /// Streams the signed URL into `partial`, resuming at its length, and
    /// checks the whole file.
    async fn transfer(
        &self,
        location: &str,
        record: &FileRecord,
        partial: &Path,
        fetched: &mut u64,
    ) -> Result<(), Failure> {
        let shown = without_query(location);
        let io = |e: std::io::Error| {
            Failure::Final(format!("{}: {}: {e}", record.filename, partial.display()))
        };
        // What is already there is hashed first: the digest covers the file.
        let mut hasher =
            Hasher::new(MessageDigest::sha512()).map_err(|e| Failure::Final(e.to_string()))?;
        let mut have = hash_prefix(partial, record.size, &mut hasher)
            .await
            .map_err(io)?;
        if have == record.size {
            // Whole already (a run killed before its rename): nothing to ask.
            let digest = hasher
                .finish()
                .map(hex::encode)
                .map_err(|e| Failure::Final(e.to_string()))?;
            if digest == record.digest {
                return Ok(());
            }
            let _ = tokio::fs::remove_file(partial).await;
            have = 0;
        }
        let mut req = self.http.get(location);
        if have > 0 {
            req = req.header(reqwest::header::RANGE, format!("bytes={have}-"));
        }
        let resp = req
            .send()
            .await
            .map_err(|e| Failure::transient(record, &shown, e))?;
        let status = resp.status();
        match status {
            reqwest::StatusCode::PARTIAL_CONTENT if have > 0 => {}
            reqwest::StatusCode::OK => {
                // The store sent the whole file: start over.
                hasher = Hasher::new(MessageDigest::sha512())
                    .map_err(|e| Failure::Final(e.to_string()))?;
            }
            reqwest::StatusCode::RANGE_NOT_SATISFIABLE => {
                let _ = tokio::fs::remove_file(partial).await;
                return Err(Failure::Transient(
                    format!(
                        "{}: {shown}: the partial file was longer than the file",
                        record.filename
                    ),
                    None,
                ));
            }
            _ => return Err(Failure::of_response(record, &shown, resp).await),
        }
        // Opened only for bytes to keep: a refusal leaves no file behind.
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(partial)
            .await
            .map_err(io)?;
        let mut written = if status == reqwest::StatusCode::OK {
            file.set_len(0).await.map_err(io)?;
            0
        } else {
            have
        };
        self.progress.started(record, written);
        let mut body = resp.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| Failure::transient(record, &shown, e))?;
            written += chunk.len() as u64;
            *fetched += chunk.len() as u64;
            self.progress.advanced(record, chunk.len() as u64);
            if written > record.size {
                break;
            }
            hasher
                .update(&chunk)
                .map_err(|e| Failure::Final(e.to_string()))?;
            file.write_all(&chunk).await.map_err(io)?;
        }
        file.flush().await.map_err(io)?;
        drop(file);
        let digest = hasher
            .finish()
            .map(hex::encode)
            .map_err(|e| Failure::Final(e.to_string()))?;
        if written == record.size && digest == record.digest {
            return Ok(());
        }
        // Wrong bytes are never kept: the next attempt starts from nothing.
        let _ = tokio::fs::remove_file(partial).await;
        if written < record.size {
            return Err(Failure::Transient(
                format!(
                    "{}: {shown}: the transfer ended at {written} of {} bytes",
                    record.filename, record.size
                ),
                None,
            ));
        }
        Err(Failure::Transient(
            format!(
                "{}: {shown}: the bytes received do not match the manifest's size and digest",
                record.filename
            ),
            None,
        ))
    }
}

/// `Some` when `record` is in place at `dest` or came out of the cache
/// (blocking calls).
fn local(
    record: &FileRecord,
    dest: &Path,
    cache: Option<&Cache>,
) -> Result<Option<Fetched>, String> {
    if matches_record_blocking(dest, record)? {
        return Ok(Some(Fetched::Present));
    }
    if let Some(cache) = cache
        && cache.copy_out_blocking(record, dest)?
    {
        return Ok(Some(Fetched::FromCache));
    }
    Ok(None)
}

/// Where the download of `record` into `dir` is kept until it is whole
/// (a stable name, so that a later run finds it and resumes).
pub fn partial_path(dir: &Path, record: &FileRecord) -> PathBuf {
    dir.join(format!("{}.tooltool-part", record.filename))
}
