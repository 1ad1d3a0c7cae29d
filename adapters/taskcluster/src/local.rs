use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tooltool_domain::{Principal, ScopeSet};
use tooltool_ports::{AuthError, AuthRequest, Authenticator, Clock};

use crate::header::{HawkHeader, normalized_string, payload_hash};
use crate::once::within_window;

/// One entry of `HAWK_CLIENTS_FILE`.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HawkClient {
    pub client_id: String,
    pub access_token: String,
    pub scopes: Vec<String>,
}

impl std::fmt::Debug for HawkClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HawkClient")
            .field("client_id", &self.client_id)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientsFileError {
    #[error("cannot read {0}: {1}")]
    Read(String, std::io::Error),
    #[error("{0} is not a JSON list of {{\"clientId\", \"accessToken\", \"scopes\"}}: {1}")]
    Parse(String, serde_json::Error),
    #[error("{0}: client {1:?} is listed twice")]
    Duplicate(String, String),
    #[error("{0}: client {1:?} has an empty clientId or accessToken")]
    Empty(String, String),
}

/// Verifies Hawk headers against a fixed list of clients, as Taskcluster
/// would: HMAC-SHA256 with the access token, ±15 minutes, payload hash
/// when sent. Nonces are [`crate::OnceOnly`]'s concern, in front of it.
pub struct LocalVerifier {
    clients: HashMap<String, (Vec<u8>, ScopeSet)>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for LocalVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalVerifier")
            .field("clients", &self.clients.len())
            .finish_non_exhaustive()
    }
}

fn refuse(why: impl Into<String>) -> AuthError {
    AuthError::Invalid(why.into())
}

impl LocalVerifier {
    pub fn new(clients: Vec<HawkClient>, clock: Arc<dyn Clock>) -> Self {
        Self {
            clients: clients
                .into_iter()
                .map(|c| {
                    (
                        c.client_id,
                        (c.access_token.into_bytes(), ScopeSet::new(c.scopes)),
                    )
                })
                .collect(),
            clock,
        }
    }

    /// Reads `[{"clientId", "accessToken", "scopes"}]` from `path`.
    ///
    /// # Errors
    /// Unreadable or malformed files, duplicate or empty clients.
    pub fn from_file(path: &Path, clock: Arc<dyn Clock>) -> Result<Self, ClientsFileError> {
        let name = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|e| ClientsFileError::Read(name.clone(), e))?;
        let clients: Vec<HawkClient> =
            serde_json::from_str(&text).map_err(|e| ClientsFileError::Parse(name.clone(), e))?;
        let mut ids = std::collections::HashSet::new();
        for c in &clients {
            if c.client_id.is_empty() || c.access_token.is_empty() {
                return Err(ClientsFileError::Empty(name, c.client_id.clone()));
            }
            if !ids.insert(c.client_id.clone()) {
                return Err(ClientsFileError::Duplicate(name, c.client_id.clone()));
            }
        }
        Ok(Self::new(clients, clock))
    }
}

/// Taskcluster's `ext` carries temporary credentials or restricted scopes;
/// honouring neither, this verifier refuses them rather than grant more
/// than the client asked for.
fn check_ext(ext: Option<&str>) -> Result<(), AuthError> {
    let Some(ext) = ext else { return Ok(()) };
    let decoded = STANDARD
        .decode(ext)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .ok_or_else(|| refuse("the Hawk ext attribute is not base64-encoded JSON"))?;
    let object = decoded
        .as_object()
        .ok_or_else(|| refuse("the Hawk ext attribute is not a JSON object"))?;
    if object.contains_key("certificate") || object.contains_key("authorizedScopes") {
        return Err(refuse(
            "temporary credentials and authorizedScopes are not supported by this server's local Hawk verifier",
        ));
    }
    Ok(())
}

/// Checks a header's payload hash against the body, in constant time.
pub(crate) fn check_payload(header: &HawkHeader, request: &AuthRequest) -> Result<(), AuthError> {
    let Some(sent) = &header.hash else {
        return Ok(());
    };
    let body = request.body.as_deref().unwrap_or_default();
    let computed = payload_hash(request.content_type.as_deref(), body);
    if bool::from(computed.as_bytes().ct_eq(sent.as_bytes())) {
        Ok(())
    } else {
        Err(refuse(
            "the Hawk payload hash does not match the request body",
        ))
    }
}

#[async_trait]
impl Authenticator for LocalVerifier {
    fn scheme(&self) -> &'static str {
        "Hawk"
    }

    async fn authenticate(&self, request: &AuthRequest) -> Result<Principal, AuthError> {
        let header = HawkHeader::parse(&request.credentials).map_err(AuthError::Invalid)?;
        let Some((token, scopes)) = self.clients.get(&header.id) else {
            return Err(refuse(format!("unknown Hawk client {:?}", header.id)));
        };
        let now = self.clock.now().timestamp();
        if !within_window(header.ts, now) {
            return Err(refuse(
                "the Hawk timestamp is more than 15 minutes away from the server's clock",
            ));
        }
        check_ext(header.ext.as_deref())?;
        let normalized = normalized_string(
            header.ts,
            &header.nonce,
            &request.method,
            &request.resource,
            &request.host,
            request.port,
            header.hash.as_deref(),
            header.ext.as_deref(),
        );
        let mac = STANDARD
            .decode(&header.mac)
            .map_err(|_| refuse("the Hawk mac is not base64"))?;
        let mut expected =
            Hmac::<Sha256>::new_from_slice(token).expect("HMAC takes keys of any length");
        expected.update(normalized.as_bytes());
        // verify_slice compares in constant time.
        expected.verify_slice(&mac).map_err(|_| {
            refuse("the Hawk mac does not match: wrong access token, or the request was altered")
        })?;
        check_payload(&header, request)?;
        Ok(Principal::authenticated(header.id, scopes.clone()))
    }
}
