//! The web interface over a real socket, in the same process and on the
//! same port as the JSON API: what a person sees after an upload, and that
//! the API keeps its own answers beside it.

use tooltool_tests::{sha512_hex, spawn_app};

#[tokio::test]
async fn a_person_finds_and_inspects_what_was_uploaded() {
    let app = spawn_app().await;
    let token = app.token("releng@example.com", &["upload/*"]);
    let digest = app
        .upload(&token, "clang-18.tar.zst", b"clang bytes", "public")
        .await;
    let text = |resp: reqwest::Response| async move {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        (status, headers, resp.text().await.expect("text"))
    };

    let (status, headers, home) = text(app.get("").await).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    // The page's own policy (no script), and the service's other headers.
    assert!(
        headers["content-security-policy"]
            .to_str()
            .expect("ascii")
            .starts_with("default-src 'none'")
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(headers.contains_key("x-request-id"));
    assert!(home.contains("releng@example.com"), "{home}");

    let (status, _, results) = text(app.get("ui/search?q=clang-18").await).await;
    assert_eq!(status, 200);
    assert!(
        results.contains(&format!("/ui/files/{digest}")),
        "{results}"
    );
    let (status, _, file) = text(app.get(&format!("ui/files/{digest}")).await).await;
    assert_eq!(status, 200);
    assert!(
        file.contains(&format!("href=\"/sha512/{digest}\"")),
        "{file}"
    );
    // The page's download link is the API's 302.
    assert_eq!(app.get(&format!("sha512/{digest}")).await.status(), 302);
    let (status, _, manifest) = text(app.get("ui/batches/1/manifest.tt").await).await;
    assert_eq!(status, 200);
    let manifest: serde_json::Value = serde_json::from_str(&manifest).expect("JSON");
    assert_eq!(manifest[0]["digest"], sha512_hex(b"clang bytes"));

    // Bad input: HTML 4xx pages; the API's routes keep the error shape.
    for path in [
        "ui/batches/999",
        "ui/files/nope",
        "ui/search?q=%01",
        "ui/no-such-page",
    ] {
        let (status, headers, _) = text(app.get(path).await).await;
        assert!((400..500).contains(&status), "{path}: {status}");
        assert_eq!(
            headers["content-type"], "text/html; charset=utf-8",
            "{path}"
        );
    }
    let resp = app.get("no-such-route").await;
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.headers()["content-type"], "application/json");
}
