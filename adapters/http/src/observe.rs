//! The outermost layer: the security headers ([`crate::hygiene`]), and one
//! log line per request, inside a span that carries the request id, so
//! every line logged while serving it carries the id too. The id comes from
//! `X-Request-Id` when the caller (or a proxy) sent a sane one, else it is
//! generated, and it is echoed in the response.
//!
//! Only the path is logged, never the query (signed URLs carry their
//! signature there) nor any header (credentials).

use std::time::Instant;

use poem::http::{HeaderValue, StatusCode};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response};
use poem_openapi::OperationId;
use tracing::Instrument as _;

/// The principal id of a request, set on the response by the auth layer.
#[derive(Debug, Clone)]
pub struct PrincipalId(pub Option<String>);

const REQUEST_ID: &str = "x-request-id";

#[derive(Clone)]
pub struct Observe {
    pub metrics: Option<std::sync::Arc<dyn tooltool_ports::Metrics>>,
    /// Whether the public URL is https (for HSTS).
    pub https: bool,
}

impl<E: Endpoint> Middleware<E> for Observe {
    type Output = ObserveEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        ObserveEndpoint {
            inner,
            metrics: self.metrics.clone(),
            https: self.https,
        }
    }
}

pub struct ObserveEndpoint<E> {
    inner: E,
    metrics: Option<std::sync::Arc<dyn tooltool_ports::Metrics>>,
    https: bool,
}

/// A caller's id is kept when it is short printable ASCII (it ends up in
/// logs and headers); anything else is replaced. The value is the header
/// the response echoes (a kept one is shared, not copied).
fn request_id(req: &Request) -> HeaderValue {
    req.headers()
        .get(REQUEST_ID)
        .filter(|id| {
            let id = id.as_bytes();
            !id.is_empty() && id.len() <= 128 && id.iter().all(u8::is_ascii_graphic)
        })
        .cloned()
        .unwrap_or_else(generated_id)
}

/// 32 lower-case hex digits of 128 unpredictable bits.
fn generated_id() -> HeaderValue {
    use std::hash::{BuildHasher, RandomState};
    // Two independent SipHash keys make 128 unpredictable bits without
    // another dependency.
    let a = RandomState::new().hash_one(Instant::now());
    let b = RandomState::new().hash_one(std::thread::current().id());
    let bits = (u128::from(a) << 64) | u128::from(b);
    let mut hex = [0u8; 32];
    for (i, digit) in hex.iter_mut().enumerate() {
        *digit = b"0123456789abcdef"[((bits >> (124 - 4 * i)) & 0xf) as usize];
    }
    HeaderValue::from_bytes(&hex).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

/// The route template of requests outside the OpenAPI operations.
fn route_of(path: &str, status: StatusCode) -> &'static str {
    if path.starts_with("/blob/") {
        "blob"
    } else if path == "/openapi.json" {
        "openapi"
    } else if path.starts_with("/docs") {
        "docs"
    } else if path == "/metrics" {
        "metrics"
    } else if status == StatusCode::NOT_FOUND {
        "unmatched"
    } else {
        "other"
    }
}

/// The digest a path names (`…/sha512/<digest>…`), for the log line.
fn digest_of(path: &str) -> Option<&str> {
    let rest = path.split_once("/sha512/")?.1;
    let digest = rest.split('/').next()?;
    tooltool_domain::Digest::parse(digest).ok().map(|_| digest)
}

impl<E: Endpoint> Endpoint for ObserveEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let id = request_id(&req);
        // Printable ASCII, as checked or generated.
        let id_text = id.to_str().unwrap_or_default();
        let method = req.method().clone();
        // Shares the request line's buffer: no copy of the path.
        let uri = req.uri().clone();
        let path = uri.path();
        let span = tracing::info_span!("request", request_id = id_text);
        let started = Instant::now();
        let mut resp = match self.inner.call(req).instrument(span.clone()).await {
            Ok(r) => r.into_response(),
            Err(e) => e.into_response(),
        };
        crate::hygiene::secure(&mut resp, self.https);
        let seconds = started.elapsed().as_secs_f64();
        let status = resp.status();
        let route = resp
            .data::<OperationId>()
            .map_or_else(|| route_of(path, status), |op| op.0);
        let principal = resp
            .data::<PrincipalId>()
            .and_then(|p| p.0.clone())
            .unwrap_or_default();
        let _entered = span.enter();
        let latency_ms = (seconds * 1000.0 * 100.0).round() / 100.0;
        let digest = digest_of(path).unwrap_or_default();
        if status.is_server_error() {
            // An error: reported to Sentry with what identifies the request
            // (never its query or headers).
            tracing::error!(
                target: "tooltool::request",
                request_id = id_text,
                %method,
                route,
                status = status.as_u16(),
                latency_ms,
                principal = %principal,
                digest,
                "request failed with a server error"
            );
        } else {
            tracing::info!(
                target: "tooltool::request",
                %method,
                route,
                status = status.as_u16(),
                latency_ms,
                principal = %principal,
                digest,
                "request"
            );
        }
        if let Some(m) = &self.metrics {
            m.request(route, status.as_u16(), seconds);
        }
        resp.headers_mut().insert(REQUEST_ID, id);
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_and_routes_of_paths() {
        let d = "a".repeat(128);
        assert_eq!(digest_of(&format!("/sha512/{d}")), Some(d.as_str()));
        assert_eq!(digest_of(&format!("/file/sha512/{d}")), Some(d.as_str()));
        assert_eq!(
            digest_of(&format!("/blob/local/sha512/{d}")),
            Some(d.as_str())
        );
        assert_eq!(digest_of("/sha512/invalid"), None);
        assert_eq!(digest_of("/upload"), None);
        assert_eq!(route_of("/blob/east/sha512/x", StatusCode::OK), "blob");
        assert_eq!(route_of("/nope", StatusCode::NOT_FOUND), "unmatched");
    }

    #[test]
    fn request_ids_are_kept_only_when_sane() {
        let with = |v: &str| Request::builder().header(REQUEST_ID, v).finish();
        assert_eq!(request_id(&with("abc-123")), "abc-123");
        assert_ne!(request_id(&with("has space")), "has space");
        assert_ne!(
            request_id(&with(&"x".repeat(200))),
            "x".repeat(200).as_str()
        );
        let generated = request_id(&Request::builder().finish());
        assert_eq!(generated.len(), 32);
        assert!(
            generated
                .as_bytes()
                .iter()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b)),
            "{generated:?}"
        );
        assert_ne!(generated, request_id(&Request::builder().finish()));
    }
}
