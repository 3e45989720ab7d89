//! The expiry sweep: at the start of every entry of protocol 5 or later,
//! apply deletes the keys whose expiry lies before the entry's log time,
//! so expired keys leave the index through ordinary tombstones, the
//! version-check horizon and compaction, and the digest drops their facts
//! at the same entry on every node (`docs/expiry.md`, "The sweep").
//!
//! Each stream keeps its own queue of expiring keys, earliest first, and
//! an entry deletes at most [`SWEEP_PER_STREAM`] keys of each stream (the
//! rest wait for the next entries), so one entry never grows without
//! bound, and a node watching fewer streams deletes exactly what a wider
//! one deletes on the streams both watch.

use crate::entry::State;

/// Most expired keys of one stream an entry deletes: a protocol constant,
/// the same on every node of a log. At one entry per group commit it lets
/// a stream shed this many expired keys per commit, and ticks keep it
/// going on an idle log.
pub const SWEEP_PER_STREAM: usize = 1024;

/// Deletes, at `version`, the keys due at log time `now` (expired before
/// it), at most [`SWEEP_PER_STREAM`] per stream, streams in order and each
/// stream's keys earliest expiry first.
pub(crate) fn sweep(state: &mut dyn State, version: u64, now: u64) {
    for stream in state.expiring_streams() {
        for key in state.due_expiries(&stream, now, SWEEP_PER_STREAM) {
            state.delete_expired(version, &stream, &key);
        }
    }
}
