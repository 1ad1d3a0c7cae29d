//! What a directory region does because its signed URLs point at this
//! server: check them, receive uploads, serve downloads (with ranges).

use std::io::{Seek, SeekFrom};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tooltool_domain::{Digest, ObjectKey, Observed, StagingKey};
use tooltool_ports::{BlobError, ByteRange, ByteStream, ObjectInfo, Opened, Receiving, Serving};

use crate::{Region, io_error};

#[async_trait]
impl Receiving for Region {
    fn authorize_put(
        &self,
        key: &str,
        query: &str,
        now: DateTime<Utc>,
    ) -> Result<StagingKey, BlobError> {
        self.signer
            .check_put(key, query, now.timestamp())
            .map_err(BlobError::from)
    }

    async fn receive(
        &self,
        key: &StagingKey,
        limit: u64,
        body: ByteStream,
    ) -> Result<(Observed, ObjectInfo), BlobError> {
        self.write_object(self.path(&key.clone().into()), limit, body)
            .await
    }
}

#[async_trait]
impl Serving for Region {
    fn authorize_get(
        &self,
        key: &str,
        query: &str,
        now: DateTime<Utc>,
    ) -> Result<Digest, BlobError> {
        self.signer
            .check_get(key, query, now.timestamp())
            .map_err(BlobError::from)
    }

    async fn open(&self, digest: &Digest, range: ByteRange) -> Result<Opened, BlobError> {
        let path = self.path(&ObjectKey::File(digest.clone()));
        let file = tokio::fs::File::open(&path).await.map_err(io_error)?;
        let mut file = file.into_std().await;
        let (file, size, slice) = tokio::task::spawn_blocking(move || {
            let size = file.metadata().map_err(io_error)?.len();
            let slice = resolve_range(range, size)?;
            if let Some((start, _)) = slice {
                file.seek(SeekFrom::Start(start)).map_err(io_error)?;
            }
            Ok::<_, BlobError>((file, size, slice))
        })
        .await
        .map_err(BlobError::unavailable)??;
        let len = slice.map_or(size, |(s, e)| e - s + 1);
        Ok(Opened {
            digest: digest.clone(),
            size,
            range: slice,
            body: Region::read_stream(file, len),
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
