//! Configuration: one clap struct (every field a flag and an environment
//! variable), resolved by a pure function into typed choices.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use tooltool_domain::{Permissions, RegionName};

/// tooltool: a content-addressed artifact store for build jobs.
#[derive(clap::Parser, Debug)]
#[command(name = "tooltool", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub config: Config,
}

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Run the server (the default when no subcommand is given).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Print a JWT for `Authorization: Bearer`, signed with the configured key.
    Token {
        /// The principal id (becomes the author of batches).
        #[arg(long)]
        sub: String,
        /// A scope to grant; repeat for several (e.g. `--scope 'project:releng:services/tooltool/api/*'`).
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// Lifetime, e.g. `1h`, `30m`, `7d`.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        ttl: Duration,
        /// RS256 private key (PEM) when the server verifies with JWT_PUBLIC_KEY.
        #[arg(long, env = "JWT_PRIVATE_KEY")]
        private_key: Option<PathBuf>,
    },
    /// Print the OpenAPI document.
    Openapi,
    /// Copy an original tooltool database (files, instances, batches) into this
    /// one; running it again changes nothing. Pending uploads are not copied.
    ImportLegacy {
        /// PostgreSQL URL of the original database.
        #[arg(long)]
        from: String,
    },
    /// Verify pending uploads once, print what happened, and exit. The embedded
    /// store admits one process, so this runs only while no server uses DATA_DIR.
    CheckPendingUploads,
    /// Replicate files to every configured region once, and exit.
    Replicate,
    /// Drop abandoned upload slots and stray staging objects once, and exit.
    Sweep,
}

/// Every setting, as a flag or an environment variable.
#[derive(clap::Args, Clone)]
pub struct Config {
    /// Address to listen on. Default 127.0.0.1:8000, or 0.0.0.0:$PORT when only PORT is set.
    #[arg(long, env = "LISTEN")]
    pub listen: Option<String>,
    /// Port to listen on all interfaces (as on Heroku), when LISTEN is not set.
    #[arg(long, env = "PORT")]
    pub port: Option<u16>,
    /// Base URL clients reach this server at; every URL handed out starts with it.
    /// Default: http://<LISTEN address>.
    #[arg(long, env = "PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Directory of the embedded database, keys and default storage region.
    #[arg(long, env = "DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Local storage regions, `name:/path;name:/path`; the first receives uploads
    /// unless a client asks for another. Default: one region `local` under DATA_DIR/objects.
    #[arg(long, env = "LOCAL_REGIONS")]
    pub local_regions: Option<String>,
    /// PostgreSQL URL (`postgres://user:pass@host:5432/db`) of the metadata store;
    /// unset, the embedded SQLite file in DATA_DIR is used.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Connections to PostgreSQL per process.
    #[arg(long, env = "DATABASE_POOL_SIZE", default_value_t = 16)]
    pub database_pool_size: usize,
    /// How long start-up keeps retrying an unreachable database before giving up.
    #[arg(long, env = "DATABASE_STARTUP_WAIT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub database_startup_wait: Duration,
    /// S3 storage, `region:bucket;region:bucket` (e.g. `us-east-1:tooltool-a;us-west-2:tooltool-b`);
    /// the first receives uploads unless a client asks for another. Instead of LOCAL_REGIONS.
    #[arg(long, env = "S3_REGIONS")]
    pub s3_regions: Option<String>,
    /// Endpoint of an S3-compatible store (MinIO, Ceph, s3s-fs), addressed path-style.
    #[arg(long, env = "S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// Access key for S3 (else AWS_ACCESS_KEY_ID).
    #[arg(long, env = "S3_REGIONS_ACCESS_KEY_ID", hide_env_values = true)]
    pub s3_access_key_id: Option<String>,
    /// Secret key for S3 (else AWS_SECRET_ACCESS_KEY).
    #[arg(long, env = "S3_REGIONS_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub s3_secret_access_key: Option<String>,
    /// Seconds an upload URL stays valid.
    #[arg(long, env = "UPLOAD_EXPIRES_IN", default_value_t = 60)]
    pub upload_expires_in: u64,
    /// Seconds a download URL stays valid (also read from the originals' DOWLOAD_EXPIRES_IN).
    #[arg(long, env = "DOWNLOAD_EXPIRES_IN")]
    pub download_expires_in: Option<u64>,
    #[arg(long, env = "DOWLOAD_EXPIRES_IN", hide = true)]
    pub dowload_expires_in: Option<u64>,
    /// Largest file a batch may declare, in bytes.
    #[arg(long, env = "MAX_FILE_SIZE", default_value_t = 50 * 1024 * 1024 * 1024)]
    pub max_file_size: u64,
    /// Largest JSON request body, in bytes (413 above).
    #[arg(long, env = "MAX_REQUEST_BODY", default_value_t = 1024 * 1024)]
    pub max_request_body: usize,
    /// HS256 secret for Bearer tokens. Without it and without JWT_PUBLIC_KEY, a random
    /// secret is created in DATA_DIR/jwt-secret on first start.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// PEM file of the RS256 public key for Bearer tokens (instead of JWT_SECRET).
    #[arg(long, env = "JWT_PUBLIC_KEY")]
    pub jwt_public_key: Option<PathBuf>,
    /// JSON file of local Hawk clients `[{"clientId", "accessToken", "scopes"}]`,
    /// for deployments without Taskcluster (instead of TASKCLUSTER_ROOT_URL).
    #[arg(long, env = "HAWK_CLIENTS_FILE")]
    pub hawk_clients_file: Option<PathBuf>,
    /// Taskcluster deployment that verifies Hawk credentials, e.g.
    /// https://firefox-ci-tc.services.mozilla.com (instead of HAWK_CLIENTS_FILE).
    #[arg(long, env = "TASKCLUSTER_ROOT_URL")]
    pub taskcluster_root_url: Option<String>,
    /// How long to wait for Taskcluster before answering 503.
    #[arg(long, env = "TASKCLUSTER_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub taskcluster_timeout: Duration,
    /// Take the host, port and scheme that Hawk signatures cover from
    /// X-Forwarded-Host / X-Forwarded-Port / X-Forwarded-Proto (behind a proxy).
    #[arg(long, env = "TRUST_PROXY_HEADERS", default_value = "false",
          value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub trust_proxy_headers: bool,
    /// Origins allowed to call the API from a browser, comma-separated; `*` allows any
    /// (never with credentials).
    #[arg(long, env = "CORS_ORIGINS", default_value = "*")]
    pub cors_origins: String,
    /// Prefix of every tooltool scope.
    #[arg(long, env = "SCOPE_PREFIX", default_value = Permissions::DEFAULT_PREFIX)]
    pub scope_prefix: String,
    /// Whether anyone may download public files without credentials.
    #[arg(long, env = "ALLOW_ANONYMOUS_PUBLIC_DOWNLOAD", default_value = "true",
          value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub allow_anonymous_public_download: bool,
    /// Secret that signs the server's own storage URLs. Default: created in DATA_DIR/url-secret.
    #[arg(long, env = "URL_SIGNING_SECRET", hide_env_values = true)]
    pub url_signing_secret: Option<String>,
    /// How often the in-process job verifies pending uploads (e.g. `60s`; `0` turns it off).
    #[arg(long, env = "VERIFY_INTERVAL", default_value = "60s", value_parser = parse_interval)]
    pub verify_interval: Duration,
    /// How many uploads this process verifies at once (each one reads its whole object).
    #[arg(long, env = "VERIFY_CONCURRENCY", default_value_t = 4)]
    pub verify_concurrency: usize,
    /// How often the in-process job replicates files between regions (`0` = off).
    #[arg(long, env = "REPLICATE_INTERVAL", default_value = "60s", value_parser = parse_interval)]
    pub replicate_interval: Duration,
    /// How often the in-process job sweeps abandoned uploads (`0` = off).
    #[arg(long, env = "SWEEP_INTERVAL", default_value = "1h", value_parser = parse_interval)]
    pub sweep_interval: Duration,
    /// Serve `/metrics` on this separate address (e.g. 127.0.0.1:9100) instead of
    /// on LISTEN, to keep it off the public port.
    #[arg(long, env = "METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// Sentry DSN; unset or empty turns Sentry off.
    #[arg(long, env = "SENTRY_DSN", hide_env_values = true)]
    pub sentry_dsn: Option<String>,
    /// The environment Sentry events are tagged with.
    #[arg(long, env = "SENTRY_ENVIRONMENT", default_value = "production")]
    pub sentry_environment: String,
    /// Log filter, e.g. `info` or `tooltool=debug,info`.
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    pub log_level: String,
    /// `text` or `json`.
    #[arg(long, env = "LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
}

fn parse_interval(text: &str) -> Result<Duration, String> {
    if text.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(text).map_err(|e| e.to_string())
}

/// Secrets never reach logs through `{:?}`.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redact = |s: &Option<String>| s.as_ref().map(|_| "<redacted>");
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("port", &self.port)
            .field("public_url", &self.public_url)
            .field("data_dir", &self.data_dir)
            .field("local_regions", &self.local_regions)
            .field("upload_expires_in", &self.upload_expires_in)
            .field("download_expires_in", &self.download_expires_in)
            .field("max_file_size", &self.max_file_size)
            .field("jwt_secret", &redact(&self.jwt_secret))
            .field("jwt_public_key", &self.jwt_public_key)
            .field("scope_prefix", &self.scope_prefix)
            .field(
                "allow_anonymous_public_download",
                &self.allow_anonymous_public_download,
            )
            .field("url_signing_secret", &redact(&self.url_signing_secret))
            .field("sentry_dsn", &redact(&self.sentry_dsn))
            .field("database_url", &redact(&self.database_url))
            .finish_non_exhaustive()
    }
}

/// A secret value: compared and cloned, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How Bearer tokens are verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtKey {
    Secret(Secret),
    PublicKeyFile(PathBuf),
    /// Created (or read) in DATA_DIR on start.
    GeneratedSecret,
}

/// Where bytes live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// Region name → directory.
    Local(Vec<(RegionName, PathBuf)>),
    S3 {
        /// Region name → bucket.
        regions: Vec<(RegionName, String)>,
        endpoint: Option<String>,
        access_key: Secret,
        secret_key: Secret,
    },
}

/// Where metadata lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// `DATA_DIR/tooltool.sqlite3`.
    Sqlite,
    Postgres {
        url: Secret,
        pool_size: usize,
        startup_wait: Duration,
    },
}

/// Who verifies Hawk credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HawkVerifier {
    /// Hawk headers are refused (401).
    None,
    Local(PathBuf),
    Taskcluster {
        root_url: String,
        timeout: Duration,
    },
}

/// The resolved configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub listen: SocketAddr,
    pub public_url: String,
    pub data_dir: PathBuf,
    pub database: Database,
    pub storage: Storage,
    pub upload_expires: Duration,
    pub download_expires: Duration,
    pub max_file_size: u64,
    pub max_request_body: usize,
    pub jwt: JwtKey,
    pub hawk: HawkVerifier,
    pub trust_proxy_headers: bool,
    /// Empty allows any origin.
    pub cors_origins: Vec<String>,
    pub metrics_listen: Option<SocketAddr>,
    /// Validated; `None` when Sentry is off.
    pub sentry_dsn: Option<Secret>,
    pub sentry_environment: String,
    pub permissions: Permissions,
    pub url_signing_secret: Option<Secret>,
    pub verify_interval: Duration,
    pub verify_concurrency: usize,
    pub replicate_interval: Duration,
    pub sweep_interval: Duration,
}

/// A configuration error: one line naming the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

fn err(variable: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        message: message.into(),
    }
}

/// Parses `name:value;name:value` with region names, each once.
fn parse_pairs(
    variable: &'static str,
    text: &str,
    shape: &str,
) -> Result<Vec<(RegionName, String)>, ConfigError> {
    let mut pairs: Vec<(RegionName, String)> = Vec::new();
    for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) = part
            .split_once(':')
            .ok_or_else(|| err(variable, format!("{part:?} is not `{shape}`")))?;
        let name = RegionName::parse(name.trim()).map_err(|e| err(variable, e.to_string()))?;
        if value.trim().is_empty() {
            return Err(err(
                variable,
                format!("region {name} has nothing after ':'"),
            ));
        }
        if pairs.iter().any(|(n, _)| *n == name) {
            return Err(err(variable, format!("region {name} is listed twice")));
        }
        pairs.push((name, value.trim().to_owned()));
    }
    if pairs.is_empty() {
        return Err(err(
            variable,
            format!("no region given; use `{shape};{shape}`"),
        ));
    }
    Ok(pairs)
}

impl Config {
    /// LOCAL_REGIONS, or the one default region under DATA_DIR.
    fn local_region_list(&self) -> Result<Vec<(RegionName, PathBuf)>, ConfigError> {
        match &self.local_regions {
            Some(text) => Ok(parse_pairs("LOCAL_REGIONS", text, "name:/path")?
                .into_iter()
                .map(|(name, path)| (name, PathBuf::from(path)))
                .collect()),
            None => Ok(vec![(
                RegionName::parse("local").map_err(|e| err("LOCAL_REGIONS", e.to_string()))?,
                self.data_dir.join("objects"),
            )]),
        }
    }

    /// Resolves the settings; pure, so every rule is unit-tested.
    pub fn resolve(&self) -> Result<Resolved, ConfigError> {
        let listen_text = match (&self.listen, self.port) {
            (Some(l), _) => l.clone(),
            (None, Some(port)) => format!("0.0.0.0:{port}"),
            (None, None) => "127.0.0.1:8000".to_owned(),
        };
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            err(
                "LISTEN",
                format!("{listen_text:?} is not an address like 127.0.0.1:8000"),
            )
        })?;
        let public_url = match &self.public_url {
            Some(u) => {
                let u = u.trim_end_matches('/').to_owned();
                if !(u.starts_with("http://") || u.starts_with("https://")) {
                    return Err(err(
                        "PUBLIC_URL",
                        format!("{u:?} must start with http:// or https://"),
                    ));
                }
                // The Mozilla client dials 443 for an http:// URL without a port.
                let authority = u
                    .split("://")
                    .nth(1)
                    .unwrap_or_default()
                    .split('/')
                    .next()
                    .unwrap_or_default();
                let has_port = authority
                    .rsplit_once(':')
                    .is_some_and(|(_, p)| p.parse::<u16>().is_ok());
                if u.starts_with("http://") && !has_port {
                    return Err(err(
                        "PUBLIC_URL",
                        format!(
                            "{u:?} is http:// without an explicit port; the Mozilla client would dial port 443"
                        ),
                    ));
                }
                u
            }
            None => {
                let host = if listen.ip().is_unspecified() {
                    "127.0.0.1".to_owned()
                } else {
                    listen.ip().to_string()
                };
                let host = if listen.is_ipv6() && !listen.ip().is_unspecified() {
                    format!("[{host}]")
                } else {
                    host
                };
                format!("http://{host}:{}", listen.port())
            }
        };
        let database = match self.database_url.as_deref().map(str::trim) {
            None | Some("") => Database::Sqlite,
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                if self.database_pool_size == 0 {
                    return Err(err("DATABASE_POOL_SIZE", "must be at least 1"));
                }
                Database::Postgres {
                    url: Secret(url.to_owned()),
                    pool_size: self.database_pool_size,
                    startup_wait: self.database_startup_wait,
                }
            }
            Some(_) => {
                return Err(err(
                    "DATABASE_URL",
                    "must start with postgres:// or postgresql://",
                ));
            }
        };
        let storage = match (&self.s3_regions, &self.local_regions) {
            (Some(_), Some(_)) => {
                return Err(err(
                    "S3_REGIONS",
                    "set either S3_REGIONS or LOCAL_REGIONS, not both",
                ));
            }
            (Some(text), None) => {
                let regions = parse_pairs("S3_REGIONS", text, "region:bucket")?
                    .into_iter()
                    .map(|(name, bucket)| {
                        let ok = (3..=63).contains(&bucket.len())
                            && bucket.bytes().all(|b| {
                                b.is_ascii_lowercase()
                                    || b.is_ascii_digit()
                                    || b == b'-'
                                    || b == b'.'
                            });
                        if ok {
                            Ok((name, bucket))
                        } else {
                            Err(err(
                                "S3_REGIONS",
                                format!("{bucket:?} is not a bucket name"),
                            ))
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let key = |own: &Option<String>, aws: &str, variable: &'static str| {
                    own.clone()
                        .or_else(|| std::env::var(aws).ok())
                        .filter(|k| !k.is_empty())
                        .map(Secret)
                        .ok_or_else(|| {
                            err(
                                variable,
                                format!("is required with S3_REGIONS (or set {aws})"),
                            )
                        })
                };
                if let Some(endpoint) = &self.s3_endpoint
                    && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
                {
                    return Err(err(
                        "S3_ENDPOINT",
                        format!("{endpoint:?} is not an http(s) URL"),
                    ));
                }
                Storage::S3 {
                    regions,
                    endpoint: self.s3_endpoint.clone(),
                    access_key: key(
                        &self.s3_access_key_id,
                        "AWS_ACCESS_KEY_ID",
                        "S3_REGIONS_ACCESS_KEY_ID",
                    )?,
                    secret_key: key(
                        &self.s3_secret_access_key,
                        "AWS_SECRET_ACCESS_KEY",
                        "S3_REGIONS_SECRET_ACCESS_KEY",
                    )?,
                }
            }
            (None, _) => Storage::Local(self.local_region_list()?),
        };

        if self.upload_expires_in == 0 {
            return Err(err("UPLOAD_EXPIRES_IN", "must be at least 1 second"));
        }
        let download = self
            .download_expires_in
            .or(self.dowload_expires_in)
            .unwrap_or(60);
        if download == 0 {
            return Err(err("DOWNLOAD_EXPIRES_IN", "must be at least 1 second"));
        }
        let jwt = match (&self.jwt_secret, &self.jwt_public_key) {
            (Some(_), Some(_)) => {
                return Err(err(
                    "JWT_SECRET",
                    "set either JWT_SECRET or JWT_PUBLIC_KEY, not both",
                ));
            }
            (Some(s), None) if s.len() < 16 => {
                return Err(err("JWT_SECRET", "must be at least 16 characters"));
            }
            (Some(s), None) => JwtKey::Secret(Secret(s.clone())),
            (None, Some(p)) => JwtKey::PublicKeyFile(p.clone()),
            (None, None) => JwtKey::GeneratedSecret,
        };
        let hawk = match (&self.hawk_clients_file, &self.taskcluster_root_url) {
            (Some(_), Some(_)) => {
                return Err(err(
                    "TASKCLUSTER_ROOT_URL",
                    "set either TASKCLUSTER_ROOT_URL or HAWK_CLIENTS_FILE, not both",
                ));
            }
            (Some(file), None) => HawkVerifier::Local(file.clone()),
            (None, Some(root)) => {
                let root = root.trim_end_matches('/');
                if !(root.starts_with("https://") || root.starts_with("http://")) {
                    return Err(err(
                        "TASKCLUSTER_ROOT_URL",
                        format!("{root:?} is not an http(s) URL"),
                    ));
                }
                if self.taskcluster_timeout.is_zero() {
                    return Err(err("TASKCLUSTER_TIMEOUT", "must be more than 0"));
                }
                HawkVerifier::Taskcluster {
                    root_url: root.to_owned(),
                    timeout: self.taskcluster_timeout,
                }
            }
            (None, None) => HawkVerifier::None,
        };
        let cors_origins: Vec<String> = self
            .cors_origins
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty() && *o != "*")
            .map(str::to_owned)
            .collect();
        if let Some(bad) = cors_origins
            .iter()
            .find(|o| !(o.starts_with("https://") || o.starts_with("http://")) || o.ends_with('/'))
        {
            return Err(err(
                "CORS_ORIGINS",
                format!("{bad:?} is not an origin like https://example.com (or use *)"),
            ));
        }
        let metrics_listen = self
            .metrics_listen
            .as_deref()
            .map(|m| {
                m.parse::<SocketAddr>().map_err(|_| {
                    err(
                        "METRICS_LISTEN",
                        format!("{m:?} is not an address like 127.0.0.1:9100"),
                    )
                })
            })
            .transpose()?;
        let sentry_dsn = match self.sentry_dsn.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(dsn) => {
                dsn.parse::<sentry::types::Dsn>()
                    .map_err(|e| err("SENTRY_DSN", format!("not a valid DSN ({e})")))?;
                Some(Secret(dsn.to_owned()))
            }
        };
        if self.scope_prefix.trim().is_empty() {
            return Err(err("SCOPE_PREFIX", "must not be empty"));
        }
        if self.verify_concurrency == 0 {
            return Err(err("VERIFY_CONCURRENCY", "must be at least 1"));
        }
        if self.max_request_body < 1024 {
            return Err(err("MAX_REQUEST_BODY", "must be at least 1024 bytes"));
        }
        Ok(Resolved {
            listen,
            public_url,
            data_dir: self.data_dir.clone(),
            database,
            storage,
            upload_expires: Duration::from_secs(self.upload_expires_in),
            download_expires: Duration::from_secs(download),
            max_file_size: self.max_file_size,
            max_request_body: self.max_request_body,
            jwt,
            hawk,
            trust_proxy_headers: self.trust_proxy_headers,
            cors_origins,
            metrics_listen,
            sentry_dsn,
            sentry_environment: self.sentry_environment.clone(),
            permissions: Permissions::new(
                self.scope_prefix.trim(),
                self.allow_anonymous_public_download,
            ),
            url_signing_secret: self.url_signing_secret.clone().map(Secret),
            verify_interval: self.verify_interval,
            verify_concurrency: self.verify_concurrency,
            replicate_interval: self.replicate_interval,
            sweep_interval: self.sweep_interval,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn config(args: &[&str]) -> Config {
        let mut all = vec!["tooltool"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).expect("parses").config
    }

    #[test]
    fn listen_and_public_url() {
        let cases: &[(&[&str], &str, &str)] = &[
            (&[], "127.0.0.1:8000", "http://127.0.0.1:8000"),
            (&["--port", "5000"], "0.0.0.0:5000", "http://127.0.0.1:5000"),
            (
                &["--listen", "127.0.0.1:9", "--port", "5000"],
                "127.0.0.1:9",
                "http://127.0.0.1:9",
            ),
            (
                &["--public-url", "https://tooltool.example.com/"],
                "127.0.0.1:8000",
                "https://tooltool.example.com",
            ),
            (
                &["--listen", "[::1]:8080"],
                "[::1]:8080",
                "http://[::1]:8080",
            ),
        ];
        for (args, listen, url) in cases {
            let r = config(args).resolve().expect("valid");
            assert_eq!(r.listen.to_string(), *listen, "{args:?}");
            assert_eq!(r.public_url, *url, "{args:?}");
        }
    }

    #[test]
    fn bad_values_name_their_variable() {
        let cases: &[(&[&str], &str)] = &[
            (&["--listen", "nonsense"], "LISTEN"),
            (&["--public-url", "ftp://x"], "PUBLIC_URL"),
            (&["--public-url", "http://example.com"], "PUBLIC_URL"),
            (&["--local-regions", "east"], "LOCAL_REGIONS"),
            (&["--local-regions", "East:/a"], "LOCAL_REGIONS"),
            (&["--local-regions", "a:/x;a:/y"], "LOCAL_REGIONS"),
            (&["--local-regions", ";"], "LOCAL_REGIONS"),
            (&["--upload-expires-in", "0"], "UPLOAD_EXPIRES_IN"),
            (&["--download-expires-in", "0"], "DOWNLOAD_EXPIRES_IN"),
            (&["--jwt-secret", "short"], "JWT_SECRET"),
            (
                &[
                    "--jwt-secret",
                    "0123456789abcdef",
                    "--jwt-public-key",
                    "/k.pem",
                ],
                "JWT_SECRET",
            ),
            (&["--scope-prefix", " "], "SCOPE_PREFIX"),
            (&["--cors-origins", "example.com"], "CORS_ORIGINS"),
            (
                &[
                    "--s3-regions",
                    "us-east-1:b",
                    "--s3-access-key-id",
                    "a",
                    "--s3-secret-access-key",
                    "s",
                ],
                "S3_REGIONS",
            ),
            (
                &[
                    "--s3-regions",
                    "us-east-1:bucket",
                    "--local-regions",
                    "a:/x",
                ],
                "S3_REGIONS",
            ),
            (
                &[
                    "--s3-regions",
                    "us-east-1:bucket",
                    "--s3-access-key-id",
                    "a",
                    "--s3-secret-access-key",
                    "s",
                    "--s3-endpoint",
                    "minio:9000",
                ],
                "S3_ENDPOINT",
            ),
            (&["--database-url", "mysql://x"], "DATABASE_URL"),
            (
                &[
                    "--database-url",
                    "postgres://x/db",
                    "--database-pool-size",
                    "0",
                ],
                "DATABASE_POOL_SIZE",
            ),
            (&["--metrics-listen", "everywhere"], "METRICS_LISTEN"),
            (&["--verify-concurrency", "0"], "VERIFY_CONCURRENCY"),
            (&["--sentry-dsn", "not a dsn"], "SENTRY_DSN"),
            (
                &[
                    "--hawk-clients-file",
                    "/c.json",
                    "--taskcluster-root-url",
                    "https://tc",
                ],
                "TASKCLUSTER_ROOT_URL",
            ),
            (
                &["--taskcluster-root-url", "tc.example.com"],
                "TASKCLUSTER_ROOT_URL",
            ),
            (
                &[
                    "--taskcluster-root-url",
                    "https://tc",
                    "--taskcluster-timeout",
                    "0s",
                ],
                "TASKCLUSTER_TIMEOUT",
            ),
        ];
        for (args, variable) in cases {
            let e = config(args).resolve().expect_err("invalid");
            assert_eq!(e.variable, *variable, "{args:?}: {e}");
        }
    }

    #[test]
    fn regions_and_defaults() {
        let r = config(&["--data-dir", "/d"]).resolve().expect("valid");
        assert_eq!(
            r.storage,
            Storage::Local(vec![(
                RegionName::parse("local").expect("valid"),
                PathBuf::from("/d/objects")
            )])
        );
        assert_eq!(r.jwt, JwtKey::GeneratedSecret);
        assert_eq!(r.hawk, HawkVerifier::None);
        assert!(!r.trust_proxy_headers);
        let r = config(&["--taskcluster-root-url", "https://tc.example.com/"])
            .resolve()
            .expect("valid");
        assert_eq!(
            r.hawk,
            HawkVerifier::Taskcluster {
                root_url: "https://tc.example.com".into(),
                timeout: Duration::from_secs(5)
            }
        );
        assert_eq!(r.download_expires, Duration::from_secs(60));
        let r = config(&["--local-regions", "east:/srv/a; west:/srv/b"])
            .resolve()
            .expect("valid");
        let Storage::Local(regions) = r.storage else {
            panic!("local storage")
        };
        let names: Vec<_> = regions
            .iter()
            .map(|(n, p)| (n.as_str(), p.to_str().unwrap_or_default()))
            .collect();
        assert_eq!(names, [("east", "/srv/a"), ("west", "/srv/b")]);
        let r = config(&[
            "--s3-regions",
            "us-east-1:tooltool-a;us-west-2:tooltool-b",
            "--s3-access-key-id",
            "AK",
            "--s3-secret-access-key",
            "SK",
        ])
        .resolve()
        .expect("valid");
        let Storage::S3 {
            regions, endpoint, ..
        } = r.storage
        else {
            panic!("s3 storage")
        };
        assert_eq!(regions[1].1, "tooltool-b");
        assert_eq!(endpoint, None);
    }

    #[test]
    fn misspelt_download_variable_is_honoured_but_loses_to_the_right_one() {
        let r = config(&["--dowload-expires-in", "30"])
            .resolve()
            .expect("valid");
        assert_eq!(r.download_expires, Duration::from_secs(30));
        let r = config(&["--dowload-expires-in", "30", "--download-expires-in", "90"])
            .resolve()
            .expect("valid");
        assert_eq!(r.download_expires, Duration::from_secs(90));
    }

    #[test]
    fn anonymous_download_switch_parses_booleans() {
        for (value, expected) in [
            ("true", true),
            ("false", false),
            ("0", false),
            ("yes", true),
        ] {
            let c = config(&["--allow-anonymous-public-download", value]);
            assert_eq!(c.allow_anonymous_public_download, expected, "{value}");
        }
        assert!(config(&[]).allow_anonymous_public_download);
    }

    #[test]
    fn debug_redacts_secrets() {
        let c = config(&["--jwt-secret", "super-secret-value-1234"]);
        assert!(!format!("{c:?}").contains("super-secret"));
        let r = c.resolve().expect("valid");
        assert!(!format!("{r:?}").contains("super-secret"));
    }
}
