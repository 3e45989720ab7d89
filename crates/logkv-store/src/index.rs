//! The in-memory index: every key, in byte order, with 8 bytes of metadata
//! (where its newest version record is, and whether that is a delete).
//!
//! Per key it costs the key, 12 bytes and the free space of its chunk — not a
//! node, an allocation and a pointer per key as in `BTreeMap<Vec<u8>, _>`.
//! Keys live packed in chunks of at most [`CHUNK_BYTES`], each entry being
//! `key_len u16 | key | meta u64`, with a sorted array of 2-byte slot offsets.
//! A side array holds the first 8 bytes of each chunk's first key, so finding
//! the chunk is a binary search over integers that stays in cache.

use std::cmp::Ordering;
use std::ops::Bound;

/// Bytes of entry data a chunk holds before it splits.
pub const CHUNK_BYTES: usize = 16 * 1024;
/// Bytes an entry adds to its key (length, metadata, slot).
pub const ENTRY_OVERHEAD: usize = 2 + 8 + 2;

#[derive(Debug)]
struct Chunk {
    data: Vec<u8>,
    slots: Vec<u16>,
}

impl Chunk {
    fn new() -> Self {
        Self { data: Vec::with_capacity(CHUNK_BYTES), slots: Vec::new() }
    }

    fn key(&self, slot: usize) -> &[u8] {
        let at = self.slots[slot] as usize;
        let len = u16::from_le_bytes([self.data[at], self.data[at + 1]]) as usize;
        &self.data[at + 2..at + 2 + len]
    }

    fn meta_at(&self, slot: usize) -> usize {
        let at = self.slots[slot] as usize;
        at + 2 + u16::from_le_bytes([self.data[at], self.data[at + 1]]) as usize
    }

    fn meta(&self, slot: usize) -> u64 {
        let at = self.meta_at(slot);
        u64::from_le_bytes(self.data[at..at + 8].try_into().expect("8 bytes"))
    }

    fn set_meta(&mut self, slot: usize, meta: u64) {
        let at = self.meta_at(slot);
        self.data[at..at + 8].copy_from_slice(&meta.to_le_bytes());
    }

    /// `Ok(slot)` if present, else `Err(insertion slot)`.
    fn search(&self, key: &[u8]) -> Result<usize, usize> {
        let (mut lo, mut hi) = (0, self.slots.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.key(mid).cmp(key) {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => return Ok(mid),
            }
        }
        Err(lo)
    }

    fn fits(&self, key: &[u8]) -> bool {
        self.data.len() + 2 + key.len() + 8 <= CHUNK_BYTES
    }

    fn insert(&mut self, slot: usize, key: &[u8], meta: u64) {
        let at = self.data.len();
        self.data.extend_from_slice(&(key.len() as u16).to_le_bytes());
        self.data.extend_from_slice(key);
        self.data.extend_from_slice(&meta.to_le_bytes());
        self.slots.insert(slot, at as u16);
    }

    /// Moves the entries from `slot` on into a new chunk, compacting both.
    fn split_off(&mut self, slot: usize) -> Chunk {
        let mut left = Chunk::new();
        let mut right = Chunk::new();
        for i in 0..self.slots.len() {
            let target = if i < slot { &mut left } else { &mut right };
            let n = target.slots.len();
            target.insert(n, self.key(i), self.meta(i));
        }
        *self = left;
        right
    }

    fn heap_bytes(&self) -> usize {
        self.data.capacity() + self.slots.capacity() * 2
    }
}

/// The first 8 bytes of a key, big-endian and zero-padded: comparing these
/// orders keys correctly except between keys that share them.
fn prefix(key: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = key.len().min(8);
    b[..n].copy_from_slice(&key[..n]);
    u64::from_be_bytes(b)
}

/// A position in the index: chunk and slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cursor {
    chunk: usize,
    slot: usize,
}

/// An ordered map from byte-string keys to `u64` metadata.
#[derive(Debug, Default)]
pub struct Index {
    chunks: Vec<Chunk>,
    firsts: Vec<u64>,
    len: usize,
    chunk_bytes: usize,
}

impl Index {
    /// Number of keys (deleted ones included: their history is reachable).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Heap bytes held, the figure `max_index_bytes` limits.
    pub fn heap_bytes(&self) -> usize {
        self.chunk_bytes + self.chunks.capacity() * std::mem::size_of::<Chunk>() + self.firsts.capacity() * 8
    }

    /// The chunk that holds `key` or would hold it.
    fn chunk_for(&self, key: &[u8]) -> usize {
        let p = prefix(key);
        let lo = self.firsts.partition_point(|&f| f < p);
        let hi = self.firsts.partition_point(|&f| f <= p);
        // Among chunks whose first key shares the prefix, compare full keys.
        let (mut a, mut b) = (lo, hi);
        while a < b {
            let mid = (a + b) / 2;
            if self.chunks[mid].key(0) <= key {
                a = mid + 1;
            } else {
                b = mid;
            }
        }
        a.saturating_sub(1)
    }

    /// The metadata of `key`.
    pub fn get(&self, key: &[u8]) -> Option<u64> {
        if self.chunks.is_empty() {
            return None;
        }
        let c = &self.chunks[self.chunk_for(key)];
        c.search(key).ok().map(|slot| c.meta(slot))
    }

    /// Sets the metadata of `key` only if it is present (never adding a
    /// key), returning the previous metadata: one search where a `get`
    /// followed by an `upsert` would take two.
    pub fn replace(&mut self, key: &[u8], meta: u64) -> Option<u64> {
        if self.chunks.is_empty() {
            return None;
        }
        let c = self.chunk_for(key);
        let c = &mut self.chunks[c];
        let slot = c.search(key).ok()?;
        let old = c.meta(slot);
        c.set_meta(slot, meta);
        Some(old)
    }

    /// Sets the metadata of `key`, returning the previous metadata.
    pub fn upsert(&mut self, key: &[u8], meta: u64) -> Option<u64> {
        debug_assert!(key.len() <= u16::MAX as usize);
        if self.chunks.is_empty() {
            let mut first = Chunk::new();
            first.insert(0, key, meta);
            self.chunk_bytes += first.heap_bytes();
            self.chunks.push(first);
            self.firsts.push(prefix(key));
            self.len = 1;
            return None;
        }
        let mut ci = self.chunk_for(key);
        let mut slot = match self.chunks[ci].search(key) {
            Ok(slot) => {
                let old = self.chunks[ci].meta(slot);
                self.chunks[ci].set_meta(slot, meta);
                return Some(old);
            }
            Err(slot) => slot,
        };
        if !self.chunks[ci].fits(key) {
            let before = self.chunks[ci].heap_bytes();
            let n = self.chunks[ci].slots.len();
            let appending = ci + 1 == self.chunks.len() && slot == n;
            // A key too large to share a chunk, or one that does not fit
            // beside a chunk's only entry, gets a chunk of its own: splitting
            // in the middle would leave an empty chunk (which lookups cannot
            // handle), or grow a chunk past the 64 KiB its u16 slot offsets
            // can address.
            if !appending && (n == 1 || 2 + key.len() + 8 > CHUNK_BYTES / 2) {
                if slot > 0 && slot < n {
                    let right = self.chunks[ci].split_off(slot);
                    // (Compaction can shrink the bytes, so subtract last.)
                    self.chunk_bytes =
                        self.chunk_bytes + self.chunks[ci].heap_bytes() + right.heap_bytes() - before;
                    self.firsts.insert(ci + 1, prefix(right.key(0)));
                    self.chunks.insert(ci + 1, right);
                }
                let at = if slot == 0 { ci } else { ci + 1 };
                let mut alone = Chunk::new();
                alone.insert(0, key, meta);
                self.chunk_bytes += alone.heap_bytes();
                self.chunks.insert(at, alone);
                self.firsts.insert(at, prefix(key));
                self.len += 1;
                return None;
            }
            // Appends (sequential keys) leave full chunks behind; random
            // inserts split in the middle.
            let right = if appending { Chunk::new() } else { self.chunks[ci].split_off(n / 2) };
            let right_first = if right.slots.is_empty() { prefix(key) } else { prefix(right.key(0)) };
            self.chunk_bytes += self.chunks[ci].heap_bytes() + right.heap_bytes() - before;
            self.chunks.insert(ci + 1, right);
            self.firsts.insert(ci + 1, right_first);
            if appending || slot >= n / 2 {
                ci += 1;
                slot -= if appending { n } else { n / 2 };
            }
        }
        let before = self.chunks[ci].heap_bytes();
        self.chunks[ci].insert(slot, key, meta);
        if slot == 0 {
            self.firsts[ci] = prefix(key);
        }
        self.chunk_bytes += self.chunks[ci].heap_bytes() - before;
        self.len += 1;
        None
    }

    /// First position at or after `key` (or after it, if `after`).
    fn seek_forward(&self, key: &[u8], after: bool) -> Cursor {
        let ci = self.chunk_for(key);
        let slot = match self.chunks[ci].search(key) {
            Ok(s) if after => s + 1,
            Ok(s) | Err(s) => s,
        };
        self.normalize(Cursor { chunk: ci, slot })
    }

    fn normalize(&self, mut c: Cursor) -> Cursor {
        while c.chunk < self.chunks.len() && c.slot >= self.chunks[c.chunk].slots.len() {
            c = Cursor { chunk: c.chunk + 1, slot: 0 };
        }
        c
    }

    /// Collects up to `max` entries within bounds, in order (or reverse),
    /// appending `(key, meta)` to `out`.
    pub fn range_page(
        &self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        reverse: bool,
        max: usize,
        out: &mut Vec<(Vec<u8>, u64)>,
    ) {
        if self.chunks.is_empty() {
            return;
        }
        let in_start = |k: &[u8]| match start {
            Bound::Included(s) => k >= s,
            Bound::Excluded(s) => k > s,
            Bound::Unbounded => true,
        };
        let in_end = |k: &[u8]| match end {
            Bound::Included(e) => k <= e,
            Bound::Excluded(e) => k < e,
            Bound::Unbounded => true,
        };
        let mut taken = 0;
        if !reverse {
            let mut c = match start {
                Bound::Included(s) => self.seek_forward(s, false),
                Bound::Excluded(s) => self.seek_forward(s, true),
                Bound::Unbounded => self.normalize(Cursor { chunk: 0, slot: 0 }),
            };
            while taken < max && c.chunk < self.chunks.len() {
                let ch = &self.chunks[c.chunk];
                let k = ch.key(c.slot);
                if !in_end(k) {
                    break;
                }
                out.push((k.to_vec(), ch.meta(c.slot)));
                taken += 1;
                c = self.normalize(Cursor { chunk: c.chunk, slot: c.slot + 1 });
            }
        } else {
            // Position just past the end bound, then walk backwards.
            let mut c = match end {
                Bound::Included(e) => self.seek_forward(e, true),
                Bound::Excluded(e) => self.seek_forward(e, false),
                Bound::Unbounded => Cursor { chunk: self.chunks.len(), slot: 0 },
            };
            while taken < max {
                if c.slot == 0 {
                    if c.chunk == 0 {
                        break;
                    }
                    c.chunk -= 1;
                    c.slot = self.chunks[c.chunk].slots.len();
                    continue;
                }
                c.slot -= 1;
                let ch = &self.chunks[c.chunk];
                let k = ch.key(c.slot);
                if !in_start(k) {
                    break;
                }
                out.push((k.to_vec(), ch.meta(c.slot)));
                taken += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn collect(ix: &Index, start: Bound<&[u8]>, end: Bound<&[u8]>, reverse: bool) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        ix.range_page(start, end, reverse, usize::MAX, &mut out);
        out.into_iter().map(|(k, _)| k).collect()
    }

    #[test]
    fn sequential_inserts_fill_chunks() {
        let mut ix = Index::default();
        for i in 0u32..100_000 {
            ix.upsert(&i.to_be_bytes(), i as u64);
        }
        assert_eq!(ix.len(), 100_000);
        assert_eq!(ix.get(&77_777u32.to_be_bytes()), Some(77_777));
        let per_key = ix.heap_bytes() as f64 / 100_000.0;
        assert!(per_key < 4.0 + 20.0, "{per_key} bytes per key");
    }

    #[test]
    fn keys_sharing_long_prefixes_stay_ordered() {
        let mut ix = Index::default();
        let key = |i: u32| format!("user:profile:{i:08}").into_bytes();
        for i in (0..20_000u32).rev() {
            ix.upsert(&key(i), i.into());
        }
        for i in (0..20_000u32).step_by(997) {
            assert_eq!(ix.get(&key(i)), Some(i.into()));
        }
        let all = collect(&ix, Bound::Unbounded, Bound::Unbounded, false);
        assert!(all.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(all.len(), 20_000);
    }

    proptest! {
        #[test]
        fn behaves_like_a_btreemap(
            ops in prop::collection::vec((prop::collection::vec(0u8..4, 1..12), any::<u64>()), 1..3000),
            lo in prop::collection::vec(0u8..4, 0..4),
            hi in prop::collection::vec(0u8..4, 0..4),
        ) {
            let mut ix = Index::default();
            let mut model = BTreeMap::new();
            for (k, v) in &ops {
                prop_assert_eq!(ix.upsert(k, *v), model.insert(k.clone(), *v));
            }
            prop_assert_eq!(ix.len(), model.len());
            for (k, v) in &model {
                prop_assert_eq!(ix.get(k), Some(*v));
            }
            prop_assert_eq!(ix.get(&[9, 9]), None);
            let bounds = [
                (Bound::Included(&lo[..]), Bound::Excluded(&hi[..])),
                (Bound::Excluded(&lo[..]), Bound::Included(&hi[..])),
                (Bound::Unbounded, Bound::Included(&hi[..])),
                (Bound::Included(&lo[..]), Bound::Unbounded),
            ];
            for (s, e) in bounds {
                if lo > hi && !matches!(s, Bound::Unbounded) && !matches!(e, Bound::Unbounded) {
                    continue;
                }
                let want: Vec<Vec<u8>> = model.range::<[u8], _>((s, e)).map(|(k, _)| k.clone()).collect();
                prop_assert_eq!(&collect(&ix, s, e, false), &want);
                let rev: Vec<Vec<u8>> = want.iter().rev().cloned().collect();
                prop_assert_eq!(collect(&ix, s, e, true), rev);
            }
        }
    }
}
