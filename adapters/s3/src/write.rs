//! Writing objects: a streamed PUT up to S3's single-request limit, parts
//! above it (one part in memory at a time), the one multipart helper
//! (create, parts, complete; abort on any failure and when abandoned) that
//! copies and received uploads share, and finding and discarding the
//! unfinished multipart uploads of staging keys.

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream as SdkStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use tooltool_domain::StagingKey;
use tooltool_ports::{BlobError, ByteStream};

use crate::S3Store;
use crate::client::sdk_error;

/// S3's largest single PUT or CopyObject; larger objects go in parts.
pub(crate) const SINGLE_MAX: u64 = 5 * 1024 * 1024 * 1024;
/// The smallest part of a streamed multipart upload: S3's minimum is
/// 5 MiB, and a part is held in memory while it is sent.
pub(crate) const PUT_PART: u64 = 8 * 1024 * 1024;
/// S3's limit on the parts of one upload.
pub(crate) const MAX_PARTS: u64 = 10_000;

/// Part size for an object of `size` bytes: at least `min`, and large
/// enough that the parts fit S3's limit on their number.
pub(crate) fn part_size(size: u64, min: u64) -> u64 {
    const MIB: u64 = 1024 * 1024;
    min.max(size.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB)
}

/// The S3 number of the part after `done` parts.
pub(crate) fn part_number(done: usize) -> Result<i32, BlobError> {
    i32::try_from(done + 1).map_err(BlobError::unavailable)
}

pub(crate) fn completed(number: i32, etag: Option<&str>) -> CompletedPart {
    CompletedPart::builder()
        .part_number(number)
        .set_e_tag(etag.map(str::to_owned))
        .build()
}

impl S3Store {
    /// Stores exactly `size` bytes at `key`: one streamed PUT up to the
    /// single-request limit, a multipart upload above it.
    pub(crate) async fn write(
        &self,
        key: &str,
        size: u64,
        body: ByteStream,
    ) -> Result<(), BlobError> {
        if size <= self.single_max {
            return self.put_streamed(key, size, body).await;
        }
        // Equal parts held in memory one at a time: bounded whatever the size.
        let part =
            usize::try_from(part_size(size, self.put_part)).map_err(BlobError::unavailable)?;
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
                        return Err(BlobError::interrupted(format!("more than {size} bytes")));
                    }
                    buffer.extend_from_slice(&chunk);
                }
                while buffer.len() >= part || (done && !buffer.is_empty()) {
                    let bytes = buffer.split_to(buffer.len().min(part)).freeze();
                    let number = part_number(parts.len())?;
                    parts.push(self.upload_part(key, &id, number, bytes).await?);
                }
                if done {
                    break;
                }
            }
            if total == size {
                Ok((parts, ()))
            } else {
                Err(BlobError::interrupted(format!(
                    "expected {size} bytes, got {total}"
                )))
            }
        })
        .await
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
                    .map_err(std::io::Error::other);
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
            .content_length(i64::try_from(size).map_err(BlobError::unavailable)?)
            .body(stream)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error("put object", &self.bucket, e));
        pump.abort();
        result
    }

    /// Sends part `number` of the multipart upload `id` of `key`.
    pub(crate) async fn upload_part(
        &self,
        key: &str,
        id: &str,
        number: i32,
        bytes: Bytes,
    ) -> Result<CompletedPart, BlobError> {
        let uploaded = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(id)
            .part_number(number)
            .body(SdkStream::from(bytes))
            .send()
            .await
            .map_err(|e| sdk_error("upload part", &self.bucket, e))?;
        Ok(completed(number, uploaded.e_tag()))
    }

    /// One multipart upload to `key`: `upload_parts` sends the parts under
    /// the upload id it is given (and answers them with a value of its
    /// own); the upload is completed when it succeeds and aborted when
    /// anything fails, or when this future is dropped before it ends (a
    /// client that went away, a shut-down), so nothing of a failure stays.
    pub(crate) async fn multipart<T, F, Fut>(
        &self,
        key: &str,
        upload_parts: F,
    ) -> Result<T, BlobError>
    where
        F: FnOnce(String) -> Fut,
        Fut: std::future::Future<Output = Result<(Vec<CompletedPart>, T), BlobError>>,
    {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| sdk_error("create multipart upload", &self.bucket, e))?;
        let id = created.upload_id().unwrap_or_default().to_owned();
        let mut unfinished = AbortOnDrop {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            id: Some(id.clone()),
        };
        let result = async {
            let (parts, value) = upload_parts(id.clone()).await?;
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
                .map_err(|e| sdk_error("complete multipart upload", &self.bucket, e))?;
            Ok(value)
        }
        .await;
        if let Some(id) = unfinished.id.take()
            && result.is_err()
        {
            // Awaited here, so a failure is cleaned up by the time it is reported.
            abort(&self.client, &self.bucket, key, &id).await;
        }
        result
    }

    /// The unfinished multipart uploads of keys starting with `prefix`:
    /// (key, upload id, when it began). A store that cannot list them
    /// (501 Not Implemented: s3s-fs) has none this server could find;
    /// see the README on lifecycle rules.
    async fn uploads(&self, prefix: &str) -> Result<Vec<Unfinished>, BlobError> {
        let mut found = Vec::new();
        let (mut key_marker, mut id_marker) = (None::<String>, None::<String>);
        loop {
            let page = match self
                .client
                .list_multipart_uploads()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_key_marker(key_marker.take())
                .set_upload_id_marker(id_marker.take())
                .send()
                .await
            {
                Ok(page) => page,
                Err(e) if e.raw_response().map(|r| r.status().as_u16()) == Some(501) => {
                    return Ok(found);
                }
                Err(e) => return Err(sdk_error("list multipart uploads", &self.bucket, e)),
            };
            for upload in page.uploads() {
                if let (Some(key), Some(id)) = (upload.key(), upload.upload_id()) {
                    found.push(Unfinished {
                        key: key.to_owned(),
                        id: id.to_owned(),
                        initiated: upload.initiated().and_then(crate::timestamp),
                    });
                }
            }
            key_marker = page.next_key_marker().map(str::to_owned);
            id_marker = page.next_upload_id_marker().map(str::to_owned);
            if page.is_truncated() != Some(true) || key_marker.is_none() {
                return Ok(found);
            }
        }
    }

    /// The staging keys with an unfinished multipart upload begun before
    /// `before`.
    pub(crate) async fn unfinished(
        &self,
        before: DateTime<Utc>,
    ) -> Result<Vec<StagingKey>, BlobError> {
        Ok(self
            .uploads(StagingKey::prefix())
            .await?
            .into_iter()
            .filter(|u| u.initiated.is_some_and(|t| t < before))
            .filter_map(|u| StagingKey::parse(&u.key))
            .collect())
    }

    /// Aborts every unfinished multipart upload of `key`.
    pub(crate) async fn abort_unfinished(&self, key: &str) -> Result<(), BlobError> {
        for upload in self.uploads(key).await? {
            if upload.key != key {
                continue; // another key with this one as a prefix
            }
            match self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(&upload.id)
                .send()
                .await
            {
                Ok(_) => {}
                // Completed or aborted meanwhile: nothing left either way.
                Err(e) => match sdk_error("abort multipart upload", &self.bucket, e) {
                    BlobError::NotFound => {}
                    other => return Err(other),
                },
            }
        }
        Ok(())
    }
}

/// An unfinished multipart upload a listing found.
struct Unfinished {
    key: String,
    id: String,
    initiated: Option<DateTime<Utc>>,
}

/// Best effort: a failed abort leaves an upload that the sweep finds
/// ([`S3Store::unfinished`]) and discards later.
async fn abort(client: &Client, bucket: &str, key: &str, id: &str) {
    let _ = client
        .abort_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(id)
        .send()
        .await;
}

/// Aborts a multipart upload whose future was dropped before it ended
/// (in a task of its own: a destructor cannot wait).
struct AbortOnDrop {
    client: Client,
    bucket: String,
    key: String,
    /// `None` once the upload ended either way.
    id: Option<String>,
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(id) = self.id.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let (client, bucket, key) =
                (self.client.clone(), self.bucket.clone(), self.key.clone());
            runtime.spawn(async move { abort(&client, &bucket, &key, &id).await });
        }
    }
}
