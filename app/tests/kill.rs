//! A server killed with SIGKILL in the middle of an upload: after a
//! restart nothing partial is visible or left on disk, the slot is free
//! again once the dead process's lease lapses (≤ 30 s), and the same
//! signed URL takes the upload to a verified, downloadable file.

mod common;

use std::time::{Duration, Instant};

use common::{Server, all_scopes_token, declare, tokio_stream_from};

fn files_in(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.flatten().count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_upload_leaves_nothing_partial_and_the_upload_succeeds_after_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8");
    // One address for both processes: the signed URL names it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let (listen, base) = (
        format!("127.0.0.1:{port}"),
        format!("http://127.0.0.1:{port}"),
    );
    let env = [
        ("LOG_LEVEL", "info,tooltool::service::gateway=debug"),
        // Long enough for the dead process's lease to lapse meanwhile.
        ("UPLOAD_EXPIRES_IN", "300"),
        ("LISTEN", &listen),
        ("PUBLIC_URL", &base),
    ];
    let mut server = Server::start(data, &env);
    let token = all_scopes_token(data);
    let content: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let client = reqwest::Client::new();
    let (digest, put_url) = declare(&base, &token, "big.bin", &content).await;

    // Half the body, then the server dies.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let upload = tokio::spawn({
        let (client, put_url, len) = (client.clone(), put_url.clone(), content.len());
        async move {
            client
                .put(put_url)
                .header("Content-Length", len)
                .body(reqwest::Body::wrap_stream(tokio_stream_from(rx)))
                .send()
                .await
        }
    });
    tx.send(Ok(content[..content.len() / 2].to_vec()))
        .await
        .expect("send");
    tokio::task::block_in_place(|| server.wait_for("receiving an upload"));
    server.kill();
    drop(tx);
    assert!(
        upload.await.expect("join").is_err(),
        "the killed server answers nothing"
    );
    let objects = dir.path().join("objects");
    assert_eq!(files_in(&objects.join("sha512")), 0, "nothing was promoted");

    // Restarted: the half-written temporary file is gone, nothing is
    // downloadable, and the slot is still open.
    let _server = Server::start(data, &env);
    assert_eq!(files_in(&objects.join("tmp")), 0, "no temporary file left");
    assert_eq!(files_in(&objects.join("sha512")), 0);
    let download = client
        .get(format!("{base}/sha512/{digest}"))
        .send()
        .await
        .expect("get");
    assert_eq!(download.status(), 404, "nothing partial is served");

    // The same URL again: 409 while the dead process's lease runs, then
    // 200. (A refusal answered before the body is read closes the
    // connection, so the client may see its write fail instead of the 409.)
    let started = Instant::now();
    let put = loop {
        match client.put(&put_url).body(content.clone()).send().await {
            Ok(resp) if resp.status() != 409 => break resp,
            Ok(_) | Err(_) if started.elapsed() < Duration::from_secs(45) => {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            other => panic!("still refused after {:?}: {other:?}", started.elapsed()),
        }
    };
    assert_eq!(put.status(), 200, "after {:?}", started.elapsed());
    assert!(
        started.elapsed() < Duration::from_secs(35),
        "the lease lapsed in time"
    );
    let complete = client
        .get(format!("{base}/upload/complete/sha512/{digest}"))
        .send()
        .await
        .expect("complete");
    assert_eq!(complete.status(), 202);
    let fetched = reqwest::get(format!("{base}/sha512/{digest}"))
        .await
        .expect("download")
        .bytes()
        .await
        .expect("bytes");
    assert!(
        fetched == content,
        "the downloaded bytes are the uploaded ones"
    );
    assert_eq!(files_in(&objects.join("sha512")), 1);
}
