//! Local-directory [`BlobStore`]: one directory per region, and signed URLs
//! that point back at this server's own `/blob/<region>/<key>` routes, so
//! the store also receives and serves every transfer itself
//! ([`Receiving`], [`Serving`], in `served.rs`).
//!
//! Layout under a region's root: `sha512/<digest>` (verified files),
//! `pending/<digest>/<slot>` (upload slots), `tmp/` (objects being written).
//! Every object appears by an atomic rename of a complete temporary file
//! (`write.rs`), so readers never see a partial object and every write gets
//! a new inode, which is what the version tag (etag) is made of.
//!
//! Keys arrive typed ([`ObjectKey`]): their text is a safe relative path by
//! construction (hex digits, `[A-Za-z0-9_-]` slot ids), so no path built
//! here can leave the region's root.

mod served;
mod write;

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use tooltool_domain::{Digest, ObjectKey, RegionName, StagingKey, UrlSigner};
use tooltool_ports::{
    BlobError, BlobStore, ByteStream, CopySource, ObjectInfo, Receiving, Serving,
};

/// Chunk size of reads served from disk: large enough that per-chunk
/// overhead vanishes, small enough that memory per transfer stays tiny.
const READ_CHUNK: usize = 256 * 1024;

/// Every directory store of this host can copy from every other.
const COPY_DOMAIN: &str = "local file system";

/// One region's directory; shared by the [`BlobStore`] face and the
/// [`Receiving`] and [`Serving`] ones (`served.rs`).
struct Region {
    name: RegionName,
    root: PathBuf,
    signer: UrlSigner,
}

pub struct FsStore {
    region: Arc<Region>,
}

impl std::fmt::Debug for FsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FsStore")
            .field("region", &self.region.name)
            .field("root", &self.region.root)
            .finish_non_exhaustive()
    }
}

fn io_error(e: std::io::Error) -> BlobError {
    if e.kind() == std::io::ErrorKind::NotFound {
        BlobError::NotFound
    } else {
        BlobError::unavailable(e)
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

impl Region {
    fn path(&self, key: &ObjectKey) -> PathBuf {
        self.root.join(key.to_string())
    }

    fn tmp_path(&self) -> PathBuf {
        self.root
            .join("tmp")
            .join(format!("{:032x}", rand::random::<u128>()))
    }

    fn read_stream(file: std::fs::File, len: u64) -> ByteStream {
        let reader = tokio::fs::File::from_std(file);
        let stream = tokio_util::io::ReaderStream::with_capacity(
            tokio::io::AsyncReadExt::take(reader, len),
            READ_CHUNK,
        )
        .map_err(BlobError::interrupted);
        Box::pin(stream)
    }
}

impl FsStore {
    /// Opens a region rooted at `root`, creating its directories and
    /// clearing temporary files left by a previous process. Its URLs are
    /// signed by `signer` (this region's, on this server's public URL).
    pub fn new(
        region: RegionName,
        root: impl Into<PathBuf>,
        signer: UrlSigner,
    ) -> Result<Self, BlobError> {
        let root = root.into();
        for dir in ["sha512", "pending", "tmp"] {
            let path = root.join(dir);
            std::fs::create_dir_all(&path).map_err(|e| {
                BlobError::unavailable(format!("cannot create {}: {e}", path.display()))
            })?;
        }
        if let Ok(entries) = std::fs::read_dir(root.join("tmp")) {
            for entry in entries.flatten() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(Self {
            region: Arc::new(Region {
                name: region,
                root,
                signer,
            }),
        })
    }
}

#[async_trait]
impl BlobStore for FsStore {
    fn region(&self) -> &RegionName {
        &self.region.name
    }

    fn low_on_space(&self) -> Option<String> {
        tooltool_ports::low_space_at(&self.region.root)
    }

    async fn presign_put(
        &self,
        key: &StagingKey,
        size: u64,
        expires: DateTime<Utc>,
    ) -> Result<String, BlobError> {
        Ok(self.region.signer.sign_put(key, size, expires.timestamp()))
    }

    async fn presign_get(
        &self,
        digest: &Digest,
        expires: DateTime<Utc>,
    ) -> Result<String, BlobError> {
        Ok(self.region.signer.sign_get(digest, expires.timestamp()))
    }

    async fn head(&self, key: &ObjectKey) -> Result<Option<ObjectInfo>, BlobError> {
        match tokio::fs::metadata(self.region.path(key)).await {
            Ok(meta) => Ok(Some(info_of(&meta))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(BlobError::unavailable(e)),
        }
    }

    async fn get(&self, key: &ObjectKey) -> Result<ByteStream, BlobError> {
        let file = tokio::fs::File::open(self.region.path(key))
            .await
            .map_err(io_error)?;
        let file = file.into_std().await;
        let len = file.metadata().map_err(io_error)?.len();
        Ok(Region::read_stream(file, len))
    }

    async fn promote(&self, staging: &StagingKey, inspected: &ObjectInfo) -> Result<(), BlobError> {
        let from = self.region.path(&staging.clone().into());
        let to = self.region.path(&ObjectKey::File(staging.digest().clone()));
        let expected = inspected.etag.clone();
        tokio::task::spawn_blocking(move || {
            // Only this server writes staging objects, each once, by rename;
            // checking the version right before the rename is therefore
            // enough to refuse an object that is not the one hashed.
            let meta = std::fs::metadata(&from).map_err(io_error)?;
            if info_of(&meta).etag != expected {
                return Err(BlobError::Changed);
            }
            write::durable_rename(&from, &to).map_err(io_error)?;
            if let Some(dir) = from.parent() {
                let _ = std::fs::remove_dir(dir); // only succeeds when empty
            }
            Ok(())
        })
        .await
        .map_err(BlobError::unavailable)?
    }

    async fn put(&self, key: &ObjectKey, size: u64, body: ByteStream) -> Result<(), BlobError> {
        let dest = self.region.path(key);
        let (observed, _) = self.region.write_object(dest.clone(), size, body).await?;
        if observed.size != size {
            let _ = tokio::fs::remove_file(&dest).await;
            return Err(BlobError::interrupted(format!(
                "expected {size} bytes, got {}",
                observed.size
            )));
        }
        Ok(())
    }

    fn copy_source(&self) -> Option<CopySource> {
        Some(CopySource {
            domain: COPY_DOMAIN.to_owned(),
            location: self.region.root.to_string_lossy().into_owned(),
        })
    }

    async fn copy_from(
        &self,
        source: &CopySource,
        digest: &Digest,
        size: u64,
    ) -> Result<(), BlobError> {
        if source.domain != COPY_DOMAIN {
            return Err(BlobError::OtherDomain(source.clone()));
        }
        let key = ObjectKey::File(digest.clone());
        let dest = self.region.path(&key);
        let from = PathBuf::from(&source.location).join(key.to_string());
        let tmp = self.region.tmp_path();
        tokio::task::spawn_blocking(move || {
            let copy = || {
                // The kernel copies (copy_file_range, a reflink where the
                // file system can); flushed before it becomes visible.
                let copied = std::fs::copy(&from, &tmp).map_err(io_error)?;
                if copied != size {
                    return Err(BlobError::interrupted(format!(
                        "expected {size} bytes, got {copied}"
                    )));
                }
                std::fs::File::open(&tmp)
                    .and_then(|f| f.sync_all())
                    .map_err(BlobError::unavailable)?;
                write::durable_rename(&tmp, &dest).map_err(BlobError::unavailable)
            };
            let result = copy();
            if result.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            result
        })
        .await
        .map_err(BlobError::unavailable)?
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), BlobError> {
        let path = self.region.path(key);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(BlobError::unavailable(e)),
        }
        if let ObjectKey::Staging(_) = key
            && let Some(dir) = path.parent()
        {
            let _ = tokio::fs::remove_dir(dir).await; // only succeeds when empty
        }
        Ok(())
    }

    async fn list_staging(&self, before: DateTime<Utc>) -> Result<Vec<StagingKey>, BlobError> {
        let root = self.region.root.join(StagingKey::prefix());
        tokio::task::spawn_blocking(move || {
            let mut keys = Vec::new();
            let dirs = match std::fs::read_dir(&root) {
                Ok(d) => d,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(keys),
                Err(e) => return Err(BlobError::unavailable(e)),
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
        .map_err(BlobError::unavailable)?
    }

    fn receiving(&self) -> Option<Arc<dyn Receiving>> {
        Some(Arc::clone(&self.region) as Arc<dyn Receiving>)
    }

    fn serving(&self) -> Option<Arc<dyn Serving>> {
        Some(Arc::clone(&self.region) as Arc<dyn Serving>)
    }
}

#[cfg(test)]
mod contract {
    fn store() -> crate::FsStore {
        // The directory lives as long as the test process; each store gets its own.
        let dir = tempfile::tempdir().expect("tempdir").keep();
        let region = tooltool_domain::RegionName::parse("east").expect("valid");
        let signer =
            tooltool_domain::UrlSigner::new(&region, "http://127.0.0.1:8000", b"test secret");
        crate::FsStore::new(region, dir, signer).expect("store")
    }

    tooltool_ports::blob_store_contract!(store(), self_served);
    tooltool_ports::blob_store_contract!(server_side_copy: (store(), store()));

    /// The fault-injecting wrapper without faults is the store itself: the
    /// use cases' storage-fault suite (app/src/service/tests/faults.rs)
    /// runs on this wrapper, so it must pass the whole contract too.
    mod behind_the_fault_injector {
        use tooltool_ports::contract::faulty::Faulty;

        fn faulty() -> Faulty {
            Faulty::new(std::sync::Arc::new(super::store()))
        }

        tooltool_ports::blob_store_contract!(faulty(), self_served);
        tooltool_ports::blob_store_contract!(server_side_copy: (faulty(), faulty()));
    }
}
