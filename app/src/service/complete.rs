//! `upload/complete`: the client says its upload finished; the service
//! verifies at once (PROTOCOL.md Decision: not after the URL expired) and
//! answers done, not yet (with a retry delay), or why the content was
//! refused.

use tooltool_domain::Digest;
use tooltool_ports::{FileRecord, PendingUpload, UploadProgress, UseCaseError};

use super::errors::store_error;
use super::{Service, Verified, later};

impl Service {
    /// `upload/complete`: verifies every pending slot of `digest` at once
    /// and waits a bounded time for a verdict.
    pub async fn upload_complete(&self, digest: &Digest) -> Result<UploadProgress, UseCaseError> {
        let pending = UploadProgress::Pending {
            retry_after_secs: self.settings.retry_after_secs,
        };
        let state = self.store.upload_state(digest).await.map_err(store_error)?;
        if state.file.as_ref().is_some_and(FileRecord::has_instances) {
            return Ok(UploadProgress::Done);
        }
        if state.pending.is_empty() {
            return match state.rejection {
                Some(reason) => Err(UseCaseError::invalid(reason)),
                None => Ok(UploadProgress::Done),
            };
        }
        // Verify every slot at once in the background, and wait a bounded
        // time: a large object keeps verifying after we answer "not yet".
        let mut tasks = tokio::task::JoinSet::new();
        for slot in state.pending {
            let this = self.clone();
            tasks.spawn(async move { this.verify_slot(&slot).await });
        }
        let deadline = tokio::time::Instant::now() + self.settings.complete_wait;
        let mut rejection = None;
        loop {
            match tokio::time::timeout_at(deadline, tasks.join_next()).await {
                Err(_) => {
                    tasks.detach_all();
                    return Ok(pending);
                }
                Ok(None) => break,
                Ok(Some(Ok(Ok(Verified::Valid)))) => {
                    tasks.detach_all();
                    return Ok(UploadProgress::Done);
                }
                Ok(Some(Ok(Ok(Verified::Rejected(reason))))) => rejection = Some(reason),
                Ok(Some(Ok(Ok(Verified::NotYet)))) => {}
                Ok(Some(Ok(Err(e)))) => {
                    tasks.detach_all();
                    return Err(e);
                }
                Ok(Some(Err(join))) => {
                    tasks.detach_all();
                    return Err(UseCaseError::internal(join));
                }
            }
        }
        // All attempts finished without a verified copy: decide from the state now.
        let state = self.store.upload_state(digest).await.map_err(store_error)?;
        let now = self.clock.now();
        let alive = |slot: &PendingUpload| now <= later(slot.expires, self.settings.upload_grace);
        if state.file.as_ref().is_some_and(FileRecord::has_instances) {
            Ok(UploadProgress::Done)
        } else if state.pending.iter().any(alive) {
            Ok(pending)
        } else if !state.pending.is_empty() {
            // The client would otherwise poll until the slot is abandoned.
            Err(UseCaseError::invalid(
                "no content arrived for this file before its upload URL expired; upload it again",
            ))
        } else {
            let reason = state
                .rejection
                .or(rejection)
                .unwrap_or_else(|| "uploaded content does not match the declaration".to_owned());
            Err(UseCaseError::invalid(reason))
        }
    }
}
