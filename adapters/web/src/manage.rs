//! What a session may do with a file: download it (the same 302 to a
//! short-lived signed URL as the API's `GET /sha512/<digest>`, decided for
//! the session's principal, so internal files work once signed in), and,
//! with the `manage` scope, change its visibility or delete every stored
//! copy, each after a confirmation page.

use poem::http::{StatusCode, header};
use poem::web::{Data, Path};
use poem::{Body, Request, Response, handler};
use serde::Deserialize;
use tooltool_domain::{PatchOp, Visibility};
use tooltool_ports::UseCaseError;

use crate::account::forged;
use crate::{Web, answer, digest_of, error_page, forms, read_form, see_other};

#[handler]
pub(crate) async fn download(
    web: Data<&Web>,
    req: &Request,
    Path(digest): Path<String>,
) -> Response {
    let ctx = web.ctx(req);
    let found = async {
        let digest = digest_of(&digest)?;
        web.service.download(&ctx.principal(), &digest, None).await
    };
    match found.await {
        Ok(url) => Response::builder()
            .status(StatusCode::FOUND)
            .header(header::LOCATION, url)
            .header(header::CACHE_CONTROL, "no-store")
            .finish(),
        Err(e) => error_page(&e, &ctx),
    }
}

/// What a manage form asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Action {
    MakePublic,
    MakeInternal,
    DeleteCopies,
}

impl Action {
    fn ops(self) -> Vec<PatchOp> {
        match self {
            Self::MakePublic => vec![PatchOp::SetVisibility(Visibility::Public)],
            Self::MakeInternal => vec![PatchOp::SetVisibility(Visibility::Internal)],
            Self::DeleteCopies => vec![PatchOp::DeleteInstances],
        }
    }

    pub(crate) fn value(self) -> &'static str {
        match self {
            Self::MakePublic => "make-public",
            Self::MakeInternal => "make-internal",
            Self::DeleteCopies => "delete-copies",
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct ManageForm {
    #[serde(default)]
    csrf: String,
    action: Action,
    /// Set by the confirmation page's button.
    #[serde(default)]
    confirmed: bool,
}

#[handler]
pub(crate) async fn manage(
    web: Data<&Web>,
    req: &Request,
    Path(digest): Path<String>,
    body: Body,
) -> Response {
    let ctx = web.ctx(req);
    let done = async {
        let digest = digest_of(&digest)?;
        let form: ManageForm = read_form(req, body).await?;
        let session = ctx
            .session
            .as_ref()
            .filter(|s| s.accepts(&form.csrf))
            .ok_or_else(forged)?;
        if !form.confirmed {
            // Nothing changes before the second step: the page says what
            // will, for the file as it is now.
            let file = web.service.get_file(&digest).await?;
            return Ok(Err(forms::confirm(&file, form.action, &session.csrf, &ctx)));
        }
        web.service
            .patch_file(&session.principal, &digest, form.action.ops())
            .await?;
        Ok::<_, UseCaseError>(Ok(format!("/ui/files/{digest}")))
    };
    match done.await {
        Ok(Ok(location)) => see_other(&location, None),
        Ok(Err(page)) => answer(Ok(page), &ctx),
        Err(e) => error_page(&e, &ctx),
    }
}
