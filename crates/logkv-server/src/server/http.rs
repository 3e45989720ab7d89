//! HTTP: JSON-RPC 2.0 on `POST /`, JSON-RPC with the `kv_watch`
//! subscription on the WebSocket `GET /ws`, and the operations endpoints
//! `/metrics`, `/healthz` and `/readyz`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;

use crate::access::{self, Peer, Refusal};
use crate::rpc::exec;
use crate::shared::Shared;

/// The HTTP routes.
pub fn router(shared: Arc<Shared>) -> Router {
    let limit = shared.config.max_request_bytes;
    Router::new()
        .route("/", post(json_rpc))
        .route("/ws", get(websocket))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(shared)
}

/// Every JSON-RPC answer is 200 with a JSON body, errors included: the 0G
/// SDK retries any other status. A body over `max_request_bytes` is the
/// exception: refused with 413 — from its `Content-Length` before any of
/// it is read, or as soon as a body without one grows past the limit —
/// with a JSON-RPC error saying so; and so is a body that does not arrive
/// whole within `request_timeout_secs` (408).
async fn json_rpc(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let access = match access::admit(&shared, &headers, peer, true) {
        Ok(access) => access,
        Err(refusal) => return refused(&shared, refusal),
    };
    let limit = shared.config.max_request_bytes;
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large(&shared, limit);
    }
    let read = axum::body::to_bytes(body, limit);
    let read = match shared.config.request_timeout() {
        Some(t) => tokio::time::timeout(t, read).await,
        None => Ok(read.await),
    };
    let Ok(read) = read else {
        return timed_out(&shared);
    };
    let body = match read {
        Ok(body) => body,
        Err(e) => {
            if over_limit(&e) {
                return too_large(&shared, limit);
            }
            // The client went away mid-body: nobody to answer.
            return StatusCode::BAD_REQUEST.into_response();
        }
    };
    match exec::handle(&shared, &body, access).await {
        Some(bytes) => (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

/// A body that did not arrive whole within `request_timeout_secs`:
/// answered 408 and closed.
fn timed_out(shared: &Shared) -> Response {
    shared.metrics.request_timeouts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let detail = format!(
        "request body not complete within request_timeout_secs ({}s)",
        shared.config.request_timeout_secs
    );
    let error = json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": { "code": -32600, "message": "Invalid request", "data": detail },
    });
    let headers = [(header::CONTENT_TYPE, "application/json"), (header::CONNECTION, "close")];
    (StatusCode::REQUEST_TIMEOUT, headers, error.to_string()).into_response()
}

/// Whether reading a body failed because it grew past the limit.
fn over_limit(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cause = c.source();
    }
    false
}

fn too_large(shared: &Shared, limit: usize) -> Response {
    shared.metrics.rpc("invalid", std::time::Duration::ZERO, true);
    let error = json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {
            "code": -32600,
            "message": "Invalid request",
            "data": format!("request body larger than max_request_bytes ({limit} bytes)"),
        },
    });
    let headers = [(header::CONTENT_TYPE, "application/json"), (header::CONNECTION, "close")];
    (StatusCode::PAYLOAD_TOO_LARGE, headers, error.to_string()).into_response()
}

/// A request refused from its head: its status, and a JSON-RPC error
/// saying why (a 401 also names the scheme to use).
fn refused(shared: &Shared, refusal: Refusal) -> Response {
    shared.metrics.rpc("refused", std::time::Duration::ZERO, true);
    let code = if refusal.status == StatusCode::UNAUTHORIZED { crate::rpc::UNAUTHORIZED } else { -32600 };
    let message = refusal.status.canonical_reason().unwrap_or("Refused");
    let error = json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": { "code": code, "message": message, "data": refusal.detail },
    });
    let mut response =
        (refusal.status, [(header::CONTENT_TYPE, "application/json")], error.to_string()).into_response();
    if refusal.status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
    }
    response
}

async fn websocket(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let access = match access::admit(&shared, &headers, peer, false) {
        Ok(access) => access,
        Err(refusal) => return refused(&shared, refusal),
    };
    let limit = shared.config.max_request_bytes;
    let tasks = shared.tasks.clone();
    upgrade
        .max_message_size(limit)
        .on_upgrade(move |socket| tasks.track_future(super::ws::serve(socket, shared, access)))
}

async fn metrics(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let text = shared.metrics.render(&shared.node, shared.replica.as_deref());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

async fn ready(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    if shared.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}
