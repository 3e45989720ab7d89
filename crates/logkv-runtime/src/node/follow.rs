//! Following a shared log: [`Node::catch_up`] applies the entries of any
//! [`Log`] past the node's replay progress.

use super::{Node, Result};
use crate::shared_log::{Log, SharedLogError};

impl Node {
    /// Applies the entries of `log` after `replay_progress().applied_position`
    /// up to the tail seen when the call starts, `batch` at a time (at least
    /// one), each batch by [`Node::apply_replicated_batch`] (signatures
    /// checked on all cores). Returns the new applied position.
    ///
    /// Idempotent: the progress is the source log's position (versions come
    /// from it), so a second call, or a call after the node is reopened,
    /// applies only what it has not. For a node that follows one log and
    /// writes nothing else (local writes would move its versions on the
    /// node's own positions). One caller at a time: a concurrent call fails
    /// on the store's refusal of a version that does not increase
    /// (`StoreError::OutOfOrder`), and applies nothing twice.
    pub fn catch_up(&self, log: &dyn Log, batch: usize) -> Result<u64> {
        let batch = batch.max(1);
        let tail = log.tail()?;
        let mut next = self.replay_progress().applied_position + 1;
        while next <= tail {
            let want = usize::try_from(tail - next + 1).map_or(batch, |left| left.min(batch));
            let entries = log.read(next, want)?;
            if entries.is_empty() {
                let why = format!("read from {next} returned nothing, below the tail {tail}");
                return Err(SharedLogError::Inconsistent(why).into());
            }
            if let Some((i, (p, _))) =
                entries.iter().enumerate().find(|(i, (p, _))| *p != next + *i as u64 || *p > tail)
            {
                let why = format!("read from {next} returned position {p} at index {i}");
                return Err(SharedLogError::Inconsistent(why).into());
            }
            self.apply_replicated_batch(&entries)?;
            next += entries.len() as u64;
        }
        Ok(self.replay_progress().applied_position)
    }
}
