//! What every connection of a running server shares: the node, the node's
//! signing identity, the configuration, metrics and the shutdown signal.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use logkv_runtime::codec::native::Body;
use logkv_runtime::node::{Applied, Node, NodeError};
use logkv_runtime::pipeline::{Pipeline, PipelineOptions, Write};
use logkv_runtime::signing::Signer;
use logkv_runtime::types::{tx_version, version_position};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::ServeConfig;
use crate::io_failures::IoFailures;
use crate::metrics::Metrics;
use crate::replica::Replica;
use crate::session::ServerState;
use crate::shared_log::ServerLog;

/// State shared by all connections.
pub struct Shared {
    /// The node every request reads from and writes to.
    pub node: Arc<Node>,
    /// The node's own identity: RESP writes are signed with it unless
    /// `AUTH` chose another.
    pub identity: Signer,
    /// The configuration the server started with.
    pub config: ServeConfig,
    /// Counters and latencies for `/metrics`.
    pub metrics: Metrics,
    /// Writes failing on I/O, reported once per episode in the log.
    pub(crate) io_failures: IoFailures,
    /// Signs and commits the writes of every connection.
    pub pipeline: Pipeline,
    /// The shared log the node follows, if not its own file log.
    pub replica: Option<Arc<Replica<ServerLog>>>,
    /// Cancelled when the server starts shutting down: listeners stop
    /// accepting and idle connections close.
    pub shutdown: CancellationToken,
    /// Every connection task, so shutdown can wait for in-flight requests.
    pub tasks: TaskTracker,
    /// When the server started (for `admin_nodeInfo`'s uptime).
    pub started: Instant,
    /// The newest version readers see, as of the last write that went
    /// through [`Shared::append`] or [`Shared::submit`]: waiters
    /// (`kv_waitForVersion`, `kv_watch`) subscribe instead of polling.
    versions: watch::Sender<u64>,
    /// What RESP sessions share: the users file's users, `SCAN` cursors,
    /// counters (`crate::session`).
    pub resp: ServerState,
    ready: AtomicBool,
}

impl Shared {
    /// Shared state for a node that has finished opening, with the RESP
    /// sessions' state loaded from `config` ([`ServerState::load`]), on
    /// `replica`'s shared log if there is one.
    pub fn new(
        node: Arc<Node>,
        identity: Signer,
        config: ServeConfig,
        resp: ServerState,
        replica: Option<Arc<Replica<ServerLog>>>,
    ) -> Shared {
        let versions = watch::Sender::new(node.replay_progress().applied_version);
        let sequencer = replica.as_ref().map(|r| r.sequencer(node.clone()));
        let options = PipelineOptions { queue_bytes: config.write_queue_bytes };
        let pipeline = Pipeline::start(Arc::clone(&node), sequencer, options);
        Shared {
            node,
            identity,
            config,
            metrics: Metrics::default(),
            io_failures: IoFailures::default(),
            pipeline,
            replica,
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            started: Instant::now(),
            versions,
            resp,
            ready: AtomicBool::new(false),
        }
    }

    /// Whether the node serves requests (`/readyz`): listening, caught up
    /// with the shared log if it follows one, not shutting down, and no
    /// damage the scrubber found holds a key's current version (damage to
    /// older versions or checkpoints only marks the node degraded).
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
            && !self.shutdown.is_cancelled()
            && !self.metrics.scrub.reads_fail()
            && self.replica.as_ref().is_none_or(|r| r.caught_up())
    }

    /// Why the node cannot serve data requests yet: it is still catching
    /// up with the shared log, or stopped following it.
    pub fn not_serving(&self) -> Option<String> {
        let replica = self.replica.as_ref()?;
        if let Some(why) = replica.failure() {
            return Some(format!("this node stopped following the shared log: {why}"));
        }
        (!replica.caught_up()).then(|| {
            format!(
                "catching up with the shared log: through {} of {}",
                replica.through(),
                replica.start_tail()
            )
        })
    }

    /// Marks the node ready once every listener is bound.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    /// Commits `txs`, planned native transactions, signed by `signer` in
    /// an entry shared with concurrent writers; answers once it is durable
    /// per the durability mode and applied.
    pub async fn append(&self, signer: Signer, txs: Vec<Body>) -> Result<Applied, NodeError> {
        let applied = self.pipeline.write(Write::Local { signer, txs }).await;
        self.io_failures.note(&applied);
        self.versions_advanced();
        applied
    }

    /// Commits a client's signed entry; on a shared log, appends it there
    /// and answers once the node applied it.
    pub async fn submit(&self, entry: Vec<u8>) -> Result<Applied, NodeError> {
        let applied = self.pipeline.write(Write::Signed(entry)).await;
        self.io_failures.note(&applied);
        self.versions_advanced();
        applied
    }

    /// The newest version readers see: the node's, or on a shared log the
    /// last version of the position it has read through (a node watching
    /// some streams has nothing to apply for the others' positions).
    pub fn visible_version(&self) -> u64 {
        let own = self.node.replay_progress().applied_version;
        match &self.replica {
            Some(r) if r.through() > version_position(own) => tx_version(r.through(), u16::MAX),
            _ => own,
        }
    }

    /// Publishes the node's newest visible version to the waiters, if it
    /// moved (every write path calls it once its write is acknowledged).
    pub fn versions_advanced(&self) {
        let now = self.visible_version();
        self.versions.send_if_modified(|seen| {
            let moved = now > *seen;
            if moved {
                *seen = now;
            }
            moved
        });
    }

    /// A receiver of the newest visible version, woken whenever it moves.
    pub fn watch_versions(&self) -> watch::Receiver<u64> {
        self.versions.subscribe()
    }
}
