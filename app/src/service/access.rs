//! Who is asking, and downloads: the authenticator of a credential's
//! scheme decides the principal; a download checks existence, then
//! permission, then picks a region and signs a short-lived URL; a
//! resolve does it for many digests in one request.

use futures_util::StreamExt as _;
use tooltool_domain::{Digest, Principal, RegionName};
use tooltool_ports::{
    AuthRequest, ErrorKind, FileRecord, MAX_RESOLVE, Resolution, Resolutions, UseCaseError,
};

use super::errors::{auth_error, blob_error, store_error};
use super::{Service, later};

/// Records read at once by a [`Service::resolve`]: enough to hide a
/// database round trip behind the others, few enough to leave the pool to
/// other requests.
const LOOKUPS_AT_ONCE: usize = 8;

const NO_COPY: &str = "No verified copy of this file is stored here.";

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

    /// Where a browser signs in with the configured authority.
    pub fn sign_in_url(&self, redirect_uri: &str, state: &str) -> Option<String> {
        self.sign_in
            .as_ref()
            .map(|a| a.authorize_url(redirect_uri, state))
    }

    /// The principal of an authorization code, as the authority says.
    pub async fn sign_in(&self, code: &str, redirect_uri: &str) -> Result<Principal, UseCaseError> {
        let Some(authority) = &self.sign_in else {
            return Err(UseCaseError::invalid(
                "this server has no sign-in authority configured",
            ));
        };
        authority
            .principal(code, redirect_uri)
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
        let file = self.store.get_file(digest).await.map_err(store_error)?;
        match self
            .locate(principal, digest, file.as_ref(), region.as_ref())
            .await
        {
            // The protocol's download knows found or not: a file declared
            // but not verified yet is not found.
            Err(e) if e.kind() == ErrorKind::NotYet => Err(UseCaseError::not_found(NO_COPY)),
            located => located,
        }
    }

    /// [`Service::download`] for many digests: their records read a few at
    /// a time (a cache hit each, on the server), each decided alone.
    pub async fn resolve(
        &self,
        principal: &Principal,
        digests: Vec<Digest>,
        region: Option<RegionName>,
    ) -> Result<Resolutions, UseCaseError> {
        if digests.len() > MAX_RESOLVE {
            return Err(UseCaseError::invalid(format!(
                "at most {MAX_RESOLVE} digests may be resolved at once, not {}",
                digests.len()
            )));
        }
        let records: Vec<_> = futures_util::stream::iter(digests)
            .map(|digest| async move {
                let file = self.store.get_file(&digest).await;
                (digest, file)
            })
            .buffered(LOOKUPS_AT_ONCE)
            .collect()
            .await;
        let mut files = Vec::with_capacity(records.len());
        for (digest, file) in records {
            let file = file.map_err(store_error)?;
            let url = self
                .locate(principal, &digest, file.as_ref(), region.as_ref())
                .await;
            // A refusal is this digest's answer; a fault is everyone's.
            if let Err(e) = &url
                && e.kind().is_server_fault()
            {
                return Err(url.expect_err("checked"));
            }
            files.push(Resolution {
                file: file.map(|f| (f.size, f.visibility)),
                digest,
                url,
            });
        }
        Ok(Resolutions {
            expires_in_secs: self.settings.download_expires.as_secs(),
            files,
        })
    }

    /// The one rule of downloads: existence, then permission, then a
    /// region this process can sign for, then the signed URL.
    async fn locate(
        &self,
        principal: &Principal,
        digest: &Digest,
        file: Option<&FileRecord>,
        region: Option<&RegionName>,
    ) -> Result<String, UseCaseError> {
        let file = file.ok_or_else(|| UseCaseError::not_found(NO_COPY))?;
        if !file.has_instances() {
            return Err(UseCaseError::not_yet(
                "This file is declared but no copy of it is verified yet.",
            ));
        }
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
        let chosen = self.choose(region, &served).ok_or_else(|| {
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
