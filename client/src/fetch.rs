//! `fetch`: every file of a manifest, in parallel, each hashed while it
//! streams, written beside its destination and renamed into place only
//! when its size and SHA-512 match. An interrupted download leaves its
//! partial file, which the next run resumes with `Range`. Failures that may
//! pass (5xx, timeouts, resets) are retried with backoff, `X-Retry-After`
//! honoured; a 4xx is never retried.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt as _;
use openssl::hash::{Hasher, MessageDigest};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::cache::Cache;
use crate::manifest::FileRecord;
use crate::retry::{Attempt, Retry};

/// Where and how to fetch.
pub struct Fetcher {
    /// Server base URLs, tried in order.
    pub urls: Vec<String>,
    /// The `Authorization` header value, when there are credentials.
    pub authorization: Option<String>,
    pub region: Option<String>,
    pub retry: Retry,
    /// No redirects: the server's 302 is read, its URL fetched by hand.
    http: reqwest::Client,
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

impl Fetcher {
    pub fn new(
        urls: Vec<String>,
        authorization: Option<String>,
        region: Option<String>,
    ) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(60))
            .user_agent(concat!("tooltool-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot set up HTTP: {e}"))?;
        Ok(Self {
            urls,
            authorization,
            region,
            retry: Retry::default(),
            http,
        })
    }

    /// Fetches `record` into `dir`, through `cache` when there is one.
    pub async fn fetch(
        &self,
        record: &FileRecord,
        dir: &Path,
        cache: Option<&Cache>,
    ) -> Result<Fetched, String> {
        let dest = dir.join(&record.filename);
        if matches_record(&dest, record).await? {
            return Ok(Fetched::Present);
        }
        if let Some(cache) = cache
            && cache.copy_out(record, &dest).await?
        {
            return Ok(Fetched::FromCache);
        }
        let partial = partial_path(dir, record);
        let bytes = self.download(record, &partial).await?;
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
    async fn download(&self, record: &FileRecord, partial: &Path) -> Result<u64, String> {
        // Rounds over the servers: a server that is down costs one attempt
        // per round, not a whole backoff before the next one is asked;
        // the pause comes between rounds, and only while some server's
        // failure may pass.
        let mut fetched = 0;
        let mut attempt = Attempt::default();
        loop {
            let mut last = Failure::Final(String::from("no server URL given"));
            for base in &self.urls {
                let outcome = async {
                    let location = self.resolve(base, record).await?;
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

    /// `GET /sha512/<digest>` → the signed URL of its 302.
    async fn resolve(&self, base: &str, record: &FileRecord) -> Result<String, Failure> {
        let mut url = format!("{}/sha512/{}", base.trim_end_matches('/'), record.digest);
        if let Some(region) = &self.region {
            url.push_str("?region=");
            url.push_str(&urlencode(region));
        }
        let mut req = self.http.get(&url);
        if let Some(auth) = &self.authorization {
            req = req.header(reqwest::header::AUTHORIZATION, auth);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| Failure::transient(record, &url, e))?;
        let status = resp.status();
        if status == reqwest::StatusCode::FOUND || status == reqwest::StatusCode::TEMPORARY_REDIRECT
        {
            return resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .ok_or_else(|| {
                    Failure::Final(format!(
                        "{}: {url} answered {status} without a Location",
                        record.filename
                    ))
                });
        }
        Err(Failure::of_response(record, &url, resp).await)
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
        let mut body = resp.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| Failure::transient(record, &shown, e))?;
            written += chunk.len() as u64;
            *fetched += chunk.len() as u64;
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

/// Why an attempt failed: for good, or for now (with the server's
/// `X-Retry-After`, when it gave one).
enum Failure {
    Final(String),
    Transient(String, Option<Duration>),
}

impl Failure {
    fn transient(record: &FileRecord, url: &str, e: reqwest::Error) -> Self {
        let e = e.without_url();
        Self::Transient(
            format!("{}: {}: {e}", record.filename, without_query(url)),
            None,
        )
    }

    /// A response that is neither the 302 nor the bytes: its status and
    /// the server's sentence (`detail` of the error shape, when it is one).
    async fn of_response(record: &FileRecord, url: &str, resp: reqwest::Response) -> Self {
        let status = resp.status();
        let after = crate::retry::server_delay(resp.headers());
        let text = first_kib(resp).await;
        let detail = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["detail"].as_str().map(str::to_owned))
            .unwrap_or_else(|| text.chars().take(200).collect::<String>().trim().to_owned());
        let line = format!(
            "{}: {} answered {status}{}",
            record.filename,
            without_query(url),
            if detail.is_empty() {
                String::new()
            } else {
                format!(": {detail}")
            }
        );
        if status.is_server_error()
            || status == reqwest::StatusCode::TOO_MANY_REQUESTS
            || status == reqwest::StatusCode::CONFLICT
        {
            Self::Transient(line, after)
        } else {
            Self::Final(line)
        }
    }
}

/// The start of an error response's body: an error page is read for its
/// first KiB only, however large the server (or a proxy) made it.
async fn first_kib(resp: reqwest::Response) -> String {
    let mut body = resp.bytes_stream();
    let mut bytes = Vec::new();
    while let Some(Ok(chunk)) = body.next().await {
        bytes.extend_from_slice(&chunk[..chunk.len().min(1024 - bytes.len())]);
        if bytes.len() >= 1024 {
            break;
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Whether `path` is a file of the record's size and digest.
pub async fn matches_record(path: &Path, record: &FileRecord) -> Result<bool, String> {
    match tokio::fs::metadata(path).await {
        Ok(m) if m.is_file() && m.len() == record.size => {}
        Ok(_) => return Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    }
    let digest = hash_file(path)
        .await
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(digest == record.digest)
}

/// The SHA-512 of a whole file, in hex.
pub async fn hash_file(path: &Path) -> std::io::Result<String> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || hash_file_blocking(&path)).await?
}

/// [`hash_file`] on the calling thread, for code already on the blocking
/// pool.
pub fn hash_file_blocking(path: &Path) -> std::io::Result<String> {
    use std::io::Read as _;
    let mut hasher = Hasher::new(MessageDigest::sha512())?;
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n])?;
    }
    Ok(hex::encode(hasher.finish()?))
}

/// Feeds the first `limit` bytes of `path` (all of it when shorter; none
/// when it does not exist) to `hasher`; returns how many. A file longer
/// than `limit` is cut to it.
async fn hash_prefix(path: &Path, limit: u64, hasher: &mut Hasher) -> std::io::Result<u64> {
    let mut file = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    while total < limit {
        let want = usize::try_from((limit - total).min(buf.len() as u64)).unwrap_or(buf.len());
        let n = file.read(&mut buf[..want]).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n])?;
        total += n as u64;
    }
    drop(file);
    if limit != u64::MAX && tokio::fs::metadata(path).await?.len() > total {
        tokio::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .await?
            .set_len(total)
            .await?;
    }
    Ok(total)
}

/// A URL as it may be shown: without its query (signatures live there).
pub fn without_query(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or(url).to_owned()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Where the download of `record` into `dir` is kept until it is whole
/// (a stable name, so that a later run finds it and resumes).
pub fn partial_path(dir: &Path, record: &FileRecord) -> PathBuf {
    dir.join(format!("{}.tooltool-part", record.filename))
}
