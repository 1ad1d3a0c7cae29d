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
