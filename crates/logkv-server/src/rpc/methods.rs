//! The `kv_*` methods of 0G Storage KV over the node's reads, with 0G's
//! encodings: stream IDs and accounts as `0x` hex, keys and values as
//! standard base64, optional `version` (absent or `null` = the newest
//! visible), values in pages of `startIndex`/`len`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use logkv_runtime::node::{KeyValue, Node, NodeError};
use logkv_runtime::types::{Address, StreamId};
use serde_json::{json, Value};

use super::{RpcError, MAX_QUERY_LEN_BYTES};

/// Every method the server answers but the administrative ones, as the
/// static names `/metrics` labels
/// its series with (a client's name is never a label: unknown ones count
/// as `unknown`).
pub const METHODS: &[&str] = &[
    "kv_getStatus",
    "kv_getValue",
    "kv_getNext",
    "kv_getPrev",
    "kv_getFirst",
    "kv_getLast",
    "kv_getTransactionResult",
    "kv_getHoldingStreamIds",
    "kv_getReplayProgress",
    "kv_hasWritePermission",
    "kv_isAdmin",
    "kv_IsAdmin",
    "kv_isSpecialKey",
    "kv_isWriterOfKey",
    "kv_isWriterOfStream",
    "kv_getHistory",
    "kv_nextNonce",
    "kv_submit",
    "kv_waitForVersion",
    "kv_watch",
    "kv_unwatch",
];

/// `method`'s name from [`METHODS`] or the administrative ones, or
/// `"unknown"`.
pub fn metric_name(method: &str) -> &'static str {
    METHODS.iter().chain(super::admin::METHODS).find(|m| **m == method).copied().unwrap_or("unknown")
}

/// Which parameter of the read method `method` is the version it reads
/// as of, if it takes one.
pub fn version_param(method: &str) -> Option<usize> {
    match method {
        "kv_getValue" => Some(4),
        "kv_getNext" | "kv_getPrev" => Some(5),
        "kv_getFirst" | "kv_getLast" | "kv_hasWritePermission" | "kv_isWriterOfKey" => Some(3),
        "kv_isAdmin" | "kv_IsAdmin" | "kv_isSpecialKey" | "kv_isWriterOfStream" | "kv_getHistory" => Some(2),
        _ => None,
    }
}

/// Runs the read method `method` with `params` on `node`.
pub fn dispatch(node: &Node, method: &str, params: &[Value]) -> Result<Value, RpcError> {
    let p = Params(params);
    match method {
        "kv_getStatus" => {
            p.at_most(0)?;
            Ok(Value::Bool(true))
        }
        "kv_getValue" => get_value(node, &p),
        "kv_getNext" | "kv_getPrev" => {
            p.at_most(6)?;
            let (stream, key, page) = (p.stream(0)?, p.key(1)?, p.page(2)?);
            let inclusive = p.bool(4, "inclusive")?;
            let version = p.version(5)?;
            let found = if method == "kv_getNext" {
                node.next(&stream, &key, inclusive, version)
            } else {
                node.prev(&stream, &key, inclusive, version)
            };
            key_value(found.map_err(RpcError::read_failed)?, page)
        }
        "kv_getFirst" | "kv_getLast" => {
            p.at_most(4)?;
            let (stream, page, version) = (p.stream(0)?, p.page(1)?, p.version(3)?);
            let found = if method == "kv_getFirst" {
                node.first(&stream, version)
            } else {
                node.last(&stream, version)
            };
            key_value(found.map_err(RpcError::read_failed)?, page)
        }
        "kv_getTransactionResult" => {
            p.at_most(1)?;
            let version = p.u64_or_decimal(0, "tx_seq")?;
            Ok(node.result(version).map_err(RpcError::read_failed)?.map_or(Value::Null, Value::String))
        }
        "kv_getHoldingStreamIds" => {
            p.at_most(0)?;
            let ids = node.holding_stream_ids().map_err(RpcError::read_failed)?;
            Ok(Value::Array(ids.iter().map(|id| Value::String(id.to_string())).collect()))
        }
        "kv_getReplayProgress" => {
            p.at_most(0)?;
            let progress = node.replay_progress();
            // 0G's `appliedSeq` is the next one to replay; positions start at 1.
            Ok(json!({
                "appliedPosition": progress.applied_position,
                "appliedVersion": progress.applied_version,
                "appliedSeq": progress.applied_position + 1,
                "firstTxSeq": Value::Null,
            }))
        }
        "kv_hasWritePermission" => {
            p.at_most(4)?;
            let (account, stream, key, version) = (p.account(0)?, p.stream(1)?, p.key(2)?, p.version(3)?);
            boolean(node.has_write_permission(&account, &stream, &key, version))
        }
        "kv_isAdmin" | "kv_IsAdmin" => {
            p.at_most(3)?;
            let (account, stream, version) = (p.account(0)?, p.stream(1)?, p.version(2)?);
            boolean(node.is_admin(&account, &stream, version))
        }
        "kv_isSpecialKey" => {
            p.at_most(3)?;
            let (stream, key, version) = (p.stream(0)?, p.key(1)?, p.version(2)?);
            boolean(node.is_special_key(&stream, &key, version))
        }
        "kv_isWriterOfKey" => {
            p.at_most(4)?;
            let (account, stream, key, version) = (p.account(0)?, p.stream(1)?, p.key(2)?, p.version(3)?);
            boolean(node.is_writer_of_key(&account, &stream, &key, version))
        }
        "kv_isWriterOfStream" => {
            p.at_most(3)?;
            let (account, stream, version) = (p.account(0)?, p.stream(1)?, p.version(2)?);
            boolean(node.is_writer_of_stream(&account, &stream, version))
        }
        "kv_getHistory" => {
            p.at_most(3)?;
            let (stream, key, version) = (p.stream(0)?, p.key(1)?, p.version(2)?);
            let history = node.history(&stream, &key).map_err(RpcError::read_failed)?;
            let limit = version.unwrap_or(u64::MAX);
            Ok(Value::Array(
                history
                    .iter()
                    .filter(|h| h.version <= limit)
                    .map(|h| json!({ "version": h.version, "deleted": h.deleted, "size": h.value_len }))
                    .collect(),
            ))
        }
        "kv_nextNonce" => {
            p.at_most(1)?;
            Ok(json!(node.reserve_nonce(&p.account(0)?)))
        }
        _ => Err(RpcError::MethodNotFound(method.to_string())),
    }
}

/// `kv_getValue(streamId, key, startIndex, len, version?)`: a missing key
/// is `{version: 0, data: "", size: 0}`, a deleted one the delete's
/// version with size 0.
fn get_value(node: &Node, p: &Params) -> Result<Value, RpcError> {
    p.at_most(5)?;
    let (stream, key, page) = (p.stream(0)?, p.key(1)?, p.page(2)?);
    // One version for both reads below, even if a newer one becomes visible.
    let version = p.version(4)?.unwrap_or_else(|| node.replay_progress().applied_version);
    if let Some((value, written)) = node.get(&stream, &key, Some(version)).map_err(RpcError::read_failed)? {
        return segment(written, &value, page).map(Value::Object);
    }
    let history = node.history(&stream, &key).map_err(RpcError::read_failed)?;
    let deleted_at = history.iter().find(|h| h.version <= version).filter(|h| h.deleted).map(|h| h.version);
    Ok(json!({ "version": deleted_at.unwrap_or(0), "data": "", "size": 0 }))
}

/// A key found by iteration as `{version, key, data, size}`, or `null`.
fn key_value(found: Option<KeyValue>, page: Page) -> Result<Value, RpcError> {
    let Some(kv) = found else {
        return Ok(Value::Null);
    };
    let mut out = segment(kv.version, &kv.value, page)?;
    out.insert("key".into(), Value::String(STANDARD.encode(&kv.key)));
    Ok(Value::Object(out))
}

/// Which bytes of a value to return.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Page {
    start: u64,
    len: u64,
}

/// `{version, data, size}` with the bytes of `page`: `len = 0` gives only
/// the metadata; `start` past the end is an error; the end is clamped.
fn segment(version: u64, value: &[u8], page: Page) -> Result<serde_json::Map<String, Value>, RpcError> {
    let size = value.len() as u64;
    let data = if page.len == 0 {
        &[][..]
    } else if page.start > size {
        return Err(RpcError::params("start_index", "start index is greater than value length"));
    } else {
        let end = page.start.saturating_add(page.len).min(size);
        // Both are at most `size`, which came from a slice length.
        &value[page.start as usize..end as usize]
    };
    let mut out = serde_json::Map::new();
    out.insert("version".into(), json!(version));
    out.insert("data".into(), Value::String(STANDARD.encode(data)));
    out.insert("size".into(), json!(size));
    Ok(out)
}

fn boolean(answer: Result<bool, NodeError>) -> Result<Value, RpcError> {
    answer.map(Value::Bool).map_err(RpcError::read_failed)
}

/// Positional parameters, read with 0G's parameter names in errors, in
/// their order: the first wrong one is named, with what was expected and
/// what came (a client that shifted its parameters learns which one).
pub(crate) struct Params<'a>(pub(crate) &'a [Value]);

/// Longest part of a received value an error quotes.
const QUOTED: usize = 64;

/// `got <the value as JSON>`, cut to [`QUOTED`] characters.
fn got(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(QUOTED) {
        Some((cut, _)) => format!("got {}...", &text[..cut]),
        None => format!("got {text}"),
    }
}

impl Params<'_> {
    pub(crate) fn at_most(&self, n: usize) -> Result<(), RpcError> {
        if self.0.len() > n {
            return Err(RpcError::params(
                "params",
                format!("expected at most {n} parameters, got {}", self.0.len()),
            ));
        }
        Ok(())
    }

    pub(crate) fn required(&self, i: usize, name: &'static str) -> Result<&Value, RpcError> {
        match self.0.get(i) {
            None | Some(Value::Null) => {
                let detail = format!("missing: it is parameter {} and {} were given", i + 1, self.0.len());
                Err(RpcError::params(name, detail))
            }
            Some(v) => Ok(v),
        }
    }

    /// `expected <what>, got <value>` for parameter `i`.
    fn wrong(&self, i: usize, name: &'static str, expected: &str) -> RpcError {
        let value = self.0.get(i).unwrap_or(&Value::Null);
        RpcError::params(name, format!("expected {expected}, {}", got(value)))
    }

    pub(crate) fn string(&self, i: usize, name: &'static str) -> Result<&str, RpcError> {
        self.required(i, name)?.as_str().ok_or_else(|| self.wrong(i, name, "a string"))
    }

    pub(crate) fn stream(&self, i: usize) -> Result<StreamId, RpcError> {
        let text = self.string(i, "stream_id")?;
        text.parse().map_err(|_| self.wrong(i, "stream_id", "0x and 64 hex digits"))
    }

    pub(crate) fn account(&self, i: usize) -> Result<Address, RpcError> {
        let text = self.string(i, "account")?;
        text.parse().map_err(|_| self.wrong(i, "account", "0x and 40 hex digits"))
    }

    /// A non-empty key in standard base64.
    pub(crate) fn key(&self, i: usize) -> Result<Vec<u8>, RpcError> {
        let key = STANDARD
            .decode(self.string(i, "key")?)
            .map_err(|e| self.wrong(i, "key", &format!("standard base64 ({e})")))?;
        if key.is_empty() {
            return Err(RpcError::params("key", "key is empty"));
        }
        Ok(key)
    }

    pub(crate) fn u64(&self, i: usize, name: &'static str) -> Result<u64, RpcError> {
        self.required(i, name)?.as_u64().ok_or_else(|| self.wrong(i, name, "an unsigned integer"))
    }

    /// A number, or a decimal string (the TypeScript SDK sends `txSeq.toString()`).
    pub(crate) fn u64_or_decimal(&self, i: usize, name: &'static str) -> Result<u64, RpcError> {
        match self.required(i, name)? {
            Value::String(s) => {
                s.parse().map_err(|_| self.wrong(i, name, "an unsigned integer or its decimal string"))
            }
            _ => self.u64(i, name),
        }
    }

    pub(crate) fn bool(&self, i: usize, name: &'static str) -> Result<bool, RpcError> {
        self.required(i, name)?.as_bool().ok_or_else(|| self.wrong(i, name, "a boolean"))
    }

    /// `startIndex` at `i` and `len` at `i + 1`.
    pub(crate) fn page(&self, i: usize) -> Result<Page, RpcError> {
        let start = self.u64(i, "start_index")?;
        let len = self.u64(i + 1, "len")?;
        if len > MAX_QUERY_LEN_BYTES {
            return Err(RpcError::params("len", "query length too large"));
        }
        Ok(Page { start, len })
    }

    /// An optional version: absent or `null` = the newest visible.
    pub(crate) fn version(&self, i: usize) -> Result<Option<u64>, RpcError> {
        match self.0.get(i) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.u64(i, "version").map(Some),
        }
    }
}
