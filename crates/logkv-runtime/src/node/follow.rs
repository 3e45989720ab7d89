//! Following a shared log: the one way a log's entries reach a node.
//! [`Node::follow`] starts a [`Following`] at the node's applied position.
//!
//! Catching up overlaps four stages across batches, so the slowest one
//! sets the pace rather than their sum: while the node is behind a task
//! reads batches ahead ([`Following::read_ahead`], bounded in entries),
//! and each
//! [`ApplyStages::turn`] checks the signatures of batch N+1 on all cores
//! while the caller's thread applies batch N and another thread waits for
//! the local sync of batch N-1. Apply keeps the log's order; a batch is
//! reported (its writers may be answered) only once it is applied and
//! durable. [`Node::catch_up`] runs that until the tail; the server's
//! replica for as long as it runs. [`Following::step`] is the same without
//! the overlap, one batch at a time.

use std::sync::Arc;

use tokio::runtime::Handle;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use super::{Applied, Check, Node, NodeError, Result};
use crate::apply::Watched;
use crate::shared_log::{Batch, Follower, LogEntry, SharedLog, SharedLogError};

/// Entries [`Node::catch_up`] holds at most, in batches of its size: one
/// in each stage (verifying, applying, syncing) and one read ahead.
pub const CATCH_UP_BATCHES: usize = 4;

/// A node's reading of a shared log, from its applied position on.
#[derive(Debug)]
pub struct Following<F> {
    follower: F,
    /// Every position up to here was handed over (or is not for the node).
    through: u64,
}

/// What one [`Following::step`] applied, or one [`ApplyStages::turn`] made
/// durable.
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
    /// entries at a time (at least one), with the stages overlapped
    /// ([`ApplyStages`]) when called on a tokio runtime, which the read-ahead
    /// task runs on. Returns the new applied position.
    pub async fn catch_up<L: SharedLog>(&self, log: &L, batch: usize) -> Result<u64> {
        let tail = log.tail().await?;
        let mut following = self.follow(log, &Watched::All);
        if following.through() >= tail {
            return Ok(self.replay_progress().applied_position);
        }
        let Ok(runtime) = Handle::try_current() else {
            while following.through() < tail {
                following.step(self, batch).await?;
            }
            return Ok(self.replay_progress().applied_position);
        };
        let batch = batch.max(1);
        let mut ahead = following.read_ahead(&runtime, batch, CATCH_UP_BATCHES.saturating_mul(batch));
        let mut stages = self.apply_stages();
        let durable = |_: Step| ();
        let mut read = 0;
        while read < tail {
            let next = match ahead.try_next() {
                Some(next) => next,
                None if !stages.is_empty() => {
                    stages.turn(None, &durable)?;
                    continue;
                }
                None => ahead.next().await,
            };
            let next = match next {
                Ok(next) => next,
                Err(e) => {
                    stages.drain(&durable)?;
                    return Err(e);
                }
            };
            read = next.through;
            stages.turn(Some(next), &durable)?;
        }
        stages.drain(&durable)?;
        Ok(self.replay_progress().applied_position)
    }

    /// An empty [`ApplyStages`] applying to this node.
    pub fn apply_stages(&self) -> ApplyStages<'_> {
        ApplyStages { node: self, verified: None, applied: None }
    }
}

impl<F: Follower> Following<F> {
    /// Every position up to here is applied or not for this node.
    pub fn through(&self) -> u64 {
        self.through
    }

    /// The log's next batch (at most `max` entries), checked against the
    /// log's contract: a batch that breaks it (positions going back,
    /// entries past its `through`) is [`SharedLogError::Inconsistent`].
    /// Cancel-safe while it waits.
    async fn fetch(&mut self, max: usize) -> Result<Batch> {
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
        self.through = batch.through;
        Ok(batch)
    }

    /// Waits for the log's next batch (at most `max` entries) and applies
    /// it. Cancel-safe while it waits: the batch is taken and applied
    /// without another wait. A batch that breaks the log's contract is
    /// [`SharedLogError::Inconsistent`] and nothing of it is applied.
    pub async fn step(&mut self, node: &Node, max: usize) -> Result<Step> {
        let before = self.through;
        let batch = self.fetch(max).await?;
        let applied = if batch.entries.is_empty() {
            Vec::new()
        } else {
            node.apply_replicated_batch(&batch.entries).inspect_err(|_| self.through = before)?
        };
        Ok(Step { entries: batch.entries, applied, through: batch.through })
    }

    /// Batches of at most `max` entries, read ahead on a task on `runtime`
    /// while the node is behind, so the next batch is there when the node
    /// wants it. At most `bound` entries (at least `max`) are held,
    /// counting those handed over and not yet dropped: a batch is asked
    /// for only once a whole one fits, so memory is bounded by `bound`,
    /// not by how far behind the node is. At the tail (a batch came short)
    /// the task hands the follower back and the reader's own thread reads,
    /// sparing each entry a hand-off between threads; a full batch starts
    /// the task again.
    pub fn read_ahead(self, runtime: &Handle, max: usize, bound: usize) -> ReadAhead<F> {
        let max = max.clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
        let bound = bound.clamp(max, Semaphore::MAX_PERMITS);
        ReadAhead {
            runtime: runtime.clone(),
            max,
            // Batches may be empty (only `through` moves): the channel
            // bounds how many wait, the permits how many entries.
            waiting: (bound / max).max(1),
            room: Arc::new(Semaphore::new(bound)),
            mode: Mode::Direct(self),
        }
    }

    /// The next batch with its share of `room` (`max` entries acquired
    /// before asking, the unused part given back).
    async fn fetch_held(&mut self, room: &Arc<Semaphore>, max: usize) -> Result<Fetched> {
        let mut held = room.clone().acquire_many_owned(max as u32).await.map_err(|_| stopped())?;
        let batch = self.fetch(max).await?;
        drop(held.split(max - batch.entries.len()));
        Ok(Fetched { entries: batch.entries, through: batch.through, _held: held })
    }
}

/// A batch read ahead: it counts against its [`ReadAhead`]'s bound until
/// dropped.
#[derive(Debug)]
pub struct Fetched {
    /// The entries, in increasing positions (checked).
    pub entries: Vec<LogEntry>,
    /// Every position up to here is in this batch or an earlier one, or
    /// not for this node.
    pub through: u64,
    _held: OwnedSemaphorePermit,
}

/// A log's batches, read ahead while the node is behind
/// ([`Following::read_ahead`]).
#[derive(Debug)]
pub struct ReadAhead<F> {
    runtime: Handle,
    max: usize,
    waiting: usize,
    room: Arc<Semaphore>,
    mode: Mode<F>,
}

#[derive(Debug)]
enum Mode<F> {
    /// At the tail: [`ReadAhead::next`] reads on the caller's thread.
    Direct(Following<F>),
    /// Behind: a task reads ahead, and returns the following when a batch
    /// comes short or the log fails for good.
    Ahead { batches: mpsc::Receiver<Result<Fetched>>, task: JoinHandle<Following<F>> },
    /// The task did not return (it panicked).
    Gone,
}

impl<F> Drop for ReadAhead<F> {
    fn drop(&mut self) {
        if let Mode::Ahead { task, .. } = &self.mode {
            task.abort();
        }
    }
}

impl<F: Follower> ReadAhead<F> {
    /// The next batch, waiting for it. Cancel-safe. After an error other
    /// than [`SharedLogError::Unavailable`] nothing more comes.
    pub async fn next(&mut self) -> Result<Fetched> {
        loop {
            match &mut self.mode {
                Mode::Direct(following) => {
                    let fetched = following.fetch_held(&self.room, self.max).await?;
                    if fetched.entries.len() == self.max {
                        self.start();
                    }
                    return Ok(fetched);
                }
                Mode::Ahead { batches, task } => {
                    if let Some(next) = batches.recv().await {
                        return next;
                    }
                    self.mode = task.await.map_or(Mode::Gone, Mode::Direct);
                }
                Mode::Gone => return Err(stopped()),
            }
        }
    }

    /// The next batch if one was read ahead; `None` also when reading is
    /// back on the caller's thread (then [`ReadAhead::next`] reads).
    pub fn try_next(&mut self) -> Option<Result<Fetched>> {
        match &mut self.mode {
            Mode::Ahead { batches, .. } => batches.try_recv().ok(),
            _ => None,
        }
    }

    /// Moves the reading to a task: the node is behind.
    fn start(&mut self) {
        let Mode::Direct(mut following) = std::mem::replace(&mut self.mode, Mode::Gone) else {
            return;
        };
        let (room, max) = (self.room.clone(), self.max);
        let (send, batches) = mpsc::channel(self.waiting);
        let task = self.runtime.spawn(async move {
            loop {
                let next = following.fetch_held(&room, max).await;
                let short = matches!(&next, Ok(f) if f.entries.len() < max);
                // After a transient failure the follower is asked again
                // once the reader took the error (the channel is bounded).
                let failed =
                    matches!(&next, Err(e) if !matches!(e, NodeError::SharedLog(SharedLogError::Unavailable(_))));
                if send.send(next).await.is_err() || short || failed {
                    return following;
                }
            }
        });
        self.mode = Mode::Ahead { batches, task };
    }
}

fn stopped() -> NodeError {
    SharedLogError::Unavailable("the read-ahead stopped".into()).into()
}

/// Batches between the read-ahead and durable: one verified and waiting to
/// be applied, one applied and waiting for its local sync. See
/// [`ApplyStages::turn`].
pub struct ApplyStages<'n> {
    node: &'n Node,
    verified: Option<(Fetched, Vec<Check>)>,
    applied: Option<(Fetched, Vec<Applied>)>,
}

impl std::fmt::Debug for ApplyStages<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApplyStages")
            .field("verified", &self.verified.as_ref().map(|(b, _)| b.through))
            .field("applied", &self.applied.as_ref().map(|(b, _)| b.through))
            .finish()
    }
}

impl ApplyStages<'_> {
    /// No batch in flight.
    pub fn is_empty(&self) -> bool {
        self.verified.is_none() && self.applied.is_none()
    }

    /// Moves every batch one stage on: checks the signatures of `next` (if
    /// any) on all cores while this thread applies the batch verified by
    /// the previous turn and another thread waits until the one applied
    /// before it is durable, then calls `durable` with it there. `durable`
    /// sees the batches in the log's order, each applied and durable.
    ///
    /// An entry that cannot be applied stops the stages: the entries
    /// before it are made durable and given to `durable`, then the error is
    /// returned. Signatures are checked without the apply lock, so a batch
    /// may be checked while the one before it is applied.
    pub fn turn(&mut self, next: Option<Fetched>, durable: &(dyn Fn(Step) + Sync)) -> Result<()> {
        let node = self.node;
        let (to_apply, to_sync) = (self.verified.take(), self.applied.take());
        let (mut checked, mut applied, mut synced) = (None, None, None);
        {
            let mut jobs: Vec<Box<dyn FnOnce() + Send + '_>> = Vec::with_capacity(3);
            if let Some((batch, checks)) = to_apply {
                let applied = &mut applied;
                jobs.push(Box::new(move || {
                    let (out, error) = node.apply_checked(&batch.entries, checks);
                    *applied = Some((batch, out, error));
                }));
            }
            if let Some(batch) = next {
                let checked = &mut checked;
                jobs.push(Box::new(move || {
                    let checks = node.checks(&batch.entries);
                    *checked = Some((batch, checks));
                }));
            }
            if let Some((batch, out)) = to_sync {
                let synced = &mut synced;
                jobs.push(Box::new(move || *synced = Some(node.make_durable(batch, out, durable))));
            }
            run_together(jobs);
        }
        synced.unwrap_or(Ok(()))?;
        self.verified = checked;
        if let Some((batch, out, error)) = applied {
            if let Some(e) = error {
                // What was applied before the entry that failed is kept:
                // through the position before it.
                let through = batch.entries[out.len()].position - 1;
                let Fetched { mut entries, _held, .. } = batch;
                entries.truncate(out.len());
                if !out.is_empty() {
                    let kept = Fetched { entries, through, _held };
                    node.make_durable(kept, out, durable)?;
                }
                self.verified = None;
                return Err(e);
            }
            self.applied = Some((batch, out));
        }
        Ok(())
    }

    /// Turns until no batch is in flight.
    pub fn drain(&mut self, durable: &(dyn Fn(Step) + Sync)) -> Result<()> {
        while !self.is_empty() {
            self.turn(None, durable)?;
        }
        Ok(())
    }
}

impl Node {
    /// Waits until the records of `applied` are durable, then hands the
    /// batch to `durable`.
    fn make_durable(&self, batch: Fetched, applied: Vec<Applied>, durable: &dyn Fn(Step)) -> Result<()> {
        if let Some(last) = applied.last() {
            self.store.commit(last.position)?;
        }
        let Fetched { entries, through, _held } = batch;
        durable(Step { entries, applied, through });
        Ok(())
    }
}

/// Runs `jobs` at once: the first on this thread, each other on a thread
/// of its own (none is spawned for a single job).
fn run_together(jobs: Vec<Box<dyn FnOnce() + Send + '_>>) {
    let mut jobs = jobs.into_iter();
    let Some(first) = jobs.next() else { return };
    std::thread::scope(|s| {
        for job in jobs {
            s.spawn(job);
        }
        first();
    });
}
