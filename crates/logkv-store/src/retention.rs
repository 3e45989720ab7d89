//! Retention: which versions of a key compaction keeps.
//!
//! `versions` keeps each key's newest N versions; `duration` keeps every
//! version written within that time, plus the one each key had just
//! before it (so a read as of any version inside the window has its
//! answer). With both, a version stays if either keeps it; with neither,
//! nothing is dropped. The newest version of every key always stays.
//!
//! A deleted key is dropped whole in the plain API's keyspace when
//! `duration` is set and its delete is older than the window: the newest
//! such delete then becomes the store's horizon, below which every read is
//! "compacted" (the dropped key might have had a value there). In the
//! runtime's keyspaces a delete is a write whose version later
//! transactions compare with, so it stays until it is older than the
//! runtime's version-check horizon (`tombstone_horizon` positions before
//! the compaction's cut): no transaction may compare with it then, and
//! the runtime rejects one that tries. It is then dropped the same way,
//! if retention keeps no older version of the key (one version kept, or
//! the delete older than the window), so deleted keys stop costing index
//! memory.

use std::time::Duration;

use crate::store::DEFAULT_KEYSPACE;

/// How much history stays readable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Keep at least this many newest versions of every key (at least 1).
    pub versions: Option<u32>,
    /// Keep every version written within this long.
    pub duration: Option<Duration>,
    /// Log positions (set by the runtime node: its version-check horizon)
    /// after which a delete in a keyspace other than 0 may be dropped
    /// whole; `None`: never.
    pub tombstone_horizon: Option<u64>,
}

impl Retention {
    /// Whether anything at all may be dropped.
    pub fn drops_history(&self) -> bool {
        self.versions.is_some() || self.duration.is_some()
    }

    /// Checks the settings make sense.
    pub fn validate(&self) -> Result<(), String> {
        if self.versions == Some(0) {
            return Err("retain_versions must be at least 1 (the newest version always stays)".into());
        }
        Ok(())
    }
}

/// Retention applied to one compaction: the versions a key keeps.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Keep {
    /// Newest versions kept per key (`u64::MAX`: all).
    pub(crate) versions: u64,
    /// Versions at or above this are inside the time window (`u64::MAX`:
    /// no window).
    pub(crate) window_start: u64,
    /// Deletes below this version in the runtime's keyspaces are past the
    /// version-check horizon (0: none is).
    tombstones_below: u64,
}

/// Bits below a position in an applied record's versions
/// (`position << 16 | index`).
const TX_INDEX_BITS: u32 = 16;

impl Keep {
    /// Retention for a compaction whose range ends at `last_position`.
    pub(crate) fn new(retention: &Retention, window_start: Option<u64>, last_position: u64) -> Self {
        let versions = match (retention.versions, retention.duration) {
            (Some(n), _) => n.into(),
            (None, Some(_)) => 0,
            (None, None) => u64::MAX,
        };
        let tombstones_below = retention
            .tombstone_horizon
            .and_then(|h| last_position.checked_sub(h))
            .map_or(0, |p| p.saturating_mul(1 << TX_INDEX_BITS));
        Self { versions, window_start: window_start.unwrap_or(u64::MAX), tombstones_below }
    }

    /// Whether the `nth` newest version of a key in the compacted range (1 =
    /// its newest there, which always stays: versions after the range may
    /// not be durable yet) at `version` stays.
    /// `base_taken` says whether an older-than-window version was already
    /// kept as the key's state at the window's start.
    pub(crate) fn keeps(&self, nth: u64, version: u64, base_taken: bool) -> bool {
        let window = self.window_start != u64::MAX;
        nth == 1 || nth <= self.versions || (window && (version >= self.window_start || !base_taken))
    }

    /// Whether retention keeps rows of replaced records beyond the last one:
    /// when it keeps everything, or a time window.
    pub(crate) fn keeps_rows(&self) -> bool {
        self.versions == u64::MAX || self.window_start != u64::MAX
    }

    /// Whether the row of a replaced record with version tag `version`
    /// stays (the range's last row always does).
    pub(crate) fn keeps_row(&self, version: u64) -> bool {
        self.versions == u64::MAX || version >= self.window_start
    }

    /// Whether a key whose newest version is a delete at `version` in
    /// `keyspace` is dropped whole.
    pub(crate) fn drops_deleted(&self, keyspace: u32, version: u64) -> bool {
        let window = self.window_start != u64::MAX;
        if keyspace == DEFAULT_KEYSPACE {
            return window && version < self.window_start;
        }
        // Retention keeps a version if either rule does: the key may go
        // only when the count keeps just its newest (the delete) and the
        // window, if any, has passed the delete.
        let nothing_older_kept = self.versions <= 1 && (!window || version < self.window_start);
        version < self.tombstones_below && nothing_older_kept
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A compaction ending at position 100 with a tombstone horizon of 10
    /// positions: runtime deletes below version 90 << 16 may go.
    fn keep(versions: Option<u32>, window_start: Option<u64>) -> Keep {
        let duration = window_start.map(|_| Duration::from_secs(60));
        let retention = Retention { versions, duration, tombstone_horizon: Some(10) };
        Keep::new(&retention, window_start, 100)
    }

    #[test]
    fn a_runtime_delete_goes_only_where_every_rule_lets_its_history_go() {
        let old = 80 << TX_INDEX_BITS;
        let recent = 95 << TX_INDEX_BITS;
        assert!(keep(Some(1), None).drops_deleted(2, old));
        assert!(!keep(Some(1), None).drops_deleted(2, recent), "inside the horizon");
        assert!(!keep(Some(3), None).drops_deleted(2, old), "the count keeps older versions");
        assert!(!keep(None, None).drops_deleted(2, old), "no retention keeps everything");
        assert!(keep(None, Some(85 << TX_INDEX_BITS)).drops_deleted(2, old), "before the window");
        assert!(!keep(None, Some(70 << TX_INDEX_BITS)).drops_deleted(2, old), "inside the window");
        assert!(!keep(Some(3), Some(85 << TX_INDEX_BITS)).drops_deleted(2, old), "the count keeps it");
        assert!(keep(Some(1), Some(85 << TX_INDEX_BITS)).drops_deleted(2, old));
    }
}
