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
    BlobError, BlobStore, ByteRange, ByteStream, ObjectInfo, Opened, SignedMethod,
};

#[cfg(feature = "testing")]
pub mod testing;

/// Parts of a multipart upload: S3's minimum is 5 MiB; this bounds the
/// memory a replication copy holds.
const PART: usize = 8 * 1024 * 1024;
/// S3's largest single PUT; larger objects go up in parts.
const SINGLE_PUT_MAX: u64 = 5 * 1024 * 1024 * 1024;
/// Chunk size of object reads.
const READ_CHUNK: usize = 256 * 1024;

pub struct S3Store {
    client: Client,
    bucket: String,
    region: RegionName,
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
pub fn client(
    endpoint: Option<&str>,
    aws_region: &str,
    access_key: &str,
    secret_key: &str,
) -> Client {
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
    pub fn new(region: RegionName, bucket: impl Into<String>, client: Client) -> Self {
        Self {
            client,
            bucket: bucket.into(),
            region,
        }
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
        let object = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(Self::body_stream(object.body))
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
        if size <= SINGLE_PUT_MAX {
            return self.put_streamed(key, size, body).await;
        }
        // Parts of PART bytes: memory stays bounded whatever the size.
        let mut body = body;
        let mut buffer = BytesMut::with_capacity(PART.min(usize::try_from(size).unwrap_or(PART)));
        let mut upload_id: Option<String> = None;
        let mut parts = Vec::new();
        let mut total = 0u64;
        let result: Result<(), BlobError> = async {
            loop {
                let chunk = body.next().await.transpose()?;
                let done = chunk.is_none();
                if let Some(chunk) = chunk {
                    total += chunk.len() as u64;
                    buffer.extend_from_slice(&chunk);
                }
                if total > size {
                    return Err(BlobError::Interrupted(format!("more than {size} bytes")));
                }
                if buffer.len() >= PART || (done && upload_id.is_some() && !buffer.is_empty()) {
                    let id = match &upload_id {
                        Some(id) => id.clone(),
                        None => {
                            let created = self
                                .client
                                .create_multipart_upload()
                                .bucket(&self.bucket)
                                .key(key)
                                .send()
                                .await
                                .map_err(|e| with_context("create multipart upload", e))?;
                            let id = created.upload_id().unwrap_or_default().to_owned();
                            upload_id = Some(id.clone());
                            id
                        }
                    };
                    let number = i32::try_from(parts.len() + 1).map_err(unavailable)?;
                    let part: Bytes = buffer.split().freeze();
                    let uploaded = self
                        .client
                        .upload_part()
                        .bucket(&self.bucket)
                        .key(key)
                        .upload_id(&id)
                        .part_number(number)
                        .body(SdkStream::from(part))
                        .send()
                        .await
                        .map_err(|e| with_context("upload part", e))?;
                    parts.push(
                        CompletedPart::builder()
                            .part_number(number)
                            .set_e_tag(uploaded.e_tag().map(str::to_owned))
                            .build(),
                    );
                }
                if done {
                    break;
                }
            }
            if total != size {
                return Err(BlobError::Interrupted(format!(
                    "expected {size} bytes, got {total}"
                )));
            }
            match &upload_id {
                Some(id) => {
                    self.client
                        .complete_multipart_upload()
                        .bucket(&self.bucket)
                        .key(key)
                        .upload_id(id)
                        .multipart_upload(
                            CompletedMultipartUpload::builder()
                                .set_parts(Some(parts.clone()))
                                .build(),
                        )
                        .send()
                        .await
                        .map_err(|e| with_context("complete multipart upload", e))?;
                }
                None => {
                    self.client
                        .put_object()
                        .bucket(&self.bucket)
                        .key(key)
                        .body(SdkStream::from(buffer.split().freeze()))
                        .send()
                        .await
                        .map_err(sdk_error)?;
                }
            }
            Ok(())
        }
        .await;
        if result.is_err()
            && let Some(id) = &upload_id
        {
            // Nothing of a failed copy stays behind.
            let _ = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(id)
                .send()
                .await;
        }
        result
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

    /// A store on a fresh in-process S3 server.
    pub(crate) async fn store() -> crate::S3Store {
        let endpoint = crate::testing::start(&["tooltool-east"]).await;
        let client = crate::client(
            Some(&endpoint),
            "us-east-1",
            crate::testing::ACCESS_KEY,
            crate::testing::SECRET_KEY,
        );
        let store = crate::S3Store::new(
            RegionName::parse("east").expect("valid"),
            "tooltool-east",
            client,
        );
        store.check().await.expect("the bucket answers");
        store
    }

    tooltool_ports::blob_store_contract!(store().await);
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
