//! The index of every keyspace: one [`Index`] per keyspace number, so a
//! key costs the same memory whatever keyspace it is in (no prefix), and
//! the `max_index_bytes` ceiling over all of them.

use std::collections::BTreeMap;
use std::ops::Bound;

use logkv_log::Loc;

use crate::error::Result;
use crate::error::StoreError;
use crate::index::{Builder, Index, Snapshot, CHUNK_BYTES, ENTRY_OVERHEAD};
use crate::limits::check;
use crate::record::OpKind;

/// The index's top bit: the newest version record of the key is a delete.
pub(crate) const DELETED: u64 = 1 << 63;

/// Bytes a keyspace costs besides its index's heap (its map node, roughly).
const KEYSPACE_OVERHEAD: usize = 64 + std::mem::size_of::<Index>();

/// What a delete of a key the index does not hold leaves behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deletes {
    /// Nothing (the plain API: an absent key and a deleted one read alike,
    /// so the record is written but indexes nothing).
    OfHeldKeys,
    /// A tombstone (applied entries: a delete is a write, and its version
    /// is what [`crate::Store::newest_in`] reports for the key).
    Versioned,
}

/// Every keyspace's index, the heap bytes they hold and the live keys.
#[derive(Debug, Default)]
pub(crate) struct Keyspaces {
    spaces: BTreeMap<u32, Index>,
    heap_bytes: usize,
    live: u64,
    /// The newest record indexed: its position and version tag. Kept here,
    /// under the index lock, so a snapshot knows exactly what it holds.
    pub(crate) through: Through,
    /// Bytes of version records that newer ones superseded since the last
    /// compaction (estimated at the size of the superseding record): what
    /// triggers compaction.
    pub(crate) superseded_bytes: u64,
    /// The state and version tag of the newest applied record indexed
    /// (see [`crate::Store::newest_state`]).
    pub(crate) newest_state: Option<([u8; 32], u64)>,
}

/// The newest record an index holds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Through {
    pub(crate) position: u64,
    pub(crate) version: u64,
}

/// Every keyspace as it was at one record (for a checkpoint).
pub(crate) struct KeyspacesSnapshot {
    pub(crate) spaces: Vec<(u32, Snapshot)>,
    pub(crate) live: u64,
    pub(crate) through: Through,
    pub(crate) superseded_bytes: u64,
    pub(crate) newest_state: Option<([u8; 32], u64)>,
}

impl Keyspaces {
    /// Assembles keyspaces loaded from a checkpoint or a compacted file.
    pub(crate) fn from_parts(spaces: BTreeMap<u32, Index>, live: u64, through: Through) -> Self {
        let heap_bytes = spaces.values().map(|i| i.heap_bytes() + KEYSPACE_OVERHEAD).sum();
        Self { spaces, heap_bytes, live, through, superseded_bytes: 0, newest_state: None }
    }

    /// A snapshot of every keyspace, costing a pointer per chunk.
    pub(crate) fn snapshot(&self) -> KeyspacesSnapshot {
        KeyspacesSnapshot {
            spaces: self.spaces.iter().map(|(&ks, i)| (ks, i.snapshot())).collect(),
            live: self.live,
            through: self.through,
            superseded_bytes: self.superseded_bytes,
            newest_state: self.newest_state,
        }
    }

    /// Points `key` at `new` if it still has metadata `expected`.
    pub(crate) fn replace_if(&mut self, keyspace: u32, key: &[u8], expected: u64, new: u64) -> bool {
        let Some(index) = self.spaces.get_mut(&keyspace) else { return false };
        let before = index.heap_bytes();
        let done = index.replace_if(key, expected, new);
        self.heap_bytes = self.heap_bytes + index.heap_bytes() - before;
        if done {
            match (expected & DELETED == 0, new & DELETED == 0) {
                (false, true) => self.live += 1,
                (true, false) => self.live -= 1,
                _ => {}
            }
        }
        done
    }

    /// Removes `key` if it still has metadata `expected`.
    pub(crate) fn remove_if(&mut self, keyspace: u32, key: &[u8], expected: u64) -> bool {
        let Some(index) = self.spaces.get_mut(&keyspace) else { return false };
        let before = index.heap_bytes();
        let done = index.remove_if(key, expected);
        self.heap_bytes = self.heap_bytes + index.heap_bytes() - before;
        if done && expected & DELETED == 0 {
            self.live -= 1;
        }
        done
    }

    /// The metadata of `key` in `keyspace`.
    pub(crate) fn get(&self, keyspace: u32, key: &[u8]) -> Option<u64> {
        self.spaces.get(&keyspace)?.get(key)
    }

    /// Whether `key` has a live value in `keyspace`.
    pub(crate) fn is_live(&self, keyspace: u32, key: &[u8]) -> bool {
        self.get(keyspace, key).is_some_and(|m| m & DELETED == 0)
    }

    /// Keys in the indexes, deleted ones included.
    pub(crate) fn len(&self) -> usize {
        self.spaces.values().map(Index::len).sum()
    }

    /// Live keys over all keyspaces.
    pub(crate) fn live(&self) -> u64 {
        self.live
    }

    /// Heap bytes of all indexes (what `max_index_bytes` limits).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.heap_bytes
    }

    /// Collects up to `max` entries of `keyspace` within bounds.
    pub(crate) fn range_page(
        &self,
        keyspace: u32,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        reverse: bool,
        max: usize,
        out: &mut Vec<(Vec<u8>, u64)>,
    ) {
        if let Some(index) = self.spaces.get(&keyspace) {
            index.range_page(start, end, reverse, max, out);
        }
    }

    /// Applies one version record at `loc` (shared by writes and replay).
    /// Returns the key's previous metadata, which the record's `prev`
    /// points at.
    pub(crate) fn apply(
        &mut self,
        keyspace: u32,
        kind: OpKind,
        key: &[u8],
        loc: Loc,
        deletes: Deletes,
    ) -> Option<u64> {
        let is_live = |meta: u64| meta & DELETED == 0;
        let meta = if kind == OpKind::Delete { loc.to_u64() | DELETED } else { loc.to_u64() };
        if kind == OpKind::Delete && deletes == Deletes::OfHeldKeys {
            // A delete of a key the index never held has nothing to hide,
            // so it adds no entry (nor a keyspace).
            let index = self.spaces.get_mut(&keyspace)?;
            let old = index.replace(key, meta);
            if old.is_some_and(is_live) {
                self.live -= 1;
            }
            return old;
        }
        let index = self.spaces.entry(keyspace).or_insert_with(|| {
            self.heap_bytes += KEYSPACE_OVERHEAD;
            Index::default()
        });
        let before = index.heap_bytes();
        let old = index.upsert(key, meta);
        self.heap_bytes = self.heap_bytes + index.heap_bytes() - before;
        match (old.is_some_and(is_live), kind.is_put()) {
            (false, true) => self.live += 1,
            (true, false) => self.live -= 1,
            _ => {}
        }
        old
    }

    /// Refuses writes whose new keys could push the indexes past
    /// `max_index_bytes`. The estimate is conservative: splits can at most
    /// double the entry bytes, and a new keyspace costs a chunk.
    ///
    /// Knowing which keys are new takes a search per key, so that is done
    /// only when it could change the answer: if the writes fit even with
    /// every put adding a key, they are accepted without looking.
    pub(crate) fn reserve<'a>(
        &self,
        max_index_bytes: usize,
        deletes: Deletes,
        writes: impl Iterator<Item = (u32, OpKind, &'a [u8])> + Clone,
    ) -> Result<()> {
        let adds = |kind: OpKind| kind.is_put() || deletes == Deletes::Versioned;
        let new_bytes = |is_new: &dyn Fn(u32, &[u8]) -> bool| -> usize {
            writes
                .clone()
                .filter(|(ks, kind, key)| adds(*kind) && is_new(*ks, key))
                .map(|(ks, _, key)| {
                    let space =
                        if self.spaces.contains_key(&ks) { 0 } else { KEYSPACE_OVERHEAD + CHUNK_BYTES };
                    2 * (key.len() + ENTRY_OVERHEAD) + space
                })
                .sum()
        };
        let room = max_index_bytes.saturating_sub(self.heap_bytes + CHUNK_BYTES);
        if new_bytes(&|_, _| true) <= room {
            return Ok(());
        }
        let new_bytes = new_bytes(&|ks, key| self.get(ks, key).is_none());
        if new_bytes == 0 {
            return Ok(());
        }
        check("max_index_bytes", max_index_bytes, self.heap_bytes + new_bytes + CHUNK_BYTES)
    }
}

/// Builds keyspaces from `(keyspace, key, meta)` in ascending order (a
/// compacted file's newest versions).
pub(crate) struct KeyspacesBuilder {
    spaces: BTreeMap<u32, Index>,
    current: Option<(u32, Builder)>,
    live: u64,
}

impl KeyspacesBuilder {
    pub(crate) fn new() -> Self {
        Self { spaces: BTreeMap::new(), current: None, live: 0 }
    }

    /// Adds a key; `live` says whether its newest version is a value.
    pub(crate) fn push(&mut self, keyspace: u32, key: &[u8], meta: u64, live: bool) -> Result<()> {
        if self.current.as_ref().is_none_or(|(ks, _)| *ks != keyspace) {
            if let Some((ks, b)) = self.current.take() {
                self.spaces.insert(ks, b.finish());
            }
            self.current = Some((keyspace, Builder::default()));
        }
        let (_, builder) = self.current.as_mut().expect("set above");
        builder.push(key, meta).map_err(|e| StoreError::Invalid(e.to_string()))?;
        self.live += u64::from(live);
        Ok(())
    }

    pub(crate) fn finish(mut self, through: Through) -> Keyspaces {
        if let Some((ks, b)) = self.current.take() {
            self.spaces.insert(ks, b.finish());
        }
        Keyspaces::from_parts(self.spaces, self.live, through)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The verdict with a search for every key, as it was before the
    /// no-search shortcut.
    fn searching_verdict(spaces: &Keyspaces, max: usize, writes: &[(OpKind, Vec<u8>)]) -> Result<()> {
        let new_bytes: usize = writes
            .iter()
            .filter(|(kind, key)| kind.is_put() && spaces.get(0, key).is_none())
            .map(|(_, key)| 2 * (key.len() + ENTRY_OVERHEAD))
            .sum();
        if new_bytes == 0 {
            return Ok(());
        }
        check("max_index_bytes", max, spaces.heap_bytes() + new_bytes + CHUNK_BYTES)
    }

    proptest! {
        /// Skipping the searches when the batch fits anyway never changes
        /// whether a batch is accepted, nor the error it gets.
        #[test]
        fn reserve_gives_the_searching_verdict(
            indexed in prop::collection::vec(prop::collection::vec(0u8..3, 1..6), 1..100),
            batch in prop::collection::vec((any::<bool>(), prop::collection::vec(0u8..3, 1..6)), 0..40),
            // Around the boundary: the chunk allowance plus at most
            // 40 new keys of 5 bytes.
            slack in CHUNK_BYTES - 64..CHUNK_BYTES + 40 * 2 * (5 + ENTRY_OVERHEAD) + 64,
        ) {
            let mut spaces = Keyspaces::default();
            for (i, key) in indexed.iter().enumerate() {
                spaces.apply(0, OpKind::Put, key, Loc::new(1, i as u64), Deletes::OfHeldKeys);
            }
            let writes: Vec<(OpKind, Vec<u8>)> = batch
                .into_iter()
                .map(|(put, key)| (if put { OpKind::Put } else { OpKind::Delete }, key))
                .collect();
            let max = spaces.heap_bytes() + slack;
            let got = spaces.reserve(max, Deletes::OfHeldKeys, writes.iter().map(|(kind, key)| (0, *kind, &key[..])));
            let want = searching_verdict(&spaces, max, &writes);
            prop_assert_eq!(format!("{got:?}"), format!("{want:?}"));
        }
    }

    #[test]
    fn keyspaces_are_separate_and_counted_together() {
        let mut spaces = Keyspaces::default();
        let held = Deletes::OfHeldKeys;
        assert_eq!(spaces.apply(1, OpKind::Delete, b"k", Loc::new(1, 8), held), None, "no keyspace made");
        assert_eq!(spaces.heap_bytes(), 0);
        spaces.apply(1, OpKind::Put, b"k", Loc::new(1, 8), held);
        spaces.apply(2, OpKind::PutRef, b"k", Loc::new(1, 16), held);
        assert_eq!(
            (spaces.get(1, b"k"), spaces.get(2, b"k")),
            (Some(Loc::new(1, 8).to_u64()), Some(Loc::new(1, 16).to_u64()))
        );
        assert_eq!((spaces.len(), spaces.live()), (2, 2));
        spaces.apply(2, OpKind::Delete, b"k", Loc::new(1, 24), held);
        assert!(spaces.is_live(1, b"k") && !spaces.is_live(2, b"k"));
        assert_eq!((spaces.len(), spaces.live()), (2, 1));
        assert!(spaces.heap_bytes() >= 2 * KEYSPACE_OVERHEAD);
    }

    #[test]
    fn versioned_deletes_leave_a_tombstone_even_for_keys_never_held() {
        let mut spaces = Keyspaces::default();
        let versioned = Deletes::Versioned;
        assert_eq!(spaces.apply(3, OpKind::Delete, b"k", Loc::new(1, 8), versioned), None);
        assert_eq!(spaces.get(3, b"k"), Some(Loc::new(1, 8).to_u64() | DELETED));
        assert_eq!((spaces.len(), spaces.live()), (1, 0));
        spaces.apply(3, OpKind::Put, b"k", Loc::new(1, 16), versioned);
        spaces.apply(3, OpKind::Delete, b"k", Loc::new(1, 24), versioned);
        assert_eq!((spaces.len(), spaces.live()), (1, 0));
    }
}
