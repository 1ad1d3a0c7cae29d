//! The client library against the real server (embedded default): the
//! generated API client, and fetch with its cache, resume and errors.

use std::path::Path;
use std::time::Duration;

use tooltool_client::cache::Cache;
use tooltool_client::fetch::{Fetched, Fetcher, partial_path};
use tooltool_client::manifest::{FileRecord, Manifest};
use tooltool_client::retry::Retry;
use tooltool_tests::{TestApp, sha512_hex, spawn_app};

const UPLOAD: &str = "upload/*";

fn record(name: &str, content: &[u8]) -> FileRecord {
    FileRecord {
        filename: name.into(),
        size: content.len() as u64,
        algorithm: "sha512".into(),
        digest: sha512_hex(content),
        unpack: false,
        version: None,
        visibility: None,
    }
}

fn fetcher(app: &TestApp, authorization: Option<String>) -> Fetcher {
    let mut f = Fetcher::new(vec![app.url.clone()], authorization, None).expect("fetcher");
    f.retry = Retry {
        attempts: 2,
        base: Duration::from_millis(10),
        max: Duration::from_millis(50),
    };
    f
}

fn content(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn only_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn the_generated_client_reads_what_the_server_stores() {
    let app = spawn_app().await;
    let token = app.token("up@example.com", &[UPLOAD]);
    let bytes = content(1, 1000);
    let digest = app.upload(&token, "a.bin", &bytes, "public").await;
    let client = tooltool_client::api::Client::new(app.url.trim_end_matches('/'));
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
    let f = fetcher(&app, None);

    let first = tempfile::tempdir().expect("tempdir");
    let outcomes = futures_util::future::join_all(
        manifest
            .records
            .iter()
            .map(|r| f.fetch(r, first.path(), Some(&cache))),
    )
    .await;
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

    // Again into a fresh folder: every file from the cache, none downloaded.
    let second = tempfile::tempdir().expect("tempdir");
    for r in &manifest.records {
        assert_eq!(
            f.fetch(r, second.path(), Some(&cache)).await,
            Ok(Fetched::FromCache),
            "{}",
            r.filename
        );
    }
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
    let outcome = fetcher(&app, None).fetch(&r, dir.path(), None).await;
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
    let outcome = fetcher(&app, None).fetch(&r, whole.path(), None).await;
    assert_eq!(outcome, Ok(Fetched::Downloaded { bytes: 0 }));
    assert_eq!(
        std::fs::read(whole.path().join("big.bin")).expect("read"),
        bytes
    );

    // A partial file of wrong bytes is detected and the file fetched whole.
    let other = tempfile::tempdir().expect("tempdir");
    std::fs::write(partial_path(other.path(), &r), vec![1u8; 1_000_000]).expect("partial");
    let outcome = fetcher(&app, None).fetch(&r, other.path(), None).await;
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
    let err = fetcher(&app, None)
        .fetch(&unknown, dir.path(), None)
        .await
        .expect_err("404");
    assert!(
        err.starts_with("unknown.bin: ") && err.contains("404"),
        "{err}"
    );
    assert!(!err.contains('\n'), "{err}");

    let internal = record("secret.bin", &secret);
    let err = fetcher(&app, None)
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
    let outcome = fetcher(&app, Some(format!("Bearer {reader}")))
        .fetch(&internal, dir.path(), None)
        .await;
    assert_eq!(outcome, Ok(Fetched::Downloaded { bytes: 5000 }));

    // A bad token: the server's sentence, once.
    let err = fetcher(&app, Some("Bearer not-a-token".into()))
        .fetch(&unknown, dir.path(), None)
        .await
        .expect_err("401");
    assert!(err.contains("401"), "{err}");
}

/// A server that answers 503 (`X-Retry-After: 0`, the error shape) to its
/// first `busy` requests, then 302 to `location`; counts its requests.
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
            let answer = if counter.fetch_add(1, Ordering::SeqCst) < busy {
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
    let mut f =
        Fetcher::new(vec!["http://127.0.0.1:1/".into(), flaky], None, None).expect("fetcher");
    f.retry = Retry {
        attempts: 3,
        base: Duration::from_millis(10),
        max: Duration::from_millis(50),
    };
    let dir = tempfile::tempdir().expect("tempdir");
    assert_eq!(
        f.fetch(&r, dir.path(), None).await,
        Ok(Fetched::Downloaded { bytes: 10_000 })
    );
    assert_eq!(hits.load(Ordering::SeqCst), 3);

    // Two attempts are not enough: the error names the status and the
    // server's sentence, and nothing is left behind.
    let (flaky, hits) = flaky_server(2, location).await;
    let mut f = Fetcher::new(vec![flaky], None, None).expect("fetcher");
    f.retry = Retry {
        attempts: 2,
        base: Duration::from_millis(10),
        max: Duration::from_millis(50),
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let err = f.fetch(&r, dir.path(), None).await.expect_err("still busy");
    assert!(
        err.contains("503") && err.contains("the database is busy"),
        "{err}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    assert!(only_files(dir.path()).is_empty());
}

#[tokio::test]
async fn upload_change_visibility_and_delete_through_the_generated_client() {
    use tooltool_client::manage::Server;
    let app = spawn_app().await;
    let token = app.token(
        "releng@example.com",
        &[UPLOAD, "download/internal", "manage"],
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let public = content(11, 300_000);
    let internal = content(12, 200_000);
    std::fs::write(dir.path().join("pub.bin"), &public).expect("write");
    std::fs::write(dir.path().join("int.bin"), &internal).expect("write");
    let mut manifest = Manifest {
        records: vec![
            FileRecord {
                visibility: Some("public".into()),
                ..record("pub.bin", &public)
            },
            FileRecord {
                visibility: Some("internal".into()),
                ..record("int.bin", &internal)
            },
        ],
    };
    let server = Server::new(&app.url, Some(&format!("Bearer {token}"))).expect("server");
    server
        .upload(&manifest, dir.path(), "Bug 1 - two files", None, 4)
        .await
        .expect("upload");
    // Uploading the same again declares, finds nothing new, and succeeds.
    server
        .upload(&manifest, dir.path(), "Bug 1 - again", None, 4)
        .await
        .expect("re-upload");

    let out = tempfile::tempdir().expect("tempdir");
    let anonymous = fetcher(&app, None);
    assert_eq!(
        anonymous
            .fetch(&manifest.records[0], out.path(), None)
            .await,
        Ok(Fetched::Downloaded { bytes: 300_000 })
    );
    assert!(
        anonymous
            .fetch(&manifest.records[1], out.path(), None)
            .await
            .expect_err("internal")
            .contains("403")
    );
    let reader = fetcher(&app, Some(format!("Bearer {token}")));
    assert_eq!(
        reader.fetch(&manifest.records[1], out.path(), None).await,
        Ok(Fetched::Downloaded { bytes: 200_000 })
    );

    // change-visibility: the public file becomes internal, at once.
    server
        .change_visibility(&manifest.records[0].digest, "internal")
        .await
        .expect("patch");
    let fresh = tempfile::tempdir().expect("tempdir");
    assert!(
        anonymous
            .fetch(&manifest.records[0], fresh.path(), None)
            .await
            .expect_err("now internal")
            .contains("403")
    );
    // delete: no copy is left to hand out.
    server
        .delete(&manifest.records[0].digest)
        .await
        .expect("delete");
    assert!(
        reader
            .fetch(&manifest.records[0], fresh.path(), None)
            .await
            .expect_err("deleted")
            .contains("404")
    );

    // Refusals are one line with the server's words.
    let err = server
        .change_visibility(&"0".repeat(128), "public")
        .await
        .expect_err("unknown");
    assert!(err.starts_with("404 Not Found: "), "{err}");
    let stranger = Server::new(&app.url, Some("Bearer nope")).expect("server");
    let err = stranger
        .upload(&manifest, dir.path(), "Bug 2", None, 4)
        .await
        .expect_err("bad token");
    assert!(err.contains("401 Unauthorized"), "{err}");
    manifest.records[1].visibility = None;
    let err = server
        .upload(&manifest, dir.path(), "Bug 3", None, 4)
        .await
        .expect_err("no visibility");
    assert!(err.contains("no visibility"), "{err}");
}
