//! A replica's part in inconsistency detection
//! ([`logkv_runtime::divergence`], docs/distributed.md): the follower
//! hands every durable batch to [`DigestExchange::applied`], which records
//! the digest at each reporting position and leaves the newest report for
//! the publishing task; a listening task compares the peers' reports.
//! Both tasks run on the replica's runtime and never hold up applying: a
//! slow log only makes the publisher skip to the newest report.

use logkv_runtime::divergence::{DigestReport, DivergenceCheck, Finding, Reporter};
use logkv_runtime::node::follow::Step;
use logkv_runtime::shared_log::{DigestReports, SharedLog};
use parking_lot::{Mutex, MutexGuard};
use tokio::sync::watch;

/// Who a node says it is in its reports, and how often and how much it
/// compares (`digest_every`, `digest_kept`).
#[derive(Debug, Clone)]
pub struct DigestSettings {
    /// Its identity: the node key's account.
    pub node: String,
    /// Where it answers: its HTTP address.
    pub address: String,
    /// Positions between two reports.
    pub every: u64,
    /// Digests kept per node.
    pub kept: usize,
}

/// This node's digests and its peers', compared.
pub struct DigestExchange {
    check: Mutex<DivergenceCheck>,
    /// The newest report not yet published (a newer one replaces it).
    outbox: watch::Sender<Option<DigestReport>>,
}

impl DigestExchange {
    /// The exchange of a node applying `watch`, which has applied the log
    /// through `applied` and holds `digest` there.
    pub fn new(settings: DigestSettings, watch: String, applied: u64, digest: [u8; 32]) -> Self {
        let DigestSettings { node, address, every, kept } = settings;
        let me = Reporter { node, address, watch };
        let check = DivergenceCheck::new(me, every, kept, applied, digest);
        DigestExchange { check: Mutex::new(check), outbox: watch::Sender::new(None) }
    }

    /// Takes in a batch the follower made durable.
    pub fn applied(&self, step: &Step) {
        let entries = step.applied.iter().map(|a| (a.position, a.digest));
        let (report, findings) = self.check.lock().applied(entries, step.through);
        self.tell(findings);
        if let Some(report) = report {
            self.outbox.send_replace(Some(report));
        }
    }

    /// The comparison, for `/metrics` and `admin_nodeInfo`.
    pub fn check(&self) -> MutexGuard<'_, DivergenceCheck> {
        self.check.lock()
    }

    /// Publishes this node's newest report on `log` whenever there is a
    /// new one, until the runtime stops.
    pub async fn publish<L: SharedLog>(&self, log: &L) {
        let mut outbox = self.outbox.subscribe();
        while outbox.changed().await.is_ok() {
            let report = outbox.borrow_and_update().clone();
            if let Some(report) = report {
                if let Err(e) = log.publish_digest(&report).await {
                    tracing::warn!(error = %e, position = report.position, "digest report not published");
                }
            }
        }
    }

    /// Compares every report that comes in with this node's digests.
    pub async fn listen(&self, mut reports: impl DigestReports) {
        while let Some(report) = reports.next().await {
            let finding = self.check.lock().peer(report);
            self.tell(finding);
        }
    }

    /// Logs what the operator must know: an error naming both nodes when
    /// a peer's state differs from this node's.
    fn tell(&self, findings: impl IntoIterator<Item = Finding>) {
        for finding in findings {
            let me = self.check.lock().me().clone();
            match finding {
                Finding::Diverged { peer, address, mismatch } => tracing::error!(
                    node = %me.node,
                    address = %me.address,
                    peer = %peer,
                    peer_address = %address,
                    position = mismatch.position,
                    digest = %format!("0x{}", hex::encode(mismatch.ours)),
                    peer_digest = %format!("0x{}", hex::encode(mismatch.theirs)),
                    "replicas diverged: this node ({}) and {peer} ({address}) hold different states at \
                     position {}; the one whose state is wrong must be repaired or rebuilt from a \
                     healthy peer's export (docs/distributed.md, \"Inconsistency detection\")",
                    me.node,
                    mismatch.position,
                ),
                Finding::Agrees { peer, position } => {
                    tracing::info!(node = %me.node, peer = %peer, position, "replica digests agree again")
                }
            }
        }
    }
}
