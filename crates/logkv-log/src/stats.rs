//! Counters of the log's work, read by metrics and benchmarks.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Running totals since open.
#[derive(Debug, Default)]
pub struct LogStats {
    bytes_written: AtomicU64,
    writes: AtomicU64,
    syncs: AtomicU64,
    sync_nanos: AtomicU64,
}

/// A copy of [`LogStats`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogStatsSnapshot {
    /// Bytes written to segment files.
    pub bytes_written: u64,
    /// `write` calls made.
    pub writes: u64,
    /// `fdatasync` calls made.
    pub syncs: u64,
    /// Time spent in `fdatasync`.
    pub sync_nanos: u64,
}

impl LogStats {
    pub(crate) fn record_write(&self, bytes: u64, writes: u64) {
        self.bytes_written.fetch_add(bytes, Relaxed);
        self.writes.fetch_add(writes, Relaxed);
    }

    pub(crate) fn record_sync(&self, took: Duration) {
        self.syncs.fetch_add(1, Relaxed);
        self.sync_nanos.fetch_add(took.as_nanos() as u64, Relaxed);
    }

    /// The current totals.
    pub fn snapshot(&self) -> LogStatsSnapshot {
        LogStatsSnapshot {
            bytes_written: self.bytes_written.load(Relaxed),
            writes: self.writes.load(Relaxed),
            syncs: self.syncs.load(Relaxed),
            sync_nanos: self.sync_nanos.load(Relaxed),
        }
    }
}
