//! What an operator relies on: Dockerflow endpoints, security and CORS
//! headers.

use serde_json::Value;
use tooltool_tests::{spawn_app, spawn_with};

#[tokio::test]
async fn dockerflow_endpoints() {
    let app = spawn_app().await;
    let lb = app.get("__lbheartbeat__").await;
    assert_eq!(lb.status(), 200);

    let hb = app.get("__heartbeat__").await;
    assert_eq!(hb.status(), 200);
    let body: Value = hb.json().await.expect("json");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["checks"]["database"], "ok");
    assert_eq!(body["checks"]["storage:local"], "ok");

    let v: Value = app.get("__version__").await.json().await.expect("json");
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    let commit = v["commit"].as_str().expect("commit");
    assert!(
        commit == "unknown"
            || (commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit())),
        "{commit}"
    );
    for field in ["source", "build"] {
        assert!(
            v[field].as_str().is_some_and(|s| !s.is_empty()),
            "{field}: {v}"
        );
    }

    // A broken storage region makes the heartbeat fail, naming it.
    let objects = app.data_path().join("objects");
    std::fs::remove_dir_all(&objects).expect("rm");
    std::fs::write(&objects, b"not a directory").expect("write");
    let hb = app.get("__heartbeat__").await;
    assert_eq!(hb.status(), 503);
    let body: Value = hb.json().await.expect("json");
    assert_eq!(body["checks"]["storage:local"], "error");
    assert_eq!(body["checks"]["database"], "ok");
    assert_eq!(body["status"], 503, "the error shape");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("storage:local")),
        "{body}"
    );
    assert_eq!(
        app.get("__lbheartbeat__").await.status(),
        200,
        "the process still serves"
    );
}

#[tokio::test]
async fn the_heartbeat_checks_taskcluster_when_configured() {
    let app = spawn_with(&[
        "--taskcluster-root-url",
        "http://127.0.0.1:9",
        "--taskcluster-timeout",
        "300ms",
    ])
    .await;
    let hb = app.get("__heartbeat__").await;
    assert_eq!(hb.status(), 503);
    let body: Value = hb.json().await.expect("json");
    assert_eq!(body["checks"]["taskcluster"], "error");
}

/// A local list of Hawk clients asks nobody: the heartbeat does not claim
/// to have checked a Taskcluster that is not configured.
#[tokio::test]
async fn the_heartbeat_names_no_taskcluster_for_local_hawk_clients() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clients = dir.path().join("clients.json");
    std::fs::write(
        &clients,
        r#"[{"clientId": "c", "accessToken": "t", "scopes": []}]"#,
    )
    .expect("write");
    let app = spawn_with(&["--hawk-clients-file", clients.to_str().expect("utf-8")]).await;
    let hb = app.get("__heartbeat__").await;
    assert_eq!(hb.status(), 200);
    let body: Value = hb.json().await.expect("json");
    let names: Vec<&String> = body["checks"].as_object().expect("checks").keys().collect();
    assert_eq!(names, ["database", "storage:local"]);
}

#[tokio::test]
async fn security_headers() {
    let app = spawn_app().await;
    for path in ["__heartbeat__", "sha512/invalid", "docs", "nope"] {
        let resp = app.get(path).await;
        assert_eq!(
            resp.headers()["x-content-type-options"],
            "nosniff",
            "{path}"
        );
        assert_eq!(resp.headers()["x-frame-options"], "DENY", "{path}");
        assert!(
            resp.headers().get("strict-transport-security").is_none(),
            "no HSTS over http"
        );
        let html = resp.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/html");
        assert_eq!(
            resp.headers().contains_key("content-security-policy"),
            html,
            "{path}: CSP on HTML only"
        );
    }
    let https = spawn_with(&["--public-url", "https://tooltool.example.com"]).await;
    let resp = https.get("__lbheartbeat__").await;
    assert!(
        resp.headers()["strict-transport-security"]
            .to_str()
            .expect("ascii")
            .contains("max-age=")
    );
}

#[tokio::test]
async fn cors() {
    let app = spawn_app().await;
    let resp = app
        .http
        .get(app.at("file?q="))
        .header("Origin", "https://anywhere.example")
        .send()
        .await
        .expect("get");
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "https://anywhere.example"
    );
    assert!(
        resp.headers()
            .get("access-control-allow-credentials")
            .is_none_or(|v| v != "true")
    );
    let preflight = app
        .http
        .request(reqwest::Method::OPTIONS, app.at("upload"))
        .header("Origin", "https://anywhere.example")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization, content-type",
        )
        .send()
        .await
        .expect("options");
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert!(
        preflight.headers()["access-control-allow-methods"]
            .to_str()
            .expect("ascii")
            .contains("POST")
    );

    let strict = spawn_with(&["--cors-origins", "https://allowed.example"]).await;
    let allowed = strict
        .http
        .get(strict.at("file?q="))
        .header("Origin", "https://allowed.example")
        .send()
        .await
        .expect("get");
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://allowed.example"
    );
    let other = strict
        .http
        .get(strict.at("file?q="))
        .header("Origin", "https://other.example")
        .send()
        .await
        .expect("get");
    assert!(
        other.headers().get("access-control-allow-origin").is_none(),
        "{:?}",
        other.headers()
    );
}

#[tokio::test]
async fn metrics_move_with_requests_and_verifications() {
    let app = spawn_app().await;
    let token = app.token("m", &["upload/*"]);
    let d = app.upload(&token, "m.bin", b"metrics", "public").await;
    assert_eq!(app.get(&format!("sha512/{d}")).await.status(), 302);
    assert_eq!(app.get("sha512/invalid").await.status(), 400);
    // A rejected upload.
    let batch = app
        .create_batch(
            &token,
            &tooltool_tests::batch_body("bad", &[("b.bin", b"declared", "public")]),
            None,
        )
        .await;
    let put = tooltool_tests::put(&tooltool_tests::put_url(&batch, "b.bin"), b"DECLARED").await;
    assert_eq!(put.status(), 400);
    // A slot left waiting.
    app.create_batch(
        &token,
        &tooltool_tests::batch_body("wait", &[("w.bin", b"waiting", "public")]),
        None,
    )
    .await;

    let resp = app.get("metrics").await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/plain")
    );
    let text = resp.text().await.expect("text");
    for line in [
        r#"tooltool_http_requests_total{route="download",status="302"} 1"#,
        r#"tooltool_http_requests_total{route="download",status="400"} 1"#,
        r#"tooltool_http_requests_total{route="blob",status="400"} 1"#,
        "tooltool_uploads_created_total 3",
        r#"tooltool_verifications_total{outcome="valid"} 1"#,
        r#"tooltool_verifications_total{outcome="digest_mismatch"} 1"#,
        "tooltool_verified_bytes_total 15",
        "tooltool_pending_uploads 1",
        "tooltool_files_missing_a_region 0",
        r#"tooltool_http_request_duration_seconds_count{route="create_batch"} 3"#,
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    tooltool::jobs::Job::Sweep
        .run_once(&app.service)
        .await
        .expect("sweep");
    let text = app.get("metrics").await.text().await.expect("text");
    assert!(
        text.contains(r#"tooltool_job_duration_seconds_count{job="sweep",result="ok"} 1"#),
        "{text}"
    );
}
