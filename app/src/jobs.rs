//! The in-process scheduler of the background jobs (PROTOCOL.md §3), and
//! their one-shot forms for the CLI. Every job is safe to run in several
//! processes at once: the metadata store hands out exclusive claims.

use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::Resolved;
use crate::service::{Service, Verified};

/// Items claimed per job run.
const BATCH: usize = 64;

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

fn every<F, Fut>(
    tasks: &mut JoinSet<()>,
    cancel: &CancellationToken,
    name: &'static str,
    period: Duration,
    run: F,
) where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    if period.is_zero() {
        tracing::info!(job = name, "disabled");
        return;
    }
    let cancel = cancel.clone();
    tasks.spawn(async move {
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = ticker.tick() => run().await,
            }
        }
    });
}

pub fn spawn(service: &Service, config: &Resolved) -> Jobs {
    let cancel = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let s = service.clone();
    every(
        &mut tasks,
        &cancel,
        "verify",
        config.verify_interval,
        move || {
            let s = s.clone();
            async move {
                let _ = verify_once(&s).await;
            }
        },
    );
    let s = service.clone();
    every(
        &mut tasks,
        &cancel,
        "replicate",
        config.replicate_interval,
        move || {
            let s = s.clone();
            async move {
                let _ = replicate_once(&s).await;
            }
        },
    );
    let s = service.clone();
    every(
        &mut tasks,
        &cancel,
        "sweep",
        config.sweep_interval,
        move || {
            let s = s.clone();
            async move {
                let _ = sweep_once(&s).await;
            }
        },
    );
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
/// Runs a job once, recording its duration and result.
async fn timed<F: std::future::Future<Output = Result<Report, String>>>(
    service: &Service,
    job: &'static str,
    run: F,
) -> Result<Report, String> {
    let started = std::time::Instant::now();
    let result = run.await;
    let ok = result.as_ref().is_ok_and(|r| r.failed == 0);
    service
        .metrics()
        .job_run(job, started.elapsed().as_secs_f64(), ok);
    result
}

pub async fn verify_once(service: &Service) -> Result<Report, String> {
    timed(service, "verify", verify_rounds(service)).await
}

pub async fn replicate_once(service: &Service) -> Result<Report, String> {
    timed(service, "replicate", replicate_rounds(service)).await
}

pub async fn sweep_once(service: &Service) -> Result<Report, String> {
    timed(service, "sweep", sweep_run(service)).await
}

async fn verify_rounds(service: &Service) -> Result<Report, String> {
    let mut report = Report::default();
    loop {
        let results = service.verify_pending(BATCH).await.map_err(|e| {
            tracing::error!(error = %e, "verification job failed");
            e.to_string()
        })?;
        let n = results.len();
        for (slot, result) in results {
            match result {
                Ok(Verified::Valid) => report.done += 1,
                Ok(Verified::Rejected(_)) => report.rejected += 1,
                Ok(Verified::NotYet) => report.waiting += 1,
                Err(e) => {
                    tracing::warn!(slot = %slot.key, error = %e, "verification failed");
                    report.failed += 1;
                }
            }
        }
        // Slots with nothing to judge are released and would be claimed
        // again at once; one pass per run is enough for them.
        if n < BATCH || report.waiting > 0 {
            break;
        }
        tracing::info!(%report, "verification in progress");
    }
    if report != Report::default() {
        tracing::info!(%report, "verification job ran");
    }
    Ok(report)
}

async fn replicate_rounds(service: &Service) -> Result<Report, String> {
    let mut report = Report::default();
    loop {
        let results = service.replicate(BATCH).await.map_err(|e| {
            tracing::error!(error = %e, "replication job failed");
            e.to_string()
        })?;
        let n = results.len();
        for (_, _, result) in results {
            match result {
                Ok(()) => report.done += 1,
                Err(_) => report.failed += 1,
            }
        }
        if n == 0 {
            break;
        }
        tracing::info!(%report, "replication in progress");
    }
    if report != Report::default() {
        tracing::info!(%report, "replication job ran");
    }
    Ok(report)
}

async fn sweep_run(service: &Service) -> Result<Report, String> {
    let deleted = service.sweep().await.map_err(|e| {
        tracing::error!(error = %e, "sweep job failed");
        e.to_string()
    })?;
    if deleted > 0 {
        tracing::info!(deleted, "sweep job ran");
    }
    Ok(Report {
        done: deleted,
        ..Report::default()
    })
}
