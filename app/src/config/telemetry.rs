//! What the server tells operators: metrics address, Sentry, logs.

use std::net::SocketAddr;

use super::{ConfigError, Secret, err};

#[derive(clap::Args, Clone, Debug)]
#[command(next_help_heading = "Telemetry")]
pub struct TelemetryArgs {
    /// Serve `/metrics` on this separate address (e.g. 127.0.0.1:9100) instead of
    /// on LISTEN, to keep it off the public port.
    #[arg(long, env = "METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// Sentry DSN; unset or empty turns Sentry off.
    #[arg(long, env = "SENTRY_DSN", hide_env_values = true)]
    pub sentry_dsn: Option<Secret>,
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

/// The resolved telemetry settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Telemetry {
    pub metrics_listen: Option<SocketAddr>,
    /// Validated; `None` when Sentry is off.
    pub sentry_dsn: Option<Secret>,
    pub sentry_environment: String,
    pub log_level: String,
    pub log_format: String,
}

impl TelemetryArgs {
    pub fn resolve(&self) -> Result<Telemetry, ConfigError> {
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
        let sentry_dsn = match self.sentry_dsn.as_ref().map(|d| d.0.trim()) {
            None | Some("") => None,
            Some(dsn) => {
                dsn.parse::<sentry::types::Dsn>()
                    .map_err(|e| err("SENTRY_DSN", format!("not a valid DSN ({e})")))?;
                Some(Secret(dsn.to_owned()))
            }
        };
        Ok(Telemetry {
            metrics_listen,
            sentry_dsn,
            sentry_environment: self.sentry_environment.clone(),
            log_level: self.log_level.clone(),
            log_format: self.log_format.clone(),
        })
    }
}
