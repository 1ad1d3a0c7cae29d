//! Both Hawk verifiers against headers made exactly as the Mozilla client
//! makes them, and cross-checked with an independent implementation (the
//! `hawk` crate) in both directions.

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tooltool_ports::{AuthError, AuthRequest, Authenticator, Clock};
use tooltool_taskcluster::{HawkClient, LocalVerifier, SignedRequest, TaskclusterVerifier, sign};

/// The fixed "now" of the local-verifier tests.
fn now() -> i64 {
    1_800_000_000
}

struct Fixed(Mutex<DateTime<Utc>>);
impl Clock for Fixed {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().expect("clock")
    }
}

const ID: &str = "project/releng/tooltool-uploader";
const TOKEN: &str = "an-access-token-of-44-characters-xxxxxxxxxxx";
const SCOPE: &str = "project:releng:services/tooltool/api/upload/public";

fn verifier() -> LocalVerifier {
    LocalVerifier::new(
        vec![HawkClient {
            client_id: ID.into(),
            access_token: TOKEN.into(),
            scopes: vec![SCOPE.into()],
        }],
        Arc::new(Fixed(Mutex::new(
            DateTime::from_timestamp(now(), 0).expect("valid"),
        ))),
    )
}

const BODY: &[u8] = br#"{"message": "m", "files": {}}"#;

/// A request as the server sees it, with its Mozilla-client header.
fn request(method: &str, resource: &str, nonce: &str, ts: i64, key: &str) -> AuthRequest {
    let payload = matches!(method, "POST" | "PATCH").then_some(("application/json", BODY));
    let credentials = sign(
        ID,
        key,
        ts,
        nonce,
        &SignedRequest {
            method,
            resource,
            host: "tooltool.example.com",
            port: 443,
            payload,
        },
    );
    AuthRequest {
        method: method.into(),
        resource: resource.into(),
        host: "tooltool.example.com".into(),
        port: 443,
        credentials,
        content_type: payload.map(|(c, _)| c.to_owned()),
        body: payload.map(|(_, b)| bytes::Bytes::from_static(b)),
    }
}

fn refusal(r: Result<tooltool_domain::Principal, AuthError>) -> String {
    match r {
        Err(AuthError::Invalid(why)) => why,
        other => panic!("expected a 401 refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn the_local_verifier_accepts_the_mozilla_client() {
    let v = verifier();
    for (method, resource) in [
        ("GET", "/sha512/abc"),
        ("GET", "/sha512/abc?region=us-west-2"),
        ("POST", "/upload"),
        ("POST", "/upload?region=us-east-1"),
        ("PATCH", "/file/sha512/abc"),
    ] {
        let p = v
            .authenticate(&request(
                method,
                resource,
                &format!("n-{method}{resource}"),
                now(),
                TOKEN,
            ))
            .await
            .unwrap_or_else(|e| panic!("{method} {resource}: {e}"));
        assert_eq!(p.id(), Some(ID));
        assert!(p.scopes().satisfies(SCOPE));
    }
}

#[tokio::test]
async fn the_local_verifier_refuses_with_reasons() {
    let v = verifier();
    assert!(
        refusal(
            v.authenticate(&request("GET", "/x", "k1", now(), "wrong-token"))
                .await
        )
        .contains("mac does not match")
    );
    assert!(
        refusal(
            v.authenticate(&request("GET", "/x", "k2", now() - 16 * 60, TOKEN))
                .await
        )
        .contains("15 minutes")
    );
    assert!(
        refusal(
            v.authenticate(&request("GET", "/x", "k3", now() + 16 * 60, TOKEN))
                .await
        )
        .contains("15 minutes")
    );
    v.authenticate(&request("GET", "/x", "k4", now() - 14 * 60, TOKEN))
        .await
        .expect("inside the window");

    // The resource includes the query: moving the query breaks the MAC.
    let mut moved = request("GET", "/sha512/abc?region=a", "k5", now(), TOKEN);
    moved.resource = "/sha512/abc?region=b".into();
    assert!(refusal(v.authenticate(&moved).await).contains("mac does not match"));

    // A tampered body no longer matches the signed payload hash.
    let mut tampered = request("POST", "/upload", "k6", now(), TOKEN);
    tampered.body = Some(bytes::Bytes::from_static(
        br#"{"message": "evil", "files": {}}"#,
    ));
    assert!(refusal(v.authenticate(&tampered).await).contains("payload hash"));

    let mut other_host = request("GET", "/x", "k7", now(), TOKEN);
    other_host.host = "evil.example.com".into();
    assert!(refusal(v.authenticate(&other_host).await).contains("mac does not match"));

    let mut unknown = request("GET", "/x", "k8", now(), TOKEN);
    unknown.credentials = unknown.credentials.replace(ID, "someone/else");
    assert!(refusal(v.authenticate(&unknown).await).contains("unknown Hawk client"));

    let mut malformed = request("GET", "/x", "k9", now(), TOKEN);
    malformed.credentials = "Hawk id=nope".into();
    assert!(refusal(v.authenticate(&malformed).await).contains("malformed"));
}

#[tokio::test]
async fn headers_cross_check_with_the_hawk_crate() {
    let key = hawk::Key::new(TOKEN.as_bytes(), hawk::DigestAlgorithm::Sha256).expect("key");
    // Ours → theirs.
    let ours = request("POST", "/upload?region=us-west-2", "cross1", now(), TOKEN);
    let header = hawk::Header::from_str(ours.credentials.strip_prefix("Hawk ").expect("scheme"))
        .expect("parses");
    let hash = hawk::PayloadHasher::hash("application/json", hawk::DigestAlgorithm::Sha256, BODY)
        .expect("hash");
    let their_request = hawk::RequestBuilder::new(
        "POST",
        "tooltool.example.com",
        443,
        "/upload?region=us-west-2",
    )
    .hash(&hash[..])
    .request();
    // The hawk crate checks timestamps against the real clock: allow the gap.
    let skew = Duration::from_secs(
        u64::try_from((Utc::now().timestamp() - now()).abs()).expect("positive") + 60,
    );
    assert!(
        their_request.validate_header(&header, &key, skew),
        "the hawk crate accepts our header"
    );

    // Theirs → ours.
    let credentials = hawk::Credentials {
        id: ID.into(),
        key: hawk::Key::new(TOKEN.as_bytes(), hawk::DigestAlgorithm::Sha256).expect("key"),
    };
    let made =
        hawk::RequestBuilder::new("GET", "tooltool.example.com", 443, "/sha512/abc?region=x")
            .request()
            .make_header(&credentials)
            .expect("header");
    let theirs = AuthRequest {
        method: "GET".into(),
        resource: "/sha512/abc?region=x".into(),
        host: "tooltool.example.com".into(),
        port: 443,
        credentials: format!("Hawk {made}"),
        ..AuthRequest::default()
    };
    let v = LocalVerifier::new(
        vec![HawkClient {
            client_id: ID.into(),
            access_token: TOKEN.into(),
            scopes: vec![],
        }],
        Arc::new(Fixed(Mutex::new(Utc::now()))),
    );
    let p = v
        .authenticate(&theirs)
        .await
        .expect("we accept the hawk crate's header");
    assert_eq!(p.id(), Some(ID));
}

#[tokio::test]
async fn clients_files_are_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock: Arc<dyn Clock> = Arc::new(Fixed(Mutex::new(Utc::now())));
    let cases = [
        ("[]", None),
        (
            r#"[{"clientId":"a","accessToken":"t","scopes":["s"]}]"#,
            None,
        ),
        ("{", Some("is not a JSON list")),
        (
            r#"[{"clientId":"a","accessToken":"t"}]"#,
            Some("is not a JSON list"),
        ),
        (
            r#"[{"clientId":"a","accessToken":"t","scopes":[],"extra":1}]"#,
            Some("is not a JSON list"),
        ),
        (
            r#"[{"clientId":"a","accessToken":"t","scopes":[]},{"clientId":"a","accessToken":"u","scopes":[]}]"#,
            Some("listed twice"),
        ),
        (
            r#"[{"clientId":"a","accessToken":"","scopes":[]}]"#,
            Some("empty"),
        ),
    ];
    for (i, (text, error)) in cases.into_iter().enumerate() {
        let path = dir.path().join(format!("clients{i}.json"));
        std::fs::write(&path, text).expect("write");
        match (LocalVerifier::from_file(&path, Arc::clone(&clock)), error) {
            (Ok(_), None) => {}
            (Err(e), Some(why)) => assert!(e.to_string().contains(why), "{text}: {e}"),
            (r, _) => panic!("{text}: unexpected {r:?}"),
        }
    }
    assert!(LocalVerifier::from_file(&dir.path().join("missing.json"), clock).is_err());
}

fn real_time_request(method: &str, resource: &str, key: &str) -> AuthRequest {
    let nonce = format!("{:x}", rand_nonce());
    request(method, resource, &nonce, Utc::now().timestamp(), key)
}

fn rand_nonce() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::Instant::now())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_taskcluster_verifier_asks_taskcluster() {
    let base =
        tooltool_taskcluster::fake::start(vec![(ID.into(), TOKEN.into(), vec![SCOPE.into()])])
            .await;
    let ok =
        TaskclusterVerifier::new(&format!("{base}/ok/"), Duration::from_secs(2)).expect("verifier");
    for (method, resource) in [
        ("GET", "/sha512/abc?region=us-west-2"),
        ("POST", "/upload?region=x"),
        ("PATCH", "/file/sha512/abc"),
    ] {
        let p = ok
            .authenticate(&real_time_request(method, resource, TOKEN))
            .await
            .unwrap_or_else(|e| panic!("{method} {resource}: {e}"));
        assert_eq!(p.id(), Some(ID));
        assert!(p.scopes().satisfies(SCOPE));
    }
    let why = refusal(
        ok.authenticate(&real_time_request("GET", "/x", "wrong"))
            .await,
    );
    assert!(
        why.contains("Taskcluster refused") && why.contains("ext.certificate.expiry"),
        "{why}"
    );
    // Taskcluster vouches for the header, but the body is ours to check.
    let mut tampered = real_time_request("POST", "/upload", TOKEN);
    tampered.body = Some(bytes::Bytes::from_static(b"{}"));
    assert!(refusal(ok.authenticate(&tampered).await).contains("payload hash"));
    // Malformed headers never reach Taskcluster.
    let mut malformed = real_time_request("GET", "/x", TOKEN);
    malformed.credentials = "Hawk id=\"x\"".into();
    assert!(refusal(ok.authenticate(&malformed).await).contains("malformed"));

    let slow = TaskclusterVerifier::new(&format!("{base}/slow"), Duration::from_millis(300))
        .expect("verifier");
    let started = std::time::Instant::now();
    match slow
        .authenticate(&real_time_request("GET", "/x", TOKEN))
        .await
    {
        Err(AuthError::Unavailable(why)) => {
            let why = why.to_string();
            assert!(why.contains("timed out"), "{why}");
        }
        other => panic!("a hung Taskcluster must be a 503, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(2), "no hang");
    let broken = TaskclusterVerifier::new(&format!("{base}/broken"), Duration::from_secs(2))
        .expect("verifier");
    assert!(matches!(
        broken.authenticate(&real_time_request("GET", "/x", TOKEN)).await,
        Err(AuthError::Unavailable(why)) if why.to_string().contains("500")
    ));
    let unreachable =
        TaskclusterVerifier::new("http://127.0.0.1:9", Duration::from_secs(2)).expect("verifier");
    assert!(matches!(
        unreachable
            .authenticate(&real_time_request("GET", "/x", TOKEN))
            .await,
        Err(AuthError::Unavailable(_))
    ));
    assert!(TaskclusterVerifier::new("ftp://x", Duration::from_secs(1)).is_err());
}
