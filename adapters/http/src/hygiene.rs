//! Security headers on every response (the original's "security"
//! extension): no MIME sniffing, no framing, HSTS when served over https,
//! and a content security policy on HTML (the redirect page, Swagger UI).

use poem::http::{HeaderValue, header};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response};

/// Swagger UI is one page with inline script and style that fetches
/// `/openapi.json` from this origin; nothing else is needed.
const CSP: &str = "default-src 'self'; script-src 'self' 'unsafe-inline'; \
                   style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
const HSTS: &str = "max-age=31536000; includeSubDomains";

#[derive(Clone, Copy)]
pub struct Hygiene {
    /// Whether the public URL is https (HSTS is meaningless otherwise).
    pub https: bool,
}

impl<E: Endpoint> Middleware<E> for Hygiene {
    type Output = HygieneEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        HygieneEndpoint {
            inner,
            https: self.https,
        }
    }
}

pub struct HygieneEndpoint<E> {
    inner: E,
    https: bool,
}

impl<E: Endpoint> Endpoint for HygieneEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let mut resp = self.inner.call(req).await?.into_response();
        let html = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/html"));
        let headers = resp.headers_mut();
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        if self.https {
            headers.insert(
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static(HSTS),
            );
        }
        if html {
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            );
        }
        Ok(resp)
    }
}
