//! HTTP: JSON-RPC 2.0 on `POST /`, and the operations endpoints `/metrics`,
//! `/healthz` and `/readyz`.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;

use crate::shared::Shared;

/// The HTTP routes.
pub fn router(shared: Arc<Shared>) -> Router {
    let limit = shared.config.max_request_bytes;
    Router::new()
        .route("/", post(json_rpc))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(shared)
}

/// Every answer is 200 with a JSON body, errors included: the 0G SDK
/// retries any other status.
async fn json_rpc(State(shared): State<Arc<Shared>>, body: Bytes) -> impl IntoResponse {
    let started = Instant::now();
    let node = shared.node.clone();
    let answer = tokio::task::spawn_blocking(move || crate::rpc::handle(&node, &body))
        .await
        .expect("rpc::handle does not panic");
    shared.metrics.rpc("http", started.elapsed(), false);
    match answer {
        Some(bytes) => (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let text = shared.metrics.render(&shared.node);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

async fn ready(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    if shared.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}
