use std::process::ExitCode;
use std::sync::Arc;

use tooltool::SystemClock;
use tooltool::config::{Cli, Command};
use tooltool::jobs::Job;
use tooltool_ports::{Chain, WhenTaken};

/// Prints one line and fails, the way every start-up error should look.
fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("tooltool: {message}");
    ExitCode::FAILURE
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match Cli::parse_args(std::env::args_os()) {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => return fail(tooltool::config::error_line(&e)),
    };
    let config = match cli.config.resolve() {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let telemetry = &config.telemetry;
    let sentry = telemetry.sentry_dsn.as_ref().map(|dsn| {
        tooltool::telemetry::sentry_options(&dsn.0, &telemetry.sentry_environment)
            .expect("validated by Config::resolve")
    });
    let _telemetry =
        tooltool::telemetry::install(&telemetry.log_level, &telemetry.log_format, sentry);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let listeners = match tooltool::bind(&config).await {
                Ok(l) => l,
                Err(e) => return fail(e),
            };
            let wired = match tooltool::wire(config, Arc::new(SystemClock)).await {
                Ok(w) => w,
                Err(e) => return fail(e),
            };
            tooltool::server::announce(&wired);
            match tooltool::serve(wired, listeners, shutdown_signal()).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(e),
            }
        }
        Command::Migrate => match tooltool::open_store(&config).await {
            Ok(_) => {
                match &config.database {
                    tooltool::config::Database::Sqlite => println!(
                        "migrations applied to {}",
                        config.data_dir.join("tooltool.sqlite3").display()
                    ),
                    tooltool::config::Database::Postgres { .. } => {
                        println!("migrations applied to the PostgreSQL database");
                    }
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        },
        Command::Token {
            sub,
            scopes,
            ttl,
            private_key,
        } => {
            // A token signed with a key made just now is accepted only by a
            // server that uses this DATA_DIR: say so, since the usual
            // mistake is running `token` somewhere else than the server.
            let key_file = config.data_dir.join("jwt-secret");
            let new_key = private_key.is_none()
                && config.auth.jwt == tooltool::config::JwtKey::GeneratedSecret
                && !key_file.exists();
            let issuer = match tooltool::jwt_issuer(&config, private_key.as_deref()) {
                Ok(i) => i,
                Err(e) => return fail(e),
            };
            let now = chrono::Utc::now().timestamp();
            let claims = tooltool_jwt::Claims {
                sub,
                scopes,
                exp: now + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2),
                iat: Some(now),
                nbf: None,
            };
            match issuer.issue(&claims) {
                Ok(token) => {
                    println!("{token}");
                    if new_key {
                        eprintln!(
                            "tooltool token: {} did not exist, so a new key was made there: \
                             only a server with this DATA_DIR accepts the token (or set JWT_SECRET)",
                            key_file.display()
                        );
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        Command::Openapi => {
            print!("{}", tooltool_http::openapi_json(&config.listen.public_url));
            ExitCode::SUCCESS
        }
        Command::ImportLegacy { from, renumber } => {
            let when_taken = if renumber {
                WhenTaken::Renumber
            } else {
                WhenTaken::Refuse
            };
            match tooltool::import_legacy(&config, &from, when_taken).await {
                Ok(summary) => {
                    println!("{summary}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(format!("import-legacy: {e}")),
            }
        }
        Command::CheckPendingUploads => run_job(config, Job::Verify).await,
        Command::Replicate => run_job(config, Job::Replicate).await,
        Command::Sweep => run_job(config, Job::Sweep).await,
    }
}

/// Runs one job once (for cron-style schedulers): prints what it did and
/// exits non-zero when the run or any item failed.
async fn run_job(config: tooltool::config::Resolved, job: Job) -> ExitCode {
    let wired = match tooltool::wire(config, Arc::new(SystemClock)).await {
        Ok(w) => w,
        Err(e) => return fail(e),
    };
    let name = job.command();
    match job.run_once(&wired.service).await {
        Ok(report) => {
            println!("{name}: {report}");
            if report.failed > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => fail(format!("{name}: {}", Chain(&e))),
    }
}
