//! Loading an index from keys already in order, as a checkpoint holds
//! them: each key is appended to the chunk being filled, and a chunk's
//! prefix, probes and fences are taken once it is full, where inserting
//! the keys one by one would search for every key and shift slots.

use super::chunk::{self, Chunk, MAX_KEY_BYTES};
use super::{Index, CHUNK_BYTES};

/// Bytes of entries a loaded chunk gets: three quarters of [`CHUNK_BYTES`].
/// Keys written in random order leave chunks about that full (a full chunk
/// splits into halves that fill up again), so a loaded index takes the
/// memory a written one would, and the writes that follow a load find a
/// quarter of each chunk free (about 150 keys of 16 bytes) instead of
/// splitting, and so copying, nearly every chunk they touch.
const FILL_BYTES: usize = CHUNK_BYTES * 3 / 4;

/// A key [`Builder::push`] refused. The builder is unchanged: what it was
/// given before still makes a sound index.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// The key is not greater than the one before it.
    #[error("key number {position} is not greater than the key before it")]
    Unsorted {
        /// Keys accepted before this one.
        position: usize,
    },
    /// The key is longer than an index holds.
    #[error("key number {position} is {key_bytes} bytes, over the {} an index holds", MAX_KEY_BYTES)]
    KeyTooLong {
        /// Keys accepted before this one.
        position: usize,
        /// The key's length.
        key_bytes: usize,
    },
}

/// Builds an [`Index`] from keys given in strictly increasing order.
#[derive(Debug, Default)]
pub struct Builder {
    index: Index,
    /// The entries of the chunk being filled, and their offsets in it.
    data: Vec<u8>,
    ats: Vec<u16>,
    /// The last key accepted, which the next must exceed.
    last: Option<Vec<u8>>,
}

impl Builder {
    /// Adds `key` with `meta`; `key` must be greater than every key before.
    pub fn push(&mut self, key: &[u8], meta: u64) -> Result<(), BuildError> {
        let position = self.index.len + self.ats.len();
        if key.len() > MAX_KEY_BYTES {
            return Err(BuildError::KeyTooLong { position, key_bytes: key.len() });
        }
        if self.last.as_deref().is_some_and(|last| key <= last) {
            return Err(BuildError::Unsorted { position });
        }
        // Sealing before an entry that would pass the fill keeps offsets
        // under 64 KiB; an entry larger than the fill gets a chunk to itself.
        if !self.ats.is_empty() && self.data.len() + chunk::entry_bytes(key) > FILL_BYTES {
            self.seal();
        }
        self.ats.push(chunk::encode(&mut self.data, key, meta));
        let last = self.last.get_or_insert_with(Vec::new);
        last.clear();
        last.extend_from_slice(key);
        Ok(())
    }

    /// The index of every key pushed.
    pub fn finish(mut self) -> Index {
        if !self.ats.is_empty() {
            self.seal();
        }
        self.index
    }

    /// Makes the entries being filled the index's last chunk.
    fn seal(&mut self) {
        let chunk = Chunk::packed(&self.data, &self.ats);
        self.index.len += self.ats.len();
        self.index.add_chunk(self.index.chunks.len(), chunk);
        self.data.clear();
        self.ats.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::tests::{agrees, clustered_key, sound};
    use crate::index::ENTRY_OVERHEAD;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn build<'a>(entries: impl IntoIterator<Item = (&'a Vec<u8>, &'a u64)>) -> Index {
        let mut b = Builder::default();
        for (k, v) in entries {
            b.push(k, *v).expect("keys of a BTreeMap are in order");
        }
        b.finish()
    }

    /// 16-byte keys like those of the memory tests: `i` in hex.
    fn hex_key(i: u64) -> Vec<u8> {
        format!("{i:016x}").into_bytes()
    }

    #[test]
    fn unsorted_and_duplicate_keys_are_refused_and_change_nothing() {
        let mut b = Builder::default();
        b.push(b"b", 1).unwrap();
        b.push(b"c", 2).unwrap();
        assert_eq!(b.push(b"c", 3), Err(BuildError::Unsorted { position: 2 }));
        assert_eq!(b.push(b"a", 3), Err(BuildError::Unsorted { position: 2 }));
        let long = vec![b'z'; MAX_KEY_BYTES + 1];
        assert_eq!(b.push(&long, 3), Err(BuildError::KeyTooLong { position: 2, key_bytes: long.len() }));
        b.push(b"d", 4).unwrap();
        let ix = b.finish();
        let model = BTreeMap::from([(b"b".to_vec(), 1), (b"c".to_vec(), 2), (b"d".to_vec(), 4)]);
        agrees(&ix, &model, b"a", b"z").unwrap();
    }

    #[test]
    fn an_empty_builder_makes_an_empty_index() {
        let mut ix = Builder::default().finish();
        assert_eq!((ix.len(), ix.get(b"a")), (0, None));
        ix.upsert(b"a", 1);
        assert_eq!(ix.get(b"a"), Some(1));
    }

    #[test]
    fn keys_too_large_to_share_a_chunk_get_their_own() {
        let model: BTreeMap<Vec<u8>, u64> = [1usize, 9_000, 2, 13_000, 3, MAX_KEY_BYTES, 4, 5]
            .iter()
            .enumerate()
            .map(|(i, &len)| ([vec![i as u8 + 1], vec![b'k'; len - 1]].concat(), i as u64))
            .collect();
        let ix = build(&model);
        sound(&ix).unwrap();
        agrees(&ix, &model, &[2], &[7]).unwrap();
    }

    #[test]
    fn a_loaded_index_is_packed_yet_takes_random_writes_without_splitting() {
        let n = 100_000;
        let mut b = Builder::default();
        for i in 0..n {
            b.push(&hex_key(2 * i), i).unwrap();
        }
        let mut ix = b.finish();
        let per_key = ix.heap_bytes() as f64 / n as f64;
        assert!(per_key < (16 + ENTRY_OVERHEAD + 1) as f64, "{per_key} bytes per key");
        let chunks = ix.chunks.len();
        // 200 new keys spread over ~210 chunks of ~470 keys, each with room
        // for ~150 more.
        for i in 0..200 {
            ix.upsert(&hex_key(2 * (i * n / 200) + 1), i);
        }
        assert_eq!(ix.chunks.len(), chunks, "no chunk split");
        sound(&ix).unwrap();
    }

    proptest! {
        /// A loaded index answers like a `BTreeMap`, and goes on doing so
        /// through the writes that follow.
        #[test]
        fn a_loaded_index_behaves_like_a_btreemap(
            loaded in prop::collection::btree_map(clustered_key(), any::<u64>(), 0..3000),
            writes in prop::collection::vec((clustered_key(), any::<u64>(), any::<bool>()), 0..1000),
            lo in clustered_key(),
            hi in clustered_key(),
        ) {
            let mut model = loaded;
            let mut ix = build(&model);
            sound(&ix)?;
            agrees(&ix, &model, &lo, &hi)?;
            for (k, v, remove) in writes {
                // Removes the first key from `k` on, if any, so that most
                // removals find their key.
                let found = model.range(k.clone()..).next().map(|(k, v)| (k.clone(), *v));
                match found {
                    Some((k, old)) if remove => {
                        prop_assert!(!ix.remove_if(&k, old ^ 1));
                        prop_assert!(ix.remove_if(&k, old));
                        model.remove(&k);
                    }
                    _ => prop_assert_eq!(ix.upsert(&k, v), model.insert(k, v)),
                }
            }
            sound(&ix)?;
            agrees(&ix, &model, &lo, &hi)?;
        }
    }
}
