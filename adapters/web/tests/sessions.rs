//! Sign-in, sessions, CSRF, downloads and management over a mock of the
//! driving port: what each route asks the use cases, and that a form
//! without its session's token changes nothing.

use std::sync::Arc;
use std::time::Duration;

use poem::test::{TestClient, TestResponse};
use tooltool_domain::{ContentHasher, Digest, PatchOp, Principal, ScopeSet, Visibility};
use tooltool_ports::{FileRecord, MockToolTool, UseCaseError};

const PREFIX: &str = "project:releng:services/tooltool/api";

fn digest(content: &[u8]) -> Digest {
    let mut h = ContentHasher::new();
    h.update(content);
    h.finish().digest
}

fn record(visibility: Visibility) -> FileRecord {
    FileRecord {
        digest: digest(b"clang"),
        size: 5,
        visibility,
        instances: vec![],
    }
}

fn permissions() -> &'static tooltool_domain::Permissions {
    static P: std::sync::OnceLock<tooltool_domain::Permissions> = std::sync::OnceLock::new();
    P.get_or_init(|| tooltool_domain::Permissions::new(PREFIX, true))
}

/// A mock with the permissions every page asks for.
fn service() -> MockToolTool {
    let mut service = MockToolTool::new();
    service
        .expect_permissions()
        .return_const(permissions().clone());
    service
}

fn client(service: MockToolTool) -> TestClient<impl poem::Endpoint> {
    TestClient::new(tooltool_web::routes(
        Arc::new(service),
        tooltool_web::WebConfig {
            bug_url: "https://bugs.example/?id=".into(),
            public_url: "https://tooltool.test".into(),
            sessions: tooltool_web::Sessions::new(vec![3; 32], Duration::from_secs(600), true),
        },
    ))
}

/// The `name=value` of the session cookie a response sets.
fn cookie_of(resp: &TestResponse) -> String {
    let set = resp.0.headers()["set-cookie"].to_str().expect("ascii");
    assert!(
        set.contains("; HttpOnly; SameSite=Lax; Secure"),
        "cookie attributes: {set}"
    );
    set.split(';').next().expect("pair").to_owned()
}

/// A form POST with `cookie`, as a browser sends one.
async fn post_form(
    cli: &TestClient<impl poem::Endpoint>,
    path: impl AsRef<str>,
    cookie: impl AsRef<str>,
    form: impl Into<String>,
) -> TestResponse {
    cli.post(path.as_ref())
        .header("Cookie", cookie.as_ref())
        .content_type("application/x-www-form-urlencoded")
        .body(form.into())
        .send()
        .await
}

async fn body(resp: TestResponse, status: u16) -> String {
    assert_eq!(resp.0.status().as_u16(), status);
    resp.0.into_body().into_string().await.expect("body")
}

fn csrf_in(html: &str) -> String {
    let at = html.find(r#"name="csrf" value=""#).expect("a CSRF field") + 19;
    html[at..at + 32].to_owned()
}

fn alice() -> Principal {
    Principal::authenticated(
        "alice@example.com",
        ScopeSet::new([format!("{PREFIX}/manage"), format!("{PREFIX}/download/*")]),
    )
}

/// Signs in with a token through the form; answers the session cookie
/// and its CSRF token.
async fn signed_in(cli: &TestClient<impl poem::Endpoint>) -> (String, String) {
    let page = cli.get("/ui/sign-in").send().await;
    let anonymous = cookie_of(&page);
    let csrf = csrf_in(&body(page, 200).await);
    let resp = post_form(
        cli,
        "/ui/sign-in",
        &anonymous,
        format!("csrf={csrf}&token=Bearer+good-token"),
    )
    .await;
    let (session, me) = landed_signed_in(cli, &resp).await;
    (session, csrf_in(&me))
}

/// After a sign-in: sent to "who am I" with a session cookie; the cookie
/// and that page.
async fn landed_signed_in(
    cli: &TestClient<impl poem::Endpoint>,
    resp: &TestResponse,
) -> (String, String) {
    assert_eq!(resp.0.status(), 303);
    assert_eq!(resp.0.headers()["location"], "/ui/me");
    let session = cookie_of(resp);
    let me = body(
        cli.get("/ui/me").header("Cookie", &session).send().await,
        200,
    )
    .await;
    (session, me)
}

fn with_sign_in(service: &mut MockToolTool) {
    service.expect_sign_in_url().returning(|redirect, state| {
        Some(format!(
            "https://tc.example/login/oauth/authorize?redirect_uri={redirect}&state={state}"
        ))
    });
    service
        .expect_authenticate()
        .withf(|r| r.credentials == "Bearer good-token")
        .returning(|_| Ok(alice()));
    service
        .expect_authenticate()
        .returning(|_| Err(UseCaseError::not_authenticated("the token has expired")));
}

#[tokio::test]
async fn a_token_signs_in_and_who_am_i_shows_the_principal() {
    let mut service = service();
    with_sign_in(&mut service);
    let cli = client(service);
    let (session, _) = signed_in(&cli).await;
    let me = body(
        cli.get("/ui/me").header("Cookie", &session).send().await,
        200,
    )
    .await;
    assert!(me.contains("<code>alice@example.com</code>"), "{me}");
    assert!(
        me.contains(&format!("<li><code>{PREFIX}/manage</code></li>")),
        "{me}"
    );
    assert!(
        me.contains(r#"<th scope="row">Manage files</th><td>yes</td>"#),
        "{me}"
    );
    assert!(me.contains("Signed in as alice@example.com"), "{me}");
    assert!(me.contains(r#"action="/ui/sign-out""#), "{me}");
    // Without the cookie, or with a forged one, nobody is signed in.
    for cookie in [
        "",
        "tooltool_session=eyJwIjoibWFsbG9yeSJ9.AAAA",
        "tooltool_session=garbage",
    ] {
        let me = body(cli.get("/ui/me").header("Cookie", cookie).send().await, 200).await;
        assert!(me.contains("You are not signed in."), "{cookie}: {me}");
    }
}

#[tokio::test]
async fn sign_in_refuses_forms_without_their_token_and_bad_tokens() {
    let mut service = service();
    with_sign_in(&mut service);
    let cli = client(service);
    let page = cli.get("/ui/sign-in").send().await;
    let anonymous = cookie_of(&page);
    let html = body(page, 200).await;
    assert!(
        html.contains(r#"href="/ui/sign-in/taskcluster">Sign in with Taskcluster"#),
        "{html}"
    );
    let csrf = csrf_in(&html);
    let post = |cookie: String, form: String| post_form(&cli, "/ui/sign-in", cookie, form);
    // No session cookie, or a token of another session: refused.
    let html = body(
        post(String::new(), format!("csrf={csrf}&token=good-token")).await,
        403,
    )
    .await;
    assert!(html.contains("This form has expired"), "{html}");
    body(
        post(
            anonymous.clone(),
            "csrf=00000000000000000000000000000000&token=good-token".into(),
        )
        .await,
        403,
    )
    .await;
    // A refused token: the form again, with the authenticator's reason.
    let html = body(
        post(anonymous.clone(), format!("csrf={csrf}&token=stale")).await,
        401,
    )
    .await;
    assert!(html.contains("the token has expired"), "{html}");
    assert!(html.contains(r#"name="token""#), "{html}");
    // Not a form, or too large: a 4xx page.
    let resp = cli
        .post("/ui/sign-in")
        .header("Cookie", &anonymous)
        .content_type("application/json")
        .body("{}")
        .send()
        .await;
    body(resp, 400).await;
    body(
        post(
            anonymous,
            format!("csrf={csrf}&token={}", "x".repeat(20_000)),
        )
        .await,
        413,
    )
    .await;
}

#[tokio::test]
async fn sign_out_ends_the_session() {
    let mut service = service();
    with_sign_in(&mut service);
    let cli = client(service);
    let (session, csrf) = signed_in(&cli).await;
    let forged = post_form(&cli, "/ui/sign-out", &session, "csrf=nope").await;
    body(forged, 403).await;
    let resp = post_form(&cli, "/ui/sign-out", &session, format!("csrf={csrf}")).await;
    assert_eq!(resp.0.status(), 303);
    let cleared = resp.0.headers()["set-cookie"].to_str().expect("ascii");
    assert!(
        cleared.starts_with("tooltool_session=; Path=/; Max-Age=0"),
        "{cleared}"
    );
}

#[tokio::test]
async fn downloads_are_decided_for_the_session_principal() {
    let mut service = service();
    with_sign_in(&mut service);
    service
        .expect_download()
        .withf(|p, _, region| p.id() == Some("alice@example.com") && region.is_none())
        .returning(|_, _, _| Ok("https://store.example/signed".into()));
    service
        .expect_download()
        .withf(|p, _, _| p.is_anonymous())
        .returning(|_, _, _| Err(UseCaseError::denied("You don't have the permission")));
    let cli = client(service);
    let path = format!("/ui/files/{}/download", digest(b"clang"));
    let html = body(cli.get(&path).send().await, 403).await;
    assert!(
        html.contains(r#"<a href="/ui/sign-in">Sign in</a>"#),
        "{html}"
    );
    let (session, _) = signed_in(&cli).await;
    let resp = cli.get(&path).header("Cookie", &session).send().await;
    assert_eq!(resp.0.status(), 302);
    assert_eq!(resp.0.headers()["location"], "https://store.example/signed");
    body(cli.get("/ui/files/nope/download").send().await, 400).await;
}

#[tokio::test]
async fn manage_confirms_then_changes_and_refuses_forged_posts() {
    let mut service = service();
    with_sign_in(&mut service);
    service
        .expect_get_file()
        .returning(|_| Ok(record(Visibility::Public)));
    service
        .expect_patch_file()
        .times(1)
        .withf(|p, _, ops| {
            p.id() == Some("alice@example.com")
                && ops == &[PatchOp::SetVisibility(Visibility::Internal)]
        })
        .returning(|_, _, _| Ok(record(Visibility::Internal)));
    let cli = client(service);
    let (session, csrf) = signed_in(&cli).await;
    let path = format!("/ui/files/{}/manage", digest(b"clang"));
    let post = |cookie: &str, form: String| post_form(&cli, &path, cookie.to_owned(), form);
    // Step one: a confirmation page, nothing changed.
    let html = body(
        post(&session, format!("csrf={csrf}&action=make-internal")).await,
        200,
    )
    .await;
    assert!(html.contains("Make this file internal?"), "{html}");
    assert!(
        html.contains(r#"<input type="hidden" name="confirmed" value="true">"#),
        "{html}"
    );
    // Forged: no token, another token, no session. Nothing changes.
    for (cookie, form) in [
        (
            session.as_str(),
            "action=make-internal&confirmed=true".to_owned(),
        ),
        (
            session.as_str(),
            "csrf=ffffffffffffffffffffffffffffffff&action=make-internal&confirmed=true".to_owned(),
        ),
        (
            "",
            format!("csrf={csrf}&action=make-internal&confirmed=true"),
        ),
    ] {
        body(post(cookie, form).await, 403).await;
    }
    body(
        post(
            &session,
            format!("csrf={csrf}&action=explode&confirmed=true"),
        )
        .await,
        400,
    )
    .await;
    // Step two: changed, back to the file page.
    let resp = post(
        &session,
        format!("csrf={csrf}&action=make-internal&confirmed=true"),
    )
    .await;
    assert_eq!(resp.0.status(), 303);
    assert_eq!(
        resp.0.headers()["location"],
        format!("/ui/files/{}", digest(b"clang")).as_str()
    );
}

#[tokio::test]
async fn taskcluster_sign_in_is_bound_to_the_browser_that_started_it() {
    let mut service = service();
    with_sign_in(&mut service);
    service
        .expect_sign_in()
        .withf(|code, redirect| {
            code == "the-code"
                && redirect == "https://tooltool.test/ui/sign-in/taskcluster/callback"
        })
        .returning(|_, _| Ok(alice()));
    let cli = client(service);
    let resp = cli.get("/ui/sign-in/taskcluster").send().await;
    assert_eq!(resp.0.status(), 303);
    let anonymous = cookie_of(&resp);
    let location = resp.0.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        location.starts_with(
            "https://tc.example/login/oauth/authorize?redirect_uri=https://tooltool.test/ui/sign-in/taskcluster/callback&state="
        ),
        "{location}"
    );
    let state = location.rsplit_once("state=").expect("state").1.to_owned();
    let callback = |cookie: &str, state: &str| {
        cli.get(format!(
            "/ui/sign-in/taskcluster/callback?code=the-code&state={state}"
        ))
        .header("Cookie", cookie)
        .send()
    };
    // Another browser (no cookie), or a made-up state: refused.
    body(callback("", &state).await, 403).await;
    body(callback(&anonymous, "0000").await, 403).await;
    body(
        cli.get("/ui/sign-in/taskcluster/callback").send().await,
        400,
    )
    .await;
    let html = body(
        cli.get("/ui/sign-in/taskcluster/callback?error=access_denied")
            .send()
            .await,
        401,
    )
    .await;
    assert!(
        html.contains("Taskcluster did not sign you in (access_denied)"),
        "{html}"
    );
    let resp = callback(&anonymous, &state).await;
    let (_, me) = landed_signed_in(&cli, &resp).await;
    assert!(me.contains("<code>alice@example.com</code>"), "{me}");
}
