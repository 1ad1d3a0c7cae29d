//! Signing in and out: with a pasted Bearer token (checked once by the
//! same authenticator as the API's, then dropped), or with Taskcluster's
//! OAuth2 authorization-code flow when the service has a sign-in
//! authority; "who am I"; sign-out. Every form carries the session's CSRF
//! token, and the Taskcluster flow's `state` is derived from it, so a
//! sign-in can only finish in the browser that started it.

use poem::web::{Data, Query};
use poem::{Body, Request, Response, handler};
use serde::Deserialize;
use tooltool_domain::Principal;
use tooltool_ports::{AuthRequest, UseCaseError};

use crate::forms;
use crate::session::Session;
use crate::{Ctx, Web, answer, error_page, html, read_form, see_other};

/// Where Taskcluster sends the browser back to.
fn callback_url(web: &Web) -> String {
    format!("{}/ui/sign-in/taskcluster/callback", web.config.public_url)
}

/// The session a page with a form needs: the visitor's, or a new
/// anonymous one (whose cookie the page must set).
fn form_session(web: &Web, ctx: &Ctx<'_>) -> Result<(Session, Option<String>), UseCaseError> {
    match &ctx.session {
        Some(s) => Ok((s.clone(), None)),
        None => {
            let (session, cookie) = web
                .config
                .sessions
                .start(&Principal::anonymous(), web.service.permissions(), ctx.now)
                .map_err(|e| UseCaseError::invalid(e.to_string()))?;
            Ok((session, Some(cookie)))
        }
    }
}

fn with_cookie(mut response: Response, cookie: Option<String>) -> Response {
    if let Some(cookie) = cookie
        && let Ok(value) = cookie.parse()
    {
        response
            .headers_mut()
            .insert(poem::http::header::SET_COOKIE, value);
    }
    response
}

/// The sign-in page, with `problem` said above the form when a sign-in
/// just failed.
fn sign_in_form(web: &Web, ctx: &Ctx<'_>, problem: Option<&UseCaseError>) -> Response {
    let (session, cookie) = match form_session(web, ctx) {
        Ok(found) => found,
        Err(e) => return error_page(&e, ctx),
    };
    let offers_taskcluster = web
        .service
        .sign_in_url(&callback_url(web), "probe")
        .is_some();
    let status = problem.map_or(poem::http::StatusCode::OK, crate::status_of);
    let page = forms::sign_in(
        &session.csrf,
        offers_taskcluster,
        problem.map(crate::shown),
        ctx,
    );
    with_cookie(html(status, page), cookie)
}

#[handler]
pub(crate) fn sign_in_page(web: Data<&Web>, req: &Request) -> Response {
    let ctx = web.ctx(req);
    sign_in_form(&web, &ctx, None)
}

#[derive(Deserialize)]
pub(crate) struct TokenForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
}

/// The refusal of a form that does not carry its session's token.
pub(crate) fn forged() -> UseCaseError {
    UseCaseError::denied(
        "This form has expired or was not sent from this site's page; go back, reload the page and try again.",
    )
}

/// Starts a signed-in session for `principal`: to "who am I".
fn signed_in(web: &Web, ctx: &Ctx<'_>, principal: &Principal) -> Response {
    match web
        .config
        .sessions
        .start(principal, web.service.permissions(), ctx.now)
    {
        Ok((_, cookie)) => {
            tracing::info!(principal = ?principal.id(), "signed in to the web interface");
            see_other("/ui/me", Some(cookie))
        }
        Err(e) => error_page(&UseCaseError::invalid(e.to_string()), ctx),
    }
}

#[handler]
pub(crate) async fn sign_in(web: Data<&Web>, req: &Request, body: Body) -> Response {
    let ctx = web.ctx(req);
    let form: TokenForm = match read_form(req, body).await {
        Ok(form) => form,
        Err(e) => return error_page(&e, &ctx),
    };
    if !ctx.session.as_ref().is_some_and(|s| s.accepts(&form.csrf)) {
        return error_page(&forged(), &ctx);
    }
    // A pasted token may come with its scheme word, or without.
    let token = form.token.trim();
    let token = token
        .strip_prefix("Bearer ")
        .or_else(|| token.strip_prefix("bearer "))
        .unwrap_or(token)
        .trim();
    if token.is_empty() {
        let e = UseCaseError::invalid("Paste a token to sign in with.");
        return sign_in_form(&web, &ctx, Some(&e));
    }
    let request = AuthRequest {
        method: "POST".into(),
        resource: "/ui/sign-in".into(),
        credentials: format!("Bearer {token}"),
        ..AuthRequest::default()
    };
    match web.service.authenticate(&request).await {
        Ok(principal) => signed_in(&web, &ctx, &principal),
        Err(e) => sign_in_form(&web, &ctx, Some(&e)),
    }
}

/// The `state` of a Taskcluster sign-in: bound to the session's token
/// (never the token itself, which must not travel in URLs).
fn state_of(session: &Session) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(format!("oauth-state\n{}", session.csrf));
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

#[handler]
pub(crate) fn taskcluster(web: Data<&Web>, req: &Request) -> Response {
    let ctx = web.ctx(req);
    let (session, cookie) = match form_session(&web, &ctx) {
        Ok(found) => found,
        Err(e) => return error_page(&e, &ctx),
    };
    match web
        .service
        .sign_in_url(&callback_url(&web), &state_of(&session))
    {
        Some(url) => see_other(&url, cookie),
        None => error_page(
            &UseCaseError::not_found("This server does not sign in with Taskcluster."),
            &ctx,
        ),
    }
}

#[derive(Deserialize)]
pub(crate) struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

#[handler]
pub(crate) async fn taskcluster_callback(
    web: Data<&Web>,
    req: &Request,
    Query(back): Query<Callback>,
) -> Response {
    let ctx = web.ctx(req);
    if let Some(error) = back.error {
        // The user declined, or Taskcluster refused: say so, in its word.
        let word: String = error
            .chars()
            .take(64)
            .filter(char::is_ascii_graphic)
            .collect();
        let e =
            UseCaseError::not_authenticated(format!("Taskcluster did not sign you in ({word})."));
        return sign_in_form(&web, &ctx, Some(&e));
    }
    let ours = ctx.session.as_ref().map(state_of);
    let (Some(code), Some(state)) = (back.code, back.state) else {
        return error_page(
            &UseCaseError::invalid("This address needs the code and state Taskcluster sends."),
            &ctx,
        );
    };
    if ours.as_deref() != Some(state.as_str()) {
        return error_page(&forged(), &ctx);
    }
    match web.service.sign_in(&code, &callback_url(&web)).await {
        Ok(principal) => signed_in(&web, &ctx, &principal),
        Err(e) => sign_in_form(&web, &ctx, Some(&e)),
    }
}

#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

#[handler]
pub(crate) async fn sign_out(web: Data<&Web>, req: &Request, body: Body) -> Response {
    let ctx = web.ctx(req);
    let form: CsrfForm = match read_form(req, body).await {
        Ok(form) => form,
        Err(e) => return error_page(&e, &ctx),
    };
    // Without a session (it expired) there is nothing to end: clear anyway.
    if ctx.session.as_ref().is_none_or(|s| s.accepts(&form.csrf)) {
        see_other("/", Some(web.config.sessions.end()))
    } else {
        error_page(&forged(), &ctx)
    }
}

#[handler]
pub(crate) fn me(web: Data<&Web>, req: &Request) -> Response {
    let ctx = web.ctx(req);
    let permissions = web.service.permissions();
    answer(Ok(forms::me(permissions, &ctx)), &ctx)
}
