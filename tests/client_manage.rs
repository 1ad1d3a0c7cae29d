//! The client's upload and management against the real server: the
//! generated API client with a bearer token and with Taskcluster
//! credentials (permanent, temporary, from the environment) signed with
//! Hawk, on the embedded default and on Garage with files above the
//! single-PUT limit.

use tooltool_client::auth::Credentials;
use tooltool_client::fetch::{Fetched, Fetcher};
use tooltool_client::manage::Server;
use tooltool_client::manifest::{FileRecord, Manifest};
use tooltool_tests::client::{content, fetcher, record};
use tooltool_tests::{PREFIX, spawn_app, spawn_with};

const UPLOAD: &str = "upload/*";

/// `files` (name, bytes, visibility) written into `dir`, as a manifest.
fn manifest_in(dir: &std::path::Path, files: &[(&str, &[u8], &str)]) -> Manifest {
    Manifest {
        records: files
            .iter()
            .map(|(name, bytes, visibility)| {
                std::fs::write(dir.join(name), bytes).expect("write");
                FileRecord {
                    visibility: Some((*visibility).into()),
                    ..record(name, bytes)
                }
            })
            .collect(),
    }
}

#[tokio::test]
async fn upload_change_visibility_and_delete_through_the_generated_client() {
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
    let server = Server::new(&app.url, Credentials::Bearer(token.clone())).expect("server");
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
    let anonymous = fetcher(&app, Credentials::Anonymous);
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
    let reader = fetcher(&app, Credentials::Bearer(token.clone()));
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
    let stranger = Server::new(&app.url, Credentials::Bearer("nope".into())).expect("server");
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

/// Taskcluster credentials as a file (permanent, then temporary with their
/// certificate) and from the environment: every call signed with Hawk over
/// method, path and query and body, accepted by Taskcluster (the fake
/// checks with the `hawk` crate, certificates as Taskcluster does).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taskcluster_credentials_sign_every_call() {
    let scopes: Vec<String> = ["upload/*", "download/internal", "manage"]
        .iter()
        .map(|s| format!("{PREFIX}/{s}"))
        .collect();
    let issuer = ("project/releng/ci", "ci-access-token-0123456789");
    let taskcluster = tooltool_taskcluster::fake::start(vec![(
        issuer.0.to_owned(),
        issuer.1.to_owned(),
        scopes.clone(),
    )])
    .await;
    let app = spawn_with(&["--taskcluster-root-url", &format!("{taskcluster}/ok")]).await;
    let from_file =
        |json: serde_json::Value| Credentials::from_file(&json.to_string()).expect("credentials");
    let permanent = from_file(serde_json::json!({"clientId": issuer.0, "accessToken": issuer.1}));
    let temporary = from_file(tooltool_taskcluster::fake::temporary_credentials(
        issuer, &scopes, None,
    ));
    let named = from_file(tooltool_taskcluster::fake::temporary_credentials(
        issuer,
        &scopes[1..],
        Some("project/releng/ci/task-1"),
    ));
    let env = Credentials::from_env(|name| match name {
        "TASKCLUSTER_CLIENT_ID" => Some(issuer.0.to_owned()),
        "TASKCLUSTER_ACCESS_TOKEN" => Some(issuer.1.to_owned()),
        _ => None,
    })
    .expect("credentials");

    let dir = tempfile::tempdir().expect("tempdir");
    for (i, credentials) in [permanent, temporary, env].into_iter().enumerate() {
        let seed = u8::try_from(i).expect("small") * 10;
        let bytes = content(seed, 50_000);
        let name = format!("tc{i}.bin");
        let manifest = manifest_in(dir.path(), &[(&name, &bytes, "internal")]);
        let server = Server::new(&app.url, credentials.clone()).expect("server");
        server
            .upload(
                &manifest,
                dir.path(),
                "Bug 7 - signed with Hawk",
                Some("us-east-1"),
                2,
            )
            .await
            .unwrap_or_else(|e| panic!("{credentials:?}: {e}"));
        // The region travels in the query, which the signature covers.
        let mut reader = Fetcher::new(
            std::slice::from_ref(&app.url),
            credentials.clone(),
            Some("us-east-1".into()),
        )
        .expect("fetcher");
        reader.retry = tooltool_tests::client::fast_retry(1);
        let out = tempfile::tempdir().expect("tempdir");
        assert_eq!(
            reader.fetch(&manifest.records[0], out.path(), None).await,
            Ok(Fetched::Downloaded { bytes: 50_000 }),
            "{credentials:?}"
        );
        server
            .change_visibility(&manifest.records[0].digest, "public")
            .await
            .unwrap_or_else(|e| panic!("{credentials:?}: {e}"));
    }
    // A named temporary client holds the certificate's scopes only: it
    // reads internal files but may not upload.
    let bytes = content(99, 1000);
    let manifest = manifest_in(dir.path(), &[("named.bin", &bytes, "public")]);
    let err = Server::new(&app.url, named.clone())
        .expect("server")
        .upload(&manifest, dir.path(), "Bug 8", None, 1)
        .await
        .expect_err("no upload scope");
    assert!(err.contains("403 Forbidden"), "{err}");

    // A wrong access token is Taskcluster's refusal, in one line.
    let wrong = from_file(serde_json::json!({"clientId": issuer.0, "accessToken": "wrong"}));
    let err = Server::new(&app.url, wrong)
        .expect("server")
        .upload(&manifest, dir.path(), "Bug 9", None, 1)
        .await
        .expect_err("refused");
    assert!(
        err.contains("401 Unauthorized") && !err.contains('\n'),
        "{err}"
    );
}

/// On a real S3-compatible store (Garage) with a 5 MiB single-PUT limit:
/// the file above it goes through the URL the server offers for it (its
/// own route), the one below straight to the store; both fetch back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_and_fetch_on_garage_above_and_below_the_single_put_limit() {
    let (app, _node) = tooltool_tests::garage_app(&["--s3-single-put-limit", "5242880"]).await;
    let token = app.token("releng@example.com", &[UPLOAD, "manage"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let large = content(21, 6 << 20);
    let small = content(22, 100_000);
    let manifest = manifest_in(
        dir.path(),
        &[
            ("large.bin", &large, "public"),
            ("small.bin", &small, "public"),
        ],
    );
    let server = Server::new(&app.url, Credentials::Bearer(token)).expect("server");
    server
        .upload(&manifest, dir.path(), "Bug 10 - big and small", None, 2)
        .await
        .expect("upload");
    let out = tempfile::tempdir().expect("tempdir");
    let wanted: Vec<_> = manifest.records.iter().collect();
    let outcomes = fetcher(&app, Credentials::Anonymous)
        .fetch_all(&wanted, out.path(), None, 2)
        .await;
    assert_eq!(
        outcomes,
        vec![
            Ok(Fetched::Downloaded { bytes: 6 << 20 }),
            Ok(Fetched::Downloaded { bytes: 100_000 })
        ]
    );
    assert_eq!(
        std::fs::read(out.path().join("large.bin")).expect("read"),
        large
    );
    assert_eq!(
        std::fs::read(out.path().join("small.bin")).expect("read"),
        small
    );

    // Management reaches the bucket: internal, then no copy at all.
    let large_digest = &manifest.records[0].digest;
    server
        .change_visibility(large_digest, "internal")
        .await
        .expect("patch");
    let again = tempfile::tempdir().expect("tempdir");
    let anonymous = fetcher(&app, Credentials::Anonymous);
    let err = anonymous
        .fetch(&manifest.records[0], again.path(), None)
        .await
        .expect_err("internal now");
    assert!(err.contains("403"), "{err}");
    server.delete(large_digest).await.expect("delete");
    let err = fetcher(&app, Credentials::Anonymous)
        .fetch(&manifest.records[1], again.path(), None)
        .await;
    assert_eq!(
        err,
        Ok(Fetched::Downloaded { bytes: 100_000 }),
        "the other file stays"
    );
    let reader = app.token("reader@example.com", &["download/internal"]);
    let err = fetcher(&app, Credentials::Bearer(reader))
        .fetch(&manifest.records[0], again.path(), None)
        .await
        .expect_err("deleted");
    assert!(err.contains("404"), "{err}");
}
