//! Who is asking, and downloads: the authenticator of a credential's
//! scheme decides the principal; a download checks existence, then
//! permission, then picks a region and signs a short-lived URL.

use tooltool_domain::{Digest, Principal, RegionName};
use tooltool_ports::{AuthRequest, FileRecord, UseCaseError};

use super::errors::{auth_error, blob_error, store_error};
use super::{Service, later};

/// The originals' wording of a refused download.
pub const FORBIDDEN_DOWNLOAD: &str = "You don't have the permission to access the requested resource. It is either read-protected or not readable by the server.";

impl Service {
    /// A credential's principal, from the authenticator of its scheme
    /// (matched case-insensitively on the header's first word).
    pub async fn authenticate(&self, request: &AuthRequest) -> Result<Principal, UseCaseError> {
        let scheme = request
            .credentials
            .split_whitespace()
            .next()
            .unwrap_or_default();
        let Some(authenticator) = self
            .authenticators
            .iter()
            .find(|a| a.scheme().eq_ignore_ascii_case(scheme))
        else {
            let known: Vec<_> = self.authenticators.iter().map(|a| a.scheme()).collect();
            return Err(UseCaseError::not_authenticated(format!(
                "unsupported authorization scheme {scheme:?}; this server accepts: {}",
                known.join(", ")
            )));
        };
        authenticator
            .authenticate(request)
            .await
            .map_err(auth_error)
    }

    /// Where to download the file from: a signed URL of a verified copy.
    pub async fn download(
        &self,
        principal: &Principal,
        digest: &Digest,
        region: Option<RegionName>,
    ) -> Result<String, UseCaseError> {
        let file = self
            .store
            .get_file(digest)
            .await
            .map_err(store_error)?
            .filter(FileRecord::has_instances)
            .ok_or_else(|| {
                UseCaseError::not_found("No verified copy of this file is stored here.")
            })?;
        if !self
            .settings
            .permissions
            .may_download(principal, file.visibility)
        {
            return Err(UseCaseError::denied(FORBIDDEN_DOWNLOAD));
        }
        // Only regions this process is configured for can sign URLs.
        let served: Vec<RegionName> = file
            .instances
            .iter()
            .filter(|r| self.region(r).is_some())
            .cloned()
            .collect();
        let chosen = self.choose(region.as_ref(), &served).ok_or_else(|| {
            UseCaseError::not_found(
                "No verified copy of this file is stored in a configured region.",
            )
        })?;
        let expires = later(self.clock.now(), self.settings.download_expires);
        chosen
            .presign_get(digest, expires)
            .await
            .map_err(blob_error)
    }
}
