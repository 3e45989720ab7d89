//! The client side of `--server`: the key-value, `tx submit` and `acl`
//! commands talk JSON-RPC 2.0 over HTTP POST to a running `logkv serve`,
//! which holds the data directory's lock, instead of opening the directory
//! themselves.
//!
//! Reads use 0G's `kv_*` methods (docs/jsonrpc.md), so they see exactly what
//! a 0G SDK client sees: values come in pages of at most
//! [`MAX_QUERY_LEN_BYTES`], and every page and every key of a scan is read
//! as of one version, so a write landing meanwhile never mixes into one
//! answer. Writes are entries signed here, with the client's own key: the
//! server only checks and logs them (`kv_nextNonce`, `kv_submit`).

use std::io;
use std::ops::Bound;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use logkv_runtime::types::{Address, StreamId};
use logkv_store::{HistoryEntry, ScanOptions};
use serde_json::{json, Value};

use crate::commands::Submitted;

/// Largest page of a value one call may ask for: 0G's
/// `max_query_len_in_bytes`, which the server enforces.
pub const MAX_QUERY_LEN_BYTES: u64 = 262_144;

/// How long one call may take, connecting and reading the answer included:
/// long enough for a write to become durable on a busy server, short
/// enough that a hung server does not hang a script.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a call to the server failed.
#[derive(Debug)]
pub enum RemoteError {
    /// The URL cannot be used for a request (no scheme, no host).
    BadUrl { url: String, detail: String },
    /// Nothing answered at the URL: connection refused, host not found, or
    /// no connection within the timeout.
    Unreachable { url: String, detail: String },
    /// The exchange failed after connecting (a timeout, a dropped
    /// connection, bad HTTP), or the answer was not HTTP 200.
    Transport { url: String, detail: String },
    /// The answer is not the JSON-RPC response the method promises.
    BadResponse { method: &'static str, detail: String },
    /// The server answered with a JSON-RPC error object.
    Rpc { method: &'static str, code: i64, message: String, data: String },
}

impl std::fmt::Display for RemoteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RemoteError::BadUrl { url, detail } => {
                write!(
                    f,
                    "--server {url} is not a usable URL ({detail}); expected e.g. http://127.0.0.1:7380"
                )
            }
            RemoteError::Unreachable { url, detail } => {
                write!(f, "cannot reach a logkv server at {url}: {detail} (is `logkv serve` running there?)")
            }
            RemoteError::Transport { url, detail } => write!(f, "the request to {url} failed: {detail}"),
            RemoteError::BadResponse { method, detail } => {
                write!(f, "the server's answer to {method} is not what logkv expects: {detail}")
            }
            RemoteError::Rpc { method, code, message, data } if data.is_empty() => {
                write!(f, "the server refused {method}: {message} (code {code})")
            }
            RemoteError::Rpc { method, code, message, data } => {
                write!(f, "the server refused {method}: {message}: {data} (code {code})")
            }
        }
    }
}

impl RemoteError {
    /// Whether the fault is in what the command asked for (a bad URL, a
    /// parameter the server refused), not in the server or the network.
    pub fn is_usage(&self) -> bool {
        matches!(self, RemoteError::BadUrl { .. } | RemoteError::Rpc { code: -32602, .. })
    }
}

/// A key found by iteration, its first page of value bytes and the
/// value's full size.
struct Found {
    key: Vec<u8>,
    data: Vec<u8>,
    size: u64,
}

/// A JSON-RPC connection to one server.
pub struct Remote {
    url: String,
    /// Presented as `Authorization: Bearer` to administrative methods.
    admin_token: Option<String>,
    agent: ureq::Agent,
    next_id: std::cell::Cell<u64>,
}

impl Remote {
    /// A client of the server at `url` (`http://HOST:PORT/`); nothing is
    /// sent until the first call.
    pub fn new(url: &str) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(CALL_TIMEOUT))
            // JSON-RPC errors come with status 200; any other status is
            // reported with the body the server sent.
            .http_status_as_error(false)
            .build()
            .into();
        Remote { url: url.to_string(), admin_token: None, agent, next_id: std::cell::Cell::new(1) }
    }

    /// The same client, presenting `token` (if any) to the server's
    /// administrative methods.
    pub fn with_admin_token(mut self, token: Option<&str>) -> Self {
        self.admin_token = token.map(str::to_string);
        self
    }

    /// Calls `method` with positional `params`; its `result`.
    pub fn call(&self, method: &'static str, params: Value) -> Result<Value, RemoteError> {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let request = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        let mut post = self.agent.post(&self.url).header("content-type", "application/json");
        if let Some(token) = &self.admin_token {
            post = post.header("authorization", format!("Bearer {token}"));
        }
        let mut response = post.send(request.to_string()).map_err(|e| self.http_error(e))?;
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_string().map_err(|e| self.http_error(e))?;
        if status != 200 {
            let detail = format!("HTTP status {status}: {}", body.chars().take(200).collect::<String>());
            return Err(RemoteError::Transport { url: self.url.clone(), detail });
        }
        let bad = |detail: String| RemoteError::BadResponse { method, detail };
        let mut answer: Value = serde_json::from_str(&body).map_err(|e| bad(format!("not JSON: {e}")))?;
        if let Some(error) = answer.get("error") {
            let text = |field: &str| match error.get(field) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            let code = error.get("code").and_then(Value::as_i64).unwrap_or(0);
            return Err(RemoteError::Rpc { method, code, message: text("message"), data: text("data") });
        }
        if answer.get("id") != Some(&json!(id)) {
            return Err(bad(format!("the response is not for request {id}")));
        }
        answer.get_mut("result").map(Value::take).ok_or_else(|| bad("no result and no error".into()))
    }

    fn http_error(&self, e: ureq::Error) -> RemoteError {
        let url = self.url.clone();
        let unreachable = |detail: String| RemoteError::Unreachable { url: url.clone(), detail };
        match e {
            ureq::Error::BadUri(detail) => RemoteError::BadUrl { url, detail },
            ureq::Error::HostNotFound => unreachable("host not found".into()),
            ureq::Error::ConnectionFailed => unreachable("connection failed".into()),
            ureq::Error::Timeout(ureq::Timeout::Connect | ureq::Timeout::Resolve) => {
                unreachable("no connection within the timeout".into())
            }
            ureq::Error::Io(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionRefused
                        | io::ErrorKind::AddrNotAvailable
                        | io::ErrorKind::HostUnreachable
                        | io::ErrorKind::NetworkUnreachable
                ) =>
            {
                unreachable(e.to_string())
            }
            e => RemoteError::Transport { url, detail: e.to_string() },
        }
    }

    /// The node's `admin_nodeInfo` (needs the admin token).
    pub fn node_info(&self) -> Result<Value, RemoteError> {
        self.call("admin_nodeInfo", json!([]))
    }

    /// The newest version the server's readers see.
    pub fn applied_version(&self) -> Result<u64, RemoteError> {
        let method = "kv_getReplayProgress";
        let progress = self.call(method, json!([]))?;
        field_u64(method, &progress, "appliedVersion")
    }

    /// `key`'s value as of `at` (the newest if `None`) and the version that
    /// wrote it; `None` if it has none (never written, or deleted).
    pub fn get(
        &self,
        stream: &StreamId,
        key: &[u8],
        at: Option<u64>,
    ) -> Result<Option<(Vec<u8>, u64)>, RemoteError> {
        let Some((version, size)) = self.live(stream, key, at)? else { return Ok(None) };
        // As of the write's own version the key holds exactly that value,
        // whatever is written after it meanwhile.
        let value = self.rest_of_value(stream, key, Vec::new(), size, version)?;
        Ok(Some((value, version)))
    }

    /// The version and size of `key`'s live value as of `at`, if it has one.
    pub fn live(
        &self,
        stream: &StreamId,
        key: &[u8],
        at: Option<u64>,
    ) -> Result<Option<(u64, u64)>, RemoteError> {
        let method = "kv_getValue";
        let meta = self.call(method, json!([stream.to_string(), STANDARD.encode(key), 0, 0, at]))?;
        let (version, size) = (field_u64(method, &meta, "version")?, field_u64(method, &meta, "size")?);
        if version == 0 {
            return Ok(None);
        }
        if size > 0 {
            return Ok(Some((version, size)));
        }
        // Size 0 is both an empty value and a delete; iteration hides
        // deleted keys, so the key is live if it finds the key itself.
        let method = "kv_getNext";
        let found =
            self.call(method, json!([stream.to_string(), STANDARD.encode(key), 0, 0, true, version]))?;
        let same = !found.is_null() && field_bytes(method, &found, "key")? == key;
        Ok(same.then_some((version, 0)))
    }

    /// Appends the bytes of `key`'s value from `data.len()` up to `size`,
    /// page by page, read as of `at`.
    fn rest_of_value(
        &self,
        stream: &StreamId,
        key: &[u8],
        mut data: Vec<u8>,
        size: u64,
        at: u64,
    ) -> Result<Vec<u8>, RemoteError> {
        let method = "kv_getValue";
        while (data.len() as u64) < size {
            let page = self.call(
                method,
                json!([stream.to_string(), STANDARD.encode(key), data.len(), MAX_QUERY_LEN_BYTES, at]),
            )?;
            let bytes = field_bytes(method, &page, "data")?;
            if bytes.is_empty() {
                return Err(RemoteError::BadResponse {
                    method,
                    detail: format!("an empty page at byte {} of a {size}-byte value", data.len()),
                });
            }
            data.extend_from_slice(&bytes);
        }
        Ok(data)
    }

    /// Calls `each(key, value)` for the live keys of `options`' range in
    /// its order, up to its limit, all read as of one version (`options.at`
    /// or the newest when the scan starts).
    pub fn scan<E: From<RemoteError>>(
        &self,
        stream: &StreamId,
        options: &ScanOptions,
        mut each: impl FnMut(Vec<u8>, Vec<u8>) -> Result<(), E>,
    ) -> Result<(), E> {
        let at = match options.at {
            Some(at) => at,
            None => self.applied_version()?,
        };
        let (from, to) =
            if options.reverse { (&options.end, &options.start) } else { (&options.start, &options.end) };
        let mut found = match from {
            Bound::Included(k) if !k.is_empty() => self.step(stream, options.reverse, Some((k, true)), at)?,
            Bound::Excluded(k) if !k.is_empty() => {
                self.step(stream, options.reverse, Some((k, false)), at)?
            }
            // An empty key is below every key: nothing is before it.
            Bound::Excluded(_) if options.reverse => None,
            _ => self.step(stream, options.reverse, None, at)?,
        };
        let mut count = 0;
        while let Some(kv) = found {
            let within = match to {
                Bound::Unbounded => true,
                Bound::Included(k) if options.reverse => kv.key >= *k,
                Bound::Excluded(k) if options.reverse => kv.key > *k,
                Bound::Included(k) => kv.key <= *k,
                Bound::Excluded(k) => kv.key < *k,
            };
            if !within || options.limit.is_some_and(|limit| count >= limit) {
                break;
            }
            let value = self.rest_of_value(stream, &kv.key, kv.data, kv.size, at)?;
            found = self.step(stream, options.reverse, Some((&kv.key, false)), at)?;
            each(kv.key, value)?;
            count += 1;
        }
        Ok(())
    }

    /// The first (or, `reverse`, last) live key, or the next one after
    /// (before) `from` (`true`: `from` itself included), as of `at`.
    fn step(
        &self,
        stream: &StreamId,
        reverse: bool,
        from: Option<(&[u8], bool)>,
        at: u64,
    ) -> Result<Option<Found>, RemoteError> {
        let stream = stream.to_string();
        let (method, params) = match (from, reverse) {
            (None, false) => ("kv_getFirst", json!([stream, 0, MAX_QUERY_LEN_BYTES, at])),
            (None, true) => ("kv_getLast", json!([stream, 0, MAX_QUERY_LEN_BYTES, at])),
            (Some((key, inclusive)), reverse) => (
                if reverse { "kv_getPrev" } else { "kv_getNext" },
                json!([stream, STANDARD.encode(key), 0, MAX_QUERY_LEN_BYTES, inclusive, at]),
            ),
        };
        let found = self.call(method, params)?;
        if found.is_null() {
            return Ok(None);
        }
        Ok(Some(Found {
            key: field_bytes(method, &found, "key")?,
            data: field_bytes(method, &found, "data")?,
            size: field_u64(method, &found, "size")?,
        }))
    }

    /// `key`'s versions, newest first (`kv_getHistory`).
    pub fn history(&self, stream: &StreamId, key: &[u8]) -> Result<Vec<HistoryEntry>, RemoteError> {
        let method = "kv_getHistory";
        let list = self.call(method, json!([stream.to_string(), STANDARD.encode(key)]))?;
        let Value::Array(items) = list else {
            return Err(RemoteError::BadResponse {
                method,
                detail: format!("expected an array, got {list}"),
            });
        };
        items
            .iter()
            .map(|item| {
                let size = field_u64(method, item, "size")?;
                Ok(HistoryEntry {
                    version: field_u64(method, item, "version")?,
                    deleted: item.get("deleted").and_then(Value::as_bool).ok_or_else(|| {
                        RemoteError::BadResponse { method, detail: format!("no boolean `deleted` in {item}") }
                    })?,
                    value_len: u32::try_from(size).map_err(|_| RemoteError::BadResponse {
                        method,
                        detail: format!("size {size} is larger than any value"),
                    })?,
                })
            })
            .collect()
    }

    /// Reserves the nonce `account` signs its next entry with at this
    /// server (`kv_nextNonce`), so concurrent clients of one key never
    /// pick the same one.
    pub fn next_nonce(&self, account: &Address) -> Result<u64, RemoteError> {
        let method = "kv_nextNonce";
        let nonce = self.call(method, json!([account.to_string()]))?;
        nonce.as_u64().ok_or_else(|| RemoteError::BadResponse { method, detail: format!("nonce {nonce}") })
    }

    /// Submits a signed entry (`kv_submit`); returns once the server has
    /// applied it, durable per its durability mode.
    pub fn submit(&self, entry: &[u8]) -> Result<Submitted, RemoteError> {
        let method = "kv_submit";
        let reply = self.call(method, json!([format!("0x{}", hex::encode(entry))]))?;
        let bad = |detail: String| RemoteError::BadResponse { method, detail };
        let array = |field: &str| {
            reply
                .get(field)
                .and_then(Value::as_array)
                .ok_or_else(|| bad(format!("no array `{field}` in {reply}")))
        };
        let versions = array("versions")?
            .iter()
            .map(|v| v.as_u64().ok_or_else(|| bad(format!("version {v}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let results = array("results")?
            .iter()
            .map(|r| match r {
                Value::Null => Ok(None),
                Value::String(s) => Ok(Some(s.clone())),
                other => Err(bad(format!("result {other}"))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        if versions.len() != results.len() {
            return Err(bad(format!("{} versions for {} results", versions.len(), results.len())));
        }
        Ok(Submitted { versions, results })
    }
}

pub fn field_u64(method: &'static str, object: &Value, field: &str) -> Result<u64, RemoteError> {
    object.get(field).and_then(Value::as_u64).ok_or_else(|| RemoteError::BadResponse {
        method,
        detail: format!("no unsigned integer `{field}` in {object}"),
    })
}

fn field_bytes(method: &'static str, object: &Value, field: &str) -> Result<Vec<u8>, RemoteError> {
    let bad = |detail: String| RemoteError::BadResponse { method, detail };
    let text =
        object.get(field).and_then(Value::as_str).ok_or_else(|| bad(format!("no string `{field}`")))?;
    STANDARD.decode(text).map_err(|e| bad(format!("`{field}` is not base64: {e}")))
}
