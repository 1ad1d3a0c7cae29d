//! The background jobs run inside the server: how often, and how many
//! verifications at once.

use std::time::Duration;

use super::{ConfigError, err};

#[derive(clap::Args, Clone, Debug)]
#[command(next_help_heading = "Background jobs")]
pub struct JobsArgs {
    /// How often the in-process job verifies pending uploads (e.g. `60s`; `0` turns it off).
    #[arg(long, env = "VERIFY_INTERVAL", default_value = "60s", value_parser = parse_interval)]
    pub verify_interval: Duration,
    /// How many uploads this process verifies at once (each one reads its whole object).
    #[arg(long, env = "VERIFY_CONCURRENCY", default_value_t = 4)]
    pub verify_concurrency: usize,
    /// How often the in-process job replicates files between regions (`0` = off).
    #[arg(long, env = "REPLICATE_INTERVAL", default_value = "60s", value_parser = parse_interval)]
    pub replicate_interval: Duration,
    /// How often the in-process job sweeps abandoned uploads, stray staging
    /// objects and spent Hawk nonces (`0` = off).
    #[arg(long, env = "SWEEP_INTERVAL", default_value = "1h", value_parser = parse_interval)]
    pub sweep_interval: Duration,
}

/// A duration, or `0` for "off".
fn parse_interval(text: &str) -> Result<Duration, String> {
    if text.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(text).map_err(|e| e.to_string())
}

/// The resolved job settings; a zero interval turns a job off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jobs {
    pub verify_interval: Duration,
    pub verify_concurrency: usize,
    pub replicate_interval: Duration,
    pub sweep_interval: Duration,
}

impl JobsArgs {
    pub fn resolve(&self) -> Result<Jobs, ConfigError> {
        if self.verify_concurrency == 0 {
            return Err(err("VERIFY_CONCURRENCY", "must be at least 1"));
        }
        Ok(Jobs {
            verify_interval: self.verify_interval,
            verify_concurrency: self.verify_concurrency,
            replicate_interval: self.replicate_interval,
            sweep_interval: self.sweep_interval,
        })
    }
}
