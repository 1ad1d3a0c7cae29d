use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use tooltool_domain::{Principal, ScopeSet};
use tooltool_ports::{AuthError, AuthRequest, Authenticator, Cause, Context};

use crate::header::HawkHeader;
use crate::local::check_payload;

/// Verifies Hawk headers by asking a Taskcluster deployment
/// (`POST <root>/api/auth/v1/authenticate-hawk`).
pub struct TaskclusterVerifier {
    client: reqwest::Client,
    endpoint: String,
}

impl std::fmt::Debug for TaskclusterVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskclusterVerifier")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    status: String,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    message: Option<String>,
}

impl TaskclusterVerifier {
    /// A verifier for the deployment at `root_url`, with a pooled client
    /// whose requests give up after `timeout` (a hung auth service must not
    /// hang our requests).
    ///
    /// # Errors
    /// When the URL is not http(s) or the HTTP client cannot be built.
    pub fn new(root_url: &str, timeout: Duration) -> Result<Self, String> {
        let root = root_url.trim_end_matches('/');
        if !(root.starts_with("https://") || root.starts_with("http://")) {
            return Err(format!("{root_url:?} is not an http(s) URL"));
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .pool_max_idle_per_host(32)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            client,
            endpoint: format!("{root}/api/auth/v1/authenticate-hawk"),
        })
    }
}

#[async_trait]
impl Authenticator for TaskclusterVerifier {
    fn scheme(&self) -> &'static str {
        "Hawk"
    }

    fn authority(&self) -> Option<&'static str> {
        Some("taskcluster")
    }

    async fn check(&self) -> Result<(), AuthError> {
        let ping = self.endpoint.replace("/authenticate-hawk", "/ping");
        match self.client.get(&ping).send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(AuthError::unavailable(format!(
                "Taskcluster auth answered {}",
                r.status()
            ))),
            Err(e) => Err(AuthError::unavailable(Context::new(
                "Taskcluster auth unreachable",
                e,
            ))),
        }
    }

    async fn authenticate(&self, request: &AuthRequest) -> Result<Principal, AuthError> {
        // Malformed headers are refused here, without a round trip.
        let header = HawkHeader::parse(&request.credentials).map_err(AuthError::Invalid)?;
        let body = serde_json::json!({
            "method": request.method.to_ascii_lowercase(),
            "resource": request.resource,
            "host": request.host,
            "port": request.port,
            "authorization": request.credentials,
        });
        let unavailable = |why: &str, cause: Cause| {
            AuthError::unavailable(Context::new(format!("Taskcluster auth: {why}"), cause))
        };
        let response = self
            .client
            .post(&self.endpoint)
            .json(&body)
            .send()
            .await
            .map_err(|e| {
                let why = if e.is_timeout() {
                    "timed out"
                } else {
                    "request failed"
                };
                unavailable(why, Box::new(e))
            })?;
        let status = response.status();
        if !status.is_success() {
            return Err(AuthError::unavailable(format!(
                "Taskcluster auth answered {status}"
            )));
        }
        let answer: Answer = response
            .json()
            .await
            .map_err(|e| unavailable("unreadable answer", Box::new(e)))?;
        match answer.status.as_str() {
            "auth-success" => {
                // Taskcluster checks the MAC (which covers the hash
                // attribute); the body itself is ours to check.
                check_payload(&header, request)?;
                let id = answer
                    .client_id
                    .filter(|id| !id.is_empty())
                    .ok_or_else(|| {
                        AuthError::unavailable("Taskcluster auth: auth-success without a clientId")
                    })?;
                Ok(Principal::authenticated(id, ScopeSet::new(answer.scopes)))
            }
            "auth-failed" => Err(AuthError::Invalid(format!(
                "Taskcluster refused the credentials: {}",
                answer.message.unwrap_or_else(|| "no reason given".into())
            ))),
            other => Err(AuthError::unavailable(format!(
                "Taskcluster auth: unexpected status {other:?}"
            ))),
        }
    }
}
