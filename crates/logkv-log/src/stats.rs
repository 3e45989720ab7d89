//! Counters of the log's work, read by metrics and benchmarks.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Buckets of the power-of-two histograms: bucket `i` counts observations
/// of at most `2^i` (the last one, everything larger).
pub const BUCKETS: usize = 32;

/// Running totals since open.
#[derive(Debug, Default)]
pub struct LogStats {
    bytes_written: AtomicU64,
    writes: AtomicU64,
    syncs: AtomicU64,
    sync_nanos: AtomicU64,
    sync_micros: Pow2Histogram,
    group_records: Pow2Histogram,
    group_bytes: Pow2Histogram,
}

/// Counts of observations by power of two.
#[derive(Debug, Default)]
struct Pow2Histogram {
    buckets: [AtomicU64; BUCKETS],
    sum: AtomicU64,
}

impl Pow2Histogram {
    fn observe(&self, value: u64) {
        let i = (u64::BITS - value.saturating_sub(1).leading_zeros()) as usize;
        self.buckets[i.min(BUCKETS - 1)].fetch_add(1, Relaxed);
        self.sum.fetch_add(value, Relaxed);
    }

    fn snapshot(&self) -> [u64; BUCKETS] {
        std::array::from_fn(|i| self.buckets[i].load(Relaxed))
    }
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
    /// `fdatasync` calls by duration in microseconds: bucket `i` counts
    /// those of at most `2^i` µs (non-cumulative).
    pub sync_micros: [u64; BUCKETS],
    /// Group commits by the records they made durable: bucket `i` counts
    /// the syncs that covered at most `2^i` records written since the
    /// previous sync (non-cumulative).
    pub group_records: [u64; BUCKETS],
    /// Group commits by the bytes they made durable, bucketed likewise.
    pub group_bytes: [u64; BUCKETS],
    /// Records made durable by group commits (the sum of `group_records`).
    pub group_records_sum: u64,
    /// Bytes made durable by group commits (the sum of `group_bytes`).
    pub group_bytes_sum: u64,
}

impl LogStats {
    pub(crate) fn record_write(&self, bytes: u64, writes: u64) {
        self.bytes_written.fetch_add(bytes, Relaxed);
        self.writes.fetch_add(writes, Relaxed);
    }

    pub(crate) fn record_sync(&self, took: Duration) {
        self.syncs.fetch_add(1, Relaxed);
        self.sync_nanos.fetch_add(took.as_nanos() as u64, Relaxed);
        self.sync_micros.observe(took.as_micros() as u64);
    }

    /// One group commit: a sync that made `records` records of `bytes`
    /// bytes durable, written since the previous sync.
    pub(crate) fn record_group(&self, records: u64, bytes: u64) {
        self.group_records.observe(records);
        self.group_bytes.observe(bytes);
    }

    /// The current totals.
    pub fn snapshot(&self) -> LogStatsSnapshot {
        LogStatsSnapshot {
            bytes_written: self.bytes_written.load(Relaxed),
            writes: self.writes.load(Relaxed),
            syncs: self.syncs.load(Relaxed),
            sync_nanos: self.sync_nanos.load(Relaxed),
            sync_micros: self.sync_micros.snapshot(),
            group_records: self.group_records.snapshot(),
            group_bytes: self.group_bytes.snapshot(),
            group_records_sum: self.group_records.sum.load(Relaxed),
            group_bytes_sum: self.group_bytes.sum.load(Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_of_two_buckets_hold_values_up_to_their_bound() {
        let h = Pow2Histogram::default();
        for v in [0, 1, 2, 3, 4, 5, 1024, 1025, 1 << 40] {
            h.observe(v);
        }
        let b = h.snapshot();
        assert_eq!((b[0], b[1], b[2], b[3]), (2, 1, 2, 1), "0 and 1 | 2 | 3, 4 | 5");
        assert_eq!((b[10], b[11]), (1, 1), "1024 | 1025");
        assert_eq!(b[BUCKETS - 1], 1, "everything larger in the last");
        assert_eq!(b.iter().sum::<u64>(), 9);
    }
}
