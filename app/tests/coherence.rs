//! Two server processes on one PostgreSQL database, each caching file
//! records: what one of them changes, the other answers within 100 ms,
//! also after the session it hears changes on was killed.

mod common;

use std::time::{Duration, Instant};

use common::{Server, all_scopes_token_with};
use serde_json::json;

/// Both processes mint and accept the same tokens.
const SECRET: &str = "coherence-test-secret-0123456789abcdef";

/// The longest another process may answer from a stale record.
const WITHIN: Duration = Duration::from_millis(100);

/// Anonymous `GET base/sha512/digest` statuses until `want`; how long it took.
async fn until_status(base: &str, digest: &str, want: u16) -> Duration {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let start = Instant::now();
    loop {
        let status = http
            .get(format!("{base}/sha512/{digest}"))
            .send()
            .await
            .expect("get")
            .status()
            .as_u16();
        if status == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{base} never answered {want} (last {status})"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// `ops` applied through `a`; how long until `b` answers `want`.
async fn change(
    a: &Server,
    b: &Server,
    token: &str,
    digest: &str,
    ops: serde_json::Value,
    want: u16,
) -> Duration {
    patch(&a.url, token, digest, ops).await;
    until_status(&b.url, digest, want).await
}

fn visibility(v: &str) -> serde_json::Value {
    json!([{"op": "set_visibility", "visibility": v}])
}

async fn patch(base: &str, token: &str, digest: &str, ops: serde_json::Value) {
    let status = reqwest::Client::new()
        .patch(format!("{base}/file/sha512/{digest}"))
        .bearer_auth(token)
        .json(&ops)
        .send()
        .await
        .expect("patch")
        .status();
    assert_eq!(status, 200, "PATCH {digest}");
}

/// PUTs `content` to `put_url` and completes the upload through `base`
/// (verified at once).
async fn upload(base: &str, digest: &str, put_url: &str, content: &[u8]) {
    let put = reqwest::Client::new()
        .put(put_url)
        .body(content.to_vec())
        .send()
        .await
        .expect("put");
    assert_eq!(put.status(), 200);
    let done = reqwest::Client::new()
        .get(format!("{base}/upload/complete/sha512/{digest}"))
        .send()
        .await
        .expect("complete")
        .status();
    assert_eq!(done, 202, "verified");
}

async fn cache_hits(base: &str) -> u64 {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .find_map(|l| l.strip_prefix("tooltool_file_cache_lookups_total{result=\"hit\"} "))
        .map_or(0, |v| v.parse().expect("number"))
}

/// Visibility, deletion and a new upload through A, seen by B within
/// 100 ms; B's listening session killed, B still coherent at once, and
/// caching again once it listens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_one_process_changes_the_other_answers_within_100_ms() {
    let (url, schema) = tooltool_postgres::testing::fresh_schema().await;
    let name = format!("coh{schema}");
    let db = format!("{url}&application_name={name}");
    let region_dir = tempfile::tempdir().expect("tempdir");
    let regions = format!("local:{}", region_dir.path().display());
    let (da, db_dir) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    let env = |dir: &tempfile::TempDir| -> Vec<(String, String)> {
        vec![
            ("DATABASE_URL".into(), db.clone()),
            ("LOCAL_REGIONS".into(), regions.clone()),
            ("JWT_SECRET".into(), SECRET.into()),
            ("VERIFY_INTERVAL".into(), "0".into()),
            ("REPLICATE_INTERVAL".into(), "0".into()),
            ("DATA_DIR".into(), dir.path().display().to_string()),
        ]
    };
    let start = |dir: &tempfile::TempDir| {
        let vars = env(dir);
        let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Server::start(dir.path().to_str().expect("utf-8"), &pairs)
    };
    let (a, b) = (start(&da), start(&db_dir));
    let token = all_scopes_token_with(&[
        ("JWT_SECRET", SECRET),
        ("DATA_DIR", da.path().to_str().expect("utf-8")),
    ]);

    // A new upload through A: B, which was asked before, serves it at once.
    let content = b"coherent across processes".as_slice();
    let (digest, put_url) = common::declare(&a.url, &token, "f.bin", content).await;
    until_status(&b.url, &digest, 404).await;
    upload(&a.url, &digest, &put_url, content).await;
    let seen = until_status(&b.url, &digest, 302).await;
    assert!(seen < WITHIN, "new upload seen by B after {seen:?}");
    // B now answers it from memory.
    let hits = cache_hits(&b.url).await;
    until_status(&b.url, &digest, 302).await;
    assert!(cache_hits(&b.url).await > hits, "B caches the record");

    // Made internal through A: B refuses anonymous downloads within 100 ms.
    let seen = change(&a, &b, &token, &digest, visibility("internal"), 403).await;
    assert!(seen < WITHIN, "internal seen by B after {seen:?}");
    let seen = change(&a, &b, &token, &digest, visibility("public"), 302).await;
    assert!(seen < WITHIN, "public again seen by B after {seen:?}");

    // B's (and A's) listening sessions killed: the next change is still
    // seen within 100 ms (no cached record is used while nobody listens).
    let killed = tooltool_postgres::testing::terminate_sessions(&format!("{name}-listener")).await;
    assert_eq!(killed, 2, "one listening session per process");
    let seen = change(&a, &b, &token, &digest, visibility("internal"), 403).await;
    assert!(
        seen < WITHIN,
        "internal seen by B after its listener died: {seen:?}"
    );

    // Once B listens again it caches again, and stays coherent.
    patch(&a.url, &token, &digest, visibility("public")).await;
    let listening = Instant::now();
    loop {
        let hits = cache_hits(&b.url).await;
        until_status(&b.url, &digest, 302).await;
        until_status(&b.url, &digest, 302).await;
        if cache_hits(&b.url).await > hits {
            break;
        }
        assert!(
            listening.elapsed() < Duration::from_secs(10),
            "B never cached again"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Deleted through A: B never hands out the deleted copy.
    let seen = change(
        &a,
        &b,
        &token,
        &digest,
        json!([{"op": "delete_instances"}]),
        404,
    )
    .await;
    assert!(seen < WITHIN, "deletion seen by B after {seen:?}");
}
