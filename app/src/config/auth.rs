//! Who may do what: how Bearer tokens and Hawk credentials are verified,
//! the scope prefix, and anonymous downloads.

use std::path::PathBuf;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use tooltool_domain::Permissions;

use super::url::http_url;
use super::{ConfigError, Secret, err};

#[derive(clap::Args, Clone, Debug)]
#[command(next_help_heading = "Authentication")]
pub struct AuthArgs {
    /// HS256 secret for Bearer tokens. Without it and without JWT_PUBLIC_KEY, a random
    /// secret is created in DATA_DIR/jwt-secret on first start.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<Secret>,
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
    /// Prefix of every tooltool scope.
    #[arg(long, env = "SCOPE_PREFIX", default_value = Permissions::DEFAULT_PREFIX)]
    pub scope_prefix: String,
    /// Whether anyone may download public files without credentials.
    #[arg(long, env = "ALLOW_ANONYMOUS_PUBLIC_DOWNLOAD", default_value = "true",
          value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub allow_anonymous_public_download: bool,
}

/// How Bearer tokens are verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtKey {
    Secret(Secret),
    PublicKeyFile(PathBuf),
    /// Created (or read) in DATA_DIR on start.
    GeneratedSecret,
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

/// The resolved authentication settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    pub jwt: JwtKey,
    pub hawk: HawkVerifier,
    pub trust_proxy_headers: bool,
    pub permissions: Permissions,
}

impl AuthArgs {
    pub fn resolve(&self) -> Result<Auth, ConfigError> {
        let jwt = match (&self.jwt_secret, &self.jwt_public_key) {
            (Some(_), Some(_)) => {
                return Err(err(
                    "JWT_SECRET",
                    "set either JWT_SECRET or JWT_PUBLIC_KEY, not both",
                ));
            }
            (Some(s), None) if s.0.len() < 16 => {
                return Err(err("JWT_SECRET", "must be at least 16 characters"));
            }
            (Some(s), None) => JwtKey::Secret(s.clone()),
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
                let root = http_url("TASKCLUSTER_ROOT_URL", root)?;
                if self.taskcluster_timeout.is_zero() {
                    return Err(err("TASKCLUSTER_TIMEOUT", "must be more than 0"));
                }
                HawkVerifier::Taskcluster {
                    root_url: root.text.to_owned(),
                    timeout: self.taskcluster_timeout,
                }
            }
            (None, None) => HawkVerifier::None,
        };
        if self.scope_prefix.trim().is_empty() {
            return Err(err("SCOPE_PREFIX", "must not be empty"));
        }
        Ok(Auth {
            jwt,
            hawk,
            trust_proxy_headers: self.trust_proxy_headers,
            permissions: Permissions::new(
                self.scope_prefix.trim(),
                self.allow_anonymous_public_download,
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::config;

    #[test]
    fn anonymous_download_switch_parses_booleans() {
        for (value, expected) in [
            ("true", true),
            ("false", false),
            ("0", false),
            ("yes", true),
        ] {
            let c = config(&["--allow-anonymous-public-download", value]);
            assert_eq!(c.auth.allow_anonymous_public_download, expected, "{value}");
        }
        assert!(config(&[]).auth.allow_anonymous_public_download);
    }
}
