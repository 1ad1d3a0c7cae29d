//! Security headers on every response (the original's "security"
//! extension): no MIME sniffing, no framing, HSTS when served over https,
//! and a content security policy on HTML (the redirect page, Swagger UI).

use poem::Response;
use poem::http::{HeaderValue, header};

/// Swagger UI is one page with inline script and style that fetches
/// `/openapi.json` from this origin; nothing else is needed.
const CSP: &str = "default-src 'self'; script-src 'self' 'unsafe-inline'; \
                   style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
const HSTS: &str = "max-age=31536000; includeSubDomains";

/// Sets the security headers on a response. Called by the outermost layer
/// ([`crate::observe::Observe`]) rather than being a layer of its own: a
/// layer costs every request a future and a poll, for three header inserts.
/// `https`: whether the public URL is https (HSTS is meaningless otherwise).
pub fn secure(resp: &mut Response, https: bool) {
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
    if https {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
    // A page that set its own (stricter) policy keeps it.
    if html && !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_by_content_and_scheme() {
        let mut json = Response::builder()
            .content_type("application/json")
            .finish();
        secure(&mut json, false);
        assert_eq!(json.headers()["x-content-type-options"], "nosniff");
        assert_eq!(json.headers()["x-frame-options"], "DENY");
        assert!(json.headers().get("strict-transport-security").is_none());
        assert!(json.headers().get("content-security-policy").is_none());
        let mut html = Response::builder()
            .content_type("text/html; charset=utf-8")
            .finish();
        secure(&mut html, true);
        assert_eq!(html.headers()["content-security-policy"], CSP);
        assert_eq!(html.headers()["strict-transport-security"], HSTS);
    }
}
