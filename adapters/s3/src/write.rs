//! Writing objects: a streamed PUT up to S3's single-request limit, parts
//! above it (one part in memory at a time), and the one multipart helper
//! (create, parts, complete; abort on any failure) that copies share.

use aws_sdk_s3::primitives::ByteStream as SdkStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
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
                        .map_err(|e| sdk_error("upload part", &self.bucket, e))?;
                    parts.push(completed(number, uploaded.e_tag()));
                }
                if done {
                    break;
                }
            }
            if total == size {
                Ok(parts)
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

    /// One multipart upload to `key`: `upload_parts` sends the parts under
    /// the upload id it is given; the upload is completed when it succeeds
    /// and aborted when anything fails, so nothing of a failure stays.
    pub(crate) async fn multipart<F, Fut>(
        &self,
        key: &str,
        upload_parts: F,
    ) -> Result<(), BlobError>
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
            .map_err(|e| sdk_error("create multipart upload", &self.bucket, e))?;
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
                .map_err(|e| sdk_error("complete multipart upload", &self.bucket, e))?;
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
}
