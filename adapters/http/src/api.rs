//! The OpenAPI operations of PROTOCOL.md §2 (downloads, batches, files),
//! one method per route; the operational ones are `dockerflow.rs`.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Html;
use poem_openapi::{ApiResponse, OpenApi, Tags};
use tooltool_domain::{Principal, RegionName};
use tooltool_ports::{ErrorKind, ToolTool, UploadProgress, UseCaseError};

use crate::model::{
    Batch, BatchList, CreatedBatch, CreatedBatchResult, Empty, FileList, FileWithInstances,
    PatchBody, UploadBody,
};
use crate::params::{BatchId, DigestParam, PageLimit, SearchTerm};
use crate::payload::{ApiJson, JsonBody};
use crate::problem::{BodyErrorResponse, ErrorResponse, Problem};
use crate::resolve::{FetchBody, ResolvedResult};
use crate::security::Credentials;

#[derive(Tags)]
pub(crate) enum Tag {
    /// Fetching files by digest.
    Download,
    /// Upload batches and their verification.
    Upload,
    /// File metadata and management.
    File,
    /// Checking credentials.
    Auth,
    /// Operations (Dockerflow): load-balancer and dependency health, version.
    Dockerflow,
}

pub struct Api {
    /// `None` only to render the document, which calls no operation.
    pub service: Option<Arc<dyn ToolTool>>,
}

pub(crate) type Result<T> = std::result::Result<T, ErrorResponse>;

/// The service behind the operations; `None` only while the document is
/// rendered, which calls no operation.
pub(crate) fn service(service: &Option<Arc<dyn ToolTool>>) -> Result<&dyn ToolTool> {
    service.as_deref().ok_or_else(|| {
        UseCaseError::internal("document-only API instance received a request").into()
    })
}

impl Api {
    fn service(&self) -> Result<&dyn ToolTool> {
        service(&self.service)
    }
}

/// An unknown or malformed region is no preference (PROTOCOL.md §2.1).
fn region(q: Option<String>) -> Option<RegionName> {
    q.and_then(|r| RegionName::parse(&r).ok())
}

/// A page size as given; its bounds are the use case's to check.
fn page_limit(limit: Option<PageLimit>) -> Result<Option<usize>> {
    limit
        .map(|l| {
            l.0.parse::<usize>()
                .map_err(|_| UseCaseError::invalid("limit must be a positive integer").into())
        })
        .transpose()
}

#[derive(Debug, ApiResponse)]
pub enum DownloadResponse {
    /// Redirect to a short-lived signed URL of a verified copy; follow it without credentials.
    #[oai(status = 302)]
    Found(Html<String>, #[oai(header = "Location")] String),
}

#[derive(Debug, ApiResponse)]
pub enum CompleteResponse {
    /// The content is verified (or nothing is pending for this digest).
    #[oai(status = 202)]
    Accepted(ApiJson<Empty>),
    /// Still being uploaded or verified: retry after `X-Retry-After` seconds.
    #[oai(status = 409)]
    Pending(ApiJson<Problem>, #[oai(header = "X-Retry-After")] u64),
}

/// The body of a 302, as the original (Flask) answered: handy in a browser
/// or with `curl` without `-L`.
pub(crate) fn redirect_page(url: &str) -> String {
    const HEAD: &str = "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 3.2 Final//EN\">\n<title>Redirecting...</title>\n<h1>Redirecting...</h1>\n<p>You should be redirected automatically to target URL: <a href=\"";
    const TAIL: &str = "</a>.  If not click the link.";
    // Escaping `&` and `"` is all an attribute-embedded URL needs.
    let href = url.replace('&', "&amp;").replace('"', "&quot;");
    let mut page = String::with_capacity(HEAD.len() + 2 * href.len() + 2 + TAIL.len());
    page.push_str(HEAD);
    page.push_str(&href);
    page.push_str("\">");
    page.push_str(&href);
    page.push_str(TAIL);
    page
}

#[OpenApi]
impl Api {
    /// Download a file.
    ///
    /// Checks, in order: the digest's syntax (400 `Invalid sha512 digest`),
    /// that a verified copy exists (404), and the caller's permission for
    /// the file's visibility (403). Then redirects (302) to a signed URL,
    /// valid for the server's `DOWNLOAD_EXPIRES_IN`, of the copy in `region`
    /// when that region has one, else of any copy. `HEAD` answers the same.
    #[oai(
        operation_id = "download",
        path = "/sha512/:digest",
        method = "get",
        tag = "Tag::Download"
    )]
    async fn download(
        &self,
        principal: Data<&Principal>,
        _credentials: Credentials,
        /// SHA-512 of the file, 128 lower-case hex digits.
        digest: Path<DigestParam>,
        /// Preferred region; ignored when it has no copy or is unknown.
        region: Query<Option<String>>,
    ) -> Result<DownloadResponse> {
        let d = digest.parse()?;
        let url = self
            .service()?
            .download(&principal, &d, self::region(region.0))
            .await?;
        Ok(DownloadResponse::Found(Html(redirect_page(&url)), url))
    }

    /// Resolve many downloads at once.
    ///
    /// What `GET /sha512/{digest}` would decide, for up to 1024 digests in
    /// one request (a manifest costs one authenticated round trip): for
    /// each, in the order given, `found` with a signed URL, or
    /// `not_found`, `not_verified` or `forbidden` with the reason; size and
    /// visibility whenever the server has a record of the file. The URLs
    /// are valid for `expires_in` seconds. The request fails as a whole only
    /// for a bad body or a server fault.
    #[oai(
        operation_id = "resolve",
        path = "/fetch",
        method = "post",
        tag = "Tag::Download"
    )]
    async fn resolve(
        &self,
        principal: Data<&Principal>,
        _credentials: Credentials,
        /// Preferred region; ignored for a file it has no copy of, or when unknown.
        region: Query<Option<String>>,
        body: JsonBody<FetchBody>,
    ) -> std::result::Result<ApiJson<ResolvedResult>, BodyErrorResponse> {
        let resolved = self
            .service()?
            .resolve(&principal, body.0.0, self::region(region.0))
            .await?;
        Ok(ApiJson(ResolvedResult::try_from(resolved)?))
    }

    /// Create an upload batch.
    ///
    /// Needs `<prefix>/upload/<visibility>` for every visibility in the batch.
    /// Every file without a verified copy gets a `put_url`: a signed URL valid
    /// for `UPLOAD_EXPIRES_IN`; PUT the exact bytes there, then call
    /// `GET /upload/complete/sha512/{digest}`. Nothing is stored when any check fails.
    #[oai(
        operation_id = "create_batch",
        path = "/upload",
        method = "post",
        tag = "Tag::Upload"
    )]
    async fn create_batch(
        &self,
        principal: Data<&Principal>,
        _credentials: Credentials,
        /// Preferred upload region; the server picks one when absent or unknown.
        region: Query<Option<String>>,
        body: JsonBody<UploadBody>,
    ) -> std::result::Result<ApiJson<CreatedBatchResult>, BodyErrorResponse> {
        let created = self
            .service()?
            .create_batch(&principal, body.0.0, self::region(region.0))
            .await?;
        Ok(ApiJson(CreatedBatchResult {
            result: CreatedBatch::new(&created.batch, &created.put_urls),
        }))
    }

    /// Search upload batches.
    ///
    /// Batches whose author or message contains `q` (literally; `%` and `_`
    /// are not wildcards), newest first, `limit` per page (default 100, at
    /// most 1000); `q=` lists every batch. A page also ends before the
    /// batch that would bring the files embedded in it above 4096 (a batch
    /// declares at most 4096 and is never split), so a page shorter than
    /// `limit` is not the last: for the next page pass
    /// `before=<id of the last batch>`, until a page is empty.
    #[oai(
        operation_id = "search_batches",
        path = "/upload",
        method = "get",
        tag = "Tag::Upload"
    )]
    async fn search_batches(
        &self,
        q: Query<SearchTerm>,
        /// Only batches with a smaller id (the last id of the previous page).
        before: Query<Option<BatchId>>,
        /// Results per page, 1 to 1000 (default 100).
        limit: Query<Option<PageLimit>>,
    ) -> Result<ApiJson<BatchList>> {
        let q = q.0.required()?;
        let before = before
            .0
            .map(|b| {
                b.0.parse::<i64>()
                    .map_err(|_| ErrorResponse(UseCaseError::invalid("before must be a batch id")))
            })
            .transpose()?;
        let batches = self
            .service()?
            .search_batches(&q, before, page_limit(limit.0)?)
            .await?;
        Ok(ApiJson(BatchList {
            result: batches.iter().map(Batch::from).collect(),
        }))
    }

    /// Get one upload batch.
    #[oai(
        operation_id = "get_batch",
        path = "/upload/:id",
        method = "get",
        tag = "Tag::Upload"
    )]
    async fn get_batch(&self, id: Path<BatchId>) -> Result<ApiJson<Batch>> {
        let id: i64 = id.0.0.parse().map_err(|_| {
            ErrorResponse::from(UseCaseError::not_found(format!(
                "no upload batch with id {:?}",
                id.0.0
            )))
        })?;
        let batch = self.service()?.get_batch(id).await?;
        Ok(ApiJson(Batch::from(&batch)))
    }

    /// Report that an upload finished, and wait for its verification.
    ///
    /// 202 `{}` once the content is verified (or when nothing is pending for
    /// the digest); 409 with `X-Retry-After` (seconds) while the upload or its
    /// verification is in progress; 400 when the content was rejected.
    #[oai(
        operation_id = "upload_complete",
        path = "/upload/complete/sha512/:digest",
        method = "get",
        tag = "Tag::Upload"
    )]
    async fn upload_complete(
        &self,
        #[oai(name = "digest")] digest: Path<DigestParam>,
    ) -> Result<CompleteResponse> {
        let d = digest.parse()?;
        Ok(match self.service()?.upload_complete(&d).await? {
            UploadProgress::Done => CompleteResponse::Accepted(ApiJson(Empty {})),
            UploadProgress::Pending { retry_after_secs } => CompleteResponse::Pending(
                ApiJson(Problem::of(
                    ErrorKind::NotYet,
                    "the upload of this file is not verified yet; retry after X-Retry-After seconds",
                )),
                retry_after_secs,
            ),
        })
    }

    /// Search files.
    ///
    /// Files uploaded under a filename containing `q` (literally), or whose
    /// digest starts with `q`; each file once, by digest, `limit` per page
    /// (default 100, at most 1000). For the next page pass
    /// `after=<digest of the last file>`.
    #[oai(
        operation_id = "search_files",
        path = "/file",
        method = "get",
        tag = "Tag::File"
    )]
    async fn search_files(
        &self,
        q: Query<SearchTerm>,
        /// Only files with a greater digest (the last digest of the previous page).
        after: Query<Option<DigestParam>>,
        /// Results per page, 1 to 1000 (default 100).
        limit: Query<Option<PageLimit>>,
    ) -> Result<ApiJson<FileList>> {
        let q = q.0.required()?;
        let after = after.0.map(|a| a.parse()).transpose()?;
        let files = self
            .service()?
            .search_files(&q, after, page_limit(limit.0)?)
            .await?;
        Ok(ApiJson(FileList {
            result: files.iter().map(Into::into).collect(),
        }))
    }

    /// Get a file with its instances. Metadata of internal files is not secret.
    #[oai(
        operation_id = "get_file",
        path = "/file/sha512/:digest",
        method = "get",
        tag = "Tag::File"
    )]
    async fn get_file(
        &self,
        #[oai(name = "digest")] digest: Path<DigestParam>,
    ) -> Result<ApiJson<FileWithInstances>> {
        let d = digest.parse()?;
        let file = self.service()?.get_file(&d).await?;
        Ok(ApiJson((&file).into()))
    }

    /// Manage a file (needs `<prefix>/manage`).
    ///
    /// Applies the operations in order, in one transaction:
    /// `set_visibility` and `delete_instances` (removes every stored copy; the
    /// file and its batch history stay). `[]` changes nothing.
    #[oai(
        operation_id = "patch_file",
        path = "/file/sha512/:digest",
        method = "patch",
        tag = "Tag::File"
    )]
    async fn patch_file(
        &self,
        principal: Data<&Principal>,
        _credentials: Credentials,
        #[oai(name = "digest")] digest: Path<DigestParam>,
        body: JsonBody<PatchBody>,
    ) -> std::result::Result<ApiJson<FileWithInstances>, BodyErrorResponse> {
        let d = digest.parse()?;
        let file = self.service()?.patch_file(&principal, &d, body.0.0).await?;
        Ok(ApiJson((&file).into()))
    }
}
