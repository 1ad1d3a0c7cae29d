//! The tooltool binary's library: configuration, wiring of adapters into
//! ports, the use cases, the background jobs and the server loop. `main.rs`
//! only parses the command line and dispatches here, so tests can start a
//! real server in-process on a random port.

pub mod config;
pub mod jobs;
pub mod service;
pub mod telemetry;

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem::listener::{Acceptor, Listener, TcpListener};
use tooltool_fs::FsStore;
use tooltool_jwt::{JwtAuthenticator, JwtIssuer};
use tooltool_ports::{Authenticator, BlobStore, Clock, MetadataStore};
use tooltool_sqlite::SqliteStore;
use tooltool_taskcluster::{LocalVerifier, TaskclusterVerifier};

use crate::config::{Database, HawkVerifier, JwtKey, Resolved, Storage};
use crate::service::{Service, Settings};

/// The host's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Everything a running server is made of.
pub struct Wired {
    pub service: Service,
    pub authenticators: Vec<Arc<dyn Authenticator>>,
    pub config: Resolved,
}

/// Reads a secret file from DATA_DIR, creating it (random, owner-only) on
/// first use, so that the embedded default needs no configuration.
fn generated_secret(dir: &Path, name: &str) -> Result<Vec<u8>, String> {
    let path = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(text) if text.trim().len() >= 32 => return Ok(text.trim().as_bytes().to_vec()),
        Ok(_) => {
            return Err(format!(
                "{} is too short to be a secret; delete it to have a new one made",
                path.display()
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    }
    let secret = format!(
        "{:032x}{:032x}",
        rand::random::<u128>(),
        rand::random::<u128>()
    );
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        f.write_all(secret.as_bytes())
    };
    match write() {
        Ok(()) => Ok(secret.into_bytes()),
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => generated_secret(dir, name),
        Err(e) => Err(format!("cannot create {}: {e}", path.display())),
    }
}

fn ensure_data_dir(config: &Resolved) -> Result<(), String> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| format!("DATA_DIR: cannot create {}: {e}", config.data_dir.display()))
}

/// The secret Bearer tokens are signed with (HS256), if any.
pub fn jwt_secret(config: &Resolved) -> Result<Option<Vec<u8>>, String> {
    match &config.jwt {
        JwtKey::Secret(s) => Ok(Some(s.0.as_bytes().to_vec())),
        JwtKey::PublicKeyFile(_) => Ok(None),
        JwtKey::GeneratedSecret => {
            ensure_data_dir(config)?;
            generated_secret(&config.data_dir, "jwt-secret").map(Some)
        }
    }
}

/// An issuer for `tooltool token`: the configured HS256 secret, or the
/// RS256 private key given on the command line.
pub fn jwt_issuer(config: &Resolved, private_key: Option<&Path>) -> Result<JwtIssuer, String> {
    if let Some(path) = private_key {
        let pem = std::fs::read(path)
            .map_err(|e| format!("JWT_PRIVATE_KEY: cannot read {}: {e}", path.display()))?;
        return JwtIssuer::rs256(&pem).map_err(|e| format!("JWT_PRIVATE_KEY: {e}"));
    }
    match jwt_secret(config)? {
        Some(secret) => Ok(JwtIssuer::hs256(&secret)),
        None => Err("JWT_PUBLIC_KEY is set, so tokens must be signed with the matching private key: pass --private-key (or JWT_PRIVATE_KEY)".into()),
    }
}

/// Opens the metadata store (applying migrations): PostgreSQL when
/// DATABASE_URL is set, else the embedded SQLite file in DATA_DIR.
pub async fn open_store(config: &Resolved) -> Result<Arc<dyn MetadataStore>, String> {
    match &config.database {
        Database::Postgres {
            url,
            pool_size,
            startup_wait,
        } => {
            let options = tooltool_postgres::PgOptions {
                pool_size: *pool_size,
                ..tooltool_postgres::PgOptions::default()
            };
            let store = tooltool_postgres::PgStore::connect(&url.0, &options, *startup_wait)
                .await
                .map_err(|e| format!("DATABASE_URL: {e}"))?;
            Ok(Arc::new(store))
        }
        Database::Sqlite => {
            ensure_data_dir(config)?;
            let path = config.data_dir.join("tooltool.sqlite3");
            let store = SqliteStore::open(&path).map_err(|e| format!("DATA_DIR: {e}"))?;
            Ok(Arc::new(store))
        }
    }
}

/// Builds the application from resolved configuration. Key material and
/// storage are checked before the database is touched, so that a bad
/// setting stops start-up with its one line and no side effect.
pub async fn wire(config: Resolved, clock: Arc<dyn Clock>) -> Result<Wired, String> {
    ensure_data_dir(&config)?;
    let jwt: Arc<dyn Authenticator> = match (&config.jwt, jwt_secret(&config)?) {
        (JwtKey::PublicKeyFile(path), _) => {
            let pem = std::fs::read(path)
                .map_err(|e| format!("JWT_PUBLIC_KEY: cannot read {}: {e}", path.display()))?;
            Arc::new(
                JwtAuthenticator::rs256(&pem, Arc::clone(&clock))
                    .map_err(|e| format!("JWT_PUBLIC_KEY: {e}"))?,
            )
        }
        (_, Some(secret)) => Arc::new(JwtAuthenticator::hs256(&secret, Arc::clone(&clock))),
        (_, None) => return Err("JWT_SECRET: no key to verify tokens with".into()),
    };
    let mut authenticators = vec![jwt];
    match &config.hawk {
        HawkVerifier::None => {}
        HawkVerifier::Local(path) => authenticators.push(Arc::new(
            LocalVerifier::from_file(path, Arc::clone(&clock))
                .map_err(|e| format!("HAWK_CLIENTS_FILE: {e}"))?,
        )),
        HawkVerifier::Taskcluster { root_url, timeout } => authenticators.push(Arc::new(
            TaskclusterVerifier::new(root_url, *timeout)
                .map_err(|e| format!("TASKCLUSTER_ROOT_URL: {e}"))?,
        )),
    }
    let url_secret = match &config.url_signing_secret {
        Some(s) => s.0.as_bytes().to_vec(),
        None => generated_secret(&config.data_dir, "url-secret")?,
    };
    let regions: Vec<Arc<dyn BlobStore>> = match &config.storage {
        Storage::Local(regions) => regions
            .iter()
            .map(|(name, path)| {
                FsStore::new(name.clone(), path, &config.public_url, &url_secret)
                    .map(|s| Arc::new(s) as Arc<dyn BlobStore>)
                    .map_err(|e| format!("LOCAL_REGIONS: region {name}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?,
        Storage::S3 {
            regions,
            endpoint,
            access_key,
            secret_key,
        } => {
            let mut stores: Vec<Arc<dyn BlobStore>> = Vec::new();
            let account =
                tooltool_s3::Account::new(endpoint.as_deref(), &access_key.0, &secret_key.0);
            for (name, bucket) in regions {
                let store = tooltool_s3::S3Store::new(name.clone(), bucket.clone(), &account);
                // Start-up says which bucket does not answer.
                store
                    .check()
                    .await
                    .map_err(|e| format!("S3_REGIONS: bucket {bucket} of region {name}: {e}"))?;
                stores.push(Arc::new(store));
            }
            stores
        }
    };
    let store = open_store(&config).await?;
    let mut settings = Settings::new(config.permissions.clone());
    settings.upload_expires = config.upload_expires;
    settings.download_expires = config.download_expires;
    settings.max_file_size = config.max_file_size;
    settings.verify_concurrency = config.verify_concurrency;
    let metrics: Arc<dyn tooltool_ports::Metrics> =
        Arc::new(tooltool_prometheus::Prometheus::new());
    let service = Service::new(store, regions, clock, metrics, settings);
    Ok(Wired {
        service,
        authenticators,
        config,
    })
}

/// The HTTP application of a wired service.
pub fn http_app(wired: &Wired) -> impl poem::Endpoint + 'static {
    tooltool_http::app(
        Arc::new(wired.service.clone()),
        wired.authenticators.clone(),
        tooltool_http::HttpConfig {
            public_url: wired.config.public_url.clone(),
            max_json_body: wired.config.max_request_body,
            trust_proxy_headers: wired.config.trust_proxy_headers,
            version: version_info(),
            cors_origins: wired.config.cors_origins.clone(),
            metrics: Some(Arc::clone(wired.service.metrics())),
            serve_metrics: wired.config.metrics_listen.is_none(),
        },
    )
}

/// Copies an original tooltool database into the configured store, batch
/// by batch (each in one transaction), printing progress on stderr.
/// Idempotent: batches already present are skipped.
///
/// # Errors
/// When either database fails; what was imported until then stays.
pub async fn import_legacy(config: &Resolved, from: &str) -> Result<String, String> {
    const PAGE: i64 = 500;
    let reader = tooltool_postgres::legacy::LegacyReader::connect(from).await?;
    let counts = reader.counts().await?;
    let store = open_store(config).await?;
    eprintln!(
        "original database: {} batches, {} files, {} instances, {} pending uploads",
        counts.batches, counts.files, counts.instances, counts.pending_uploads
    );
    let (mut imported, mut present, mut skipped) = (0u64, 0u64, 0u64);
    let mut after = i64::MIN;
    loop {
        let page = reader.batches_after(after, PAGE).await?;
        let Some(last) = page.last_id else { break };
        after = last;
        for why in page.skipped {
            eprintln!("skipped {why}");
            skipped += 1;
        }
        for batch in page.batches {
            if store.import_batch(batch).await.map_err(|e| e.to_string())? {
                imported += 1;
            } else {
                present += 1;
            }
        }
        eprintln!(
            "… {}/{} batches",
            imported + present + skipped,
            counts.batches
        );
    }
    Ok(format!(
        "import-legacy: {imported} batches imported, {present} already present, {} skipped; \
         {} pending uploads not imported (their files come without a copy: upload them again)",
        skipped, counts.pending_uploads
    ))
}

/// What `/__version__` answers: filled at build time by `build.rs`.
pub fn version_info() -> tooltool_http::VersionInfo {
    tooltool_http::VersionInfo {
        source: env!("TOOLTOOL_SOURCE").to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        commit: env!("TOOLTOOL_COMMIT").to_owned(),
        build: env!("TOOLTOOL_BUILD").to_owned(),
    }
}

/// Serves until `shutdown` resolves, with the background jobs running (and
/// `/metrics` on its own listener when `METRICS_LISTEN` is set). In-flight
/// requests get 30 s to finish (Heroku's grace period).
pub async fn serve<A: Acceptor + 'static>(
    wired: Wired,
    acceptor: A,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stop = tokio_util::sync::CancellationToken::new();
    let metrics_server = match wired.config.metrics_listen {
        Some(addr) => {
            let acceptor = TcpListener::bind(addr).into_acceptor().await.map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("METRICS_LISTEN: cannot listen on {addr}: {e}"),
                )
            })?;
            let app = tooltool_http::metrics_app(Arc::new(wired.service.clone()));
            let stop = stop.clone();
            Some(tokio::spawn(
                poem::Server::new_with_acceptor(acceptor).run_with_graceful_shutdown(
                    app,
                    async move { stop.cancelled().await },
                    Some(std::time::Duration::from_secs(5)),
                ),
            ))
        }
        None => None,
    };
    let jobs = jobs::spawn(&wired.service, &wired.config);
    let app = http_app(&wired);
    let stop_main = stop.clone();
    tokio::spawn(async move {
        shutdown.await;
        stop_main.cancel();
    });
    let stop_rest = stop.clone();
    let result = poem::Server::new_with_acceptor(acceptor)
        // Idle keep-alive connections are closed after this long (poem 3.1
        // exposes no separate timeout for reading request headers).
        .idle_timeout(std::time::Duration::from_secs(75))
        .run_with_graceful_shutdown(
            app,
            async move { stop.cancelled().await },
            Some(std::time::Duration::from_secs(30)),
        )
        .await;
    // Also when the main server stopped on its own (an accept error).
    stop_rest.cancel();
    jobs.stop().await;
    if let Some(server) = metrics_server {
        let _ = server.await;
    }
    result
}

/// Binds the configured address.
pub async fn bind(config: &Resolved) -> std::io::Result<impl Acceptor + 'static> {
    TcpListener::bind(config.listen).into_acceptor().await
}

#[cfg(test)]
mod service_tests;
