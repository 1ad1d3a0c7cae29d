//! `tooltool-client`: the commands and flags of `tooltool.py`, so scripts
//! can swap one for the other (`tooltool-client --url URL -m manifest.tt
//! fetch`).

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, ValueEnum};
use tooltool_client::auth::Credentials;
use tooltool_client::cache::Cache;
use tooltool_client::fetch::{Fetcher, hash_file, matches_record};
use tooltool_client::manage::Server;
use tooltool_client::manifest::{FileRecord, Manifest};
use tooltool_client::progress::{Bars, Lines};
use tooltool_client::unpack::unpack;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Command {
    /// Add files to the manifest (hashing them).
    Add,
    /// List the manifest's files: present (P) and valid (V).
    List,
    /// Exit 0 when every file of the manifest is present and valid.
    Validate,
    /// Download the manifest's files (or those named) into the current folder.
    Fetch,
    /// Upload the manifest's files (from the current folder) as one batch.
    Upload,
    /// Change the visibility of the file `--digest` to `--visibility`.
    ChangeVisibility,
    /// Delete the stored copies of the file `--digest`.
    Delete,
    /// Empty the cache folder (`-c`), or with `-s`, remove its least recently used files until that many GB are free.
    Purge,
}

/// `tooltool.py`'s default server.
const DEFAULT_URL: &str = "https://tooltool.mozilla-releng.net/";

#[derive(Debug, Parser)]
// No `--version` of its own: tooltool.py's `--version` is a file's version.
#[command(about = "A fast tooltool client, a drop-in for tooltool.py")]
struct Cli {
    /// What to do.
    #[arg(value_enum)]
    command: Command,
    /// Files to add, or to fetch (default: all of the manifest).
    files: Vec<String>,
    /// A tooltool server's base URL; several are tried in order
    /// (default: tooltool.py's, https://tooltool.mozilla-releng.net/).
    #[arg(long = "url")]
    urls: Vec<String>,
    /// The manifest.
    #[arg(short = 'm', long, default_value = "manifest.tt")]
    manifest: PathBuf,
    /// A folder of downloaded files, shared by jobs on one machine.
    #[arg(short = 'c', long = "cache-folder")]
    cache_folder: Option<PathBuf>,
    /// A file holding a bearer token or Taskcluster credentials (JSON with
    /// clientId, accessToken and, when temporary, certificate); without it,
    /// TASKCLUSTER_CLIENT_ID, TASKCLUSTER_ACCESS_TOKEN and
    /// TASKCLUSTER_CERTIFICATE when set.
    #[arg(long = "authentication-file")]
    authentication_file: Option<PathBuf>,
    /// The region to download from or upload to (when the server has it).
    #[arg(short = 'r', long)]
    region: Option<String>,
    /// `add`: the files' visibility; `change-visibility`: the new one.
    #[arg(long, value_parser = ["public", "internal"])]
    visibility: Option<String>,
    /// `add`: a version string recorded in the files' entries.
    #[arg(long = "version")]
    file_version: Option<String>,
    /// `change-visibility`, `delete`: the file's SHA-512.
    #[arg(long)]
    digest: Option<String>,
    /// `upload`: why (the batch's message, e.g. "Bug 1234 - clang 18").
    #[arg(long)]
    message: Option<String>,
    /// `add`: mark the files to be unpacked after fetching.
    #[arg(long)]
    unpack: bool,
    /// The hashing algorithm (sha512 is the only one).
    #[arg(short = 'd', long = "algorithm", default_value = "sha512", value_parser = ["sha512"])]
    algorithm: String,
    /// Accepted and unused, as by tooltool.py.
    #[arg(short = 'o', long, hide = true)]
    overwrite: bool,
    /// `purge`: the free space wanted, in GB (0: remove everything).
    #[arg(short = 's', long, default_value_t = 0.0)]
    size: f64,
    /// Downloads at once.
    #[arg(short = 'j', long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: u16,
    /// Accepted, as by tooltool.py.
    #[arg(short = 'v', long, hide = true)]
    verbose: bool,
    /// Errors only.
    #[arg(short = 'q', long)]
    quiet: bool,
}

/// Where files are fetched to, read from and listed: the current folder,
/// as `tooltool.py` does (scripts run it in the build's folder with
/// `-m path/to/manifest.tt`).
fn here() -> PathBuf {
    PathBuf::from(".")
}

async fn add(cli: &Cli) -> Result<bool, String> {
    let mut manifest = if cli.manifest.exists() {
        Manifest::load(&cli.manifest)?
    } else {
        Manifest::default()
    };
    let mut records = Vec::new();
    for file in &cli.files {
        let path = Path::new(file);
        let meta = std::fs::metadata(path).map_err(|e| format!("{file}: {e}"))?;
        let record = FileRecord {
            filename: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or(format!("{file}: not a file"))?,
            size: meta.len(),
            algorithm: "sha512".into(),
            digest: hash_file(path).await.map_err(|e| format!("{file}: {e}"))?,
            unpack: cli.unpack,
            version: cli.file_version.clone(),
            visibility: cli.visibility.clone(),
        };
        record.check()?;
        records.push(record);
    }
    let (all, refusals) = manifest.add(records);
    for refusal in refusals {
        eprintln!("error: {refusal}");
    }
    manifest.save(&cli.manifest)?;
    Ok(all)
}

async fn list(cli: &Cli, print: bool) -> Result<bool, String> {
    let manifest = Manifest::load(&cli.manifest)?;
    let dir = here();
    let mut all = true;
    for record in &manifest.records {
        let path = dir.join(&record.filename);
        let present = path.is_file();
        let valid = present && matches_record(&path, record).await?;
        all &= valid;
        if print {
            println!(
                "{}\t{}\t{}",
                if present { "P" } else { "-" },
                if valid { "V" } else { "-" },
                record.filename
            );
        }
    }
    Ok(all)
}

fn urls(cli: &Cli) -> Vec<String> {
    if cli.urls.is_empty() {
        vec![DEFAULT_URL.to_owned()]
    } else {
        cli.urls.clone()
    }
}

fn credentials(cli: &Cli) -> Result<Credentials, String> {
    match &cli.authentication_file {
        Some(path) => {
            // `~` is expanded, as tooltool.py does (scripts pass it quoted).
            let path = match (path.strip_prefix("~"), std::env::var_os("HOME")) {
                (Ok(rest), Some(home)) => PathBuf::from(home).join(rest),
                _ => path.clone(),
            };
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            Credentials::from_file(&text).map_err(|e| format!("{}: {e}", path.display()))
        }
        None => Credentials::from_env(|name| std::env::var(name).ok()),
    }
}

async fn upload(cli: &Cli) -> Result<bool, String> {
    let message = cli.message.as_deref().ok_or("upload needs --message")?;
    let manifest = Manifest::load(&cli.manifest)?;
    let server = Server::new(&urls(cli)[0], credentials(cli)?)?;
    server
        .upload(
            &manifest,
            &here(),
            message,
            cli.region.as_deref(),
            usize::from(cli.jobs),
        )
        .await?;
    Ok(true)
}

async fn manage(cli: &Cli) -> Result<bool, String> {
    let digest = cli.digest.as_deref().ok_or("this command needs --digest")?;
    let server = Server::new(&urls(cli)[0], credentials(cli)?)?;
    if cli.command == Command::Delete {
        server.delete(digest).await?;
    } else {
        let visibility = cli
            .visibility
            .as_deref()
            .ok_or("change-visibility needs --visibility")?;
        server.change_visibility(digest, visibility).await?;
    }
    Ok(true)
}

async fn fetch(cli: &Cli) -> Result<bool, String> {
    let manifest = Manifest::load(&cli.manifest)?;
    let wanted: Vec<&FileRecord> = manifest
        .records
        .iter()
        .filter(|r| cli.files.is_empty() || cli.files.contains(&r.filename))
        .collect();
    let mut fetcher = Fetcher::new(&urls(cli), credentials(cli)?, cli.region.clone())?;
    fetcher.progress = if std::io::stderr().is_terminal() && !cli.quiet {
        Arc::new(Bars::new(&wanted))
    } else {
        Arc::new(Lines::new(cli.quiet))
    };
    let cache = cli.cache_folder.as_deref().map(Cache::open).transpose()?;
    let dir = here();
    let outcomes = fetcher
        .fetch_all(&wanted, &dir, cache.as_ref(), usize::from(cli.jobs))
        .await;
    drop(fetcher);
    let mut all = outcomes.iter().all(Result::is_ok);
    // Unpacked once every file is in place, as tooltool.py does.
    for (record, outcome) in wanted.iter().zip(&outcomes) {
        if record.unpack && outcome.is_ok() {
            let (dir, name) = (dir.clone(), record.filename.clone());
            match tokio::task::spawn_blocking(move || unpack(&dir, &name)).await {
                Ok(Ok(())) if !cli.quiet => eprintln!("{}: unpacked", record.filename),
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    eprintln!("error: {e}");
                    all = false;
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }
    Ok(all)
}

fn purge(cli: &Cli) -> Result<bool, String> {
    let folder = cli
        .cache_folder
        .as_deref()
        .ok_or("purge needs the cache folder (-c)")?;
    if !(cli.size.is_finite() && cli.size >= 0.0) {
        return Err("-s/--size: a number of GB, 0 or more".into());
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "checked finite and non-negative; saturates above u64::MAX"
    )]
    let free = (cli.size * 1024.0 * 1024.0 * 1024.0) as u64;
    let removed = Cache::open(folder)?.purge(free)?;
    if !cli.quiet {
        eprintln!("purge: {removed} files removed from {}", folder.display());
    }
    Ok(true)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Add => add(&cli).await,
        Command::List => list(&cli, true).await,
        Command::Validate => list(&cli, false).await,
        Command::Fetch => fetch(&cli).await,
        Command::Upload => upload(&cli).await,
        Command::ChangeVisibility | Command::Delete => manage(&cli).await,
        Command::Purge => purge(&cli),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
