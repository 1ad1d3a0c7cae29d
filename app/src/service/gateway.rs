//! The self-served storage routes: a PUT or GET of a URL that a store
//! offering [`tooltool_ports::SelfServed`] signed. The store checks its
//! signature and names the key it grants; uploads are received into their
//! slot and verified before the PUT is answered.

use tooltool_domain::{ObjectKey, RegionName};
use tooltool_ports::{
    BlobError, ByteRange, ByteStream, Opened, PendingUpload, SelfServed, SignedMethod,
    URL_NOT_FOUND_MESSAGE, UseCaseError,
};

use std::sync::Arc;

use super::errors::{blob_error, store_error};
use super::{Service, Verified, later};

impl Service {
    /// The serving part of `region`'s store; regions this process does not
    /// have, and stores that sign URLs of their own service, serve nothing.
    fn served(&self, region: &RegionName) -> Result<Arc<dyn SelfServed>, UseCaseError> {
        self.region(region)
            .and_then(|r| r.self_served())
            .ok_or_else(|| UseCaseError::not_found(URL_NOT_FOUND_MESSAGE))
    }

    pub async fn receive_blob(
        &self,
        region: &RegionName,
        key: &str,
        query: &str,
        body: ByteStream,
    ) -> Result<(), UseCaseError> {
        let served = self.served(region)?;
        let now = self.clock.now();
        let ObjectKey::Staging(staging) = served
            .authorize(SignedMethod::Put, key, query, now)
            .map_err(blob_error)?
        else {
            // Stores sign uploads for staging keys only.
            return Err(UseCaseError::not_found(URL_NOT_FOUND_MESSAGE));
        };
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
        self.holding(&staging, self.receive_claimed(&*served, &slot, body))
            .await
    }

    /// Receives and settles the content of a slot this request has claimed.
    async fn receive_claimed(
        &self,
        served: &dyn SelfServed,
        slot: &PendingUpload,
        body: ByteStream,
    ) -> Result<(), UseCaseError> {
        let staging = &slot.key;
        let (observed, info) = match served.receive(staging, slot.size, body).await {
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
        let served = self.served(region)?;
        // Signed GETs are only ever issued for verified files.
        let ObjectKey::File(digest) = served
            .authorize(SignedMethod::Get, key, query, self.clock.now())
            .map_err(blob_error)?
        else {
            return Err(UseCaseError::not_found(URL_NOT_FOUND_MESSAGE));
        };
        served.open(&digest, range).await.map_err(blob_error)
    }
}
