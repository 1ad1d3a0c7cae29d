//! Signing people in with Taskcluster's third-party login: the OAuth2
//! authorization-code flow of a Taskcluster deployment
//! (`/login/oauth/authorize`, `/login/oauth/token`,
//! `/login/oauth/credentials`), then, as Taskcluster's integration guide
//! requires, the principal's id and scopes from `authenticateHawk` on the
//! credentials the flow yields (never read off their client id). The
//! credentials are used for that one request and dropped.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use tooltool_domain::Principal;
use tooltool_ports::{AuthError, AuthRequest, Authenticator, Context, SignInAuthority};

use crate::header::{SignedRequest, sign_with_ext};
use crate::remote::TaskclusterVerifier;

/// Largest answer read from the login endpoints (theirs are a few hundred
/// bytes; a certificate adds a few kilobytes).
const MAX_ANSWER: usize = 64 * 1024;

/// The OAuth2 client registered with the deployment for this service.
#[derive(Clone)]
pub struct OAuthClient {
    pub id: String,
    /// Confidential clients have one; sent in the token request.
    pub secret: Option<String>,
}

impl std::fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClient")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// [`SignInAuthority`] of a Taskcluster deployment.
#[derive(Debug)]
pub struct TaskclusterLogin {
    http: reqwest::Client,
    root: String,
    client: OAuthClient,
    /// The scopes asked for: the tooltool ones (`<prefix>/*`).
    scope: String,
    verifier: TaskclusterVerifier,
}

#[derive(Deserialize)]
struct Token {
    access_token: String,
}

#[derive(Deserialize)]
struct CredentialsAnswer {
    credentials: Credentials,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Credentials {
    client_id: String,
    access_token: String,
    #[serde(default)]
    certificate: Option<serde_json::Value>,
}

impl TaskclusterLogin {
    /// Sign-in through the deployment at `root_url` for `client`, asking
    /// for the scopes under `scope_prefix`; requests give up after
    /// `timeout`.
    ///
    /// # Errors
    /// When the URL is not http(s) or the HTTP client cannot be built.
    pub fn new(
        root_url: &str,
        timeout: Duration,
        client: OAuthClient,
        scope_prefix: &str,
    ) -> Result<Self, String> {
        let root = root_url.trim_end_matches('/').to_owned();
        let verifier = TaskclusterVerifier::new(&root, timeout)?;
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // The token endpoint answers; it never sends us elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            http,
            root,
            client,
            scope: format!("{}/*", scope_prefix.trim_end_matches('/')),
            verifier,
        })
    }

    /// The JSON answer of a login endpoint: a refusal (4xx) is the code's
    /// fault, anything else unexpected is the deployment's.
    async fn answer<T: serde::de::DeserializeOwned>(
        what: &str,
        sent: Result<reqwest::Response, reqwest::Error>,
    ) -> Result<T, AuthError> {
        let unavailable = |why: String| AuthError::unavailable(format!("Taskcluster login: {why}"));
        let mut response = sent.map_err(|e| {
            AuthError::unavailable(Context::new(format!("Taskcluster login: {what} failed"), e))
        })?;
        let status = response.status();
        if status.is_client_error() {
            return Err(AuthError::Invalid(format!(
                "Taskcluster refused the sign-in ({what} answered {status}); sign in again"
            )));
        }
        if !status.is_success() {
            return Err(unavailable(format!("{what} answered {status}")));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| unavailable(format!("{what}: {e}")))?
        {
            if body.len() + chunk.len() > MAX_ANSWER {
                return Err(unavailable(format!(
                    "{what}: answer above {MAX_ANSWER} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| unavailable(format!("{what}: {e}")))
    }
}

#[async_trait]
impl SignInAuthority for TaskclusterLogin {
    fn authorize_url(&self, redirect_uri: &str, state: &str) -> String {
        let mut url = reqwest::Url::parse(&format!("{}/login/oauth/authorize", self.root))
            .expect("the root was checked to be an http(s) URL");
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client.id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", &self.scope)
            .append_pair("state", state);
        url.into()
    }

    async fn principal(&self, code: &str, redirect_uri: &str) -> Result<Principal, AuthError> {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("client_id", self.client.id.as_str()),
        ];
        if let Some(secret) = &self.client.secret {
            form.push(("client_secret", secret));
        }
        let sent = self
            .http
            .post(format!("{}/login/oauth/token", self.root))
            .form(&form)
            .send()
            .await;
        let token: Token = Self::answer("the token request", sent).await?;
        let sent = self
            .http
            .get(format!("{}/login/oauth/credentials", self.root))
            .bearer_auth(&token.access_token)
            .send()
            .await;
        let CredentialsAnswer { credentials } =
            Self::answer("the credentials request", sent).await?;
        // Who they are is what Taskcluster says of a request signed with
        // them: a Hawk header over a request of our own making.
        let ext = credentials.certificate.as_ref().map(|c| {
            use base64::Engine as _;
            let certificate = match c {
                serde_json::Value::String(text) => {
                    serde_json::from_str(text).unwrap_or_else(|_| c.clone())
                }
                other => other.clone(),
            };
            base64::engine::general_purpose::STANDARD
                .encode(serde_json::json!({ "certificate": certificate }).to_string())
        });
        let (resource, host, port) = ("/ui/sign-in/taskcluster", "tooltool.sign-in", 443);
        let nonce = format!("{:016x}", rand::random::<u64>());
        let header = sign_with_ext(
            &credentials.client_id,
            &credentials.access_token,
            chrono::Utc::now().timestamp(),
            &nonce,
            &SignedRequest {
                method: "GET",
                resource,
                host,
                port,
                payload: None,
            },
            ext.as_deref(),
        );
        self.verifier
            .authenticate(&AuthRequest {
                method: "GET".into(),
                resource: resource.into(),
                host: host.into(),
                port,
                credentials: header,
                content_type: None,
                body: None,
            })
            .await
    }
}
