//! Repairing a shared-log node's data directory from its stream: the
//! runtime's [`logkv_runtime::repair`] fed by the node's [`SharedLog`],
//! run by `logkv repair` and by `logkv serve` when strict open finds
//! damage (docs/distributed.md, "Repair").

use logkv_runtime::apply::Watched;
use logkv_runtime::repair::{self, EntrySource, RepairError, RepairReport};
use logkv_runtime::shared_log::{Follower, LogEntry, SharedLog, SharedLogError};

use crate::config::ServeConfig;
use crate::shared_log;

/// Entries handed over at once while fetching.
const FETCH_BATCH: usize = 1024;

/// A shared log read by position, with the node's watched streams, so it
/// hands over what the node's follower did.
pub struct StreamEntries<'a, L> {
    log: &'a L,
    watched: Watched,
}

impl<'a, L: SharedLog> StreamEntries<'a, L> {
    /// Reads `log` as a node watching `watched` does.
    pub fn new(log: &'a L, watched: Watched) -> Self {
        Self { log, watched }
    }
}

impl<L: SharedLog> EntrySource for StreamEntries<'_, L> {
    fn entries(&self, from: u64, through: u64) -> Result<Vec<LogEntry>, SharedLogError> {
        let fetch = async {
            let mut follower = self.log.follow(from, &self.watched);
            let mut entries = Vec::new();
            loop {
                let batch = follower.next(FETCH_BATCH).await?;
                entries.extend(batch.entries.into_iter().take_while(|e| e.position <= through));
                if batch.through >= through {
                    return Ok(entries);
                }
            }
        };
        shared_log::block_on(fetch).map_err(|e| SharedLogError::Unavailable(format!("runtime: {e}")))?
    }
}

/// Repairs the stopped node's directory `config` names from `log`,
/// logging each stretch written again.
pub fn repair_from(config: &ServeConfig, log: &impl SharedLog) -> Result<RepairReport, RepairError> {
    let source = StreamEntries::new(log, config.watched());
    let report = repair::repair(&config.node_options(), &config.store.data_dir, &source)?;
    log_repaired(&report);
    Ok(report)
}

/// Logs each stretch written again.
pub fn log_repaired(report: &RepairReport) {
    for r in &report.repaired {
        tracing::warn!(
            file = %r.file.display(),
            offset = r.offset,
            bytes = r.bytes,
            positions = ?r.positions,
            stream_positions = ?r.stream_positions,
            "repaired damaged records from the shared log, byte for byte"
        );
    }
}
