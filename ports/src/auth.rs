use async_trait::async_trait;
use bytes::Bytes;
use tooltool_domain::Principal;

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

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The credential is present but not acceptable; the text says why and
    /// is shown to the client (401). It MUST NOT echo secrets.
    #[error("{0}")]
    Invalid(String),
    /// The authority that would decide (e.g. Taskcluster) could not be asked (503).
    #[error("authentication service unavailable: {0}")]
    Unavailable(String),
}

/// Turns one credential scheme into a principal.
///
/// # Errors
/// Implementations MUST answer [`AuthError::Invalid`] for any credential of
/// their scheme that is malformed, badly signed, expired or unknown, never
/// an anonymous principal: a present-but-bad credential is a 401
/// (PROTOCOL.md §4 Decision).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Authenticator: Send + Sync {
    /// The scheme word this authenticator handles, e.g. `Bearer` or `Hawk`
    /// (matched case-insensitively against the header's first word).
    fn scheme(&self) -> &'static str;

    async fn authenticate(&self, request: &AuthRequest) -> Result<Principal, AuthError>;

    /// Whether the authority behind this authenticator can be reached, for
    /// health checks. Self-contained authenticators have nothing to check.
    async fn check(&self) -> Result<(), String> {
        Ok(())
    }
}
