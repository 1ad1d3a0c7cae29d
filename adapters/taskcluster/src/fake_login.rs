//! The fake deployment's third-party login (feature `fake`): the three
//! OAuth2 endpoints of Taskcluster's authorization-code flow, with a
//! consent page that lets the browser pick which fake client signs in.
//! Codes are spent once; the credentials handed out are temporary ones
//! issued by the chosen client, as a real deployment's are short-lived.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use poem::http::StatusCode;
use poem::web::{Data, Form, Json, Query};
use poem::{IntoResponse, Request, Response, handler};
use serde::Deserialize;

use crate::fake::{FakeClient, temporary_credentials};

/// The OAuth2 client the fake knows: `(client_id, client_secret)`.
pub const FAKE_OAUTH_CLIENT: (&str, &str) = ("tooltool-web", "tooltool-web-secret");

#[derive(Default)]
pub(crate) struct Grants {
    /// code → (client index, redirect_uri)
    codes: Mutex<HashMap<String, (usize, String)>>,
    /// access token → client index
    tokens: Mutex<HashMap<String, usize>>,
}

fn random() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn refused(status: StatusCode, error: &str) -> Response {
    Response::builder()
        .status(status)
        .content_type("application/json")
        .body(serde_json::json!({ "error": error }).to_string())
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('"', "&quot;")
}

#[handler]
pub(crate) fn authorize(
    Query(q): Query<HashMap<String, String>>,
    clients: Data<&Arc<Vec<FakeClient>>>,
) -> Response {
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or_default();
    if get("response_type") != "code" || get("client_id") != FAKE_OAUTH_CLIENT.0 {
        return refused(StatusCode::BAD_REQUEST, "unauthorized_client");
    }
    let buttons: String = clients
        .iter()
        .enumerate()
        .map(|(i, (id, _, _))| {
            format!(
                r#"<button type="submit" name="client" value="{i}">Grant as {}</button>"#,
                escape(id)
            )
        })
        .collect();
    let page = format!(
        r#"<!DOCTYPE html><html lang="en"><head><title>Fake Taskcluster</title></head><body><main>
<h1>Grant {} the scopes {}</h1>
<form method="post" action="decision">
<input type="hidden" name="redirect_uri" value="{}"><input type="hidden" name="state" value="{}">
{buttons}</form></main></body></html>"#,
        escape(get("client_id")),
        escape(get("scope")),
        escape(get("redirect_uri")),
        escape(get("state")),
    );
    Response::builder()
        .content_type("text/html; charset=utf-8")
        .body(page)
}

#[derive(Deserialize)]
pub(crate) struct Decision {
    client: usize,
    redirect_uri: String,
    state: String,
}

#[handler]
pub(crate) fn decision(Form(d): Form<Decision>, grants: Data<&Arc<Grants>>) -> Response {
    let code = random();
    grants
        .codes
        .lock()
        .expect("codes")
        .insert(code.clone(), (d.client, d.redirect_uri.clone()));
    let Ok(mut back) = reqwest::Url::parse(&d.redirect_uri) else {
        return refused(StatusCode::BAD_REQUEST, "invalid_request");
    };
    back.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &d.state);
    Response::builder()
        .status(StatusCode::FOUND)
        .header("Location", back.as_str())
        .finish()
}

#[derive(Deserialize)]
pub(crate) struct TokenRequest {
    grant_type: String,
    code: String,
    redirect_uri: String,
    client_id: String,
    client_secret: Option<String>,
}

#[handler]
pub(crate) fn token(Form(t): Form<TokenRequest>, grants: Data<&Arc<Grants>>) -> Response {
    if t.client_id != FAKE_OAUTH_CLIENT.0 || t.client_secret.as_deref() != Some(FAKE_OAUTH_CLIENT.1)
    {
        return refused(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    if t.grant_type != "authorization_code" {
        return refused(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    // Spent whatever happens next.
    let granted = grants.codes.lock().expect("codes").remove(&t.code);
    let Some((client, redirect_uri)) = granted else {
        return refused(StatusCode::BAD_REQUEST, "invalid_grant");
    };
    if redirect_uri != t.redirect_uri {
        return refused(StatusCode::BAD_REQUEST, "invalid_grant");
    }
    let access_token = random();
    grants
        .tokens
        .lock()
        .expect("tokens")
        .insert(access_token.clone(), client);
    Json(serde_json::json!({
        "access_token": access_token, "token_type": "Bearer", "expires_in": 3600,
    }))
    .into_response()
}

#[handler]
pub(crate) fn credentials(
    req: &Request,
    grants: Data<&Arc<Grants>>,
    clients: Data<&Arc<Vec<FakeClient>>>,
) -> Response {
    let bearer = req
        .header("Authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or_default();
    let client = grants.tokens.lock().expect("tokens").get(bearer).copied();
    let Some((id, access_token, scopes)) = client.and_then(|i| clients.get(i)) else {
        return refused(StatusCode::UNAUTHORIZED, "invalid_token");
    };
    let expires = chrono::Utc::now() + chrono::Duration::hours(1);
    Json(serde_json::json!({
        "credentials": temporary_credentials((id, access_token), scopes, None),
        "expires": expires.to_rfc3339(),
    }))
    .into_response()
}
