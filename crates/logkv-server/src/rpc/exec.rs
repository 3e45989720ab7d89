//! Running JSON-RPC calls for the server: the reads of [`methods`] on the
//! blocking pool (they may touch the disk), and the methods that wait —
//! `kv_submit` until its entry is durable and applied, `kv_waitForVersion`
//! until a version is visible, `admin_sync` until the log is synced — as
//! async work that holds no tokio worker while it waits. Administrative
//! calls (`admin_*`, in [`admin`]) need the configured bearer token.

use std::sync::Arc;
use std::time::{Duration, Instant};

use logkv_runtime::entry::EntryOutcome;
use logkv_runtime::envelope::EntryView;
use logkv_runtime::node::NodeError;
use logkv_runtime::types::{tx_version, version_position};
use serde_json::{json, Value};

use super::admin;
use super::methods::{self, Params};
use super::request::{parse, Call, Incoming, Request};
use super::response::{self, BatchWriter, Response};
use super::{
    RpcError, MALFORMED_ENTRY, NOT_CAUGHT_UP, RESPONSE_TOO_LARGE, TIMEOUT, UNAUTHORIZED, UPGRADE_NEEDED,
    WRITE_FAILED,
};
use crate::access::Access;
use crate::shared::Shared;

/// Longest `kv_waitForVersion` wait; a longer `timeoutMs` is cut to it.
pub const MAX_WAIT: Duration = Duration::from_secs(30);

/// Longest wait of a read as of a version the node has not reached.
pub const READ_WAIT: Duration = Duration::from_secs(5);

/// Answers the request or batch in `body`: the response bytes, or `None`
/// when there is nothing to send (only notifications). A batch's calls run
/// one after the other, in order. Each call is counted in `/metrics` under
/// its method's name. The response stays within `max_response_bytes`: a
/// result that would pass it is answered with [`RESPONSE_TOO_LARGE`]
/// instead, and once a batch's array is full its remaining calls are not
/// run but answered with that error too.
pub async fn handle(shared: &Arc<Shared>, body: &[u8], access: Access) -> Option<Vec<u8>> {
    let started = Instant::now();
    let limit = shared.config.max_response_bytes;
    let incoming = match parse(body) {
        Ok(incoming) => incoming,
        Err(error) => {
            shared.metrics.rpc("invalid", started.elapsed(), true);
            return response::encode_one(&Response::new(response::null_id(), Err(error)));
        }
    };
    match incoming {
        Incoming::Single(call) => {
            let response = answer(shared, call, access, started).await?;
            response::encode_capped(&response, limit).or_else(|| {
                let why = format!("its result is larger than max_response_bytes ({limit} bytes)");
                let error = RpcError::server(RESPONSE_TOO_LARGE, "Response too large", why);
                response::encode_one(&Response::new(response.id().to_owned(), Err(error)))
            })
        }
        Incoming::Batch(calls) => {
            let mut out = BatchWriter::new(limit);
            let mut calls = calls.into_iter();
            for call in calls.by_ref() {
                let Some(response) = answer(shared, call, access, Instant::now()).await else { continue };
                if !out.push(&response) {
                    let why = format!(
                        "the call ran, but its result would take the batch's response past max_response_bytes ({limit} bytes)"
                    );
                    let error = RpcError::server(RESPONSE_TOO_LARGE, "Response too large", why);
                    out.push_anyway(&Response::new(response.id().to_owned(), Err(error)));
                    break;
                }
            }
            let why = format!(
                "not run: the batch's response reached max_response_bytes ({limit} bytes) before this call"
            );
            for call in calls {
                let id = match call {
                    Call::Valid(request) => request.id,
                    Call::Invalid { id, .. } => Some(id),
                };
                if let Some(id) = id {
                    let error = RpcError::server(RESPONSE_TOO_LARGE, "Response too large", why.clone());
                    out.push_anyway(&Response::new(id, Err(error)));
                }
            }
            out.finish()
        }
    }
}

async fn answer(shared: &Arc<Shared>, call: Call, access: Access, started: Instant) -> Option<Response> {
    match call {
        Call::Valid(request) => {
            let outcome = run(shared, &request, access).await;
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
pub async fn run(shared: &Arc<Shared>, request: &Request, access: Access) -> Result<Value, RpcError> {
    let p = Params(&request.params);
    if request.method.starts_with("kv_") {
        if let Some(detail) = shared.not_serving() {
            return Err(RpcError::Server { code: NOT_CAUGHT_UP, message: "Not caught up", detail });
        }
    }
    match request.method.as_str() {
        "kv_submit" if !access.write => Err(RpcError::server(
            UNAUTHORIZED,
            "Unauthorized",
            "kv_submit needs a user: public_read admits anonymous callers to reads only",
        )),
        "kv_submit" => submit(shared, &p).await,
        "kv_waitForVersion" => wait_for_version(shared, &p).await,
        "kv_watch" | "kv_unwatch" => Err(RpcError::MethodNotFound(format!(
            "{} is a subscription method: use the WebSocket at GET /ws",
            request.method
        ))),
        method if admin::METHODS.contains(&method) => admin::run(shared, method, &p, access.admin).await,
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
