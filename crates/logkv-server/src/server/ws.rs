//! `GET /ws`: JSON-RPC over a WebSocket, with the `kv_watch` subscription.
//!
//! `{"method":"kv_watch","params":[streamId, fromVersion]}` answers a
//! subscription id, then sends one notification per write of the stream at
//! `fromVersion` or later, in version order: first the history, read from
//! the log's records, then live writes as they are acknowledged.
//! `kv_unwatch([id])` ends one. Every other method is answered as over HTTP.
//!
//! Memory: everything a connection holds for its client is bounded by
//! `ws_queue_bytes`. Answers and notifications are queued against that
//! many bytes, released as each is written to the socket; and one
//! subscription of a connection at a time reads the log, a step of about
//! [`STEP_BYTES`] of changes, and queues it before the next reads (so the
//! history being sent is inside the bound, plus one step). While a
//! subscription sends its history it waits for room (the log is read only
//! as fast as the client takes it); once live, no room means the client
//! cannot keep up, and the subscription is closed with an error
//! notification rather than buffer without bound. At most [`MAX_CALLS`]
//! other calls run at once per connection (the socket is not read past
//! that), each answer at most `max_response_bytes`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use logkv_runtime::types::StreamId;
use serde_json::{json, Value};
use tokio::sync::{mpsc, Mutex, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::changes::{self, Change, ChangeReader};
use crate::access::Access;
use crate::rpc::exec;
use crate::rpc::methods::Params;
use crate::rpc::request::{parse, Call, Incoming, Request};
use crate::rpc::response::{self, Response};
use crate::rpc::{RpcError, SUBSCRIPTION_CLOSED};
use crate::shared::Shared;

/// Bytes of changes a subscription reads from the log per step.
pub const STEP_BYTES: usize = 64 << 10;

/// Calls other than `kv_watch`/`kv_unwatch` one connection may have
/// running at once.
pub const MAX_CALLS: usize = 16;

/// Subscriptions one connection may hold.
pub const MAX_SUBSCRIPTIONS: usize = 64;

/// What is queued for one connection's client, within `ws_queue_bytes`.
#[derive(Clone)]
struct Out {
    tx: mpsc::UnboundedSender<Queued>,
    /// One permit per byte queued and not yet written.
    room: Arc<Semaphore>,
    limit: usize,
    /// Held by the subscription reading the log and queueing what it read.
    reading: Arc<Mutex<()>>,
}

/// A message and the room it takes until written.
struct Queued {
    text: String,
    _room: OwnedSemaphorePermit,
}

impl Out {
    fn new(limit: usize) -> (Out, mpsc::UnboundedReceiver<Queued>) {
        // A semaphore counts at most u32::MAX permits per acquisition.
        let limit = limit.min(u32::MAX as usize);
        let (tx, rx) = mpsc::unbounded_channel();
        let out = Out { tx, room: Arc::new(Semaphore::new(limit)), limit, reading: Arc::new(Mutex::new(())) };
        (out, rx)
    }

    /// The room `text` takes: what it holds allocated, capped at the whole
    /// bound (a larger answer waits until nothing else is queued).
    fn cost(&self, text: &String) -> u32 {
        text.capacity().clamp(1, self.limit) as u32
    }

    /// Queues `text`, waiting for room; `Err` once the connection ended.
    async fn send(&self, text: String) -> Result<(), ()> {
        let room = self.room.clone().acquire_many_owned(self.cost(&text)).await.map_err(|_| ())?;
        self.tx.send(Queued { text, _room: room }).map_err(|_| ())
    }

    /// Queues `text` if there is room now; `Ok(false)` when there is not.
    fn try_send(&self, text: String) -> Result<bool, ()> {
        let Ok(room) = self.room.clone().try_acquire_many_owned(self.cost(&text)) else {
            return Ok(false);
        };
        self.tx.send(Queued { text, _room: room }).map(|()| true).map_err(|_| ())
    }
}

/// Serves one WebSocket until the client closes it or the server stops.
pub async fn serve(mut socket: WebSocket, shared: Arc<Shared>, access: Access) {
    let (out, mut queued) = Out::new(shared.config.ws_queue_bytes);
    let calls = Arc::new(Semaphore::new(MAX_CALLS));
    let mut subscriptions: HashMap<String, CancellationToken> = HashMap::new();
    let mut next_id = 1u64;
    let closing = CancellationToken::new();
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => break,
            Some(message) = queued.recv() => {
                // The room is given back once the message is written.
                if socket.send(Message::Text(message.text.into())).await.is_err() {
                    break;
                }
            }
            incoming = socket.recv(), if calls.available_permits() > 0 => {
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
                        let call = calls.clone().try_acquire_owned().expect("the socket is read only with room");
                        let (shared, out) = (shared.clone(), out.clone());
                        tokio::spawn(async move {
                            let _call = call;
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
    // Senders waiting for room give up now rather than hold what they
    // built until the queue is dropped.
    out.room.close();
    let _ = socket.send(Message::Close(None)).await;
    drop((socket, queued));
    super::trim::soon();
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
    tokio::spawn(async move {
        sub.run(stream, from).await;
        // What it read and queued is freed now.
        super::trim::soon();
    });
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

/// What one step of a subscription did.
enum Step {
    /// Queued changes; there may be more.
    Queued,
    /// Nothing new in the log.
    CaughtUp,
    /// The connection ended.
    Ended,
    /// The subscription must be closed, for this reason.
    Failed(String),
}

struct Subscription {
    shared: Arc<Shared>,
    id: String,
    out: Out,
    token: CancellationToken,
}

impl Subscription {
    async fn run(self, stream: StreamId, from: u64) {
        let Subscription { shared, token, .. } = &self;
        // Subscribed before the first read: a write acknowledged after that
        // read marks the receiver changed, so no wake-up is lost.
        let mut versions = shared.watch_versions();
        let mut reader = Some(ChangeReader::new(stream, from));
        let mut live = false;
        loop {
            let read = tokio::select! {
                _ = token.cancelled() => return,
                read = self.step(&mut reader, live) => read,
            };
            match read {
                Step::Queued => continue,
                Step::Ended => return,
                Step::Failed(detail) => return self.close(&detail).await,
                Step::CaughtUp => live = true,
            }
            tokio::select! {
                _ = token.cancelled() => return,
                changed = versions.changed() => if changed.is_err() { return },
            }
        }
    }

    /// Reads one step of changes and queues their notifications, as the
    /// only subscription of the connection doing so. History waits for
    /// room; live changes that find none close the subscription.
    async fn step(&self, reader: &mut Option<ChangeReader>, live: bool) -> Step {
        let _reading = self.out.reading.lock().await;
        let (mut back, node) = (reader.take().expect("a reader between steps"), self.shared.node.clone());
        let (back, changes) = tokio::task::spawn_blocking(move || {
            let changes = back.step(&node, STEP_BYTES);
            (back, changes)
        })
        .await
        .expect("reading the log does not panic");
        *reader = Some(back);
        let changes = match changes {
            Ok(changes) if changes.is_empty() => return Step::CaughtUp,
            Ok(changes) => changes,
            Err(e) => return Step::Failed(format!("cannot read the log: {e}")),
        };
        for change in changes {
            let text = notification(&self.id, &change);
            if !live {
                if self.out.send(text).await.is_err() {
                    return Step::Ended;
                }
                continue;
            }
            match self.out.try_send(text) {
                Ok(true) => {}
                Ok(false) => {
                    return Step::Failed(format!(
                        "the client is not reading fast enough: ws_queue_bytes ({} bytes) are waiting",
                        self.out.limit
                    ))
                }
                Err(()) => return Step::Ended,
            }
        }
        Step::Queued
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
