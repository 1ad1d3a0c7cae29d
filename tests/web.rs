//! The web interface over a real socket, in the same process and on the
//! same port as the JSON API: what a person sees after an upload, and that
//! the API keeps its own answers beside it.

use tooltool_tests::{TestApp, sha512_hex, spawn_app, spawn_with};

#[tokio::test]
async fn a_person_finds_and_inspects_what_was_uploaded() {
    let app = spawn_app().await;
    let token = app.token("releng@example.com", &["upload/*"]);
    let digest = app
        .upload(&token, "clang-18.tar.zst", b"clang bytes", "public")
        .await;
    let text = |resp: reqwest::Response| async move {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        (status, headers, resp.text().await.expect("text"))
    };

    let (status, headers, home) = text(app.get("").await).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    // The page's own policy (no script), and the service's other headers.
    assert!(
        headers["content-security-policy"]
            .to_str()
            .expect("ascii")
            .starts_with("default-src 'none'")
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(headers.contains_key("x-request-id"));
    assert!(home.contains("releng@example.com"), "{home}");

    let (status, _, results) = text(app.get("ui/search?q=clang-18").await).await;
    assert_eq!(status, 200);
    assert!(
        results.contains(&format!("/ui/files/{digest}")),
        "{results}"
    );
    let (status, _, file) = text(app.get(&format!("ui/files/{digest}")).await).await;
    assert_eq!(status, 200);
    assert!(
        file.contains(&format!("href=\"/ui/files/{digest}/download\"")),
        "{file}"
    );
    assert!(file.contains("<td>clang-18.tar.zst</td>"), "{file}");
    // The page's download link answers the API's 302.
    let page = app.get(&format!("ui/files/{digest}/download")).await;
    assert_eq!(page.status(), 302);
    let api = app.get(&format!("sha512/{digest}")).await;
    assert_eq!(api.status(), 302);
    let bytes = |resp: reqwest::Response| async move {
        let to = resp.headers()["location"]
            .to_str()
            .expect("ascii")
            .to_owned();
        reqwest::get(to)
            .await
            .expect("get")
            .bytes()
            .await
            .expect("bytes")
    };
    assert_eq!(bytes(page).await, bytes(api).await);
    let (status, _, manifest) = text(app.get("ui/batches/1/manifest.tt").await).await;
    assert_eq!(status, 200);
    let manifest: serde_json::Value = serde_json::from_str(&manifest).expect("JSON");
    assert_eq!(manifest[0]["digest"], sha512_hex(b"clang bytes"));

    // Bad input: HTML 4xx pages; the API's routes keep the error shape.
    for path in [
        "ui/batches/999",
        "ui/files/nope",
        "ui/search?q=%01",
        "ui/no-such-page",
    ] {
        let (status, headers, _) = text(app.get(path).await).await;
        assert!((400..500).contains(&status), "{path}: {status}");
        assert_eq!(
            headers["content-type"], "text/html; charset=utf-8",
            "{path}"
        );
    }
    let resp = app.get("no-such-route").await;
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.headers()["content-type"], "application/json");
}

/// The `name=value` of the cookie a response sets.
fn cookie(resp: &reqwest::Response) -> String {
    resp.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .split(';')
        .next()
        .expect("pair")
        .to_owned()
}

fn csrf(html: &str) -> String {
    let at = html.find(r#"name="csrf" value=""#).expect("a CSRF field") + 19;
    html[at..at + 32].to_owned()
}

async fn get_with(app: &TestApp, path: &str, cookie: &str) -> reqwest::Response {
    app.http
        .get(app.at(path))
        .header("Cookie", cookie)
        .send()
        .await
        .expect("get")
}

async fn post_form(
    app: &TestApp,
    path: &str,
    cookie: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    app.http
        .post(app.at(path))
        .header("Cookie", cookie)
        .form(form)
        .send()
        .await
        .expect("post")
}

#[tokio::test]
async fn a_token_session_downloads_internal_files_in_the_browser_only() {
    let app = spawn_app().await;
    let uploader = app.token("releng@example.com", &["upload/*"]);
    let digest = app
        .upload(&uploader, "sdk.zip", b"internal sdk", "internal")
        .await;
    let download = format!("ui/files/{digest}/download");
    assert_eq!(app.get(&download).await.status(), 403, "anonymous");

    let page = app.get("ui/sign-in").await;
    let anonymous = cookie(&page);
    let form = csrf(&page.text().await.expect("page"));
    let reader = app.token("reader@example.com", &["download/internal"]);
    let resp = post_form(
        &app,
        "ui/sign-in",
        &anonymous,
        &[("csrf", &form), ("token", &reader)],
    )
    .await;
    assert_eq!(resp.status(), 303);
    let session = cookie(&resp);
    assert!(
        resp.headers()["set-cookie"]
            .to_str()
            .expect("ascii")
            .contains("HttpOnly; SameSite=Lax"),
        "{:?}",
        resp.headers()
    );
    let me = get_with(&app, "ui/me", &session)
        .await
        .text()
        .await
        .expect("me");
    assert!(me.contains("<code>reader@example.com</code>"), "{me}");

    let resp = get_with(&app, &download, &session).await;
    assert_eq!(resp.status(), 302);
    let to = resp.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let got = reqwest::get(to)
        .await
        .expect("get")
        .bytes()
        .await
        .expect("bytes");
    assert_eq!(&got[..], b"internal sdk");
    // The JSON API never honours the cookie.
    let api = get_with(&app, &format!("sha512/{digest}"), &session).await;
    assert_eq!(api.status(), 403);

    let resp = post_form(&app, "ui/sign-out", &session, &[("csrf", &csrf(&me))]).await;
    assert_eq!(resp.status(), 303);
    let cleared = cookie(&resp);
    assert_eq!(cleared, "tooltool_session=");
    assert_eq!(get_with(&app, &download, &cleared).await.status(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taskcluster_sign_in_against_the_fake_deployment() {
    use tooltool_taskcluster::fake::FAKE_OAUTH_CLIENT;
    let prefix = "project:releng:services/tooltool/api";
    let taskcluster = tooltool_taskcluster::fake::start(vec![(
        "mozilla-auth0/ad|Mozilla-LDAP|manager".into(),
        "manager-access-token".into(),
        vec![format!("{prefix}/manage"), "queue:*".into()],
    )])
    .await;
    let app = spawn_with(&[
        "--taskcluster-root-url",
        &format!("{taskcluster}/ok"),
        "--taskcluster-login-client-id",
        FAKE_OAUTH_CLIENT.0,
        "--taskcluster-login-client-secret",
        FAKE_OAUTH_CLIENT.1,
    ])
    .await;
    let page = app.get("ui/sign-in").await.text().await.expect("page");
    assert!(page.contains("Sign in with Taskcluster"), "{page}");
    let start = app.get("ui/sign-in/taskcluster").await;
    assert_eq!(start.status(), 303);
    let anonymous = cookie(&start);
    let authorize = start.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(authorize.starts_with(&format!("{taskcluster}/ok/login/oauth/authorize?")));
    // The fake's consent page, answered as a person would.
    let consent = reqwest::get(&authorize)
        .await
        .expect("consent")
        .text()
        .await
        .expect("page");
    assert!(
        consent.contains("Grant as mozilla-auth0/ad|Mozilla-LDAP|manager"),
        "{consent}"
    );
    let query: std::collections::HashMap<String, String> = reqwest::Url::parse(&authorize)
        .expect("url")
        .query_pairs()
        .into_owned()
        .collect();
    let back = app
        .http
        .post(format!("{taskcluster}/ok/login/oauth/decision"))
        .form(&[
            ("client", "0"),
            ("redirect_uri", &query["redirect_uri"]),
            ("state", &query["state"]),
        ])
        .send()
        .await
        .expect("decision");
    let callback = back.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        callback.starts_with(&app.at("ui/sign-in/taskcluster/callback?code=")),
        "{callback}"
    );
    let path = callback.strip_prefix(&app.at("")).expect("ours").to_owned();
    // Finishing in another browser (no cookie) is refused; in this one it signs in.
    assert_eq!(app.get(&path).await.status(), 403);
    let resp = get_with(&app, &path, &anonymous).await;
    assert_eq!(resp.status(), 303);
    let session = cookie(&resp);
    let me = get_with(&app, "ui/me", &session)
        .await
        .text()
        .await
        .expect("me");
    assert!(
        me.contains("<code>mozilla-auth0/ad|Mozilla-LDAP|manager</code>"),
        "{me}"
    );
    assert!(
        me.contains(&format!("<li><code>{prefix}/manage</code></li>")),
        "{me}"
    );
    assert!(
        !me.contains("queue:*"),
        "only tooltool scopes are kept: {me}"
    );
    // The code was spent: replaying the callback is refused.
    assert_eq!(get_with(&app, &path, &anonymous).await.status(), 401);
}
