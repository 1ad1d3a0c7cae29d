//! The tooltool binary's library: configuration (`config/`), the use
//! cases (`service/`), wiring of adapters into ports (`wiring.rs`), the
//! generated secrets of the embedded default (`secrets.rs`), the server
//! loop (`server.rs`), the background jobs (`jobs.rs`), `import-legacy`
//! (`import.rs`), logs and Sentry (`telemetry.rs`). `main.rs` only parses
//! the command line and dispatches here, so tests can start a real server
//! in-process on a random port.

pub mod config;
pub mod import;
pub mod jobs;
pub mod secrets;
pub mod server;
pub mod service;
pub mod telemetry;
pub mod wiring;

use chrono::{DateTime, Utc};
use tooltool_ports::Clock;

pub use import::import_legacy;
pub use secrets::{jwt_issuer, jwt_secret};
pub use server::{bind, http_app, serve};
pub use wiring::{Wired, open_store, wire};

/// The host's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The thread-local random generator, for choices that only need to be
/// uniform (not secret).
#[derive(Debug, Clone, Copy, Default)]
pub struct ThreadChance;

impl tooltool_ports::Chance for ThreadChance {
    fn below(&self, n: usize) -> usize {
        rand::random_range(0..n.max(1))
    }
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
