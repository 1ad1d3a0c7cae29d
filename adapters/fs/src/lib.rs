//! Local-directory [`BlobStore`]: one directory per region, and signed URLs
//! that point back at this server's own `/blob/<region>/<key>` routes.
//!
//! Layout under a region's root: `sha512/<digest>` (verified files),
//! `pending/<digest>/<slot>` (upload slots), `tmp/` (objects being written).
//! Every object appears by an atomic rename of a complete temporary file, so
//! readers never see a partial object and every write gets a new inode,
//! which is what the version tag (etag) is made of.

use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::{StreamExt, TryStreamExt};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::mpsc;
use tooltool_domain::{ContentHasher, Digest, Observed, RegionName, StagingKey};
use tooltool_ports::{
    BlobError, BlobStore, ByteRange, ByteStream, CopySource, ObjectInfo, Opened, SignedMethod,
};

/// Chunk size of reads served from disk: large enough that per-chunk
/// overhead vanishes, small enough that memory per transfer stays tiny.
const READ_CHUNK: usize = 256 * 1024;
/// Chunks queued between the network and each of the hashing and writing
/// threads: with hyper's chunks of at most a few hundred KiB, a few MiB.
const WRITE_QUEUE: usize = 32;
/// The writer asks for a flush to disk every this many bytes, so that the
/// flush before the rename waits for little.
const SYNC_EVERY: usize = 64 * 1024 * 1024;

/// Every directory store of this host can copy from every other.
const COPY_DOMAIN: &str = "local file system";

pub struct FsStore {
    region: RegionName,
    root: PathBuf,
    /// `<public url>/blob/<region>/`, to which keys are appended.
    url_base: String,
    secret: Vec<u8>,
}

impl std::fmt::Debug for FsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FsStore")
            .field("region", &self.region)
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: impl std::fmt::Display) -> BlobError {
    BlobError::Unavailable(e.to_string())
}

fn io_error(e: std::io::Error) -> BlobError {
    if e.kind() == std::io::ErrorKind::NotFound {
        BlobError::NotFound
    } else {
        unavailable(e)
    }
}

fn info_of(meta: &std::fs::Metadata) -> ObjectInfo {
    let modified = meta
        .modified()
        .map(DateTime::<Utc>::from)
        .unwrap_or_default();
    ObjectInfo {
        size: meta.len(),
        // inode + mtime + size: every rename-into-place yields a new inode.
        etag: format!(
            "{:x}-{:x}-{:x}",
            meta.ino(),
            meta.mtime_nsec() ^ meta.mtime(),
            meta.len()
        ),
        modified,
    }
}

/// Keys are produced by the application (`sha512/<digest>` or a
/// [`StagingKey`]); anything else would be a path-traversal attempt.
fn check_key(key: &str) -> Result<(), BlobError> {
    let ok = match key.strip_prefix("sha512/") {
        Some(d) => Digest::parse(d).is_ok(),
        None => StagingKey::parse(key).is_some(),
    };
    if ok { Ok(()) } else { Err(BlobError::NotFound) }
}

type HmacSha256 = Hmac<Sha256>;

impl FsStore {
    /// Opens a region rooted at `root`, creating its directories and
    /// clearing temporary files left by a previous process.
    pub fn new(
        region: RegionName,
        root: impl Into<PathBuf>,
        public_url: &str,
        secret: &[u8],
    ) -> Result<Self, BlobError> {
        let root = root.into();
        for dir in ["sha512", "pending", "tmp"] {
            std::fs::create_dir_all(root.join(dir)).map_err(|e| {
                unavailable(format!("cannot create {}: {e}", root.join(dir).display()))
            })?;
        }
        if let Ok(entries) = std::fs::read_dir(root.join("tmp")) {
            for entry in entries.flatten() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(Self {
            url_base: format!("{}/blob/{}/", public_url.trim_end_matches('/'), region),
            region,
            root,
            secret: secret.to_vec(),
        })
    }

    fn path(&self, key: &str) -> Result<PathBuf, BlobError> {
        check_key(key)?;
        Ok(self.root.join(key))
    }

    fn tmp_path(&self) -> PathBuf {
        self.root
            .join("tmp")
            .join(format!("{:032x}", rand::random::<u128>()))
    }

    fn mac(&self, method: SignedMethod, key: &str, expires: i64, size: Option<u64>) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.secret).expect("HMAC takes any key length");
        let method = match method {
            SignedMethod::Get => "GET",
            SignedMethod::Put => "PUT",
        };
        let size = size.map(|s| s.to_string()).unwrap_or_default();
        mac.update(format!("{method}\n{}\n{key}\n{expires}\n{size}", self.region).as_bytes());
        mac
    }

    fn sign(
        &self,
        method: SignedMethod,
        key: &str,
        expires: DateTime<Utc>,
        size: Option<u64>,
    ) -> String {
        let expires = expires.timestamp();
        let signature = hex::encode(self.mac(method, key, expires, size).finalize().into_bytes());
        match size {
            Some(size) => format!(
                "{}{key}?expires={expires}&size={size}&signature={signature}",
                self.url_base
            ),
            None => format!(
                "{}{key}?expires={expires}&signature={signature}",
                self.url_base
            ),
        }
    }

    /// Streams `body` into a new temporary file while hashing it, then
    /// renames it to `dest`. Three stages run concurrently, joined by
    /// bounded queues: the network (this task), the hasher and the writer
    /// (blocking threads), so the slowest of them alone sets the pace. The
    /// writer flushes to disk as it goes, so the final flush is short. The
    /// object is renamed into place only after an explicit end-of-body
    /// message, so an interrupted or oversized transfer leaves nothing.
    async fn write_object(
        &self,
        dest: PathBuf,
        limit: u64,
        mut body: ByteStream,
    ) -> Result<(Observed, ObjectInfo), BlobError> {
        let tmp = self.tmp_path();
        let (to_hasher, mut hasher_rx) = mpsc::channel::<Option<Bytes>>(WRITE_QUEUE);
        let (to_writer, mut writer_rx) = mpsc::channel::<Option<Bytes>>(WRITE_QUEUE);
        let hasher = tokio::task::spawn_blocking(move || {
            let mut hasher = ContentHasher::new();
            loop {
                match hasher_rx.blocking_recv() {
                    Some(Some(chunk)) => hasher.update(&chunk),
                    Some(None) => return Some(hasher.finish()),
                    None => return None,
                }
            }
        });
        let writer_tmp = tmp.clone();
        let writer = tokio::task::spawn_blocking(move || -> Result<std::fs::File, BlobError> {
            let mut file = std::fs::File::create(&writer_tmp).map_err(io_error)?;
            // A flusher thread pushes what was written to disk while the
            // writer goes on writing, so disk and network overlap instead of
            // the writer stalling on every flush. A request is dropped when
            // a flush is already running: that flush will cover it.
            let flusher_file = file.try_clone().map_err(io_error)?;
            let (flush, flush_requests) = std::sync::mpsc::sync_channel::<()>(1);
            let flusher = std::thread::spawn(move || {
                while flush_requests.recv().is_ok() {
                    let _ = flusher_file.sync_data();
                }
            });
            let mut unflushed = 0usize;
            let result = loop {
                match writer_rx.blocking_recv() {
                    Some(Some(chunk)) => {
                        if let Err(e) = file.write_all(&chunk) {
                            break Err(io_error(e));
                        }
                        unflushed += chunk.len();
                        if unflushed >= SYNC_EVERY {
                            let _ = flush.try_send(());
                            unflushed = 0;
                        }
                    }
                    Some(None) => break Ok(()),
                    // The receiving side gave up: keep nothing.
                    None => break Err(BlobError::Interrupted("transfer abandoned".into())),
                }
            };
            drop(flush);
            let _ = flusher.join();
            result?;
            // Durable before it can be promoted: errors of the background
            // flushes surface here too.
            file.sync_data().map_err(io_error)?;
            Ok(file)
        });
        let mut received = 0u64;
        let mut failure = None;
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(chunk) => {
                    received += chunk.len() as u64;
                    if received > limit {
                        failure = Some(BlobError::TooLarge { limit });
                        break;
                    }
                    let (h, w) = tokio::join!(
                        to_hasher.send(Some(chunk.clone())),
                        to_writer.send(Some(chunk))
                    );
                    if h.is_err() || w.is_err() {
                        break; // a stage failed; its error is reported below
                    }
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        if failure.is_none() {
            let _ = tokio::join!(to_hasher.send(None), to_writer.send(None));
        }
        drop((to_hasher, to_writer));
        let observed = hasher.await.map_err(unavailable)?;
        let written = writer.await.map_err(unavailable)?;
        let result = match (failure, observed, written) {
            (Some(failure), _, _) => Err(failure),
            (None, _, Err(e)) => Err(e),
            (None, None, Ok(_)) => Err(BlobError::Interrupted("transfer abandoned".into())),
            (None, Some(observed), Ok(_file)) => {
                let dest = dest.clone();
                let tmp = tmp.clone();
                tokio::task::spawn_blocking(move || {
                    if let Some(parent) = dest.parent() {
                        std::fs::create_dir_all(parent).map_err(io_error)?;
                    }
                    std::fs::rename(&tmp, &dest).map_err(io_error)?;
                    let meta = std::fs::metadata(&dest).map_err(io_error)?;
                    Ok((observed, info_of(&meta)))
                })
                .await
                .map_err(unavailable)?
            }
        };
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        result
    }

    fn read_stream(file: std::fs::File, len: u64) -> ByteStream {
        let reader = tokio::fs::File::from_std(file);
        let stream = tokio_util::io::ReaderStream::with_capacity(
            tokio::io::AsyncReadExt::take(reader, len),
            READ_CHUNK,
        )
        .map_err(|e| BlobError::Interrupted(e.to_string()));
        Box::pin(stream)
    }
}

fn query_param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

#[async_trait]
impl BlobStore for FsStore {
    fn region(&self) -> &RegionName {
        &self.region
    }

    async fn presign_put(
        &self,
        key: &StagingKey,
        size: u64,
        expires: DateTime<Utc>,
    ) -> Result<String, BlobError> {
        Ok(self.sign(SignedMethod::Put, &key.to_string(), expires, Some(size)))
    }

    async fn presign_get(&self, key: &str, expires: DateTime<Utc>) -> Result<String, BlobError> {
        check_key(key)?;
        Ok(self.sign(SignedMethod::Get, key, expires, None))
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, BlobError> {
        let path = self.path(key)?;
        match tokio::fs::metadata(&path).await {
            Ok(meta) => Ok(Some(info_of(&meta))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn get(&self, key: &str) -> Result<ByteStream, BlobError> {
        let path = self.path(key)?;
        let file = tokio::fs::File::open(&path).await.map_err(io_error)?;
        let file = file.into_std().await;
        let len = file.metadata().map_err(io_error)?.len();
        Ok(Self::read_stream(file, len))
    }

    async fn promote(&self, staging: &StagingKey, inspected: &ObjectInfo) -> Result<(), BlobError> {
        let from = self.path(&staging.to_string())?;
        let to = self.root.join(tooltool_domain::final_key(staging.digest()));
        let expected = inspected.etag.clone();
        tokio::task::spawn_blocking(move || {
            // Only this server writes staging objects, each once, by rename;
            // checking the version right before the rename is therefore
            // enough to refuse an object that is not the one hashed.
            let meta = std::fs::metadata(&from).map_err(io_error)?;
            if info_of(&meta).etag != expected {
                return Err(BlobError::Changed);
            }
            std::fs::rename(&from, &to).map_err(io_error)?;
            if let Some(dir) = from.parent() {
                let _ = std::fs::remove_dir(dir); // only succeeds when empty
            }
            Ok(())
        })
        .await
        .map_err(unavailable)?
    }

    async fn put(&self, key: &str, size: u64, body: ByteStream) -> Result<(), BlobError> {
        let dest = self.path(key)?;
        let (observed, _) = self.write_object(dest.clone(), size, body).await?;
        if observed.size != size {
            let _ = tokio::fs::remove_file(&dest).await;
            return Err(BlobError::Interrupted(format!(
                "expected {size} bytes, got {}",
                observed.size
            )));
        }
        Ok(())
    }

    fn copy_source(&self) -> Option<CopySource> {
        Some(CopySource {
            domain: COPY_DOMAIN.to_owned(),
            location: self.root.to_string_lossy().into_owned(),
        })
    }

    async fn copy_from(&self, source: &CopySource, key: &str, size: u64) -> Result<(), BlobError> {
        if source.domain != COPY_DOMAIN {
            return Err(BlobError::Unsupported);
        }
        let dest = self.path(key)?; // checks the key before it becomes a path
        let from = PathBuf::from(&source.location).join(key);
        let tmp = self.tmp_path();
        tokio::task::spawn_blocking(move || {
            let copy = || {
                // The kernel copies (copy_file_range, a reflink where the
                // file system can); flushed before it becomes visible.
                let copied = std::fs::copy(&from, &tmp).map_err(io_error)?;
                if copied != size {
                    return Err(BlobError::Interrupted(format!(
                        "expected {size} bytes, got {copied}"
                    )));
                }
                std::fs::File::open(&tmp)
                    .and_then(|f| f.sync_all())
                    .map_err(unavailable)?;
                std::fs::rename(&tmp, &dest).map_err(unavailable)
            };
            let result = copy();
            if result.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            result
        })
        .await
        .map_err(unavailable)?
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        let path = self.path(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(unavailable(e)),
        }
        if StagingKey::parse(key).is_some()
            && let Some(dir) = path.parent()
        {
            let _ = tokio::fs::remove_dir(dir).await; // only succeeds when empty
        }
        Ok(())
    }

    async fn list_staging(&self, before: DateTime<Utc>) -> Result<Vec<StagingKey>, BlobError> {
        let root = self.root.join(StagingKey::prefix());
        tokio::task::spawn_blocking(move || {
            let mut keys = Vec::new();
            let dirs = match std::fs::read_dir(&root) {
                Ok(d) => d,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(keys),
                Err(e) => return Err(unavailable(e)),
            };
            for dir in dirs.flatten() {
                let Ok(files) = std::fs::read_dir(dir.path()) else {
                    continue;
                };
                let mut empty = true;
                for file in files.flatten() {
                    empty = false;
                    let (Some(d), Some(s)) = (
                        dir.file_name().to_str().map(str::to_owned),
                        file.file_name().to_str().map(str::to_owned),
                    ) else {
                        continue;
                    };
                    let Some(key) = StagingKey::parse(&format!("{}{d}/{s}", StagingKey::prefix()))
                    else {
                        continue;
                    };
                    let old = file
                        .metadata()
                        .ok()
                        .and_then(|m| m.modified().ok())
                        .is_some_and(|m| DateTime::<Utc>::from(m) < before);
                    if old {
                        keys.push(key);
                    }
                }
                if empty {
                    let _ = std::fs::remove_dir(dir.path());
                }
            }
            Ok(keys)
        })
        .await
        .map_err(unavailable)?
    }

    fn authorize(
        &self,
        method: SignedMethod,
        key: &str,
        query: &str,
        now: DateTime<Utc>,
    ) -> Result<(), BlobError> {
        let forbidden = |why: &str| Err(BlobError::Forbidden(why.to_owned()));
        let (Some(expires), Some(signature)) = (
            query_param(query, "expires").and_then(|e| e.parse::<i64>().ok()),
            query_param(query, "signature").and_then(|s| hex::decode(s).ok()),
        ) else {
            return forbidden("this URL is not signed: request a new one from the server");
        };
        let size = match method {
            SignedMethod::Put => match query_param(query, "size").and_then(|s| s.parse().ok()) {
                Some(size) => Some(size),
                None => return forbidden("this upload URL has no size: request a new one"),
            },
            SignedMethod::Get => None,
        };
        if self
            .mac(method, key, expires, size)
            .verify_slice(&signature)
            .is_err()
        {
            return forbidden(
                "the URL signature does not match: it was altered or is for another object",
            );
        }
        if now.timestamp() > expires {
            return forbidden("this signed URL has expired: request a new one from the server");
        }
        Ok(())
    }

    async fn receive(
        &self,
        key: &StagingKey,
        limit: u64,
        body: ByteStream,
    ) -> Result<(Observed, ObjectInfo), BlobError> {
        let dest = self.path(&key.to_string())?;
        self.write_object(dest, limit, body).await
    }

    async fn open(&self, key: &str, range: ByteRange) -> Result<Opened, BlobError> {
        let path = self.path(key)?;
        let file = tokio::fs::File::open(&path).await.map_err(io_error)?;
        let mut file = file.into_std().await;
        let (file, meta, slice) = tokio::task::spawn_blocking(move || {
            let meta = file.metadata().map_err(io_error)?;
            let size = meta.len();
            let slice = resolve_range(range, size)?;
            if let Some((start, _)) = slice {
                file.seek(SeekFrom::Start(start)).map_err(io_error)?;
            }
            Ok::<_, BlobError>((file, meta, slice))
        })
        .await
        .map_err(unavailable)??;
        let size = meta.len();
        let len = slice.map_or(size, |(s, e)| e - s + 1);
        Ok(Opened {
            size,
            etag: info_of(&meta).etag,
            range: slice,
            body: Self::read_stream(file, len),
        })
    }
}

/// Resolves a requested range against an object's size (RFC 9110 §14.1.2):
/// `None` means the whole object.
fn resolve_range(range: ByteRange, size: u64) -> Result<Option<(u64, u64)>, BlobError> {
    let unsatisfiable = Err(BlobError::RangeNotSatisfiable { size });
    match range {
        ByteRange::Full => Ok(None),
        ByteRange::From(start) if start < size => Ok(Some((start, size - 1))),
        ByteRange::Inclusive(start, end) if start <= end && start < size => {
            Ok(Some((start, end.min(size - 1))))
        }
        ByteRange::Suffix(n) if n > 0 && size > 0 => Ok(Some((size - n.min(size), size - 1))),
        _ => unsatisfiable,
    }
}

#[cfg(test)]
mod contract {
    fn store() -> crate::FsStore {
        // The directory lives as long as the test process; each store gets its own.
        let dir = tempfile::tempdir().expect("tempdir").keep();
        crate::FsStore::new(
            tooltool_domain::RegionName::parse("east").expect("valid"),
            dir,
            "http://127.0.0.1:8000",
            b"test secret",
        )
        .expect("store")
    }

    tooltool_ports::blob_store_contract!(store(), self_served);
    tooltool_ports::blob_store_contract!(server_side_copy: (store(), store()));
}
