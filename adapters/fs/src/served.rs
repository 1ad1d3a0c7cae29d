//! What a directory region does because its signed URLs point at this
//! server: check them, receive uploads, serve downloads (with ranges).

use std::io::{Seek, SeekFrom};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hmac::Mac;
use tooltool_domain::{Digest, ObjectKey, Observed, StagingKey};
use tooltool_ports::{
    BlobError, ByteRange, ByteStream, ObjectInfo, Opened, SelfServed, SignedMethod,
};

use crate::signing::query_param;
use crate::{Region, io_error};

#[async_trait]
impl SelfServed for Region {
    /// Checks a URL's signature and expiry over the key text it names, then
    /// parses that text: only keys this store signed get past the MAC, so
    /// an unparsable key is as forbidden as an altered one.
    fn authorize(
        &self,
        method: SignedMethod,
        key: &str,
        query: &str,
        now: DateTime<Utc>,
    ) -> Result<ObjectKey, BlobError> {
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
            .signer
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
        match (method, ObjectKey::parse(key)) {
            (SignedMethod::Put, Some(key @ ObjectKey::Staging(_)))
            | (SignedMethod::Get, Some(key @ ObjectKey::File(_))) => Ok(key),
            _ => forbidden("this URL does not name an object of this server"),
        }
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
