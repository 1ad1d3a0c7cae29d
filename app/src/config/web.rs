//! The web interface: where bug numbers link, how browser sessions are
//! signed and how long they last, and the OAuth2 client that lets people
//! sign in with Taskcluster.

use std::time::Duration;

use super::url::http_url;
use super::{ConfigError, Secret, err};

#[derive(clap::Args, Clone, Debug)]
#[command(next_help_heading = "Web interface")]
pub struct WebArgs {
    /// The web interface links `Bug NNNN` in batch messages to this URL followed by NNNN.
    #[arg(
        long,
        env = "BUG_TRACKER_URL",
        default_value = "https://bugzilla.mozilla.org/show_bug.cgi?id="
    )]
    pub bug_tracker_url: String,
    /// Key (at least 32 characters) that signs browser session cookies. Without it, a
    /// random key is created in DATA_DIR/session-secret on first start; every server
    /// behind one URL needs the same key.
    #[arg(long, env = "SESSION_SECRET", hide_env_values = true)]
    pub session_secret: Option<Secret>,
    /// How long a browser session lasts after signing in (e.g. `1h`, `8h`; at most 7 days).
    #[arg(long, env = "SESSION_LIFETIME", default_value = "1h", value_parser = humantime::parse_duration)]
    pub session_lifetime: Duration,
    /// OAuth2 client id registered with the Taskcluster deployment of
    /// TASKCLUSTER_ROOT_URL, for "Sign in with Taskcluster"; its redirect URI is
    /// PUBLIC_URL/ui/sign-in/taskcluster/callback.
    #[arg(long, env = "TASKCLUSTER_LOGIN_CLIENT_ID")]
    pub taskcluster_login_client_id: Option<String>,
    /// The secret of that OAuth2 client, if it has one.
    #[arg(long, env = "TASKCLUSTER_LOGIN_CLIENT_SECRET", hide_env_values = true)]
    pub taskcluster_login_client_secret: Option<Secret>,
}

/// The OAuth2 client of "Sign in with Taskcluster".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginClient {
    pub id: String,
    pub secret: Option<Secret>,
}

/// The resolved web interface settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Web {
    /// An http(s) URL.
    pub bug_tracker_url: String,
    /// `None`: generated in DATA_DIR.
    pub session_secret: Option<Secret>,
    pub session_lifetime: Duration,
    /// Set only with TASKCLUSTER_ROOT_URL (checked with the auth settings).
    pub taskcluster_login: Option<LoginClient>,
}

const MAX_SESSION: Duration = Duration::from_secs(7 * 24 * 3600);

impl WebArgs {
    pub fn resolve(&self) -> Result<Web, ConfigError> {
        let bug_tracker_url = http_url("BUG_TRACKER_URL", &self.bug_tracker_url)?
            .text
            .to_owned();
        if let Some(s) = &self.session_secret
            && s.0.len() < 32
        {
            return Err(err("SESSION_SECRET", "must be at least 32 characters"));
        }
        if self.session_lifetime < Duration::from_secs(60) || self.session_lifetime > MAX_SESSION {
            return Err(err(
                "SESSION_LIFETIME",
                "must be between 1 minute and 7 days",
            ));
        }
        let taskcluster_login = match (
            &self.taskcluster_login_client_id,
            &self.taskcluster_login_client_secret,
        ) {
            (Some(id), _) if id.trim().is_empty() || id.chars().any(char::is_control) => {
                return Err(err(
                    "TASKCLUSTER_LOGIN_CLIENT_ID",
                    "must be a client id without spaces at its ends or control characters",
                ));
            }
            (Some(id), secret) => Some(LoginClient {
                id: id.trim().to_owned(),
                secret: secret.clone(),
            }),
            (None, Some(_)) => {
                return Err(err(
                    "TASKCLUSTER_LOGIN_CLIENT_SECRET",
                    "is set without TASKCLUSTER_LOGIN_CLIENT_ID",
                ));
            }
            (None, None) => None,
        };
        Ok(Web {
            bug_tracker_url,
            session_secret: self.session_secret.clone(),
            session_lifetime: self.session_lifetime,
            taskcluster_login,
        })
    }
}
