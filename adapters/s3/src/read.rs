//! Reading objects: in one request from stores that serve one stream at
//! full speed (S3-compatible stores), else small ones in one request and
//! larger ones in ranges with several in flight (one AWS S3 connection
//! carries far less than SHA-512 hashes), all pinned to the version of the
//! first range.

use aws_sdk_s3::primitives::ByteStream as SdkStream;
use bytes::{Bytes, BytesMut};
use futures_util::{StreamExt, TryStreamExt};
use tooltool_ports::{BlobError, ByteStream};

use crate::S3Store;
use crate::client::sdk_error;

/// Chunk size of object reads.
const READ_CHUNK: usize = 256 * 1024;
/// Reads of larger objects go in ranges of this size, several at once.
const RANGE: u64 = 2 * 1024 * 1024;

/// A spawned task that is aborted when its handle is dropped (a read
/// given up half way stops fetching).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl S3Store {
    /// The object at `key` as a stream: one request with one read stream
    /// or for small objects; larger ones in ranges, `read_streams` in
    /// flight.
    pub(crate) async fn read(&self, key: &str) -> Result<ByteStream, BlobError> {
        if self.read_streams <= 1 {
            return self.read_whole(key).await;
        }
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
                return self.read_whole(key).await;
            }
            Err(e) => return Err(sdk_error("get object", &self.bucket, e)),
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
        // (memory: read_streams × RANGE), all of the version the first
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
                let bucket = bucket.clone();
                // A task per range, so that ranges keep arriving while the
                // consumer works through an earlier one (a stream only makes
                // progress when polled); aborted when the read is dropped.
                let fetch = AbortOnDrop(tokio::spawn(async move {
                    let mut body = request
                        .send()
                        .await
                        .map_err(|e| sdk_error("get object range", &bucket, e))?
                        .body;
                    // Received frames (a few KiB each) coalesced into chunks
                    // of READ_CHUNK: the consumer's cost is per chunk.
                    let mut frames = Vec::new();
                    let mut buffer = BytesMut::new();
                    while let Some(frame) = body.try_next().await.map_err(BlobError::interrupted)? {
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
                        Err(BlobError::interrupted(format!(
                            "range at {start}: {len} bytes"
                        )))
                    }
                }));
                async move {
                    let mut fetch = fetch;
                    (&mut fetch.0).await.map_err(BlobError::unavailable)?
                }
            })
            .buffered(self.read_streams)
            .flat_map(|range| {
                futures_util::stream::iter(match range {
                    Ok(frames) => frames.into_iter().map(Ok).collect::<Vec<_>>(),
                    Err(e) => vec![Err(e)],
                })
            });
        Ok(Box::pin(head.chain(rest)))
    }

    /// The object at `key` in one request.
    async fn read_whole(&self, key: &str) -> Result<ByteStream, BlobError> {
        let whole = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| sdk_error("get object", &self.bucket, e))?;
        Ok(Self::body_stream(whole.body))
    }

    fn body_stream(body: SdkStream) -> ByteStream {
        let reader = body.into_async_read();
        Box::pin(
            tokio_util::io::ReaderStream::with_capacity(reader, READ_CHUNK)
                .map_err(BlobError::interrupted),
        )
    }
}
