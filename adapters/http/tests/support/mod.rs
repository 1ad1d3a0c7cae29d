//! The HTTP adapter in isolation: the whole poem application over a mock
//! of the driving port, no socket, no store.

use std::sync::Arc;

use poem::Endpoint;
use poem::test::TestClient;
use serde_json::Value;
use tooltool_domain::{ContentHasher, Digest, Permissions};
use tooltool_ports::MockToolTool;

pub const LIMIT: usize = 4096;

/// The application over `service`: bodies up to [`LIMIT`] bytes.
pub fn client(mut service: MockToolTool) -> TestClient<impl Endpoint> {
    service
        .expect_permissions()
        .return_const(Permissions::new(Permissions::DEFAULT_PREFIX, true));
    TestClient::new(tooltool_http::app(
        Arc::new(service),
        tooltool_http::HttpConfig {
            public_url: "http://127.0.0.1:8000".into(),
            max_json_body: LIMIT,
            trust_proxy_headers: false,
            version: tooltool_http::VersionInfo {
                source: "s".into(),
                version: "v".into(),
                commit: "c".into(),
                build: "b".into(),
            },
            cors_origins: vec![],
            metrics: None,
            serve_metrics: false,
            client_script_url: tooltool_http::UPSTREAM_CLIENT_SCRIPT.into(),
            browser: None,
        },
    ))
}

pub fn digest(content: &[u8]) -> Digest {
    let mut h = ContentHasher::new();
    h.update(content);
    h.finish().digest
}

/// Status, headers and JSON body of a response.
pub async fn parts(resp: poem::test::TestResponse) -> (u16, poem::http::HeaderMap, Option<Value>) {
    let resp = resp.0;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.into_body().into_string().await.expect("body");
    (status, headers, serde_json::from_str(&text).ok())
}

/// Asserts the protocol's error shape with `status`; its `detail`.
pub async fn problem(resp: poem::test::TestResponse, status: u16) -> String {
    let (got, headers, body) = parts(resp).await;
    let body = body.expect("a JSON error body");
    assert_eq!(got, status, "{body}");
    assert_eq!(headers["content-type"], "application/json", "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["type"], "about:blank");
    assert_eq!(body["instance"], "about:blank");
    // tooltool.py logs `name: description`: the status line, then the sentence.
    let status_line = poem::http::StatusCode::from_u16(status)
        .expect("status")
        .to_string();
    assert_eq!(body["error"]["name"], status_line.as_str(), "{body}");
    assert_eq!(body["error"]["description"], body["detail"]);
    let detail = body["detail"].as_str().expect("detail").to_owned();
    assert!(
        body["title"]
            .as_str()
            .is_some_and(|t| t.starts_with(&format!("{status} ")) && t.ends_with(&detail)),
        "{body}"
    );
    detail
}
