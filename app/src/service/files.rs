//! Files: lookups and searches (metadata of internal files is not
//! secret), and management (`manage` scope): visibility changes and
//! deleting every stored copy.

use tooltool_domain::{Digest, ObjectKey, PatchOp, Principal, check_search_term};
use tooltool_ports::{FileRecord, FileUpload, UseCaseError};

use super::Service;
use super::errors::{blob_error, store_error};

const NO_FILE: &str = "no file with this digest";

impl Service {
    /// A page of files matching `q`, by digest, after `after`.
    pub async fn search_files(
        &self,
        q: &str,
        after: Option<Digest>,
        limit: Option<usize>,
    ) -> Result<Vec<FileRecord>, UseCaseError> {
        check_search_term(q).map_err(UseCaseError::invalid)?;
        self.store
            .search_files(q, after, self.page_size(limit)?)
            .await
            .map_err(store_error)
    }

    pub async fn get_file(&self, digest: &Digest) -> Result<FileRecord, UseCaseError> {
        self.store
            .get_file(digest)
            .await
            .map_err(store_error)?
            .ok_or_else(|| UseCaseError::not_found(NO_FILE))
    }

    /// The batches that declared a file, newest first, below `before`.
    pub async fn file_uploads(
        &self,
        digest: &Digest,
        before: Option<i64>,
        limit: Option<usize>,
    ) -> Result<Vec<FileUpload>, UseCaseError> {
        self.store
            .file_uploads(digest, before, self.page_size(limit)?)
            .await
            .map_err(store_error)
    }

    pub async fn patch_file(
        &self,
        principal: &Principal,
        digest: &Digest,
        ops: Vec<PatchOp>,
    ) -> Result<FileRecord, UseCaseError> {
        if principal.is_anonymous() {
            return Err(UseCaseError::not_authenticated(
                "managing files needs credentials with the manage scope",
            ));
        }
        if !self.settings.permissions.may_manage(principal) {
            return Err(UseCaseError::denied(format!(
                "no permission to manage files (needs {})",
                self.settings.permissions.manage_scope()
            )));
        }
        let deletes = ops.contains(&PatchOp::DeleteInstances);
        let file = self
            .store
            .patch_file(digest, ops)
            .await
            .map_err(store_error)?
            .ok_or_else(|| UseCaseError::not_found(NO_FILE))?;
        if deletes {
            // Records first, so no download is sent to a copy being deleted;
            // every region is tried so that a retried request finishes the job.
            let key = ObjectKey::File(digest.clone());
            for blobs in &self.regions {
                blobs.delete(&key).await.map_err(blob_error)?;
            }
            tracing::info!(digest = %digest, by = ?principal.id(), "instances deleted");
        }
        Ok(file)
    }
}
