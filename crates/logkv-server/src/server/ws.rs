//! `GET /ws`: JSON-RPC over a WebSocket, with the `kv_watch` subscription.
//!
//! `{"method":"kv_watch","params":[streamId, fromVersion]}` answers a
//! subscription id, then sends one notification per write of the stream at
//! `fromVersion` or later, in version order: first the history, read from
//! the log's records, then live writes as they are acknowledged.
//! `kv_unwatch([id])` ends one. Every other method is answered as over HTTP.
//!
//! Backpressure: everything sent to a connection goes through one queue
//! bounded in messages ([`QUEUE`]) and in bytes ([`QUEUE_BYTES`]). While a
//! subscription sends its history it waits for room (the log is read only
//! as fast as the client takes it); once live, a full queue means the
//! client cannot keep up, and the subscription is closed with an error
//! notification rather than buffer without bound.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use logkv_runtime::types::StreamId;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::changes::{self, Change, ChangeReader};
use crate::access::Access;
use crate::rpc::exec;
use crate::rpc::methods::Params;
use crate::rpc::request::{parse, Call, Incoming, Request};
use crate::rpc::response::{self, Response};
use crate::rpc::{RpcError, SUBSCRIPTION_CLOSED};
use crate::shared::Shared;

/// Messages queued for one connection (answers and notifications).
pub const QUEUE: usize = 1024;

/// Bytes of live notifications a connection may have queued before the
/// subscription adding one more is closed.
pub const QUEUE_BYTES: usize = 4 << 20;

/// The sending side of a connection's queue, counting its bytes.
#[derive(Clone)]
struct Out {
    tx: mpsc::Sender<String>,
    bytes: Arc<AtomicUsize>,
}

impl Out {
    /// Waits for room.
    async fn send(&self, text: String) -> Result<(), ()> {
        let len = text.len();
        self.bytes.fetch_add(len, Relaxed);
        self.tx.send(text).await.map_err(|_| {
            self.bytes.fetch_sub(len, Relaxed);
        })
    }

    /// Queues without waiting; `Ok(false)` when the queue is full.
    fn try_send(&self, text: String) -> Result<bool, ()> {
        let len = text.len();
        if self.bytes.fetch_add(len, Relaxed) + len > QUEUE_BYTES {
            self.bytes.fetch_sub(len, Relaxed);
            return Ok(false);
        }
        match self.tx.try_send(text) {
            Ok(()) => Ok(true),
            Err(e) => {
                self.bytes.fetch_sub(len, Relaxed);
                match e {
                    mpsc::error::TrySendError::Full(_) => Ok(false),
                    mpsc::error::TrySendError::Closed(_) => Err(()),
                }
            }
        }
    }
}

/// Changes read from the log per step.
const STEP: usize = 256;

/// Subscriptions one connection may hold.
pub const MAX_SUBSCRIPTIONS: usize = 64;

/// Serves one WebSocket until the client closes it or the server stops.
pub async fn serve(mut socket: WebSocket, shared: Arc<Shared>, access: Access) {
    let (tx, mut queued) = mpsc::channel::<String>(QUEUE);
    let out = Out { tx, bytes: Arc::new(AtomicUsize::new(0)) };
    let mut subscriptions: HashMap<String, CancellationToken> = HashMap::new();
    let mut next_id = 1u64;
    let closing = CancellationToken::new();
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => break,
            Some(text) = queued.recv() => {
                out.bytes.fetch_sub(text.len(), Relaxed);
                if socket.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
            }
            incoming = socket.recv() => {
                let text = match incoming {
                    Some(Ok(Message::Text(t))) => t.to_string(),
                    Some(Ok(Message::Binary(b))) => String::from_utf8_lossy(&b).into_owned(),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                };
                let reply = match parse(text.as_bytes()) {
                    Ok(Incoming::Single(Call::Valid(request)))
                        if matches!(request.method.as_str(), "kv_watch" | "kv_unwatch") =>
                    {
                        let outcome = if request.method == "kv_watch" {
                            let id = format!("0x{next_id:x}");
                            next_id += 1;
                            watch(&shared, &request, &id, &out, &mut subscriptions, &closing).map(|()| json!(id))
                        } else {
                            unwatch(&request, &mut subscriptions)
                        };
                        let name = crate::rpc::methods::metric_name(&request.method);
                        shared.metrics.rpc(name, std::time::Duration::ZERO, outcome.is_err());
                        request.id.and_then(|id| response::encode_one(&Response::new(id, outcome)))
                    }
                    _ => {
                        // Any other call may wait (kv_submit, kv_waitForVersion):
                        // answered from its own task, through the queue.
                        let (shared, out) = (shared.clone(), out.clone());
                        tokio::spawn(async move {
                            if let Some(bytes) = exec::handle(&shared, text.as_bytes(), access).await {
                                let _ = out.send(String::from_utf8(bytes).expect("JSON is UTF-8")).await;
                            }
                        });
                        None
                    }
                };
                if let Some(bytes) = reply {
                    let text = String::from_utf8(bytes).expect("JSON is UTF-8");
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                }
            }
        }
    }
    closing.cancel();
    let _ = socket.send(Message::Close(None)).await;
}

/// Starts a subscription: `kv_watch([streamId, fromVersion?])`.
fn watch(
    shared: &Arc<Shared>,
    request: &Request,
    id: &str,
    out: &Out,
    subscriptions: &mut HashMap<String, CancellationToken>,
    closing: &CancellationToken,
) -> Result<(), RpcError> {
    let p = Params(&request.params);
    p.at_most(2)?;
    let stream = p.stream(0)?;
    let from = p.version(1)?.unwrap_or(0);
    let oldest = changes::oldest_watchable(&shared.node);
    if from < oldest {
        return Err(RpcError::Compacted { version: from, oldest });
    }
    subscriptions.retain(|_, token| !token.is_cancelled());
    if subscriptions.len() >= MAX_SUBSCRIPTIONS {
        return Err(RpcError::params(
            "params",
            format!("at most {MAX_SUBSCRIPTIONS} subscriptions per connection"),
        ));
    }
    let token = closing.child_token();
    subscriptions.insert(id.to_string(), token.clone());
    let sub = Subscription { shared: shared.clone(), id: id.to_string(), out: out.clone(), token };
    tokio::spawn(sub.run(stream, from));
    Ok(())
}

/// Ends a subscription: `kv_unwatch([id])` → whether it existed.
fn unwatch(
    request: &Request,
    subscriptions: &mut HashMap<String, CancellationToken>,
) -> Result<Value, RpcError> {
    let p = Params(&request.params);
    p.at_most(1)?;
    let id = p.string(0, "subscription")?;
    Ok(Value::Bool(subscriptions.remove(id).is_some_and(|token| {
        let live = !token.is_cancelled();
        token.cancel();
        live
    })))
}

struct Subscription {
    shared: Arc<Shared>,
    id: String,
    out: Out,
    token: CancellationToken,
}

impl Subscription {
    async fn run(self, stream: StreamId, from: u64) {
        let Subscription { shared, id, out, token } = &self;
        // Subscribed before the first read: a write acknowledged after that
        // read marks the receiver changed, so no wake-up is lost.
        let mut versions = shared.watch_versions();
        let mut reader = ChangeReader::new(stream, from);
        let mut live = false;
        loop {
            let node = shared.node.clone();
            let (back, step) = tokio::task::spawn_blocking(move || {
                let step = reader.step(&node, STEP);
                (reader, step)
            })
            .await
            .expect("reading the log does not panic");
            reader = back;
            let changes = match step {
                Ok(changes) => changes,
                Err(e) => return self.close(&format!("cannot read the log: {e}")).await,
            };
            if changes.is_empty() {
                live = true;
                tokio::select! {
                    _ = token.cancelled() => return,
                    changed = versions.changed() => if changed.is_err() { return },
                }
                continue;
            }
            for change in changes {
                let text = notification(id, &change);
                if live {
                    match out.try_send(text) {
                        Ok(true) => {}
                        Ok(false) => {
                            let detail = format!(
                                "the client is not reading fast enough: {QUEUE} messages or {QUEUE_BYTES} bytes waiting"
                            );
                            return self.close(&detail).await;
                        }
                        Err(()) => return,
                    }
                } else {
                    tokio::select! {
                        _ = token.cancelled() => return,
                        sent = out.send(text) => if sent.is_err() { return },
                    }
                }
            }
        }
    }

    /// Ends the subscription with an error notification, sent after what
    /// is already queued.
    async fn close(&self, detail: &str) {
        self.token.cancel();
        tracing::debug!(subscription = %self.id, detail, "kv_watch closed");
        let text = json!({
            "jsonrpc": "2.0",
            "method": "kv_watch",
            "params": {
                "subscription": self.id,
                "error": { "code": SUBSCRIPTION_CLOSED, "message": "Subscription closed", "data": detail },
            },
        })
        .to_string();
        let _ = self.out.send(text).await;
    }
}

fn notification(id: &str, change: &Change) -> String {
    json!({
        "jsonrpc": "2.0",
        "method": "kv_watch",
        "params": {
            "subscription": id,
            "result": {
                "version": change.version,
                "key": STANDARD.encode(&change.key),
                "value": change.value.as_ref().map(|v| STANDARD.encode(v)),
            },
        },
    })
    .to_string()
}
