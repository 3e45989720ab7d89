//! JSON-RPC 2.0 with 0G Storage KV's `kv_*` methods, as a layer over the
//! node with no networking: bytes of a request (or batch) in, bytes of the
//! response out. The HTTP server sends what [`exec::handle`] returns with
//! status 200, errors included (the 0G SDK retries any other status).
//!
//! [`methods`] holds the reads (synchronous, over a node); [`exec`] runs
//! every method for the server, the ones that wait — `kv_submit`,
//! `kv_waitForVersion`, `admin_sync` — as async work that never blocks a
//! tokio worker, and the reads on the blocking pool; [`admin`] holds the
//! `admin_*` methods and their token check.

pub mod admin;
pub mod exec;
pub mod methods;
pub mod request;
pub mod response;

pub use request::{parse, Call, Incoming, Request};
pub use response::Response;

use logkv_runtime::node::NodeError;
use logkv_store::StoreError;
use serde_json::{json, Value};

use crate::compacted;

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
    /// A logkv server error with its own code (docs/jsonrpc.md): an admin
    /// call without the right token, an entry that cannot be logged, a
    /// wait that timed out, a subscription that was closed.
    #[error("{message}: {detail}")]
    Server {
        /// The code, in JSON-RPC's server range -32000..=-32099.
        code: i64,
        /// The error object's message.
        message: &'static str,
        /// What happened.
        detail: String,
    },
    /// A read as of a version older than the history retention keeps
    /// (-32021): never answered with another version's value.
    #[error("{}", compacted::message(*version, *oldest))]
    Compacted {
        /// The version asked for.
        version: u64,
        /// The oldest version such a read may ask for now.
        oldest: u64,
    },
}

/// -32001: a call without the credentials it needs: the admin token for
/// `admin_*`, a user for anything on a server with users.
pub const UNAUTHORIZED: i64 = -32001;
/// -32010: `kv_submit` of bytes that are not a well-formed entry.
pub const MALFORMED_ENTRY: i64 = -32010;
/// -32011: `kv_submit` of an entry of a newer protocol than this logkv's.
pub const UPGRADE_NEEDED: i64 = -32011;
/// -32012: the node could not log an entry (read-only log, I/O, a limit).
pub const WRITE_FAILED: i64 = -32012;
/// -32013: a result that would take the response past
/// `max_response_bytes`, or a batch's call not run because the response
/// was already full.
pub const RESPONSE_TOO_LARGE: i64 = -32013;
/// -32020: `kv_waitForVersion` timed out.
pub const TIMEOUT: i64 = -32020;
/// -32021: a read as of a version compaction dropped under the retention
/// settings.
pub const COMPACTED: i64 = -32021;
/// -32030: a `kv_watch` subscription was closed by the server.
pub const SUBSCRIPTION_CLOSED: i64 = -32030;
/// -32050: the data asked for failed its checksum on this node; the bytes
/// are never returned (`data` names the file and offset).
pub const CORRUPT: i64 = -32050;
/// -32040: the node is still catching up with the shared log (or stopped
/// following it): it serves once `/readyz` says so.
pub const NOT_CAUGHT_UP: i64 = -32040;

impl RpcError {
    /// The JSON-RPC error code.
    pub fn code(&self) -> i64 {
        match self {
            RpcError::Parse(_) => -32700,
            RpcError::InvalidRequest(_) => -32600,
            RpcError::MethodNotFound(_) => -32601,
            RpcError::InvalidParams { .. } => -32602,
            RpcError::Internal(_) => -32603,
            RpcError::Server { code, .. } => *code,
            RpcError::Compacted { .. } => COMPACTED,
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
            RpcError::Server { message, .. } => (*message).into(),
            RpcError::Compacted { .. } => self.to_string(),
        }
    }

    /// The error object's `data`: the detail, or for `Compacted` the
    /// versions as numbers, for clients to retry from `oldest`.
    pub fn data(&self) -> Value {
        match self {
            RpcError::Parse(d)
            | RpcError::InvalidRequest(d)
            | RpcError::MethodNotFound(d)
            | RpcError::InvalidParams { detail: d, .. }
            | RpcError::Internal(d)
            | RpcError::Server { detail: d, .. } => Value::String(d.clone()),
            RpcError::Compacted { version, oldest } => json!({ "version": version, "oldest": oldest }),
        }
    }

    /// A read that failed on the node: `Compacted` and damaged data keep
    /// codes of their own, any other failure is internal.
    pub fn read_failed(e: NodeError) -> Self {
        if let Some((version, oldest)) = compacted::of(&e) {
            return RpcError::Compacted { version, oldest };
        }
        match e {
            NodeError::Store(e @ StoreError::Checksum { .. }) => {
                RpcError::server(CORRUPT, "Corrupt data", e.to_string())
            }
            e => RpcError::Internal(e.to_string()),
        }
    }

    pub(crate) fn params(param: &'static str, detail: impl Into<String>) -> Self {
        RpcError::InvalidParams { param, detail: detail.into() }
    }

    pub(crate) fn server(code: i64, message: &'static str, detail: impl Into<String>) -> Self {
        RpcError::Server { code, message, detail: detail.into() }
    }
}
