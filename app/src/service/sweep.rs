//! The sweep: drops slots abandoned long ago with their objects, and
//! deletes staging objects that no slot owns (what a crash or a lost
//! record leaves behind), once they are older than a grace period; and
//! forgets Hawk nonces whose timestamp window has closed.

use tooltool_ports::UseCaseError;

use super::errors::{blob_error, store_error};
use super::{Service, earlier};

impl Service {
    /// One run of the sweep: drops abandoned slots and deletes staging
    /// objects that no slot owns. Returns how many objects were deleted.
    pub async fn sweep(&self) -> Result<usize, UseCaseError> {
        let now = self.clock.now();
        self.store.forget_nonces(now).await.map_err(store_error)?;
        let abandoned = self
            .store
            .drop_abandoned_uploads(earlier(now, self.settings.abandon_after))
            .await
            .map_err(store_error)?;
        let mut deleted = 0;
        for slot in abandoned {
            if let Some(blobs) = self.region(&slot.region) {
                blobs.delete(&slot.key.into()).await.map_err(blob_error)?;
                deleted += 1;
            }
        }
        for blobs in &self.regions {
            let strays = blobs
                .list_staging(earlier(now, self.settings.sweep_grace))
                .await
                .map_err(blob_error)?;
            for key in strays {
                let owned = self.store.pending_upload(&key).await.map_err(store_error)?;
                if owned.is_none() {
                    blobs.delete(&key.into()).await.map_err(blob_error)?;
                    deleted += 1;
                }
            }
        }
        Ok(deleted)
    }
}
