//! Reads of a node, each "as of" a version (default: the newest visible):
//! values, iteration that skips deleted keys, permissions from the stored
//! access-control facts, holding streams, and from the applied records
//! results and digests.

use logkv_store::{AppliedRecord, HistoryEntry, ScanOptions, StoreError, ValueLocation};

use std::sync::atomic::Ordering;

use super::{bad, now_ms, KeyValue, Node, NodeError, Result};
use crate::annex;
use crate::apply::expired;
use crate::digest::StateDigest;
use crate::system::{
    expiry_key, expiry_of, flush_key, stream_of_key, u64_of, FactOf, STREAM_PREFIX, SYSTEM_KEYSPACE,
};
use crate::types::{tx_version, version_position, Address, StreamId};

impl Node {
    fn keyspace(&self, stream: &StreamId) -> Option<u32> {
        self.streams.read().get(stream).copied()
    }

    /// The version of `stream`'s flush in force as of `version` (default:
    /// the newest, from memory); 0 if it was never flushed. A key whose
    /// newest version as of then is older is absent.
    pub fn flush_version(&self, stream: &StreamId, version: Option<u64>) -> Result<u64> {
        let Some(version) = version.filter(|v| *v != u64::MAX) else {
            return Ok(self.flushes.read().get(stream).copied().unwrap_or(0));
        };
        let found = self.store.get_at_in(SYSTEM_KEYSPACE, &flush_key(stream), version)?;
        Ok(found.and_then(|v| u64_of(&v.data)).unwrap_or(0))
    }

    /// The value of `key` in `stream` as of `version` (default: the newest
    /// visible), with the version that wrote it; an expired value is no
    /// value ([`Node::read_time_ms`]), nor is one older than the stream's
    /// flush in force then.
    pub fn get(&self, stream: &StreamId, key: &[u8], version: Option<u64>) -> Result<Option<(Vec<u8>, u64)>> {
        let Some(ks) = self.keyspace(stream) else {
            return Ok(None);
        };
        let Some(v) = self.store.get_at_in(ks, key, version.unwrap_or(u64::MAX))? else {
            return Ok(None);
        };
        if v.version < self.flush_version(stream, version)? {
            return Ok(None);
        }
        if expired(self.expires_at(stream, key, version)?, self.read_time_ms(version)) {
            return Ok(None);
        }
        Ok(Some((v.data, v.version)))
    }

    /// The expiry (Unix milliseconds) of `key`'s value as of `version`,
    /// expired or not; `None` if it has none.
    pub fn expires_at(&self, stream: &StreamId, key: &[u8], version: Option<u64>) -> Result<Option<u64>> {
        if !self.expiries.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let found =
            self.store.get_at_in(SYSTEM_KEYSPACE, &expiry_key(stream, key), version.unwrap_or(u64::MAX))?;
        // An expiry older than the stream's flush was a flushed value's.
        let Some(found) = found else {
            return Ok(None);
        };
        if found.version < self.flush_version(stream, version)? {
            return Ok(None);
        }
        Ok(expiry_of(&found.data))
    }

    /// The log time of the newest applied record.
    pub fn applied_log_time_ms(&self) -> u64 {
        self.applied_time_ms.load(Ordering::Relaxed)
    }

    /// How many keys of `stream` have an expiry in the newest applied
    /// state, expired ones the sweep has not deleted yet included (Redis's
    /// `expires=`): a counter kept by apply, read in O(log streams).
    pub fn expiring_keys(&self, stream: &StreamId) -> u64 {
        self.queues.read().counts.get(stream).copied().unwrap_or(0)
    }

    /// Whether any key of any stream has an expiry, so entries of
    /// protocol 5 would sweep it: while one does, the node signs its
    /// entries in protocol 5 and ticks when idle (docs/expiry.md).
    pub fn has_queued_expiries(&self) -> bool {
        !self.queues.read().counts.is_empty()
    }

    /// The time a read as of `version` judges expiry by. The newest state
    /// (no version, or one of the newest visible record): the later of this node's clock and the newest applied log time, so
    /// a node whose clock lags never serves what the log already expired,
    /// and one whose log lags (an idle log) still expires on time. An
    /// earlier version: its record's log time, the same on every node
    /// (the newest state's time if the record's is no longer kept: a read
    /// of that version then fails as compacted anyway).
    pub fn read_time_ms(&self, version: Option<u64>) -> u64 {
        let newest = || now_ms().max(self.applied_time_ms.load(Ordering::Relaxed));
        match version.filter(|v| version_position(*v) < self.store.visible_position()) {
            Some(v) => self.store.time_of_position(version_position(v)).ok().flatten().unwrap_or_else(newest),
            None => newest(),
        }
    }

    /// Where the bytes of a value live (the file and offset inside the
    /// logged entry that wrote it, unless the node computed it).
    pub fn locate_value(
        &self,
        stream: &StreamId,
        key: &[u8],
        version: Option<u64>,
    ) -> Result<Option<ValueLocation>> {
        let Some(ks) = self.keyspace(stream) else {
            return Ok(None);
        };
        Ok(self.store.locate_in(ks, key, version.unwrap_or(u64::MAX))?)
    }

    fn first_in_range(
        &self,
        stream: &StreamId,
        options: ScanOptions,
        version: Option<u64>,
    ) -> Result<Option<KeyValue>> {
        self.scan(stream, options.at(version.unwrap_or(u64::MAX))).next().transpose()
    }

    /// The smallest live key of `stream` as of `version`.
    pub fn first(&self, stream: &StreamId, version: Option<u64>) -> Result<Option<KeyValue>> {
        self.first_in_range(stream, ScanOptions::default(), version)
    }

    /// The largest live key of `stream` as of `version`.
    pub fn last(&self, stream: &StreamId, version: Option<u64>) -> Result<Option<KeyValue>> {
        self.first_in_range(stream, ScanOptions::default().reverse(), version)
    }

    /// The first live key after `key` (or at it, if `inclusive`) as of
    /// `version`. Deleted keys are skipped, the one at `key` included.
    pub fn next(
        &self,
        stream: &StreamId,
        key: &[u8],
        inclusive: bool,
        version: Option<u64>,
    ) -> Result<Option<KeyValue>> {
        let start = bound(key, inclusive);
        self.first_in_range(stream, ScanOptions { start, ..ScanOptions::default() }, version)
    }

    /// The last live key before `key` (or at it, if `inclusive`) as of `version`.
    pub fn prev(
        &self,
        stream: &StreamId,
        key: &[u8],
        inclusive: bool,
        version: Option<u64>,
    ) -> Result<Option<KeyValue>> {
        let end = bound(key, inclusive);
        self.first_in_range(stream, ScanOptions { end, ..ScanOptions::default() }.reverse(), version)
    }

    /// The live keys of `stream` that `options` selects (range or prefix,
    /// direction, limit, `at` version; default: the newest visible), in
    /// key order (reversed if asked). Deleted, expired and flushed keys
    /// are skipped (a `limit` counts the keys scanned, those included).
    pub fn scan(
        &self,
        stream: &StreamId,
        options: ScanOptions,
    ) -> impl Iterator<Item = Result<KeyValue>> + '_ {
        let at = options.at.filter(|v| *v != u64::MAX);
        let now = self.read_time_ms(at);
        let (flushed, failed) = match self.flush_version(stream, at) {
            Ok(v) => (v, None),
            Err(e) => (u64::MAX, Some(Err(e))),
        };
        let found =
            self.keyspace(stream).filter(|_| failed.is_none()).map(|ks| self.store.scan_in(ks, options));
        let stream = *stream;
        failed.into_iter().chain(found.into_iter().flatten().filter_map(move |item| {
            let (key, v) = match item {
                Ok(kv) => kv,
                Err(e) => return Some(Err(e.into())),
            };
            if v.version < flushed {
                return None;
            }
            match self.expires_at(&stream, &key, at) {
                Ok(expiry) if expired(expiry, now) => None,
                Ok(_) => Some(Ok(KeyValue { key, value: v.data, version: v.version })),
                Err(e) => Some(Err(e)),
            }
        }))
    }

    /// Every visible version of `key` in `stream`, newest first: puts and
    /// deletes, with the value's length.
    pub fn history(&self, stream: &StreamId, key: &[u8]) -> Result<Vec<HistoryEntry>> {
        match self.keyspace(stream) {
            None => Ok(Vec::new()),
            Some(ks) => Ok(self.store.history_in(ks, key)?),
        }
    }

    /// The stored value of an access-control fact as of `version`, if it held.
    fn fact(&self, fact: &FactOf, version: Option<u64>) -> Result<bool> {
        let v = self.store.get_at_in(SYSTEM_KEYSPACE, &fact.key(), version.unwrap_or(u64::MAX))?;
        Ok(v.is_some_and(|v| fact.matches(&v.data)))
    }

    /// Whether `stream` had no access-control history as of `version`.
    pub fn is_new_stream(&self, stream: &StreamId, version: Option<u64>) -> Result<bool> {
        Ok(!self.fact(&FactOf::Claimed(*stream), version)?)
    }

    /// Whether `account` was an admin of `stream` as of `version`.
    pub fn is_admin(&self, account: &Address, stream: &StreamId, version: Option<u64>) -> Result<bool> {
        self.fact(&FactOf::Admin(*stream, *account), version)
    }

    /// Whether `account` was a writer of `stream` as of `version`.
    pub fn is_writer_of_stream(
        &self,
        account: &Address,
        stream: &StreamId,
        version: Option<u64>,
    ) -> Result<bool> {
        self.fact(&FactOf::Writer(*stream, *account), version)
    }

    /// Whether `account` was a special writer of `key` as of `version`.
    pub fn is_writer_of_key(
        &self,
        account: &Address,
        stream: &StreamId,
        key: &[u8],
        version: Option<u64>,
    ) -> Result<bool> {
        self.fact(&FactOf::SpecialWriter(*stream, key.to_vec(), *account), version)
    }

    /// Whether `key` was special as of `version`.
    pub fn is_special_key(&self, stream: &StreamId, key: &[u8], version: Option<u64>) -> Result<bool> {
        self.fact(&FactOf::SpecialKey(*stream, key.to_vec()), version)
    }

    /// Whether `account` could write `key` as of `version`: the stream was
    /// new or the account an admin; else a special key needed a special
    /// writer of it, a normal key a stream writer.
    pub fn has_write_permission(
        &self,
        account: &Address,
        stream: &StreamId,
        key: &[u8],
        version: Option<u64>,
    ) -> Result<bool> {
        // One version for every fact read, even if a newer one becomes visible meanwhile.
        let version = Some(version.unwrap_or_else(|| self.store.version()));
        if self.is_new_stream(stream, version)? || self.is_admin(account, stream, version)? {
            return Ok(true);
        }
        if self.is_special_key(stream, key, version)? {
            self.is_writer_of_key(account, stream, key, version)
        } else {
            self.is_writer_of_stream(account, stream, version)
        }
    }

    /// The newest visible applied record whose version tag is at most
    /// `version` (`None`: there is none). A node's own positions need not
    /// be its versions' (a node on a shared log logs only the entries it
    /// applies), but tags grow with positions, so a binary search finds it.
    /// It starts at the version's own position and its neighbour, which
    /// settle it on the embedded log (and for the newest record) in two
    /// reads. The records compaction dropped come before those it kept a
    /// row of, so the search passes over them, and answers `Compacted` (in
    /// versions) only if the record asked for is one of them.
    fn record_at(&self, version: u64) -> Result<Option<AppliedRecord>> {
        let (mut lo, mut hi) = (1, self.store.visible_position());
        let mut probe = version_position(version).clamp(lo, hi.max(lo));
        // The record found so far, the oldest one seen past `version`, and
        // whether a dropped one was met.
        let (mut found, mut after, mut dropped) = (None, None, false);
        let mut guessing = true;
        while lo <= hi {
            let up = match self.store.applied_at(probe) {
                Ok(Some(r)) if r.version <= version => {
                    found = Some(r);
                    true
                }
                Ok(r) => {
                    after = r.or(after);
                    false
                }
                Err(StoreError::Compacted { .. }) => {
                    dropped = true;
                    true
                }
                Err(e) => return Err(e.into()),
            };
            if up {
                lo = probe + 1;
            } else {
                hi = probe - 1;
            }
            probe = match (std::mem::take(&mut guessing), up) {
                (true, true) => lo,
                (true, false) => hi,
                (false, _) => lo + hi.saturating_sub(lo) / 2,
            };
        }
        if found.is_some() || !dropped {
            return Ok(found);
        }
        let oldest = after.map_or(self.store.version() + 1, |r| tx_version(version_position(r.version), 0));
        Err(StoreError::Compacted { version, oldest }.into())
    }

    /// The result of the transaction at `version`, if one was recorded
    /// (and is visible): from the annex of its entry's record. A record
    /// compaction dropped is the store's `Compacted` error.
    pub fn result(&self, version: u64) -> Result<Option<String>> {
        let position = version_position(version);
        let record = match self.record_at(tx_version(position, u16::MAX)) {
            Err(NodeError::Store(StoreError::Compacted { oldest, .. })) => {
                return Err(StoreError::Compacted { version, oldest }.into())
            }
            found => found?,
        };
        let Some(record) = record else {
            return Ok(None);
        };
        if version_position(record.version) != position {
            return Ok(None);
        }
        annex::result_of(&record.annex, version as u16)
            .map_err(|source| NodeError::BadAnnex { position: record.position, source })
    }

    /// The state digest as of `version` (default: the newest visible): the
    /// state stored with the newest entry at or below it. Where that entry
    /// is the last one a compacted file (or an imported export) replaced,
    /// the file's header keeps its state even if no row of it was kept.
    pub fn digest_at(&self, version: Option<u64>) -> Result<StateDigest> {
        let version = version.unwrap_or_else(|| self.store.version());
        let state = match self.record_at(version) {
            Ok(found) => found.map(|r| r.state),
            Err(e) => {
                let head = self.store.compacted().filter(|h| h.last_version <= version);
                match (&e, head.and_then(|h| h.state)) {
                    (NodeError::Store(StoreError::Compacted { .. }), Some(state)) => Some(state),
                    _ => return Err(e),
                }
            }
        };
        Ok(state.map_or_else(StateDigest::default, StateDigest::from_bytes))
    }

    /// Streams with data or access-control history, sorted.
    pub fn holding_stream_ids(&self) -> Result<Vec<StreamId>> {
        let mut out = Vec::new();
        for kv in self.store.scan_in(SYSTEM_KEYSPACE, ScanOptions::prefix(&[STREAM_PREFIX])) {
            let (key, _) = kv?;
            out.push(stream_of_key(&key).ok_or_else(|| bad(&key, "not a stream key"))?);
        }
        Ok(out)
    }
}

fn bound(key: &[u8], inclusive: bool) -> std::ops::Bound<Vec<u8>> {
    if inclusive {
        std::ops::Bound::Included(key.to_vec())
    } else {
        std::ops::Bound::Excluded(key.to_vec())
    }
}
