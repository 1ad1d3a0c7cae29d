//! The bytes of one region: [`BlobStore`], what every store does, and
//! what a store does for the transfers its signed URLs send through this
//! server: [`Receiving`] uploads, [`Serving`] downloads.

use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::Stream;
use tooltool_domain::{Digest, ObjectKey, Observed, RegionName, StagingKey};

use crate::Cause;

/// A stream of object bytes. Producers MUST yield bounded chunks (no
/// whole-object buffers) so that memory stays flat whatever the size.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, BlobError>> + Send>>;

/// What a store reports about one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size: u64,
    /// An opaque version tag: it MUST change whenever the bytes change, so
    /// that [`BlobStore::promote`] can refuse content swapped in after it was
    /// hashed.
    pub etag: String,
    pub modified: DateTime<Utc>,
}

/// A requested byte range (RFC 9110 `bytes=` forms, one range).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    Full,
    /// `first-`
    From(u64),
    /// `first-last`, inclusive.
    Inclusive(u64, u64),
    /// `-n`: the last n bytes.
    Suffix(u64),
}

/// A verified file opened for serving, possibly a slice of it.
pub struct Opened {
    /// The file's digest: its content, hence the strongest version tag.
    pub digest: Digest,
    /// The whole object's size.
    pub size: u64,
    /// The served slice `[start, end]` inclusive, `None` for the whole object.
    pub range: Option<(u64, u64)>,
    pub body: ByteStream,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("digest", &self.digest)
            .field("size", &self.size)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

/// Where a store's objects can be read by another store without passing
/// through this server: stores whose `domain`s are equal can copy from each
/// other's `location` server-side (two buckets reachable through one S3
/// endpoint with one set of credentials; two directories of one host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopySource {
    /// Equal domains can copy server-side; it MUST include whatever makes
    /// the source readable by the target (endpoint, account).
    pub domain: String,
    /// The source within its domain (bucket, directory).
    pub location: String,
}

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("no such object")]
    NotFound,
    /// A URL signed for this server's own routes is expired, altered or
    /// for another object; the text says which, for the client.
    #[error("{0}")]
    Forbidden(String),
    /// The object changed since it was inspected; nothing was promoted.
    #[error("object changed since it was inspected")]
    Changed,
    /// A received body was larger than the slot allows; nothing was kept.
    #[error("received more than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("requested range not satisfiable for an object of {size} bytes")]
    RangeNotSatisfiable { size: u64 },
    /// [`BlobStore::copy_from`] was given a source of another copy domain
    /// (a caller's mistake: such copies stream); nothing was copied.
    #[error("the copy source {0:?} is not in this store's copy domain")]
    OtherDomain(CopySource),
    /// The sending side went away mid-stream, or sent another length.
    #[error("transfer interrupted")]
    Interrupted(#[source] Cause),
    #[error("storage unavailable")]
    Unavailable(#[source] Cause),
    /// No space left for what is written; nothing was kept.
    #[error("storage full")]
    OutOfSpace(#[source] Cause),
}

/// A request's URL that the store's [`tooltool_domain::UrlSigner`]
/// refused: forbidden, with the signer's sentence for the client.
impl From<tooltool_domain::UrlRefusal> for BlobError {
    fn from(why: tooltool_domain::UrlRefusal) -> Self {
        Self::Forbidden(why.to_string())
    }
}

impl BlobError {
    pub fn interrupted(cause: impl Into<Cause>) -> Self {
        Self::Interrupted(cause.into())
    }

    /// A failure of the store; [`BlobError::OutOfSpace`] when the cause
    /// says the disk is full, so that every adapter's I/O errors are
    /// classified in one place.
    pub fn unavailable(cause: impl Into<Cause>) -> Self {
        let cause = cause.into();
        if crate::is_out_of_space(&*cause) {
            Self::OutOfSpace(cause)
        } else {
            Self::Unavailable(cause)
        }
    }
}

/// The bytes of one region. Keys are [`ObjectKey`]s: verified files and
/// upload slots; nothing else is ever written.
///
/// # Errors
/// Native errors (io, SDK) MUST be mapped to [`BlobError`], keeping them as
/// the cause; a missing object is [`BlobError::NotFound`] (or `Ok(None)`
/// for [`BlobStore::head`]).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait BlobStore: Send + Sync {
    fn region(&self) -> &RegionName;

    /// Why the store is about to refuse writes for want of space, when it
    /// can tell (a local file system, see `low_space_at`); `None` when
    /// there is room or the store has no limit it can report (S3). The
    /// health check reports it as a failure.
    fn low_on_space(&self) -> Option<String>;

    /// A URL that lets anyone PUT exactly one object at `key` until
    /// `expires`. It MUST NOT grant anything else (no other key, no GET).
    /// Where the store can bind the size into the signature it SHOULD. It
    /// points at the store's own service, or, for an upload the store
    /// receives through this server ([`BlobStore::receiving`]: every upload
    /// of a local directory, those above S3's single-PUT limit), at this
    /// server's `/blob/<region>/<key>` route, which that [`Receiving`]
    /// accepts.
    async fn presign_put(
        &self,
        key: &StagingKey,
        size: u64,
        expires: DateTime<Utc>,
    ) -> Result<String, BlobError>;

    /// A URL that lets anyone GET the verified file `digest` until
    /// `expires`, and nothing else. Only verified files are ever handed out.
    async fn presign_get(
        &self,
        digest: &Digest,
        expires: DateTime<Utc>,
    ) -> Result<String, BlobError>;

    async fn head(&self, key: &ObjectKey) -> Result<Option<ObjectInfo>, BlobError>;

    /// The object's bytes as a stream, in bounded chunks. A store that
    /// reads in several requests MUST fail with [`BlobError::Changed`] when
    /// the object is replaced half way, never mix two versions.
    async fn get(&self, key: &ObjectKey) -> Result<ByteStream, BlobError>;

    /// Moves the staging object to its file's key **only if** it is still
    /// the version described by `inspected` (the one that was hashed);
    /// otherwise [`BlobError::Changed`] and nothing is promoted. After
    /// success the staging object is gone. Promoting onto an existing final
    /// object is allowed (the content is identical by construction).
    async fn promote(&self, staging: &StagingKey, inspected: &ObjectInfo) -> Result<(), BlobError>;

    /// Stores a stream of exactly `size` bytes at `key` (replication).
    /// The object MUST only become visible once complete; a stream of
    /// another length is [`BlobError::Interrupted`] and leaves nothing.
    async fn put(&self, key: &ObjectKey, size: u64, body: ByteStream) -> Result<(), BlobError>;

    /// How other stores can copy from this one server-side; `None` when
    /// copies from it must stream through this server.
    fn copy_source(&self) -> Option<CopySource>;

    /// Copies the verified file `digest` (of `size` bytes) from `source`, a
    /// [`CopySource`] of the same domain as this store's own, without
    /// streaming it through this server (replication). Like
    /// [`BlobStore::put`], the object MUST only become visible once
    /// complete, and nothing of a failed copy stays behind. A missing source
    /// object is [`BlobError::NotFound`]; a source of another domain is
    /// [`BlobError::OtherDomain`].
    async fn copy_from(
        &self,
        source: &CopySource,
        digest: &Digest,
        size: u64,
    ) -> Result<(), BlobError>;

    /// Deletes `key`; deleting a missing object is not an error. Deleting
    /// a staging key also discards whatever of it is still being written
    /// (an unfinished multipart upload), so nothing of a slot stays.
    async fn delete(&self, key: &ObjectKey) -> Result<(), BlobError>;

    /// Staging keys with an object, or an unfinished write, last modified
    /// (or begun) before `before`, each once (for the sweep, which deletes
    /// them).
    async fn list_staging(&self, before: DateTime<Utc>) -> Result<Vec<StagingKey>, BlobError>;

    /// What receives the uploads whose URLs point at this server; `None`
    /// when every URL of [`BlobStore::presign_put`] points elsewhere.
    /// Decorators MUST forward it.
    fn receiving(&self) -> Option<Arc<dyn Receiving>>;

    /// What serves the downloads whose URLs point at this server; `None`
    /// when [`BlobStore::presign_get`] signs URLs of another service.
    /// Decorators MUST forward it.
    fn serving(&self) -> Option<Arc<dyn Serving>>;
}

/// Uploads that pass through this server: the `PUT /blob/<region>/<key>`
/// of a URL the store's [`BlobStore::presign_put`] signed.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Receiving: Send + Sync {
    /// Checks that a PUT of `key` (the key's text in the URL path, as
    /// signed) with `query` at `now` carries an upload URL this store
    /// signed, and returns the slot it grants. Anything else (no or a
    /// wrong signature, another method, key or size, an expired URL, a key
    /// that names nothing) is [`BlobError::Forbidden`] with a sentence for
    /// the client. This is where a URL's key text is parsed.
    fn authorize_put(
        &self,
        key: &str,
        query: &str,
        now: DateTime<Utc>,
    ) -> Result<StagingKey, BlobError>;

    /// Receives an upload for `key` through this server, hashing while
    /// writing, with memory bounded whatever the size: at most `limit`
    /// bytes are accepted (more is [`BlobError::TooLarge`]). The staging
    /// object becomes visible only once the stream ended, and what was
    /// measured is returned with the object's info. A failed, refused or
    /// abandoned (dropped) receive leaves nothing: no object, no unfinished
    /// write.
    async fn receive(
        &self,
        key: &StagingKey,
        limit: u64,
        body: ByteStream,
    ) -> Result<(Observed, ObjectInfo), BlobError>;
}

/// Downloads that pass through this server: the `GET /blob/<region>/<key>`
/// of a URL the store's [`BlobStore::presign_get`] signed.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Serving: Send + Sync {
    /// Checks that a GET of `key` with `query` at `now` carries a download
    /// URL this store signed, and returns the file it grants; refusals as
    /// for [`Receiving::authorize_put`].
    fn authorize_get(
        &self,
        key: &str,
        query: &str,
        now: DateTime<Utc>,
    ) -> Result<Digest, BlobError>;

    /// Opens the verified file `digest` for serving through this server;
    /// a range outside it is [`BlobError::RangeNotSatisfiable`].
    async fn open(&self, digest: &Digest, range: ByteRange) -> Result<Opened, BlobError>;
}
