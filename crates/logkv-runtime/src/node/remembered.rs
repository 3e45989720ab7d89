//! The hashes of entries this node verified (or signed) and wrote, the
//! newest [`REMEMBERED_ENTRIES`] of them: the same bytes coming back (its
//! own entries from a shared log) need no second verification.

use std::collections::{HashSet, VecDeque};

/// How many entry hashes a node remembers.
pub const REMEMBERED_ENTRIES: usize = 1 << 16;

/// A bounded set of entry hashes that forgets the oldest first.
#[derive(Default)]
pub(super) struct Remembered {
    set: HashSet<[u8; 32]>,
    order: VecDeque<[u8; 32]>,
}

impl Remembered {
    pub(super) fn contains(&self, hash: &[u8; 32]) -> bool {
        self.set.contains(hash)
    }

    pub(super) fn insert(&mut self, hash: [u8; 32]) {
        if self.set.insert(hash) {
            self.order.push_back(hash);
            if self.order.len() > REMEMBERED_ENTRIES {
                let old = self.order.pop_front().expect("not empty");
                self.set.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::keccak256;

    #[test]
    fn remembered_hashes_are_bounded_and_forget_the_oldest() {
        let mut r = Remembered::default();
        let h = |i: u32| keccak256(&i.to_be_bytes());
        for i in 0..(REMEMBERED_ENTRIES as u32 + 10) {
            r.insert(h(i));
        }
        assert_eq!(r.set.len(), REMEMBERED_ENTRIES);
        assert!(!r.contains(&h(0)) && !r.contains(&h(9)));
        assert!(r.contains(&h(10)) && r.contains(&h(REMEMBERED_ENTRIES as u32 + 9)));
    }
}
