//! Replay protection for every Hawk verifier: a verified request's nonce
//! is spent in the metadata store, which every process shares and which
//! outlives restarts, so a captured request is accepted once — not once
//! per process, and not again after a restart within the window.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::DateTime;
use sha2::{Digest as _, Sha256};
use tooltool_domain::Principal;
use tooltool_ports::{AuthError, AuthRequest, Authenticator, Clock, MetadataStore};

use crate::header::HawkHeader;

/// Taskcluster's tolerance between a client's clock and ours; a nonce is
/// remembered until its timestamp leaves this window.
pub const SKEW_SECS: i64 = 15 * 60;

/// Wraps a Hawk verifier (local or Taskcluster's): the inner verifier
/// checks the MAC and the window first, so only a genuine request spends a
/// nonce (a forger cannot fill the table or burn other clients' nonces);
/// the window is checked again here, so the guarantee does not depend on
/// the authority's own window being no wider than the one nonces are kept
/// for.
pub struct OnceOnly {
    inner: Arc<dyn Authenticator>,
    store: Arc<dyn MetadataStore>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for OnceOnly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnceOnly").finish_non_exhaustive()
    }
}

impl OnceOnly {
    pub fn new(
        inner: Arc<dyn Authenticator>,
        store: Arc<dyn MetadataStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            inner,
            store,
            clock,
        }
    }
}

/// The stored key of one nonce: client, nonce and timestamp, length-prefixed
/// so that no two different triples share an encoding.
pub(crate) fn nonce_key(header: &HawkHeader) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in [header.id.as_bytes(), header.nonce.as_bytes()] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    h.update(header.ts.to_be_bytes());
    h.finalize().into()
}

/// Whether a timestamp is inside the window around `now`.
pub(crate) fn within_window(ts: i64, now: i64) -> bool {
    (now - ts).abs() <= SKEW_SECS
}

#[async_trait]
impl Authenticator for OnceOnly {
    fn scheme(&self) -> &'static str {
        self.inner.scheme()
    }

    fn authority(&self) -> Option<&'static str> {
        self.inner.authority()
    }

    async fn check(&self) -> Result<(), AuthError> {
        self.inner.check().await
    }

    async fn authenticate(&self, request: &AuthRequest) -> Result<Principal, AuthError> {
        let principal = self.inner.authenticate(request).await?;
        let header = HawkHeader::parse(&request.credentials).map_err(AuthError::Invalid)?;
        if !within_window(header.ts, self.clock.now().timestamp()) {
            return Err(AuthError::Invalid(
                "the Hawk timestamp is more than 15 minutes away from the server's clock".into(),
            ));
        }
        let expires = DateTime::from_timestamp(header.ts.saturating_add(SKEW_SECS), 0)
            .ok_or_else(|| AuthError::Invalid("the Hawk timestamp is out of range".into()))?;
        let fresh = self
            .store
            .spend_nonce(nonce_key(&header), expires)
            .await
            .map_err(AuthError::unavailable)?;
        if fresh {
            Ok(principal)
        } else {
            Err(AuthError::Invalid(
                "this Hawk nonce was already used: requests cannot be replayed".into(),
            ))
        }
    }
}
