//! JSON-RPC 2.0 with 0G Storage KV's `kv_*` methods, as a layer over the
//! node with no networking: bytes of a request (or batch) in, bytes of the
//! response out. The HTTP server sends what [`handle`] returns with status
//! 200, errors included (the 0G SDK retries any other status).

pub mod methods;
pub mod request;
pub mod response;

use logkv_runtime::node::Node;

pub use request::{parse, Call, Incoming, Request};
pub use response::Response;

/// Largest `len` a value read may ask for: 0G's default
/// `max_query_len_in_bytes`, which the 0G SDK always asks for.
pub const MAX_QUERY_LEN_BYTES: u64 = 262_144;

/// A JSON-RPC error, with the standard codes and 0G's messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpcError {
    /// The bytes are not JSON (-32700).
    #[error("Parse error: {0}")]
    Parse(String),
    /// The JSON is not a request object (-32600).
    #[error("Invalid request: {0}")]
    InvalidRequest(String),
    /// No method of this name (-32601).
    #[error("Method not found: {0}")]
    MethodNotFound(String),
    /// A parameter is missing or wrong (-32602); 0G's shape:
    /// message `Invalid params: <param>`, data `<detail>`.
    #[error("Invalid params: {param}: {detail}")]
    InvalidParams {
        /// The parameter, as 0G names it (`key`, `len`, `start_index`, ...).
        param: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// The node failed to answer (-32603).
    #[error("Internal error: {0}")]
    Internal(String),
}

impl RpcError {
    /// The JSON-RPC error code.
    pub fn code(&self) -> i64 {
        match self {
            RpcError::Parse(_) => -32700,
            RpcError::InvalidRequest(_) => -32600,
            RpcError::MethodNotFound(_) => -32601,
            RpcError::InvalidParams { .. } => -32602,
            RpcError::Internal(_) => -32603,
        }
    }

    /// The error object's `message`.
    pub fn message(&self) -> String {
        match self {
            RpcError::Parse(_) => "Parse error".into(),
            RpcError::InvalidRequest(_) => "Invalid request".into(),
            RpcError::MethodNotFound(_) => "Method not found".into(),
            RpcError::InvalidParams { param, .. } => format!("Invalid params: {param}"),
            RpcError::Internal(_) => "Internal error".into(),
        }
    }

    /// The error object's `data`: the detail.
    pub fn data(&self) -> &str {
        match self {
            RpcError::Parse(d)
            | RpcError::InvalidRequest(d)
            | RpcError::MethodNotFound(d)
            | RpcError::InvalidParams { detail: d, .. }
            | RpcError::Internal(d) => d,
        }
    }

    pub(crate) fn params(param: &'static str, detail: impl Into<String>) -> Self {
        RpcError::InvalidParams { param, detail: detail.into() }
    }
}

/// Answers the request or batch in `body`: the response bytes, or `None`
/// when there is nothing to send (only notifications).
pub fn handle(node: &Node, body: &[u8]) -> Option<Vec<u8>> {
    let answer = |call: Call| -> Option<Response> {
        match call {
            Call::Valid(request) => {
                let outcome = methods::dispatch(node, &request.method, &request.params);
                request.id.map(|id| Response::new(id, outcome))
            }
            Call::Invalid { id, error } => Some(Response::new(id, Err(error))),
        }
    };
    match parse(body) {
        Err(error) => response::encode_one(&Response::new(response::null_id(), Err(error))),
        Ok(Incoming::Single(call)) => answer(call).and_then(|r| response::encode_one(&r)),
        Ok(Incoming::Batch(calls)) => {
            let responses: Vec<Response> = calls.into_iter().filter_map(answer).collect();
            response::encode_batch(&responses)
        }
    }
}
