//! Wiring: resolved configuration → adapters behind ports → the service.
//! The only place that names concrete adapters; every choice between them
//! (SQLite or PostgreSQL, directories or S3, which Hawk verifier) is made
//! here, once, at start-up.

use std::sync::Arc;

use tooltool_domain::{RegionName, UrlSigner};
use tooltool_fs::FsStore;
use tooltool_jwt::JwtAuthenticator;
use tooltool_ports::{Authenticator, BlobStore, Chain, Clock, MetadataStore, SignInAuthority};
use tooltool_sqlite::SqliteStore;
use tooltool_taskcluster::{
    LocalVerifier, OAuthClient, OnceOnly, TaskclusterLogin, TaskclusterVerifier,
};

use crate::config::{Database, HawkVerifier, JwtKey, Regions, Resolved};
use crate::secrets::{ensure_data_dir, generated_secret, jwt_secret, session_secret};
use crate::service::{Service, Settings};

/// Everything a running server is made of.
pub struct Wired {
    pub service: Service,
    pub config: Resolved,
    /// Signs the web interface's session cookies.
    pub session_key: Vec<u8>,
}

/// `variable: error: cause: …`, the one line a start-up failure prints.
fn failed(variable: &str, e: &(dyn std::error::Error + 'static)) -> String {
    format!("{variable}: {}", Chain(e))
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
                .map_err(|e| failed("DATABASE_URL", &e))?;
            Ok(Arc::new(store))
        }
        Database::Sqlite => {
            ensure_data_dir(config)?;
            let path = config.data_dir.join("tooltool.sqlite3");
            let store = SqliteStore::open(&path).map_err(|e| failed("DATA_DIR", &e))?;
            Ok(Arc::new(store))
        }
    }
}

/// The verifiers of the configured schemes: Bearer always, Hawk when a
/// verifier is configured (wrapped in [`OnceOnly`] once the store that
/// spends its nonces is open).
struct Verifiers {
    bearer: Arc<dyn Authenticator>,
    hawk: Option<Arc<dyn Authenticator>>,
}

impl Verifiers {
    fn build(config: &Resolved, clock: &Arc<dyn Clock>) -> Result<Self, String> {
        let bearer: Arc<dyn Authenticator> = match (&config.auth.jwt, jwt_secret(config)?) {
            (JwtKey::PublicKeyFile(path), _) => {
                let pem = std::fs::read(path)
                    .map_err(|e| format!("JWT_PUBLIC_KEY: cannot read {}: {e}", path.display()))?;
                Arc::new(
                    JwtAuthenticator::rs256(&pem, Arc::clone(clock))
                        .map_err(|e| format!("JWT_PUBLIC_KEY: {e}"))?,
                )
            }
            (_, Some(secret)) => Arc::new(JwtAuthenticator::hs256(&secret, Arc::clone(clock))),
            (_, None) => return Err("JWT_SECRET: no key to verify tokens with".into()),
        };
        let hawk: Option<Arc<dyn Authenticator>> = match &config.auth.hawk {
            HawkVerifier::None => None,
            HawkVerifier::Local(path) => Some(Arc::new(
                LocalVerifier::from_file(path, Arc::clone(clock))
                    .map_err(|e| failed("HAWK_CLIENTS_FILE", &e))?,
            )),
            HawkVerifier::Taskcluster { root_url, timeout } => Some(Arc::new(
                TaskclusterVerifier::new(root_url, *timeout)
                    .map_err(|e| format!("TASKCLUSTER_ROOT_URL: {e}"))?,
            )),
        };
        Ok(Self { bearer, hawk })
    }

    /// The authenticators the service tries, Hawk's nonces spent in `store`.
    fn with_store(
        self,
        store: &Arc<dyn MetadataStore>,
        clock: &Arc<dyn Clock>,
    ) -> Vec<Arc<dyn Authenticator>> {
        let mut all = vec![self.bearer];
        if let Some(hawk) = self.hawk {
            all.push(Arc::new(OnceOnly::new(
                hawk,
                Arc::clone(store),
                Arc::clone(clock),
            )));
        }
        all
    }
}

/// The store of every configured region, in configuration order; S3
/// buckets are checked, so start-up names the one that does not answer.
async fn regions(config: &Resolved) -> Result<Vec<Arc<dyn BlobStore>>, String> {
    // Every store signs the URLs of the transfers it receives or serves
    // through this server with this secret.
    let secret = match &config.storage.url_signing_secret {
        Some(s) => s.0.as_bytes().to_vec(),
        None => generated_secret(&config.data_dir, "url-secret")?,
    };
    let signer = |name: &RegionName| UrlSigner::new(name, &config.listen.public_url, &secret);
    match &config.storage.regions {
        Regions::Local(regions) => regions
            .iter()
            .map(|(name, path)| {
                FsStore::new(name.clone(), path, signer(name))
                    .map(|s| Arc::new(s) as Arc<dyn BlobStore>)
                    .map_err(|e| failed(&format!("LOCAL_REGIONS: region {name}"), &e))
            })
            .collect(),
        Regions::S3 {
            regions,
            signing_region,
            single_put_limit,
            read_streams,
            access_key,
            secret_key,
        } => {
            let mut stores: Vec<Arc<dyn BlobStore>> = Vec::new();
            for b in regions {
                // One account per endpoint: buckets of one endpoint copy
                // from each other server-side, others are streamed. The
                // signing region is an S3-compatible store's; AWS buckets
                // are signed for their own region.
                let account =
                    tooltool_s3::Account::new(b.endpoint.as_deref(), &access_key.0, &secret_key.0)
                        .with_signing_region(
                            signing_region.as_deref().filter(|_| b.endpoint.is_some()),
                        );
                let account = match read_streams {
                    Some(n) => account.with_read_streams(*n),
                    None => account,
                };
                let store = tooltool_s3::S3Store::new(
                    b.region.clone(),
                    &b.bucket,
                    &account,
                    signer(&b.region),
                )
                .with_single_put_limit(*single_put_limit);
                store.check().await.map_err(|e| s3_start_failure(b, &e))?;
                stores.push(Arc::new(store));
            }
            Ok(stores)
        }
    }
}

/// The CloudFront distribution of `CLOUDFRONT_*`, its key read from the
/// file named (or given inline as PEM text).
fn distribution(
    settings: &crate::config::CloudFront,
) -> Result<Arc<tooltool_cloudfront::Distribution>, String> {
    let value = settings.private_key.0.trim();
    let pem = if value.starts_with("-----BEGIN") {
        value.as_bytes().to_vec()
    } else {
        std::fs::read(value)
            .map_err(|e| format!("CLOUDFRONT_PRIVATE_KEY: cannot read {value}: {e}"))?
    };
    let keys = tooltool_cloudfront::KeyPair::from_pem(&settings.key_id, &pem)
        .map_err(|e| format!("CLOUDFRONT_PRIVATE_KEY: {e}"))?;
    Ok(Arc::new(tooltool_cloudfront::Distribution::new(
        &settings.host,
        keys,
    )))
}

/// Every region's downloads signed for CloudFront when it is configured.
fn with_cdn(
    config: &Resolved,
    regions: Vec<Arc<dyn BlobStore>>,
) -> Result<Vec<Arc<dyn BlobStore>>, String> {
    let Some(settings) = &config.storage.cloudfront else {
        return Ok(regions);
    };
    let distribution = distribution(settings)?;
    Ok(regions
        .into_iter()
        .map(|store| {
            Arc::new(tooltool_cloudfront::CloudFront::new(
                store,
                Arc::clone(&distribution),
            )) as Arc<dyn BlobStore>
        })
        .collect())
}

/// A bucket that failed its start-up check, as one line naming the
/// setting to look at.
fn s3_start_failure(b: &crate::config::S3Bucket, e: &tooltool_s3::S3Failure) -> String {
    use tooltool_s3::S3FailureKind;
    let (variable, advice) = match e.kind {
        S3FailureKind::Denied => (
            "S3_REGIONS_ACCESS_KEY_ID/S3_REGIONS_SECRET_ACCESS_KEY",
            "the store refused the key pair, or it may not read this bucket",
        ),
        S3FailureKind::NoSuchBucket => ("S3_REGIONS", "create the bucket, or fix its name"),
        S3FailureKind::Unreachable if b.endpoint.is_some() => {
            (b.endpoint_variable, "is the store running at that address?")
        }
        S3FailureKind::Unreachable => ("S3_REGIONS", "AWS did not answer: check the network"),
        S3FailureKind::Other => ("S3_REGIONS", "the bucket's check failed"),
    };
    format!("{variable}: region {}: {e} ({advice})", b.region)
}

/// Builds the application from resolved configuration. Key material and
/// storage are checked before the database is touched, so that a bad
/// setting stops start-up with its one line and no side effect.
pub async fn wire(config: Resolved, clock: Arc<dyn Clock>) -> Result<Wired, String> {
    ensure_data_dir(&config)?;
    let verifiers = Verifiers::build(&config, &clock)?;
    let session_key = session_secret(&config)?;
    let sign_in = taskcluster_login(&config)?;
    let regions = with_cdn(&config, regions(&config).await?)?;
    let store = open_store(&config).await?;
    // Downloads read file records from memory, kept coherent by the
    // store's change reports (a wiring choice: the use cases ask the port).
    let store: Arc<dyn MetadataStore> = match config.file_cache_size {
        0 => store,
        bytes => Arc::new(tooltool_cache::CachedStore::new(store, bytes)),
    };
    let authenticators = verifiers.with_store(&store, &clock);
    let mut settings = Settings::new(config.auth.permissions.clone());
    settings.upload_expires = config.storage.upload_expires;
    settings.download_expires = config.storage.download_expires;
    settings.max_file_size = config.storage.max_file_size;
    settings.verify_concurrency = config.jobs.verify_concurrency;
    let metrics: Arc<dyn tooltool_ports::Metrics> =
        Arc::new(tooltool_prometheus::Prometheus::new());
    let mut service =
        Service::new(store, regions, clock, metrics, settings).with_authenticators(authenticators);
    if let Some(authority) = sign_in {
        service = service.with_sign_in(authority);
    }
    Ok(Wired {
        service,
        config,
        session_key,
    })
}

/// "Sign in with Taskcluster", when its OAuth2 client is configured (the
/// configuration guarantees TASKCLUSTER_ROOT_URL then).
fn taskcluster_login(config: &Resolved) -> Result<Option<Arc<dyn SignInAuthority>>, String> {
    let (Some(client), HawkVerifier::Taskcluster { root_url, timeout }) =
        (&config.web.taskcluster_login, &config.auth.hawk)
    else {
        return Ok(None);
    };
    let login = TaskclusterLogin::new(
        root_url,
        *timeout,
        OAuthClient {
            id: client.id.clone(),
            secret: client.secret.as_ref().map(|s| s.0.clone()),
        },
        config.auth.permissions.prefix(),
    )
    .map_err(|e| format!("TASKCLUSTER_ROOT_URL: {e}"))?;
    Ok(Some(Arc::new(login)))
}
