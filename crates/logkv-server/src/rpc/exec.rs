//! Running JSON-RPC calls for the server: the reads of [`methods`] on the
//! blocking pool (they may touch the disk), and the methods that wait —
//! `kv_submit` until its entry is durable and applied, `kv_waitForVersion`
//! until a version is visible, `admin_sync` until the log is synced — as
//! async work that holds no tokio worker while it waits. Administrative
//! calls (`admin_*`) need the configured bearer token.

use std::sync::Arc;
use std::time::{Duration, Instant};

use logkv_runtime::entry::EntryOutcome;
use logkv_runtime::envelope::EntryView;
use logkv_runtime::node::NodeError;
use logkv_runtime::types::{tx_version, version_position};
use serde_json::{json, Value};

use super::methods::{self, Params};
use super::request::{parse, Call, Incoming, Request};
use super::response::{self, Response};
use super::{RpcError, MALFORMED_ENTRY, NOT_CAUGHT_UP, TIMEOUT, UNAUTHORIZED, UPGRADE_NEEDED, WRITE_FAILED};
use crate::config::DurabilityName;
use crate::shared::Shared;

/// Longest `kv_waitForVersion` wait; a longer `timeoutMs` is cut to it.
pub const MAX_WAIT: Duration = Duration::from_secs(30);

/// Longest wait of a read as of a version the node has not reached.
pub const READ_WAIT: Duration = Duration::from_secs(5);

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
    /// Judges an `Authorization` header value against the configured token.
    /// The comparison takes the same time wherever the first difference is.
    pub fn check(configured: Option<&str>, header: Option<&[u8]>) -> Admin {
        let Some(token) = configured else { return Admin::Disabled };
        let Some(presented) = header.and_then(|h| h.strip_prefix(b"Bearer ")) else {
            return Admin::Missing;
        };
        let token = token.as_bytes();
        let differ = presented.len() != token.len()
            || presented.iter().zip(token).fold(0u8, |acc, (a, b)| acc | (a ^ b)) != 0;
        if differ {
            Admin::Wrong
        } else {
            Admin::Granted
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

/// Answers the request or batch in `body`: the response bytes, or `None`
/// when there is nothing to send (only notifications). A batch's calls run
/// one after the other, in order. Each call is counted in `/metrics` under
/// its method's name.
pub async fn handle(shared: &Arc<Shared>, body: &[u8], admin: Admin) -> Option<Vec<u8>> {
    let started = Instant::now();
    let incoming = match parse(body) {
        Ok(incoming) => incoming,
        Err(error) => {
            shared.metrics.rpc("invalid", started.elapsed(), true);
            return response::encode_one(&Response::new(response::null_id(), Err(error)));
        }
    };
    match incoming {
        Incoming::Single(call) => {
            answer(shared, call, admin, started).await.and_then(|r| response::encode_one(&r))
        }
        Incoming::Batch(calls) => {
            let mut responses = Vec::with_capacity(calls.len());
            for call in calls {
                responses.extend(answer(shared, call, admin, Instant::now()).await);
            }
            response::encode_batch(&responses)
        }
    }
}

async fn answer(shared: &Arc<Shared>, call: Call, admin: Admin, started: Instant) -> Option<Response> {
    match call {
        Call::Valid(request) => {
            let outcome = run(shared, &request, admin).await;
            let name = methods::metric_name(&request.method);
            shared.metrics.rpc(name, started.elapsed(), outcome.is_err());
            request.id.map(|id| Response::new(id, outcome))
        }
        Call::Invalid { id, error } => {
            shared.metrics.rpc("invalid", started.elapsed(), true);
            Some(Response::new(id, Err(error)))
        }
    }
}

/// Runs one request's method.
pub async fn run(shared: &Arc<Shared>, request: &Request, admin: Admin) -> Result<Value, RpcError> {
    let p = Params(&request.params);
    if request.method.starts_with("kv_") {
        if let Some(detail) = shared.not_serving() {
            return Err(RpcError::Server { code: NOT_CAUGHT_UP, message: "Not caught up", detail });
        }
    }
    match request.method.as_str() {
        "kv_submit" => submit(shared, &p).await,
        "kv_waitForVersion" => wait_for_version(shared, &p).await,
        "kv_watch" | "kv_unwatch" => Err(RpcError::MethodNotFound(format!(
            "{} is a subscription method: use the WebSocket at GET /ws",
            request.method
        ))),
        "admin_nodeInfo" => {
            admin.require()?;
            p.at_most(0)?;
            Ok(node_info(shared))
        }
        "admin_sync" => {
            admin.require()?;
            p.at_most(0)?;
            let node = shared.node.clone();
            let synced =
                tokio::task::spawn_blocking(move || node.store().sync()).await.expect("sync does not panic");
            synced.map_err(|e| RpcError::Internal(format!("sync failed: {e}")))?;
            Ok(json!({ "appliedVersion": shared.node.replay_progress().applied_version }))
        }
        method => {
            // A read as of a version this node has not reached yet (one
            // written through another node of a shared log) waits for it.
            if let Some(Ok(Some(version))) = methods::version_param(method).map(|i| p.version(i)) {
                reach(shared, version, READ_WAIT).await?;
            }
            let (node, method, params) = (shared.node.clone(), method.to_string(), request.params.clone());
            tokio::task::spawn_blocking(move || methods::dispatch(&node, &method, &params))
                .await
                .expect("reads do not panic")
        }
    }
}

/// `kv_submit([entryHex])`: logs and applies a signed entry, answering
/// once it is durable per the durability mode and applied.
async fn submit(shared: &Arc<Shared>, p: &Params<'_>) -> Result<Value, RpcError> {
    p.at_most(1)?;
    let text = p.string(0, "entry")?;
    let digits = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")).unwrap_or(text);
    let limit = shared.node.store().limits().max_batch_bytes;
    if digits.len() / 2 > limit {
        return Err(RpcError::params(
            "entry",
            format!("entry of {} bytes, at most {limit}", digits.len() / 2),
        ));
    }
    let entry = hex::decode(digits).map_err(|e| RpcError::params("entry", format!("not hex: {e}")))?;
    // Refused before it is logged: the node logs malformed entries from a
    // shared log (every node records them alike), but a client's request
    // that is not an entry is only an error.
    if let Err(e) = EntryView::parse(&entry) {
        return Err(if e.needs_upgrade() {
            RpcError::server(UPGRADE_NEEDED, "Entry needs a newer logkv", e.to_string())
        } else {
            RpcError::server(MALFORMED_ENTRY, "Malformed entry", e.to_string())
        });
    }
    let applied = shared.submit(entry).await.map_err(|e| match e {
        NodeError::UpgradeNeeded(e) => {
            RpcError::server(UPGRADE_NEEDED, "Entry needs a newer logkv", e.to_string())
        }
        e => RpcError::server(WRITE_FAILED, "Write failed", e.to_string()),
    })?;
    let results = match applied.outcome {
        EntryOutcome::Applied(results) => results,
        EntryOutcome::Malformed(e) => {
            return Err(RpcError::server(MALFORMED_ENTRY, "Malformed entry", e.to_string()))
        }
        EntryOutcome::UpgradeNeeded(e) => {
            return Err(RpcError::server(UPGRADE_NEEDED, "Entry needs a newer logkv", e.to_string()))
        }
    };
    let at = version_position(applied.version);
    let versions: Vec<u64> = (0..results.len()).map(|i| tx_version(at, i as u16)).collect();
    let results: Vec<Value> =
        results.into_iter().map(|r| r.map_or(Value::Null, |r| Value::String(r.to_string()))).collect();
    Ok(json!({
        "position": applied.position,
        "version": applied.version,
        "versions": versions,
        "results": results,
    }))
}

/// `kv_waitForVersion([version, timeoutMs?])`: answers once the node's
/// visible version reaches `version`, woken by the writes themselves.
async fn wait_for_version(shared: &Arc<Shared>, p: &Params<'_>) -> Result<Value, RpcError> {
    p.at_most(2)?;
    let version = p.u64(0, "version")?;
    let timeout = match p.0.get(1) {
        None | Some(Value::Null) => MAX_WAIT,
        Some(_) => Duration::from_millis(p.u64(1, "timeoutMs")?).min(MAX_WAIT),
    };
    reach(shared, version, timeout).await?;
    Ok(json!({ "appliedVersion": shared.visible_version() }))
}

/// Waits until `version` is visible (on a shared log: applied, or at a
/// position with nothing for this node), at most `timeout`; a `-32020`
/// error says how far the node got.
async fn reach(shared: &Arc<Shared>, version: u64, timeout: Duration) -> Result<(), RpcError> {
    if shared.visible_version() >= version {
        return Ok(());
    }
    let mut versions = shared.watch_versions();
    // Shutdown ends the wait too: the server drains in-flight requests.
    tokio::select! {
        _ = tokio::time::timeout(timeout, versions.wait_for(|v| *v >= version)) => {}
        _ = shared.shutdown.cancelled() => {}
    }
    let visible = shared.visible_version();
    if visible >= version {
        return Ok(());
    }
    let why = if shared.shutdown.is_cancelled() {
        format!("version {version} not visible: the server is shutting down (applied version: {visible})")
    } else {
        format!(
            "version {version} not visible within {} ms (applied version: {visible})",
            timeout.as_millis()
        )
    };
    Err(RpcError::server(TIMEOUT, "Timeout", why))
}

/// `admin_nodeInfo`: who and where the node is, and how far it is.
fn node_info(shared: &Shared) -> Value {
    let config = &shared.config;
    let progress = shared.node.replay_progress();
    let durability = match config.durability {
        DurabilityName::Always => "always",
        DurabilityName::Periodic => "periodic",
        DurabilityName::None => "none",
    };
    let (digest, digest_version) = shared.node.state_digest();
    let shared_log = shared.replica.as_ref().map(|r| {
        json!({
            "servers": r.log().config().servers,
            "stream": r.log().config().stream,
            "replicas": r.log().config().replicas,
            "through": r.through(),
            "caughtUp": r.caught_up(),
            "failure": r.failure(),
            "receivedBytes": r.received_bytes(),
            "misrouted": r.misrouted(),
        })
    });
    json!({
        "address": shared.identity.address().to_string(),
        "dataDir": config.data_dir.display().to_string(),
        "durability": durability,
        "stream": config.stream.to_string(),
        "appliedPosition": progress.applied_position,
        "appliedVersion": progress.applied_version,
        "stateDigest": format!("0x{}", hex::encode(digest)),
        "stateDigestVersion": digest_version,
        "sharedLog": shared_log,
        "uptimeSeconds": shared.started.elapsed().as_secs(),
        "logkvVersion": env!("CARGO_PKG_VERSION"),
    })
}
