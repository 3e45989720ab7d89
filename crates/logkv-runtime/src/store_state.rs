//! The state apply sees while a node applies one entry on the embedded
//! store, and the version records the entry's effects become.
//!
//! Reads go to the store's newest *sequenced* state (earlier entries of
//! the same group commit count, acknowledged or not), overlaid with what
//! earlier transactions of this entry did. A key's version and digest
//! fact come from its newest op header alone; its bytes are read only
//! when an op computes from them. Nothing is written while the entry
//! applies: each commit adds derived ops (data, access-control facts, new
//! stream keyspaces) to a list that the node appends, with the entry, its
//! results and the digest after it, as one `Applied` record. A value the
//! entry carries becomes a reference into the entry, never a copy.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use logkv_store::{AppliedOp, AppliedValue, Store, StoreError};
use parking_lot::RwLock;

use crate::acl::{Acl, StreamAcl};
use crate::apply::{EffectWrite, NewValue, StateView, TxEffects};
use crate::digest::{Fact, StateDigest, ValueSum};
use crate::entry::State;
use crate::system::{
    expiry_key, expiry_of, flush_key, queue_bound, queue_key, queued_at, stream_key, value_sum_key, FactOf,
    SYSTEM_KEYSPACE,
};
use crate::types::{version_position, StreamId};

/// What a derived key becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Derived {
    /// Bytes of the entry: `len` at `offset`.
    InEntry { offset: usize, len: usize },
    /// Bytes the node computed.
    Bytes(Vec<u8>),
    /// Deleted.
    Delete,
}

/// One version record derived from an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DerivedOp {
    pub(crate) keyspace: u32,
    pub(crate) key: Vec<u8>,
    pub(crate) version: u64,
    pub(crate) value: Derived,
}

impl DerivedOp {
    pub(crate) fn system(key: &[u8], version: u64, value: Derived) -> Self {
        Self { keyspace: SYSTEM_KEYSPACE, key: key.to_vec(), version, value }
    }

    pub(crate) fn as_applied(&self) -> AppliedOp<'_> {
        let value = match &self.value {
            Derived::InEntry { offset, len } => AppliedValue::InEntry { offset: *offset, len: *len },
            Derived::Bytes(b) => AppliedValue::Put(b),
            Derived::Delete => AppliedValue::Delete,
        };
        AppliedOp { keyspace: self.keyspace, key: &self.key, version: self.version, value }
    }
}

/// What the node keeps in memory of its streams' expiry queues.
#[derive(Debug, Default)]
pub(crate) struct Queues {
    /// How many keys have an expiry, per stream that has any (its `"c"` key).
    pub(crate) counts: BTreeMap<StreamId, u64>,
    /// Per stream, a time before which its queue holds no key: where the
    /// sweep's scan starts, past the deleted queue keys the index still
    /// holds. Not part of the state (a node that just opened has none and
    /// scans from the start): every expiry written later lies after the
    /// log time of the entry writing it, so none lands below it.
    pub(crate) swept_to: BTreeMap<StreamId, u64>,
}

/// What an entry changes in [`Queues`], for the node to keep once the
/// entry is stored.
#[derive(Debug, Default)]
pub(crate) struct QueueChanges {
    /// Change in each stream's count of keys with an expiry.
    pub(crate) counts: BTreeMap<StreamId, i64>,
    /// New starts of the sweep's scan.
    pub(crate) swept_to: BTreeMap<StreamId, u64>,
    /// Keys the sweep deleted.
    pub(crate) swept: usize,
}

/// Drops every op that a later op of the same key at the same version
/// replaces: the sweep deletes keys at the entry's first version, which
/// the entry's first transaction may write again.
pub(crate) fn drop_replaced(ops: &mut Vec<DerivedOp>) {
    let mut seen = BTreeSet::new();
    let mut keep = vec![true; ops.len()];
    for (i, op) in ops.iter().enumerate().rev() {
        keep[i] = seen.insert((op.keyspace, op.key.as_slice(), op.version));
    }
    drop(seen);
    let mut keep = keep.into_iter();
    ops.retain(|_| keep.next().unwrap_or(true));
}

/// The stream map the node shares with its readers: stream → keyspace.
pub(crate) type StreamMap = RwLock<BTreeMap<StreamId, u32>>;

/// The flush map the node shares with its readers: stream → the version of
/// its newest flush (`system::flush_key`).
pub(crate) type FlushMap = RwLock<BTreeMap<StreamId, u64>>;

/// Each stream's sum of value facts (`system::value_sum_key`), kept by
/// apply.
pub(crate) type ValueSums = BTreeMap<StreamId, StateDigest>;

/// What flushes need while an entry applies: the node's flush map (read
/// only: the entry's own flushes are staged), the value sums, and the
/// expiry queues, whose counts a flush zeroes.
pub(crate) struct Flushes<'a> {
    pub(crate) map: &'a FlushMap,
    pub(crate) sums: &'a mut ValueSums,
    /// The expiry queues before the entry (a flush empties its stream's).
    pub(crate) queues: &'a Queues,
}

/// What apply knows of a key's newest version.
#[derive(Debug, Default)]
struct Newest {
    version: u64,
    /// What the live value's digest fact holds; `None`: absent or deleted.
    fact: Option<ValueSum>,
    /// The value's expiry (kept in the system keyspace, `system::expiry_key`).
    expires_at: Option<u64>,
    /// Where the live value's bytes are, once this entry wrote them or an
    /// op needed them (`Derived::InEntry` or `Derived::Bytes`).
    bytes: Option<Derived>,
}

/// The state of one entry being applied.
pub(crate) struct EntryState<'a> {
    store: &'a Store,
    entry: &'a [u8],
    streams: &'a StreamMap,
    acl: &'a mut Acl,
    digest: &'a mut StateDigest,
    flushes: Flushes<'a>,
    /// Streams flushed by this entry, with the version.
    pub(crate) new_flushes: Vec<(StreamId, u64)>,
    /// The value sum of each stream this entry changed, as it was before.
    pub(crate) sums_before: BTreeMap<StreamId, Option<StateDigest>>,
    /// Keyspace for the next new stream.
    next_keyspace: u32,
    /// Streams given a keyspace by this entry.
    pub(crate) new_streams: Vec<(StreamId, u32)>,
    /// Access control of each stream this entry changed, as it was before.
    pub(crate) acl_before: BTreeMap<StreamId, Option<StreamAcl>>,
    newest: RefCell<BTreeMap<(StreamId, Vec<u8>), Newest>>,
    /// Whether any key may have an expiry (else none is looked up).
    expiries: bool,
    /// What the entry changes in them.
    pub(crate) queue_changes: QueueChanges,
    /// The first store error met while reading; the entry must not be stored.
    pub(crate) error: RefCell<Option<StoreError>>,
    /// The derived ops, in version order.
    pub(crate) ops: Vec<DerivedOp>,
}

impl<'a> EntryState<'a> {
    pub(crate) fn new(
        store: &'a Store,
        entry: &'a [u8],
        streams: &'a StreamMap,
        next_keyspace: u32,
        acl: &'a mut Acl,
        digest: &'a mut StateDigest,
        flushes: Flushes<'a>,
    ) -> Self {
        Self {
            store,
            entry,
            streams,
            acl,
            digest,
            flushes,
            new_flushes: Vec::new(),
            sums_before: BTreeMap::new(),
            next_keyspace,
            new_streams: Vec::new(),
            acl_before: BTreeMap::new(),
            newest: RefCell::new(BTreeMap::new()),
            expiries: true,
            queue_changes: QueueChanges::default(),
            error: RefCell::new(None),
            ops: Vec::new(),
        }
    }

    /// The state, told whether any key may have an expiry: if none may, a
    /// key's expiry is not looked up.
    pub(crate) fn with_expiries(mut self, expiries: bool) -> Self {
        self.expiries = expiries;
        self
    }

    /// The keyspace of `stream`, if it has one (given by this entry or before).
    fn keyspace(&self, stream: &StreamId) -> Option<u32> {
        let staged = self.new_streams.iter().find(|(s, _)| s == stream).map(|(_, ks)| *ks);
        staged.or_else(|| self.streams.read().get(stream).copied())
    }

    /// The keyspace of `stream`, giving it the next one (recorded at
    /// `version`) if it has none.
    fn keyspace_or_new(&mut self, stream: &StreamId, version: u64) -> u32 {
        if let Some(ks) = self.keyspace(stream) {
            return ks;
        }
        let ks = self.next_keyspace;
        match ks.checked_add(1) {
            Some(next) => self.next_keyspace = next,
            None => self.fail(StoreError::LimitExceeded {
                what: "stream keyspaces",
                limit: u32::MAX.into(),
                got: u64::from(u32::MAX) + 1,
            }),
        }
        self.new_streams.push((*stream, ks));
        let value = Derived::Bytes(ks.to_be_bytes().to_vec());
        self.ops.push(DerivedOp::system(&stream_key(stream), version, value));
        ks
    }

    /// The version of `stream`'s newest flush, this entry's included.
    fn flushed_at(&self, stream: &StreamId) -> u64 {
        let staged = self.new_flushes.iter().rev().find(|(s, _)| s == stream).map(|(_, v)| *v);
        staged.or_else(|| self.flushes.map.read().get(stream).copied()).unwrap_or(0)
    }

    /// Flushes `stream` at `version`: its values leave the digest with its
    /// sum, every key of it apply already looked at becomes absent, and
    /// the flush is recorded for reads and later entries.
    fn flush(&mut self, stream: &StreamId, version: u64) {
        self.sums_before.entry(*stream).or_insert_with(|| self.flushes.sums.get(stream).copied());
        if let Some(sum) = self.flushes.sums.remove(stream) {
            self.digest.remove_sum(&sum);
        }
        for ((s, _), n) in self.newest.get_mut().iter_mut() {
            if s == stream {
                *n = Newest { version, ..Newest::default() };
            }
        }
        self.new_flushes.retain(|(s, _)| s != stream);
        self.new_flushes.push((*stream, version));
        // No key of the stream has an expiry now (their `"e"` and `"q"`
        // keys are void: older than the flush).
        let counted =
            self.flushes.queues.counts.get(stream).map_or(0, |n| i64::try_from(*n).unwrap_or(i64::MAX));
        self.queue_changes.counts.insert(*stream, -counted);
        self.ops.push(DerivedOp::system(
            &flush_key(stream),
            version,
            Derived::Bytes(version.to_be_bytes().to_vec()),
        ));
    }

    /// Adds (or with `add` false, removes) a value's fact to the digest and
    /// to its stream's sum.
    fn count_value(&mut self, stream: &StreamId, fact: Fact<'_>, add: bool) {
        self.sums_before.entry(*stream).or_insert_with(|| self.flushes.sums.get(stream).copied());
        let one = StateDigest::of(fact);
        let sum = self.flushes.sums.entry(*stream).or_default();
        if add {
            self.digest.add_sum(&one);
            sum.add_sum(&one);
        } else {
            self.digest.remove_sum(&one);
            sum.remove_sum(&one);
        }
    }

    /// The ops that store the value sums this entry changed, at `version`
    /// (a stream without a keyspace never held a value: nothing to store).
    pub(crate) fn sum_ops(&self, version: u64) -> Vec<DerivedOp> {
        self.sums_before
            .keys()
            .filter_map(|s| {
                let value = match self.flushes.sums.get(s).filter(|sum| **sum != StateDigest::default()) {
                    Some(sum) => Derived::Bytes(sum.to_bytes().to_vec()),
                    None => Derived::Delete,
                };
                Some(DerivedOp::system(&value_sum_key(self.keyspace(s)?), version, value))
            })
            .collect()
    }

    fn fail(&self, e: StoreError) {
        self.error.borrow_mut().get_or_insert(e);
    }

    /// `f` of what apply knows of a key's newest version, read from its op
    /// header the first time.
    fn with_newest<R>(&self, stream: &StreamId, key: &[u8], f: impl FnOnce(&mut Newest) -> R) -> R {
        let id = (*stream, key.to_vec());
        if let Some(n) = self.newest.borrow_mut().get_mut(&id) {
            return f(n);
        }
        let found = match self.keyspace(stream) {
            None => Ok(None),
            Some(ks) => self.store.newest_meta_in(ks, key),
        };
        // A key older than its stream's flush is absent, at the flush's version.
        let flushed = self.flushed_at(stream);
        let mut n = match found {
            Ok(Some(m)) if m.version < flushed => Newest { version: flushed, ..Newest::default() },
            Ok(Some(m)) => {
                let fact = (!m.deleted).then_some(ValueSum { len: m.value_len, crc: m.crc });
                let expires_at = if m.deleted { None } else { self.stored_expiry(stream, key) };
                Newest { version: m.version, fact, expires_at, bytes: None }
            }
            Ok(None) => Newest { version: flushed, ..Newest::default() },
            Err(e) => {
                self.fail(e);
                Newest::default()
            }
        };
        let out = f(&mut n);
        self.newest.borrow_mut().insert(id, n);
        out
    }

    /// The expiry stored for a key's value (one older than the stream's
    /// flush belonged to a value the flush removed).
    fn stored_expiry(&self, stream: &StreamId, key: &[u8]) -> Option<u64> {
        if !self.expiries {
            return None;
        }
        match self.store.newest_in(SYSTEM_KEYSPACE, &expiry_key(stream, key)) {
            Ok(found) => found
                .filter(|n| n.version >= self.flushed_at(stream))
                .and_then(|n| n.value)
                .and_then(|v| expiry_of(&v)),
            Err(e) => {
                self.fail(e);
                None
            }
        }
    }

    /// The bytes of a key's live value, read from the store the first time.
    fn live_bytes(&self, stream: &StreamId, key: &[u8]) -> Option<Cow<'a, [u8]>> {
        let known = self.with_newest(stream, key, |n| n.fact.map(|_| n.bytes.clone()))?;
        match known {
            Some(Derived::InEntry { offset, len }) => {
                return Some(Cow::Borrowed(&self.entry[offset..offset + len]))
            }
            Some(Derived::Bytes(b)) => return Some(Cow::Owned(b)),
            Some(Derived::Delete) | None => {}
        }
        let bytes = match self.store.newest_in(self.keyspace(stream)?, key) {
            Ok(found) => found.and_then(|n| n.value)?,
            Err(e) => {
                self.fail(e);
                return None;
            }
        };
        self.with_newest(stream, key, |n| n.bytes = Some(Derived::Bytes(bytes.clone())));
        Some(Cow::Owned(bytes))
    }

    /// Writes one key: its digest fact, its version record and, when the
    /// expiry changes, its `"e"` and `"q"` keys and the stream's count.
    fn write(&mut self, version: u64, body: &[u8], body_offset: usize, w: &EffectWrite) {
        let ks = self.keyspace_or_new(&w.stream, version);
        let (old, old_expiry) = self.with_newest(&w.stream, &w.key, |n| (n.fact, n.expires_at));
        if let Some(value) = old {
            let expires_at = old_expiry;
            self.count_value(
                &w.stream,
                Fact::Value { stream: &w.stream, key: &w.key, value, expires_at },
                false,
            );
        }
        let (derived, new) = match &w.value {
            NewValue::Body(v) => {
                let offset = body_offset + v.offset;
                debug_assert_eq!(&self.entry[offset..offset + v.len], v.get(body));
                (Derived::InEntry { offset, len: v.len }, Some(v.get(body)))
            }
            NewValue::Computed(bytes) => (Derived::Bytes(bytes.clone()), Some(bytes.as_slice())),
            NewValue::Deleted => (Derived::Delete, None),
        };
        let fact = new.map(|bytes| ValueSum::of(&w.key, bytes));
        let expires_at = fact.and(w.expires_at);
        if let Some(value) = fact {
            self.count_value(
                &w.stream,
                Fact::Value { stream: &w.stream, key: &w.key, value, expires_at },
                true,
            );
        }
        let bytes = fact.map(|_| derived.clone());
        let newest = Newest { version, fact, expires_at, bytes };
        self.newest.borrow_mut().insert((w.stream, w.key.clone()), newest);
        self.ops.push(DerivedOp { keyspace: ks, key: w.key.clone(), version, value: derived });
        if expires_at != old_expiry {
            self.expiry_changed(version, &w.stream, &w.key, old_expiry, expires_at);
        }
    }

    /// Records a key's expiry going from `old` to `new`.
    fn expiry_changed(
        &mut self,
        version: u64,
        stream: &StreamId,
        key: &[u8],
        old: Option<u64>,
        new: Option<u64>,
    ) {
        let value = new.map_or(Derived::Delete, |at| Derived::Bytes(at.to_be_bytes().to_vec()));
        self.ops.push(DerivedOp::system(&expiry_key(stream, key), version, value));
        // An expiry older than the flush in force went with its value, so
        // both were queued under that flush.
        let flush = self.flushed_at(stream);
        if let Some(at) = old {
            self.ops.push(DerivedOp::system(&queue_key(stream, flush, at, key), version, Derived::Delete));
        }
        if let Some(at) = new {
            self.ops.push(DerivedOp::system(
                &queue_key(stream, flush, at, key),
                version,
                Derived::Bytes(key.to_vec()),
            ));
        }
        let change = i64::from(new.is_some()) - i64::from(old.is_some());
        if change != 0 {
            *self.queue_changes.counts.entry(*stream).or_default() += change;
        }
    }

    /// Records the facts of `streams` changing: digest and fact ops.
    fn acl_changed(&mut self, version: u64, before: &BTreeSet<FactOf>, streams: &BTreeSet<StreamId>) {
        let after: BTreeSet<FactOf> =
            streams.iter().flat_map(|s| self.acl.facts_of(s).map(FactOf::from).collect::<Vec<_>>()).collect();
        for s in streams {
            self.acl.facts_of(s).for_each(|f| self.digest.add(Fact::Acl(f)));
            self.keyspace_or_new(s, version);
        }
        for gone in before.difference(&after) {
            self.ops.push(DerivedOp::system(&gone.key(), version, Derived::Delete));
        }
        for new in after.difference(before) {
            self.ops.push(DerivedOp::system(&new.key(), version, Derived::Bytes(new.value())));
        }
    }
}

impl StateView for EntryState<'_> {
    fn latest_version(&self, stream: &StreamId, key: &[u8]) -> u64 {
        self.with_newest(stream, key, |n| n.version)
    }

    fn live_value(&self, stream: &StreamId, key: &[u8]) -> Option<Cow<'_, [u8]>> {
        self.live_bytes(stream, key)
    }

    fn is_live(&self, stream: &StreamId, key: &[u8]) -> bool {
        self.with_newest(stream, key, |n| n.fact.is_some())
    }

    fn expires_at(&self, stream: &StreamId, key: &[u8]) -> Option<u64> {
        self.with_newest(stream, key, |n| n.expires_at)
    }

    fn flush_version(&self, stream: &StreamId) -> u64 {
        self.flushed_at(stream)
    }

    /// From the record's frame (a read of the log: only asked for a key
    /// that expired, in a transaction that checks versions).
    fn log_time_of(&self, version: u64) -> Option<u64> {
        self.store.time_of_position(version_position(version)).ok().flatten()
    }

    fn acl(&self) -> &Acl {
        self.acl
    }
}

impl State for EntryState<'_> {
    fn commit(&mut self, version: u64, body: &[u8], body_offset: usize, effects: &TxEffects) {
        let text = effects.result.to_string();
        self.digest.add(Fact::Result { version, text: &text });
        for stream in &effects.flushes {
            self.flush(stream, version);
        }
        for w in &effects.writes {
            self.write(version, body, body_offset, w);
        }
        if !effects.acl.is_empty() {
            let streams: BTreeSet<StreamId> = effects.acl.iter().map(|c| c.stream).collect();
            let mut before = BTreeSet::new();
            for s in &streams {
                self.acl_before.entry(*s).or_insert_with(|| self.acl.stream(s).cloned());
                for f in self.acl.facts_of(s) {
                    self.digest.remove(Fact::Acl(f));
                    before.insert(FactOf::from(f));
                }
            }
            effects.acl.iter().for_each(|c| self.acl.apply(c));
            self.acl_changed(version, &before, &streams);
        }
    }

    fn expiring_streams(&self) -> Vec<StreamId> {
        self.flushes.queues.counts.keys().copied().collect()
    }

    /// From the store's newest sequenced state (earlier entries of the
    /// same group commit count), as every read of apply: nodes that group
    /// entries into commits differently sweep alike.
    fn due_expiries(&mut self, stream: &StreamId, now: u64, limit: usize) -> Vec<Vec<u8>> {
        let from = self.flushes.queues.swept_to.get(stream).copied().unwrap_or(0);
        // Only what was queued since the newest flush: older queue keys
        // belong to keys the flush removed.
        let flush = self.flushed_at(stream);
        if now <= from {
            return Vec::new();
        }
        let found = self.store.newest_range_in(
            SYSTEM_KEYSPACE,
            &queue_bound(stream, flush, from),
            &queue_bound(stream, flush, now),
            limit,
        );
        let due = match found {
            Ok(due) => due,
            Err(e) => {
                self.fail(e);
                return Vec::new();
            }
        };
        // Past the last key taken nothing is due before `now` unless the
        // limit cut the scan short; then the rest starts at its expiry.
        let last_at = due.last().map(|(k, _)| queued_at(k).expect("a queue key"));
        let swept_to = if due.len() < limit { now } else { last_at.unwrap_or(from) };
        self.queue_changes.swept_to.insert(*stream, swept_to);
        due.into_iter().map(|(_, key)| key).collect()
    }

    fn delete_expired(&mut self, version: u64, stream: &StreamId, key: &[u8]) {
        let w =
            EffectWrite { stream: *stream, key: key.to_vec(), value: NewValue::Deleted, expires_at: None };
        self.write(version, &[], 0, &w);
        self.queue_changes.swept += 1;
    }
}
