//! Taskcluster Hawk end to end: the Mozilla client's operations with both
//! verifiers, the full permission matrix for Hawk and Bearer, proxies,
//! Taskcluster outages and `/__permissions__`.

use reqwest::Method;
use serde_json::{Value, json};
use tooltool_ports::Clock;
use tooltool_tests::{
    HawkCredentials, PREFIX, TestApp, batch_body, put, put_url, sha512_hex, spawn_with,
};

/// The principals of the matrix: name and scopes (relative to the prefix).
const PRINCIPALS: &[(&str, &[&str])] = &[
    ("download-public", &["download/public"]),
    ("download-internal", &["download/internal"]),
    ("upload-public", &["upload/public"]),
    ("upload-internal", &["upload/internal"]),
    ("manage", &["manage"]),
    ("wildcard", &["*"]),
];

fn token_of(name: &str) -> String {
    format!("access-token-of-{name}-0123456789")
}

fn credentials(name: &str) -> HawkCredentials {
    HawkCredentials {
        client_id: format!("project/releng/{name}"),
        access_token: token_of(name),
    }
}

/// Writes a HAWK_CLIENTS_FILE with every matrix principal.
fn clients_file(dir: &std::path::Path) -> String {
    let clients: Vec<Value> = PRINCIPALS
        .iter()
        .map(|(name, scopes)| {
            json!({
                "clientId": format!("project/releng/{name}"),
                "accessToken": token_of(name),
                "scopes": scopes.iter().map(|s| format!("{PREFIX}/{s}")).collect::<Vec<_>>(),
            })
        })
        .collect();
    let path = dir.join("clients.json");
    std::fs::write(&path, serde_json::to_string(&clients).expect("json")).expect("write");
    path.to_str().expect("utf-8").to_owned()
}

fn fake_clients() -> Vec<tooltool_taskcluster::fake::FakeClient> {
    PRINCIPALS
        .iter()
        .map(|(name, scopes)| {
            (
                format!("project/releng/{name}"),
                token_of(name),
                scopes.iter().map(|s| format!("{PREFIX}/{s}")).collect(),
            )
        })
        .collect()
}

#[derive(Clone, Copy, Debug)]
enum Scheme {
    Hawk,
    Bearer,
}

/// Sends `method path [body]` as principal `who` (None = anonymous).
async fn send(
    app: &TestApp,
    scheme: Scheme,
    who: Option<&str>,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> reqwest::Response {
    let bytes = body.map(|b| b.to_string().into_bytes());
    let mut req = app.http.request(method.clone(), app.at(path));
    if let Some(who) = who {
        let header = match scheme {
            Scheme::Hawk => app.hawk(&credentials(who), method.as_str(), path, bytes.as_deref()),
            Scheme::Bearer => {
                let scopes = PRINCIPALS
                    .iter()
                    .find(|(n, _)| *n == who)
                    .expect("principal")
                    .1;
                format!("Bearer {}", app.token(who, scopes))
            }
        };
        req = req.header("Authorization", header);
    }
    if let Some(bytes) = bytes {
        req = req.header("Content-Type", "application/json").body(bytes);
    }
    req.send().await.expect("send")
}

/// Uploads one public and one internal file (as the wildcard principal).
async fn seed(app: &TestApp) -> (String, String) {
    let token = app.token("seed", &["*"]);
    (
        app.upload(&token, "public.bin", b"public seed", "public")
            .await,
        app.upload(&token, "internal.bin", b"internal seed", "internal")
            .await,
    )
}

async fn matrix(app: &TestApp, scheme: Scheme, anonymous_download: bool) {
    let (public, internal) = seed(app).await;
    let p = if anonymous_download { 302 } else { 403 };
    // principal → download public, download internal, upload public,
    // upload internal, mixed batch, PATCH
    let expected: &[(Option<&str>, [u16; 6])] = &[
        (None, [p, 403, 403, 403, 403, 401]),
        (Some("download-public"), [302, 403, 403, 403, 403, 403]),
        (Some("download-internal"), [p, 302, 403, 403, 403, 403]),
        (Some("upload-public"), [p, 403, 200, 403, 403, 403]),
        (Some("upload-internal"), [p, 403, 403, 200, 403, 403]),
        (Some("manage"), [p, 403, 403, 403, 403, 200]),
        (Some("wildcard"), [302, 302, 200, 200, 200, 200]),
    ];
    for (who, statuses) in expected {
        let tag = who.unwrap_or("anonymous");
        let up_public = batch_body(
            "m",
            &[(
                &format!("{tag}.pub"),
                format!("pub {tag}").as_bytes(),
                "public",
            )],
        );
        let up_internal = batch_body(
            "m",
            &[(
                &format!("{tag}.int"),
                format!("int {tag}").as_bytes(),
                "internal",
            )],
        );
        let mixed = batch_body(
            "m",
            &[
                (
                    &format!("{tag}.mix1"),
                    format!("mix pub {tag}").as_bytes(),
                    "public",
                ),
                (
                    &format!("{tag}.mix2"),
                    format!("mix int {tag}").as_bytes(),
                    "internal",
                ),
            ],
        );
        let patch = json!([]);
        let cells: [(Method, String, Option<&Value>); 6] = [
            (Method::GET, format!("sha512/{public}"), None),
            (Method::GET, format!("sha512/{internal}?region=local"), None),
            (Method::POST, "upload".into(), Some(&up_public)),
            (
                Method::POST,
                "upload?region=local".into(),
                Some(&up_internal),
            ),
            (Method::POST, "upload".into(), Some(&mixed)),
            (Method::PATCH, format!("file/sha512/{public}"), Some(&patch)),
        ];
        for ((method, path, body), status) in cells.into_iter().zip(statuses) {
            let resp = send(app, scheme, *who, method.clone(), &path, body).await;
            let got = resp.status().as_u16();
            let text = resp.text().await.expect("body");
            assert_eq!(got, *status, "{scheme:?} {tag}: {method} {path}: {text}");
            if *status >= 400 {
                let problem: Value = serde_json::from_str(&text).expect("error shape");
                assert_eq!(problem["status"], *status);
            }
        }
    }
}

#[tokio::test]
async fn permission_matrix_for_hawk_and_bearer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = clients_file(dir.path());
    for anonymous_download in [true, false] {
        let flag = anonymous_download.to_string();
        let app = spawn_with(&[
            "--hawk-clients-file",
            &file,
            "--allow-anonymous-public-download",
            &flag,
        ])
        .await;
        matrix(&app, Scheme::Hawk, anonymous_download).await;
        matrix(&app, Scheme::Bearer, anonymous_download).await;
    }
}

/// The Mozilla client's operations, signed as it signs them.
async fn client_operations(app: &TestApp) {
    let uploader = "wildcard";
    let content: &[u8] = b"uploaded with Hawk credentials";
    let digest = sha512_hex(content);
    for (i, path) in ["upload", "upload?region=local"].into_iter().enumerate() {
        let content = format!("{i} {}", String::from_utf8_lossy(content)).into_bytes();
        let body = batch_body("hawk upload", &[("h.bin", &content, "public")]);
        let resp = send(
            app,
            Scheme::Hawk,
            Some(uploader),
            Method::POST,
            path,
            Some(&body),
        )
        .await;
        assert_eq!(resp.status(), 200, "POST /{path}");
        let batch: Value = resp.json().await.expect("json");
        assert_eq!(batch["result"]["author"], "project/releng/wildcard");
        assert_eq!(put(&put_url(&batch, "h.bin"), &content).await.status(), 200);
        let d = sha512_hex(&content);
        let done = send(
            app,
            Scheme::Hawk,
            Some(uploader),
            Method::GET,
            &format!("upload/complete/sha512/{d}"),
            None,
        )
        .await;
        assert_eq!(done.status(), 202);
    }
    let body = batch_body("hawk upload", &[("f.bin", content, "internal")]);
    let batch: Value = send(
        app,
        Scheme::Hawk,
        Some(uploader),
        Method::POST,
        "upload",
        Some(&body),
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(put(&put_url(&batch, "f.bin"), content).await.status(), 200);
    // fetch with --region, following the redirect without credentials
    let resp = send(
        app,
        Scheme::Hawk,
        Some("download-internal"),
        Method::GET,
        &format!("sha512/{digest}?region=local"),
        None,
    )
    .await;
    assert_eq!(resp.status(), 302);
    let location = resp.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_eq!(
        &reqwest::get(&location)
            .await
            .expect("get")
            .bytes()
            .await
            .expect("body")[..],
        content
    );
    // change-visibility, then delete
    let ops = json!([{"op": "set_visibility", "visibility": "public"}]);
    let resp = send(
        app,
        Scheme::Hawk,
        Some("manage"),
        Method::PATCH,
        &format!("file/sha512/{digest}"),
        Some(&ops),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Value>().await.expect("json")["visibility"],
        "public"
    );
    let ops = json!([{"op": "delete_instances"}]);
    let resp = send(
        app,
        Scheme::Hawk,
        Some("manage"),
        Method::PATCH,
        &format!("file/sha512/{digest}"),
        Some(&ops),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(app.get(&format!("sha512/{digest}")).await.status(), 404);
}

#[tokio::test]
async fn the_mozilla_client_works_with_the_local_verifier() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = spawn_with(&["--hawk-clients-file", &clients_file(dir.path())]).await;
    client_operations(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mozilla_client_works_with_taskcluster() {
    let taskcluster = tooltool_taskcluster::fake::start(fake_clients()).await;
    let app = spawn_with(&["--taskcluster-root-url", &format!("{taskcluster}/ok")]).await;
    client_operations(&app).await;
    // Taskcluster's refusal is a 401 with its reason.
    let wrong = HawkCredentials {
        client_id: "project/releng/manage".into(),
        access_token: "wrong".into(),
    };
    let header = app.hawk(&wrong, "GET", "__permissions__", None);
    let resp = app
        .http
        .get(app.at("__permissions__"))
        .header("Authorization", header)
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 401);
    let p: Value = resp.json().await.expect("json");
    assert!(
        p["detail"]
            .as_str()
            .is_some_and(|d| d.contains("Taskcluster refused")),
        "{p}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taskcluster_outages_are_503_never_anonymous() {
    let taskcluster = tooltool_taskcluster::fake::start(fake_clients()).await;
    for root in [
        format!("{taskcluster}/broken"),
        format!("{taskcluster}/slow"),
    ] {
        let app = spawn_with(&[
            "--taskcluster-root-url",
            &root,
            "--taskcluster-timeout",
            "300ms",
        ])
        .await;
        let (public, _) = seed(&app).await;
        let resp = send(
            &app,
            Scheme::Hawk,
            Some("download-public"),
            Method::GET,
            &format!("sha512/{public}"),
            None,
        )
        .await;
        assert_eq!(resp.status(), 503, "{root}");
        let p: Value = resp.json().await.expect("error shape");
        assert_eq!(p["error"]["name"], "503 Service Unavailable");
        // Bearer and anonymous requests do not depend on Taskcluster.
        assert_eq!(app.get(&format!("sha512/{public}")).await.status(), 302);
    }
}

#[tokio::test]
async fn proxy_headers_count_only_when_trusted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = clients_file(dir.path());
    for trust in [true, false] {
        let app = spawn_with(&[
            "--hawk-clients-file",
            &file,
            "--trust-proxy-headers",
            &trust.to_string(),
        ])
        .await;
        // Signed for the public name the client used, as a proxy forwards it.
        let header = tooltool_taskcluster::sign(
            "project/releng/manage",
            &token_of("manage"),
            app.clock.now().timestamp(),
            &format!("proxy-{trust}"),
            &tooltool_taskcluster::SignedRequest {
                method: "GET",
                resource: "/__permissions__",
                host: "tooltool.example.com",
                port: 443,
                payload: None,
            },
        );
        let resp = app
            .http
            .get(app.at("__permissions__"))
            .header("Authorization", header)
            .header("X-Forwarded-Host", "tooltool.example.com")
            .header("X-Forwarded-Proto", "https")
            .send()
            .await
            .expect("get");
        assert_eq!(
            resp.status(),
            if trust { 200 } else { 401 },
            "trust={trust}"
        );
    }
}

#[tokio::test]
async fn permissions_endpoint_shows_the_caller() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = spawn_with(&["--hawk-clients-file", &clients_file(dir.path())]).await;
    let anonymous: Value = app.get("__permissions__").await.json().await.expect("json");
    assert_eq!(
        anonymous,
        json!({"clientId": null, "scopes": [], "anonymousPublicDownload": true})
    );
    for scheme in [Scheme::Hawk, Scheme::Bearer] {
        let resp = send(
            &app,
            scheme,
            Some("upload-public"),
            Method::GET,
            "__permissions__",
            None,
        )
        .await;
        assert_eq!(resp.status(), 200);
        let me: Value = resp.json().await.expect("json");
        assert_eq!(
            me["scopes"],
            json!([format!("{PREFIX}/upload/public")]),
            "{scheme:?}"
        );
        let expected_id = match scheme {
            Scheme::Hawk => "project/releng/upload-public",
            Scheme::Bearer => "upload-public",
        };
        assert_eq!(me["clientId"], expected_id);
    }
    let resp = app
        .http
        .get(app.at("__permissions__"))
        .header("Authorization", "Hawk nonsense")
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 401);
}

/// Sends `GET /__permissions__` with a captured `Authorization`, addressed
/// (Host) as `authority`, to `app`.
async fn replay(app: &TestApp, authority: &str, authorization: &str) -> (u16, Value) {
    let resp = app
        .http
        .get(app.at("__permissions__"))
        .header("Host", authority)
        .header("Authorization", authorization)
        .send()
        .await
        .expect("get");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("json"))
}

fn assert_replay_refused((status, body): (u16, Value), when: &str) {
    assert_eq!(status, 401, "{when}: {body}");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("already used")),
        "{when}: {body}"
    );
}

/// A captured Hawk request is accepted once: not again in the same
/// process, and not after a restart within the 15-minute window (nonces
/// are spent in the metadata store, not in memory).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_captured_request_is_refused_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = spawn_with(&["--hawk-clients-file", &clients_file(dir.path())]).await;
    let header = app.hawk(&credentials("manage"), "GET", "__permissions__", None);
    let here = app.authority();
    let (status, me) = replay(&app, &here, &header).await;
    assert_eq!(
        (status, &me["clientId"]),
        (200, &json!("project/releng/manage"))
    );
    assert_replay_refused(replay(&app, &here, &header).await, "same process");
    let app = app.restart().await;
    assert_replay_refused(replay(&app, &here, &header).await, "after a restart");
    // A fresh request of the same client still works.
    let fresh = app.hawk(&credentials("manage"), "GET", "__permissions__", None);
    assert_eq!(replay(&app, &here, &fresh).await.0, 200);
}

/// Two processes on one PostgreSQL database: a request captured from one
/// is refused by the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_captured_request_is_refused_by_another_process() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clients = clients_file(dir.path());
    let db = tooltool_tests::fresh_database_url().await;
    let a = spawn_with(&["--hawk-clients-file", &clients, "--database-url", &db]).await;
    let b = spawn_with(&["--hawk-clients-file", &clients, "--database-url", &db]).await;
    let header = a.hawk(&credentials("manage"), "GET", "__permissions__", None);
    assert_eq!(replay(&a, &a.authority(), &header).await.0, 200);
    assert_replay_refused(
        replay(&b, &a.authority(), &header).await,
        "the other process",
    );
}
