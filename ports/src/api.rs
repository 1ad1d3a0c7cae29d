//! The driving port: what the application offers its fronts (the HTTP
//! API, and any other driving adapter), in domain types.

use std::collections::BTreeMap;

use async_trait::async_trait;
use tooltool_domain::{
    DeclaredFile, Digest, PatchOp, Permissions, Principal, RegionName, Visibility,
};

use crate::{
    AuthRequest, BatchRecord, ByteRange, ByteStream, Cause, FileRecord, FileUpload, Opened,
    UseCaseError,
};

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
    /// Verified, or nothing pending.
    Done,
    /// Still being uploaded or verified: ask again after that many seconds.
    Pending { retry_after_secs: u64 },
}

/// At most this many digests in one [`ToolTool::resolve`]: a bound on the
/// work of one request and on its answer (a signed URL is at most a few
/// KiB), and more than any manifest in use holds.
pub const MAX_RESOLVE: usize = 1024;

/// What [`ToolTool::resolve`] says of one digest.
#[derive(Debug)]
pub struct Resolution {
    pub digest: Digest,
    /// Size and visibility, when the store has a record of the file
    /// (file metadata is not secret: `get_file` shows it to anyone).
    pub file: Option<(u64, Visibility)>,
    /// The signed URL, or why not: `NotFound` (no record, or no verified
    /// copy in a configured region), `NotYet` (declared, not verified
    /// anywhere yet), `Denied` (the caller may not read its visibility).
    pub url: Result<String, UseCaseError>,
}

/// The answer of [`ToolTool::resolve`].
#[derive(Debug)]
pub struct Resolutions {
    /// How long the URLs stay valid from the moment they were signed.
    pub expires_in_secs: u64,
    /// One per digest asked for, in the order asked.
    pub files: Vec<Resolution>,
}

/// The verdict of one dependency check, by name (`database`,
/// `storage:<region>`, `taskcluster`), with the cause of a failure.
pub type HealthChecks = Vec<(String, Result<(), Cause>)>;

/// The driving port: every use case a front can invoke. Inputs are parsed
/// into domain types by the front; permission checks happen behind it.
///
/// # Errors
/// Every method fails with a [`UseCaseError`] whose kind says what happened
/// and whose message may be shown to the caller; server faults keep their
/// cause as the error's source.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ToolTool: Send + Sync {
    /// The permission rules this service applies.
    fn permissions(&self) -> &Permissions;

    /// The principal a credential stands for: the authenticator of its
    /// scheme decides. A credential of an unknown scheme, or one its
    /// authenticator refuses, is [`crate::ErrorKind::NotAuthenticated`]
    /// (never anonymous); an authority that cannot be asked is
    /// [`crate::ErrorKind::Unavailable`]. Requests without a credential are
    /// anonymous and need no call.
    async fn authenticate(&self, request: &AuthRequest) -> Result<Principal, UseCaseError>;

    /// Where to download the file from: a signed URL.
    async fn download(
        &self,
        principal: &Principal,
        digest: &Digest,
        region: Option<RegionName>,
    ) -> Result<String, UseCaseError>;

    /// Where to download each of `digests` from, in the order given: for
    /// each, what [`ToolTool::download`] decides, in the same order of
    /// checks (existence, permission, region), except that a file recorded
    /// without a verified copy anywhere is `NotYet` where `download` says
    /// `NotFound`. More than [`MAX_RESOLVE`] digests is `Invalid`. Fails as
    /// a whole only when it cannot decide (a store unavailable, a server
    /// fault), never because of one digest's refusal.
    async fn resolve(
        &self,
        principal: &Principal,
        digests: Vec<Digest>,
        region: Option<RegionName>,
    ) -> Result<Resolutions, UseCaseError>;

    async fn create_batch(
        &self,
        principal: &Principal,
        request: BatchRequest,
        region: Option<RegionName>,
    ) -> Result<CreatedBatchView, UseCaseError>;

    async fn upload_complete(&self, digest: &Digest) -> Result<UploadProgress, UseCaseError>;

    /// A page of batches matching `q`, newest first, below id `before`;
    /// `limit` defaults to 100 and may not exceed 1000.
    async fn search_batches(
        &self,
        q: &str,
        before: Option<i64>,
        limit: Option<usize>,
    ) -> Result<Vec<BatchRecord>, UseCaseError>;

    async fn get_batch(&self, id: i64) -> Result<BatchRecord, UseCaseError>;

    /// A page of files matching `q`, by digest, after `after`; `limit`
    /// defaults to 100 and may not exceed 1000.
    async fn search_files(
        &self,
        q: &str,
        after: Option<Digest>,
        limit: Option<usize>,
    ) -> Result<Vec<FileRecord>, UseCaseError>;

    async fn get_file(&self, digest: &Digest) -> Result<FileRecord, UseCaseError>;

    /// The batches that declared a file, newest first, below `before`;
    /// `limit` as for searches. Empty for an unknown digest.
    async fn file_uploads(
        &self,
        digest: &Digest,
        before: Option<i64>,
        limit: Option<usize>,
    ) -> Result<Vec<FileUpload>, UseCaseError>;

    /// Where a browser goes to sign in with the configured authority
    /// ([`crate::SignInAuthority`]), coming back to `redirect_uri` with
    /// `state`; `None` when no authority is configured.
    fn sign_in_url(&self, redirect_uri: &str, state: &str) -> Option<String>;

    /// The principal of an authorization code the authority gave the
    /// browser (see [`crate::SignInAuthority::principal`]). Without an
    /// authority, `Invalid`; a refused code, `NotAuthenticated`.
    async fn sign_in(&self, code: &str, redirect_uri: &str) -> Result<Principal, UseCaseError>;

    async fn patch_file(
        &self,
        principal: &Principal,
        digest: &Digest,
        ops: Vec<PatchOp>,
    ) -> Result<FileRecord, UseCaseError>;

    /// Checks every dependency the use cases need (metadata store, each
    /// storage region). Never fails as a whole: each check has its verdict.
    async fn health(&self) -> HealthChecks;

    /// The metrics in the text exposition format, backlog refreshed.
    async fn metrics_text(&self) -> String;

    /// Receives the body of a PUT to a URL a store signed for this server
    /// ([`crate::Receiving`]):
    /// `/blob/<region>/<key>?<query>`, `key` as it appears in the path.
    /// Done once the content is verified (a mismatch is
    /// [`crate::ErrorKind::Invalid`] and keeps nothing).
    async fn receive_blob(
        &self,
        region: &RegionName,
        key: &str,
        query: &str,
        body: ByteStream,
    ) -> Result<(), UseCaseError>;

    /// Serves a GET of a URL a store signed for this server
    /// ([`crate::Serving`]; see `receive_blob`).
    async fn serve_blob(
        &self,
        region: &RegionName,
        key: &str,
        query: &str,
        range: ByteRange,
    ) -> Result<Opened, UseCaseError>;
}
