use std::collections::BTreeMap;

use async_trait::async_trait;
use tooltool_domain::{DeclaredFile, Digest, PatchOp, Permissions, Principal, RegionName};

use crate::{BatchRecord, ByteRange, ByteStream, FileRecord, Opened};

/// The class of a failed use case; the HTTP front maps each to one status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    PayloadTooLarge,
    RangeNotSatisfiable,
    /// A dependency (database, storage, auth service) cannot be reached.
    Unavailable,
    Internal,
}

/// A failed use case. `message` is shown to the client for 4xx kinds; for
/// `Unavailable`/`Internal` it is logged and the client sees a generic text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

/// A parsed `POST /upload` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRequest {
    pub message: String,
    /// Whether the body carried an `author` member (which is refused).
    pub author_given: bool,
    pub files: Vec<DeclaredFile>,
}

/// A recorded batch plus the signed PUT URL of every digest that needs one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedBatchView {
    pub batch: BatchRecord,
    pub put_urls: BTreeMap<Digest, String>,
}

/// The answer of `upload/complete` when nothing went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadProgress {
    /// Verified, or nothing pending: 202.
    Done,
    /// Still being uploaded or verified: 409, retry after that many seconds.
    Pending { retry_after_secs: u64 },
}

/// The verdict of one dependency check, by name (`database`, `storage:<region>`).
pub type HealthChecks = Vec<(String, Result<(), String>)>;

/// The driving port: every use case the HTTP front can invoke. Inputs are
/// already parsed into domain types; permission checks happen here.
#[async_trait]
pub trait ToolTool: Send + Sync {
    /// The permission rules this service applies.
    fn permissions(&self) -> &Permissions;

    /// Where to download the file from: a signed URL.
    async fn download(
        &self,
        principal: &Principal,
        digest: &Digest,
        region: Option<RegionName>,
    ) -> Result<String, ApiError>;

    async fn create_batch(
        &self,
        principal: &Principal,
        request: BatchRequest,
        region: Option<RegionName>,
    ) -> Result<CreatedBatchView, ApiError>;

    async fn upload_complete(&self, digest: &Digest) -> Result<UploadProgress, ApiError>;

    /// A page of batches matching `q`, newest first, below id `before`;
    /// `limit` defaults to 100 and may not exceed 1000.
    async fn search_batches(
        &self,
        q: &str,
        before: Option<i64>,
        limit: Option<usize>,
    ) -> Result<Vec<BatchRecord>, ApiError>;

    async fn get_batch(&self, id: i64) -> Result<BatchRecord, ApiError>;

    /// A page of files matching `q`, by digest, after `after`; `limit`
    /// defaults to 100 and may not exceed 1000.
    async fn search_files(
        &self,
        q: &str,
        after: Option<Digest>,
        limit: Option<usize>,
    ) -> Result<Vec<FileRecord>, ApiError>;

    async fn get_file(&self, digest: &Digest) -> Result<FileRecord, ApiError>;

    async fn patch_file(
        &self,
        principal: &Principal,
        digest: &Digest,
        ops: Vec<PatchOp>,
    ) -> Result<FileRecord, ApiError>;

    /// Checks every dependency the use cases need (metadata store, each
    /// storage region). Never fails as a whole: each check has its verdict.
    async fn health(&self) -> HealthChecks;

    /// The metrics in the text exposition format, backlog refreshed.
    async fn metrics_text(&self) -> String;

    /// Receives the body of a PUT to a self-served signed URL.
    async fn receive_blob(
        &self,
        region: &str,
        key: &str,
        query: &str,
        body: ByteStream,
    ) -> Result<(), ApiError>;

    /// Serves a GET of a self-served signed URL.
    async fn serve_blob(
        &self,
        region: &str,
        key: &str,
        query: &str,
        range: ByteRange,
    ) -> Result<Opened, ApiError>;
}
