//! The OpenAPI document: committed, served, and in sync.

use tooltool_tests::spawn_app;

/// Regenerate with `cargo run -- openapi > openapi.json`.
const COMMITTED: &str = include_str!("../openapi.json");

#[tokio::test]
async fn the_committed_document_matches_the_code() {
    assert_eq!(
        tooltool_http::openapi_json("http://127.0.0.1:8000"),
        COMMITTED,
        "openapi.json is stale: run `cargo run -- openapi > openapi.json` and commit it"
    );
}

#[tokio::test]
async fn the_served_document_is_the_committed_one_for_this_server() {
    let app = spawn_app().await;
    let resp = app.get("openapi.json").await;
    assert_eq!(resp.status(), 200);
    let served: serde_json::Value = resp.json().await.expect("json");
    let mut expected: serde_json::Value = serde_json::from_str(COMMITTED).expect("valid json");
    expected["servers"][0]["url"] = app.url.trim_end_matches('/').into();
    assert_eq!(served, expected);
    assert_eq!(served["openapi"], "3.0.0");
    for path in [
        "/sha512/{digest}",
        "/upload",
        "/upload/{id}",
        "/upload/complete/sha512/{digest}",
        "/file",
        "/file/sha512/{digest}",
    ] {
        assert!(served["paths"].get(path).is_some(), "{path} documented");
    }
    let docs = app.get("docs").await;
    assert_eq!(docs.status(), 200);
    assert!(
        docs.text().await.expect("html").contains("swagger"),
        "Swagger UI"
    );
}

/// The header a security scheme of the document says to send, as a
/// client (Swagger UI's Authorize, a generator) would build it from the
/// scheme alone: `http`/`bearer` → `Authorization: Bearer <value>`,
/// `apiKey` in a header → `<name>: <value>`.
fn header_for(scheme: &serde_json::Value, value: &str) -> (String, String) {
    match scheme["type"].as_str() {
        Some("http") => {
            assert_eq!(scheme["scheme"], "bearer", "{scheme}");
            ("Authorization".to_owned(), format!("Bearer {value}"))
        }
        Some("apiKey") => {
            assert_eq!(scheme["in"], "header", "{scheme}");
            (
                scheme["name"].as_str().expect("a header name").to_owned(),
                value.to_owned(),
            )
        }
        other => panic!("unexpected scheme type {other:?}"),
    }
}

/// `GET /__permissions__` with one header: who the server says we are.
async fn permissions(
    app: &tooltool_tests::TestApp,
    (name, value): (String, String),
) -> serde_json::Value {
    app.http
        .get(format!("{}__permissions__", app.url))
        .header(name, value)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json")
}

#[tokio::test]
async fn a_caller_authorizes_through_the_documents_security_schemes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clients = dir.path().join("clients.json");
    std::fs::write(
        &clients,
        serde_json::json!([{
            "clientId": "project/releng/docs",
            "accessToken": "access-token-of-docs-0123456789",
            "scopes": [format!("{}/manage", tooltool_tests::PREFIX)],
        }])
        .to_string(),
    )
    .expect("write");
    let app =
        tooltool_tests::spawn_with(&["--hawk-clients-file", clients.to_str().expect("utf-8")])
            .await;
    let doc: serde_json::Value = app.get("openapi.json").await.json().await.expect("json");
    let schemes = &doc["components"]["securitySchemes"];
    // Every operation that acts on the caller's behalf declares both
    // schemes and anonymous access (`{}`): Swagger UI then offers Authorize
    // and still lets anyone call.
    for (path, method) in [
        ("/sha512/{digest}", "get"),
        ("/upload", "post"),
        ("/file/sha512/{digest}", "patch"),
        ("/__permissions__", "get"),
    ] {
        assert_eq!(
            doc["paths"][path][method]["security"],
            serde_json::json!([{"bearer": []}, {"hawk": []}, {}]),
            "{method} {path}"
        );
    }

    let token = app.token("docs-user", &["download/internal"]);
    let me = permissions(&app, header_for(&schemes["bearer"], &token)).await;
    assert_eq!(me["clientId"], "docs-user", "{me}");

    let credentials = tooltool_tests::HawkCredentials {
        client_id: "project/releng/docs".into(),
        access_token: "access-token-of-docs-0123456789".into(),
    };
    let hawk = app.hawk(&credentials, "GET", "/__permissions__", None);
    let me = permissions(&app, header_for(&schemes["hawk"], &hawk)).await;
    assert_eq!(me["clientId"], "project/releng/docs", "{me}");
}
