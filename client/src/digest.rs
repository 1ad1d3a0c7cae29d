//! SHA-512 of files on disk: whether a file is a manifest record's, a
//! whole file's digest, and the prefix a resumed download starts from.

use std::path::Path;

use openssl::hash::{Hasher, MessageDigest};
use tokio::io::AsyncReadExt as _;

use crate::manifest::FileRecord;

/// Whether `path` is a file of the record's size and digest.
pub async fn matches_record(path: &Path, record: &FileRecord) -> Result<bool, String> {
    let (path, record) = (path.to_owned(), record.clone());
    tokio::task::spawn_blocking(move || matches_record_blocking(&path, &record))
        .await
        .map_err(|e| e.to_string())?
}

/// [`matches_record`] on the calling thread.
pub fn matches_record_blocking(path: &Path, record: &FileRecord) -> Result<bool, String> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() && m.len() == record.size => {}
        Ok(_) => return Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    }
    let digest = hash_file_blocking(path).map_err(|e| format!("{}: {e}", path.display()))?;
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
pub(crate) async fn hash_prefix(
    path: &Path,
    limit: u64,
    hasher: &mut Hasher,
) -> std::io::Result<u64> {
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
