//! The client library against the real server (embedded default): the
//! generated API client, and fetch with its cache, resume and errors.

use tooltool_client::auth::Credentials;
use tooltool_client::cache::Cache;
use tooltool_client::fetch::{Fetched, Fetcher, partial_path};
use tooltool_client::manifest::Manifest;
use tooltool_tests::client::{content, fast_retry, fetcher, only_files, record, requests};
use tooltool_tests::spawn_app;

const UPLOAD: &str = "upload/*";

#[tokio::test]
async fn the_generated_client_reads_what_the_server_stores() {
    let app = spawn_app().await;
    let token = app.token("up@example.com", &[UPLOAD]);
    let bytes = content(1, 1000);
    let digest = app.upload(&token, "a.bin", &bytes, "public").await;
    let client =
        tooltool_client::api::Client::new(app.url.trim_end_matches('/'), Credentials::Anonymous);
    let param: tooltool_client::api::types::GetFileDigest = digest.parse().expect("a digest");
    let file = client
        .get_file(&param)
        .await
        .expect("get_file")
        .into_inner();
    assert_eq!(file.size, 1000);
    assert_eq!(file.digest, digest);
    // The document's pattern is checked before anything is sent.
    assert!(
        "nope"
            .parse::<tooltool_client::api::types::GetFileDigest>()
            .is_err()
    );
    // The server's refusals come back with their status.
    let unknown: tooltool_client::api::types::GetFileDigest =
        "0".repeat(128).parse().expect("a digest");
    let err = client.get_file(&unknown).await.expect_err("unknown digest");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(404), "{err}");
}

#[tokio::test]
async fn fetch_downloads_in_parallel_then_serves_from_the_cache() {
    let app = spawn_app().await;
    let token = app.token("up@example.com", &[UPLOAD]);
    let files: Vec<(String, Vec<u8>)> = (0..6)
        .map(|i| (format!("f{i}.bin"), content(i, 200_000 + usize::from(i))))
        .collect();
    for (name, bytes) in &files {
        app.upload(&token, name, bytes, "public").await;
    }
    let manifest = Manifest {
        records: files.iter().map(|(n, b)| record(n, b)).collect(),
    };
    let cache_dir = tempfile::tempdir().expect("tempdir");
    let cache = Cache::open(cache_dir.path()).expect("cache");
    let f = fetcher(&app, Credentials::Anonymous);

    let first = tempfile::tempdir().expect("tempdir");
    let wanted: Vec<_> = manifest.records.iter().collect();
    let outcomes = f.fetch_all(&wanted, first.path(), Some(&cache), 4).await;
    // The whole manifest cost one request to the API (`POST /fetch`), none
    // per file.
    assert_eq!(requests(&app, "resolve", 200).await, 1);
    assert_eq!(requests(&app, "download", 302).await, 0);
    for ((name, bytes), outcome) in files.iter().zip(outcomes) {
        assert_eq!(
            outcome,
            Ok(Fetched::Downloaded {
                bytes: bytes.len() as u64
            }),
            "{name}"
        );
        assert_eq!(
            &std::fs::read(first.path().join(name)).expect("read"),
            bytes,
            "{name}"
        );
    }
    assert_eq!(
        only_files(first.path()),
        files.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
        "no partial files left"
    );

    // Again into a fresh folder: every file from the cache, nothing asked.
    let second = tempfile::tempdir().expect("tempdir");
    assert_eq!(
        f.fetch_all(&wanted, second.path(), Some(&cache), 4).await,
        vec![Ok(Fetched::FromCache); wanted.len()]
    );
    assert_eq!(requests(&app, "resolve", 200).await, 1);
    // And into the first folder: already there.
    assert_eq!(
        f.fetch(&manifest.records[0], first.path(), Some(&cache))
            .await,
        Ok(Fetched::Present)
    );

    // A corrupted entry (same size, other bytes) is found and replaced.
    let entry = cache_dir.path().join(&manifest.records[1].digest);
    std::fs::remove_file(&entry).expect("unlink the shared inode");
    std::fs::write(&entry, vec![0u8; files[1].1.len()]).expect("corrupt");
    let third = tempfile::tempdir().expect("tempdir");
    let outcome = f
        .fetch(&manifest.records[1], third.path(), Some(&cache))
        .await;
    assert_eq!(
        outcome,
        Ok(Fetched::Downloaded {
            bytes: files[1].1.len() as u64
        })
    );
    assert_eq!(
        std::fs::read(&entry).expect("entry"),
        files[1].1,
        "the entry was replaced"
    );
    assert_eq!(
        std::fs::read(third.path().join("f1.bin")).expect("read"),
        files[1].1
    );
}

#[tokio::test]
async fn an_interrupted_download_resumes_where_it_stopped() {
    let app = spawn_app().await;
    let token = app.token("up@example.com", &[UPLOAD]);
    let bytes = content(7, 3_000_000);
    app.upload(&token, "big.bin", &bytes, "public").await;
    let r = record("big.bin", &bytes);
    let dir = tempfile::tempdir().expect("tempdir");
    // What a killed run leaves: the first part of the file.
    std::fs::write(partial_path(dir.path(), &r), &bytes[..1_000_000]).expect("partial");
    let outcome = fetcher(&app, Credentials::Anonymous)
        .fetch(&r, dir.path(), None)
        .await;
    assert_eq!(
        outcome,
        Ok(Fetched::Downloaded { bytes: 2_000_000 }),
        "only the rest crossed the network"
    );
    assert_eq!(
        std::fs::read(dir.path().join("big.bin")).expect("read"),
        bytes
    );

    // A whole partial file (killed before its rename) costs no transfer.
    let whole = tempfile::tempdir().expect("tempdir");
    std::fs::write(partial_path(whole.path(), &r), &bytes).expect("partial");
    let outcome = fetcher(&app, Credentials::Anonymous)
        .fetch(&r, whole.path(), None)
        .await;
    assert_eq!(outcome, Ok(Fetched::Downloaded { bytes: 0 }));
    assert_eq!(
        std::fs::read(whole.path().join("big.bin")).expect("read"),
        bytes
    );

    // A partial file of wrong bytes is detected and the file fetched whole.
    let other = tempfile::tempdir().expect("tempdir");
    std::fs::write(partial_path(other.path(), &r), vec![1u8; 1_000_000]).expect("partial");
    let outcome = fetcher(&app, Credentials::Anonymous)
        .fetch(&r, other.path(), None)
        .await;
    assert_eq!(
        outcome,
        Ok(Fetched::Downloaded {
            bytes: 2_000_000 + 3_000_000
        })
    );
    assert_eq!(
        std::fs::read(other.path().join("big.bin")).expect("read"),
        bytes
    );
}

#[tokio::test]
async fn refusals_are_one_line_errors_that_leave_nothing_behind() {
    let app = spawn_app().await;
    let token = app.token("up@example.com", &[UPLOAD]);
    let secret = content(9, 5000);
    app.upload(&token, "secret.bin", &secret, "internal").await;
    let dir = tempfile::tempdir().expect("tempdir");

    let unknown = record("unknown.bin", b"never uploaded");
    let err = fetcher(&app, Credentials::Anonymous)
        .fetch(&unknown, dir.path(), None)
        .await
        .expect_err("404");
    assert!(
        err.starts_with("unknown.bin: ") && err.contains("404"),
        "{err}"
    );
    assert!(!err.contains('\n'), "{err}");

    let internal = record("secret.bin", &secret);
    let err = fetcher(&app, Credentials::Anonymous)
        .fetch(&internal, dir.path(), None)
        .await
        .expect_err("403");
    assert!(err.contains("403"), "{err}");
    assert!(
        only_files(dir.path()).is_empty(),
        "{:?}",
        only_files(dir.path())
    );

    // With a token that may read internal files, it downloads.
    let reader = app.token("reader@example.com", &["download/internal"]);
    let outcome = fetcher(&app, Credentials::Bearer(reader))
        .fetch(&internal, dir.path(), None)
        .await;
    assert_eq!(outcome, Ok(Fetched::Downloaded { bytes: 5000 }));

    // A bad token: the server's sentence, once.
    let err = fetcher(&app, Credentials::Bearer("not-a-token".into()))
        .fetch(&unknown, dir.path(), None)
        .await
        .expect_err("401");
    assert!(err.contains("401"), "{err}");
}

/// A server that answers 503 (`X-Retry-After: 0`, the error shape) to its
/// first `busy` downloads, then 302 to `location`; counts them. Like the
/// original service, it has no `POST /fetch` (404, not counted).
async fn flaky_server(
    busy: usize,
    location: String,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::Ordering;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/", listener.local_addr().expect("addr"));
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&hits);
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && socket.read(&mut byte).await.unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let answer = if head.starts_with(b"POST /fetch ") {
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_owned()
            } else if counter.fetch_add(1, Ordering::SeqCst) < busy {
                let body = r#"{"detail":"the database is busy"}"#;
                format!(
                    "HTTP/1.1 503 Service Unavailable\r\nX-Retry-After: 0\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
            } else {
                format!(
                    "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )
            };
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    });
    (url, hits)
}

#[tokio::test]
async fn retries_pass_unavailable_and_dead_servers_but_give_up() {
    use std::sync::atomic::Ordering;
    let app = spawn_app().await;
    let token = app.token("up@example.com", &[UPLOAD]);
    let bytes = content(3, 10_000);
    let digest = app.upload(&token, "r.bin", &bytes, "public").await;
    let location = app.location(&format!("sha512/{digest}")).await;
    let r = record("r.bin", &bytes);

    // A dead server first, then one answering 503 twice: three rounds.
    let (flaky, hits) = flaky_server(2, location.clone()).await;
    let mut f = Fetcher::new(
        &["http://127.0.0.1:1/".into(), flaky],
        Credentials::Anonymous,
        None,
    )
    .expect("fetcher");
    f.retry = fast_retry(3);
    let dir = tempfile::tempdir().expect("tempdir");
    assert_eq!(
        f.fetch(&r, dir.path(), None).await,
        Ok(Fetched::Downloaded { bytes: 10_000 })
    );
    assert_eq!(hits.load(Ordering::SeqCst), 3);

    // Two attempts are not enough: the error names the status and the
    // server's sentence, and nothing is left behind.
    let (flaky, hits) = flaky_server(2, location).await;
    let mut f = Fetcher::new(&[flaky], Credentials::Anonymous, None).expect("fetcher");
    f.retry = fast_retry(2);
    let dir = tempfile::tempdir().expect("tempdir");
    let err = f.fetch(&r, dir.path(), None).await.expect_err("still busy");
    assert!(
        err.contains("503") && err.contains("the database is busy"),
        "{err}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    assert!(only_files(dir.path()).is_empty());
}

/// One `POST /fetch` says, for each file, what `GET /sha512` would: the
/// found ones download, the others fail with the same one-line errors.
#[tokio::test]
async fn a_manifest_is_resolved_in_one_request_with_per_file_refusals() {
    let app = spawn_app().await;
    let token = app.token("up@example.com", &[UPLOAD]);
    let mut manifest = Manifest::default();
    for i in 0..20u8 {
        let bytes = content(40 + i, 1000 + usize::from(i));
        let name = format!("m{i}.bin");
        app.upload(&token, &name, &bytes, "public").await;
        manifest.records.push(record(&name, &bytes));
    }
    let secret = content(90, 700);
    app.upload(&token, "secret.bin", &secret, "internal").await;
    manifest.records.push(record("secret.bin", &secret));
    manifest
        .records
        .push(record("unknown.bin", b"never uploaded"));
    let wanted: Vec<_> = manifest.records.iter().collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let outcomes = fetcher(&app, Credentials::Anonymous)
        .fetch_all(&wanted, dir.path(), None, 8)
        .await;
    for (r, o) in wanted.iter().zip(&outcomes).take(20) {
        assert_eq!(
            *o,
            Ok(Fetched::Downloaded { bytes: r.size }),
            "{}",
            r.filename
        );
    }
    let forbidden = outcomes[20].clone().expect_err("internal");
    assert!(
        forbidden.starts_with("secret.bin: ") && forbidden.contains("403 Forbidden"),
        "{forbidden}"
    );
    let missing = outcomes[21].clone().expect_err("unknown");
    assert!(
        missing.starts_with("unknown.bin: ") && missing.contains("404 Not Found"),
        "{missing}"
    );
    assert_eq!(requests(&app, "resolve", 200).await, 1);
    assert_eq!(
        requests(&app, "download", 302).await + requests(&app, "download", 403).await,
        0,
        "no file was asked for alone"
    );
    assert!(
        !only_files(dir.path())
            .iter()
            .any(|n| n.contains("secret") || n.contains("unknown"))
    );

    // A manifest larger than one request allows is resolved in several.
    let mut big = Manifest::default();
    for i in 0..1100u32 {
        big.records.push(record(&format!("n{i}"), &i.to_le_bytes()));
    }
    let wanted: Vec<_> = big.records.iter().collect();
    let hints = fetcher(&app, Credentials::Anonymous)
        .resolve_all(&wanted)
        .await;
    assert_eq!(hints.len(), 1100);
    assert_eq!(requests(&app, "resolve", 200).await, 3);
}
