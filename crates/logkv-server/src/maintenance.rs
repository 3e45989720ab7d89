//! Checkpoints and compactions of a running node. A task asks the store
//! about once a second to run whichever job is due (`Store::maintain`) on
//! the blocking pool; `admin_checkpoint` and `admin_compact` run one on
//! demand. Each job done is logged with its figures and counted for
//! `/metrics`, and a job still running is reported every
//! [`PROGRESS_EVERY`], so a long compaction is never silent.
//!
//! A job cannot be interrupted: shutdown waits for the running one before
//! the node closes. A failed job is logged and tried again after a pause
//! that doubles up to `MAX_PAUSE`; once the log is read-only (a failed
//! sync) nothing can be written until a restart, so maintenance stops.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use logkv_store::{CheckpointReport, CompactionReport, MaintenanceDone};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::shared::Shared;

/// Pause between two looks at whether a job is due.
const TICK: Duration = Duration::from_secs(1);

/// Longest pause after failed jobs.
const MAX_PAUSE: Duration = Duration::from_secs(60);

/// Most time between two log lines about a running job.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Runs due jobs until shutdown, then returns once the running one is done.
pub async fn run(shared: Arc<Shared>) {
    let mut pause = TICK;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shared.shutdown.cancelled() => return,
        }
        let node = shared.node.clone();
        let keys = Arc::new(KeysDone::default());
        let progress = keys.clone();
        let job = tokio::task::spawn_blocking(move || {
            node.store().maintain_with_progress(&mut |done, total| progress.update(done, total))
        });
        match wait(job, &Running::Due(keys), &shared.shutdown).await {
            Ok(None) => pause = TICK,
            Ok(Some(MaintenanceDone::Checkpoint(report))) => {
                checkpointed(&shared, &report);
                pause = TICK;
            }
            Ok(Some(MaintenanceDone::Compaction(report))) => {
                compacted(&shared, &report);
                pause = TICK;
            }
            Err(e) => {
                if let Some(why) = shared.node.store().log().failure() {
                    tracing::error!(error = %e, why, "maintenance stops: the log is read-only until the node restarts");
                    return;
                }
                pause = (pause * 2).min(MAX_PAUSE);
                tracing::error!(error = %e, retry_in_s = pause.as_secs(), "maintenance failed; trying again later");
            }
        }
    }
}

/// What a job waited for is, for its progress lines.
pub enum Running {
    /// Whichever job `Store::maintain` found due (a compaction reports the
    /// keys it walked; a checkpoint nothing).
    Due(Arc<KeysDone>),
    /// A job on demand: `checkpoint`, `export`.
    Job(&'static str),
    /// A compaction, with the keys it has walked so far.
    Compaction(Arc<KeysDone>),
}

/// Keys a running compaction has walked, of how many.
#[derive(Debug, Default)]
pub struct KeysDone {
    done: AtomicU64,
    total: AtomicU64,
}

impl KeysDone {
    /// Records `Store::compact`'s progress.
    pub fn update(&self, done: u64, total: u64) {
        self.done.store(done, Relaxed);
        self.total.store(total, Relaxed);
    }
}

/// Waits for `job`, logging every [`PROGRESS_EVERY`] that it still runs
/// (and once that shutdown waits for it).
pub async fn wait<T>(mut job: JoinHandle<T>, running: &Running, shutdown: &CancellationToken) -> T {
    let started = Instant::now();
    let mut told_shutdown = false;
    loop {
        tokio::select! {
            done = &mut job => return done.expect("store maintenance does not panic"),
            _ = tokio::time::sleep(PROGRESS_EVERY) => progress(running, started.elapsed()),
            _ = shutdown.cancelled(), if !told_shutdown => {
                told_shutdown = true;
                tracing::info!("shutting down once the running maintenance job finishes");
            }
        }
    }
}

fn progress(running: &Running, took: Duration) {
    let running_s = took.as_secs();
    match running {
        Running::Job(what) => tracing::info!(running_s, "{what} still running"),
        Running::Due(keys) if keys.total.load(Relaxed) == 0 => {
            tracing::info!(running_s, "maintenance job (checkpoint or compaction) still running")
        }
        Running::Due(keys) | Running::Compaction(keys) => {
            let (done, total) = (keys.done.load(Relaxed), keys.total.load(Relaxed));
            let pct = if total == 0 { 0.0 } else { done as f64 * 100.0 / total as f64 };
            tracing::info!(running_s, keys_done = done, keys = total, "compacting: {pct:.0}% of the keys");
        }
    }
}

/// Logs and counts a checkpoint written.
pub fn checkpointed(shared: &Shared, report: &CheckpointReport) {
    shared.metrics.checkpointed();
    tracing::info!(
        position = report.position,
        version = report.version,
        keys = report.keys,
        bytes = report.bytes,
        took_ms = report.elapsed.as_millis() as u64,
        path = %report.path.display(),
        "checkpoint written"
    );
}

/// Logs and counts a compaction done.
pub fn compacted(shared: &Shared, report: &CompactionReport) {
    shared.metrics.compacted(report);
    tracing::info!(
        through = report.compacted_through,
        input_bytes = report.input_bytes,
        output_bytes = report.output_bytes,
        keys = report.keys,
        versions_kept = report.versions_kept,
        histories_cut = report.histories_cut,
        keys_dropped = report.keys_dropped,
        horizon = report.horizon,
        took_ms = report.elapsed.as_millis() as u64,
        "log compacted"
    );
}
