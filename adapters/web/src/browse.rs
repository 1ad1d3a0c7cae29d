//! The read-only pages: home, search, a batch (and its manifest), a file,
//! the static assets and the 404 page. Anyone may read them: metadata of
//! internal files is not secret, only their bytes are.

use poem::http::header;
use poem::web::{Data, Path, Query};
use poem::{IntoResponse, Request, Response, handler};
use serde::Deserialize;
use tooltool_ports::UseCaseError;

use crate::{PER_PAGE, Web, answer, digest_of, error_page, pages, text};

#[derive(Debug, Deserialize)]
pub(crate) struct Paging {
    q: Option<String>,
    before: Option<String>,
    after: Option<String>,
}

/// A cursor as given, or a 400 naming it.
pub(crate) fn before_of(before: Option<&str>) -> Result<Option<i64>, UseCaseError> {
    before
        .map(|b| {
            b.parse()
                .map_err(|_| UseCaseError::invalid("'before' must be a batch id"))
        })
        .transpose()
}

#[handler]
pub(crate) async fn home(web: Data<&Web>, req: &Request, Query(p): Query<Paging>) -> Response {
    let ctx = web.ctx(req);
    let shown = async {
        let before = before_of(p.before.as_deref())?;
        let batches = web
            .service
            .search_batches("", before, Some(PER_PAGE))
            .await?;
        Ok(pages::home(&batches, before.is_some(), &ctx))
    };
    answer(shown.await, &ctx)
}

#[handler]
pub(crate) async fn search(web: Data<&Web>, req: &Request, Query(p): Query<Paging>) -> Response {
    let ctx = web.ctx(req);
    let shown = async {
        let q = p.q.clone().unwrap_or_default();
        let before = before_of(p.before.as_deref())?;
        let after = p.after.as_deref().map(digest_of).transpose()?;
        // One section pages at a time: the other keeps its first page.
        // Both sections are asked for at once.
        let batches = async {
            match after {
                None => web
                    .service
                    .search_batches(&q, before, Some(PER_PAGE))
                    .await
                    .map(Some),
                Some(_) => Ok(None),
            }
        };
        let files = async {
            match before {
                None => web
                    .service
                    .search_files(&q, after.clone(), Some(PER_PAGE))
                    .await
                    .map(Some),
                Some(_) => Ok(None),
            }
        };
        let (batches, files) = tokio::try_join!(batches, files)?;
        Ok(pages::search(
            &q,
            batches.as_deref(),
            files.as_deref(),
            PER_PAGE,
            &ctx,
        ))
    };
    answer(shown.await, &ctx)
}

fn batch_id(id: &str) -> Result<i64, UseCaseError> {
    id.parse()
        .map_err(|_| UseCaseError::not_found(format!("No upload batch has the id {id:?}.")))
}

#[handler]
pub(crate) async fn batch_page(web: Data<&Web>, req: &Request, Path(id): Path<String>) -> Response {
    let ctx = web.ctx(req);
    let shown = async {
        let batch = web.service.get_batch(batch_id(&id)?).await?;
        Ok(pages::batch(&batch, &ctx))
    };
    answer(shown.await, &ctx)
}

#[handler]
pub(crate) async fn batch_manifest(
    web: Data<&Web>,
    req: &Request,
    Path(id): Path<String>,
) -> Response {
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
        Err(e) => {
            let ctx = web.ctx(req);
            error_page(&e, &ctx)
        }
    }
}

#[handler]
pub(crate) async fn file_page(
    web: Data<&Web>,
    req: &Request,
    Path(digest): Path<String>,
    Query(p): Query<Paging>,
) -> Response {
    let ctx = web.ctx(req);
    let shown = async {
        let digest = digest_of(&digest)?;
        let before = before_of(p.before.as_deref())?;
        let (file, uploads) = tokio::try_join!(
            web.service.get_file(&digest),
            web.service.file_uploads(&digest, before, Some(PER_PAGE)),
        )?;
        let may_manage = ctx
            .session
            .as_ref()
            .is_some_and(|s| web.service.permissions().may_manage(&s.principal));
        Ok(pages::file(
            &file,
            &uploads,
            (before.is_some(), uploads.len() == PER_PAGE),
            may_manage,
            &ctx,
        ))
    };
    answer(shown.await, &ctx)
}

#[handler]
pub(crate) fn stylesheet() -> impl IntoResponse {
    Response::builder()
        .header(header::CONTENT_TYPE, "text/css; charset=utf-8")
        .header(header::CACHE_CONTROL, "public, max-age=3600")
        .body(include_str!("site.css"))
}

#[handler]
pub(crate) fn script() -> impl IntoResponse {
    Response::builder()
        .header(header::CONTENT_TYPE, "text/javascript; charset=utf-8")
        .header(header::CACHE_CONTROL, "public, max-age=3600")
        .body(include_str!("site.js"))
}

#[handler]
pub(crate) fn not_found(web: Data<&Web>, req: &Request) -> Response {
    let ctx = web.ctx(req);
    error_page(&UseCaseError::not_found("There is no such page."), &ctx)
}
