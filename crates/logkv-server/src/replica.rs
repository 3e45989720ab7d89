//! A node on a shared log (any [`SharedLog`]: JetStream, a file log of
//! entries, memory): its writes are appended to the log and answered once
//! the node has applied them from it, and a follower thread applies
//! everything the log delivers through [`Node::follow`]
//! (docs/distributed.md).
//!
//! A write is acknowledged only after the log acknowledged the entry (for
//! JetStream: stored by a majority of the stream's replicas) *and* this
//! node applied it, so the writer can read it here at once. Waiters are
//! keyed by the entry's keccak256, registered before the append, so the
//! follower cannot apply an entry before someone is there to hear of it.
//!
//! The log may be trimmed below what nodes still need. A node whose next
//! position is gone refuses to start ([`ReplicaError::Trimmed`]): it can
//! only be seeded from another node's checkpoint. One that falls behind a
//! trim while running stops following, like a node that cannot apply an
//! entry, rather than skip what it never saw.
//!
//! The replica runs its own small async runtime: the follower thread
//! drives the log's futures on it, and the appends the commit pipeline
//! hands over (`ReplicaSequencer`) run there, so stopping the replica
//! stops them too.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use indicatif::{ProgressBar, ProgressStyle};
use logkv_runtime::apply::{TxResult, Watched};
use logkv_runtime::entry::EntryOutcome;
use logkv_runtime::envelope::EntryView;
use logkv_runtime::node::follow::{Following, Step};
use logkv_runtime::node::{Applied, Node, NodeError};
use logkv_runtime::pipeline::{Done, Sequencer};
use logkv_runtime::shared_log::{LogEntry, SharedLog, SharedLogError};
use logkv_runtime::signing::{keccak256, Signer};
use logkv_runtime::types::version_position;
use parking_lot::Mutex;
use tokio::runtime::{Handle, Runtime};
use tokio::sync::oneshot;

use crate::digest_exchange::{DigestExchange, DigestSettings};

/// Times an entry of the node's own is signed again after losing its
/// nonce to another node.
const MAX_RESIGN: usize = 8;

/// Entries applied per batch at most.
const APPLY_BATCH: usize = 1024;

/// Entries the follower holds at most: a batch in each stage of the
/// apply stages (verifying, applying, syncing) and one read ahead.
const READ_AHEAD: usize = 4 * APPLY_BATCH;

/// How long the follower waits for entries before checking for shutdown.
const POLL: Duration = Duration::from_millis(100);

/// The file in the data directory naming the log the node's copy belongs
/// to.
const MARKER: &str = "shared-log.toml";

/// Why a node cannot follow the shared log.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// The log cannot be read.
    #[error("shared log {log}: {source}")]
    Log {
        /// The log's identity.
        log: String,
        /// Why.
        source: SharedLogError,
    },
    /// The data directory belongs to another log or watched set.
    #[error("data directory {dir}: {why}")]
    WrongDirectory {
        /// The directory.
        dir: String,
        /// What it belongs to instead.
        why: String,
    },
    /// The follower thread or the replica's runtime cannot be started.
    #[error("cannot start the follower: {0}")]
    Thread(std::io::Error),
    /// The log no longer holds the position this node needs next.
    #[error(
        "{log} was trimmed past this node's position: it now starts at position {first_kept}, \
         but this node has applied up to position {applied} and needs {} next; start this node from a \
         checkpoint exported by another node (`logkv checkpoint export` on a node that is caught up, then \
         `logkv checkpoint import` into this node's data directory)",
        applied + 1
    )]
    Trimmed {
        /// The log's identity.
        log: String,
        /// The stream's first position.
        first_kept: u64,
        /// What this node has applied.
        applied: u64,
    },
    /// The marker file cannot be read or written.
    #[error("data directory marker {path}: {source}")]
    Marker {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

type Answer = oneshot::Sender<Result<Applied, NodeError>>;

/// The writers waiting for their entries, by keccak256, and why the
/// follower stopped if it failed (then nobody is added any more).
#[derive(Default)]
struct Waiting {
    answers: HashMap<[u8; 32], Vec<Answer>>,
    failed: Option<String>,
}

/// The shared log, the follower applying it, and the writers waiting.
pub struct Replica<L> {
    log: L,
    /// Where the follower's and the appends' futures run; `None` once
    /// stopped.
    runtime: Mutex<Option<Runtime>>,
    handle: Handle,
    /// The writers waiting and whether the follower failed, under one
    /// lock: a writer that found no failure is registered before
    /// [`Replica::give_up`] can drain the waiters, so none waits forever.
    waiting: Mutex<Waiting>,
    /// Every position up to here is applied (or not for this node).
    through: AtomicU64,
    /// The log's last position when the node started: it serves once
    /// `through` reaches it.
    start_tail: u64,
    caught_up: AtomicBool,
    stopping: AtomicBool,
    follower: Mutex<Option<JoinHandle<()>>>,
    /// This node's digests compared with its peers'.
    digests: DigestExchange,
}

impl<L: SharedLog> Replica<L> {
    /// Checks the data directory belongs to `log` (marking a new one), and
    /// starts following from the node's applied position; `advanced` is
    /// called after every applied batch. Publishes the node's digest
    /// reports and compares its peers' as `digests` says. Must not be
    /// called from inside an async runtime.
    pub fn start(
        node: Arc<Node>,
        log: L,
        watched: &Watched,
        data_dir: &Path,
        digests: DigestSettings,
        advanced: Box<dyn Fn() + Send + Sync>,
    ) -> Result<Arc<Replica<L>>, ReplicaError> {
        check_marker(data_dir, &node, &log, watched)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("logkv-replica")
            .enable_all()
            .build()
            .map_err(ReplicaError::Thread)?;
        let from = node.replay_progress().applied_position + 1;
        let failed = |source| ReplicaError::Log { log: log.identity(), source };
        let first_kept = runtime.block_on(log.first_position()).map_err(failed)?;
        if from < first_kept {
            return Err(ReplicaError::Trimmed { log: log.identity(), first_kept, applied: from - 1 });
        }
        let start_tail = runtime.block_on(log.tail()).map_err(failed)?;
        // Subscribed before following: no report of a position this node
        // passes is missed for want of a subscription.
        let reports = runtime.block_on(log.digest_reports()).map_err(failed)?;
        let (digest, version) = node.state_digest();
        let digests = DigestExchange::new(digests, watch_text(watched), version_position(version), digest);
        let following = node.follow(&log, watched);
        tracing::info!(log = %log.identity(), from, tail = start_tail, "following the shared log");
        let replica = Arc::new(Replica {
            log,
            handle: runtime.handle().clone(),
            runtime: Mutex::new(Some(runtime)),
            waiting: Mutex::new(Waiting::default()),
            through: AtomicU64::new(from - 1),
            start_tail,
            caught_up: AtomicBool::new(from > start_tail),
            stopping: AtomicBool::new(false),
            follower: Mutex::new(None),
            digests,
        });
        let r = replica.clone();
        replica.spawn(async move { r.digests.publish(&r.log).await });
        let r = replica.clone();
        replica.spawn(async move { r.digests.listen(reports).await });
        let r = replica.clone();
        let thread = std::thread::Builder::new()
            .name("logkv-follow".into())
            .spawn(move || r.follow(&node, following, advanced))
            .map_err(ReplicaError::Thread)?;
        *replica.follower.lock() = Some(thread);
        Ok(replica)
    }

    /// Appends `entry` (whose keccak256 is `hash`) and waits until this
    /// node applied it. An entry already in the stream and applied long
    /// ago (a resubmission) is reported, not waited for forever.
    pub async fn append(&self, entry: Bytes, hash: [u8; 32]) -> Result<Applied, NodeError> {
        let (answer, answered) = oneshot::channel();
        {
            let mut waiting = self.waiting.lock();
            if let Some(why) = &waiting.failed {
                let why = format!("this node stopped following: {why}");
                return Err(SharedLogError::Unavailable(why).into());
            }
            waiting.answers.entry(hash).or_default().push(answer);
        }
        let position = match self.log.append(std::slice::from_ref(&entry)).await {
            Ok(p) => p[0],
            Err(e) => {
                self.waiting.lock().answers.remove(&hash);
                return Err(e.into());
            }
        };
        // The follower answers before it moves `through`: a waiter still
        // here once `through` passed the position was never answered.
        if self.through() >= position && self.waiting.lock().answers.remove(&hash).is_some() {
            let why = format!("this entry is already in the log at position {position}");
            return Err(SharedLogError::Refused(why).into());
        }
        answered.await.unwrap_or_else(|_| {
            Err(SharedLogError::Unavailable("the follower stopped before applying the entry".into()).into())
        })
    }

    /// [`Replica::append`] of an entry `node` signed as `signer`. If every
    /// transaction comes back `Replayed` — another node signing as the
    /// same account (a user of the users file, a shared key) used the
    /// nonce first — the transactions are signed again at a fresh nonce:
    /// applying the other entry moved the node's counter past it.
    pub async fn append_own(
        &self,
        node: &Node,
        signer: &Signer,
        mut entry: Bytes,
        mut hash: [u8; 32],
    ) -> Result<Applied, NodeError> {
        for attempt in 1.. {
            let applied = self.append(entry.clone(), hash).await?;
            let replayed = matches!(&applied.outcome, EntryOutcome::Applied(results)
                if !results.is_empty() && results.iter().all(|r| matches!(r, Some(TxResult::Replayed))));
            if !replayed || attempt == MAX_RESIGN {
                return Ok(applied);
            }
            tracing::debug!(attempt, "nonce used by another node first; signing again");
            let view = EntryView::parse(&entry).map_err(NodeError::Envelope)?;
            let (bytes, h) = node.sign_entry(signer, view.to_entry().txs, view.protocol())?;
            (entry, hash) = (Bytes::from(bytes), h);
        }
        unreachable!("the loop returns by its last attempt")
    }

    /// Every position up to this one is applied or not for this node.
    pub fn through(&self) -> u64 {
        self.through.load(Ordering::Acquire)
    }

    /// Whether the node has applied the log up to where it stood when the
    /// node started (and the follower has not failed).
    pub fn caught_up(&self) -> bool {
        self.caught_up.load(Ordering::Acquire) && self.waiting.lock().failed.is_none()
    }

    /// Why the follower stopped, if it failed.
    pub fn failure(&self) -> Option<String> {
        self.waiting.lock().failed.clone()
    }

    /// The log's last position when the node started.
    pub fn start_tail(&self) -> u64 {
        self.start_tail
    }

    /// This node's digests compared with its peers'.
    pub fn digests(&self) -> &DigestExchange {
        &self.digests
    }

    /// The shared log.
    pub fn log(&self) -> &L {
        &self.log
    }

    /// Runs an append (or anything else that needs the log) on the
    /// replica's runtime, which lives until [`Replica::stop`].
    pub fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        self.handle.spawn(task);
    }

    /// What the commit pipeline hands `node`'s entries to.
    pub fn sequencer(self: &Arc<Self>, node: Arc<Node>) -> Arc<dyn Sequencer> {
        Arc::new(ReplicaSequencer { replica: self.clone(), node })
    }

    /// Stops the follower thread (after the batches in flight), then the
    /// appends still in flight (retrying while the log is unreachable), so
    /// nothing holds the node. Must not be called from inside an async
    /// runtime.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        if let Some(t) = self.follower.lock().take() {
            let _ = t.join();
        }
        if let Some(runtime) = self.runtime.lock().take() {
            runtime.shutdown_timeout(Duration::from_secs(5));
        }
    }

    /// The follower thread: applies what the log delivers through the
    /// node's [`ApplyStages`](logkv_runtime::node::follow::ApplyStages) (the next
    /// batch read ahead and verified while one is applied and the one
    /// before synced), and once a batch is durable answers the writers
    /// waiting for it, moves `through` and reports progress while catching
    /// up. On stopping or a failure, what is in flight is finished first.
    fn follow(&self, node: &Node, following: Following<L::Follower>, advanced: Box<dyn Fn() + Send + Sync>) {
        let progress = Mutex::new(CatchUp::new(self.through(), self.start_tail));
        let durable = |step: Step| {
            self.digests.applied(&step);
            let Step { entries, applied, through } = step;
            self.answer(&entries, applied);
            self.through.store(through, Ordering::Release);
            if !self.caught_up.load(Ordering::Acquire) {
                let mut progress = progress.lock();
                progress.report(through);
                if through >= self.start_tail {
                    self.caught_up.store(true, Ordering::Release);
                    progress.done(through);
                }
            }
            advanced();
        };
        let mut ahead = following.read_ahead(&self.handle, APPLY_BATCH, READ_AHEAD);
        let mut stages = node.apply_stages();
        loop {
            // Stopping: finish what is in flight, take nothing more.
            let stopping = self.stopping.load(Ordering::Acquire);
            if stopping && stages.is_empty() {
                return;
            }
            let ready = if stopping { None } else { ahead.try_next() };
            let next = match ready {
                Some(next) => Some(next),
                None if stopping || !stages.is_empty() => None,
                None => {
                    match self.handle.block_on(async { tokio::time::timeout(POLL, ahead.next()).await }) {
                        Err(_) => continue,
                        Ok(next) => Some(next),
                    }
                }
            };
            let turned = match next {
                None => stages.turn(None, &durable),
                Some(Ok(batch)) => stages.turn(Some(batch), &durable),
                Some(Err(e)) => match stages.drain(&durable) {
                    Err(applying) => Err(applying),
                    Ok(()) => match e {
                        NodeError::SharedLog(e @ SharedLogError::Unavailable(_)) => {
                            tracing::warn!(error = %e, "shared log read failed; retrying");
                            std::thread::sleep(POLL);
                            continue;
                        }
                        // The log no longer holds what this node needs (it
                        // was trimmed) or broke its contract: reading on
                        // would skip entries.
                        NodeError::SharedLog(e) => return self.give_up(&e, || e.clone().into()),
                        e => Err(e),
                    },
                },
            };
            // An entry cannot be applied: every later one waits on it.
            if let Err(e) = turned {
                let e = Arc::new(e);
                return self.give_up(&e, || NodeError::Batch(e.clone()));
            }
        }
    }

    /// Stops following for good: records why (so the node reports it and
    /// refuses requests) and fails every writer waiting with `error`.
    fn give_up(&self, why: &dyn std::fmt::Display, error: impl Fn() -> NodeError) {
        tracing::error!(error = %why, "cannot follow the shared log; this node stops following it");
        let answers = {
            let mut waiting = self.waiting.lock();
            waiting.failed = Some(why.to_string());
            std::mem::take(&mut waiting.answers)
        };
        for (_, answers) in answers {
            for a in answers {
                let _ = a.send(Err(error()));
            }
        }
    }

    /// Answers the writers waiting for any of `entries`.
    fn answer(&self, entries: &[LogEntry], applied: Vec<Applied>) {
        if self.waiting.lock().answers.is_empty() {
            return;
        }
        for (e, applied) in entries.iter().zip(applied) {
            let answers = self.waiting.lock().answers.remove(&keccak256(&e.bytes));
            for a in answers.into_iter().flatten() {
                let _ = a.send(Ok(applied.clone()));
            }
        }
    }
}

/// The commit pipeline's way onto the shared log: each entry is appended
/// on the replica's runtime, and its writers answered once the follower
/// applied it.
struct ReplicaSequencer<L> {
    replica: Arc<Replica<L>>,
    node: Arc<Node>,
}

impl<L: SharedLog> Sequencer for ReplicaSequencer<L> {
    fn append_own(&self, signer: Signer, entry: Vec<u8>, hash: [u8; 32], done: Done) {
        let (replica, node) = (self.replica.clone(), self.node.clone());
        self.replica.spawn(async move { done(replica.append_own(&node, &signer, entry.into(), hash).await) });
    }

    fn append(&self, entry: Vec<u8>, done: Done) {
        let replica = self.replica.clone();
        let hash = keccak256(&entry);
        self.replica.spawn(async move { done(replica.append(entry.into(), hash).await) });
    }
}

/// Catch-up progress: a bar when stderr is a terminal, else a log line
/// about once a second.
struct CatchUp {
    started: Instant,
    from: u64,
    tail: u64,
    last: Instant,
    bar: Option<ProgressBar>,
}

impl CatchUp {
    fn new(from: u64, tail: u64) -> Self {
        let bar = (std::io::stderr().is_terminal() && tail > from).then(|| {
            let style = ProgressStyle::with_template(
                "catching up with the shared log {bar:40} {pos}/{len} positions ({per_sec}, eta {eta})",
            )
            .expect("the template is a valid constant");
            crate::logging::progress_bar(tail).with_style(style).with_position(from)
        });
        CatchUp { started: Instant::now(), from, tail, last: Instant::now(), bar }
    }

    fn report(&mut self, through: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(through.min(self.tail));
            return;
        }
        if self.last.elapsed() < Duration::from_secs(1) {
            return;
        }
        self.last = Instant::now();
        let span = self.tail.saturating_sub(self.from).max(1);
        let done = through.saturating_sub(self.from);
        let pct = done as f64 * 100.0 / span as f64;
        let rate = done as f64 / self.started.elapsed().as_secs_f64();
        tracing::info!(
            through,
            tail = self.tail,
            "catching up with the shared log: {pct:.0}%, {rate:.0} positions/s"
        );
    }

    fn done(&self, through: u64) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        let secs = self.started.elapsed().as_secs_f64();
        let rate = through.saturating_sub(self.from) as f64 / secs.max(1e-9);
        let took_ms = (secs * 1000.0) as u64;
        tracing::info!(through, took_ms, "caught up with the shared log ({rate:.0} positions/s)");
    }
}

/// Checks the data directory's copy belongs to this log and watched set,
/// writing the marker into a new one. A node's copy of one log is not a
/// copy of another (positions would mean different entries), nor is an
/// embedded node's log a copy of any.
fn check_marker(
    dir: &Path,
    node: &Node,
    log: &impl SharedLog,
    watched: &Watched,
) -> Result<(), ReplicaError> {
    let path = dir.join(MARKER);
    let wrong = |why: String| ReplicaError::WrongDirectory { dir: dir.display().to_string(), why };
    let marker = |source| ReplicaError::Marker { path: path.display().to_string(), source };
    let want = marker_text(log, watched);
    match std::fs::read_to_string(&path) {
        Ok(have) if have == want => Ok(()),
        Ok(have) => Err(wrong(format!(
            "it holds a copy of another log or watched set ({MARKER}: {}); use a new data directory",
            have.trim().replace('\n', "; ")
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if node.replay_progress().applied_position > 0 {
                return Err(wrong("it holds an embedded node's log, not a copy of a shared log".into()));
            }
            write_durably(&path, &want).map_err(marker)
        }
        Err(e) => Err(marker(e)),
    }
}

/// Marks `dir` as a copy of `log` for `watched`: what `logkv checkpoint
/// import` does for a directory it seeds with another node's export,
/// which holds a state and so would not be marked at start.
pub fn mark_copy(dir: &Path, log: &impl SharedLog, watched: &Watched) -> Result<(), ReplicaError> {
    let path = dir.join(MARKER);
    write_durably(&path, &marker_text(log, watched))
        .map_err(|source| ReplicaError::Marker { path: path.display().to_string(), source })
}

/// Whether `dir` holds a shared log's copy (an embedded node refuses it).
pub fn is_shared_log_copy(dir: &Path) -> bool {
    dir.join(MARKER).exists()
}

/// The marker: the log's identity (which names a stream's creation, so a
/// stream deleted and created again is another log) and the watched set.
fn marker_text(log: &impl SharedLog, watched: &Watched) -> String {
    format!("log = \"{}\"\nwatch = \"{}\"\n", log.identity(), watch_text(watched))
}

/// The watched set as the marker and digest reports write it: `all`, or
/// the streams comma-separated.
fn watch_text(watched: &Watched) -> String {
    match watched {
        Watched::All => "all".to_string(),
        Watched::Only(s) => s.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(","),
    }
}

fn write_durably(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}
