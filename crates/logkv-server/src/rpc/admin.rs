//! The administrative methods (`admin_*`), which need the configured
//! bearer token: what the node is and how far it got, syncing the log,
//! and checkpoints, compaction and exports on demand. The jobs run on the
//! blocking pool; a long one is logged as it runs (crate::maintenance).

use std::fs::OpenOptions;
use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use logkv_runtime::divergence::DivergenceCheck;
use logkv_runtime::node::{Node, NodeError};
use logkv_runtime::shared_log::SharedLog;
use logkv_runtime::types::version_position;
use logkv_store::{CheckpointReport, CompactionReport, ExportReport};
use serde_json::{json, Value};

use super::methods::Params;
use super::{RpcError, UNAUTHORIZED};
use crate::maintenance::{self, KeysDone, Running};
use crate::shared::Shared;

/// The administrative methods.
pub const METHODS: &[&str] =
    &["admin_nodeInfo", "admin_sync", "admin_checkpoint", "admin_compact", "admin_export"];

/// What the request showed of the administrative token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admin {
    /// The server has no `admin_token`: administrative calls are refused.
    Disabled,
    /// No `Authorization: Bearer` header.
    Missing,
    /// A token that is not the configured one.
    Wrong,
    /// The configured token.
    Granted,
}

impl Admin {
    /// Judges an `Authorization` header value against the configured
    /// token: an exactly formed bearer token, compared in constant time.
    pub fn check(configured: Option<&str>, header: Option<&[u8]>) -> Admin {
        let Some(token) = configured else { return Admin::Disabled };
        let Some(presented) = header.and_then(crate::access::bearer) else {
            return Admin::Missing;
        };
        if crate::access::same_secret(presented, token.as_bytes()) {
            Admin::Granted
        } else {
            Admin::Wrong
        }
    }

    fn require(self) -> Result<(), RpcError> {
        let detail = match self {
            Admin::Granted => return Ok(()),
            Admin::Disabled => "administrative calls are disabled: the server has no admin_token configured",
            Admin::Missing => "administrative calls need the header `Authorization: Bearer <admin_token>`",
            Admin::Wrong => "the bearer token is not the server's admin_token",
        };
        Err(RpcError::server(UNAUTHORIZED, "Unauthorized", detail))
    }
}

/// Runs the administrative method `method` (one of [`METHODS`]) once the
/// token is checked.
pub(crate) async fn run(
    shared: &Arc<Shared>,
    method: &str,
    p: &Params<'_>,
    admin: Admin,
) -> Result<Value, RpcError> {
    admin.require()?;
    match method {
        "admin_nodeInfo" => {
            p.at_most(0)?;
            Ok(node_info(shared))
        }
        "admin_sync" => {
            p.at_most(0)?;
            let node = shared.node.clone();
            let synced =
                tokio::task::spawn_blocking(move || node.store().sync()).await.expect("sync does not panic");
            let synced = synced.map_err(NodeError::Store);
            shared.io_failures.note(&synced);
            synced.map_err(|e| RpcError::Internal(format!("sync failed: {e}")))?;
            Ok(json!({ "appliedVersion": shared.node.replay_progress().applied_version }))
        }
        "admin_checkpoint" => {
            p.at_most(0)?;
            let node = shared.node.clone();
            let job = tokio::task::spawn_blocking(move || node.store().checkpoint());
            let report = maintenance::wait(job, &Running::Job("checkpoint"), &shared.shutdown)
                .await
                .map_err(|e| RpcError::Internal(format!("checkpoint failed: {e}")))?;
            maintenance::checkpointed(shared, &report);
            Ok(checkpoint_json(&report))
        }
        "admin_compact" => {
            p.at_most(0)?;
            let keys = Arc::new(KeysDone::default());
            let (node, progress) = (shared.node.clone(), keys.clone());
            let job =
                tokio::task::spawn_blocking(move || node.store().compact(&mut |d, t| progress.update(d, t)));
            let report = maintenance::wait(job, &Running::Compaction(keys), &shared.shutdown)
                .await
                .map_err(|e| RpcError::Internal(format!("compaction failed: {e}")))?;
            maintenance::compacted(shared, &report);
            Ok(compaction_json(&report))
        }
        "admin_export" => {
            p.at_most(1)?;
            let asked = Path::new(p.string(0, "path")?);
            let path =
                export_path(asked, shared.config.backup_dir.as_deref(), &shared.config.store.data_dir)?;
            let node = shared.node.clone();
            let job = tokio::task::spawn_blocking(move || export(&node, &path));
            let report = maintenance::wait(job, &Running::Job("export"), &shared.shutdown).await?;
            tracing::info!(
                path = %report.path.display(),
                position = report.position,
                version = report.version,
                keys = report.keys,
                bytes = report.bytes,
                "export written"
            );
            Ok(export_json(&report))
        }
        _ => Err(RpcError::MethodNotFound(method.to_string())),
    }
}

/// Where `admin_export` writes `asked`: inside the configured backup
/// directory (a relative path is taken from there), never elsewhere — a
/// caller with the admin token must not be able to write any file the
/// server's user may — and never inside the data directory, where a file
/// could be taken for the node's own.
fn export_path(asked: &Path, backup_dir: Option<&Path>, data_dir: &Path) -> Result<PathBuf, RpcError> {
    let refuse = |why: String| Err(RpcError::params("path", why));
    let Some(backup_dir) = backup_dir else {
        return refuse(
            "admin_export writes only into the server's backup_dir, and none is configured".into(),
        );
    };
    let Ok(backup_dir) = backup_dir.canonicalize() else {
        return refuse(format!("the backup directory {} does not exist", backup_dir.display()));
    };
    if asked.components().any(|c| matches!(c, Component::ParentDir)) {
        return refuse(format!("{} has a `..` component", asked.display()));
    }
    let path = backup_dir.join(asked);
    let parent = path.parent().unwrap_or(Path::new("/"));
    let Ok(parent) = parent.canonicalize() else {
        return refuse(format!("directory {} does not exist", parent.display()));
    };
    if !parent.starts_with(&backup_dir) {
        return refuse(format!(
            "{} is outside the backup directory {}",
            path.display(),
            backup_dir.display()
        ));
    }
    if data_dir.canonicalize().is_ok_and(|dir| parent.starts_with(dir)) {
        return refuse(format!("{} is inside the node's data directory", path.display()));
    }
    let Some(name) = path.file_name() else {
        return refuse(format!("{} names no file", asked.display()));
    };
    Ok(parent.join(name))
}

/// Exports to `path`, created first so that an existing file is refused
/// and two exports to one path cannot both succeed; removed again if the
/// export fails.
fn export(node: &Node, path: &Path) -> Result<ExportReport, RpcError> {
    if let Err(e) = OpenOptions::new().write(true).create_new(true).open(path) {
        return Err(match e.kind() {
            ErrorKind::AlreadyExists => RpcError::params(
                "path",
                format!("{} exists; admin_export never overwrites a file", path.display()),
            ),
            _ => RpcError::Internal(format!("export failed: cannot create {}: {e}", path.display())),
        });
    }
    node.store().export(path).map_err(|e| {
        let _ = std::fs::remove_file(path);
        RpcError::Internal(format!("export failed: {e}"))
    })
}

/// `admin_nodeInfo`: who and where the node is, how far it is, and its
/// checkpoint, compacted file and open.
fn node_info(shared: &Shared) -> Value {
    let config = &shared.config;
    let store = shared.node.store();
    let progress = shared.node.replay_progress();
    let durability = config.store.durability.to_string();
    let (digest, digest_version) = shared.node.state_digest();
    let checkpoint = store.last_checkpoint();
    let shared_log = shared.replica.as_ref().map(|r| {
        let mut info = r.log().describe();
        info.as_object_mut().expect("describe gives an object").extend([
            ("log".into(), json!(r.log().identity())),
            ("through".into(), json!(r.through())),
            ("caughtUp".into(), json!(r.caught_up())),
            ("failure".into(), json!(r.failure())),
            ("receivedBytes".into(), json!(r.log().received_bytes())),
            ("misrouted".into(), json!(r.log().misrouted())),
            // A node on a shared log logs each entry at a version whose
            // position is the entry's log position, so the checkpoint's
            // version says which log position it covers.
            ("checkpointThrough".into(), json!(checkpoint.as_ref().map(|c| version_position(c.version)))),
            ("digests".into(), digests_json(&r.digests().check())),
        ]);
        info
    });
    let opened = store.open_report();
    json!({
        "address": shared.identity.address().to_string(),
        "dataDir": config.store.data_dir.display().to_string(),
        "durability": durability,
        "stream": config.stream.to_string(),
        "appliedPosition": progress.applied_position,
        "appliedVersion": progress.applied_version,
        // The newest record's log time: on a shared log the log's, the same
        // on every node that applied it.
        "appliedLogTimeMs": store.time_of_position(store.visible_position()).ok().flatten(),
        "stateDigest": format!("0x{}", hex::encode(digest)),
        "stateDigestVersion": digest_version,
        "sharedLog": shared_log,
        "checkpoint": checkpoint.as_ref().map(checkpoint_json),
        "compacted": store.compacted().map(|h| json!({
            "through": h.last_position,
            "version": h.last_version,
            "horizon": h.horizon,
        })),
        "open": {
            "checkpoint": opened.checkpoint,
            "compactedThrough": opened.compacted_through,
            "replayedRecords": opened.replayed_records,
            "skippedCheckpoints": opened.skipped_checkpoints.iter()
                .map(|(path, why)| json!({ "path": path.display().to_string(), "why": why }))
                .collect::<Vec<_>>(),
        },
        // Damage the scrubber found: degraded while any is listed.
        "degraded": shared.metrics.scrub.degraded(),
        "scrub": shared.metrics.scrub.json(),
        "uptimeSeconds": shared.started.elapsed().as_secs(),
        "logkvVersion": env!("CARGO_PKG_VERSION"),
    })
}

/// The comparison of this node's state digests with its peers': its
/// newest report, and per peer the newest position both agreed on and the
/// newest mismatch, naming both nodes and both digests.
fn digests_json(check: &DivergenceCheck) -> Value {
    let me = check.me();
    let hex = |d: &[u8; 32]| format!("0x{}", hex::encode(d));
    let peers: Vec<Value> = check
        .peers()
        .iter()
        .map(|(peer, p)| {
            json!({
                "node": peer,
                "address": p.address,
                "agreedPosition": p.agreed,
                "diverged": p.diverged(),
                "mismatches": p.mismatches,
                "mismatch": p.mismatch.as_ref().map(|m| json!({
                    "position": m.position,
                    "nodes": [
                        { "node": me.node, "address": me.address, "digest": hex(&m.ours) },
                        { "node": peer, "address": p.address, "digest": hex(&m.theirs) },
                    ],
                })),
            })
        })
        .collect();
    json!({
        "every": check.every(),
        "reported": check.newest().map(|(position, digest)| json!({ "position": position, "digest": hex(&digest) })),
        "mismatches": check.mismatches(),
        "peers": peers,
    })
}

fn checkpoint_json(r: &CheckpointReport) -> Value {
    json!({
        "path": r.path.display().to_string(),
        "position": r.position,
        "version": r.version,
        "keys": r.keys,
        "bytes": r.bytes,
        "elapsedSeconds": r.elapsed.as_secs_f64(),
    })
}

fn compaction_json(r: &CompactionReport) -> Value {
    json!({
        "compactedThrough": r.compacted_through,
        "inputBytes": r.input_bytes,
        "outputBytes": r.output_bytes,
        "keys": r.keys,
        "versionsKept": r.versions_kept,
        "historiesCut": r.histories_cut,
        "keysDropped": r.keys_dropped,
        "horizon": r.horizon,
        "elapsedSeconds": r.elapsed.as_secs_f64(),
    })
}

fn export_json(r: &ExportReport) -> Value {
    json!({
        "path": r.path.display().to_string(),
        "position": r.position,
        "version": r.version,
        "keys": r.keys,
        "bytes": r.bytes,
    })
}
