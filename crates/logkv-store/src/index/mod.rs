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
//!
//! Chunks are shared, copied on write: a [`Snapshot`] for a checkpoint
//! written in the background costs a pointer per chunk to take, and then
//! the index copies each chunk it changes while the snapshot holds it, so
//! writers are never blocked and the snapshot never changes. Compaction
//! moves and drops version records under the writers' feet, so it updates
//! the index only where a key still points where it found it
//! ([`Index::replace_if`], [`Index::remove_if`]). A checkpoint is loaded
//! with a [`Builder`], which packs the keys, already in order, into chunks
//! without searching.

mod build;
mod chunk;
mod snapshot;

use std::ops::Bound;
use std::sync::Arc;

pub use build::Builder;
use chunk::Chunk;
pub use chunk::{CHUNK_BYTES, ENTRY_OVERHEAD};
pub use snapshot::Snapshot;

/// Heap bytes of a chunk besides its data and slots: the chunk, with the
/// reference counts of the `Arc` that holds it.
const CHUNK_FIXED_BYTES: usize = std::mem::size_of::<Chunk>() + 2 * std::mem::size_of::<usize>();

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
    /// Never empty chunks, in key order. Every change to one goes through
    /// [`Index::modify`], which copies it first if a snapshot shares it.
    chunks: Vec<Arc<Chunk>>,
    /// The [`prefix`] of each chunk's first key.
    firsts: Vec<u64>,
    len: usize,
    /// Sum of the chunks' [`Chunk::heap_bytes`].
    chunk_bytes: usize,
}

impl Index {
    /// Number of keys (deleted ones included: their history is reachable).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Heap bytes held, the figure `max_index_bytes` limits. Chunks a
    /// snapshot shares count in full: they are the index's as much as the
    /// snapshot's. While a snapshot lives, each chunk the index changes is
    /// copied, so the process holds those chunks twice until the snapshot
    /// is dropped; that transient cost is not in this figure.
    pub fn heap_bytes(&self) -> usize {
        self.chunk_bytes
            + self.chunks.len() * CHUNK_FIXED_BYTES
            + self.chunks.capacity() * std::mem::size_of::<Arc<Chunk>>()
            + self.firsts.capacity() * 8
    }

    /// Every key and its metadata as they are now, unchanged by whatever
    /// the index does afterwards. Costs a pointer per chunk (a chunk holds
    /// about 500 keys of 16 bytes); see [`Index::heap_bytes`] for what it
    /// costs while it lives.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::new(self.chunks.clone(), self.len)
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

    /// The chunk and slot of `key`, if present.
    fn locate(&self, key: &[u8]) -> Option<Cursor> {
        if self.chunks.is_empty() {
            return None;
        }
        let chunk = self.chunk_for(key);
        let slot = self.chunks[chunk].find(key).ok()?;
        Some(Cursor { chunk, slot })
    }

    /// The metadata at `at`.
    fn meta(&self, at: Cursor) -> u64 {
        self.chunks[at.chunk].meta(at.slot)
    }

    /// Changes chunk `ci` with `f`, copying the chunk first if a snapshot
    /// shares it, and keeps the byte count.
    fn modify<R>(&mut self, ci: usize, f: impl FnOnce(&mut Chunk) -> R) -> R {
        let before = self.chunks[ci].heap_bytes();
        let r = f(Arc::make_mut(&mut self.chunks[ci]));
        // (A copy or a removal can shrink the bytes, so subtract last.)
        self.chunk_bytes = self.chunk_bytes + self.chunks[ci].heap_bytes() - before;
        r
    }

    /// The metadata of `key`.
    pub fn get(&self, key: &[u8]) -> Option<u64> {
        self.locate(key).map(|at| self.meta(at))
    }

    /// Sets the metadata of `key` only if it is present (never adding a
    /// key), returning the previous metadata: one search where a `get`
    /// followed by an `upsert` would take two.
    pub fn replace(&mut self, key: &[u8], meta: u64) -> Option<u64> {
        let at = self.locate(key)?;
        let old = self.meta(at);
        self.modify(at.chunk, |c| c.set_meta(at.slot, meta));
        Some(old)
    }

    /// Sets the metadata of `key` to `new` only if it is present with
    /// exactly `expected`; returns whether it did. Compaction, having
    /// copied a record, points the key at the copy this way, so a write
    /// that came in meanwhile is not undone.
    pub fn replace_if(&mut self, key: &[u8], expected: u64, new: u64) -> bool {
        match self.locate(key) {
            Some(at) if self.meta(at) == expected => {
                self.modify(at.chunk, |c| c.set_meta(at.slot, new));
                true
            }
            _ => false,
        }
    }

    /// Removes `key` only if its metadata is exactly `expected`; returns
    /// whether it did. Compaction drops a key whose history it dropped
    /// this way, so a write that came in meanwhile is kept.
    pub fn remove_if(&mut self, key: &[u8], expected: u64) -> bool {
        let Some(at) = self.locate(key).filter(|&at| self.meta(at) == expected) else {
            return false;
        };
        self.len -= 1;
        if self.chunks[at.chunk].len() == 1 {
            // Lookups need every chunk to have a first key.
            let gone = self.chunks.remove(at.chunk);
            self.firsts.remove(at.chunk);
            self.chunk_bytes -= gone.heap_bytes();
        } else {
            self.modify(at.chunk, |c| c.remove(at.slot));
            if at.slot == 0 {
                self.firsts[at.chunk] = prefix(self.chunks[at.chunk].key(0));
            }
        }
        true
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
                self.modify(ci, |c| c.set_meta(slot, meta));
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
            if n == 1 || chunk::entry_bytes(key) > CHUNK_BYTES / 2 {
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
        self.modify(ci, |c| c.insert(slot, key, meta));
        if slot == 0 {
            self.firsts[ci] = prefix(key);
        }
        None
    }

    /// Adds `chunk` as chunk number `at`.
    fn add_chunk(&mut self, at: usize, chunk: Chunk) {
        self.chunk_bytes += chunk.heap_bytes();
        self.firsts.insert(at, prefix(chunk.key(0)));
        self.chunks.insert(at, Arc::new(chunk));
    }

    /// Moves chunk `ci`'s entries from `slot` on into a new chunk after it,
    /// packing both. Both halves are new chunks, so a chunk a snapshot
    /// shares is left to it, not copied only to be split.
    fn split(&mut self, ci: usize, slot: usize) {
        let old = &self.chunks[ci];
        let (left, right) = (old.copy(0..slot), old.copy(slot..old.len()));
        // (Packing can shrink the bytes, so subtract last.)
        self.chunk_bytes = self.chunk_bytes + left.heap_bytes() - old.heap_bytes();
        self.chunks[ci] = Arc::new(left);
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
mod tests;
