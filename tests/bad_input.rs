//! Bad input never yields a 5xx, always the error shape, and stores nothing.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tooltool_tests::{batch_body, files_under, put, put_url, sha512_hex, spawn_app, spawn_with};

async fn problem(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    assert_eq!(
        resp.headers()["content-type"],
        "application/json",
        "{status}"
    );
    let body: Value = resp.json().await.expect("json error body");
    assert_eq!(body["status"], status.as_u16());
    assert_eq!(body["error"]["description"], body["detail"]);
    assert_eq!(body["error"]["name"], status.to_string(), "the status line");
    (status, body)
}

fn file(digest: &str, size: Value, visibility: &str) -> Value {
    json!({"size": size, "digest": digest, "algorithm": "sha512", "visibility": visibility})
}

#[tokio::test]
async fn upload_bodies_table() {
    upload_bodies_on(spawn_with(&["--max-file-size", "1000"]).await).await;
}

/// The same table on PostgreSQL, which refuses some values (NUL, index
/// rows over ~2.7 KB, integers past 2^63) that SQLite takes as given: every
/// rule is checked before the store sees the batch.
#[tokio::test]
async fn upload_bodies_table_on_postgres() {
    let db = tooltool_tests::fresh_database_url().await;
    upload_bodies_on(spawn_with(&["--max-file-size", "1000", "--database-url", &db]).await).await;
}

async fn upload_bodies_on(app: tooltool_tests::TestApp) {
    let token = app.token("u", &["upload/*"]);
    let d = sha512_hex(b"x");
    // An existing verified file to conflict with.
    let existing: &[u8] = b"existing";
    app.upload(&token, "e", existing, "public").await;
    let e = sha512_hex(existing);

    let ok_file = file(&d, json!(1), "public");
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("not json", "{".into(), 400, "the request body is not valid JSON"),
        ("array", "[]".into(), 400, "the request body must be a JSON object"),
        ("no message", json!({"files": {"a": ok_file}}).to_string(), 400, "'message' is a required property"),
        ("no files", json!({"message": "m"}).to_string(), 400, "'files' is a required property"),
        ("message type", json!({"message": 5, "files": {"a": ok_file}}).to_string(), 400, "'message' must be a string"),
        ("files type", json!({"message": "m", "files": []}).to_string(), 400, "'files' must be an object"),
        ("empty message", json!({"message": "", "files": {"a": ok_file}}).to_string(), 400, "message must be non-empty"),
        ("empty files", json!({"message": "m", "files": {}}).to_string(), 400, "a batch must include at least one file"),
        ("author", json!({"message": "m", "author": "me", "files": {"a": ok_file}}).to_string(), 400, "Author must NOT be specified for upload."),
        ("bad digest", json!({"message": "m", "files": {"a": file("abc", json!(1), "public")}}).to_string(), 400, "Invalid sha512 digest"),
        ("upper digest", json!({"message": "m", "files": {"a": file(&d.to_uppercase(), json!(1), "public")}}).to_string(), 400, "Invalid sha512 digest"),
        ("algorithm", json!({"message": "m", "files": {"a": {"size": 1, "digest": d, "algorithm": "md5", "visibility": "public"}}}).to_string(), 400, "unsupported algorithm \"md5\""),
        ("missing size", json!({"message": "m", "files": {"a": {"digest": d, "algorithm": "sha512", "visibility": "public"}}}).to_string(), 400, "'size' is a required property of file \"a\""),
        ("negative size", json!({"message": "m", "files": {"a": file(&d, json!(-1), "public")}}).to_string(), 400, "'size' of file \"a\" must be a non-negative integer"),
        ("float size", json!({"message": "m", "files": {"a": file(&d, json!(1.5), "public")}}).to_string(), 400, "must be a non-negative integer"),
        ("string size", json!({"message": "m", "files": {"a": file(&d, json!("1"), "public")}}).to_string(), 400, "must be a non-negative integer"),
        ("oversized", json!({"message": "m", "files": {"a": file(&d, json!(1001), "public")}}).to_string(), 413, "more than this server's limit of 1000 bytes"),
        ("visibility", json!({"message": "m", "files": {"a": file(&d, json!(1), "secret")}}).to_string(), 400, "'secret' is not a visibility"),
        ("slash", json!({"message": "m", "files": {"a/b": ok_file}}).to_string(), 400, "Invalid filename"),
        ("backslash", json!({"message": "m", "files": {"a\\b": ok_file}}).to_string(), 400, "Invalid filename"),
        ("empty name", json!({"message": "m", "files": {"": ok_file}}).to_string(), 400, "Invalid filename"),
        ("nul in message", json!({"message": "m\u{0}", "files": {"a": ok_file}}).to_string(), 400, "invalid message: control characters"),
        ("escape in message", json!({"message": "m\u{1b}[2J", "files": {"a": ok_file}}).to_string(), 400, "invalid message: control characters"),
        ("long message", json!({"message": "m".repeat(4097), "files": {"a": ok_file}}).to_string(), 400, "invalid message: 4097 bytes, more than 4096"),
        ("nul in filename", json!({"message": "m", "files": {"a\u{0}b": ok_file}}).to_string(), 400, "Invalid filename"),
        ("newline in filename", json!({"message": "m", "files": {"a\nb": ok_file}}).to_string(), 400, "Invalid filename \"a\\nb\""),
        ("long filename", json!({"message": "m", "files": {("n".repeat(3000)): ok_file}}).to_string(), 400, "… (3000 bytes)"),
        ("size past 2^63", json!({"message": "m", "files": {"a": file(&d, json!(9_223_372_036_854_775_808_u64), "public")}}).to_string(), 413, "more than this server's limit"),
        ("size past 2^64", format!(r#"{{"message": "m", "files": {{"a": {{"size": 18446744073709551616, "digest": "{d}", "algorithm": "sha512", "visibility": "public"}}}}}}"#), 400, "must be a non-negative integer"),
        ("visibility change", json!({"message": "m", "files": {"e": file(&e, json!(8), "internal")}}).to_string(), 400, "Cannot change already existing file's visibility level."),
        ("size mismatch", json!({"message": "m", "files": {"new": ok_file, "e2": file(&e, json!(9), "public")}}).to_string(), 400, "Size mismatch for e2"),
    ];
    for (name, body, status, detail) in cases {
        let resp = app
            .http
            .post(app.at("upload"))
            .bearer_auth(&token)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .expect("post");
        let (got, problem) = problem(resp).await;
        assert_eq!(got.as_u16(), status, "{name}: {problem}");
        assert!(
            problem["detail"]
                .as_str()
                .is_some_and(|t| t.contains(detail)),
            "{name}: {problem}"
        );
    }
    // Search terms no store may see (anonymous callers included).
    for (q, detail) in [
        ("%00", "q must not contain control characters"),
        ("a%0Ab", "q must not contain control characters"),
        (&"q".repeat(1025)[..], "q is 1025 bytes, more than 1024"),
    ] {
        for route in ["upload", "file"] {
            let (got, problem) = problem(app.get(&format!("{route}?q={q}")).await).await;
            assert_eq!(got.as_u16(), 400, "{route}?q={q}: {problem}");
            assert_eq!(problem["detail"], detail, "{route}?q=…");
        }
    }
    // Nothing of the refused batches was stored: only the seed batch exists.
    let all: Value = app.get("upload?q=").await.json().await.expect("json");
    assert_eq!(all["result"].as_array().map(Vec::len), Some(1));
    let files: Value = app
        .get(&format!("file?q={d}"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(files["result"], json!([]));
}

/// method, path, credential (scheme, value), JSON body, status, detail fragment
type Case<'a> = (
    Method,
    String,
    Option<(&'a str, &'a str)>,
    Option<&'a str>,
    u16,
    &'a str,
);

#[tokio::test]
async fn routes_params_and_methods_table() {
    let app = spawn_app().await;
    let d = sha512_hex(b"nothing");
    let manage = app.token("m", &["manage"]);
    let upload = app.token("u", &["upload/public"]);
    let cases: Vec<Case<'_>> = vec![
        (Method::GET, "nope".into(), None, None, 404, "not found"),
        (
            Method::DELETE,
            "upload".into(),
            None,
            None,
            405,
            "not allowed",
        ),
        (
            Method::PUT,
            format!("sha512/{d}"),
            None,
            None,
            405,
            "not allowed",
        ),
        (
            Method::GET,
            "upload".into(),
            None,
            None,
            400,
            "'q' is required",
        ),
        (
            Method::GET,
            "file".into(),
            None,
            None,
            400,
            "'q' is required",
        ),
        (
            Method::GET,
            "upload/abc".into(),
            None,
            None,
            404,
            "no upload batch",
        ),
        (
            Method::GET,
            "upload/99999999999999999999".into(),
            None,
            None,
            404,
            "no upload batch",
        ),
        (
            Method::GET,
            "upload/42".into(),
            None,
            None,
            404,
            "no upload batch",
        ),
        (
            Method::GET,
            "file/sha512/xyz".into(),
            None,
            None,
            400,
            "Invalid sha512 digest",
        ),
        (
            Method::GET,
            format!("file/sha512/{d}"),
            None,
            None,
            404,
            "no file",
        ),
        (
            Method::GET,
            format!("sha512/{d}"),
            None,
            None,
            404,
            "No verified copy",
        ),
        (
            Method::GET,
            "upload/complete/sha512/XYZ".into(),
            None,
            None,
            400,
            "Invalid sha512 digest",
        ),
        (
            Method::PATCH,
            format!("file/sha512/{d}"),
            None,
            Some("[]"),
            401,
            "manage scope",
        ),
        (
            Method::PATCH,
            format!("file/sha512/{d}"),
            Some(("Bearer", &upload)),
            Some("[]"),
            403,
            "no permission to manage",
        ),
        (
            Method::PATCH,
            format!("file/sha512/{d}"),
            Some(("Bearer", &manage)),
            Some("[]"),
            404,
            "no file",
        ),
        (
            Method::PATCH,
            format!("file/sha512/{d}"),
            Some(("Bearer", &manage)),
            Some("{}"),
            400,
            "JSON array",
        ),
        (
            Method::PATCH,
            format!("file/sha512/{d}"),
            Some(("Bearer", &manage)),
            Some(r#"[{"op":"explode"}]"#),
            400,
            "unknown op \"explode\"",
        ),
        (
            Method::PATCH,
            format!("file/sha512/{d}"),
            Some(("Bearer", &manage)),
            Some(r#"[{"op":"set_visibility"}]"#),
            400,
            "'visibility' is a required property",
        ),
        (
            Method::PATCH,
            format!("file/sha512/{d}"),
            Some(("Bearer", &manage)),
            Some(r#"[{"visibility":"public"}]"#),
            400,
            "'op' is a required property",
        ),
        (
            Method::PATCH,
            "file/sha512/bad".into(),
            Some(("Bearer", &manage)),
            Some("[]"),
            400,
            "Invalid sha512 digest",
        ),
        (
            Method::POST,
            "upload".into(),
            None,
            Some(r#"{"message":"m","files":{}}"#),
            400,
            "at least one file",
        ),
        (
            Method::POST,
            "upload".into(),
            Some(("Bearer", "not.a.jwt")),
            Some("{}"),
            401,
            "invalid bearer token",
        ),
        (
            Method::GET,
            format!("sha512/{d}"),
            Some(("Basic", "dXNlcjpwYXNz")),
            None,
            401,
            "unsupported authorization scheme",
        ),
        (
            Method::GET,
            format!("sha512/{d}"),
            Some(("Hawk", "id=\"x\"")),
            None,
            401,
            "unsupported authorization scheme",
        ),
    ];
    for (method, path, auth, body, status, detail) in cases {
        let mut req = app.http.request(method.clone(), app.at(&path));
        if let Some((scheme, cred)) = auth {
            req = req.header("Authorization", format!("{scheme} {cred}"));
        }
        if let Some(body) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(body.to_owned());
        }
        let (got, problem) = problem(req.send().await.expect("send")).await;
        assert_eq!(got.as_u16(), status, "{method} {path}: {problem}");
        assert!(
            problem["detail"]
                .as_str()
                .is_some_and(|t| t.to_lowercase().contains(&detail.to_lowercase())),
            "{method} {path}: {problem}"
        );
    }
}

#[tokio::test]
async fn wrong_content_type_is_415_and_huge_bodies_413() {
    let app = spawn_with(&["--max-request-body", "4096"]).await;
    let token = app.token("u", &["upload/*"]);
    let body = batch_body("m", &[("a", b"a", "public")]).to_string();
    let resp = app
        .http
        .post(app.at("upload"))
        .bearer_auth(&token)
        .header("Content-Type", "text/plain")
        .body(body)
        .send()
        .await
        .expect("post");
    assert_eq!(problem(resp).await.0, 415);
    let huge = format!(r#"{{"message":"{}","files":{{}}}}"#, "x".repeat(10_000));
    for chunked in [false, true] {
        let req = app
            .http
            .post(app.at("upload"))
            .bearer_auth(&token)
            .header("Content-Type", "application/json");
        let req = if chunked {
            let chunks: Vec<Result<String, std::io::Error>> =
                vec![Ok(huge[..5000].to_owned()), Ok(huge[5000..].to_owned())];
            req.body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                chunks,
            )))
        } else {
            req.body(huge.clone())
        };
        let (status, p) = problem(req.send().await.expect("post")).await;
        assert_eq!(status, 413, "chunked={chunked}: {p}");
    }
}

#[tokio::test]
async fn wrong_bytes_or_size_are_refused_and_leave_nothing() {
    let app = spawn_app().await;
    let token = app.token("u", &["upload/*"]);
    let declared: &[u8] = b"the declared content";
    for (name, sent) in [
        ("digest", b"THE DECLARED CONTENT".to_vec()),
        ("shorter", b"the declared".to_vec()),
        ("longer", b"the declared content and more".to_vec()),
    ] {
        let created = app
            .create_batch(
                &token,
                &batch_body(name, &[("f", declared, "public")]),
                None,
            )
            .await;
        let url = put_url(&created, "f");
        let resp = put(&url, &sent).await;
        let (status, p) = problem(resp).await;
        assert_eq!(status, 400, "{name}: {p}");
        assert!(
            p["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("uploaded content does not match")),
            "{p}"
        );
        // Never downloadable, and complete reports the rejection.
        let d = sha512_hex(declared);
        assert_eq!(app.get(&format!("sha512/{d}")).await.status(), 404);
        let (status, _) = problem(app.get(&format!("upload/complete/sha512/{d}")).await).await;
        assert_eq!(status, 400);
        // The slot is closed: the same URL cannot be reused.
        let again = put(&url, declared).await;
        assert_eq!(problem(again).await.0, 409);
    }
    let leftovers: Vec<_> = files_under(&app.data_path().join("objects"))
        .into_iter()
        .filter(|p| p.starts_with("pending") || p.starts_with("tmp") || p.starts_with("sha512"))
        .collect();
    assert!(leftovers.is_empty(), "no staging leftovers: {leftovers:?}");
}

#[tokio::test]
async fn expired_or_altered_signed_urls_are_403() {
    let app = spawn_app().await;
    let token = app.token("u", &["upload/*"]);
    let content: &[u8] = b"signed content";
    let created = app
        .create_batch(&token, &batch_body("m", &[("f", content, "public")]), None)
        .await;
    let url = put_url(&created, "f");
    let client = reqwest::Client::new();
    let altered = [
        url.replace("signature=", "signature=00"),
        url.replace("size=14", "size=15"),
        url.split('?').next().expect("path").to_owned(),
        url.replace("/pending/", "/sha512/"),
    ];
    for bad in altered {
        let (status, _) = problem(
            client
                .put(&bad)
                .body(content.to_vec())
                .send()
                .await
                .expect("put"),
        )
        .await;
        assert_eq!(status, 403, "{bad}");
    }
    app.clock.advance(chrono::Duration::seconds(61));
    let (status, p) = problem(
        client
            .put(&url)
            .body(content.to_vec())
            .send()
            .await
            .expect("put"),
    )
    .await;
    assert_eq!(status, 403);
    assert!(p["detail"].as_str().is_some_and(|d| d.contains("expired")));

    // Download URLs expire too.
    let digest = app.upload(&token, "f", content, "public").await;
    let location = app.location(&format!("sha512/{digest}")).await;
    assert_eq!(
        client.get(&location).send().await.expect("get").status(),
        200
    );
    let (status, _) = problem(
        client
            .get(location.replace("signature=", "signature=ab"))
            .send()
            .await
            .expect("get"),
    )
    .await;
    assert_eq!(status, 403);
    app.clock.advance(chrono::Duration::seconds(61));
    let (status, _) = problem(client.get(&location).send().await.expect("get")).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn bearer_tokens_are_refused_with_a_reason() {
    let app = spawn_app().await;
    let d = sha512_hex(b"whatever");
    let expired = {
        let t = app.token("u", &["download/*"]);
        app.clock.advance(chrono::Duration::hours(2));
        t
    };
    let none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ4Iiwic2NvcGVzIjpbIioiXSwiZXhwIjo5OTk5OTk5OTk5fQ.";
    // A subject that would reach batches and logs raw.
    let nul_sub = app.token("u\u{0}x", &["download/*"]);
    let newline_sub = app.token("u\nforged log line", &["download/*"]);
    for (token, why) in [
        (nul_sub.as_str(), "'sub' contains control characters"),
        (newline_sub.as_str(), "'sub' contains control characters"),
        (expired.as_str(), "expired"),
        (none, "algorithm"),
        ("a.b.c", "not a well-formed"),
    ] {
        for header in ["Authorization", "Authentication"] {
            let resp = app
                .http
                .get(app.at(&format!("sha512/{d}")))
                .header(header, format!("Bearer {token}"))
                .send()
                .await
                .expect("get");
            let (status, p) = problem(resp).await;
            assert_eq!(status, 401, "{header} {why}: {p}");
            assert!(p["detail"].as_str().is_some_and(|t| t.contains(why)), "{p}");
        }
    }
}
