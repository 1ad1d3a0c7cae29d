//! The [`BlobStore`] port on S3 (or any S3-compatible store) with
//! `aws-sdk-s3`: presigned URLs for clients, HEAD/GET/PUT/DELETE for the
//! server, and promotion by a server-side copy conditioned on the ETag that
//! was hashed, so bytes swapped in after verification never reach the
//! final key.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream as SdkStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use futures_util::{StreamExt, TryStreamExt};
use tooltool_domain::{Observed, RegionName, StagingKey, final_key};
use tooltool_ports::{
    BlobError, BlobStore, ByteRange, ByteStream, CopySource, ObjectInfo, Opened, SignedMethod,
};

#[cfg(feature = "testing")]
pub mod testing;

/// S3's largest single PUT or CopyObject; larger objects go in parts.
const SINGLE_MAX: u64 = 5 * 1024 * 1024 * 1024;
/// The smallest part of a streamed multipart upload: S3's minimum is
/// 5 MiB, and a part is held in memory while it is sent.
const PUT_PART: u64 = 8 * 1024 * 1024;
/// The smallest part of a server-side multipart copy (no memory involved:
/// fewer, larger requests).
const COPY_PART: u64 = 512 * 1024 * 1024;
/// S3's limit on the parts of one upload.
const MAX_PARTS: u64 = 10_000;
/// Chunk size of object reads.
const READ_CHUNK: usize = 256 * 1024;
/// Reads of larger objects go in ranges of this size, several at once: one
/// S3 connection carries far less than SHA-512 hashes.
const RANGE: u64 = 2 * 1024 * 1024;
/// Ranges in flight per read; each is held in memory until its turn.
const RANGES_IN_FLIGHT: usize = 4;

/// Part size for an object of `size` bytes: at least `min`, and large
/// enough that the parts fit S3's limit on their number.
fn part_size(size: u64, min: u64) -> u64 {
    const MIB: u64 = 1024 * 1024;
    min.max(size.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB)
}

/// A spawned task that is aborted when its handle is dropped (a read
/// given up half way stops fetching).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The S3 number of the part after `done` parts.
fn part_number(done: usize) -> Result<i32, BlobError> {
    i32::try_from(done + 1).map_err(unavailable)
}

fn completed(number: i32, etag: Option<&str>) -> CompletedPart {
    CompletedPart::builder()
        .part_number(number)
        .set_e_tag(etag.map(str::to_owned))
        .build()
}

/// Where and as whom the stores connect: every region's bucket is reached
/// through one endpoint (AWS when `None`) with one key pair, which is what
/// lets buckets copy from each other server-side.
#[derive(Clone)]
pub struct Account {
    endpoint: Option<String>,
    access_key: String,
    secret_key: String,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("endpoint", &self.endpoint)
            .field("access_key", &self.access_key)
            .finish_non_exhaustive()
    }
}

impl Account {
    pub fn new(endpoint: Option<&str>, access_key: &str, secret_key: &str) -> Self {
        Self {
            endpoint: endpoint.map(str::to_owned),
            access_key: access_key.to_owned(),
            secret_key: secret_key.to_owned(),
        }
    }

    /// Buckets of one endpoint read with one key pair can copy from each
    /// other (across AWS regions too).
    fn copy_domain(&self) -> String {
        format!(
            "s3 {} {}",
            self.endpoint.as_deref().unwrap_or("aws"),
            self.access_key
        )
    }
}

pub struct S3Store {
    client: Client,
    bucket: String,
    region: RegionName,
    copy_domain: String,
    single_max: u64,
    put_part: u64,
    copy_part: u64,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Store")
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .finish_non_exhaustive()
    }
}

/// An S3 client for `aws_region`, path-style against `endpoint` when given
/// (S3-compatible stores), with rustls on ring.
fn client(endpoint: Option<&str>, aws_region: &str, access_key: &str, secret_key: &str) -> Client {
    use aws_smithy_http_client::tls;
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let credentials =
        aws_credential_types::Credentials::new(access_key, secret_key, None, None, "tooltool");
    let mut config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new(aws_region.to_owned()))
        .credentials_provider(credentials)
        // Checksums only where S3 requires them: many S3-compatible stores
        // reject the SDK's default CRC headers on multipart uploads.
        .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired)
        .http_client(http);
    if let Some(endpoint) = endpoint {
        config = config.endpoint_url(endpoint).force_path_style(true);
    }
    Client::from_conf(config.build())
}

fn unavailable(e: impl std::fmt::Display) -> BlobError {
    BlobError::Unavailable(e.to_string())
}

/// The SDK's errors carry the HTTP status; 404 and 412 have meanings here.
fn sdk_error<E>(
    e: aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> BlobError
where
    E: std::error::Error + Send + Sync + 'static,
{
    match e.raw_response().map(|r| r.status().as_u16()) {
        Some(404) => BlobError::NotFound,
        Some(412) => BlobError::Changed,
        _ => BlobError::Unavailable(format!("{}", aws_sdk_s3::error::DisplayErrorContext(&e))),
    }
}

/// [`sdk_error`], naming the operation in retryable failures.
fn with_context<E>(
    operation: &str,
    e: aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> BlobError
where
    E: std::error::Error + Send + Sync + 'static,
{
    match sdk_error(e) {
        BlobError::Unavailable(m) => BlobError::Unavailable(format!("{operation}: {m}")),
        other => other,
    }
}

/// S3 checks presigned URLs against real time and the SDK signs with the
/// host clock, so the expiry becomes a duration from the host clock here.
fn expires_in(expires: DateTime<Utc>) -> Result<PresigningConfig, BlobError> {
    let secs = (expires - Utc::now()).num_seconds().max(1);
    PresigningConfig::expires_in(Duration::from_secs(u64::try_from(secs).unwrap_or(1)))
        .map_err(unavailable)
}

impl S3Store {
    /// The store of `region` in `bucket`; the region's name is the AWS
    /// region requests are signed for.
    pub fn new(region: RegionName, bucket: impl Into<String>, account: &Account) -> Self {
        Self {
            client: client(
                account.endpoint.as_deref(),
                region.as_str(),
                &account.access_key,
                &account.secret_key,
            ),
            bucket: bucket.into(),
            region,
            copy_domain: account.copy_domain(),
            single_max: SINGLE_MAX,
            put_part: PUT_PART,
            copy_part: COPY_PART,
        }
    }

    /// Lowers the size above which PUTs and copies go in parts, and their
    /// part size: for stores with lower limits, and for tests of the
    /// multipart paths without gigabytes of data.
    #[must_use]
    pub fn with_multipart(mut self, single_max: u64, part: u64) -> Self {
        self.single_max = single_max;
        self.put_part = part;
        self.copy_part = part;
        self
    }

    /// Checks that the bucket answers (start-up and health).
    ///
    /// # Errors
    /// The bucket is missing or unreachable.
    pub async fn check(&self) -> Result<(), BlobError> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map(|_| ())
            .map_err(sdk_error)
    }

    /// One PUT of exactly `size` bytes, streamed: the SDK needs a `Sync`
    /// body, so a task pumps our stream through a bounded channel.
    async fn put_streamed(
        &self,
        key: &str,
        size: u64,
        mut body: ByteStream,
    ) -> Result<(), BlobError> {
        let (tx, mut rx) =
            tokio::sync::mpsc::channel::<Result<http_body::Frame<Bytes>, std::io::Error>>(8);
        let pump = tokio::spawn(async move {
            while let Some(chunk) = body.next().await {
                let frame = chunk
                    .map(http_body::Frame::data)
                    .map_err(|e| std::io::Error::other(e.to_string()));
                if tx.send(frame).await.is_err() {
                    break;
                }
            }
        });
        let frames = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
        let stream = SdkStream::from_body_1_x(http_body_util::StreamBody::new(frames));
        let result = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_length(i64::try_from(size).map_err(unavailable)?)
            .body(stream)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| with_context("put object", e));
        pump.abort();
        result
    }

    /// One multipart upload to `key`: `upload_parts` sends the parts under
    /// the upload id it is given; the upload is completed when it succeeds
    /// and aborted when anything fails, so nothing of a failure stays.
    async fn multipart<F, Fut>(&self, key: &str, upload_parts: F) -> Result<(), BlobError>
    where
        F: FnOnce(String) -> Fut,
        Fut: std::future::Future<Output = Result<Vec<CompletedPart>, BlobError>>,
    {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| with_context("create multipart upload", e))?;
        let id = created.upload_id().unwrap_or_default().to_owned();
        let result = async {
            let parts = upload_parts(id.clone()).await?;
            self.client
                .complete_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(&id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build(),
                )
                .send()
                .await
                .map_err(|e| with_context("complete multipart upload", e))?;
            Ok(())
        }
        .await;
        if result.is_err() {
            let _ = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(&id)
                .send()
                .await;
        }
        result
    }

    fn body_stream(body: SdkStream) -> ByteStream {
        let reader = body.into_async_read();
        Box::pin(
            tokio_util::io::ReaderStream::with_capacity(reader, READ_CHUNK)
                .map_err(|e| BlobError::Interrupted(e.to_string())),
        )
    }
}

#[async_trait]
impl BlobStore for S3Store {
    fn region(&self) -> &RegionName {
        &self.region
    }

    async fn presign_put(
        &self,
        key: &StagingKey,
        size: u64,
        expires: DateTime<Utc>,
    ) -> Result<String, BlobError> {
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key.to_string())
            .content_length(i64::try_from(size).map_err(unavailable)?)
            .presigned(expires_in(expires)?)
            .await
            .map_err(sdk_error)?;
        Ok(request.uri().to_owned())
    }

    async fn presign_get(&self, key: &str, expires: DateTime<Utc>) -> Result<String, BlobError> {
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(expires_in(expires)?)
            .await
            .map_err(sdk_error)?;
        Ok(request.uri().to_owned())
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, BlobError> {
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
                modified: h
                    .last_modified()
                    .and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
                    .unwrap_or_default(),
            })),
            Err(e) => match sdk_error(e) {
                BlobError::NotFound => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn get(&self, key: &str) -> Result<ByteStream, BlobError> {
        let first = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .range(format!("bytes=0-{}", RANGE - 1))
            .send()
            .await
        {
            Ok(first) => first,
            // An empty object has no byte 0 to ask for.
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 416) => {
                let whole = self
                    .client
                    .get_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                return Ok(Self::body_stream(whole.body));
            }
            Err(e) => return Err(sdk_error(e)),
        };
        let total = first
            .content_range()
            .and_then(|r| r.rsplit_once('/'))
            .and_then(|(_, total)| total.parse::<u64>().ok());
        let etag = first.e_tag().map(str::to_owned);
        let received = u64::try_from(first.content_length().unwrap_or_default()).unwrap_or(0);
        let head = Self::body_stream(first.body);
        let Some(total) = total else {
            return Ok(head); // no Content-Range: the whole object came at once
        };
        if received >= total {
            return Ok(head);
        }
        // The rest in ranges, several in flight, each held until its turn
        // (memory: RANGES_IN_FLIGHT × RANGE), all of the version the first
        // one came from (If-Match: a replaced object fails as Changed;
        // stores that send no ETag get no such check).
        let (client, bucket, key) = (self.client.clone(), self.bucket.clone(), key.to_owned());
        let starts = std::iter::successors(Some(received), |start| Some(start + RANGE))
            .take_while(move |start| *start < total);
        let rest = futures_util::stream::iter(starts)
            .map(move |start| {
                let request = client
                    .get_object()
                    .bucket(&bucket)
                    .key(&key)
                    .range(format!("bytes={start}-{}", (start + RANGE).min(total) - 1))
                    .set_if_match(etag.clone());
                // A task per range, so that ranges keep arriving while the
                // consumer works through an earlier one (a stream only makes
                // progress when polled); aborted when the read is dropped.
                let fetch = AbortOnDrop(tokio::spawn(async move {
                    let mut body = request.send().await.map_err(sdk_error)?.body;
                    // Received frames (a few KiB each) coalesced into chunks
                    // of READ_CHUNK: the consumer's cost is per chunk.
                    let mut frames = Vec::new();
                    let mut buffer = BytesMut::new();
                    while let Some(frame) = body
                        .try_next()
                        .await
                        .map_err(|e| BlobError::Interrupted(e.to_string()))?
                    {
                        if buffer.is_empty() {
                            buffer.reserve(READ_CHUNK);
                        }
                        buffer.extend_from_slice(&frame);
                        if buffer.len() >= READ_CHUNK {
                            frames.push(buffer.split().freeze());
                        }
                    }
                    if !buffer.is_empty() {
                        frames.push(buffer.freeze());
                    }
                    let len: usize = frames.iter().map(Bytes::len).sum();
                    if len as u64 == (start + RANGE).min(total) - start {
                        Ok(frames)
                    } else {
                        Err(BlobError::Interrupted(format!(
                            "range at {start}: {len} bytes"
                        )))
                    }
                }));
                async move {
                    let mut fetch = fetch;
                    (&mut fetch.0).await.map_err(unavailable)?
                }
            })
            .buffered(RANGES_IN_FLIGHT)
            .flat_map(|range| {
                futures_util::stream::iter(match range {
                    Ok(frames) => frames.into_iter().map(Ok).collect::<Vec<_>>(),
                    Err(e) => vec![Err(e)],
                })
            });
        Ok(Box::pin(head.chain(rest)))
    }

    async fn promote(&self, staging: &StagingKey, inspected: &ObjectInfo) -> Result<(), BlobError> {
        let source = format!("{}/{}", self.bucket, staging);
        self.client
            .copy_object()
            .bucket(&self.bucket)
            .key(final_key(staging.digest()))
            .copy_source(source)
            .copy_source_if_match(&inspected.etag)
            .send()
            .await
            .map_err(sdk_error)?;
        self.delete(&staging.to_string()).await
    }

    async fn put(&self, key: &str, size: u64, body: ByteStream) -> Result<(), BlobError> {
        if size <= self.single_max {
            return self.put_streamed(key, size, body).await;
        }
        // Equal parts held in memory one at a time: bounded whatever the size.
        let part = usize::try_from(part_size(size, self.put_part)).map_err(unavailable)?;
        self.multipart(key, |id| async move {
            let mut body = body;
            let mut buffer = BytesMut::with_capacity(part);
            let mut parts = Vec::new();
            let mut total = 0u64;
            loop {
                let chunk = body.next().await.transpose()?;
                let done = chunk.is_none();
                if let Some(chunk) = chunk {
                    total += chunk.len() as u64;
                    if total > size {
                        return Err(BlobError::Interrupted(format!("more than {size} bytes")));
                    }
                    buffer.extend_from_slice(&chunk);
                }
                while buffer.len() >= part || (done && !buffer.is_empty()) {
                    let bytes = buffer.split_to(buffer.len().min(part)).freeze();
                    let number = part_number(parts.len())?;
                    let uploaded = self
                        .client
                        .upload_part()
                        .bucket(&self.bucket)
                        .key(key)
                        .upload_id(&id)
                        .part_number(number)
                        .body(SdkStream::from(bytes))
                        .send()
                        .await
                        .map_err(|e| with_context("upload part", e))?;
                    parts.push(completed(number, uploaded.e_tag()));
                }
                if done {
                    break;
                }
            }
            if total == size {
                Ok(parts)
            } else {
                Err(BlobError::Interrupted(format!(
                    "expected {size} bytes, got {total}"
                )))
            }
        })
        .await
    }

    fn copy_source(&self) -> Option<CopySource> {
        Some(CopySource {
            domain: self.copy_domain.clone(),
            location: self.bucket.clone(),
        })
    }

    async fn copy_from(&self, source: &CopySource, key: &str, size: u64) -> Result<(), BlobError> {
        if source.domain != self.copy_domain {
            return Err(BlobError::Unsupported);
        }
        // Keys and bucket names need no escaping: [a-z0-9/-] only.
        let from = format!("{}/{key}", source.location);
        if size <= self.single_max {
            self.client
                .copy_object()
                .bucket(&self.bucket)
                .key(key)
                .copy_source(&from)
                .send()
                .await
                .map_err(|e| with_context("copy object", e))?;
            return Ok(());
        }
        let part = part_size(size, self.copy_part);
        let from = &from;
        self.multipart(key, |id| async move {
            let mut parts = Vec::new();
            let mut start = 0;
            while start < size {
                let end = (start + part).min(size) - 1;
                let number = part_number(parts.len())?;
                let copied = self
                    .client
                    .upload_part_copy()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(&id)
                    .part_number(number)
                    .copy_source(from)
                    .copy_source_range(format!("bytes={start}-{end}"))
                    .send()
                    .await
                    .map_err(|e| with_context("upload part copy", e))?;
                parts.push(completed(
                    number,
                    copied.copy_part_result().and_then(|r| r.e_tag()),
                ));
                start = end + 1;
            }
            Ok(parts)
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        match self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match sdk_error(e) {
                BlobError::NotFound => Ok(()),
                other => Err(other),
            },
        }
    }

    async fn list_staging(&self, before: DateTime<Utc>) -> Result<Vec<StagingKey>, BlobError> {
        let mut keys = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(StagingKey::prefix())
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(sdk_error)?;
            for object in page.contents() {
                let old = object
                    .last_modified()
                    .and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
                    .is_some_and(|t| t < before);
                if let Some(key) = object.key().and_then(StagingKey::parse)
                    && old
                {
                    keys.push(key);
                }
            }
        }
        Ok(keys)
    }

    fn authorize(
        &self,
        _: SignedMethod,
        _: &str,
        _: &str,
        _: DateTime<Utc>,
    ) -> Result<(), BlobError> {
        Err(BlobError::Unsupported)
    }

    async fn receive(
        &self,
        _: &StagingKey,
        _: u64,
        _: ByteStream,
    ) -> Result<(Observed, ObjectInfo), BlobError> {
        Err(BlobError::Unsupported)
    }

    async fn open(&self, _: &str, _: ByteRange) -> Result<Opened, BlobError> {
        Err(BlobError::Unsupported)
    }
}

#[cfg(test)]
mod contract {
    use tooltool_domain::RegionName;

    /// Two stores (two buckets) on a fresh in-process S3 server.
    pub(crate) async fn pair() -> (crate::S3Store, crate::S3Store) {
        pair_in(&crate::testing::tempfile_dir()).await
    }

    /// [`pair`] on a server keeping its files under `root`.
    pub(crate) async fn pair_in(root: &std::path::Path) -> (crate::S3Store, crate::S3Store) {
        let endpoint = crate::testing::start_in(root, &["tooltool-east", "tooltool-west"]).await;
        let account = crate::Account::new(
            Some(&endpoint),
            crate::testing::ACCESS_KEY,
            crate::testing::SECRET_KEY,
        );
        let store = |region: &str, bucket: &str| {
            crate::S3Store::new(RegionName::parse(region).expect("valid"), bucket, &account)
        };
        let (east, west) = (
            store("us-east-1", "tooltool-east"),
            store("us-west-2", "tooltool-west"),
        );
        east.check().await.expect("the bucket answers");
        west.check().await.expect("the bucket answers");
        (east, west)
    }

    /// A store on a fresh in-process S3 server.
    pub(crate) async fn store() -> crate::S3Store {
        pair().await.0
    }

    tooltool_ports::blob_store_contract!(store().await);
    tooltool_ports::blob_store_contract!(server_side_copy: pair().await);
}

#[cfg(test)]
mod presigning {
    use chrono::{Duration, Utc};
    use tooltool_domain::{ContentHasher, StagingKey, final_key};
    use tooltool_ports::BlobStore;

    /// Presigned URLs work with a plain HTTP client (as the Mozilla client
    /// uses them), and the declared size is part of the PUT signature.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn presigned_urls_bind_key_and_size() {
        let store = super::contract::store().await;
        let content = b"presigned upload";
        let digest = {
            let mut h = ContentHasher::new();
            h.update(content);
            h.finish().digest
        };
        let slot = StagingKey::new(digest.clone(), "0123456789abcdef").expect("slot");
        let url = store
            .presign_put(
                &slot,
                content.len() as u64,
                Utc::now() + Duration::seconds(60),
            )
            .await
            .expect("presign");
        let http = reqwest::Client::new();
        let wrong_size = http
            .put(&url)
            .body(b"presigned upload, longer".to_vec())
            .send()
            .await
            .expect("put");
        assert!(
            !wrong_size.status().is_success(),
            "a body of another size is refused: {}",
            wrong_size.status()
        );
        assert_eq!(store.head(&slot.to_string()).await.expect("head"), None);
        let ok = http
            .put(&url)
            .header("Content-Type", "application/octet-stream")
            .body(content.to_vec())
            .send()
            .await
            .expect("put");
        assert_eq!(ok.status(), 200, "the Mozilla client accepts exactly 200");
        let info = store
            .head(&slot.to_string())
            .await
            .expect("head")
            .expect("uploaded");
        store.promote(&slot, &info).await.expect("promote");
        let get = store
            .presign_get(&final_key(&digest), Utc::now() + Duration::seconds(60))
            .await
            .expect("presign");
        let bytes = reqwest::get(&get)
            .await
            .expect("get")
            .bytes()
            .await
            .expect("body");
        assert_eq!(&bytes[..], content);
        let other_key = get.replace(&digest.to_string(), &"0".repeat(128));
        assert!(
            !reqwest::get(&other_key)
                .await
                .expect("get")
                .status()
                .is_success(),
            "the signature binds the key"
        );
    }
}

#[cfg(test)]
mod multipart {
    use bytes::Bytes;
    use futures_util::StreamExt;
    use tooltool_ports::{BlobError, BlobStore, ByteStream};

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn parts_fit_s3s_limit_on_their_number() {
        for (size, min, part) in [
            (50 * 1024 * MIB, 8 * MIB, 8 * MIB),
            (78 * 1024 * MIB, 8 * MIB, 8 * MIB),
            (5 * 1024 * 1024 * MIB, 8 * MIB, 525 * MIB),
            (5 * 1024 * 1024 * MIB, 512 * MIB, 525 * MIB),
            (6 * 1024 * MIB, 512 * MIB, 512 * MIB),
        ] {
            let got = super::part_size(size, min);
            assert_eq!(got, part, "{size} bytes, at least {min}");
            assert!(size.div_ceil(got) <= super::MAX_PARTS);
        }
    }

    fn content() -> Vec<u8> {
        // Three parts: two of S3's smallest (5 MiB), then a short one.
        (0..(10 * MIB + 1000)).map(|i| (i % 251) as u8).collect()
    }

    fn chunks(bytes: &[u8], then_fail: bool) -> ByteStream {
        let mut items: Vec<Result<Bytes, BlobError>> = bytes
            .chunks(64 * 1024)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        if then_fail {
            items.push(Err(BlobError::Interrupted("sender went away".to_owned())));
        }
        Box::pin(futures_util::stream::iter(items))
    }

    async fn read(store: &super::S3Store, key: &str) -> Vec<u8> {
        let mut body = store.get(key).await.expect("get");
        let mut out = Vec::new();
        while let Some(chunk) = body.next().await {
            out.extend_from_slice(&chunk.expect("chunk"));
        }
        out
    }

    /// Part files of unfinished multipart uploads on the test server.
    fn open_uploads(root: &std::path::Path) -> Vec<String> {
        std::fs::read_dir(root)
            .expect("root")
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_owned))
            .filter(|n| n.starts_with(".upload_id-"))
            .collect()
    }

    /// Above the single-request limit, PUTs and server-side copies go in
    /// parts; a failed one is aborted and leaves nothing. (Short keys:
    /// s3s-fs names its multipart files after the key, and a final key's
    /// name would exceed the file system's 255 bytes.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn large_objects_go_in_parts_and_failures_leave_nothing() {
        let root = crate::testing::tempfile_dir();
        let (east, west) = super::contract::pair_in(&root).await;
        let (east, west) = (
            east.with_multipart(6 * MIB, 5 * MIB),
            west.with_multipart(6 * MIB, 5 * MIB),
        );
        let content = content();
        let size = content.len() as u64;
        east.put("big", size, chunks(&content, false))
            .await
            .expect("multipart put");
        let info = east.head("big").await.expect("head").expect("exists");
        assert_eq!(info.size, size);
        assert!(info.etag.contains("-3"), "three parts: {}", info.etag);
        assert_eq!(read(&east, "big").await, content);

        let source = east.copy_source().expect("copy source");
        west.copy_from(&source, "big", size)
            .await
            .expect("multipart copy");
        assert_eq!(read(&west, "big").await, content);

        let failed = east.put("broken", size, chunks(&content[..6 * MIB as usize], true));
        assert!(matches!(failed.await, Err(BlobError::Interrupted(_))));
        let short = east.put(
            "short",
            size,
            chunks(&content[..6 * MIB as usize + 1], false),
        );
        assert!(matches!(short.await, Err(BlobError::Interrupted(_))));
        let missing = west.copy_from(&source, "missing", size);
        assert!(matches!(missing.await, Err(BlobError::NotFound)));
        for key in ["broken", "short", "missing"] {
            assert_eq!(east.head(key).await.expect("head"), None, "{key}");
            assert_eq!(west.head(key).await.expect("head"), None, "{key}");
        }
        assert_eq!(
            open_uploads(&root),
            Vec::<String>::new(),
            "every failed upload aborted"
        );
    }

    /// Stores of another domain (other endpoint or account) are refused,
    /// so the caller streams instead.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn copies_only_within_one_domain() {
        let (east, _) = super::contract::pair().await;
        let (elsewhere, _) = super::contract::pair().await;
        let foreign = elsewhere.copy_source().expect("copy source");
        assert_ne!(Some(&foreign), east.copy_source().as_ref());
        assert!(matches!(
            east.copy_from(&foreign, "any", 1).await,
            Err(BlobError::Unsupported)
        ));
    }
}
