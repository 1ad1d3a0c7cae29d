//! Verifying uploads: judge the bytes in a slot against its declaration,
//! then promote exactly the version that was hashed and record it, or
//! delete it and record why. Verifications hold a permit of
//! [`super::Settings::verify_concurrency`], whoever starts them.

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tooltool_domain::{ContentHasher, ObjectKey, Observed, VerificationOutcome};
use tooltool_ports::{BlobError, BlobStore, ByteStream, ObjectInfo, PendingUpload, UseCaseError};

use super::errors::{blob_error, storage_error, store_error};
use super::{Service, later};

/// What one verification attempt of one slot concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// Promoted and recorded.
    Valid,
    /// Deleted; the reason is recorded for `upload/complete`.
    Rejected(String),
    /// Nothing to judge yet (no object, or another worker holds the slot).
    NotYet,
}

/// Hashes a stream on a blocking thread, so that hashing large objects
/// never stalls the async workers; the queue between them bounds memory.
async fn hash_stream(mut body: ByteStream) -> Result<Observed, BlobError> {
    let (tx, mut rx) = mpsc::channel::<bytes::Bytes>(16);
    let hasher = tokio::task::spawn_blocking(move || {
        let mut h = ContentHasher::new();
        while let Some(chunk) = rx.blocking_recv() {
            h.update(&chunk);
        }
        h.finish()
    });
    while let Some(chunk) = body.next().await {
        if tx.send(chunk?).await.is_err() {
            break;
        }
    }
    drop(tx);
    hasher.await.map_err(BlobError::unavailable)
}

/// Reads and hashes the whole object `key`, described by `info`. A read
/// that ends early (or runs long) says nothing of the content: the store
/// misread, and it is [`BlobError::Interrupted`] (retryable, see
/// `storage_error`), never a verdict.
async fn read_whole(
    blobs: &dyn BlobStore,
    key: &ObjectKey,
    info: &ObjectInfo,
) -> Result<Observed, BlobError> {
    let observed = hash_stream(blobs.get(key).await?).await?;
    if observed.size == info.size {
        Ok(observed)
    } else {
        Err(BlobError::interrupted(format!(
            "read {} of the {} bytes of {key}",
            observed.size, info.size
        )))
    }
}

/// The metric label of a verdict.
fn outcome_name(outcome: &VerificationOutcome) -> &'static str {
    match outcome {
        VerificationOutcome::Valid => "valid",
        VerificationOutcome::Missing => "missing",
        VerificationOutcome::SizeMismatch { .. } => "size_mismatch",
        VerificationOutcome::DigestMismatch { .. } => "digest_mismatch",
    }
}

impl Service {
    /// Judges measured content against a slot and acts on the verdict:
    /// promote + record, or delete + record the rejection. The one place
    /// where an upload becomes a file instance.
    pub async fn settle(
        &self,
        slot: &PendingUpload,
        observed: &Observed,
        info: &ObjectInfo,
    ) -> Result<Verified, UseCaseError> {
        let blobs = self.slot_region(slot)?;
        let key = ObjectKey::from(slot.key.clone());
        let outcome = VerificationOutcome::judge(slot.size, slot.key.digest(), Some(observed));
        self.metrics
            .verification(outcome_name(&outcome), observed.size);
        match outcome.rejection_reason() {
            None => {
                match blobs.promote(&slot.key, info).await {
                    Ok(()) => {}
                    Err(BlobError::Changed) => {
                        // Someone re-uploaded after we hashed: judge again later.
                        self.store
                            .release_upload(&slot.key)
                            .await
                            .map_err(store_error)?;
                        return Ok(Verified::NotYet);
                    }
                    Err(e) => return Err(blob_error(e)),
                }
                self.store
                    .complete_upload(&slot.key, observed.size)
                    .await
                    .map_err(store_error)?;
                tracing::info!(digest = %slot.key.digest(), region = %slot.region, "upload verified");
                Ok(Verified::Valid)
            }
            Some(reason) => {
                blobs.delete(&key).await.map_err(blob_error)?;
                self.store
                    .reject_upload(&slot.key, reason.clone())
                    .await
                    .map_err(store_error)?;
                tracing::warn!(digest = %slot.key.digest(), %reason, "upload rejected");
                Ok(Verified::Rejected(reason))
            }
        }
    }

    /// Verifies a slot this worker has claimed: inspect, hash, settle. The
    /// claim is released when there is nothing to judge yet or on failure.
    pub async fn verify_claimed(&self, slot: &PendingUpload) -> Result<Verified, UseCaseError> {
        let result = self
            .holding(&slot.key, async {
                let _permit = self
                    .verifications
                    .acquire()
                    .await
                    .map_err(UseCaseError::internal)?;
                let blobs = self.slot_region(slot)?;
                let key = ObjectKey::from(slot.key.clone());
                let Some(info) = blobs.head(&key).await.map_err(blob_error)? else {
                    return self.recover_promoted(slot).await;
                };
                if info.size != slot.size {
                    // No need to read a wrong-size object: the size alone condemns it.
                    let observed_size_only = VerificationOutcome::SizeMismatch {
                        expected: slot.size,
                        actual: info.size,
                    };
                    let reason = observed_size_only.rejection_reason().unwrap_or_default();
                    self.metrics
                        .verification(outcome_name(&observed_size_only), 0);
                    blobs.delete(&key).await.map_err(blob_error)?;
                    self.store
                        .reject_upload(&slot.key, reason.clone())
                        .await
                        .map_err(store_error)?;
                    return Ok(Some(Verified::Rejected(reason)));
                }
                let observed = match read_whole(blobs.as_ref(), &key, &info).await {
                    Ok(observed) => observed,
                    Err(BlobError::Changed) => {
                        // Replaced while we read it: judge the new version later.
                        self.store
                            .release_upload(&slot.key)
                            .await
                            .map_err(store_error)?;
                        return Ok(Some(Verified::NotYet));
                    }
                    Err(e) => return Err(storage_error(e)),
                };
                self.settle(slot, &observed, &info).await.map(Some)
            })
            .await;
        match result {
            Ok(Some(v)) => Ok(v),
            Ok(None) => {
                self.metrics
                    .verification(outcome_name(&VerificationOutcome::Missing), 0);
                self.store
                    .release_upload(&slot.key)
                    .await
                    .map_err(store_error)?;
                Ok(Verified::NotYet)
            }
            Err(e) => {
                let _ = self.store.release_upload(&slot.key).await;
                Err(e)
            }
        }
    }

    /// The slot's staging object is gone. When its URL has expired (no
    /// client can still be uploading to it) and the digest's final object
    /// is in the slot's region, the slot was promoted and its recording
    /// interrupted (the process died between the two steps of
    /// [`Service::settle`]), or another slot of the digest was promoted:
    /// record the copy now, after hashing the final object unless an
    /// instance already vouches for it, so that the file does not stay
    /// without an instance until someone uploads it again. `None` when
    /// there is nothing to recover.
    async fn recover_promoted(
        &self,
        slot: &PendingUpload,
    ) -> Result<Option<Verified>, UseCaseError> {
        if slot.expires > self.clock.now() {
            return Ok(None);
        }
        let blobs = self.slot_region(slot)?;
        let digest = slot.key.digest();
        let final_key = ObjectKey::File(digest.clone());
        let Some(info) = blobs.head(&final_key).await.map_err(blob_error)? else {
            return Ok(None);
        };
        if info.size != slot.size {
            return Ok(None);
        }
        let recorded = self
            .store
            .get_file(digest)
            .await
            .map_err(store_error)?
            .is_some_and(|f| f.instances.contains(&slot.region));
        if !recorded {
            let observed = read_whole(blobs.as_ref(), &final_key, &info)
                .await
                .map_err(storage_error)?;
            let outcome = VerificationOutcome::judge(slot.size, digest, Some(&observed));
            if outcome.rejection_reason().is_some() {
                // Final keys hold only verified bytes; never record others.
                tracing::error!(%digest, region = %slot.region, "a final object does not match its digest");
                return Ok(None);
            }
        }
        self.store
            .complete_upload(&slot.key, slot.size)
            .await
            .map_err(store_error)?;
        tracing::info!(%digest, region = %slot.region, "recovered a promoted upload that was not recorded");
        Ok(Some(Verified::Valid))
    }

    /// Claims and verifies one slot; `NotYet` when another worker holds it.
    pub async fn verify_slot(&self, slot: &PendingUpload) -> Result<Verified, UseCaseError> {
        let now = self.clock.now();
        let claimed = self
            .store
            .claim_upload(&slot.key, now, later(now, self.settings.verify_lease))
            .await
            .map_err(store_error)?;
        if !claimed {
            return Ok(Verified::NotYet);
        }
        self.verify_claimed(slot).await
    }

    /// One run of the verification job: claims due slots and verifies them.
    pub async fn verify_pending(
        &self,
        limit: usize,
    ) -> Result<Vec<(PendingUpload, Result<Verified, UseCaseError>)>, UseCaseError> {
        let now = self.clock.now();
        let due = self
            .store
            .claim_due_uploads(now, later(now, self.settings.verify_lease), limit)
            .await
            .map_err(store_error)?;
        // All at once: each renews its lease from now on, also while it
        // waits for one of the `VERIFY_CONCURRENCY` permits (inside
        // `verify_claimed`), so a slot claimed here cannot lapse in a queue.
        let results = futures_util::future::join_all(due.into_iter().map(|slot| async move {
            let r = self.verify_claimed(&slot).await;
            (slot, r)
        }))
        .await;
        Ok(results)
    }
}
