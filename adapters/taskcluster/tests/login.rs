//! Sign-in with Taskcluster's OAuth2 flow against the fake deployment:
//! the consent page, the code exchange, the credentials, and the
//! principal as `authenticateHawk` reports it.

use std::time::Duration;

use tooltool_ports::{AuthError, SignInAuthority};
use tooltool_taskcluster::fake::FAKE_OAUTH_CLIENT;
use tooltool_taskcluster::{OAuthClient, TaskclusterLogin};

const PREFIX: &str = "project:releng:services/tooltool/api";
const REDIRECT: &str = "https://tooltool.test/ui/sign-in/taskcluster/callback";

fn clients() -> Vec<(String, String, Vec<String>)> {
    vec![
        (
            "mozilla-auth0/ad|Mozilla-LDAP|alice/tooltool".into(),
            "alice-token-alice-token-alice-token-44chars".into(),
            vec![format!("{PREFIX}/download/internal"), "queue:*".into()],
        ),
        ("github/bob".into(), "bob-token".into(), vec![]),
    ]
}

fn login(root: &str, secret: &str) -> TaskclusterLogin {
    TaskclusterLogin::new(
        root,
        Duration::from_secs(5),
        OAuthClient {
            id: FAKE_OAUTH_CLIENT.0.into(),
            secret: Some(secret.into()),
        },
        PREFIX,
    )
    .expect("login")
}

/// Consents as client `which` on the fake's page; answers the code.
async fn consent(authorize: &str, which: usize) -> (String, String) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let page = http.get(authorize).send().await.expect("authorize");
    assert_eq!(page.status(), 200);
    let page = page.text().await.expect("page");
    assert!(
        page.contains(&format!("{PREFIX}/*")),
        "asks for the tooltool scopes: {page}"
    );
    let decision = authorize
        .split_once("/authorize?")
        .map(|(base, _)| format!("{base}/decision"))
        .expect("authorize URL");
    let back = http
        .post(decision)
        .form(&[
            ("client", which.to_string()),
            ("redirect_uri", REDIRECT.to_owned()),
            ("state", "s1".to_owned()),
        ])
        .send()
        .await
        .expect("decision");
    assert_eq!(back.status(), 302);
    let location =
        reqwest::Url::parse(back.headers()["location"].to_str().expect("ascii")).expect("url");
    let get = |k: &str| {
        location
            .query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.into_owned())
            .expect(k)
    };
    (get("code"), get("state"))
}

#[tokio::test]
async fn a_code_becomes_the_principal_taskcluster_reports() {
    let base = tooltool_taskcluster::fake::start(clients()).await;
    let login = login(&format!("{base}/ok"), FAKE_OAUTH_CLIENT.1);
    let url = login.authorize_url(REDIRECT, "s1");
    assert!(
        url.starts_with(&format!("{base}/ok/login/oauth/authorize?response_type=code&client_id=tooltool-web&redirect_uri=https%3A%2F%2Ftooltool.test")),
        "{url}"
    );
    let (code, state) = consent(&url, 0).await;
    assert_eq!(state, "s1");
    let principal = login.principal(&code, REDIRECT).await.expect("signed in");
    assert_eq!(
        principal.id(),
        Some("mozilla-auth0/ad|Mozilla-LDAP|alice/tooltool")
    );
    assert!(
        principal
            .scopes()
            .satisfies(&format!("{PREFIX}/download/internal"))
    );
    assert!(!principal.scopes().satisfies(&format!("{PREFIX}/manage")));
    // A code is spent once.
    assert!(matches!(
        login.principal(&code, REDIRECT).await,
        Err(AuthError::Invalid(_))
    ));
    // Another redirect URI than the code was given for: refused.
    let (code, _) = consent(&url, 1).await;
    assert!(matches!(
        login.principal(&code, "https://elsewhere.test/cb").await,
        Err(AuthError::Invalid(_))
    ));
}

#[tokio::test]
async fn a_wrong_client_secret_or_a_broken_deployment_is_said_so() {
    let base = tooltool_taskcluster::fake::start(clients()).await;
    let wrong = login(&format!("{base}/ok"), "not-the-secret");
    let (code, _) = consent(&wrong.authorize_url(REDIRECT, "s1"), 0).await;
    assert!(matches!(
        wrong.principal(&code, REDIRECT).await,
        Err(AuthError::Invalid(_))
    ));
    let broken = login(&format!("{base}/broken"), FAKE_OAUTH_CLIENT.1);
    let e = broken
        .principal("code", REDIRECT)
        .await
        .expect_err("broken");
    // The fake's /broken root serves no login at all: 404, the code's fault
    // as far as we can tell; an unreachable deployment is unavailable.
    assert!(matches!(e, AuthError::Invalid(_)), "{e:?}");
    let gone = login("http://127.0.0.1:9", FAKE_OAUTH_CLIENT.1);
    assert!(matches!(
        gone.principal("code", REDIRECT).await,
        Err(AuthError::Unavailable(_))
    ));
}
