//! The server on S3, on three shapes: an in-process s3s-fs server with two
//! buckets that checks SigV4, a Garage node with two buckets on one
//! endpoint signed for its one region (`S3_SIGNING_REGION`), and two
//! Garage nodes, one region on each (endpoints in `S3_REGIONS`, so
//! replication streams): the client's sequence through real presigned URLs,
//! rejection of wrong bytes, no swap after verification, replication and
//! region preference, delete_instances in every bucket.

use serde_json::json;
use tooltool_tests::{TestApp, batch_body, put, put_url, sha512_hex, spawn_with};

async fn s3_app() -> TestApp {
    let endpoint = tooltool_s3::testing::start(&["tooltool-east", "tooltool-west"]).await;
    spawn_with(&[
        "--s3-regions",
        "us-east-1:tooltool-east;us-west-2:tooltool-west",
        "--s3-endpoint",
        &endpoint,
        "--s3-access-key-id",
        tooltool_s3::testing::ACCESS_KEY,
        "--s3-secret-access-key",
        tooltool_s3::testing::SECRET_KEY,
    ])
    .await
}

/// The server on a fresh Garage node (returned: it lives as long as it).
async fn garage_app() -> (TestApp, tooltool_s3::garage::Garage) {
    tooltool_tests::garage_app(&[]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_sequence_works_on_s3_with_replication() {
    client_sequence(s3_app().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_sequence_works_on_garage_with_replication() {
    let (app, _node) = garage_app().await;
    client_sequence(app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_sequence_works_with_regions_on_two_garage_endpoints() {
    let (app, _nodes) = tooltool_tests::garage_sites_app(&[]).await;
    client_sequence(app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_bytes_in_s3_are_rejected_and_never_downloadable() {
    wrong_bytes(s3_app().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_bytes_in_garage_are_rejected_and_never_downloadable() {
    let (app, _node) = garage_app().await;
    wrong_bytes(app).await;
}

async fn client_sequence(app: TestApp) {
    let token = app.token("s3-user", &["*"]);
    let content: &[u8] = b"bytes that live in S3";
    let d = sha512_hex(content);
    let batch = app
        .create_batch(
            &token,
            &batch_body("s3", &[("s3.bin", content, "public")]),
            None,
        )
        .await;
    let url = put_url(&batch, "s3.bin");
    // Either bucket: the upload region is chosen at random.
    assert!(
        (url.contains("tooltool-east") || url.contains("tooltool-west"))
            && url.contains("X-Amz-Signature"),
        "{url}"
    );
    assert_eq!(put(&url, content).await.status(), 200, "S3 answers the PUT");
    assert_eq!(
        app.get(&format!("upload/complete/sha512/{d}"))
            .await
            .status(),
        202,
        "verified at once"
    );
    // Bytes swapped in after verification never reach the final key.
    let _ = put(&url, b"evil bytes of another size").await;
    let location = app.location(&format!("sha512/{d}")).await;
    let got = reqwest::get(&location)
        .await
        .expect("get")
        .bytes()
        .await
        .expect("body");
    assert_eq!(&got[..], content);

    let report = tooltool::jobs::Job::Replicate
        .run_once(&app.service)
        .await
        .expect("replicate");
    assert_eq!((report.done, report.failed), (1, 0));
    let f: serde_json::Value = app
        .get(&format!("file/sha512/{d}"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(f["instances"], json!(["us-east-1", "us-west-2"]));
    let west = app.location(&format!("sha512/{d}?region=us-west-2")).await;
    assert!(west.contains("tooltool-west"), "{west}");
    assert_eq!(
        &reqwest::get(&west)
            .await
            .expect("get")
            .bytes()
            .await
            .expect("body")[..],
        content
    );

    let resp = app
        .http
        .patch(app.at(&format!("file/sha512/{d}")))
        .bearer_auth(&token)
        .json(&json!([{"op": "delete_instances"}]))
        .send()
        .await
        .expect("patch");
    assert_eq!(resp.status(), 200);
    for location in [location, west] {
        assert!(
            !reqwest::get(&location)
                .await
                .expect("get")
                .status()
                .is_success(),
            "deleted: {location}"
        );
    }
}

async fn wrong_bytes(app: TestApp) {
    let token = app.token("s3-user", &["upload/*"]);
    let declared: &[u8] = b"the declared bytes";
    let d = sha512_hex(declared);
    let batch = app
        .create_batch(
            &token,
            &batch_body("bad", &[("b.bin", declared, "public")]),
            Some("us-west-2"),
        )
        .await;
    let url = put_url(&batch, "b.bin");
    assert!(
        url.contains("tooltool-west"),
        "the requested region receives the upload: {url}"
    );
    assert_eq!(
        put(&url, b"THE DECLARED BYTES").await.status(),
        200,
        "same size, other bytes"
    );
    let resp = app.get(&format!("upload/complete/sha512/{d}")).await;
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.expect("json");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|t| t.starts_with("uploaded content does not match")),
        "{body}"
    );
    assert_eq!(app.get(&format!("sha512/{d}")).await.status(), 404);
    let slot = url.split('?').next().expect("url").to_owned();
    assert!(
        !reqwest::get(&slot)
            .await
            .expect("get")
            .status()
            .is_success(),
        "staging object deleted"
    );
}
