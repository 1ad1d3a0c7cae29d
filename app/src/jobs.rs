//! The background jobs (PROTOCOL.md §3): the in-process scheduler and their
//! one-shot forms for the CLI, both through [`Job::run_once`]. Every job
//! is safe to run in several processes at once: the metadata store hands
//! out exclusive claims.

use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tooltool_ports::UseCaseError;

use crate::service::{Service, Verified};

/// Items claimed per job run.
const BATCH: usize = 64;

/// One of the background jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// Verifies pending uploads whose client never called `upload/complete`.
    Verify,
    /// Copies files to every configured region that lacks them.
    Replicate,
    /// Drops abandoned slots and stray staging objects.
    Sweep,
}

impl Job {
    pub const ALL: [Job; 3] = [Job::Verify, Job::Replicate, Job::Sweep];

    /// The job's name in logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Job::Verify => "verify",
            Job::Replicate => "replicate",
            Job::Sweep => "sweep",
        }
    }

    /// The subcommand that runs it once (the originals' names).
    pub fn command(self) -> &'static str {
        match self {
            Job::Verify => "check-pending-uploads",
            Job::Replicate => "replicate",
            Job::Sweep => "sweep",
        }
    }

    fn interval(self, config: &crate::config::Jobs) -> Duration {
        match self {
            Job::Verify => config.verify_interval,
            Job::Replicate => config.replicate_interval,
            Job::Sweep => config.sweep_interval,
        }
    }

    /// Runs the job once, recording its duration and result.
    ///
    /// # Errors
    /// When the run as a whole failed (items that failed are counted in
    /// the report).
    pub async fn run_once(self, service: &Service) -> Result<Report, UseCaseError> {
        let started = std::time::Instant::now();
        let result = match self {
            Job::Verify => verify_rounds(service).await,
            Job::Replicate => replicate_rounds(service).await,
            Job::Sweep => sweep(service).await,
        };
        match &result {
            Ok(report) if *report != Report::default() => {
                tracing::info!(job = self.name(), %report, "job ran");
            }
            Ok(_) => {}
            Err(e) => tracing::error!(
                job = self.name(),
                error = e as &(dyn std::error::Error + 'static),
                "job failed"
            ),
        }
        let ok = result.as_ref().is_ok_and(|r| r.failed == 0);
        service
            .metrics()
            .job_run(self.name(), started.elapsed().as_secs_f64(), ok);
        result
    }
}

/// Running job loops.
pub struct Jobs {
    cancel: CancellationToken,
    tasks: JoinSet<()>,
}

impl Jobs {
    /// Stops the loops at a safe point: a run in progress finishes first.
    pub async fn stop(mut self) {
        self.cancel.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Starts a loop per job whose interval is not zero.
pub fn spawn(service: &Service, config: &crate::config::Jobs) -> Jobs {
    let cancel = CancellationToken::new();
    let mut tasks = JoinSet::new();
    for job in Job::ALL {
        let period = job.interval(config);
        if period.is_zero() {
            tracing::info!(job = job.name(), "disabled");
            continue;
        }
        let (cancel, service) = (cancel.clone(), service.clone());
        tasks.spawn(async move {
            let mut ticker = tokio::time::interval(period);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    // Failures are logged and counted by run_once; the loop goes on.
                    _ = ticker.tick() => { let _ = job.run_once(&service).await; }
                }
            }
        });
    }
    Jobs { cancel, tasks }
}

/// Summary of a job run, printed by the CLI forms.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub done: usize,
    pub rejected: usize,
    pub waiting: usize,
    pub failed: usize,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} done, {} rejected, {} waiting, {} failed",
            self.done, self.rejected, self.waiting, self.failed
        )
    }
}

/// Verifies every due pending upload, in rounds of [`BATCH`].
async fn verify_rounds(service: &Service) -> Result<Report, UseCaseError> {
    let mut report = Report::default();
    loop {
        let results = service.verify_pending(BATCH).await?;
        let n = results.len();
        for (slot, result) in results {
            match result {
                Ok(Verified::Valid) => report.done += 1,
                Ok(Verified::Rejected(_)) => report.rejected += 1,
                Ok(Verified::NotYet) => report.waiting += 1,
                Err(e) => {
                    tracing::warn!(slot = %slot.key, error = &e as &(dyn std::error::Error + 'static), "verification failed");
                    report.failed += 1;
                }
            }
        }
        // Slots with nothing to judge are released and would be claimed
        // again at once; one pass per run is enough for them.
        if n < BATCH || report.waiting > 0 {
            return Ok(report);
        }
        tracing::info!(%report, "verification in progress");
    }
}

/// Replicates every file missing from a region, in rounds of [`BATCH`].
async fn replicate_rounds(service: &Service) -> Result<Report, UseCaseError> {
    let mut report = Report::default();
    loop {
        let results = service.replicate(BATCH).await?;
        if results.is_empty() {
            return Ok(report);
        }
        for (_, _, result) in results {
            match result {
                Ok(()) => report.done += 1,
                Err(_) => report.failed += 1,
            }
        }
        tracing::info!(%report, "replication in progress");
    }
}

async fn sweep(service: &Service) -> Result<Report, UseCaseError> {
    Ok(Report {
        done: service.sweep().await?,
        ..Report::default()
    })
}
