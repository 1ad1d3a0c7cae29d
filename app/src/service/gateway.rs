//! The storage routes of this server: a PUT or GET of a URL that a store
//! signed for them ([`tooltool_ports::Receiving`],
//! [`tooltool_ports::Serving`]). The store checks its signature and names
//! the slot or file it grants; uploads are received into their slot and
//! verified before the PUT is answered.

use tooltool_domain::RegionName;
use tooltool_ports::{
    BlobError, ByteRange, ByteStream, Opened, PendingUpload, Receiving, Serving,
    URL_NOT_FOUND_MESSAGE, UseCaseError,
};

use std::sync::Arc;

use super::errors::{blob_error, store_error};
use super::{Service, Verified, later};

impl Service {
    /// What receives `region`'s uploads here; regions this process does
    /// not have, and stores whose URLs all point elsewhere, receive nothing.
    fn receiving(&self, region: &RegionName) -> Result<Arc<dyn Receiving>, UseCaseError> {
        self.region(region)
            .and_then(|r| r.receiving())
            .ok_or_else(|| UseCaseError::not_found(URL_NOT_FOUND_MESSAGE))
    }

    /// What serves `region`'s downloads here, likewise.
    fn serving(&self, region: &RegionName) -> Result<Arc<dyn Serving>, UseCaseError> {
        self.region(region)
            .and_then(|r| r.serving())
            .ok_or_else(|| UseCaseError::not_found(URL_NOT_FOUND_MESSAGE))
    }

    pub async fn receive_blob(
        &self,
        region: &RegionName,
        key: &str,
        query: &str,
        body: ByteStream,
    ) -> Result<(), UseCaseError> {
        let receiving = self.receiving(region)?;
        let now = self.clock.now();
        let staging = receiving
            .authorize_put(key, query, now)
            .map_err(blob_error)?;
        let slot = self
            .store
            .pending_upload(&staging)
            .await
            .map_err(store_error)?
            .filter(|s| s.region == *region)
            .ok_or_else(|| {
                UseCaseError::closed(
                    "this upload slot is closed (already verified, rejected or abandoned); ask for a new one with POST /upload",
                )
            })?;
        // Held for as long as a transfer may reasonably take; released on failure.
        let claimed = self
            .store
            .claim_upload(&staging, now, later(now, self.settings.verify_lease))
            .await
            .map_err(store_error)?;
        if !claimed {
            return Err(UseCaseError::not_yet(
                "this upload slot is being uploaded or verified right now",
            ));
        }
        tracing::debug!(slot = %staging, size = slot.size, "receiving an upload");
        self.holding(&staging, self.receive_claimed(&*receiving, &slot, body))
            .await
    }

    /// Receives and settles the content of a slot this request has claimed.
    async fn receive_claimed(
        &self,
        receiving: &dyn Receiving,
        slot: &PendingUpload,
        body: ByteStream,
    ) -> Result<(), UseCaseError> {
        let staging = &slot.key;
        let (observed, info) = match receiving.receive(staging, slot.size, body).await {
            Ok(received) => received,
            Err(BlobError::TooLarge { .. }) => {
                let reason = format!(
                    "uploaded content does not match the declared size: expected {} bytes, received more",
                    slot.size
                );
                self.store
                    .reject_upload(staging, reason.clone())
                    .await
                    .map_err(store_error)?;
                return Err(UseCaseError::invalid(reason));
            }
            Err(e) => {
                let _ = self.store.release_upload(staging).await;
                return Err(blob_error(e));
            }
        };
        match self.settle(slot, &observed, &info).await? {
            Verified::Valid => Ok(()),
            Verified::Rejected(reason) => Err(UseCaseError::invalid(reason)),
            Verified::NotYet => Err(UseCaseError::not_yet(
                "the upload changed while it was verified; retry",
            )),
        }
    }

    pub async fn serve_blob(
        &self,
        region: &RegionName,
        key: &str,
        query: &str,
        range: ByteRange,
    ) -> Result<Opened, UseCaseError> {
        let serving = self.serving(region)?;
        // Signed GETs are only ever issued for verified files.
        let digest = serving
            .authorize_get(key, query, self.clock.now())
            .map_err(blob_error)?;
        serving.open(&digest, range).await.map_err(blob_error)
    }
}
