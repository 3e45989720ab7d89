//! A frozen copy of an index, for a checkpoint written in the background:
//! it shares the index's chunks, which the index copies before changing
//! while a snapshot holds them, so taking one costs a pointer per chunk
//! and writers carry on at once.

use std::sync::Arc;

use super::chunk::Chunk;

/// Every key of an index with its metadata, as they were when
/// [`Index::snapshot`](super::Index::snapshot) took it.
#[derive(Debug)]
pub struct Snapshot {
    chunks: Vec<Arc<Chunk>>,
    len: usize,
}

impl Snapshot {
    pub(super) fn new(chunks: Vec<Arc<Chunk>>, len: usize) -> Self {
        Self { chunks, len }
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Every `(key, metadata)` in key order. An iterator rather than a
    /// callback, so a writer can stop at its first I/O error.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], u64)> + '_ {
        self.chunks.iter().flat_map(|c| (0..c.len()).map(move |slot| (c.key(slot), c.meta(slot))))
    }
}
