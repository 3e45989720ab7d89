//! I/O failures of the node's writes, in the server's log. A client is
//! told of each write that failed; the operator must learn of a full disk
//! or a failing device too, but not once per write: the first failure of
//! an episode is logged with its error, later ones only counted, and the
//! first write that succeeds again ends the episode with one line saying
//! how many failed meanwhile. (After a failed sync the log is read-only
//! until the node is reopened: that episode lasts until the restart.)

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use logkv_log::LogError;
use logkv_runtime::node::NodeError;
use logkv_store::StoreError;
use parking_lot::Mutex;

/// Whether writes are failing on I/O, and since when.
#[derive(Debug, Default)]
pub struct IoFailures {
    /// Set while an episode lasts: a successful write takes the lock only
    /// then.
    failing: AtomicBool,
    episode: Mutex<Option<Episode>>,
}

#[derive(Debug)]
struct Episode {
    since: Instant,
    failures: u64,
}

impl IoFailures {
    /// Notes the outcome of a write: logs the first I/O failure of an
    /// episode and the first success after one. Errors that are the
    /// client's (a limit, a malformed entry) are not I/O failures.
    pub fn note<T>(&self, outcome: &Result<T, NodeError>) {
        match outcome {
            Ok(_) => {
                if self.failing.load(Ordering::Acquire) {
                    self.recovered();
                }
            }
            Err(e) if is_io(e) => {
                let mut episode = self.episode.lock();
                match episode.as_mut() {
                    Some(episode) => episode.failures += 1,
                    None => {
                        tracing::error!(
                            error = %e,
                            "a write failed on I/O; clients get an error for each write that fails, and this log one line when writes succeed again"
                        );
                        *episode = Some(Episode { since: Instant::now(), failures: 1 });
                        self.failing.store(true, Ordering::Release);
                    }
                }
            }
            Err(_) => {}
        }
    }

    fn recovered(&self) {
        let mut episode = self.episode.lock();
        if let Some(e) = episode.take() {
            self.failing.store(false, Ordering::Release);
            tracing::warn!(
                failed_writes = e.failures,
                lasted_ms = e.since.elapsed().as_millis() as u64,
                "writes succeed again after I/O failures"
            );
        }
    }
}

/// Whether `e` is the node's storage failing (an I/O error, or the log
/// read-only after one), possibly as the failure of a group commit.
fn is_io(e: &NodeError) -> bool {
    match e {
        NodeError::Store(StoreError::Log(LogError::Io { .. } | LogError::ReadOnly(_))) => true,
        NodeError::Batch(inner) => is_io(inner),
        _ => false,
    }
}
