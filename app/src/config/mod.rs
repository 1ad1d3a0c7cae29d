//! Configuration: one clap struct (every field a flag and an environment
//! variable) made of one group per concern, each resolved by a pure
//! function into typed choices: `listen.rs` (address, public URL, body
//! limit, CORS), `database.rs`, `storage.rs` (regions, URL lifetimes,
//! sizes), `auth.rs` (tokens, Hawk, scopes), `jobs.rs`, `telemetry.rs`
//! (metrics, Sentry, logs), `web.rs` (bug links, browser sessions,
//! Taskcluster sign-in); `url.rs` is the one URL check they share;
//! `cli.rs` parses the command line and words its errors; `summary.rs`
//! says what runs, for the start-up line.
//! Nothing here reads the environment: clap does, before resolution.

mod auth;
mod cli;
mod cloudfront;
mod database;
mod jobs;
mod listen;
mod s3;
mod storage;
mod summary;
mod telemetry;
mod url;
mod web;

use std::path::PathBuf;
use std::time::Duration;

pub use auth::{Auth, AuthArgs, HawkVerifier, JwtKey};
pub use cli::error_line;
pub use cloudfront::CloudFront;
pub use database::{Database, DatabaseArgs};
pub use jobs::{Jobs, JobsArgs};
pub use listen::{Listen, ListenArgs};
pub use storage::{Regions, S3Bucket, Storage, StorageArgs};
pub use summary::Summary;
pub use telemetry::{Telemetry, TelemetryArgs};
pub use web::{LoginClient, Web, WebArgs};

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
        /// Import a batch whose id is taken here by a different batch under a
        /// new id (printed) instead of stopping; its original id is recorded,
        /// so running again still changes nothing.
        #[arg(long)]
        renumber: bool,
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
#[derive(clap::Args, Clone, Debug)]
pub struct Config {
    /// Directory of the embedded database, keys and default storage region.
    #[arg(long, env = "DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub listen: ListenArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub storage: StorageArgs,
    #[command(flatten)]
    pub auth: AuthArgs,
    #[command(flatten)]
    pub jobs: JobsArgs,
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
    #[command(flatten)]
    pub web: WebArgs,
}

/// A secret value (a key, a password in a URL): compared and cloned,
/// never printed, so that `Debug` of any setting redacts it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Self(text.to_owned()))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The resolved configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub data_dir: PathBuf,
    pub listen: Listen,
    pub database: Database,
    /// Bytes of file records cached (FILE_CACHE_SIZE); 0: none.
    pub file_cache_size: u64,
    pub storage: Storage,
    pub auth: Auth,
    pub jobs: Jobs,
    pub telemetry: Telemetry,
    pub web: Web,
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

impl Config {
    /// Resolves every group; pure, so every rule is unit-tested.
    pub fn resolve(&self) -> Result<Resolved, ConfigError> {
        Ok(Resolved {
            data_dir: self.data_dir.clone(),
            listen: self.listen.resolve()?,
            database: self.database.resolve()?,
            file_cache_size: self.database.file_cache_size,
            storage: self.storage.resolve(&self.data_dir)?,
            auth: self.auth.resolve()?,
            jobs: self.jobs.resolve()?,
            telemetry: self.telemetry.resolve()?,
            web: self.web_settings()?,
        })
    }

    /// The web settings, whose Taskcluster sign-in needs the deployment
    /// that verifies Hawk credentials.
    fn web_settings(&self) -> Result<Web, ConfigError> {
        let web = self.web.resolve()?;
        if web.taskcluster_login.is_some() && self.auth.taskcluster_root_url.is_none() {
            return Err(err(
                "TASKCLUSTER_LOGIN_CLIENT_ID",
                "needs TASKCLUSTER_ROOT_URL (the deployment people sign in with)",
            ));
        }
        Ok(web)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use tooltool_domain::RegionName;

    /// The configuration these command-line arguments give.
    pub(super) fn config(args: &[&str]) -> Config {
        let mut all = vec!["tooltool"];
        all.extend_from_slice(args);
        Cli::parse_args(all).expect("parses").config
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
            (
                &["--upload-expires-in", "9223372036854775807"],
                "UPLOAD_EXPIRES_IN",
            ),
            (&["--download-expires-in", "604801"], "DOWNLOAD_EXPIRES_IN"),
            (&["--max-file-size", "9223372036854775808"], "MAX_FILE_SIZE"),
            (&["--url-signing-secret", "too-short"], "URL_SIGNING_SECRET"),
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
            (&["--session-secret", "short"], "SESSION_SECRET"),
            (&["--session-lifetime", "10s"], "SESSION_LIFETIME"),
            (&["--session-lifetime", "8d"], "SESSION_LIFETIME"),
            (&["--bug-tracker-url", "bugs"], "BUG_TRACKER_URL"),
            (
                &["--taskcluster-login-client-id", "tooltool"],
                "TASKCLUSTER_LOGIN_CLIENT_ID",
            ),
            (
                &["--taskcluster-login-client-secret", "s"],
                "TASKCLUSTER_LOGIN_CLIENT_SECRET",
            ),
            (&["--cors-origins", "example.com"], "CORS_ORIGINS"),
            (&["--header-timeout", "0s"], "HEADER_TIMEOUT"),
            (&["--header-timeout", "11m"], "HEADER_TIMEOUT"),
            (&["--idle-timeout", "500ms"], "IDLE_TIMEOUT"),
            (&["--idle-timeout", "2h"], "IDLE_TIMEOUT"),
            (&["--max-connections", "0"], "MAX_CONNECTIONS"),
            (
                &["--max-connections-per-peer", "0"],
                "MAX_CONNECTIONS_PER_PEER",
            ),
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
            r.storage.regions,
            Regions::Local(vec![(
                RegionName::parse("local").expect("valid"),
                PathBuf::from("/d/objects")
            )])
        );
        assert_eq!(r.auth.jwt, JwtKey::GeneratedSecret);
        assert_eq!(r.auth.hawk, HawkVerifier::None);
        assert!(!r.auth.trust_proxy_headers);
        let r = config(&["--taskcluster-root-url", "https://tc.example.com/"])
            .resolve()
            .expect("valid");
        assert_eq!(
            r.auth.hawk,
            HawkVerifier::Taskcluster {
                root_url: "https://tc.example.com".into(),
                timeout: Duration::from_secs(5)
            }
        );
        assert_eq!(r.storage.download_expires, Duration::from_secs(60));
        let r = config(&["--local-regions", "east:/srv/a; west:/srv/b"])
            .resolve()
            .expect("valid");
        let Regions::Local(regions) = r.storage.regions else {
            panic!("local storage")
        };
        let names: Vec<_> = regions
            .iter()
            .map(|(n, p)| (n.as_str(), p.to_str().unwrap_or_default()))
            .collect();
        assert_eq!(names, [("east", "/srv/a"), ("west", "/srv/b")]);
    }

    #[test]
    fn debug_redacts_secrets() {
        let c = config(&["--jwt-secret", "super-secret-value-1234"]);
        assert!(!format!("{c:?}").contains("super-secret"));
        let r = c.resolve().expect("valid");
        assert!(!format!("{r:?}").contains("super-secret"));
        // Every secret setting, whichever group it belongs to.
        let c = config(&[
            "--database-url",
            "postgres://u:super-secret-db@h/db",
            "--s3-regions",
            "us-east-1:bucket",
            "--s3-access-key-id",
            "super-secret-ak",
            "--s3-secret-access-key",
            "super-secret-sk",
            "--url-signing-secret",
            "super-secret-url-0123456789abcdef",
            "--sentry-dsn",
            "https://super-secret-key@sentry.example.com/1",
        ]);
        let r = c.resolve().expect("valid");
        for text in [format!("{c:?}"), format!("{r:?}")] {
            assert!(!text.contains("super-secret"), "{text}");
        }
    }
}
