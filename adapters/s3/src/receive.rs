//! Uploads S3 cannot take in one PUT, received through this server: the
//! client PUTs to this server's signed URL (the unmodified client knows
//! one PUT per file), and the body goes on into a multipart upload of the
//! staging key, hashed on the way. Memory is bounded whatever the size:
//! the part being sent and the part being filled. A body that ends within
//! the first part is stored with one PUT. A refused, broken or abandoned
//! upload is aborted (`write.rs`'s multipart helper), so nothing stays.

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream as SdkStream;
use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use tokio_util::task::AbortOnDropHandle;
use tooltool_domain::{ContentHasher, Observed, StagingKey};
use tooltool_ports::{BlobError, ByteStream, ObjectInfo, Receiving};

use crate::S3Store;
use crate::client::sdk_error;
use crate::write::{part_number, part_size};

/// The body of an upload, cut into parts, refusing more than `limit`.
struct Incoming {
    body: ByteStream,
    limit: u64,
    received: u64,
}

impl Incoming {
    /// The next `len` bytes or a little more (up to the end of the chunk
    /// that fills the part); fewer only at the end of the body, empty
    /// after it.
    async fn next_part(&mut self, len: usize) -> Result<Bytes, BlobError> {
        let mut part = BytesMut::new();
        while part.len() < len {
            let Some(chunk) = self.body.next().await.transpose()? else {
                break;
            };
            self.received += chunk.len() as u64;
            if self.received > self.limit {
                return Err(BlobError::TooLarge { limit: self.limit });
            }
            if part.is_empty() {
                part.reserve(len.max(chunk.len()));
            }
            part.extend_from_slice(&chunk);
        }
        Ok(part.freeze())
    }
}

/// Feeds `bytes` to the hasher on a blocking thread (SHA-512 of a part
/// takes milliseconds: too long for an async worker).
async fn hash(mut hasher: ContentHasher, bytes: Bytes) -> Result<ContentHasher, BlobError> {
    tokio::task::spawn_blocking(move || {
        hasher.update(&bytes);
        hasher
    })
    .await
    .map_err(BlobError::unavailable)
}

impl S3Store {
    /// One PUT of a whole (small) body, hashed meanwhile.
    async fn put_whole(&self, key: &str, bytes: Bytes) -> Result<Observed, BlobError> {
        let put = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(SdkStream::from(bytes.clone()))
            .send();
        let (hashed, put) = tokio::join!(hash(ContentHasher::new(), bytes), put);
        put.map_err(|e| sdk_error("put object", &self.bucket, e))?;
        Ok(hashed?.finish())
    }

    /// The body as a multipart upload whose first part is `first`: each
    /// part is sent (and hashed) by a task of its own while the next one
    /// arrives; parts are hashed in order, each after the one before.
    async fn put_parts(
        &self,
        key: &str,
        first: Bytes,
        incoming: &mut Incoming,
        part: usize,
    ) -> Result<Observed, BlobError> {
        self.multipart(key, |id| async move {
            let mut parts = Vec::new();
            let mut hasher = ContentHasher::new();
            let mut bytes = first;
            loop {
                let number = part_number(parts.len())?;
                let (store, key, id) = (self.clone(), key.to_owned(), id.clone());
                // Aborted if the upload fails or is dropped meanwhile.
                let sending = AbortOnDropHandle::new(tokio::spawn(async move {
                    let send = store.upload_part(&key, &id, number, bytes.clone());
                    let (hashed, sent) = tokio::join!(hash(hasher, bytes), send);
                    Ok::<_, BlobError>((hashed?, sent?))
                }));
                let next = incoming.next_part(part).await?;
                let (hashed, sent) = sending.await.map_err(BlobError::unavailable)??;
                hasher = hashed;
                parts.push(sent);
                if next.is_empty() {
                    return Ok((parts, hasher.finish()));
                }
                bytes = next;
            }
        })
        .await
    }
}

#[async_trait]
impl Receiving for S3Store {
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
        let text = key.to_string();
        let part =
            usize::try_from(part_size(limit, self.put_part)).map_err(BlobError::unavailable)?;
        let mut incoming = Incoming {
            body,
            limit,
            received: 0,
        };
        let first = incoming.next_part(part).await?;
        let observed = if first.len() < part {
            self.put_whole(&text, first).await?
        } else {
            self.put_parts(&text, first, &mut incoming, part).await?
        };
        // The version just written, which promotion will be conditioned on.
        let info = self
            .head_key(&text)
            .await?
            .ok_or_else(|| BlobError::unavailable(format!("{text} vanished once written")))?;
        Ok((observed, info))
    }
}
