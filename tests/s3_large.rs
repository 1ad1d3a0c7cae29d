//! Files above the store's single-PUT limit (S3: 5 GiB; lowered here with
//! `S3_SINGLE_PUT_LIMIT` to 5 MiB so the test moves megabytes), on a real
//! Garage node: the client's one PUT per file goes to this server, which
//! streams it into a multipart upload of the staging key, verifies it and
//! promotes it by conditional part copies; files below the limit still go
//! straight to S3. A wrong, oversized or interrupted upload leaves
//! nothing in either bucket: no object, no unfinished multipart upload.

use std::time::Duration;

use chrono::Utc;
use tokio::io::AsyncWriteExt;
use tooltool_domain::{Digest, ObjectKey, RegionName, UrlSigner};
use tooltool_ports::BlobStore;
use tooltool_s3::garage::{ACCESS_KEY, Garage, SECRET_KEY, SIGNING_REGION};
use tooltool_tests::{TestApp, batch_body, garage_app, put, put_url, sha512_hex};

const MIB: usize = 1024 * 1024;
const LIMIT: &str = "5242880";

/// Two parts of 5 MiB and a short third: above the lowered limit.
fn large(seed: u8) -> Vec<u8> {
    (0..(2 * 5 * MIB + 1000))
        .map(|i| (i % 251) as u8 ^ seed)
        .collect()
}

async fn app() -> (TestApp, Garage) {
    garage_app(&["--s3-single-put-limit", LIMIT]).await
}

/// The node's two buckets, seen directly.
fn buckets(node: &Garage) -> Vec<tooltool_s3::S3Store> {
    let account = tooltool_s3::Account::new(Some(&node.endpoint), ACCESS_KEY, SECRET_KEY)
        .with_signing_region(Some(SIGNING_REGION));
    [
        ("us-east-1", "tooltool-east"),
        ("us-west-2", "tooltool-west"),
    ]
    .into_iter()
    .map(|(region, bucket)| {
        let region = RegionName::parse(region).expect("region");
        let signer = UrlSigner::new(&region, "http://unused", b"unused");
        tooltool_s3::S3Store::new(region, bucket, &account, signer)
    })
    .collect()
}

/// Staging objects and unfinished multipart uploads in either bucket.
async fn leftovers(node: &Garage) -> Vec<String> {
    let mut left = Vec::new();
    for store in buckets(node) {
        let later = Utc::now() + chrono::Duration::hours(1);
        for key in store.list_staging(later).await.expect("list") {
            left.push(format!("{}: {key}", store.region()));
        }
    }
    left
}

/// Waits (up to 10 s) until nothing is left, for aborts that run after
/// the client has gone.
async fn assert_nothing_left(node: &Garage, what: &str) {
    let mut left = Vec::new();
    for _ in 0..100 {
        left = leftovers(node).await;
        if left.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} left {left:?}");
}

/// The `put_url` of a new batch declaring `content` as public `big.tar`.
async fn declare(app: &TestApp, token: &str, message: &str, content: &[u8]) -> String {
    let batch = app
        .create_batch(
            token,
            &batch_body(message, &[("big.tar", content, "public")]),
            None,
        )
        .await;
    put_url(&batch, "big.tar")
}

/// The `detail` of an error answer with `status`.
async fn detail(resp: reqwest::Response, status: u16) -> String {
    assert_eq!(resp.status(), status);
    let body: serde_json::Value = resp.json().await.expect("json");
    body["detail"].as_str().unwrap_or_default().to_owned()
}

async fn final_object_exists(node: &Garage, digest: &str) -> bool {
    let key = ObjectKey::File(Digest::parse(digest).expect("digest"));
    for store in buckets(node) {
        if store.head(&key).await.expect("head").is_some() {
            return true;
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_sequence_above_the_single_put_limit() {
    let (app, node) = app().await;
    let token = app.token("releng", &["*"]);
    let big = large(0);
    let small: &[u8] = b"small files still go to S3 directly";
    let d = sha512_hex(&big);
    let batch = app
        .create_batch(
            &token,
            &batch_body(
                "Bug 6 - a toolchain above the limit",
                &[("big.tar", &big, "public"), ("small.txt", small, "public")],
            ),
            None,
        )
        .await;
    let big_url = put_url(&batch, "big.tar");
    assert!(
        big_url.starts_with(&format!("{}blob/", app.url)),
        "above the limit the server receives the upload: {big_url}"
    );
    let small_url = put_url(&batch, "small.txt");
    assert!(
        small_url.starts_with(&node.endpoint) && small_url.contains("X-Amz-Signature"),
        "{small_url}"
    );
    assert_eq!(put(&small_url, small).await.status(), 200);
    let resp = put(&big_url, &big).await;
    assert_eq!(resp.status(), 200, "the Mozilla client accepts exactly 200");
    for digest in [&d, &sha512_hex(small)] {
        assert_eq!(
            app.get(&format!("upload/complete/sha512/{digest}"))
                .await
                .status(),
            202
        );
    }
    // Promoted by part copies (it is above the copy limit too), downloaded
    // from S3 itself.
    let location = app.location(&format!("sha512/{d}")).await;
    assert!(location.starts_with(&node.endpoint), "{location}");
    let got = reqwest::get(&location)
        .await
        .expect("get")
        .bytes()
        .await
        .expect("body");
    assert!(
        got[..] == big[..],
        "the downloaded bytes are the uploaded ones"
    );
    assert_nothing_left(&node, "a verified upload").await;

    // Replication copies it in parts into the other bucket.
    let report = tooltool::jobs::Job::Replicate
        .run_once(&app.service)
        .await
        .expect("replicate");
    assert_eq!((report.done, report.failed), (2, 0));
    for region in ["us-east-1", "us-west-2"] {
        let location = app.location(&format!("sha512/{d}?region={region}")).await;
        let got = reqwest::get(&location)
            .await
            .expect("get")
            .bytes()
            .await
            .expect("body");
        assert!(got[..] == big[..], "{region}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_or_oversized_large_uploads_leave_nothing() {
    let (app, node) = app().await;
    let token = app.token("releng", &["upload/*"]);
    let declared = large(0);
    let d = sha512_hex(&declared);
    let url = declare(&app, &token, "wrong", &declared).await;
    // Same size, other bytes: received, hashed, refused.
    let why = detail(put(&url, &large(1)).await, 400).await;
    assert!(why.starts_with("uploaded content does not match"), "{why}");
    assert_eq!(app.get(&format!("sha512/{d}")).await.status(), 404);
    assert!(!final_object_exists(&node, &d).await);
    assert_nothing_left(&node, "a wrong upload").await;

    // More bytes than declared (one more, so that the whole body is read
    // before the answer and the client surely sees it): refused.
    let url = declare(&app, &token, "long", &declared).await;
    let mut longer = declared.clone();
    longer.push(0);
    let why = detail(put(&url, &longer).await, 400).await;
    assert!(why.contains("received more"), "{why}");
    assert!(!final_object_exists(&node, &d).await);
    assert_nothing_left(&node, "an oversized upload").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_large_upload_leaves_nothing_and_can_be_retried() {
    let (app, node) = app().await;
    let token = app.token("releng", &["upload/*"]);
    let content = large(2);
    let d = sha512_hex(&content);
    let url = declare(&app, &token, "cut", &content).await;
    // The client sends the headers and 7 MiB (more than one part, so a
    // multipart upload is open), then its connection drops.
    let target = url.strip_prefix(&app.url).expect("our url");
    let mut socket = tokio::net::TcpStream::connect(app.authority())
        .await
        .expect("connect");
    let head = format!(
        "PUT /{target} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        app.authority(),
        content.len()
    );
    socket.write_all(head.as_bytes()).await.expect("head");
    socket
        .write_all(&content[..7 * MIB])
        .await
        .expect("first bytes");
    socket.flush().await.expect("flush");
    // Let the server read what was sent before the connection drops.
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(socket);
    assert_nothing_left(&node, "an interrupted upload").await;
    assert!(!final_object_exists(&node, &d).await);
    assert_eq!(app.get(&format!("sha512/{d}")).await.status(), 404);

    // The slot was released: the same URL takes the whole file now.
    assert_eq!(put(&url, &content).await.status(), 200);
    assert_eq!(
        app.get(&format!("upload/complete/sha512/{d}"))
            .await
            .status(),
        202
    );
    assert!(final_object_exists(&node, &d).await);
    assert_nothing_left(&node, "the retried upload").await;
}
