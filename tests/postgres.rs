//! The server on PostgreSQL: the client's sequence end to end, and two
//! server processes sharing one database without doing the same work twice.

use serde_json::json;
use tooltool_tests::{batch_body, fresh_database_url, put, put_url, sha512_hex, spawn_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_sequence_works_on_postgres() {
    let db = fresh_database_url().await;
    let app = spawn_with(&["--database-url", &db]).await;
    let token = app.token("pg-user", &["*"]);
    let content: &[u8] = b"stored with postgres metadata";
    let batch = app
        .create_batch(
            &token,
            &batch_body("pg", &[("pg.bin", content, "internal")]),
            Some("local"),
        )
        .await;
    assert_eq!(batch["result"]["author"], "pg-user");
    assert_eq!(put(&put_url(&batch, "pg.bin"), content).await.status(), 200);
    let d = sha512_hex(content);
    assert_eq!(
        app.get(&format!("upload/complete/sha512/{d}"))
            .await
            .status(),
        202
    );
    assert_eq!(
        app.get(&format!("sha512/{d}")).await.status(),
        403,
        "internal"
    );
    let resp = app
        .http
        .get(app.at(&format!("sha512/{d}")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 302);
    let found: serde_json::Value = app.get("file?q=pg.b").await.json().await.expect("json");
    assert_eq!(found["result"][0]["digest"], d.as_str());
    let found: serde_json::Value = app.get("upload?q=p%25").await.json().await.expect("json");
    assert_eq!(found["result"], json!([]), "% is literal");
    let resp = app
        .http
        .patch(app.at(&format!("file/sha512/{d}")))
        .bearer_auth(&token)
        .json(&json!([{"op": "delete_instances"}]))
        .send()
        .await
        .expect("patch");
    assert_eq!(resp.status(), 200);
    let hb: serde_json::Value = app.get("__heartbeat__").await.json().await.expect("json");
    assert_eq!(hb["checks"]["database"], "ok");
    let metrics = app.get("metrics").await.text().await.expect("text");
    assert!(
        metrics.contains("tooltool_db_connections_in_use"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_database_verify_each_upload_once() {
    let db = fresh_database_url().await;
    let shared = tempfile::tempdir().expect("tempdir");
    let regions = format!("local:{}", shared.path().display());
    let a = spawn_with(&["--database-url", &db, "--local-regions", &regions]).await;
    let b = spawn_with(&["--database-url", &db, "--local-regions", &regions]).await;
    let token = a.token("u", &["upload/*"]);
    // Forty slots whose bytes arrived in storage behind the servers' backs
    // (as with S3): only the verification jobs can settle them.
    let files: Vec<(String, Vec<u8>)> = (0..40)
        .map(|i| (format!("f{i}"), format!("content {i}").into_bytes()))
        .collect();
    let declared: Vec<(&str, &[u8], &str)> = files
        .iter()
        .map(|(n, c)| (n.as_str(), c.as_slice(), "public"))
        .collect();
    let batch = a
        .create_batch(&token, &batch_body("many", &declared), None)
        .await;
    for (name, content) in &files {
        let url = put_url(&batch, name);
        let key = url
            .split("/blob/local/")
            .nth(1)
            .expect("key")
            .split('?')
            .next()
            .expect("key")
            .to_owned();
        let path = shared.path().join(&key);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, content).expect("write");
    }
    let (ra, rb) = tokio::join!(
        tooltool::jobs::Job::Verify.run_once(&a.service),
        tooltool::jobs::Job::Verify.run_once(&b.service)
    );
    let (ra, rb) = (ra.expect("a"), rb.expect("b"));
    assert_eq!(
        ra.done + rb.done,
        40,
        "every upload verified exactly once: {ra} / {rb}"
    );
    assert_eq!(ra.failed + rb.failed, 0);
    for (_, content) in &files {
        let d = sha512_hex(content);
        assert_eq!(b.get(&format!("sha512/{d}")).await.status(), 302);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_connections_are_replaced_without_a_restart() {
    let db = format!(
        "{}&application_name=tooltool-kill-test",
        fresh_database_url().await
    );
    let app = spawn_with(&["--database-url", &db]).await;
    let d = sha512_hex(b"absent");
    for _ in 0..4 {
        assert_eq!(app.get(&format!("file/sha512/{d}")).await.status(), 404);
    }
    assert!(
        tooltool_postgres::testing::terminate_sessions("tooltool-kill-test").await >= 1,
        "the pool had sessions"
    );
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(app.get(&format!("file/sha512/{d}")).await.status().as_u16());
    }
    // A request caught on a dying connection may get a 503, never a 500;
    // the pool then replaces the connections.
    assert!(
        statuses.iter().all(|s| *s == 404 || *s == 503),
        "{statuses:?}"
    );
    assert_eq!(statuses[3..], [404, 404, 404], "{statuses:?}");
}

/// A TCP proxy to the test database that can be cut and restored, to
/// take the database away from a running server.
struct Proxy {
    port: u16,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(port: u16) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    accepted = listener.accept() => {
                        let Ok((mut inbound, _)) = accepted else { break };
                        conns.spawn(async move {
                            if let Ok(mut outbound) =
                                tokio::net::TcpStream::connect("127.0.0.1:5432").await
                            {
                                let _ =
                                    tokio::io::copy_bidirectional(&mut inbound, &mut outbound)
                                        .await;
                            }
                        });
                    }
                }
            }
            // Every forwarded connection is closed before `cut` returns.
            conns.abort_all();
            while conns.join_next().await.is_some() {}
        });
        Self { port, stop, task }
    }

    /// Closes the listener and every forwarded connection, and returns
    /// once they are closed.
    async fn cut(self) -> u16 {
        let _ = self.stop.send(());
        let _ = self.task.await;
        self.port
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_503_and_service_resumes() {
    let direct = fresh_database_url().await;
    let proxy = Proxy::start(0).await;
    let via_proxy = direct.replacen("127.0.0.1:5432", &format!("127.0.0.1:{}", proxy.port), 1);
    assert_ne!(
        via_proxy, direct,
        "the test database is expected on 127.0.0.1:5432"
    );
    // Two connections at most: recovering costs at most that many failed
    // requests on connections the outage broke.
    let app = spawn_with(&["--database-url", &via_proxy, "--database-pool-size", "2"]).await;
    let d = sha512_hex(b"outage");
    assert_eq!(app.get(&format!("file/sha512/{d}")).await.status(), 404);

    let port = proxy.cut().await;
    let started = std::time::Instant::now();
    let resp = app.get(&format!("file/sha512/{d}")).await;
    assert_eq!(resp.status(), 503);
    let body: serde_json::Value = resp.json().await.expect("error shape");
    assert_eq!(
        body["detail"],
        "A service this server depends on is unavailable; retry in a moment."
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "no hang"
    );
    assert_eq!(app.get("__heartbeat__").await.status(), 503);
    // Requests that need no database still work.
    assert_eq!(app.get("__lbheartbeat__").await.status(), 200);

    let _proxy = Proxy::start(port).await;
    // A request may still meet a connection the outage broke (and drop
    // it): with two in the pool, the third attempt at the latest succeeds.
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let status = app.get(&format!("file/sha512/{d}")).await.status();
        statuses.push(status.as_u16());
        if status == 404 {
            break;
        }
    }
    assert_eq!(
        statuses.last(),
        Some(&404),
        "service resumes when the database returns: {statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 404 || *s == 503),
        "{statuses:?}"
    );
}
