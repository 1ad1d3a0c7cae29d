//! Resolves the caller before any operation runs: no credential header →
//! anonymous; a header → what the driving port's `authenticate` decides
//! (a credential that is present but fails is refused, never anonymous:
//! PROTOCOL.md §4 Decision). Refusals leave through `problem.rs` like any
//! other use-case error.
//!
//! JSON request bodies are read here, once, with the size limit, because a
//! scheme may sign the body (Hawk's payload hash) and because a body over
//! the limit must be a 413 whatever the route.

use std::sync::Arc;

use poem::http::{Method, header};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response};
use tooltool_domain::Principal;
use tooltool_ports::{AuthRequest, ToolTool, UseCaseError};

use crate::problem::ErrorResponse;

#[derive(Clone)]
pub struct AuthLayer {
    pub service: Arc<dyn ToolTool>,
    pub max_json_body: usize,
    pub trust_proxy_headers: bool,
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

/// The first value of a (possibly repeated, comma-separated) header.
fn first_value<'r>(req: &'r Request, name: &str) -> Option<&'r str> {
    req.header(name)
        .and_then(|v| v.split(',').next())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// Splits `host[:port]` (IPv6 literals in brackets).
fn split_host(authority: &str) -> (&str, Option<u16>) {
    match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => match port.parse() {
            Ok(port) => (host, Some(port)),
            Err(_) => (authority, None),
        },
        _ => (authority, None),
    }
}

/// The host and port the client addressed, which Hawk signatures cover:
/// from `Host`, or behind a trusted proxy from `X-Forwarded-*` (a missing
/// port is the scheme's: 443 for https, 80 for http).
fn host_and_port(req: &Request, trust_proxy: bool) -> (String, u16) {
    let forwarded = |name| {
        if trust_proxy {
            first_value(req, name)
        } else {
            None
        }
    };
    let scheme = forwarded("X-Forwarded-Proto")
        .map(str::to_ascii_lowercase)
        .or_else(|| req.uri().scheme_str().map(str::to_owned))
        .unwrap_or_else(|| "http".to_owned());
    let default_port = if scheme == "https" { 443 } else { 80 };
    let authority = forwarded("X-Forwarded-Host")
        .or_else(|| req.header(header::HOST))
        .unwrap_or_default();
    let (host, port) = split_host(authority);
    let port = forwarded("X-Forwarded-Port")
        .and_then(|p| p.parse().ok())
        .or(port)
        .unwrap_or(default_port);
    (host.to_owned(), port)
}

impl<E> AuthEndpoint<E> {
    /// Reads a JSON body whole, within the limit (a declared length above
    /// it is refused before anything is read), and puts it back for the
    /// operation.
    async fn read_body(&self, req: &mut Request) -> Result<bytes::Bytes, UseCaseError> {
        let limit = self.layer.max_json_body;
        let too_large = || {
            UseCaseError::too_large(format!(
                "the request body exceeds this server's limit of {limit} bytes"
            ))
        };
        let declared = req
            .header(header::CONTENT_LENGTH)
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        match req.take_body().into_bytes_limit(limit).await {
            Ok(bytes) => {
                req.set_body(bytes.clone());
                Ok(bytes)
            }
            Err(poem::error::ReadBodyError::PayloadTooLarge) => Err(too_large()),
            Err(e) => Err(UseCaseError::invalid(format!(
                "the request body could not be read: {e}"
            ))),
        }
    }
}

impl<E: Endpoint> Endpoint for AuthEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        // Blob routes carry their own signatures and stream large bodies.
        let is_blob = req.uri().path().starts_with("/blob/");
        let mut body = None;
        if !is_blob && matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH) {
            match self.read_body(&mut req).await {
                Ok(bytes) => body = Some(bytes),
                Err(e) => return Ok(ErrorResponse(e).into_response()),
            }
        }

        let principal = match credentials(&req) {
            None => Principal::anonymous(),
            Some(credentials) => {
                let (host, port) = host_and_port(&req, self.layer.trust_proxy_headers);
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
                match self.layer.service.authenticate(&request).await {
                    Ok(p) => p,
                    Err(e) => return Ok(ErrorResponse(e).into_response()),
                }
            }
        };
        let id = crate::observe::PrincipalId(principal.id().map(str::to_owned));
        req.extensions_mut().insert(principal);
        // Errors go on to the error-shape conversion, carrying the id.
        match self.inner.call(req).await {
            Ok(r) => {
                let mut resp = r.into_response();
                resp.set_data(id);
                Ok(resp)
            }
            Err(mut e) => {
                e.set_data(id);
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// request headers, trust proxy headers, expected (host, port)
    type Case<'a> = (&'a [(&'a str, &'a str)], bool, (&'a str, u16));

    #[test]
    fn host_and_port_table() {
        let cases: &[Case<'_>] = &[
            (
                &[("Host", "tooltool.example.com")],
                false,
                ("tooltool.example.com", 80),
            ),
            (&[("Host", "127.0.0.1:8000")], false, ("127.0.0.1", 8000)),
            (&[("Host", "[::1]:8000")], false, ("[::1]", 8000)),
            (&[("Host", "[::1]")], false, ("[::1]", 80)),
            // Forwarded headers count only when trusted.
            (
                &[
                    ("Host", "10.0.0.5:8000"),
                    ("X-Forwarded-Host", "tooltool.example.com"),
                    ("X-Forwarded-Proto", "https"),
                ],
                false,
                ("10.0.0.5", 8000),
            ),
            (
                &[
                    ("Host", "10.0.0.5:8000"),
                    ("X-Forwarded-Host", "tooltool.example.com"),
                    ("X-Forwarded-Proto", "https"),
                ],
                true,
                ("tooltool.example.com", 443),
            ),
            (
                &[
                    ("Host", "10.0.0.5:8000"),
                    ("X-Forwarded-Host", "tooltool.example.com"),
                    ("X-Forwarded-Proto", "http"),
                ],
                true,
                ("tooltool.example.com", 80),
            ),
            (
                &[
                    ("Host", "h:1"),
                    ("X-Forwarded-Host", "a.example.com, b"),
                    ("X-Forwarded-Port", "8443"),
                ],
                true,
                ("a.example.com", 8443),
            ),
            (
                &[("Host", "h:1"), ("X-Forwarded-Host", "a.example.com:444")],
                true,
                ("a.example.com", 444),
            ),
            (
                &[("Host", "h:1"), ("X-Forwarded-Proto", "https")],
                true,
                ("h", 1),
            ),
        ];
        for (headers, trust, (host, port)) in cases {
            let mut builder = Request::builder().uri_str("/sha512/x");
            for (name, value) in *headers {
                builder = builder.header(*name, *value);
            }
            let req = builder.finish();
            assert_eq!(
                host_and_port(&req, *trust),
                ((*host).to_owned(), *port),
                "{headers:?} trust={trust}"
            );
        }
    }
}
