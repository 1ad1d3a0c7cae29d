//! tooltool on a three-node Garage cluster (three processes on loopback,
//! replication factor 3: a write or read needs two nodes), with nodes
//! killed (SIGKILL) and restarted under it: nothing acknowledged is lost,
//! downloads and uploads keep working with one node down, an upload whose
//! verification meets the store without its quorum is answered 503 in the
//! error shape (after a bounded "not yet" while Garage has not noticed)
//! and retried by the verify job (neither lost nor rejected),
//! and every file is downloadable, byte for byte, once the nodes are back.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use tooltool::jobs::Job;
use tooltool_s3::garage::Garage;
use tooltool_tests::{TestApp, batch_body, put, put_url, sha512_hex, spawn_on_garage};

/// Runs blocking node control (start, kill, restart) off the async workers.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// Declares `content` as a public file and PUTs it to the URL the server
/// hands out (straight to the first node); its digest and the PUT's status.
async fn upload(app: &TestApp, token: &str, name: &str, content: &[u8]) -> (String, StatusCode) {
    let batch = app
        .create_batch(token, &batch_body(name, &[(name, content, "public")]), None)
        .await;
    let status = put(&put_url(&batch, name), content).await.status();
    (sha512_hex(content), status)
}

async fn complete(app: &TestApp, digest: &str) -> reqwest::Response {
    app.get(&format!("upload/complete/sha512/{digest}")).await
}

/// The bytes a client gets for `digest`: the server's 302, then the store.
async fn download(app: &TestApp, digest: &str) -> Result<Vec<u8>, StatusCode> {
    let location = app.location(&format!("sha512/{digest}")).await;
    let resp = reqwest::get(&location).await.expect("get from the store");
    if resp.status().is_success() {
        Ok(resp.bytes().await.expect("body").to_vec())
    } else {
        Err(resp.status())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_down_loses_nothing_and_a_missing_quorum_is_a_503_until_it_returns() {
    let mut cluster = blocking(|| Garage::cluster(3, &["tooltool"]));
    let app = spawn_on_garage("us-east-1:tooltool", Some(&cluster.endpoint), &[]).await;
    let token = app.token("ops", &["upload/*"]);
    let files: Vec<Vec<u8>> = (0..3u8)
        .map(|i| (0..300_000u32).map(|n| (n as u8) ^ i).collect())
        .collect();

    // All three nodes up.
    let (a, status) = upload(&app, &token, "a.bin", &files[0]).await;
    assert_eq!(status, 200);
    assert_eq!(complete(&app, &a).await.status(), 202);

    // One node killed: two of three still make every quorum.
    blocking(|| cluster.kill(2));
    assert_eq!(download(&app, &a).await.as_deref(), Ok(&files[0][..]));
    let (b, status) = upload(&app, &token, "b.bin", &files[1]).await;
    assert_eq!(status, 200, "uploads keep working with one node down");
    assert_eq!(complete(&app, &b).await.status(), 202);
    assert_eq!(download(&app, &b).await.as_deref(), Ok(&files[1][..]));
    let (c, status) = upload(&app, &token, "c.bin", &files[2]).await;
    assert_eq!(status, 200, "the store acknowledged c");

    // A second node killed before c is verified: no quorum. Until Garage
    // notices (a few seconds), its requests wait on the dead node, so
    // upload/complete may first answer "not yet" (409, retry) at the end
    // of its bounded wait; once Garage knows, the store's refusal comes at
    // once and the client gets a 503.
    blocking(|| cluster.kill(1));
    let started = Instant::now();
    let first = complete(&app, &c).await.status();
    assert!(
        [StatusCode::CONFLICT, StatusCode::SERVICE_UNAVAILABLE].contains(&first),
        "{first}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "bounded: {:?}",
        started.elapsed()
    );
    blocking(|| cluster.wait_down(1));
    let deadline = Instant::now() + Duration::from_secs(30);
    let resp = loop {
        let resp = complete(&app, &c).await;
        match resp.status() {
            StatusCode::SERVICE_UNAVAILABLE => break resp,
            StatusCode::CONFLICT if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => panic!("upload/complete without a quorum answered {other}"),
        }
    };
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body: Value = resp.json().await.expect("the error shape");
    assert_eq!(body["status"], 503, "{body}");
    assert_eq!(body["error"]["description"], body["detail"], "{body}");
    assert!(
        body["title"]
            .as_str()
            .is_some_and(|t| t.starts_with("503 Service Unavailable: ")),
        "{body}"
    );
    let report = Job::Verify
        .run_once(&app.service)
        .await
        .expect("verify run");
    assert_eq!(
        (report.done, report.rejected),
        (0, 0),
        "neither verified nor rejected without a quorum: {report}"
    );
    assert!(report.failed >= 1, "the attempt failed, to retry: {report}");
    // The server's 302 needs no store; the store itself refuses the read.
    let refused = download(&app, &a).await.expect_err("no quorum to read");
    assert!(refused.is_server_error(), "{refused}");

    // Both nodes back: the verify job settles c; nothing was lost.
    blocking(|| {
        cluster.restart(1);
        cluster.restart(2);
        cluster.wait_all_up();
    });
    let report = Job::Verify
        .run_once(&app.service)
        .await
        .expect("verify run");
    assert_eq!((report.done, report.rejected), (1, 0), "{report}");
    assert_eq!(complete(&app, &c).await.status(), 202);
    for (digest, content) in [&a, &b, &c].into_iter().zip(&files) {
        assert_eq!(download(&app, digest).await.as_deref(), Ok(&content[..]));
    }
}
