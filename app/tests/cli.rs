//! The binary's command line: one-line configuration errors, `token`,
//! `--help`, and the one-process rule of the embedded store.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Server, all_scopes_token, declare, stderr, tokio_stream_from, tooltool};

#[test]
fn bad_configuration_is_one_line_naming_the_variable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8");
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("MAX_FILE_SIZE", "lots")], "MAX_FILE_SIZE"),
        (&[("LOCAL_REGIONS", "no-path")], "LOCAL_REGIONS"),
        (&[("PUBLIC_URL", "http://example.com")], "PUBLIC_URL"),
        (&[("LISTEN", "not an address")], "LISTEN"),
        (
            &[("ALLOW_ANONYMOUS_PUBLIC_DOWNLOAD", "maybe")],
            "ALLOW_ANONYMOUS_PUBLIC_DOWNLOAD",
        ),
        (&[("JWT_PUBLIC_KEY", "/nonexistent.pem")], "JWT_PUBLIC_KEY"),
        (
            &[("HAWK_CLIENTS_FILE", "/nonexistent.json")],
            "HAWK_CLIENTS_FILE",
        ),
        (
            &[("TASKCLUSTER_ROOT_URL", "not-a-url")],
            "TASKCLUSTER_ROOT_URL",
        ),
        (&[("SENTRY_DSN", "not a dsn")], "SENTRY_DSN"),
        (&[("METRICS_LISTEN", "nowhere")], "METRICS_LISTEN"),
    ];
    for (env, variable) in cases {
        let mut env = env.to_vec();
        env.push(("DATA_DIR", data));
        // The address is bound first: a free one, so each case reaches its own check.
        if !env.iter().any(|(k, _)| *k == "LISTEN") {
            env.push(("LISTEN", "127.0.0.1:0"));
        }
        let out = tooltool(&["serve"], &env);
        assert!(!out.status.success(), "{variable}");
        let err = stderr(&out);
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "one line for {variable}: {err}"
        );
        assert!(err.contains(variable), "{variable} named in: {err}");
    }
}

#[test]
fn token_works_out_of_the_box_and_help_lists_every_variable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8");
    let out = tooltool(
        &["token", "--sub", "me", "--scope", "a", "--scope", "b"],
        &[("DATA_DIR", data)],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let token = String::from_utf8(out.stdout.clone()).expect("utf-8");
    assert_eq!(token.trim().split('.').count(), 3, "a JWT: {token}");
    assert!(
        dir.path().join("jwt-secret").exists(),
        "the secret is created in DATA_DIR"
    );
    assert!(
        stderr(&out).contains("did not exist, so a new key was made there"),
        "a new key is announced: {}",
        stderr(&out)
    );
    let again = tooltool(
        &["token", "--sub", "me", "--scope", "a"],
        &[("DATA_DIR", data)],
    );
    assert!(again.status.success());
    assert_eq!(stderr(&again), "", "an existing key needs no word");

    let help = tooltool(&["--help"], &[]);
    assert!(help.status.success());
    let text = String::from_utf8(help.stdout).expect("utf-8");
    for var in [
        "LISTEN",
        "PORT",
        "PUBLIC_URL",
        "DATA_DIR",
        "LOCAL_REGIONS",
        "UPLOAD_EXPIRES_IN",
        "DOWNLOAD_EXPIRES_IN",
        "MAX_FILE_SIZE",
        "MAX_REQUEST_BODY",
        "HEADER_TIMEOUT",
        "IDLE_TIMEOUT",
        "MAX_CONNECTIONS",
        "MAX_CONNECTIONS_PER_PEER",
        "JWT_SECRET",
        "JWT_PUBLIC_KEY",
        "SCOPE_PREFIX",
        "ALLOW_ANONYMOUS_PUBLIC_DOWNLOAD",
        "URL_SIGNING_SECRET",
        "VERIFY_INTERVAL",
        "REPLICATE_INTERVAL",
        "SWEEP_INTERVAL",
        "LOG_LEVEL",
        "LOG_FORMAT",
        "HAWK_CLIENTS_FILE",
        "TASKCLUSTER_ROOT_URL",
        "TASKCLUSTER_TIMEOUT",
        "TRUST_PROXY_HEADERS",
        "CORS_ORIGINS",
        "METRICS_LISTEN",
        "SENTRY_DSN",
        "SENTRY_ENVIRONMENT",
        "DATABASE_URL",
        "DATABASE_POOL_SIZE",
        "DATABASE_STARTUP_WAIT",
        "S3_REGIONS",
        "S3_ENDPOINT",
        "S3_REGIONS_ACCESS_KEY_ID",
        "S3_REGIONS_SECRET_ACCESS_KEY",
        "S3_SIGNING_REGION",
        "S3_SINGLE_PUT_LIMIT",
        "S3_READ_STREAMS",
    ] {
        assert!(
            text.contains(&format!("env: {var}")),
            "--help documents {var}"
        );
    }
    for sub in [
        "import-legacy",
        "serve",
        "migrate",
        "token",
        "openapi",
        "check-pending-uploads",
        "replicate",
        "sweep",
    ] {
        assert!(text.contains(sub), "--help lists {sub}");
    }
}

#[test]
fn job_commands_run_once_and_refuse_a_store_in_use() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8");
    for job in ["check-pending-uploads", "replicate", "sweep"] {
        let out = tooltool(&[job], &[("DATA_DIR", data)]);
        assert!(out.status.success(), "{job}: {}", stderr(&out));
        let text = String::from_utf8(out.stdout).expect("utf-8");
        assert!(text.starts_with(&format!("{job}: 0 done")), "{job}: {text}");
    }
    let migrate = tooltool(&["migrate"], &[("DATA_DIR", data)]);
    assert!(migrate.status.success());
    // A running server owns the embedded store.
    let mut server = Server::start(data, &[]);
    let out = tooltool(&["sweep"], &[("DATA_DIR", data)]);
    server.kill();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("in use by another tooltool process"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn every_request_logs_one_json_line_with_its_id_and_no_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8");
    let mut server = Server::start(data, &[("LOG_FORMAT", "json"), ("LOG_LEVEL", "info")]);
    let url = server.url.clone();
    let token = String::from_utf8(
        tooltool(
            &[
                "token",
                "--sub",
                "logger",
                "--scope",
                "project:releng:services/tooltool/api/*",
            ],
            &[("DATA_DIR", data)],
        )
        .stdout,
    )
    .expect("utf-8");
    let token = token.trim();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let digest = "a".repeat(128);
    let resp = client
        .get(format!("{url}/sha512/{digest}"))
        .header("X-Request-Id", "trace-me-123")
        .bearer_auth(token)
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.headers()["x-request-id"], "trace-me-123", "echoed");
    let generated = client
        .get(format!("{url}/__lbheartbeat__"))
        .send()
        .await
        .expect("get");
    assert_eq!(
        generated.headers()["x-request-id"].len(),
        32,
        "generated when absent"
    );
    // A signed URL: its signature must not reach the logs.
    let resp = client
        .get(format!(
            "{url}/blob/local/sha512/{digest}?expires=1&signature=deadbeef"
        ))
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 403);
    // The request line is written once the response is; the server stops
    // only after saying it, so the log is complete.
    server.wait_for(r#""route":"blob""#);
    server.kill();
    let logs = server.logs();
    let line: serde_json::Value = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["span"]["request_id"] == "trace-me-123" && v["fields"]["message"] == "request")
        .unwrap_or_else(|| panic!("no request line for trace-me-123 in:\n{logs}"));
    assert_eq!(line["fields"]["route"], "download");
    assert_eq!(line["fields"]["status"], 404);
    assert_eq!(line["fields"]["method"], "GET");
    assert_eq!(line["fields"]["principal"], "logger");
    assert_eq!(line["fields"]["digest"], digest.as_str());
    assert!(line["fields"]["latency_ms"].is_number());
    assert!(
        !logs.contains(token),
        "the bearer token leaked into the logs"
    );
    assert!(
        !logs.contains("deadbeef"),
        "a URL signature leaked into the logs"
    );
}

#[tokio::test]
async fn metrics_can_have_their_own_listener() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8");
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let metrics_addr = format!("127.0.0.1:{metrics_port}");
    let mut server = Server::start(data, &[("METRICS_LISTEN", &metrics_addr)]);
    let url = server.url.clone();
    let main = reqwest::get(format!("{url}/metrics")).await.expect("get");
    let separate = reqwest::get(format!("http://{metrics_addr}/metrics"))
        .await
        .expect("get");
    server.kill();
    assert_eq!(main.status(), 404, "not on the public listener");
    assert_eq!(separate.status(), 200);
    assert!(
        separate
            .text()
            .await
            .expect("text")
            .contains("tooltool_pending_uploads")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_an_in_flight_upload_finish_then_exits_0() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8");
    // The gateway says when it starts receiving an upload.
    let mut server = Server::start(
        data,
        &[("LOG_LEVEL", "info,tooltool::service::gateway=debug")],
    );
    let url = server.url.clone();
    let token = all_scopes_token(data);
    let content = vec![7u8; 4 * 1024 * 1024];
    let client = reqwest::Client::new();
    let (_, put_url) = declare(&url, &token, "big", &content).await;

    // A slow client: half the body, then (after SIGTERM) the rest.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let body = reqwest::Body::wrap_stream(tokio_stream_from(rx));
    let upload = tokio::spawn({
        let client = client.clone();
        let put_url = put_url.clone();
        async move {
            client
                .put(put_url)
                .header("Content-Length", 4 * 1024 * 1024)
                .body(body)
                .send()
                .await
        }
    });
    let half = content.len() / 2;
    tx.send(Ok(content[..half].to_vec())).await.expect("send");
    // In flight: the server is receiving the body, whose rest it waits for.
    tokio::task::block_in_place(|| server.wait_for("receiving an upload"));
    let term = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(term.success());
    tokio::task::block_in_place(|| server.wait_for("shutting down"));
    tx.send(Ok(content[half..].to_vec())).await.expect("send");
    drop(tx);
    let resp = upload
        .await
        .expect("join")
        .expect("the in-flight upload is answered");
    assert_eq!(resp.status(), 200, "the upload completed during shutdown");
    let status = tokio::task::block_in_place(|| server.child.wait()).expect("exit status");
    assert!(
        status.success(),
        "exit 0 after a graceful shutdown: {status:?}\n{}",
        server.logs()
    );
    assert!(
        std::fs::read_dir(dir.path().join("objects/sha512"))
            .expect("dir")
            .count()
            == 1,
        "the upload was kept"
    );
}

#[test]
fn an_unreachable_database_stops_start_up_after_bounded_retries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let started = std::time::Instant::now();
    let out = tooltool(
        &["serve"],
        &[
            ("DATA_DIR", dir.path().to_str().expect("utf-8")),
            ("DATABASE_URL", "postgres://postgres@127.0.0.1:9/nowhere"),
            ("DATABASE_STARTUP_WAIT", "1s"),
            ("LOG_LEVEL", "error"),
        ],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("DATABASE_URL"), "{err}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "bounded"
    );
}

/// An original tooltool database (its schema, sample rows) on a fresh
/// schema of the throwaway test database; answers its URL.
async fn legacy_database(a: &str, b: &str) -> String {
    let url = std::env::var("TOOLTOOL_TEST_DATABASE_URL").expect(
        "TOOLTOOL_TEST_DATABASE_URL must name a throwaway PostgreSQL database (scripts/test creates one)",
    );
    let schema = format!("legacy{}", std::process::id());
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let bad = "A".repeat(128);
    client
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; SET search_path = {schema};
             CREATE TYPE visibility AS ENUM ('public', 'internal');
             CREATE TYPE region AS ENUM ('us-east-1', 'us-west-1', 'us-west-2');
             CREATE TABLE releng_tooltool_files (id integer PRIMARY KEY, size bigint NOT NULL,
                 sha512 varchar(128) NOT NULL UNIQUE, visibility visibility NOT NULL);
             CREATE TABLE releng_tooltool_file_instances (file_id integer NOT NULL REFERENCES releng_tooltool_files(id),
                 region region NOT NULL, PRIMARY KEY (file_id, region));
             CREATE TABLE releng_tooltool_batches (id integer PRIMARY KEY, uploaded timestamp without time zone NOT NULL,
                 author text NOT NULL, message text NOT NULL);
             CREATE TABLE releng_tooltool_batch_files (file_id integer NOT NULL REFERENCES releng_tooltool_files(id),
                 batch_id integer NOT NULL REFERENCES releng_tooltool_batches(id), filename text NOT NULL,
                 PRIMARY KEY (file_id, batch_id));
             CREATE TABLE releng_tooltool_pending_upload (file_id integer PRIMARY KEY REFERENCES releng_tooltool_files(id),
                 expires timestamp without time zone NOT NULL, region region NOT NULL);
             INSERT INTO releng_tooltool_files VALUES (1, 3221225472, '{a}', 'internal'), (2, 5, '{b}', 'public'),
                 (3, 7, '{bad}', 'public');
             INSERT INTO releng_tooltool_file_instances VALUES (1, 'us-east-1'), (1, 'us-west-2');
             INSERT INTO releng_tooltool_batches VALUES (1, '2015-06-01 12:00:00', 'releng@mozilla.com', 'first'),
                 (2, '2015-06-02 12:00:00', 'someone', 'broken'), (3, '2015-06-03 12:00:00', 'releng@mozilla.com', 'third');
             INSERT INTO releng_tooltool_batch_files VALUES (1, 1, 'clang.tar.xz'), (2, 1, 'never-uploaded.txt'),
                 (3, 2, 'bad.txt'), (1, 3, 'clang-again.tar.xz');
             INSERT INTO releng_tooltool_pending_upload VALUES (2, '2015-06-01 12:01:00', 'us-east-1');"
        ))
        .await
        .expect("legacy schema");
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20search_path%3D{schema}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_legacy_copies_the_original_database_once() {
    let a = "1".repeat(128);
    let b = "2".repeat(128);
    let from = legacy_database(&a, &b).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8");
    let first = tooltool(
        &["import-legacy", "--from", &from],
        &[("DATA_DIR", data), ("LOG_LEVEL", "error")],
    );
    assert!(first.status.success(), "{}", stderr(&first));
    let text = String::from_utf8(first.stdout.clone()).expect("utf-8");
    assert!(
        text.contains("2 batches imported (0 under new ids), 0 already present, 1 skipped"),
        "{text}"
    );
    assert!(text.contains("1 pending uploads not imported"), "{text}");
    assert!(
        stderr(&first).contains("3 batches, 3 files, 2 instances, 1 pending uploads"),
        "progress: {}",
        stderr(&first)
    );
    let again = tooltool(
        &["import-legacy", "--from", &from],
        &[("DATA_DIR", data), ("LOG_LEVEL", "error")],
    );
    let text = String::from_utf8(again.stdout).expect("utf-8");
    assert!(
        text.contains("0 batches imported (0 under new ids), 2 already present, 1 skipped"),
        "idempotent: {text}"
    );

    let mut server = Server::start(data, &[]);
    let url = server.url.clone();
    let batch: serde_json::Value = reqwest::get(format!("{url}/upload/1"))
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    let file: serde_json::Value = reqwest::get(format!("{url}/file/sha512/{a}"))
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    let lost: serde_json::Value = reqwest::get(format!("{url}/file/sha512/{b}"))
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    let third = reqwest::get(format!("{url}/upload/3"))
        .await
        .expect("get")
        .status();
    let broken = reqwest::get(format!("{url}/upload/2"))
        .await
        .expect("get")
        .status();
    server.kill();
    assert_eq!(batch["author"], "releng@mozilla.com");
    assert_eq!(batch["uploaded"], "2015-06-01T12:00:00.000000Z");
    assert_eq!(batch["files"]["clang.tar.xz"]["size"], 3_221_225_472u64);
    assert_eq!(batch["files"]["clang.tar.xz"]["visibility"], "internal");
    assert_eq!(
        file["instances"],
        serde_json::json!(["us-east-1", "us-west-2"])
    );
    assert_eq!(
        lost["has_instances"], false,
        "a file without instance stays without"
    );
    assert_eq!(third, 200);
    assert_eq!(
        broken, 404,
        "a batch with an invalid digest is skipped whole"
    );
}

/// Runs `tooltool migrate` against `url` and answers its one stderr line.
fn migrate_error(url: &str, wait: &str) -> (String, Duration) {
    let dir = tempfile::tempdir().expect("tempdir");
    let started = std::time::Instant::now();
    let out = tooltool(
        &["migrate"],
        &[
            ("DATA_DIR", dir.path().to_str().expect("utf-8")),
            ("DATABASE_URL", url),
            ("DATABASE_STARTUP_WAIT", wait),
        ],
    );
    assert!(!out.status.success(), "{url} must fail");
    (stderr(&out), started.elapsed())
}

fn one_line(err: &str) {
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
}

/// The test server's `user@host:port`, from TOOLTOOL_TEST_DATABASE_URL.
fn test_server() -> (String, String) {
    let url = std::env::var("TOOLTOOL_TEST_DATABASE_URL").expect(
        "TOOLTOOL_TEST_DATABASE_URL must name a PostgreSQL database (scripts/test makes one)",
    );
    let rest = url.split_once("://").expect("a URL").1;
    let (server, _db) = rest.rsplit_once('/').expect("a database in the URL");
    let (_user, host) = server.rsplit_once('@').expect("a user in the URL");
    (url.clone(), host.to_owned())
}

#[test]
fn postgres_refusals_say_why_at_once_and_name_the_variable() {
    let (_, host) = test_server();
    // A missing database and an unknown role are permanent: no retry
    // (the start-up wait is 30 s), PostgreSQL's own sentence, our advice.
    let (err, took) = migrate_error(
        &format!("postgres://postgres@{host}/tooltool_no_such_database"),
        "30s",
    );
    one_line(&err);
    assert!(err.starts_with("tooltool: DATABASE_URL: "), "{err}");
    assert!(
        err.contains(r#"database "tooltool_no_such_database" does not exist (SQLSTATE 3D000)"#),
        "{err}"
    );
    assert!(err.contains("CREATE DATABASE"), "advice: {err}");
    assert!(took < Duration::from_secs(5), "not retried: {took:?}");
    assert!(!err.contains("db error"), "no driver noise: {err}");

    let (err, took) = migrate_error(
        &format!("postgres://tooltool_no_such_role@{host}/postgres"),
        "30s",
    );
    one_line(&err);
    assert!(
        err.contains(r#"role "tooltool_no_such_role" does not exist (SQLSTATE 28000)"#),
        "{err}"
    );
    assert!(err.contains("CREATE ROLE"), "advice: {err}");
    assert!(took < Duration::from_secs(5), "not retried: {took:?}");

    // Nothing listens: retried for the start-up wait (saying so once),
    // then the reason.
    let (err, took) = migrate_error("postgres://postgres@127.0.0.1:9/nowhere", "1s");
    let lines: Vec<&str> = err.trim_end().lines().collect();
    assert_eq!(lines.len(), 2, "the wait, then the failure: {err}");
    assert!(lines[0].contains("waiting for PostgreSQL"), "{err}");
    let err = lines[1];
    assert!(
        err.contains("cannot reach PostgreSQL at postgres@127.0.0.1:9/nowhere"),
        "{err}"
    );
    assert!(err.contains("Connection refused"), "{err}");
    assert!(took >= Duration::from_millis(500), "retried: {took:?}");
}

/// A role that owns its database migrates without being a superuser
/// (pg_trgm is a trusted extension); a role that does not own it is told
/// what privilege it lacks, in one line.
#[tokio::test]
async fn postgres_migrations_need_only_a_database_owner() {
    let (admin, host) = test_server();
    let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let tag = std::process::id();
    let (role, owned, foreign) = (
        format!("tooltool_cli_{tag}"),
        format!("tooltool_cli_owned_{tag}"),
        format!("tooltool_cli_foreign_{tag}"),
    );
    for statement in [
        format!("CREATE ROLE {role} LOGIN"),
        format!("CREATE DATABASE {owned} OWNER {role}"),
        format!("CREATE DATABASE {foreign}"),
    ] {
        client.batch_execute(&statement).await.expect("set up");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8").to_owned();
    let url_owned = format!("postgres://{role}@{host}/{owned}");
    let url_foreign = format!("postgres://{role}@{host}/{foreign}");
    let (ok, err) = tokio::task::spawn_blocking(move || {
        let ok = tooltool(
            &["migrate"],
            &[("DATA_DIR", &data), ("DATABASE_URL", &url_owned)],
        );
        (ok, migrate_error(&url_foreign, "5s").0)
    })
    .await
    .expect("join");
    for statement in [
        format!("DROP DATABASE {owned} WITH (FORCE)"),
        format!("DROP DATABASE {foreign} WITH (FORCE)"),
        format!("DROP ROLE {role}"),
    ] {
        client.batch_execute(&statement).await.expect("clean up");
    }
    assert!(ok.status.success(), "the owner migrates: {}", stderr(&ok));
    one_line(&err);
    assert!(err.contains("the migrations failed on"), "{err}");
    assert!(err.contains("permission denied"), "{err}");
    assert!(err.contains("(SQLSTATE 42501)"), "{err}");
    assert!(err.contains("must own the database"), "advice: {err}");
}

#[tokio::test]
async fn s3_start_up_failures_name_the_bucket_the_cause_and_the_variable() {
    let endpoint = tooltool_s3::testing::start(&["tooltool-cli"]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8").to_owned();
    let run = move |endpoint: String, regions: String, secret: &'static str| {
        let data = data.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let out = tooltool(
                    &["serve"],
                    &[
                        ("DATA_DIR", &data),
                        ("LISTEN", "127.0.0.1:0"),
                        ("PUBLIC_URL", "http://127.0.0.1:1"),
                        ("S3_ENDPOINT", &endpoint),
                        ("S3_REGIONS", &regions),
                        ("S3_REGIONS_ACCESS_KEY_ID", tooltool_s3::testing::ACCESS_KEY),
                        ("S3_REGIONS_SECRET_ACCESS_KEY", secret),
                    ],
                );
                assert!(!out.status.success());
                let err = stderr(&out);
                assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
                err
            })
            .await
            .expect("join")
        }
    };
    let us = |bucket: &str| format!("us-east-1:{bucket}");
    let err = run(endpoint.clone(), us("tooltool-cli"), "not-the-secret").await;
    assert!(
        err.starts_with(
            "tooltool: S3_REGIONS_ACCESS_KEY_ID/S3_REGIONS_SECRET_ACCESS_KEY: region us-east-1: \
             S3 head bucket on bucket tooltool-cli: "
        ),
        "{err}"
    );
    assert!(err.contains("HTTP 403"), "{err}");
    let err = run(
        endpoint.clone(),
        us("tooltool-missing"),
        tooltool_s3::testing::SECRET_KEY,
    )
    .await;
    assert!(
        err.starts_with("tooltool: S3_REGIONS: region us-east-1: "),
        "{err}"
    );
    assert!(err.contains("the bucket does not exist"), "{err}");
    let err = run(
        "http://127.0.0.1:9".to_owned(),
        us("tooltool-cli"),
        tooltool_s3::testing::SECRET_KEY,
    )
    .await;
    assert!(
        err.starts_with("tooltool: S3_ENDPOINT: region us-east-1: "),
        "{err}"
    );
    assert!(err.contains("Connection refused"), "{err}");
    assert!(err.len() < 300, "short: {err}");
    // A region on an endpoint of its own is checked there, and named so.
    let err = run(
        endpoint.clone(),
        format!("{};eu:tooltool-cli@http://127.0.0.1:9", us("tooltool-cli")),
        tooltool_s3::testing::SECRET_KEY,
    )
    .await;
    assert!(
        err.starts_with(
            "tooltool: S3_REGIONS: region eu: S3 head bucket on bucket tooltool-cli: no answer from the store: "
        ),
        "{err}"
    );
    assert!(err.contains("Connection refused"), "{err}");
    assert!(err.contains("is the store running"), "{err}");
}

#[test]
fn argument_errors_name_the_variable_and_settings_follow_the_subcommand() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8");
    let out = tooltool(&["serve"], &[("UPLOAD_EXPIRES_IN", "soon")]);
    assert_eq!(
        stderr(&out).trim_end(),
        "tooltool: UPLOAD_EXPIRES_IN (--upload-expires-in): invalid value 'soon': invalid digit found in string"
    );
    let out = tooltool(&["serve"], &[("LOG_FORMAT", "xml")]);
    assert_eq!(
        stderr(&out).trim_end(),
        "tooltool: LOG_FORMAT (--log-format): invalid value 'xml' (allowed: text, json)"
    );
    // `--data-dir` after the subcommand: the token is signed with that
    // directory's key, so it is the one the server there verifies.
    let out = tooltool(
        &["token", "--data-dir", data, "--sub", "me", "--scope", "s"],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        dir.path().join("jwt-secret").exists(),
        "the key of --data-dir"
    );
}

#[test]
fn a_listen_address_in_use_stops_start_up_before_anything_is_created() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let out = tooltool(
        &["serve"],
        &[
            ("DATA_DIR", data.to_str().expect("utf-8")),
            ("LISTEN", &addr),
        ],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.starts_with(&format!("tooltool: LISTEN: cannot listen on {addr}: ")),
        "{err}"
    );
    assert!(!data.exists(), "nothing created or migrated: {err}");
}

#[tokio::test]
async fn start_up_says_what_runs_and_warns_of_regions_it_lacks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let data = data.to_str().expect("utf-8");
    let attic = format!("attic:{}/attic", dir.path().display());
    let mut server = Server::start(data, &[("LOCAL_REGIONS", &attic), ("LOG_FORMAT", "json")]);
    let logs = server.logs();
    let line: serde_json::Value = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["fields"]["message"] == "tooltool serving")
        .unwrap_or_else(|| panic!("no start-up line in:\n{logs}"));
    let fields = &line["fields"];
    assert_eq!(
        fields["metadata"],
        format!("SQLite {data}/tooltool.sqlite3").as_str()
    );
    assert_eq!(
        fields["storage"],
        format!("local directories attic={}/attic", dir.path().display()).as_str()
    );
    assert_eq!(
        fields["auth"],
        format!("Bearer JWT (HS256, {data}/jwt-secret), no Hawk, anonymous public downloads")
            .as_str()
    );
    assert_eq!(
        fields["jobs"],
        "verify every 1m, replicate every 1m, sweep every 1h"
    );

    // A file with its only copy in "attic"…
    let out = tooltool(
        &[
            "token",
            "--sub",
            "me",
            "--scope",
            "project:releng:services/tooltool/api/*",
        ],
        &[("DATA_DIR", data)],
    );
    let token = String::from_utf8(out.stdout).expect("utf-8");
    let client = reqwest::Client::new();
    let content = b"kept in the attic";
    let digest = {
        let mut h = tooltool_domain::ContentHasher::new();
        h.update(content);
        h.finish().digest.to_string()
    };
    let created: serde_json::Value = client
        .post(format!("{}/upload", server.url))
        .bearer_auth(token.trim())
        .json(&serde_json::json!({"message": "attic", "files": {"a.txt": {
            "size": content.len(), "digest": digest, "algorithm": "sha512", "visibility": "public"}}}))
        .send()
        .await
        .expect("upload")
        .json()
        .await
        .expect("json");
    let put_url = created["result"]["files"]["a.txt"]["put_url"]
        .as_str()
        .unwrap_or_else(|| panic!("a put_url in {created}"));
    let put = client
        .put(put_url)
        .header("Content-Type", "application/octet-stream")
        .body(content.to_vec())
        .send()
        .await
        .expect("put");
    assert_eq!(put.status(), 200);
    server.kill();

    // …then a configuration without "attic": said at start-up.
    let server = Server::start(data, &[("LOG_FORMAT", "json")]);
    server.wait_for("regions this configuration lacks");
    let logs = server.logs();
    let warning: serde_json::Value = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["level"] == "WARN")
        .unwrap_or_else(|| panic!("no warning in:\n{logs}"));
    assert_eq!(warning["fields"]["regions"], "attic (1 file)", "{warning}");
}

/// A database that already has a batch 1 of its own: the original's batch
/// 1 is not silently counted as "already present".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_legacy_refuses_an_id_taken_by_another_batch() {
    let from = legacy_database(&"3".repeat(128), &"4".repeat(128)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8");
    let server = Server::start(data, &[]);
    let token = tooltool(
        &[
            "token",
            "--sub",
            "ours",
            "--scope",
            "project:releng:services/tooltool/api/*",
        ],
        &[("DATA_DIR", data)],
    );
    let token = String::from_utf8(token.stdout).expect("utf-8");
    let created = reqwest::Client::new()
        .post(format!("{}/upload", server.url))
        .bearer_auth(token.trim())
        .json(
            &serde_json::json!({"message": "our own first batch", "files": {"ours.txt": {
            "size": 4, "digest": "5".repeat(128), "algorithm": "sha512", "visibility": "public"}}}),
        )
        .send()
        .await
        .expect("upload");
    assert_eq!(created.status(), 200);
    drop(server);
    let out = tooltool(
        &["import-legacy", "--from", &from],
        &[("DATA_DIR", data), ("LOG_LEVEL", "error")],
    );
    assert!(!out.status.success(), "refused");
    let err = stderr(&out);
    let last = err.trim_end().lines().last().unwrap_or_default();
    assert!(
        last.contains("import-legacy: batch 1 of the original (2 files by releng@mozilla.com) is not batch 1 of this database"),
        "{err}"
    );
    assert!(last.contains("run with --renumber"), "{err}");

    // With --renumber, the original's batch 1 gets an id above every one of
    // the original's (its batch 3 keeps its id); a rerun changes nothing.
    let renumber = ["import-legacy", "--from", &from, "--renumber"];
    let env = [("DATA_DIR", data), ("LOG_LEVEL", "error")];
    let out = tooltool(&renumber, &env);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout.clone()).expect("utf-8");
    assert!(
        text.contains("2 batches imported (1 under new ids), 0 already present, 1 skipped"),
        "{text}"
    );
    let err = stderr(&out);
    let new_id: i64 = err
        .lines()
        .find_map(|l| l.strip_prefix("batch 1 of the original is batch "))
        .and_then(|rest| rest.strip_suffix(" here"))
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("the new id is printed: {err}"));
    assert!(new_id > 3, "{new_id}");
    let again = tooltool(&renumber, &env);
    let text = String::from_utf8(again.stdout).expect("utf-8");
    assert!(
        text.contains("0 batches imported (0 under new ids), 2 already present, 1 skipped"),
        "idempotent: {text}"
    );

    let server = Server::start(data, &[]);
    let get = |id: i64| {
        let url = format!("{}/upload/{id}", server.url);
        async move {
            reqwest::get(url)
                .await
                .expect("get")
                .json::<serde_json::Value>()
                .await
                .expect("json")
        }
    };
    let mine = get(1).await;
    assert_eq!(mine["message"], "our own first batch", "{mine}");
    let renumbered = get(new_id).await;
    assert_eq!(renumbered["message"], "first", "{renumbered}");
    assert_eq!(renumbered["author"], "releng@mozilla.com");
    assert_eq!(
        renumbered["files"].as_object().map(serde_json::Map::len),
        Some(2)
    );
    let third = get(3).await;
    assert_eq!(third["message"], "third", "{third}");
}
