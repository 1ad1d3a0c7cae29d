//! The black-box harness: a real tooltool server in-process on a random
//! port, with a fresh data directory and a clock the test controls.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use clap::Parser;
use tooltool::config::Cli;
use tooltool::service::Service;
use tooltool_domain::ContentHasher;
use tooltool_ports::Clock;

pub mod client;

pub const PREFIX: &str = "project:releng:services/tooltool/api";

/// A clock that stands still until the test moves it.
#[derive(Debug)]
pub struct TestClock(Mutex<DateTime<Utc>>);

impl TestClock {
    pub fn advance(&self, by: Duration) {
        let mut t = self.0.lock().expect("clock");
        *t += by;
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().expect("clock")
    }
}

pub struct TestApp {
    /// Base URL with a trailing slash, as the Mozilla client's `--url`.
    pub url: String,
    pub dir: tempfile::TempDir,
    pub clock: Arc<TestClock>,
    /// The running service, to run background jobs deterministically.
    pub service: Service,
    /// A client that does not follow redirects.
    pub http: reqwest::Client,
    jwt_secret: Vec<u8>,
    args: Vec<String>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestApp {
    pub fn at(&self, path: &str) -> String {
        format!("{}{}", self.url, path.trim_start_matches('/'))
    }

    pub fn data_path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// A Bearer token for `sub` with the given scopes (relative to the prefix
    /// unless they start with `=`), valid for an hour of the test clock.
    pub fn token(&self, sub: &str, scopes: &[&str]) -> String {
        let scopes = scopes
            .iter()
            .map(|s| match s.strip_prefix('=') {
                Some(raw) => raw.to_owned(),
                None => format!("{PREFIX}/{s}"),
            })
            .collect();
        tooltool_jwt::JwtIssuer::hs256(&self.jwt_secret)
            .issue(&tooltool_jwt::Claims {
                sub: sub.into(),
                scopes,
                exp: (self.clock.now() + Duration::hours(1)).timestamp(),
                iat: None,
                nbf: None,
            })
            .expect("token")
    }

    /// Stops the server, waiting for in-flight requests.
    pub async fn stop(mut self) {
        self.shut_down().await;
    }

    async fn shut_down(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }

    /// `host:port` of this server, as clients address it.
    pub fn authority(&self) -> String {
        self.url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned()
    }

    /// Stops the server and starts a new one, as a restarted process: the
    /// same address, data directory and settings, nothing kept in memory.
    pub async fn restart(mut self) -> TestApp {
        let address = self.authority();
        self.shut_down().await;
        // std's listeners set SO_REUSEADDR, so the port binds again at once.
        let listener = std::net::TcpListener::bind(&address).expect("bind the same port");
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
        let args = std::mem::take(&mut self.args);
        // The old service (and its store's lock on the data) goes first.
        drop(self);
        start(dir, listener, args).await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// Starts a server with the default configuration.
pub async fn spawn_app() -> TestApp {
    spawn_with(&[]).await
}

/// Starts a server with extra command-line settings (`--name value`);
/// `{dir}` in a value is replaced by the data directory.
pub async fn spawn_with(args: &[&str]) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let args = args.iter().map(|a| (*a).to_owned()).collect();
    start(dir, listener, args).await
}

/// Starts a server on `listener` with its data in `dir`.
async fn start(
    dir: tempfile::TempDir,
    listener: std::net::TcpListener,
    args: Vec<String>,
) -> TestApp {
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let url = format!("http://127.0.0.1:{port}");
    let secret = "test-jwt-secret-0123456789abcdef";
    let data_dir = dir.path().to_str().expect("utf-8 path").to_owned();
    let mut argv: Vec<String> = [
        "tooltool",
        "--data-dir",
        &data_dir,
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--jwt-secret",
        secret,
        // Jobs are run explicitly by tests through `service`.
        "--verify-interval",
        "0",
        "--replicate-interval",
        "0",
        "--sweep-interval",
        "0",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    if !args.iter().any(|a| a == "--public-url") {
        argv.extend(["--public-url".to_owned(), url.clone()]);
    }
    argv.extend(args.iter().map(|a| a.replace("{dir}", &data_dir)));
    let cli = Cli::try_parse_from(argv).expect("valid test arguments");
    let config = cli.config.resolve().expect("valid test configuration");
    let clock = Arc::new(TestClock(Mutex::new(Utc::now())));
    let wired = tooltool::wire(config, clock.clone()).await.expect("wired");
    let service = wired.service.clone();
    let listeners = tooltool::server::Listeners {
        main: tokio::net::TcpListener::from_std(listener).expect("listener"),
        metrics: None,
        max_connections: wired.config.listen.max_connections.unwrap_or(512),
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(tooltool::serve(wired, listeners, async move {
        let _ = rx.await;
    }));
    TestApp {
        url: format!("{url}/"),
        dir,
        clock,
        service,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        jwt_secret: secret.as_bytes().to_vec(),
        args,
        shutdown: Some(tx),
        server: Some(server),
    }
}

pub fn sha512_hex(bytes: &[u8]) -> String {
    let mut h = ContentHasher::new();
    h.update(bytes);
    h.finish().digest.to_string()
}

/// A batch body as the Mozilla client builds it.
pub fn batch_body(message: &str, files: &[(&str, &[u8], &str)]) -> serde_json::Value {
    let files: serde_json::Map<String, serde_json::Value> = files
        .iter()
        .map(|(name, content, visibility)| {
            (
                (*name).to_owned(),
                serde_json::json!({
                    "size": content.len(),
                    "digest": sha512_hex(content),
                    "algorithm": "sha512",
                    "visibility": visibility,
                }),
            )
        })
        .collect();
    serde_json::json!({"message": message, "files": files})
}

/// Every file of `tree` below `dir` (relative paths), for leftover checks.
pub fn files_under(dir: &std::path::Path) -> Vec<String> {
    fn walk(base: &std::path::Path, dir: &std::path::Path, out: &mut Vec<String>) {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(base, &p, out);
                } else if let Ok(rel) = p.strip_prefix(base) {
                    out.push(rel.to_string_lossy().into_owned());
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

impl TestApp {
    /// `POST /upload` (optionally `?region=`), asserting 200; the whole answer.
    pub async fn create_batch(
        &self,
        token: &str,
        body: &serde_json::Value,
        region: Option<&str>,
    ) -> serde_json::Value {
        let path = match region {
            Some(r) => format!("upload?region={r}"),
            None => "upload".to_owned(),
        };
        let resp = self
            .http
            .post(self.at(&path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("post");
        assert_eq!(resp.status(), 200, "POST /upload");
        resp.json().await.expect("json")
    }

    /// Declares one file and PUTs its bytes unless the server has them,
    /// asserting 200; its digest.
    pub async fn upload(
        &self,
        token: &str,
        name: &str,
        content: &[u8],
        visibility: &str,
    ) -> String {
        let batch = self
            .create_batch(
                token,
                &batch_body(name, &[(name, content, visibility)]),
                None,
            )
            .await;
        if batch["result"]["files"][name]["has_instances"] != true {
            let status = put(&put_url(&batch, name), content).await.status();
            assert_eq!(status, 200, "PUT {name}");
        }
        sha512_hex(content)
    }

    /// An anonymous GET of `path`, redirects not followed.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.at(path)).send().await.expect("get")
    }

    /// The `Location` of a download (anonymous), asserting 302.
    pub async fn location(&self, path: &str) -> String {
        let resp = self.get(path).await;
        assert_eq!(resp.status(), 302, "GET {path}");
        resp.headers()["location"]
            .to_str()
            .expect("ascii")
            .to_owned()
    }
}

/// The `put_url` of `name` in a `POST /upload` answer.
pub fn put_url(batch: &serde_json::Value, name: &str) -> String {
    batch["result"]["files"][name]["put_url"]
        .as_str()
        .unwrap_or_else(|| panic!("no put_url for {name} in {batch}"))
        .to_owned()
}

/// A PUT exactly as the Mozilla client sends it: no credentials.
pub async fn put(url: &str, content: &[u8]) -> reqwest::Response {
    reqwest::Client::new()
        .put(url)
        .header("Content-Type", "application/octet-stream")
        .header("Accept-Encoding", "identity")
        .body(content.to_vec())
        .send()
        .await
        .expect("put")
}

/// A Hawk client signing exactly as the Mozilla client does.
#[derive(Debug, Clone)]
pub struct HawkCredentials {
    pub client_id: String,
    pub access_token: String,
}

impl TestApp {
    /// `Authorization` for `method` on `path` (with its query) of this
    /// server, signed with `credentials` at the test clock's time; a body is
    /// signed as `application/json`, as the client does for POST and PATCH.
    pub fn hawk(
        &self,
        credentials: &HawkCredentials,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> String {
        static NONCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let nonce = format!(
            "n{}",
            NONCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let authority = self.authority();
        let (host, port) = authority.rsplit_once(':').expect("host:port");
        tooltool_taskcluster::sign(
            &credentials.client_id,
            &credentials.access_token,
            self.clock.now().timestamp(),
            &nonce,
            &tooltool_taskcluster::SignedRequest {
                method,
                resource: &format!("/{}", path.trim_start_matches('/')),
                host,
                port: port.parse().expect("port"),
                payload: body.map(|b| ("application/json", b)),
            },
        )
    }
}

/// A URL of the throwaway test database (`TOOLTOOL_TEST_DATABASE_URL`,
/// which scripts/test creates) on a fresh schema, so each test starts
/// empty. Fails loudly without a database: such tests must not pass
/// silently.
pub async fn fresh_database_url() -> String {
    tooltool_postgres::testing::fresh_schema().await.0
}

/// A server on Garage: `regions` as S3_REGIONS (entries may name their
/// endpoint), `endpoint` as S3_ENDPOINT, signed for Garage's one region
/// with the key every test node imports, and `extra` settings.
pub async fn spawn_on_garage(regions: &str, endpoint: Option<&str>, extra: &[&str]) -> TestApp {
    use tooltool_s3::garage::{ACCESS_KEY, SECRET_KEY, SIGNING_REGION};
    let mut args = vec![
        "--s3-regions",
        regions,
        "--s3-signing-region",
        SIGNING_REGION,
        "--s3-access-key-id",
        ACCESS_KEY,
        "--s3-secret-access-key",
        SECRET_KEY,
    ];
    if let Some(endpoint) = endpoint {
        args.extend_from_slice(&["--s3-endpoint", endpoint]);
    }
    args.extend_from_slice(extra);
    spawn_with(&args).await
}

/// A server on a fresh Garage node with two tooltool regions, `us-east-1`
/// on bucket `tooltool-east` and `us-west-2` on `tooltool-west`, with
/// `extra` settings. The node is returned: it lives as long as it.
pub async fn garage_app(extra: &[&str]) -> (TestApp, tooltool_s3::garage::Garage) {
    use tooltool_s3::garage::Garage;
    let node = tokio::task::spawn_blocking(|| Garage::start(&["tooltool-east", "tooltool-west"]))
        .await
        .expect("garage");
    let regions = "us-east-1:tooltool-east;us-west-2:tooltool-west";
    let app = spawn_on_garage(regions, Some(&node.endpoint), extra).await;
    (app, node)
}

/// A server with its two regions on two Garage nodes of their own (two
/// sites, one cluster each, the same key imported into both): `us-east-1`
/// on bucket `tooltool-east` of the first, `us-west-2` on `tooltool-west`
/// of the second, each named with its endpoint in S3_REGIONS. Buckets of
/// different endpoints cannot copy from each other, so replication streams
/// through the server. The nodes are returned: they live as long as them.
pub async fn garage_sites_app(extra: &[&str]) -> (TestApp, [tooltool_s3::garage::Garage; 2]) {
    use tooltool_s3::garage::Garage;
    let east = tokio::task::spawn_blocking(|| Garage::start(&["tooltool-east"]));
    let west = tokio::task::spawn_blocking(|| Garage::start(&["tooltool-west"]));
    let (east, west) = (east.await.expect("garage"), west.await.expect("garage"));
    let regions = format!(
        "us-east-1:tooltool-east@{};us-west-2:tooltool-west@{}",
        east.endpoint, west.endpoint
    );
    let app = spawn_on_garage(&regions, None, extra).await;
    (app, [east, west])
}
