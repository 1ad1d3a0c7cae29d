//! Start-up: the first connection and the migrations, and what their
//! failures say. The operator reads one line, so it carries PostgreSQL's
//! own sentence (`database "tooltool" does not exist`) and what to do.
//!
//! A refusal by the server (an unknown database or role, a wrong password,
//! a missing privilege) is permanent: retrying cannot fix it, so it is
//! reported at once. Only a server that does not answer, or answers that it
//! is starting or full, is waited for.

use std::error::Error as StdError;
use std::time::Duration;

use deadpool_postgres::{PoolError, TimeoutType};
use tokio_postgres::error::{DbError, SqlState};
use tooltool_ports::Chain;

/// Why [`crate::PgStore::connect`] failed, as one line.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("DATABASE_URL must start with postgres:// or postgresql://")]
    Scheme,
    #[error("DATABASE_URL is not a valid PostgreSQL URL: {0}")]
    Url(String),
    #[error("TLS setup failed: {0}")]
    Tls(String),
    #[error("cannot set up the connection pool: {0}")]
    Pool(String),
    /// The server answered and said no.
    #[error("PostgreSQL at {server} refused the connection: {reason}{hint}")]
    Refused {
        server: String,
        reason: String,
        hint: String,
    },
    /// Nothing usable answered within the start-up wait.
    #[error("cannot reach PostgreSQL at {server} (waited {}): {reason}", humanize(*waited))]
    Unreachable {
        server: String,
        waited: Duration,
        reason: String,
    },
    #[error("the migrations failed on {server}: {reason}{hint}")]
    Migration {
        server: String,
        reason: String,
        hint: String,
    },
}

fn humanize(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// What a failed attempt to get the first connection means.
pub(crate) enum Attempt {
    /// Worth retrying until the start-up wait ends.
    Transient(String),
    /// Retrying cannot help.
    Permanent { reason: String, hint: String },
}

/// The server answered with an error of its own: `message (SQLSTATE x)`,
/// with PostgreSQL's hint when it gave one.
fn db_reason(db: &DbError) -> String {
    let mut text = format!("{} (SQLSTATE {})", db.message(), db.code().code());
    if let Some(hint) = db.hint() {
        text.push_str("; ");
        text.push_str(hint.trim_end_matches('.'));
    }
    text
}

/// Our advice for the refusals an operator meets when setting up.
fn hint(code: &SqlState) -> &'static str {
    match *code {
        SqlState::INVALID_CATALOG_NAME => {
            "; create the database (CREATE DATABASE … OWNER …) or fix its name in DATABASE_URL"
        }
        SqlState::INVALID_AUTHORIZATION_SPECIFICATION => {
            "; create the role (CREATE ROLE … LOGIN PASSWORD …) or fix the user in DATABASE_URL"
        }
        SqlState::INVALID_PASSWORD => "; check the password in DATABASE_URL",
        SqlState::INSUFFICIENT_PRIVILEGE => {
            "; the role in DATABASE_URL must own the database (CREATE DATABASE … OWNER …), \
             which lets it create the pg_trgm extension and the tables (see the README, \
             Running on PostgreSQL)"
        }
        SqlState::UNDEFINED_FILE | SqlState::FEATURE_NOT_SUPPORTED => {
            "; the pg_trgm extension is not installed on the server (Debian: postgresql-contrib)"
        }
        _ => "",
    }
}

/// The first `DbError` in an error's chain.
fn find_db_error<'e>(e: &'e (dyn StdError + 'static)) -> Option<&'e DbError> {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(db) = e.downcast_ref::<DbError>() {
            return Some(db);
        }
        next = e.source();
    }
    None
}

/// Classifies a failure to get the first connection.
pub(crate) fn attempt(e: &PoolError, connect_timeout: Duration) -> Attempt {
    match e {
        PoolError::Backend(e) => match e.as_db_error() {
            Some(db)
                if matches!(
                    *db.code(),
                    SqlState::CANNOT_CONNECT_NOW
                        | SqlState::TOO_MANY_CONNECTIONS
                        | SqlState::ADMIN_SHUTDOWN
                        | SqlState::CRASH_SHUTDOWN
                ) =>
            {
                Attempt::Transient(db_reason(db))
            }
            Some(db) => Attempt::Permanent {
                reason: db_reason(db),
                hint: hint(db.code()).to_owned(),
            },
            None => Attempt::Transient(Chain(e).to_string()),
        },
        PoolError::Timeout(TimeoutType::Create | TimeoutType::Wait) => {
            Attempt::Transient(format!("no answer within {}", humanize(connect_timeout)))
        }
        other => Attempt::Transient(Chain(other).to_string()),
    }
}

/// A failed migration as one line, from PostgreSQL's error when there is one.
pub(crate) fn migration(server: &str, e: &(dyn StdError + 'static)) -> StartupError {
    match find_db_error(e) {
        Some(db) => StartupError::Migration {
            server: server.to_owned(),
            reason: db_reason(db),
            hint: hint(db.code()).to_owned(),
        },
        None => StartupError::Migration {
            server: server.to_owned(),
            reason: Chain(e).to_string(),
            hint: String::new(),
        },
    }
}

/// `user@host:port/database`: where we tried, without the password.
pub(crate) fn describe(config: &tokio_postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".to_owned());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("?");
    let db = config.get_dbname().unwrap_or(user);
    format!("{user}@{host}:{port}/{db}")
}
