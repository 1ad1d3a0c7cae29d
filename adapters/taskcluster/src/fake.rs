//! A fake Taskcluster auth service for tests (feature `fake`): it answers
//! `authenticate-hawk` after validating the header with the `hawk` crate,
//! an implementation independent of ours, against a fixed list of clients.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use poem::web::{Data, Json};
use poem::{EndpointExt, Route, handler, post};

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
    let Some((id, token, scopes)) = clients
        .iter()
        .find(|(id, _, _)| header.id.as_deref() == Some(id))
    else {
        return failed("Unknown clientId");
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
/// URLs `<base>/ok` (a working deployment), `<base>/slow` (never answers in
/// time) and `<base>/broken` (answers 500) are served.
pub async fn start(clients: Vec<FakeClient>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let app = Route::new()
        .at("/ok/api/auth/v1/authenticate-hawk", post(authenticate))
        .at("/ok/api/auth/v1/ping", poem::get(ping))
        .at("/slow/api/auth/v1/authenticate-hawk", post(slow))
        .at("/broken/api/auth/v1/authenticate-hawk", post(broken))
        .data(Arc::new(clients));
    let acceptor = poem::listener::TcpAcceptor::from_std(listener).expect("acceptor");
    tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app));
    url
}
