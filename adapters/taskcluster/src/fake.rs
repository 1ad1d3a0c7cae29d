//! A fake Taskcluster auth service for tests (feature `fake`): it answers
//! `authenticate-hawk` after validating the header with the `hawk` crate,
//! an implementation independent of ours, against a fixed list of clients
//! and the temporary credentials they issue.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use poem::web::{Data, Json};
use poem::{EndpointExt, Route, handler, post};

#[path = "fake_login.rs"]
mod login;
pub use login::FAKE_OAUTH_CLIENT;

/// `(clientId, accessToken, scopes)`.
pub type FakeClient = (String, String, Vec<String>);

#[handler]
async fn authenticate(
    Json(body): Json<serde_json::Value>,
    clients: Data<&Arc<Vec<FakeClient>>>,
) -> Json<serde_json::Value> {
    let failed =
        |message: &str| Json(serde_json::json!({"status": "auth-failed", "message": message}));
    let header = body["authorization"].as_str().unwrap_or_default();
    let Some(header) = header
        .strip_prefix("Hawk ")
        .and_then(|h| hawk::Header::from_str(h).ok())
    else {
        return failed("Bad header");
    };
    let (id, token, scopes) = match temporary(&header, &clients) {
        Ok(Some(found)) => found,
        Ok(None) => match clients
            .iter()
            .find(|(id, _, _)| header.id.as_deref() == Some(id))
        {
            Some(found) => found.clone(),
            None => return failed("Unknown clientId"),
        },
        Err(why) => return failed(why),
    };
    let method = body["method"]
        .as_str()
        .unwrap_or_default()
        .to_ascii_uppercase();
    let resource = body["resource"].as_str().unwrap_or_default();
    let host = body["host"].as_str().unwrap_or_default();
    let port = u16::try_from(body["port"].as_u64().unwrap_or_default()).unwrap_or_default();
    let Ok(key) = hawk::Key::new(token.as_bytes(), hawk::DigestAlgorithm::Sha256) else {
        return failed("Bad key");
    };
    let hash = header.hash.clone();
    let request = hawk::RequestBuilder::new(&method, host, port, resource)
        .hash(hash.as_deref())
        .request();
    if request.validate_header(&header, &key, Duration::from_secs(15 * 60)) {
        Json(
            serde_json::json!({"status": "auth-success", "clientId": id, "scopes": scopes, "scheme": "hawk"}),
        )
    } else {
        failed("ext.certificate.expiry < now")
    }
}

/// Temporary credentials, as Taskcluster checks them: the certificate in
/// Hawk's `ext`, signed with its issuer's access token, and the request
/// signed with the token the issuer derives from the certificate's seed.
/// Answers the client, its token and the certificate's scopes.
fn temporary(
    header: &hawk::Header,
    clients: &[FakeClient],
) -> Result<Option<FakeClient>, &'static str> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let Some(ext) = &header.ext else {
        return Ok(None);
    };
    let ext: serde_json::Value = STANDARD
        .decode(ext)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("ext is not base64-encoded JSON")?;
    let Some(cert) = ext.get("certificate") else {
        return Ok(None);
    };
    let id = header.id.clone().unwrap_or_default();
    let issuer = cert["issuer"].as_str();
    let (_, issuer_token, _) = clients
        .iter()
        .find(|(c, _, _)| c.as_str() == issuer.unwrap_or(&id))
        .ok_or("ext.certificate.issuer is unknown")?;
    let scopes: Vec<String> = cert["scopes"]
        .as_array()
        .ok_or("ext.certificate.scopes is missing")?
        .iter()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect();
    let text = |k: &str| {
        cert[k]
            .as_str()
            .map(str::to_owned)
            .or_else(|| cert[k].as_i64().map(|n| n.to_string()))
    };
    let (Some(seed), Some(start), Some(expiry)) = (text("seed"), text("start"), text("expiry"))
    else {
        return Err("ext.certificate is incomplete");
    };
    let lines = certificate_text(
        issuer.map(|i| (id.as_str(), i)),
        &seed,
        &start,
        &expiry,
        &scopes,
    );
    if cert["signature"].as_str() != Some(&STANDARD.encode(hmac(issuer_token, &lines))) {
        return Err("ext.certificate.signature is not valid");
    }
    let now = chrono::Utc::now().timestamp_millis();
    if !(start.parse::<i64>().unwrap_or(i64::MAX) <= now
        && now <= expiry.parse::<i64>().unwrap_or(0))
    {
        return Err("ext.certificate is not valid now");
    }
    Ok(Some((
        id,
        URL_SAFE_NO_PAD.encode(hmac(issuer_token, &seed)),
        scopes,
    )))
}

/// Temporary credentials issued by `issuer` (its id and access token) for
/// `scopes`, valid from a minute ago for an hour, as Taskcluster's clients
/// create them: `{"clientId", "accessToken", "certificate"}`, the
/// certificate as JSON text. `name`: a named temporary client, else the
/// issuer's own id.
pub fn temporary_credentials(
    issuer: (&str, &str),
    scopes: &[String],
    name: Option<&str>,
) -> serde_json::Value {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let now = chrono::Utc::now().timestamp_millis();
    let (start, expiry) = (now - 60_000, now + 3_600_000);
    let seed = format!("seed-{now}-{}", scopes.len());
    let lines = certificate_text(
        name.map(|n| (n, issuer.0)),
        &seed,
        &start.to_string(),
        &expiry.to_string(),
        scopes,
    );
    let mut certificate = serde_json::json!({
        "version": 1, "scopes": scopes, "start": start, "expiry": expiry, "seed": seed,
        "signature": STANDARD.encode(hmac(issuer.1, &lines)),
    });
    if name.is_some() {
        certificate["issuer"] = issuer.0.into();
    }
    serde_json::json!({
        "clientId": name.unwrap_or(issuer.0),
        "accessToken": URL_SAFE_NO_PAD.encode(hmac(issuer.1, &seed)),
        "certificate": certificate.to_string(),
    })
}

/// What a certificate's signature covers, as Taskcluster writes it;
/// `named`: the temporary client's id and its issuer.
fn certificate_text(
    named: Option<(&str, &str)>,
    seed: &str,
    start: &str,
    expiry: &str,
    scopes: &[String],
) -> String {
    let mut lines = vec!["version:1".to_owned()];
    if let Some((id, issuer)) = named {
        lines.push(format!("clientId:{id}"));
        lines.push(format!("issuer:{issuer}"));
    }
    lines.extend([
        format!("seed:{seed}"),
        format!("start:{start}"),
        format!("expiry:{expiry}"),
        "scopes:".to_owned(),
    ]);
    lines.extend(scopes.iter().cloned());
    lines.join("\n")
}

fn hmac(key: &str, message: &str) -> Vec<u8> {
    use hmac::Mac as _;
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(message.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

#[handler]
fn ping() -> &'static str {
    r#"{"alive": true}"#
}

#[handler]
async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(5)).await;
    "{}"
}

#[handler]
fn broken() -> poem::Response {
    poem::Response::builder()
        .status(poem::http::StatusCode::INTERNAL_SERVER_ERROR)
        .finish()
}

/// Starts the service on a random port and answers its base URL. Root
/// URLs `<base>/ok` (a working deployment, with the third-party login of
/// [`FAKE_OAUTH_CLIENT`]: each client is offered on its consent page),
/// `<base>/slow` (never answers in time) and `<base>/broken` (answers 500)
/// are served.
pub async fn start(clients: Vec<FakeClient>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let app = Route::new()
        .at("/ok/api/auth/v1/authenticate-hawk", post(authenticate))
        .at("/ok/api/auth/v1/ping", poem::get(ping))
        .at("/slow/api/auth/v1/authenticate-hawk", post(slow))
        .at("/broken/api/auth/v1/authenticate-hawk", post(broken))
        .at("/ok/login/oauth/authorize", poem::get(login::authorize))
        .at("/ok/login/oauth/decision", post(login::decision))
        .at("/ok/login/oauth/token", post(login::token))
        .at("/ok/login/oauth/credentials", poem::get(login::credentials))
        .data(Arc::new(clients))
        .data(Arc::new(login::Grants::default()));
    let acceptor = poem::listener::TcpAcceptor::from_std(listener).expect("acceptor");
    tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app));
    url
}
