use async_trait::async_trait;
use bytes::Bytes;
use tooltool_domain::Principal;

use crate::Cause;

/// What an authenticator may look at: everything a request-signing scheme
/// such as Hawk covers, already extracted from the HTTP request.
#[derive(Debug, Clone, Default)]
pub struct AuthRequest {
    /// Upper-case HTTP method.
    pub method: String,
    /// Path **with** its query string, as the client signed it.
    pub resource: String,
    /// Host as the client addressed it (from `Host`, or forwarded headers).
    pub host: String,
    pub port: u16,
    /// The whole credential header value, scheme included (`Bearer ...`).
    pub credentials: String,
    pub content_type: Option<String>,
    /// The request body, for schemes that sign it (Hawk's payload hash).
    pub body: Option<Bytes>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The credential is present but not acceptable; the text says why and
    /// is shown to the client. It MUST NOT echo secrets.
    #[error("{0}")]
    Invalid(String),
    /// The authority that would decide (e.g. Taskcluster) could not be
    /// asked, or answered nonsense; retryable.
    #[error("authentication service unavailable")]
    Unavailable(#[source] Cause),
}

impl AuthError {
    pub fn unavailable(cause: impl Into<Cause>) -> Self {
        Self::Unavailable(cause.into())
    }
}

/// Turns one credential scheme into a principal.
///
/// # Errors
/// Implementations MUST answer [`AuthError::Invalid`] for any credential of
/// their scheme that is malformed, badly signed, expired or unknown, never
/// an anonymous principal: a present-but-bad credential is refused
/// (PROTOCOL.md §4 Decision).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Authenticator: Send + Sync {
    /// The scheme word this authenticator handles, e.g. `Bearer` or `Hawk`
    /// (matched case-insensitively against the header's first word).
    fn scheme(&self) -> &'static str;

    async fn authenticate(&self, request: &AuthRequest) -> Result<Principal, AuthError>;

    /// The external authority this authenticator asks (e.g. `taskcluster`),
    /// named in health checks; `None` for self-contained authenticators
    /// (a key, a local list of clients), which have nothing to check.
    fn authority(&self) -> Option<&'static str> {
        None
    }

    /// Whether [`Authenticator::authority`] can be reached, for health
    /// checks; only called when it is `Some`.
    async fn check(&self) -> Result<(), AuthError> {
        Ok(())
    }
}

/// An authority people sign in with in a browser, through the OAuth2
/// authorization-code flow (Taskcluster's third-party login). The browser
/// carries only the code; credentials the exchange yields stay inside the
/// implementation and are never kept.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SignInAuthority: Send + Sync {
    /// Where to send the browser to ask for a code: the authority's
    /// authorization page, asking for the tooltool scopes only. It MUST
    /// bring the browser back to `redirect_uri` with `state` unchanged.
    fn authorize_url(&self, redirect_uri: &str, state: &str) -> String;

    /// The principal a code stands for. Its id and scopes MUST be what the
    /// authority itself reports for the credentials the code yields (a
    /// verification of those credentials by the authority), never read off
    /// a client id. A refused, reused or expired code is
    /// [`AuthError::Invalid`]; an authority that cannot be asked is
    /// [`AuthError::Unavailable`].
    async fn principal(&self, code: &str, redirect_uri: &str) -> Result<Principal, AuthError>;
}
