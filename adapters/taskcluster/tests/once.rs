//! Replay protection in front of a Hawk verifier: each verified nonce is
//! spent once in the metadata store (here a mock holding a set, as the
//! contract suite requires of the real stores).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tooltool_domain::{Principal, ScopeSet};
use tooltool_ports::{
    AuthError, AuthRequest, Authenticator, Clock, MetadataError, MockAuthenticator,
    MockMetadataStore,
};
use tooltool_taskcluster::{OnceOnly, SKEW_SECS, SignedRequest, sign};

const NOW: i64 = 1_800_000_000;

struct Fixed;
impl Clock for Fixed {
    fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(NOW, 0).expect("valid")
    }
}

fn request(id: &str, nonce: &str, ts: i64) -> AuthRequest {
    AuthRequest {
        method: "GET".into(),
        resource: "/x".into(),
        host: "h".into(),
        port: 443,
        credentials: sign(
            id,
            "token",
            ts,
            nonce,
            &SignedRequest {
                method: "GET",
                resource: "/x",
                host: "h",
                port: 443,
                payload: None,
            },
        ),
        ..AuthRequest::default()
    }
}

/// An inner verifier that accepts everything, as if the MAC were good.
fn accepting() -> Arc<dyn Authenticator> {
    let mut inner = MockAuthenticator::new();
    inner.expect_scheme().return_const("Hawk");
    inner.expect_authenticate().returning(|_| {
        Ok(Principal::authenticated(
            "c",
            ScopeSet::new(Vec::<String>::new()),
        ))
    });
    Arc::new(inner)
}

/// A store whose spent nonces are a set; records each expiry it was given.
fn store(expiries: Arc<Mutex<Vec<i64>>>) -> Arc<MockMetadataStore> {
    let spent = Mutex::new(HashSet::new());
    let mut store = MockMetadataStore::new();
    store.expect_spend_nonce().returning(move |key, expires| {
        expiries.lock().expect("lock").push(expires.timestamp());
        Ok(spent.lock().expect("lock").insert(key))
    });
    Arc::new(store)
}

fn refusal(r: Result<Principal, AuthError>) -> String {
    match r {
        Err(AuthError::Invalid(why)) => why,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_verified_request_is_accepted_once() {
    let expiries = Arc::new(Mutex::new(Vec::new()));
    let guard = OnceOnly::new(accepting(), store(expiries.clone()), Arc::new(Fixed));
    let once = request("client-a", "n1", NOW - 60);
    guard.authenticate(&once).await.expect("first use");
    assert!(refusal(guard.authenticate(&once).await).contains("already used"));
    // The same nonce is another nonce for another client or timestamp.
    guard
        .authenticate(&request("client-b", "n1", NOW - 60))
        .await
        .expect("another client");
    guard
        .authenticate(&request("client-a", "n1", NOW - 59))
        .await
        .expect("another timestamp");
    // Kept exactly as long as the timestamp window accepts the request.
    assert_eq!(
        *expiries.lock().expect("lock"),
        [
            NOW - 60 + SKEW_SECS,
            NOW - 60 + SKEW_SECS,
            NOW - 60 + SKEW_SECS,
            NOW - 59 + SKEW_SECS
        ]
    );
}

#[tokio::test]
async fn refused_requests_spend_no_nonce() {
    let mut inner = MockAuthenticator::new();
    inner
        .expect_authenticate()
        .returning(|_| Err(AuthError::Invalid("the Hawk mac does not match".into())));
    let mut store = MockMetadataStore::new();
    store.expect_spend_nonce().never();
    let guard = OnceOnly::new(Arc::new(inner), Arc::new(store), Arc::new(Fixed));
    assert!(refusal(guard.authenticate(&request("c", "n", NOW)).await).contains("mac"));
}

#[tokio::test]
async fn the_window_is_checked_whatever_the_authority_accepts() {
    let mut store = MockMetadataStore::new();
    store.expect_spend_nonce().never();
    let guard = OnceOnly::new(accepting(), Arc::new(store), Arc::new(Fixed));
    for ts in [NOW - SKEW_SECS - 1, NOW + SKEW_SECS + 1] {
        assert!(refusal(guard.authenticate(&request("c", "n", ts)).await).contains("15 minutes"));
    }
}

#[tokio::test]
async fn an_unreachable_store_is_unavailable_never_accepted() {
    let mut store = MockMetadataStore::new();
    store
        .expect_spend_nonce()
        .returning(|_, _| Err(MetadataError::unavailable("database down")));
    let guard = OnceOnly::new(accepting(), Arc::new(store), Arc::new(Fixed));
    assert!(matches!(
        guard.authenticate(&request("c", "n", NOW)).await,
        Err(AuthError::Unavailable(_))
    ));
}
