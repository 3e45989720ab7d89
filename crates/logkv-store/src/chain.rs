//! Walking a key's version chain (each version record points at the one
//! before it) over files that may lie. In a genuine chain the version only
//! decreases, except between two ops of one record (equal versions) and
//! where a walk is sent to a compacted file's newest version. A chain that
//! loops back on itself, which only a crafted or corrupted file can hold
//! (a restored backup, say), would keep a walk going forever: every loop
//! has a step where the version does not decrease, so the locations such
//! steps reach are remembered, and reaching one again is corruption.

use std::collections::HashSet;

use logkv_log::Loc;

/// One walk down one chain.
#[derive(Debug, Default)]
pub(crate) struct ChainWalk {
    previous: Option<u64>,
    /// Locations reached by a step where the version did not decrease:
    /// none in most walks, so no allocation.
    rises: HashSet<u64>,
}

impl ChainWalk {
    /// Records a step to the record at `loc` holding `version`; `false`
    /// if that closes a loop.
    pub(crate) fn step(&mut self, loc: Loc, version: u64) -> bool {
        let rises = self.previous.is_some_and(|previous| version >= previous);
        self.previous = Some(version);
        !rises || self.rises.insert(loc.to_u64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decreasing_chains_and_single_rises_pass_loops_do_not() {
        let mut walk = ChainWalk::default();
        assert!([(1, 9), (2, 7), (3, 7), (4, 8), (5, 2)].iter().all(|&(o, v)| walk.step(Loc::new(1, o), v)));

        let mut walk = ChainWalk::default();
        let lap = [(1, 5), (2, 4), (3, 3)];
        assert!(lap.iter().all(|&(o, v)| walk.step(Loc::new(1, o), v)));
        assert!(lap.iter().all(|&(o, v)| walk.step(Loc::new(1, o), v)), "the first return is a rise");
        assert!(!walk.step(Loc::new(1, 1), 5), "the second is a loop");
    }
}
