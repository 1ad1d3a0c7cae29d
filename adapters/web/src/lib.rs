//! The web interface: a second driving adapter on the driving port
//! ([`ToolTool`]), served by the same application as the JSON API (the
//! HTTP front hands it the paths of [`is_browser_path`], before the API's
//! own authentication: the session cookie is honoured here only, and the
//! API never reads it). Pages are rendered on the server from maud
//! templates (checked at compile time, escaped by default), work without
//! JavaScript, and load nothing but this server's stylesheet and script;
//! every answer, errors included, is HTML.
//!
//! Files: `lib.rs` (routes, the shared answers), `browse.rs` (the
//! read-only pages' handlers), `account.rs` (sign-in with a token or
//! Taskcluster, who am I, sign-out), `manage.rs` (downloads, visibility
//! changes and deletions with their confirmation), `session.rs` (the
//! signed session cookie and its CSRF token), `pages.rs` and `forms.rs`
//! (the pages), `text.rs` (sizes, dates, bug links, highlighting,
//! manifests), `site.css`, `site.js` (copy buttons).

mod account;
mod browse;
mod forms;
mod manage;
mod pages;
mod session;
mod text;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem::http::{StatusCode, header};
use poem::{Endpoint, EndpointExt, Request, Response, Route, get, post};
use tooltool_domain::Digest;
use tooltool_ports::{ErrorKind, ToolTool, UseCaseError};

pub use session::Sessions;

/// What the pages need besides the use cases.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// A bug number is appended to this to link `Bug NNNN` in messages.
    pub bug_url: String,
    /// The service's public URL, without a trailing slash: the sign-in
    /// authority sends browsers back to it.
    pub public_url: String,
    pub sessions: Sessions,
}

/// Whether the browser routes answer `path`: the home page and `/ui/…`.
pub fn is_browser_path(path: &str) -> bool {
    path == "/" || path == "/ui" || path.starts_with("/ui/")
}

/// Every browser route; unknown `/ui/…` paths answer the HTML 404.
pub fn routes(
    service: Arc<dyn ToolTool>,
    config: WebConfig,
) -> impl Endpoint<Output = Response> + 'static {
    Route::new()
        .at("/", get(browse::home))
        .at("/ui/search", get(browse::search))
        .at("/ui/batches/:id", get(browse::batch_page))
        .at("/ui/batches/:id/manifest.tt", get(browse::batch_manifest))
        .at("/ui/files/:digest", get(browse::file_page))
        .at("/ui/files/:digest/download", get(manage::download))
        .at("/ui/files/:digest/manage", post(manage::manage))
        .at(
            "/ui/sign-in",
            get(account::sign_in_page).post(account::sign_in),
        )
        .at("/ui/sign-in/taskcluster", get(account::taskcluster))
        .at(
            "/ui/sign-in/taskcluster/callback",
            get(account::taskcluster_callback),
        )
        .at("/ui/sign-out", post(account::sign_out))
        .at("/ui/me", get(account::me))
        .at("/ui/static/site.css", get(browse::stylesheet))
        .at("/ui/static/site.js", get(browse::script))
        .at("/ui", get(browse::not_found))
        .at("/ui/*rest", get(browse::not_found))
        .data(Web {
            service,
            config: Arc::new(config),
        })
}

#[derive(Clone)]
struct Web {
    service: Arc<dyn ToolTool>,
    config: Arc<WebConfig>,
}

impl Web {
    /// Who is looking (the session of the request's cookie, if valid), now.
    fn ctx(&self, req: &Request) -> Ctx<'_> {
        let now = Utc::now();
        Ctx {
            config: &self.config,
            session: self.config.sessions.read(req, now),
            now,
        }
    }
}

/// What every page is rendered with: who is looking, and when.
struct Ctx<'a> {
    config: &'a WebConfig,
    session: Option<session::Session>,
    now: DateTime<Utc>,
}

impl Ctx<'_> {
    /// The signed-in principal's id.
    fn signed_in(&self) -> Option<&str> {
        self.session.as_ref().and_then(|s| s.principal.id())
    }

    /// Whom the use cases see: the session's principal, or anonymous.
    fn principal(&self) -> tooltool_domain::Principal {
        self.session
            .as_ref()
            .map_or_else(tooltool_domain::Principal::anonymous, |s| {
                s.principal.clone()
            })
    }
}

/// Pages load only this origin's stylesheet and script (no inline script
/// or style, so no `unsafe-inline`), and post forms only here.
const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn html(status: StatusCode, page: maud::Markup) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::CONTENT_SECURITY_POLICY, CSP)
        .header(header::CACHE_CONTROL, "no-store")
        .body(page.into_string())
}

/// The status of a use-case error on a page.
fn status_of(e: &UseCaseError) -> StatusCode {
    match e.kind() {
        ErrorKind::Invalid | ErrorKind::OutOfRange => StatusCode::BAD_REQUEST,
        ErrorKind::NotAuthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::Denied => StatusCode::FORBIDDEN,
        ErrorKind::NotFound | ErrorKind::Closed => StatusCode::NOT_FOUND,
        ErrorKind::NotYet => StatusCode::CONFLICT,
        ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::OutOfSpace | ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// What a page says of an error: the use case's words for the caller's
/// mistakes, a generic sentence for the server's own.
fn shown(e: &UseCaseError) -> &str {
    if e.kind().is_server_fault() {
        "The server could not answer this now; try again in a moment."
    } else {
        e.message()
    }
}

/// The page of a refusal or a fault.
fn error_page(e: &UseCaseError, ctx: &Ctx<'_>) -> Response {
    let status = status_of(e);
    html(status, pages::error(status, shown(e), ctx))
}

/// A page, or the error page of why not.
fn answer(page: Result<maud::Markup, UseCaseError>, ctx: &Ctx<'_>) -> Response {
    match page {
        Ok(page) => html(StatusCode::OK, page),
        Err(e) => error_page(&e, ctx),
    }
}

/// `303 See Other` to a page of this site (after a form), optionally
/// setting or clearing the session cookie.
fn see_other(location: &str, cookie: Option<String>) -> Response {
    let mut builder = Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, location)
        .header(header::CACHE_CONTROL, "no-store");
    if let Some(cookie) = cookie {
        builder = builder.header(header::SET_COOKIE, cookie);
    }
    builder.finish()
}

fn digest_of(text: &str) -> Result<Digest, UseCaseError> {
    Digest::parse(text).map_err(|e| UseCaseError::invalid(e.to_string()))
}

/// Batches and files a page lists.
const PER_PAGE: usize = 25;

/// Largest form body: a pasted token, a CSRF token and a few words.
const MAX_FORM: usize = 16 * 1024;

/// A form of this site's pages, within [`MAX_FORM`].
async fn read_form<T: serde::de::DeserializeOwned>(
    req: &Request,
    body: poem::Body,
) -> Result<T, UseCaseError> {
    let is_form = req
        .content_type()
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(UseCaseError::invalid(
            "This address takes the forms of this site's pages only.",
        ));
    }
    let bytes = body.into_bytes_limit(MAX_FORM).await.map_err(|e| match e {
        poem::error::ReadBodyError::PayloadTooLarge => {
            UseCaseError::too_large(format!("A form may not exceed {MAX_FORM} bytes."))
        }
        _ => UseCaseError::invalid("The form could not be read."),
    })?;
    serde_urlencoded::from_bytes(&bytes)
        .map_err(|_| UseCaseError::invalid("The form could not be read."))
}
