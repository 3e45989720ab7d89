//! Following a shared log: the one way a log's entries reach a node.
//! [`Node::follow`] starts a [`Following`] at the node's applied position;
//! each [`Following::step`] takes the follower's next batch, checks it
//! keeps the log's contract and applies it with
//! [`Node::apply_replicated_batch`] (signatures checked on all cores,
//! each entry with its position and log time). [`Node::catch_up`] steps
//! until the tail; the server's replica steps for as long as it runs.

use super::{Applied, Node, Result};
use crate::apply::Watched;
use crate::shared_log::{Follower, LogEntry, SharedLog, SharedLogError};

/// A node's reading of a shared log, from its applied position on.
#[derive(Debug)]
pub struct Following<F> {
    follower: F,
    /// Every position up to here was handed over (or is not for the node).
    through: u64,
}

/// What one [`Following::step`] applied.
#[derive(Debug)]
pub struct Step {
    /// The batch's entries, in order.
    pub entries: Vec<LogEntry>,
    /// What the node made of each of them.
    pub applied: Vec<Applied>,
    /// Every position up to here is applied or not for this node.
    pub through: u64,
}

impl Node {
    /// Starts reading `log` after the node's applied position, leaving out
    /// what `watched` does not need where the log can.
    ///
    /// The progress is the log's position (versions come from it), so
    /// following again, or after the node is reopened, applies only what it
    /// has not. For a node that follows one log and writes nothing else
    /// (local writes would move its versions on the node's own positions).
    /// One follower at a time: a second one fails on the store's refusal
    /// of a version that does not increase (`StoreError::OutOfOrder`), and
    /// applies nothing twice.
    pub fn follow<L: SharedLog>(&self, log: &L, watched: &Watched) -> Following<L::Follower> {
        let through = self.replay_progress().applied_position;
        Following { follower: log.follow(through + 1, watched), through }
    }

    /// Applies `log` up to the tail seen when the call starts, `batch`
    /// entries at a time (at least one). Returns the new applied position.
    pub async fn catch_up<L: SharedLog>(&self, log: &L, batch: usize) -> Result<u64> {
        let tail = log.tail().await?;
        let mut following = self.follow(log, &Watched::All);
        while following.through() < tail {
            following.step(self, batch).await?;
        }
        Ok(self.replay_progress().applied_position)
    }
}

impl<F: Follower> Following<F> {
    /// Every position up to here is applied or not for this node.
    pub fn through(&self) -> u64 {
        self.through
    }

    /// Waits for the log's next batch (at most `max` entries) and applies
    /// it. Cancel-safe while it waits: the batch is taken and applied
    /// without another wait. A batch that breaks the log's contract
    /// (positions going back, entries past its `through`) is
    /// [`SharedLogError::Inconsistent`] and nothing of it is applied.
    pub async fn step(&mut self, node: &Node, max: usize) -> Result<Step> {
        let batch = self.follower.next(max.max(1)).await?;
        let mut last = self.through;
        for e in &batch.entries {
            if e.position <= last || e.position > batch.through {
                let why = format!(
                    "position {} handed over after {last}, in a batch through {}",
                    e.position, batch.through
                );
                return Err(SharedLogError::Inconsistent(why).into());
            }
            last = e.position;
        }
        if batch.through < self.through {
            let why = format!("the log went back from {} to {}", self.through, batch.through);
            return Err(SharedLogError::Inconsistent(why).into());
        }
        let applied =
            if batch.entries.is_empty() { Vec::new() } else { node.apply_replicated_batch(&batch.entries)? };
        self.through = batch.through;
        Ok(Step { entries: batch.entries, applied, through: batch.through })
    }
}
