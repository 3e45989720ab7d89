//! The state apply sees while a node applies one entry on the embedded
//! store, and the version records the entry's effects become.
//!
//! Reads go to the store's newest *sequenced* state (earlier entries of
//! the same group commit count, acknowledged or not), overlaid with what
//! earlier transactions of this entry did. Nothing is written while the
//! entry applies: each commit adds derived ops (data, result, access
//! control facts, new stream keyspaces) to a list that the node appends,
//! with the entry, as one `Applied` record. A value the entry carries
//! becomes a reference into the entry, never a copy.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use logkv_store::{AppliedOp, AppliedValue, Store, StoreError};
use parking_lot::RwLock;

use crate::acl::{Acl, StreamAcl};
use crate::apply::{NewValue, StateView, TxEffects};
use crate::digest::{Fact, StateDigest};
use crate::entry::State;
use crate::system::{result_key, stream_key, FactOf, SYSTEM_KEYSPACE};
use crate::types::StreamId;

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

/// The stream map the node shares with its readers: stream → keyspace.
pub(crate) type StreamMap = RwLock<BTreeMap<StreamId, u32>>;

/// A key's newest version and live value (`None`: absent or deleted).
type Newest = (u64, Option<Vec<u8>>);

/// The state of one entry being applied.
pub(crate) struct EntryState<'a> {
    store: &'a Store,
    entry: &'a [u8],
    streams: &'a StreamMap,
    acl: &'a mut Acl,
    digest: &'a mut StateDigest,
    /// Keyspace for the next new stream.
    next_keyspace: u32,
    /// Streams given a keyspace by this entry.
    pub(crate) new_streams: Vec<(StreamId, u32)>,
    /// Access control of each stream this entry changed, as it was before.
    pub(crate) acl_before: BTreeMap<StreamId, Option<StreamAcl>>,
    newest: RefCell<BTreeMap<(StreamId, Vec<u8>), Newest>>,
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
    ) -> Self {
        Self {
            store,
            entry,
            streams,
            acl,
            digest,
            next_keyspace,
            new_streams: Vec::new(),
            acl_before: BTreeMap::new(),
            newest: RefCell::new(BTreeMap::new()),
            error: RefCell::new(None),
            ops: Vec::new(),
        }
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

    fn fail(&self, e: StoreError) {
        self.error.borrow_mut().get_or_insert(e);
    }

    /// The newest version and live value of a key, as apply sees it.
    fn newest(&self, stream: &StreamId, key: &[u8]) -> Newest {
        if let Some(n) = self.newest.borrow().get(&(*stream, key.to_vec())) {
            return n.clone();
        }
        let found = match self.keyspace(stream) {
            None => Ok(None),
            Some(ks) => self.store.newest_in(ks, key),
        };
        let n = match found {
            Ok(Some(n)) => (n.version, n.value),
            Ok(None) => (0, None),
            Err(e) => {
                self.fail(e);
                (0, None)
            }
        };
        self.newest.borrow_mut().insert((*stream, key.to_vec()), n.clone());
        n
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
        self.newest(stream, key).0
    }

    fn live_value(&self, stream: &StreamId, key: &[u8]) -> Option<Cow<'_, [u8]>> {
        self.newest(stream, key).1.map(Cow::Owned)
    }

    fn acl(&self) -> &Acl {
        self.acl
    }
}

impl State for EntryState<'_> {
    fn commit(&mut self, version: u64, body: &[u8], body_offset: usize, effects: &TxEffects) {
        let text = effects.result.to_string();
        self.digest.add(Fact::Result { version, text: &text });
        self.ops.push(DerivedOp::system(&result_key(version), version, Derived::Bytes(text.into_bytes())));
        for w in &effects.writes {
            let ks = self.keyspace_or_new(&w.stream, version);
            let (_, old) = self.newest(&w.stream, &w.key);
            let (derived, new) = match &w.value {
                NewValue::Body(v) => {
                    let offset = body_offset + v.offset;
                    debug_assert_eq!(&self.entry[offset..offset + v.len], v.get(body));
                    (Derived::InEntry { offset, len: v.len }, Some(v.get(body).to_vec()))
                }
                NewValue::Computed(bytes) => (Derived::Bytes(bytes.clone()), Some(bytes.clone())),
                NewValue::Deleted => (Derived::Delete, None),
            };
            if let Some(old) = &old {
                self.digest.remove(Fact::value(&w.stream, &w.key, old));
            }
            if let Some(new) = &new {
                self.digest.add(Fact::value(&w.stream, &w.key, new));
            }
            self.newest.borrow_mut().insert((w.stream, w.key.clone()), (version, new));
            self.ops.push(DerivedOp { keyspace: ks, key: w.key.clone(), version, value: derived });
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
}
