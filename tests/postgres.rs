//! The server on PostgreSQL: the client's sequence end to end, and two
//! server processes sharing one database without doing the same work twice.

use serde_json::json;
use tooltool_tests::{batch_body, fresh_database_url, put, put_url, sha512_hex, spawn_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_sequence_works_on_postgres() {
    let db = fresh_database_url().await;
    let app = spawn_with(&["--database-url", &db]).await;
    let token = app.token("pg-user", &["*"]);
    let content: &[u8] = b"stored with postgres metadata";
    let batch = app
        .create_batch(
            &token,
            &batch_body("pg", &[("pg.bin", content, "internal")]),
            Some("local"),
        )
        .await;
    assert_eq!(batch["result"]["author"], "pg-user");
    assert_eq!(put(&put_url(&batch, "pg.bin"), content).await.status(), 200);
    let d = sha512_hex(content);
    assert_eq!(
        app.get(&format!("upload/complete/sha512/{d}"))
            .await
            .status(),
        202
    );
    assert_eq!(
        app.get(&format!("sha512/{d}")).await.status(),
        403,
        "internal"
    );
    let resp = app
        .http
        .get(app.at(&format!("sha512/{d}")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 302);
    let found: serde_json::Value = app.get("file?q=pg.b").await.json().await.expect("json");
    assert_eq!(found["result"][0]["digest"], d.as_str());
    let found: serde_json::Value = app.get("upload?q=p%25").await.json().await.expect("json");
    assert_eq!(found["result"], json!([]), "% is literal");
    let resp = app
        .http
        .patch(app.at(&format!("file/sha512/{d}")))
        .bearer_auth(&token)
        .json(&json!([{"op": "delete_instances"}]))
        .send()
        .await
        .expect("patch");
    assert_eq!(resp.status(), 200);
    let hb: serde_json::Value = app.get("__heartbeat__").await.json().await.expect("json");
    assert_eq!(hb["checks"]["database"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_database_verify_each_upload_once() {
    let db = fresh_database_url().await;
    let shared = tempfile::tempdir().expect("tempdir");
    let regions = format!("local:{}", shared.path().display());
    let a = spawn_with(&["--database-url", &db, "--local-regions", &regions]).await;
    let b = spawn_with(&["--database-url", &db, "--local-regions", &regions]).await;
    let token = a.token("u", &["upload/*"]);
    // Forty slots whose bytes arrived in storage behind the servers' backs
    // (as with S3): only the verification jobs can settle them.
    let files: Vec<(String, Vec<u8>)> = (0..40)
        .map(|i| (format!("f{i}"), format!("content {i}").into_bytes()))
        .collect();
    let declared: Vec<(&str, &[u8], &str)> = files
        .iter()
        .map(|(n, c)| (n.as_str(), c.as_slice(), "public"))
        .collect();
    let batch = a
        .create_batch(&token, &batch_body("many", &declared), None)
        .await;
    for (name, content) in &files {
        let url = put_url(&batch, name);
        let key = url
            .split("/blob/local/")
            .nth(1)
            .expect("key")
            .split('?')
            .next()
            .expect("key")
            .to_owned();
        let path = shared.path().join(&key);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, content).expect("write");
    }
    let (ra, rb) = tokio::join!(
        tooltool::jobs::verify_once(&a.service),
        tooltool::jobs::verify_once(&b.service)
    );
    let (ra, rb) = (ra.expect("a"), rb.expect("b"));
    assert_eq!(
        ra.done + rb.done,
        40,
        "every upload verified exactly once: {ra} / {rb}"
    );
    assert_eq!(ra.failed + rb.failed, 0);
    for (_, content) in &files {
        let d = sha512_hex(content);
        assert_eq!(b.get(&format!("sha512/{d}")).await.status(), 302);
    }
}
