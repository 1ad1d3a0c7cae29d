//! The web interface: a second driving adapter on the driving port
//! ([`ToolTool`]), served by the same application as the JSON API (the
//! HTTP front hands it the paths of [`is_browser_path`]). Pages are
//! rendered on the server from maud templates (checked at compile time,
//! escaped by default), work without JavaScript, and load nothing but this
//! server's stylesheet; every answer, errors included, is HTML.
//!
//! Files: `lib.rs` (routes, the error page of a use-case error),
//! `pages.rs` (the pages), `text.rs` (sizes, bug links, highlighting,
//! manifests), `site.css`.

mod pages;
mod text;

use std::sync::Arc;

use poem::http::{StatusCode, header};
use poem::web::{Data, Path, Query};
use poem::{Endpoint, EndpointExt, IntoResponse, Response, Route, get, handler};
use serde::Deserialize;
use tooltool_domain::Digest;
use tooltool_ports::{ErrorKind, ToolTool, UseCaseError};

/// What the pages need besides the use cases.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// A bug number is appended to this to link `Bug NNNN` in messages.
    pub bug_url: String,
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
        .at("/", get(home))
        .at("/ui/search", get(search))
        .at("/ui/batches/:id", get(batch_page))
        .at("/ui/batches/:id/manifest.tt", get(batch_manifest))
        .at("/ui/files/:digest", get(file_page))
        .at("/ui/static/site.css", get(stylesheet))
        .at("/ui", get(not_found))
        .at("/ui/*rest", get(not_found))
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

/// Pages have no script and load only this origin's stylesheet.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn html(status: StatusCode, page: maud::Markup) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::CONTENT_SECURITY_POLICY, CSP)
        .header(header::CACHE_CONTROL, "no-store")
        .body(page.into_string())
}

/// The page of a refusal or a fault: the use case's words for the
/// caller's mistakes, a generic sentence for the server's own.
fn error_page(e: &UseCaseError) -> Response {
    let status = match e.kind() {
        ErrorKind::Invalid | ErrorKind::OutOfRange => StatusCode::BAD_REQUEST,
        ErrorKind::NotAuthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::Denied => StatusCode::FORBIDDEN,
        ErrorKind::NotFound | ErrorKind::Closed => StatusCode::NOT_FOUND,
        ErrorKind::NotYet => StatusCode::CONFLICT,
        ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::OutOfSpace | ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let detail = if e.kind().is_server_fault() {
        "The server could not answer this now; try again in a moment."
    } else {
        e.message()
    };
    html(status, pages::error(status, detail))
}

/// A page, or the error page of why not.
fn answer(page: Result<maud::Markup, UseCaseError>) -> Response {
    match page {
        Ok(page) => html(StatusCode::OK, page),
        Err(e) => error_page(&e),
    }
}

fn digest_of(text: &str) -> Result<Digest, UseCaseError> {
    Digest::parse(text).map_err(|e| UseCaseError::invalid(e.to_string()))
}

#[derive(Debug, Deserialize)]
struct Paging {
    q: Option<String>,
    before: Option<String>,
    after: Option<String>,
}

/// A cursor as given, or a 400 naming it.
fn before_of(p: &Paging) -> Result<Option<i64>, UseCaseError> {
    p.before
        .as_deref()
        .map(|b| {
            b.parse()
                .map_err(|_| UseCaseError::invalid("'before' must be a batch id"))
        })
        .transpose()
}

/// Batches and files a page lists.
const PER_PAGE: usize = 25;

#[handler]
async fn home(web: Data<&Web>, Query(p): Query<Paging>) -> Response {
    let shown = async {
        let before = before_of(&p)?;
        let batches = web
            .service
            .search_batches("", before, Some(PER_PAGE))
            .await?;
        Ok::<_, UseCaseError>(pages::home(&batches, &web.config))
    };
    answer(shown.await)
}

#[handler]
async fn search(web: Data<&Web>, Query(p): Query<Paging>) -> Response {
    let shown = async {
        let q = p.q.clone().unwrap_or_default();
        let before = before_of(&p)?;
        let after = p.after.as_deref().map(digest_of).transpose()?;
        // One section pages at a time: the other keeps its first page.
        let batches = match after {
            None => Some(
                web.service
                    .search_batches(&q, before, Some(PER_PAGE))
                    .await?,
            ),
            Some(_) => None,
        };
        let files = match before {
            None => Some(web.service.search_files(&q, after, Some(PER_PAGE)).await?),
            Some(_) => None,
        };
        Ok::<_, UseCaseError>(pages::search(
            &q,
            batches.as_deref(),
            files.as_deref(),
            PER_PAGE,
            &web.config,
        ))
    };
    answer(shown.await)
}

fn batch_id(id: &str) -> Result<i64, UseCaseError> {
    id.parse()
        .map_err(|_| UseCaseError::not_found(format!("No upload batch has the id {id:?}.")))
}

#[handler]
async fn batch_page(web: Data<&Web>, Path(id): Path<String>) -> Response {
    let shown = async {
        let batch = web.service.get_batch(batch_id(&id)?).await?;
        Ok::<_, UseCaseError>(pages::batch(&batch, &web.config))
    };
    answer(shown.await)
}

#[handler]
async fn batch_manifest(web: Data<&Web>, Path(id): Path<String>) -> Response {
    let found = async {
        let id = batch_id(&id)?;
        Ok::<_, UseCaseError>((id, web.service.get_batch(id).await?))
    };
    match found.await {
        Ok((id, batch)) => Response::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .header(
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"batch-{id}-manifest.tt\""),
            )
            .body(text::manifest(&batch.files)),
        Err(e) => error_page(&e),
    }
}

#[handler]
async fn file_page(web: Data<&Web>, Path(digest): Path<String>) -> Response {
    let shown = async {
        let file = web.service.get_file(&digest_of(&digest)?).await?;
        Ok::<_, UseCaseError>(pages::file(&file))
    };
    answer(shown.await)
}

#[handler]
fn stylesheet() -> impl IntoResponse {
    Response::builder()
        .header(header::CONTENT_TYPE, "text/css; charset=utf-8")
        .header(header::CACHE_CONTROL, "public, max-age=3600")
        .body(include_str!("site.css"))
}

#[handler]
fn not_found() -> Response {
    error_page(&UseCaseError::not_found("There is no such page."))
}
