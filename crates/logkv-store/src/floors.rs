//! Floors: per keyspace and key prefix, a version below which a key's
//! newest version counts as deleted at that version ([`Store::raise_floor`]).
//!
//! The runtime's stream flush removes every key of a stream (the empty
//! prefix of its keyspace) and voids the stream's expiry keys in the
//! system keyspace (a prefix there) without writing a delete per key;
//! compaction drops such keys whole as if deleted at the floor.
//!
//! [`Store::raise_floor`]: crate::Store::raise_floor

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Every floor raised, by keyspace.
#[derive(Debug, Default)]
pub(crate) struct Floors {
    spaces: BTreeMap<u32, PrefixFloors>,
}

/// The floors of one keyspace. The prefixes' lengths are kept apart so
/// that finding a key's floors costs one hash lookup per distinct length
/// (a handful), however many prefixes have floors.
#[derive(Debug, Default)]
struct PrefixFloors {
    lengths: BTreeSet<usize>,
    floors: HashMap<Vec<u8>, u64>,
}

impl Floors {
    /// Raises the floor of keys of `keyspace` under `prefix` to `version`
    /// (a lower one is ignored).
    pub(crate) fn raise(&mut self, keyspace: u32, prefix: &[u8], version: u64) {
        let space = self.spaces.entry(keyspace).or_default();
        space.lengths.insert(prefix.len());
        let floor = space.floors.entry(prefix.to_vec()).or_default();
        *floor = (*floor).max(version);
    }

    /// The highest floor of a prefix of `key` in `keyspace`, if any.
    pub(crate) fn of(&self, keyspace: u32, key: &[u8]) -> Option<u64> {
        let space = self.spaces.get(&keyspace)?;
        space.lengths.iter().filter_map(|&n| space.floors.get(key.get(..n)?)).copied().max()
    }
}

#[cfg(test)]
mod tests {
    use super::Floors;

    #[test]
    fn a_key_takes_the_highest_floor_of_its_prefixes_in_its_keyspace() {
        let mut floors = Floors::default();
        floors.raise(1, b"e1", 10);
        floors.raise(1, b"e1", 7);
        floors.raise(1, b"q1", 20);
        floors.raise(2, b"", 5);
        assert_eq!(floors.of(1, b"e1-key"), Some(10), "a lower raise is ignored");
        assert_eq!(floors.of(1, b"q1-key"), Some(20));
        assert_eq!(floors.of(1, b"e2-key"), None, "another prefix");
        assert_eq!(floors.of(1, b"e"), None, "shorter than the prefix");
        assert_eq!(floors.of(3, b"e1-key"), None, "another keyspace");
        assert_eq!(floors.of(2, b"anything"), Some(5), "the empty prefix: the whole keyspace");
        floors.raise(1, b"", 15);
        assert_eq!(floors.of(1, b"e1-key"), Some(15));
        assert_eq!(floors.of(1, b"q1-key"), Some(20));
    }
}
