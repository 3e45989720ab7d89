//! One chunk of the index: packed entries, their slots in key order with
//! probes, and the fences that narrow a search (see the index module doc).
//!
//! A chunk is never empty: the index drops a chunk with its last entry,
//! since a search needs a first key to compare with.

use std::cmp::Ordering;
use std::ops::Range;

/// Bytes of entry data a chunk holds before it splits.
pub const CHUNK_BYTES: usize = 16 * 1024;
/// Bytes an entry adds to its key (length and metadata, slot).
pub const ENTRY_OVERHEAD: usize = 2 + 8 + SLOT_BYTES;
/// Bytes of a slot: a 4-byte probe and a 2-byte offset.
pub(super) const SLOT_BYTES: usize = std::mem::size_of::<Slot>();
/// Longest key a chunk holds: an entry stores its key's length in 2 bytes.
pub(super) const MAX_KEY_BYTES: usize = u16::MAX as usize;
/// Bytes a chunk's data grows by when full (up to [`CHUNK_BYTES`]), and
/// the bytes of removed entries it keeps before it packs itself again: the
/// memory a chunk holds beyond its entries stays under twice this, at the
/// cost of copying the chunk once per this many bytes of new or removed
/// entries.
const DATA_GROWTH: usize = 1024;
/// Slots a chunk's slot array grows by when full. Growing by a fixed step
/// instead of doubling wastes at most this many slots per chunk; the extra
/// copying is small next to the shift every sorted insert already does.
const SLOT_GROWTH: usize = 32;
/// Slots per fence: the search narrows to this many slots using only the
/// chunk's fences.
const FENCE_STRIDE: usize = 16;
/// Fences a chunk keeps, covering `FENCES * FENCE_STRIDE` slots (chunks of
/// keys shorter than 11 bytes hold more, and search their last stretch
/// with a longer binary search).
const FENCES: usize = 48;

/// An entry's place in a chunk, in key order.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// Big-endian key bytes after the chunk's shared prefix, zero-padded.
    probe: [u8; 4],
    /// Offset of the entry in the chunk's data.
    at: u16,
}

/// The 4 bytes of `key` from `from` on, big-endian and zero-padded. Among
/// keys that share their first `from` bytes, a smaller probe means a smaller
/// key; equal probes say nothing.
fn probe(key: &[u8], from: usize) -> u32 {
    let mut b = [0u8; 4];
    let tail = key.get(from..).unwrap_or_default();
    let n = tail.len().min(4);
    b[..n].copy_from_slice(&tail[..n]);
    u32::from_be_bytes(b)
}

/// Bytes an entry of `key` takes in a chunk's data.
pub(super) fn entry_bytes(key: &[u8]) -> usize {
    2 + key.len() + 8
}

/// Appends the entry `key_len u16 | key | meta u64` to `data`; returns its
/// offset, which the caller keeps under 64 KiB.
pub(super) fn encode(data: &mut Vec<u8>, key: &[u8], meta: u64) -> u16 {
    let at = data.len() as u16;
    data.extend_from_slice(&(key.len() as u16).to_le_bytes());
    data.extend_from_slice(key);
    data.extend_from_slice(&meta.to_le_bytes());
    at
}

/// The key of the entry at offset `at` of `data`.
fn entry_key(data: &[u8], at: u16) -> &[u8] {
    let at = at as usize;
    let len = u16::from_le_bytes([data[at], data[at + 1]]) as usize;
    &data[at + 2..at + 2 + len]
}

/// Length of the longest common prefix of `a` and `b`.
fn shared_len(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

#[derive(Debug)]
pub(super) struct Chunk {
    data: Vec<u8>,
    slots: Vec<Slot>,
    /// Every key in the chunk starts with the same `common` bytes (it may
    /// share more); the probes are taken from this offset.
    common: usize,
    /// Bytes of `data` that removed entries left behind.
    dead: usize,
    /// The probe of every `FENCE_STRIDE`th slot, so a search meets the slot
    /// array only at the stretch of slots it narrowed to. Every search in
    /// the chunk reads them, so they stay in cache. (The index holds chunks
    /// behind pointers, so they cost its chunk table nothing.)
    fences: [u32; FENCES],
}

impl Clone for Chunk {
    /// A packed copy: no spare room and no removed entries' bytes, so a
    /// chunk copied because a snapshot shares it costs only its entries.
    fn clone(&self) -> Self {
        self.copy(0..self.len())
    }
}

impl Chunk {
    /// Entries in the chunk.
    pub(super) fn len(&self) -> usize {
        self.slots.len()
    }

    /// A chunk holding one entry.
    pub(super) fn with_entry(key: &[u8], meta: u64) -> Self {
        let mut c =
            Self { data: Vec::new(), slots: Vec::new(), common: key.len(), dead: 0, fences: [0; FENCES] };
        c.push(key, meta);
        c
    }

    /// A chunk of the entries of `data` at offsets `ats`, which are in
    /// strictly increasing key order and not empty: the common prefix, the
    /// probes and the fences are taken once for all of them, and the chunk
    /// gets no spare room.
    pub(super) fn packed(data: &[u8], ats: &[u16]) -> Chunk {
        let common = shared_len(entry_key(data, ats[0]), entry_key(data, ats[ats.len() - 1]));
        let slots =
            ats.iter().map(|&at| Slot { probe: probe(entry_key(data, at), common).to_be_bytes(), at });
        let mut c =
            Chunk { data: data.to_vec(), slots: slots.collect(), common, dead: 0, fences: [0; FENCES] };
        c.set_fences(0);
        c
    }

    pub(super) fn key_at(&self, at: u16) -> &[u8] {
        entry_key(&self.data, at)
    }

    pub(super) fn key(&self, slot: usize) -> &[u8] {
        self.key_at(self.slots[slot].at)
    }

    pub(super) fn meta_at(&self, slot: usize) -> usize {
        let at = self.slots[slot].at as usize;
        at + 2 + u16::from_le_bytes([self.data[at], self.data[at + 1]]) as usize
    }

    pub(super) fn meta(&self, slot: usize) -> u64 {
        let at = self.meta_at(slot);
        u64::from_le_bytes(self.data[at..at + 8].try_into().expect("8 bytes"))
    }

    pub(super) fn set_meta(&mut self, slot: usize, meta: u64) {
        let at = self.meta_at(slot);
        self.data[at..at + 8].copy_from_slice(&meta.to_le_bytes());
    }

    /// `Ok(slot)` if present. Otherwise `Err` of the insertion slot — but
    /// only for a key that shares the chunk's common prefix (see [`search`]).
    ///
    /// Slots are ordered by probe, then by key, and a key that shares the
    /// common prefix sorts among them the same way. The fences narrow the
    /// search to `FENCE_STRIDE` slots, whose probes are counted; a key is
    /// read only where probes tie.
    ///
    /// [`search`]: Chunk::search
    pub(super) fn find(&self, key: &[u8]) -> Result<usize, usize> {
        let wanted = probe(key, self.common);
        // Slots before the last fence below `wanted` are below it; slots
        // from the first fence above it on are above it.
        let n = self.slots.len();
        let fences = &self.fences[..n.div_ceil(FENCE_STRIDE).min(FENCES)];
        let below = fences.partition_point(|&f| f < wanted);
        let upto = below + fences[below..].partition_point(|&f| f == wanted);
        let lo = below.saturating_sub(1) * FENCE_STRIDE;
        let hi = if upto == fences.len() { n } else { upto * FENCE_STRIDE };
        let stretch = &self.slots[lo..hi];
        if stretch.len() > FENCE_STRIDE {
            // Probes tie across fences, or past the last fence.
            return stretch
                .binary_search_by(|s| {
                    u32::from_be_bytes(s.probe).cmp(&wanted).then_with(|| self.key_at(s.at).cmp(key))
                })
                .map(|i| lo + i)
                .map_err(|i| lo + i);
        }
        // Counting, not halving: the loads do not wait on one another, so
        // the stretch's cache lines are fetched together.
        let mut i = lo + stretch.iter().filter(|s| u32::from_be_bytes(s.probe) < wanted).count();
        while i < hi && u32::from_be_bytes(self.slots[i].probe) == wanted {
            match self.key_at(self.slots[i].at).cmp(key) {
                Ordering::Less => i += 1,
                Ordering::Equal => return Ok(i),
                Ordering::Greater => break,
            }
        }
        Err(i)
    }

    /// `Ok(slot)` if present, else `Err(insertion slot)`.
    pub(super) fn search(&self, key: &[u8]) -> Result<usize, usize> {
        self.find(key).map_err(|slot| {
            // A key that does not share the common prefix goes before or
            // after every key here; its probe does not tell which.
            let common = &self.key(0)[..self.common];
            match key[..key.len().min(self.common)].cmp(common) {
                Ordering::Less => 0,
                Ordering::Equal => slot,
                Ordering::Greater => self.slots.len(),
            }
        })
    }

    pub(super) fn fits(&self, key: &[u8]) -> bool {
        self.data.len() + entry_bytes(key) <= CHUNK_BYTES
    }

    /// Inserts at `slot` (from [`Chunk::search`]).
    pub(super) fn insert(&mut self, slot: usize, key: &[u8], meta: u64) {
        // Only a new first or last key can share less with the others, and
        // then every probe must be taken again from the new offset.
        if slot == 0 || slot == self.slots.len() {
            let shared = shared_len(key, self.key(0));
            if shared < self.common {
                self.common = shared;
                for i in 0..self.slots.len() {
                    self.slots[i].probe = probe(self.key(i), shared).to_be_bytes();
                }
                self.set_fences(0);
            }
        }
        let at = self.append(key, meta);
        self.reserve_slot();
        self.slots.insert(slot, at);
        self.set_fences(slot);
    }

    /// Removes the entry at `slot`, which is not the chunk's only one.
    /// Its bytes stay in the data until removed entries add up to
    /// [`DATA_GROWTH`], and then the chunk is packed, so removing costs a
    /// copy of the chunk per that many bytes rather than one per entry.
    /// (The common prefix stays right: fewer keys share at least as much.)
    pub(super) fn remove(&mut self, slot: usize) {
        debug_assert!(self.slots.len() > 1, "an index drops a chunk with its last entry");
        self.dead += self.meta_at(slot) + 8 - self.slots[slot].at as usize;
        self.slots.remove(slot);
        if self.dead >= DATA_GROWTH {
            *self = self.copy(0..self.slots.len());
        } else {
            self.set_fences(slot);
        }
    }

    /// Adds an entry after every other; `key` must sort last and share the
    /// common prefix.
    pub(super) fn push(&mut self, key: &[u8], meta: u64) {
        let at = self.append(key, meta);
        self.reserve_slot();
        self.slots.push(at);
        self.set_fences(self.slots.len() - 1);
    }

    /// Takes the fences again from the one covering `slot` on.
    pub(super) fn set_fences(&mut self, slot: usize) {
        let end = self.slots.len().div_ceil(FENCE_STRIDE).min(FENCES);
        for f in slot / FENCE_STRIDE..end {
            self.fences[f] = u32::from_be_bytes(self.slots[f * FENCE_STRIDE].probe);
        }
    }

    /// Appends the entry's bytes; returns its slot.
    fn append(&mut self, key: &[u8], meta: u64) -> Slot {
        let len = self.data.len();
        let entry = entry_bytes(key);
        if len + entry > self.data.capacity() {
            let step = DATA_GROWTH.min(CHUNK_BYTES.saturating_sub(len));
            self.data.reserve_exact(entry.max(step));
        }
        let at = encode(&mut self.data, key, meta);
        Slot { probe: probe(key, self.common).to_be_bytes(), at }
    }

    pub(super) fn reserve_slot(&mut self) {
        if self.slots.len() == self.slots.capacity() {
            self.slots.reserve_exact(SLOT_GROWTH);
        }
    }

    /// A new chunk with the entries of `slots` (not empty), packed, with
    /// no spare room.
    pub(super) fn copy(&self, slots: Range<usize>) -> Chunk {
        let common = shared_len(self.key(slots.start), self.key(slots.end - 1));
        let bytes = slots.clone().map(|i| self.meta_at(i) + 8 - self.slots[i].at as usize).sum();
        let mut c = Chunk {
            data: Vec::with_capacity(bytes),
            slots: Vec::with_capacity(slots.len()),
            common,
            dead: 0,
            fences: [0; FENCES],
        };
        for i in slots {
            c.push(self.key(i), self.meta(i));
        }
        c
    }

    /// Bytes the chunk holds on the heap besides itself.
    pub(super) fn heap_bytes(&self) -> usize {
        self.data.capacity() + self.slots.capacity() * SLOT_BYTES
    }
}
