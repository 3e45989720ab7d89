//! Parsing a JSON-RPC 2.0 request or batch. Ids are kept as their raw JSON
//! text, so any number (above 2^53 too) is echoed exactly as sent.

use std::collections::BTreeMap;

use serde_json::value::RawValue;
use serde_json::Value;

use super::RpcError;

/// Most requests one batch may hold.
pub const MAX_BATCH_LEN: usize = 1024;

/// A well-formed request.
#[derive(Debug)]
pub struct Request {
    /// Its id as raw JSON; `None` for a notification (no `id` member).
    pub id: Option<Box<RawValue>>,
    /// The method name.
    pub method: String,
    /// The parameters (`params` absent or `null` = none).
    pub params: Vec<Value>,
}

/// One element of what was sent.
#[derive(Debug)]
pub enum Call {
    /// A request to dispatch.
    Valid(Request),
    /// Not a valid request: answered with `error` and `id` (raw `null`
    /// when it had none that could be read).
    Invalid {
        /// The id to echo.
        id: Box<RawValue>,
        /// Why it is invalid.
        error: RpcError,
    },
}

/// What a body holds.
#[derive(Debug)]
pub enum Incoming {
    /// One request.
    Single(Call),
    /// A batch (a JSON array) of requests, answered with an array.
    Batch(Vec<Call>),
}

/// Parses a body: JSON that is not valid is a parse error (-32700), an
/// empty or too long batch an invalid request (-32600).
pub fn parse(body: &[u8]) -> Result<Incoming, RpcError> {
    let raw: Box<RawValue> = serde_json::from_slice(body).map_err(|e| RpcError::Parse(e.to_string()))?;
    if !raw.get().starts_with('[') {
        return Ok(Incoming::Single(call(&raw)));
    }
    let items: Vec<Box<RawValue>> =
        serde_json::from_str(raw.get()).map_err(|e| RpcError::Parse(e.to_string()))?;
    if items.is_empty() {
        return Err(RpcError::InvalidRequest("empty batch".into()));
    }
    if items.len() > MAX_BATCH_LEN {
        return Err(RpcError::InvalidRequest(format!(
            "batch of {} requests, at most {MAX_BATCH_LEN}",
            items.len()
        )));
    }
    Ok(Incoming::Batch(items.iter().map(|item| call(item)).collect()))
}

fn call(raw: &RawValue) -> Call {
    let invalid = |id: Option<&RawValue>, detail: &str| Call::Invalid {
        id: id.map_or_else(super::response::null_id, RawValue::to_owned),
        error: RpcError::InvalidRequest(detail.into()),
    };
    let Ok(members) = serde_json::from_str::<BTreeMap<String, Box<RawValue>>>(raw.get()) else {
        return invalid(None, "not an object");
    };
    let id = members.get("id").map(Box::as_ref);
    if let Some(id) = id {
        let text = id.get();
        let scalar = text == "null"
            || text.starts_with('"')
            || text.starts_with('-')
            || text.starts_with(|c: char| c.is_ascii_digit());
        if !scalar {
            return invalid(None, "id must be a string, a number or null");
        }
    }
    let member = |name: &str| members.get(name).and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok());
    if member("jsonrpc") != Some(Value::String("2.0".into())) {
        return invalid(id, "jsonrpc must be \"2.0\"");
    }
    let Some(Value::String(method)) = member("method") else {
        return invalid(id, "method must be a string");
    };
    let params = match member("params") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(params)) => params,
        Some(_) => return invalid(id, "params must be an array"),
    };
    Call::Valid(Request { id: id.map(RawValue::to_owned), method, params })
}
