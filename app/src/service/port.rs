//! The service as the driving port: each use case of the port is the
//! inherent method of the same name, in the file of its concern.

use async_trait::async_trait;
use tooltool_domain::{Digest, PatchOp, Permissions, Principal, RegionName};
use tooltool_ports::{
    AuthRequest, BatchRecord, BatchRequest, ByteRange, ByteStream, CreatedBatchView, FileRecord,
    FileUpload, HealthChecks, Opened, Resolutions, ToolTool, UploadProgress, UseCaseError,
};

use super::Service;

#[async_trait]
impl ToolTool for Service {
    fn permissions(&self) -> &Permissions {
        &self.settings.permissions
    }

    async fn authenticate(&self, request: &AuthRequest) -> Result<Principal, UseCaseError> {
        Service::authenticate(self, request).await
    }

    async fn download(
        &self,
        principal: &Principal,
        digest: &Digest,
        region: Option<RegionName>,
    ) -> Result<String, UseCaseError> {
        Service::download(self, principal, digest, region).await
    }

    async fn resolve(
        &self,
        principal: &Principal,
        digests: Vec<Digest>,
        region: Option<RegionName>,
    ) -> Result<Resolutions, UseCaseError> {
        Service::resolve(self, principal, digests, region).await
    }

    async fn create_batch(
        &self,
        principal: &Principal,
        request: BatchRequest,
        region: Option<RegionName>,
    ) -> Result<CreatedBatchView, UseCaseError> {
        Service::create_batch(self, principal, request, region).await
    }

    async fn upload_complete(&self, digest: &Digest) -> Result<UploadProgress, UseCaseError> {
        Service::upload_complete(self, digest).await
    }

    async fn search_batches(
        &self,
        q: &str,
        before: Option<i64>,
        limit: Option<usize>,
    ) -> Result<Vec<BatchRecord>, UseCaseError> {
        Service::search_batches(self, q, before, limit).await
    }

    async fn get_batch(&self, id: i64) -> Result<BatchRecord, UseCaseError> {
        Service::get_batch(self, id).await
    }

    async fn search_files(
        &self,
        q: &str,
        after: Option<Digest>,
        limit: Option<usize>,
    ) -> Result<Vec<FileRecord>, UseCaseError> {
        Service::search_files(self, q, after, limit).await
    }

    async fn get_file(&self, digest: &Digest) -> Result<FileRecord, UseCaseError> {
        Service::get_file(self, digest).await
    }

    async fn file_uploads(
        &self,
        digest: &Digest,
        before: Option<i64>,
        limit: Option<usize>,
    ) -> Result<Vec<FileUpload>, UseCaseError> {
        Service::file_uploads(self, digest, before, limit).await
    }

    fn sign_in_url(&self, redirect_uri: &str, state: &str) -> Option<String> {
        Service::sign_in_url(self, redirect_uri, state)
    }

    async fn sign_in(&self, code: &str, redirect_uri: &str) -> Result<Principal, UseCaseError> {
        Service::sign_in(self, code, redirect_uri).await
    }

    async fn patch_file(
        &self,
        principal: &Principal,
        digest: &Digest,
        ops: Vec<PatchOp>,
    ) -> Result<FileRecord, UseCaseError> {
        Service::patch_file(self, principal, digest, ops).await
    }

    async fn health(&self) -> HealthChecks {
        Service::health(self).await
    }

    async fn metrics_text(&self) -> String {
        Service::metrics_text(self).await
    }

    async fn receive_blob(
        &self,
        region: &RegionName,
        key: &str,
        query: &str,
        body: ByteStream,
    ) -> Result<(), UseCaseError> {
        Service::receive_blob(self, region, key, query, body).await
    }

    async fn serve_blob(
        &self,
        region: &RegionName,
        key: &str,
        query: &str,
        range: ByteRange,
    ) -> Result<Opened, UseCaseError> {
        Service::serve_blob(self, region, key, query, range).await
    }
}
