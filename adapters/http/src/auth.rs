//! Resolves the caller before any operation runs: no credential header →
//! anonymous; a header whose scheme has an authenticator → that
//! authenticator's verdict; a header that is present but fails (bad
//! credential, unknown scheme) → 401 (PROTOCOL.md §4 Decision).
//!
//! JSON request bodies are read here, once, with the size limit, because a
//! scheme may sign the body (Hawk's payload hash) and because a body over
//! the limit must be a 413 whatever the route.

use std::sync::Arc;

use poem::http::{Method, StatusCode, header};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response};
use tooltool_domain::Principal;
use tooltool_ports::{AuthError, AuthRequest, Authenticator};

use crate::problem::problem_response;

#[derive(Clone)]
pub struct AuthLayer {
    pub authenticators: Arc<Vec<Arc<dyn Authenticator>>>,
    pub max_json_body: usize,
}

impl<E: Endpoint> Middleware<E> for AuthLayer {
    type Output = AuthEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        AuthEndpoint {
            inner: ep,
            layer: self.clone(),
        }
    }
}

pub struct AuthEndpoint<E> {
    inner: E,
    layer: AuthLayer,
}

/// The credential header: `Authorization`, or the legacy `Authentication`.
fn credentials(req: &Request) -> Option<String> {
    req.header(header::AUTHORIZATION)
        .or_else(|| req.header("Authentication"))
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn host_and_port(req: &Request) -> (String, u16) {
    let default_port = if req.uri().scheme_str() == Some("https") {
        443
    } else {
        80
    };
    let host = req.header(header::HOST).unwrap_or_default();
    match host.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || host.starts_with('[') => match p.parse() {
            Ok(port) => (h.to_owned(), port),
            Err(_) => (host.to_owned(), default_port),
        },
        _ => (host.to_owned(), default_port),
    }
}

impl<E: Endpoint> Endpoint for AuthEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        // Blob routes carry their own signatures and stream large bodies.
        let is_blob = req.uri().path().starts_with("/blob/");
        let mut body = None;
        if !is_blob && matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH) {
            let too_large = || {
                problem_response(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "the request body exceeds this server's limit of {} bytes",
                        self.layer.max_json_body
                    ),
                )
            };
            let declared = req
                .header(header::CONTENT_LENGTH)
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|n| n > self.layer.max_json_body as u64) {
                return Ok(too_large());
            }
            match req
                .take_body()
                .into_bytes_limit(self.layer.max_json_body)
                .await
            {
                Ok(bytes) => {
                    req.set_body(bytes.clone());
                    body = Some(bytes);
                }
                Err(poem::error::ReadBodyError::PayloadTooLarge) => return Ok(too_large()),
                Err(e) => {
                    return Ok(problem_response(
                        StatusCode::BAD_REQUEST,
                        format!("the request body could not be read: {e}"),
                    ));
                }
            }
        }

        let principal = match credentials(&req) {
            None => Principal::anonymous(),
            Some(credentials) => {
                let scheme = credentials.split_whitespace().next().unwrap_or_default();
                let Some(authenticator) = self
                    .layer
                    .authenticators
                    .iter()
                    .find(|a| a.scheme().eq_ignore_ascii_case(scheme))
                else {
                    let known: Vec<_> = self
                        .layer
                        .authenticators
                        .iter()
                        .map(|a| a.scheme())
                        .collect();
                    return Ok(problem_response(
                        StatusCode::UNAUTHORIZED,
                        format!(
                            "unsupported authorization scheme {scheme:?}; this server accepts: {}",
                            known.join(", ")
                        ),
                    ));
                };
                let (host, port) = host_and_port(&req);
                let request = AuthRequest {
                    method: req.method().as_str().to_owned(),
                    resource: req
                        .uri()
                        .path_and_query()
                        .map(|pq| pq.as_str().to_owned())
                        .unwrap_or_else(|| "/".into()),
                    host,
                    port,
                    credentials,
                    content_type: req.content_type().map(str::to_owned),
                    body,
                };
                match authenticator.authenticate(&request).await {
                    Ok(p) => p,
                    Err(AuthError::Invalid(why)) => {
                        return Ok(problem_response(StatusCode::UNAUTHORIZED, why));
                    }
                    Err(AuthError::Unavailable(why)) => {
                        tracing::error!(cause = %why, "authentication service unavailable");
                        return Ok(problem_response(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "the authentication service is unavailable; retry in a moment",
                        ));
                    }
                }
            }
        };
        req.extensions_mut().insert(principal);
        Ok(self.inner.call(req).await?.into_response())
    }
}
