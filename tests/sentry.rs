//! Sentry: panics and every 5xx are reported, with the request id, method,
//! route and principal, through a local test transport (no network).

use std::sync::Arc;

use tooltool_tests::spawn_app;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panics_and_server_errors_reach_sentry_without_secrets() {
    let transport = sentry::test::TestTransport::new();
    let mut options =
        tooltool::telemetry::sentry_options("https://public@sentry.invalid/1", "test")
            .expect("valid DSN");
    let factory: Arc<dyn sentry::TransportFactory> = Arc::new(Arc::clone(&transport));
    options.transport = Some(factory);
    let _guard = tooltool::telemetry::install("info", "text", Some(options));

    // A panic anywhere in the process.
    let _ = std::thread::spawn(|| panic!("boom from a worker")).join();

    // A 5xx: a region that cannot be read any more.
    let app = spawn_app().await;
    let token = app.token("sentry-user", &["*"]);
    let digest = app.upload(&token, "s.bin", b"sentry", "public").await;
    let location = app.location(&format!("sha512/{digest}")).await;
    let objects = app.data_path().join("objects");
    std::fs::remove_dir_all(&objects).expect("rm");
    std::fs::write(&objects, b"not a directory").expect("write");
    let resp = app
        .http
        .get(&location)
        .header("X-Request-Id", "sentry-req-1")
        .bearer_auth(&token)
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 503);

    sentry::Hub::current().client().expect("client").flush(None);
    let events = transport.fetch_and_clear_events();
    let panic = events
        .iter()
        .find(|e| {
            e.exception.values.iter().any(|x| {
                x.value
                    .as_deref()
                    .is_some_and(|v| v.contains("boom from a worker"))
            })
        })
        .unwrap_or_else(|| panic!("no panic event in {events:#?}"));
    assert_eq!(panic.environment.as_deref(), Some("test"));
    assert!(
        panic
            .release
            .as_deref()
            .is_some_and(|r| r.starts_with("tooltool@"))
    );

    let server_error = events
        .iter()
        .find(|e| format!("{e:?}").contains("sentry-req-1"))
        .unwrap_or_else(|| panic!("no event for the 5xx in {events:#?}"));
    let text = format!("{server_error:?}");
    for expected in ["sentry-req-1", "GET", "blob", "503", "sentry-user"] {
        assert!(text.contains(expected), "{expected} missing from {text}");
    }
    assert!(!text.contains(&token), "the bearer token reached Sentry");
    assert!(!text.contains("signature="), "a signed URL reached Sentry");
}
