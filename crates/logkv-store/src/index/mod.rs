//! The in-memory index: every key, in byte order, with 8 bytes of metadata
//! (where its newest version record is, and whether that is a delete).
//!
//! Per key it costs the key, 16 bytes and its share of its chunk's fixed
//! part and spare capacity (about 2 bytes for 16-byte keys) — not a node, an
//! allocation and a pointer per key as in `BTreeMap<Vec<u8>, _>`. Keys live
//! packed in chunks of at most [`CHUNK_BYTES`], each entry being
//! `key_len u16 | key | meta u64`, with an array of 6-byte slots in key order.
//! Chunks grow in small steps rather than being allocated whole, so the
//! space that splits leave free (a quarter, for keys arriving in random
//! order) is not allocated. A side array holds the first 8 bytes of each
//! chunk's first key, so finding the chunk is a binary search over integers
//! that stays in cache.
//!
//! Inside a chunk, entries sit wherever they were appended, so a binary
//! search that read a key at every step would miss the cache at every step.
//! Each slot therefore carries, beside the entry's offset, a *probe*: the
//! 4 key bytes that follow the prefix all the chunk's keys share. Keys in a
//! chunk are neighbours and share a prefix, so its first bytes would tell
//! them apart poorly; the 4 after it do. Every 16th probe is also kept as a
//! fence, so a search narrows to 16 slots without touching the slot array,
//! compares their probes, and reads a key only when probes tie — for a key
//! that is present, that is the one read that confirms it.

mod chunk;

use std::ops::Bound;

use chunk::Chunk;
pub use chunk::{CHUNK_BYTES, ENTRY_OVERHEAD};

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
        c.find(key).ok().map(|slot| c.meta(slot))
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
        let slot = c.find(key).ok()?;
        let old = c.meta(slot);
        c.set_meta(slot, meta);
        Some(old)
    }

    /// Sets the metadata of `key`, returning the previous metadata.
    pub fn upsert(&mut self, key: &[u8], meta: u64) -> Option<u64> {
        debug_assert!(key.len() <= u16::MAX as usize);
        if self.chunks.is_empty() {
            self.add_chunk(0, Chunk::with_entry(key, meta));
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
        self.len += 1;
        if !self.chunks[ci].fits(key) {
            let n = self.chunks[ci].len();
            // Appends (sequential keys) leave full chunks behind.
            if ci + 1 == self.chunks.len() && slot == n {
                self.add_chunk(ci + 1, Chunk::with_entry(key, meta));
                return None;
            }
            // A key too large to share a chunk, or one that does not fit
            // beside a chunk's only entry, gets a chunk of its own: splitting
            // in the middle would leave an empty chunk (which lookups cannot
            // handle), or grow a chunk past the 64 KiB its u16 slot offsets
            // can address.
            if n == 1 || 2 + key.len() + 8 > CHUNK_BYTES / 2 {
                if slot > 0 && slot < n {
                    self.split(ci, slot);
                }
                let at = if slot == 0 { ci } else { ci + 1 };
                self.add_chunk(at, Chunk::with_entry(key, meta));
                return None;
            }
            // Random inserts split in the middle.
            self.split(ci, n / 2);
            if slot >= n / 2 {
                ci += 1;
                slot -= n / 2;
            }
        }
        let before = self.chunks[ci].heap_bytes();
        self.chunks[ci].insert(slot, key, meta);
        if slot == 0 {
            self.firsts[ci] = prefix(key);
        }
        self.chunk_bytes = self.chunk_bytes + self.chunks[ci].heap_bytes() - before;
        None
    }

    /// Adds `chunk` as chunk number `at`.
    fn add_chunk(&mut self, at: usize, chunk: Chunk) {
        self.chunk_bytes += chunk.heap_bytes();
        self.firsts.insert(at, prefix(chunk.key(0)));
        self.chunks.insert(at, chunk);
    }

    /// Moves chunk `ci`'s entries from `slot` on into a new chunk after it.
    fn split(&mut self, ci: usize, slot: usize) {
        let before = self.chunks[ci].heap_bytes();
        let right = self.chunks[ci].split_off(slot);
        // (Compaction can shrink the bytes, so subtract last.)
        self.chunk_bytes = self.chunk_bytes + self.chunks[ci].heap_bytes() - before;
        self.add_chunk(ci + 1, right);
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
        while c.chunk < self.chunks.len() && c.slot >= self.chunks[c.chunk].len() {
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
                    c.slot = self.chunks[c.chunk].len();
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
    fn random_inserts_allocate_little_beyond_their_entries() {
        let mut ix = Index::default();
        let n = 200_000u64;
        for i in 0..n {
            // A bijection on u64 (SplitMix64's finaliser): distinct keys in
            // random order.
            let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ix.upsert(format!("{:016x}", z ^ (z >> 31)).as_bytes(), i);
        }
        // Splits leave chunks about three quarters full; that free space
        // would cost about 9 bytes per key if it were allocated.
        let per_key = ix.heap_bytes() as f64 / n as f64;
        assert!(per_key < (16 + ENTRY_OVERHEAD + 4) as f64, "{per_key} bytes per key");
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

    /// Checks `ix` against `model`: lengths, every key, keys near present
    /// ones (extended, cut short, last byte changed) and ranges from `lo`
    /// to `hi` both ways.
    fn agrees(ix: &Index, model: &BTreeMap<Vec<u8>, u64>, lo: &[u8], hi: &[u8]) -> Result<(), TestCaseError> {
        prop_assert_eq!(ix.len(), model.len());
        for (k, v) in model {
            prop_assert_eq!(ix.get(k), Some(*v));
            let mut longer = k.clone();
            longer.push(0);
            let mut other = k.clone();
            *other.last_mut().expect("keys are not empty") ^= 0x81;
            for near in [longer, k[..k.len() - 1].to_vec(), other] {
                prop_assert_eq!(ix.get(&near), model.get(&near).copied(), "near {:?}", near);
            }
        }
        let bounds = [
            (Bound::Included(lo), Bound::Excluded(hi)),
            (Bound::Excluded(lo), Bound::Included(hi)),
            (Bound::Unbounded, Bound::Included(hi)),
            (Bound::Included(lo), Bound::Unbounded),
        ];
        for (s, e) in bounds {
            if lo > hi && !matches!(s, Bound::Unbounded) && !matches!(e, Bound::Unbounded) {
                continue;
            }
            let want: Vec<Vec<u8>> = model.range::<[u8], _>((s, e)).map(|(k, _)| k.clone()).collect();
            prop_assert_eq!(&collect(ix, s, e, false), &want);
            let rev: Vec<Vec<u8>> = want.iter().rev().cloned().collect();
            prop_assert_eq!(collect(ix, s, e, true), rev);
        }
        Ok(())
    }

    /// Keys that share long prefixes in some chunks and none in others, with
    /// bytes at both ends of the range, long enough to fill many chunks.
    fn clustered_key() -> impl Strategy<Value = Vec<u8>> {
        let heads: Vec<&[u8]> = vec![b"", b"user:", b"user:profile:", &[0; 6], &[0xff; 6]];
        (
            prop::sample::select(heads),
            prop::collection::vec(prop::sample::select(&[0u8, 1, b'a', 0xff][..]), 1..24),
        )
            .prop_map(|(head, tail)| [head, &tail].concat())
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
            prop_assert_eq!(ix.get(&[9, 9]), None);
            agrees(&ix, &model, &lo, &hi)?;
        }

        /// Probes are taken after each chunk's shared prefix, which shrinks
        /// as keys arrive at a chunk's ends and is recomputed at splits.
        #[test]
        fn clustered_keys_behave_like_a_btreemap(
            ops in prop::collection::vec((clustered_key(), any::<u64>(), any::<bool>()), 1..4000),
            lo in clustered_key(),
            hi in clustered_key(),
        ) {
            let mut ix = Index::default();
            let mut model = BTreeMap::new();
            for (k, v, replace_only) in &ops {
                if *replace_only {
                    let old = model.get_mut(k).map(|m| std::mem::replace(m, *v));
                    prop_assert_eq!(ix.replace(k, *v), old);
                } else {
                    prop_assert_eq!(ix.upsert(k, *v), model.insert(k.clone(), *v));
                }
            }
            agrees(&ix, &model, &lo, &hi)?;
        }
    }
}
