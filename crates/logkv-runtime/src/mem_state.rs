//! An in-memory runtime state with full history: what [`apply_tx`] reads
//! and what its effects change, queryable "as of" any version. It keeps
//! every version in memory, so it serves tests, examples and small nodes;
//! the embedded store keeps the same state in its log instead.
//!
//! [`apply_tx`]: crate::apply::apply_tx

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use crate::acl::Acl;
use crate::apply::{NewValue, StateView, TxEffects};
use crate::digest::{Fact, StateDigest};
use crate::entry::State;
use crate::signing::keccak256;
use crate::types::StreamId;

/// Versions of one key, oldest first; `None` is a delete.
type History = Vec<(u64, Option<Vec<u8>>)>;

/// A stream's expiry queue: its keys with an expiry, by expiry and
/// keccak256 of the key (the store's order of `"q"` keys).
type Queue = BTreeMap<(u64, [u8; 32]), Vec<u8>>;

/// State with history, in memory.
#[derive(Debug, Clone, Default)]
pub struct MemState {
    data: BTreeMap<(StreamId, Vec<u8>), History>,
    /// The expiry of each key's newest value that has one (history keeps
    /// none: "as of" reads here ignore expiry).
    expiry: BTreeMap<(StreamId, Vec<u8>), u64>,
    /// Each stream's expiry queue, for streams with any expiring key.
    queues: BTreeMap<StreamId, Queue>,
    acl: Acl,
    /// The log time of each entry's position.
    times: BTreeMap<u64, u64>,
    /// The access-control state after each version that changed it.
    acl_history: BTreeMap<u64, Acl>,
    results: BTreeMap<u64, String>,
    digest: StateDigest,
    /// The versions each stream was flushed at, oldest first: a key whose
    /// newest write as of a version is older than the flush in force then
    /// is absent.
    flushes: BTreeMap<StreamId, Vec<u64>>,
    /// Each stream's sum of value facts, which a flush takes out at once.
    value_sums: BTreeMap<StreamId, StateDigest>,
}

impl StateView for MemState {
    fn latest_version(&self, stream: &StreamId, key: &[u8]) -> u64 {
        self.version_at(stream, key, u64::MAX)
    }

    fn live_value(&self, stream: &StreamId, key: &[u8]) -> Option<Cow<'_, [u8]>> {
        self.get_at(stream, key, u64::MAX).map(|(_, v)| Cow::Borrowed(v))
    }

    fn expires_at(&self, stream: &StreamId, key: &[u8]) -> Option<u64> {
        self.newest_unflushed(stream, key)?;
        self.expiry.get(&(*stream, key.to_vec())).copied()
    }

    fn flush_version(&self, stream: &StreamId) -> u64 {
        self.flush_at(stream, u64::MAX)
    }

    fn log_time_of(&self, version: u64) -> Option<u64> {
        self.times.get(&crate::types::version_position(version)).copied()
    }

    fn acl(&self) -> &Acl {
        &self.acl
    }
}

impl State for MemState {
    fn begin_entry(&mut self, position: u64, log_time_ms: u64) {
        self.times.insert(position, log_time_ms);
    }

    fn commit(&mut self, version: u64, body: &[u8], _body_offset: usize, effects: &TxEffects) {
        let text = effects.result.to_string();
        self.digest.add(Fact::Result { version, text: &text });
        self.results.insert(version, text);
        for stream in &effects.flushes {
            if let Some(sum) = self.value_sums.remove(stream) {
                self.digest.remove_sum(&sum);
            }
            self.flushes.entry(*stream).or_default().push(version);
            // The flushed keys' expiries go with them.
            self.queues.remove(stream);
            self.expiry.retain(|(s, _), _| s != stream);
        }
        for w in &effects.writes {
            let value = match &w.value {
                NewValue::Body(v) => Some(v.get(body).to_vec()),
                NewValue::Computed(bytes) => Some(bytes.clone()),
                NewValue::Deleted => None,
            };
            self.write(version, &w.stream, &w.key, value, w.expires_at);
        }
        if !effects.acl.is_empty() {
            let streams: BTreeSet<StreamId> = effects.acl.iter().map(|c| c.stream).collect();
            for s in &streams {
                self.acl.facts_of(s).for_each(|f| self.digest.remove(Fact::Acl(f)));
            }
            effects.acl.iter().for_each(|c| self.acl.apply(c));
            for s in &streams {
                self.acl.facts_of(s).for_each(|f| self.digest.add(Fact::Acl(f)));
            }
            self.acl_history.insert(version, self.acl.clone());
        }
    }

    fn expiring_streams(&self) -> Vec<StreamId> {
        self.queues.keys().copied().collect()
    }

    fn due_expiries(&mut self, stream: &StreamId, now: u64, limit: usize) -> Vec<Vec<u8>> {
        let Some(queue) = self.queues.get(stream) else {
            return Vec::new();
        };
        queue.range(..(now, [0; 32])).take(limit).map(|(_, key)| key.clone()).collect()
    }

    fn delete_expired(&mut self, version: u64, stream: &StreamId, key: &[u8]) {
        self.write(version, stream, key, None, None);
    }
}

impl MemState {
    /// Writes `value` (`None`: a delete) expiring `expires_at` to a key at
    /// `version`: its history, expiry, queue place and digest fact.
    fn write(
        &mut self,
        version: u64,
        stream: &StreamId,
        key: &[u8],
        value: Option<Vec<u8>>,
        expires_at: Option<u64>,
    ) {
        let id = (*stream, key.to_vec());
        let old_expiry = match expires_at {
            Some(at) => self.expiry.insert(id.clone(), at),
            None => self.expiry.remove(&id),
        };
        if old_expiry != expires_at {
            let hash = keccak256(key);
            if let Some(old) = old_expiry {
                let queue = self.queues.get_mut(stream).expect("a key with an expiry is queued");
                queue.remove(&(old, hash));
                if queue.is_empty() {
                    self.queues.remove(stream);
                }
            }
            if let Some(at) = expires_at {
                self.queues.entry(*stream).or_default().insert((at, hash), key.to_vec());
            }
        }
        // A value older than the stream's flush left the sums with it.
        let old = self
            .get_at(stream, key, u64::MAX)
            .map(|(_, b)| StateDigest::of(Fact::value(stream, key, b, old_expiry)));
        let sum = self.value_sums.entry(*stream).or_default();
        if let Some(old) = old {
            self.digest.remove_sum(&old);
            sum.remove_sum(&old);
        }
        if let Some(new) = &value {
            let new = StateDigest::of(Fact::value(stream, key, new, expires_at));
            self.digest.add_sum(&new);
            sum.add_sum(&new);
        }
        self.data.entry(id).or_default().push((version, value));
    }

    /// The digest of the current state.
    pub fn digest(&self) -> StateDigest {
        self.digest
    }

    fn history(&self, stream: &StreamId, key: &[u8]) -> Option<&History> {
        self.data.get(&(*stream, key.to_vec()))
    }

    /// The version of the stream's flush in force at `version` (0: none).
    pub fn flush_at(&self, stream: &StreamId, version: u64) -> u64 {
        let flushes = self.flushes.get(stream).map_or(&[][..], Vec::as_slice);
        flushes.iter().rev().find(|v| **v <= version).copied().unwrap_or(0)
    }

    /// The key's newest write, if the stream was not flushed since.
    fn newest_unflushed(&self, stream: &StreamId, key: &[u8]) -> Option<&(u64, Option<Vec<u8>>)> {
        self.history(stream, key)?.last().filter(|(v, _)| *v >= self.flush_version(stream))
    }

    /// The value of a key as of `version`: `(version written, bytes)`, or
    /// `None` if absent, deleted or flushed then.
    pub fn get_at(&self, stream: &StreamId, key: &[u8], version: u64) -> Option<(u64, &[u8])> {
        let h = self.history(stream, key)?;
        let (v, value) = h.iter().rev().find(|(v, _)| *v <= version)?;
        if *v < self.flush_at(stream, version) {
            return None;
        }
        value.as_deref().map(|b| (*v, b))
    }

    /// The version of the newest write (deletes included) at or below
    /// `version`, or of the stream's flush in force then if that is newer.
    pub fn version_at(&self, stream: &StreamId, key: &[u8], version: u64) -> u64 {
        let written = self
            .history(stream, key)
            .and_then(|h| h.iter().rev().find(|(v, _)| *v <= version))
            .map_or(0, |v| v.0);
        written.max(self.flush_at(stream, version))
    }

    /// Access control as of `version`.
    pub fn acl_at(&self, version: u64) -> Cow<'_, Acl> {
        match self.acl_history.range(..=version).next_back() {
            Some((_, acl)) => Cow::Borrowed(acl),
            None => Cow::Owned(Acl::default()),
        }
    }

    /// The result of the transaction at `version`, if one was recorded.
    pub fn result(&self, version: u64) -> Option<&str> {
        self.results.get(&version).map(String::as_str)
    }

    /// Live keys of `stream` as of `version`, in order, from `start`
    /// (inclusive or not), forward or in reverse: the iteration behind
    /// first / last / next / prev. Deleted keys are skipped.
    pub fn iter_at<'a>(
        &'a self,
        stream: &StreamId,
        version: u64,
        start: Option<(&[u8], bool)>,
        reverse: bool,
    ) -> Box<dyn Iterator<Item = (&'a [u8], u64, &'a [u8])> + 'a> {
        use std::ops::Bound::*;
        let lo = (*stream, Vec::new());
        let hi = (*stream, vec![0xff; crate::codec::MAX_KEY_BYTES + 1]);
        let (lo, hi) = match (start, reverse) {
            (None, _) => (Included(lo), Included(hi)),
            // A start past every key a stream can hold is past `hi` too,
            // which `BTreeMap::range` would refuse with a panic.
            (Some((k, _)), false) if k > hi.1.as_slice() => return Box::new(std::iter::empty()),
            (Some((k, incl)), false) => {
                ((if incl { Included } else { Excluded })((*stream, k.to_vec())), Included(hi))
            }
            (Some((k, incl)), true) => {
                (Included(lo), (if incl { Included } else { Excluded })((*stream, k.to_vec())))
            }
        };
        let range = self.data.range((lo, hi));
        let flushed = self.flush_at(stream, version);
        let live = move |((_, key), h): (&'a (StreamId, Vec<u8>), &'a History)| {
            let (v, value) = h.iter().rev().find(|(v, _)| *v <= version).filter(|(v, _)| *v >= flushed)?;
            value.as_deref().map(|b| (key.as_slice(), *v, b))
        };
        if reverse {
            Box::new(range.rev().filter_map(live))
        } else {
            Box::new(range.filter_map(live))
        }
    }

    /// Streams with any data or access-control history, sorted.
    pub fn streams(&self) -> Vec<StreamId> {
        let mut out: Vec<StreamId> = self.data.keys().map(|(s, _)| *s).collect();
        out.extend(self.acl.streams());
        out.sort_unstable();
        out.dedup();
        out
    }
}
