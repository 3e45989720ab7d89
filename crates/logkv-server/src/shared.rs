//! What every connection of a running server shares: the node, the node's
//! signing identity, the configuration, metrics and the shutdown signal.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use logkv_runtime::envelope::TxPart;
use logkv_runtime::node::{Applied, Node, NodeError};
use logkv_runtime::signing::Signer;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::committer::Committer;
use crate::config::ServeConfig;
use crate::metrics::Metrics;
use crate::session::ServerState;

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
    /// Signs and commits the writes of every connection.
    pub committer: Committer,
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
    /// sessions' state loaded from `config` ([`ServerState::load`]).
    pub fn new(node: Arc<Node>, identity: Signer, config: ServeConfig, resp: ServerState) -> Shared {
        let versions = watch::Sender::new(node.replay_progress().applied_version);
        let committer = Committer::start(Arc::clone(&node));
        Shared {
            node,
            identity,
            config,
            metrics: Metrics::default(),
            committer,
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            started: Instant::now(),
            versions,
            resp,
            ready: AtomicBool::new(false),
        }
    }

    /// Whether the node serves requests (`/readyz`): listening and not
    /// shutting down.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire) && !self.shutdown.is_cancelled()
    }

    /// Marks the node ready once every listener is bound.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    /// Signs `txs` as `signer` into an entry shared with concurrent writers
    /// and waits, off the async workers, until it is durable per the
    /// durability mode and applied.
    pub async fn append(&self, signer: Signer, txs: Vec<TxPart>) -> Result<Applied, NodeError> {
        let applied = self.committer.append(signer, txs).await;
        self.versions_advanced();
        applied
    }

    /// Applies a client's signed entry, waiting off the async workers.
    pub async fn submit(&self, entry: Vec<u8>) -> Result<Applied, NodeError> {
        let node = self.node.clone();
        let applied =
            tokio::task::spawn_blocking(move || node.submit(&entry)).await.expect("submit does not panic");
        self.versions_advanced();
        applied
    }

    /// Publishes the node's newest visible version to the waiters, if it
    /// moved (every write path calls it once its write is acknowledged).
    pub fn versions_advanced(&self) {
        let now = self.node.replay_progress().applied_version;
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
