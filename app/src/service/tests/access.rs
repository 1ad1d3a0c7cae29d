//! Who is asking: the authenticator of a credential's scheme decides, and
//! authorities behind authenticators are health-checked by their name.

use std::sync::Arc;

use tooltool_domain::{Principal, ScopeSet};
use tooltool_ports::{
    AuthError, AuthRequest, Authenticator, ErrorKind, MockAuthenticator, MockMetadataStore,
};

use super::{blob, service};

fn request(credentials: &str) -> AuthRequest {
    AuthRequest {
        method: "GET".into(),
        resource: "/sha512/x".into(),
        credentials: credentials.into(),
        ..AuthRequest::default()
    }
}

fn authenticator(scheme: &'static str, authority: Option<&'static str>) -> MockAuthenticator {
    let mut a = MockAuthenticator::new();
    a.expect_scheme().return_const(scheme);
    a.expect_authority().return_const(authority);
    a
}

#[tokio::test]
async fn the_scheme_picks_the_authenticator_and_refusals_name_why() {
    let mut bearer = authenticator("Bearer", None);
    bearer
        .expect_authenticate()
        .withf(|r| r.credentials == "bearer good")
        .returning(|_| Ok(Principal::authenticated("jwt-user", ScopeSet::default())));
    bearer
        .expect_authenticate()
        .returning(|_| Err(AuthError::Invalid("the token has expired".into())));
    let mut hawk = authenticator("Hawk", Some("taskcluster"));
    hawk.expect_authenticate()
        .returning(|_| Err(AuthError::unavailable("tc.internal: connection refused")));
    let svc = service(MockMetadataStore::new(), vec![blob("east")]).with_authenticators(vec![
        Arc::new(bearer) as Arc<dyn Authenticator>,
        Arc::new(hawk),
    ]);
    let who = svc
        .authenticate(&request("bearer good"))
        .await
        .expect("case-insensitive scheme");
    assert_eq!(who.id(), Some("jwt-user"));
    let e = svc
        .authenticate(&request("Bearer old"))
        .await
        .expect_err("refused");
    assert_eq!(
        (e.kind(), e.message()),
        (ErrorKind::NotAuthenticated, "the token has expired")
    );
    let e = svc
        .authenticate(&request("Basic dXNlcg=="))
        .await
        .expect_err("unknown scheme");
    assert_eq!(e.kind(), ErrorKind::NotAuthenticated);
    assert_eq!(
        e.message(),
        "unsupported authorization scheme \"Basic\"; this server accepts: Bearer, Hawk"
    );
    let e = svc
        .authenticate(&request("Hawk id=\"x\""))
        .await
        .expect_err("outage");
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(!e.message().contains("tc.internal"), "{}", e.message());
    let cause = std::error::Error::source(&e).expect("the cause is kept");
    assert!(
        tooltool_ports::Chain(cause)
            .to_string()
            .contains("tc.internal")
    );
}

/// Only authenticators that ask an authority are checked, under its name:
/// a local list of Hawk clients is no Taskcluster.
#[tokio::test]
async fn health_checks_the_authorities_that_are_configured() {
    let mut store = MockMetadataStore::new();
    store.expect_ping().returning(|| Ok(()));
    let mut east = blob("east");
    east.expect_head().returning(|_| Ok(None));
    let mut local_hawk = authenticator("Hawk", None);
    local_hawk.expect_check().never();
    let mut bearer = authenticator("Bearer", None);
    bearer.expect_check().never();
    let svc = service(store, vec![east]).with_authenticators(vec![
        Arc::new(bearer) as Arc<dyn Authenticator>,
        Arc::new(local_hawk),
    ]);
    let names: Vec<String> = svc.health().await.into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["database", "storage:east"]);

    let mut store = MockMetadataStore::new();
    store.expect_ping().returning(|| Ok(()));
    let mut east = blob("east");
    east.expect_head().returning(|_| Ok(None));
    let mut taskcluster = authenticator("Hawk", Some("taskcluster"));
    taskcluster
        .expect_check()
        .times(1)
        .returning(|| Err(AuthError::unavailable("unreachable")));
    let svc = service(store, vec![east])
        .with_authenticators(vec![Arc::new(taskcluster) as Arc<dyn Authenticator>]);
    let checks = svc.health().await;
    assert_eq!(checks.len(), 3);
    assert_eq!(checks[2].0, "taskcluster");
    assert!(checks[2].1.is_err());
}

#[tokio::test]
async fn browser_sign_in_asks_the_authority_and_says_why_not() {
    let without = service(MockMetadataStore::new(), vec![blob("east")]);
    assert_eq!(without.sign_in_url("https://t/cb", "s"), None);
    let e = without
        .sign_in("code", "https://t/cb")
        .await
        .expect_err("none");
    assert_eq!(e.kind(), ErrorKind::Invalid);

    let mut authority = tooltool_ports::MockSignInAuthority::new();
    authority
        .expect_authorize_url()
        .returning(|redirect, state| format!("https://tc/authorize?{redirect}&{state}"));
    authority
        .expect_principal()
        .withf(|code, redirect| code == "good" && redirect == "https://t/cb")
        .returning(|_, _| Ok(Principal::authenticated("alice", ScopeSet::default())));
    authority
        .expect_principal()
        .withf(|code, _| code == "spent")
        .returning(|_, _| Err(AuthError::Invalid("the code was used".into())));
    authority
        .expect_principal()
        .returning(|_, _| Err(AuthError::unavailable("Taskcluster is down")));
    let with =
        service(MockMetadataStore::new(), vec![blob("east")]).with_sign_in(Arc::new(authority));
    assert_eq!(
        with.sign_in_url("https://t/cb", "s").as_deref(),
        Some("https://tc/authorize?https://t/cb&s")
    );
    let p = with
        .sign_in("good", "https://t/cb")
        .await
        .expect("signed in");
    assert_eq!(p.id(), Some("alice"));
    let e = with
        .sign_in("spent", "https://t/cb")
        .await
        .expect_err("spent");
    assert_eq!(e.kind(), ErrorKind::NotAuthenticated);
    assert!(e.message().contains("the code was used"), "{}", e.message());
    let e = with
        .sign_in("other", "https://t/cb")
        .await
        .expect_err("down");
    assert_eq!(e.kind(), ErrorKind::Unavailable);
}

#[tokio::test]
async fn file_uploads_page_like_searches() {
    let mut store = MockMetadataStore::new();
    store
        .expect_file_uploads()
        .withf(|_, before, limit| *before == Some(9) && *limit == 100)
        .returning(|_, _, _| Ok(vec![]));
    let s = service(store, vec![blob("east")]);
    let d = super::digest(b"x");
    assert!(
        s.file_uploads(&d, Some(9), None)
            .await
            .expect("page")
            .is_empty()
    );
    let e = s.file_uploads(&d, None, Some(0)).await.expect_err("limit");
    assert_eq!(e.kind(), ErrorKind::Invalid);
}
