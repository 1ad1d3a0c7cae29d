//! Where metadata lives: the embedded SQLite file, or PostgreSQL.

use std::time::Duration;

use super::{ConfigError, Secret, err};

#[derive(clap::Args, Clone, Debug)]
#[command(next_help_heading = "Database")]
pub struct DatabaseArgs {
    /// PostgreSQL URL (`postgres://user:pass@host:5432/db`) of the metadata store;
    /// unset, the embedded SQLite file in DATA_DIR is used.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<Secret>,
    /// Connections to PostgreSQL per process.
    #[arg(long, env = "DATABASE_POOL_SIZE", default_value_t = 16)]
    pub database_pool_size: usize,
    /// How long start-up keeps retrying an unreachable database before giving up.
    #[arg(long, env = "DATABASE_STARTUP_WAIT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub database_startup_wait: Duration,
    /// Bytes of memory for file records (digest, size, visibility, regions) kept
    /// for downloads, per process (about 600 bytes each); 0 turns the cache off.
    /// Kept coherent with every process sharing the database (see README: Caching).
    #[arg(long, env = "FILE_CACHE_SIZE", default_value_t = 64 * 1024 * 1024)]
    pub file_cache_size: u64,
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

impl DatabaseArgs {
    pub fn resolve(&self) -> Result<Database, ConfigError> {
        match self.database_url.as_ref().map(|u| u.0.trim()) {
            None | Some("") => Ok(Database::Sqlite),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                if self.database_pool_size == 0 {
                    return Err(err("DATABASE_POOL_SIZE", "must be at least 1"));
                }
                Ok(Database::Postgres {
                    url: Secret(url.to_owned()),
                    pool_size: self.database_pool_size,
                    startup_wait: self.database_startup_wait,
                })
            }
            Some(_) => Err(err(
                "DATABASE_URL",
                "must start with postgres:// or postgresql://",
            )),
        }
    }
}
