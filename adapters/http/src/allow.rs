//! `Allow` on 405 answers (RFC 9110 §15.5.6: a 405 MUST say which methods
//! the resource supports). poem's router knows only that the method did not
//! match, so the methods come from the OpenAPI document's paths (plus the
//! blob routes of the server's own signed URLs, which the document leaves out), read once when
//! the application is built.

use poem::http::{HeaderValue, StatusCode, header};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response};

/// A route template's segments: literal text, or `None` for a parameter
/// (`{digest}`); `tail` when the last parameter takes the rest of the path.
struct Template {
    segments: Vec<Option<String>>,
    tail: bool,
    allow: HeaderValue,
}

impl Template {
    fn matches(&self, path: &str) -> bool {
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        if self.tail {
            if parts.len() < self.segments.len() {
                return false;
            }
        } else if parts.len() != self.segments.len() {
            return false;
        }
        self.segments
            .iter()
            .zip(&parts)
            .all(|(want, got)| want.as_deref().is_none_or(|w| w == *got))
    }
}

/// The methods of every route.
#[derive(Clone)]
pub struct Allow {
    routes: std::sync::Arc<Vec<Template>>,
}

fn template(path: &str, methods: &[String], tail: bool) -> Option<Template> {
    let mut names: Vec<String> = methods.iter().map(|m| m.to_uppercase()).collect();
    // GET routes answer HEAD too (poem does it for every GET route).
    if names.iter().any(|m| m == "GET") && !names.iter().any(|m| m == "HEAD") {
        names.push("HEAD".to_owned());
    }
    let segments = path
        .trim_start_matches('/')
        .split('/')
        .map(|s| {
            (!(s.starts_with('{') || s.starts_with(':') || s.starts_with('*')))
                .then(|| s.to_owned())
        })
        .collect();
    Some(Template {
        segments,
        tail,
        allow: HeaderValue::from_str(&names.join(", ")).ok()?,
    })
}

impl Allow {
    /// From the OpenAPI document's `paths` (their methods), and `extra`
    /// routes (template, methods) it does not list; a template's last
    /// segment `*name` takes the rest of the path.
    pub fn new(document: &str, extra: &[(&str, &[&str])]) -> Self {
        let mut routes = Vec::new();
        let doc: serde_json::Value = serde_json::from_str(document).unwrap_or_default();
        if let Some(paths) = doc["paths"].as_object() {
            for (path, item) in paths {
                let methods: Vec<String> = item
                    .as_object()
                    .map(|m| m.keys().cloned().collect())
                    .unwrap_or_default();
                routes.extend(template(path, &methods, false));
            }
        }
        for (path, methods) in extra {
            let methods: Vec<String> = methods.iter().map(|m| (*m).to_owned()).collect();
            routes.extend(template(path, &methods, path.contains('*')));
        }
        Self {
            routes: std::sync::Arc::new(routes),
        }
    }

    fn of(&self, path: &str) -> Option<&HeaderValue> {
        self.routes
            .iter()
            .find(|t| t.matches(path))
            .map(|t| &t.allow)
    }
}

impl<E: Endpoint> Middleware<E> for Allow {
    type Output = AllowEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        AllowEndpoint {
            inner,
            allow: self.clone(),
        }
    }
}

pub struct AllowEndpoint<E> {
    inner: E,
    allow: Allow,
}

impl<E: Endpoint> Endpoint for AllowEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let path = req.uri().path().to_owned();
        let mut resp = self.inner.call(req).await?.into_response();
        if resp.status() == StatusCode::METHOD_NOT_ALLOWED
            && let Some(allow) = self.allow.of(&path)
        {
            resp.headers_mut().insert(header::ALLOW, allow.clone());
        }
        Ok(resp)
    }
}

/// The methods the blob routes take.
pub const BLOB_ROUTES: &[(&str, &[&str])] = &[("/blob/:region/*key", &["GET", "PUT"])];
