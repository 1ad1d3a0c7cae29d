//! Taskcluster Hawk authentication (PROTOCOL.md §4): parse the header
//! strictly, then verify it either by asking Taskcluster
//! ([`TaskclusterVerifier`]) or against a local list of clients
//! ([`LocalVerifier`]); either behind [`OnceOnly`], which spends each
//! nonce once in the metadata store. People sign in to the web interface
//! through the deployment's OAuth2 login ([`TaskclusterLogin`]).
//!
//! The resource a request is verified against is its path **with** the
//! query string, exactly as the Mozilla client signs it (the originals used
//! the path alone, so every `?region=` request failed).

mod header;
mod local;
mod login;
mod once;
mod remote;

pub use header::{HawkHeader, SignedRequest, normalized_string, payload_hash, sign, sign_with_ext};
pub use local::{ClientsFileError, HawkClient, LocalVerifier};
pub use login::{OAuthClient, TaskclusterLogin};
pub use once::{OnceOnly, SKEW_SECS};
pub use remote::TaskclusterVerifier;

#[cfg(feature = "fake")]
pub mod fake;
