//! The [`BlobStore`] port on S3 (or any S3-compatible store) with
//! `aws-sdk-s3`: presigned URLs for clients, HEAD/GET/PUT/DELETE for the
//! server, and promotion by a server-side copy conditioned on the ETag that
//! was hashed, so bytes swapped in after verification never reach the
//! final key. Uploads S3 cannot take in one PUT (above its single-PUT
//! limit) get a URL of this server instead and are received here, into a
//! multipart upload (`receive.rs`); downloads always go to S3 itself.
//!
//! The trait methods take typed keys and pass their text to the S3
//! operations (`read.rs`, `write.rs`, `copy.rs`, `receive.rs`), which work
//! on S3's own string keys.

mod client;
mod copy;
mod read;
mod receive;
mod write;

#[cfg(feature = "testing")]
pub mod garage;
#[cfg(feature = "testing")]
pub mod testing;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use chrono::{DateTime, Utc};
use tooltool_domain::{Digest, ObjectKey, RegionName, StagingKey, UrlSigner};
use tooltool_ports::{
    BlobError, BlobStore, ByteStream, CopySource, ObjectInfo, Receiving, Serving,
};

pub use crate::client::{Account, Timeouts};
pub use crate::client::{S3Failure, S3FailureKind};
use crate::client::{expires_in, sdk_error};

/// One region's bucket. Cheap to clone (the SDK client is shared), which
/// the receiving face and the tasks sending parts rely on.
#[derive(Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    region: RegionName,
    copy_domain: String,
    /// Ranged requests in flight per read; 1: one request per object.
    read_streams: usize,
    /// The largest object one PUT or CopyObject may write: larger ones go
    /// in parts, and larger uploads are received through this server.
    single_max: u64,
    put_part: u64,
    copy_part: u64,
    /// Signs this server's URLs for the uploads above `single_max`.
    signer: Arc<UrlSigner>,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Store")
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .finish_non_exhaustive()
    }
}

fn timestamp(t: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

impl S3Store {
    /// The store of `region` in `bucket`; the region's name is the AWS
    /// region requests are signed for (unless the account has a signing
    /// region). `signer` signs the URLs of uploads received through this
    /// server (those above the single-PUT limit).
    pub fn new(
        region: RegionName,
        bucket: impl Into<String>,
        account: &Account,
        signer: UrlSigner,
    ) -> Self {
        Self {
            client: account.client(region.as_str()),
            bucket: bucket.into(),
            region,
            copy_domain: account.copy_domain(),
            read_streams: account.read_streams,
            single_max: write::SINGLE_MAX,
            put_part: write::PUT_PART,
            copy_part: copy::COPY_PART,
            signer: Arc::new(signer),
        }
    }

    /// Lowers the largest single PUT or copy (`S3_SINGLE_PUT_LIMIT`, for
    /// stores with a smaller limit than S3's 5 GiB): larger objects go in
    /// parts no larger than it, and larger uploads pass through this
    /// server.
    #[must_use]
    pub fn with_single_put_limit(self, limit: u64) -> Self {
        let (put, copy) = (write::PUT_PART.min(limit), copy::COPY_PART.min(limit));
        Self {
            single_max: limit,
            put_part: put,
            copy_part: copy,
            ..self
        }
    }

    /// Reads large objects in `streams` ranged requests at once instead of
    /// the account's number (tests of either way of reading).
    #[must_use]
    pub fn with_read_streams(mut self, streams: usize) -> Self {
        self.read_streams = streams.max(1);
        self
    }

    /// Lowers the size above which PUTs and copies go in parts, and their
    /// part size: for tests of the multipart paths without gigabytes of
    /// data.
    #[must_use]
    pub fn with_multipart(mut self, single_max: u64, part: u64) -> Self {
        self.single_max = single_max;
        self.put_part = part;
        self.copy_part = part;
        self
    }

    /// Checks that the bucket answers with this account (start-up).
    ///
    /// # Errors
    /// The bucket is missing, refuses the key pair, or does not answer.
    pub async fn check(&self) -> Result<(), S3Failure> {
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.raw_response().map(|r| r.status().as_u16()) == Some(404) => {
                Err(S3Failure::no_such_bucket(&self.bucket))
            }
            Err(e) => Err(S3Failure::new("head bucket", &self.bucket, &e)),
        }
    }

    async fn head_key(&self, key: &str) -> Result<Option<ObjectInfo>, BlobError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(h) => Ok(Some(ObjectInfo {
                size: u64::try_from(h.content_length().unwrap_or_default()).unwrap_or_default(),
                etag: h.e_tag().unwrap_or_default().to_owned(),
                modified: h.last_modified().and_then(timestamp).unwrap_or_default(),
            })),
            Err(e) => match sdk_error("head object", &self.bucket, e) {
                BlobError::NotFound => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn delete_key(&self, key: &str) -> Result<(), BlobError> {
        match self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match sdk_error("delete object", &self.bucket, e) {
                BlobError::NotFound => Ok(()),
                other => Err(other),
            },
        }
    }
}

#[async_trait]
impl BlobStore for S3Store {
    fn region(&self) -> &RegionName {
        &self.region
    }

    /// S3 reports no limit; a full S3-compatible store answers writes
    /// with errors of its own.
    fn low_on_space(&self) -> Option<String> {
        None
    }

    async fn presign_put(
        &self,
        key: &StagingKey,
        size: u64,
        expires: DateTime<Utc>,
    ) -> Result<String, BlobError> {
        if size > self.single_max {
            // S3 refuses such a PUT (EntityTooLarge): this server receives it.
            return Ok(self.signer.sign_put(key, size, expires.timestamp()));
        }
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key.to_string())
            .content_length(i64::try_from(size).map_err(BlobError::unavailable)?)
            .presigned(expires_in(expires)?)
            .await
            .map_err(|e| sdk_error("presign put", &self.bucket, e))?;
        Ok(request.uri().to_owned())
    }

    async fn presign_get(
        &self,
        digest: &Digest,
        expires: DateTime<Utc>,
    ) -> Result<String, BlobError> {
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(ObjectKey::File(digest.clone()).to_string())
            .presigned(expires_in(expires)?)
            .await
            .map_err(|e| sdk_error("presign get", &self.bucket, e))?;
        Ok(request.uri().to_owned())
    }

    async fn head(&self, key: &ObjectKey) -> Result<Option<ObjectInfo>, BlobError> {
        self.head_key(&key.to_string()).await
    }

    async fn get(&self, key: &ObjectKey) -> Result<ByteStream, BlobError> {
        self.read(&key.to_string()).await
    }

    async fn promote(&self, staging: &StagingKey, inspected: &ObjectInfo) -> Result<(), BlobError> {
        // Every request of the copy (one, or one per part) is conditioned
        // on the hashed version.
        let source = format!("{}/{}", self.bucket, staging);
        let key = ObjectKey::File(staging.digest().clone()).to_string();
        self.copy_within(&source, &key, inspected.size, Some(&inspected.etag))
            .await?;
        self.delete_key(&staging.to_string()).await
    }

    async fn put(&self, key: &ObjectKey, size: u64, body: ByteStream) -> Result<(), BlobError> {
        self.write(&key.to_string(), size, body).await
    }

    fn copy_source(&self) -> Option<CopySource> {
        Some(CopySource {
            domain: self.copy_domain.clone(),
            location: self.bucket.clone(),
        })
    }

    async fn copy_from(
        &self,
        source: &CopySource,
        digest: &Digest,
        size: u64,
    ) -> Result<(), BlobError> {
        // Keys and bucket names need no escaping: [a-z0-9/-] only.
        self.copy(source, &ObjectKey::File(digest.clone()).to_string(), size)
            .await
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), BlobError> {
        let text = key.to_string();
        if let ObjectKey::Staging(_) = key {
            self.abort_unfinished(&text).await?;
        }
        self.delete_key(&text).await
    }

    async fn list_staging(&self, before: DateTime<Utc>) -> Result<Vec<StagingKey>, BlobError> {
        let mut keys = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(StagingKey::prefix())
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk_error("list objects", &self.bucket, e))?;
            for object in page.contents() {
                if is_before(object.last_modified(), before)
                    && let Some(key) = object.key().and_then(StagingKey::parse)
                    && seen.insert(key.clone())
                {
                    keys.push(key);
                }
            }
        }
        for key in self.unfinished(before).await? {
            if seen.insert(key.clone()) {
                keys.push(key);
            }
        }
        Ok(keys)
    }

    fn receiving(&self) -> Option<Arc<dyn Receiving>> {
        Some(Arc::new(self.clone()))
    }

    /// Downloads always go to S3's own presigned URLs.
    fn serving(&self) -> Option<Arc<dyn Serving>> {
        None
    }
}

/// Whether a listed object's time is before `before` (unknown: no).
fn is_before(t: Option<&aws_smithy_types::DateTime>, before: DateTime<Utc>) -> bool {
    t.and_then(timestamp).is_some_and(|t| t < before)
}
