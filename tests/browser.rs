//! The web interface in a real browser: starts a server (with a fake
//! Taskcluster for its sign-in), uploads what the flows need, then runs
//! `tests/browser/flows.test.mjs` (Playwright driving Debian's headless
//! chromium, axe-core checking each page) and fails with its report.
//! scripts/test installs chromium and the Node packages when missing; a
//! machine without them fails here, loudly, never skips.

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use tooltool_taskcluster::fake::FAKE_OAUTH_CLIENT;
use tooltool_tests::{TestApp, batch_body, put, put_url, spawn_with};

const PREFIX: &str = "project:releng:services/tooltool/api";
const MANAGER: &str = "mozilla-auth0/ad|Mozilla-LDAP|manager";

/// Uploads one file in its own batch: what the flows need to know of it.
async fn upload(
    app: &TestApp,
    token: &str,
    name: &str,
    content: &[u8],
    visibility: &str,
) -> String {
    let batch = app
        .create_batch(
            token,
            &batch_body(
                &format!("Bug 1234 - {name}"),
                &[(name, content, visibility)],
            ),
            None,
        )
        .await;
    assert_eq!(put(&put_url(&batch, name), content).await.status(), 200);
    serde_json::json!({
        "name": name,
        "digest": tooltool_tests::sha512_hex(content),
        "batch": batch["result"]["id"],
        "content": base64::engine::general_purpose::STANDARD.encode(content),
    })
    .to_string()
}

fn need(what: &str, ok: bool, how: &str) {
    assert!(ok, "{what} is missing: {how} (scripts/test installs it)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_interface_in_headless_chromium() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tests = root.join("tests/browser");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    need(
        "chromium",
        Path::new(&chromium).exists(),
        "apt-get install chromium",
    );
    need(
        "node",
        Command::new("node").arg("--version").output().is_ok(),
        "install Node.js 20",
    );
    need(
        "tests/browser/node_modules",
        tests.join("node_modules/playwright-core").exists(),
        "npm ci --prefix tests/browser",
    );

    let taskcluster = tooltool_taskcluster::fake::start(vec![(
        MANAGER.into(),
        "manager-access-token".into(),
        vec![format!("{PREFIX}/*")],
    )])
    .await;
    let taskcluster_root = format!("{taskcluster}/ok");
    let app = spawn_with(&[
        "--taskcluster-root-url",
        &taskcluster_root,
        "--taskcluster-login-client-id",
        FAKE_OAUTH_CLIENT.0,
        "--taskcluster-login-client-secret",
        FAKE_OAUTH_CLIENT.1,
    ])
    .await;
    let uploader = app.token("releng@example.com", &["upload/*"]);
    let public = upload(
        &app,
        &uploader,
        "clang-18.tar.zst",
        b"clang toolchain bytes\x00\x01",
        "public",
    )
    .await;
    let internal = upload(
        &app,
        &uploader,
        "sdk-internal.zip",
        b"internal sdk bytes\xff",
        "internal",
    )
    .await;
    let managed = upload(
        &app,
        &uploader,
        "to-manage.bin",
        b"a file to manage",
        "public",
    )
    .await;
    let reader = app.token("reader@example.com", &["download/internal"]);
    let manager = app.token("manager@example.com", &["manage"]);
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-screenshots");
    let base = app.at("");
    let base = base.trim_end_matches('/').to_owned();

    let run = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .args(["--test", "--test-reporter=spec", "flows.test.mjs"])
            .current_dir(&tests)
            .env("TOOLTOOL_URL", base)
            .env("TOOLTOOL_SCREENSHOTS", &shots)
            .env("TOOLTOOL_PUBLIC", public)
            .env("TOOLTOOL_INTERNAL", internal)
            .env("TOOLTOOL_MANAGED", managed)
            .env("TOOLTOOL_READER_TOKEN", reader)
            .env("TOOLTOOL_MANAGER_TOKEN", manager)
            .env("TOOLTOOL_TASKCLUSTER_ROOT", taskcluster_root)
            .env("TOOLTOOL_TASKCLUSTER_CLIENT", MANAGER)
            .env("CHROMIUM", chromium)
            .output()
            .map(|out| (out, shots))
    })
    .await
    .expect("joined");
    let (out, shots) = run.expect("node runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{report}\nscreenshots: {}", shots.display());
    assert!(out.status.success(), "browser flows failed:\n{report}");
}
