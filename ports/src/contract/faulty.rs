//! A fault-injecting [`BlobStore`]: wraps a real store and makes chosen
//! calls fail — an error, a stream that ends short, breaks half way or
//! trickles — so that tests can walk every storage failure path of the use
//! cases against real adapters and check that nothing partial is recorded
//! and that the work succeeds once the fault is gone.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use tooltool_domain::{Digest, ObjectKey, RegionName, StagingKey};

use crate::{BlobError, BlobStore, ByteStream, CopySource, ObjectInfo, Receiving, Serving};

/// A call of the store a fault can be injected into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    PresignPut,
    PresignGet,
    Head,
    Get,
    Promote,
    Put,
    CopyFrom,
    Delete,
    ListStaging,
}

/// What goes wrong on one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The call fails with [`BlobError::Unavailable`].
    Fail,
    /// The bytes (read by `get`, or given to `put`) end cleanly after this
    /// many, as a truncated read would.
    ShortRead(u64),
    /// The bytes stop after the first chunk with
    /// [`BlobError::Interrupted`].
    Break,
    /// Every chunk of the bytes waits this long first.
    Slow(Duration),
}

/// The wrapper. Faults are queued per [`Op`] and each is spent by one
/// call; calls without a queued fault go straight to the inner store.
pub struct Faulty {
    inner: Arc<dyn BlobStore>,
    faults: Mutex<HashMap<Op, VecDeque<Fault>>>,
    streamed: bool,
}

impl Faulty {
    pub fn new(inner: Arc<dyn BlobStore>) -> Self {
        Self {
            inner,
            faults: Mutex::new(HashMap::new()),
            streamed: false,
        }
    }

    /// Offers no server-side copies, so that replication streams through
    /// `get` and `put` (where stream faults apply).
    #[must_use]
    pub fn streamed(mut self) -> Self {
        self.streamed = true;
        self
    }

    /// Makes the next call of `op` meet `fault`.
    pub fn inject(&self, op: Op, fault: Fault) {
        self.faults
            .lock()
            .expect("faults")
            .entry(op)
            .or_default()
            .push_back(fault);
    }

    /// Takes the call's fault, if one is queued.
    fn enter(&self, op: Op) -> Option<Fault> {
        self.faults
            .lock()
            .expect("faults")
            .get_mut(&op)
            .and_then(VecDeque::pop_front)
    }

    /// Fails the call when its fault is [`Fault::Fail`]; hands the others
    /// (stream faults) back.
    fn fail_or(&self, op: Op) -> Result<Option<Fault>, BlobError> {
        match self.enter(op) {
            Some(Fault::Fail) => Err(BlobError::unavailable(format!(
                "fault injected into {op:?}"
            ))),
            other => Ok(other),
        }
    }
}

/// `body` with a stream fault applied.
fn spoil(body: ByteStream, fault: Option<Fault>) -> ByteStream {
    match fault {
        None | Some(Fault::Fail) => body,
        Some(Fault::ShortRead(keep)) => Box::pin(body.scan(keep, |left, chunk| {
            let item = (*left > 0).then(|| {
                chunk.map(|mut c: Bytes| {
                    let n = usize::try_from(*left).unwrap_or(usize::MAX).min(c.len());
                    c.truncate(n);
                    *left -= n as u64;
                    c
                })
            });
            std::future::ready(item)
        })),
        Some(Fault::Break) => Box::pin(body.take(1).chain(futures_util::stream::once(async {
            Err(BlobError::interrupted("fault injected: the stream broke"))
        }))),
        Some(Fault::Slow(delay)) => Box::pin(body.then(move |chunk| async move {
            tokio::time::sleep(delay).await;
            chunk
        })),
    }
}

#[async_trait]
impl BlobStore for Faulty {
    fn region(&self) -> &RegionName {
        self.inner.region()
    }

    fn low_on_space(&self) -> Option<String> {
        self.inner.low_on_space()
    }

    async fn presign_put(
        &self,
        key: &StagingKey,
        size: u64,
        expires: DateTime<Utc>,
    ) -> Result<String, BlobError> {
        self.fail_or(Op::PresignPut)?;
        self.inner.presign_put(key, size, expires).await
    }

    async fn presign_get(
        &self,
        digest: &Digest,
        expires: DateTime<Utc>,
    ) -> Result<String, BlobError> {
        self.fail_or(Op::PresignGet)?;
        self.inner.presign_get(digest, expires).await
    }

    async fn head(&self, key: &ObjectKey) -> Result<Option<ObjectInfo>, BlobError> {
        self.fail_or(Op::Head)?;
        self.inner.head(key).await
    }

    async fn get(&self, key: &ObjectKey) -> Result<ByteStream, BlobError> {
        let fault = self.fail_or(Op::Get)?;
        Ok(spoil(self.inner.get(key).await?, fault))
    }

    async fn promote(&self, staging: &StagingKey, inspected: &ObjectInfo) -> Result<(), BlobError> {
        self.fail_or(Op::Promote)?;
        self.inner.promote(staging, inspected).await
    }

    async fn put(&self, key: &ObjectKey, size: u64, body: ByteStream) -> Result<(), BlobError> {
        let fault = self.fail_or(Op::Put)?;
        self.inner.put(key, size, spoil(body, fault)).await
    }

    fn copy_source(&self) -> Option<CopySource> {
        if self.streamed {
            None
        } else {
            self.inner.copy_source()
        }
    }

    async fn copy_from(
        &self,
        source: &CopySource,
        digest: &Digest,
        size: u64,
    ) -> Result<(), BlobError> {
        self.fail_or(Op::CopyFrom)?;
        self.inner.copy_from(source, digest, size).await
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), BlobError> {
        self.fail_or(Op::Delete)?;
        self.inner.delete(key).await
    }

    async fn list_staging(&self, before: DateTime<Utc>) -> Result<Vec<StagingKey>, BlobError> {
        self.fail_or(Op::ListStaging)?;
        self.inner.list_staging(before).await
    }

    fn receiving(&self) -> Option<Arc<dyn Receiving>> {
        self.inner.receiving()
    }

    fn serving(&self) -> Option<Arc<dyn Serving>> {
        self.inner.serving()
    }
}
