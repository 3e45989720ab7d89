//! A 0G body as a JSON document, for people and tools (`logkv tx
//! decode|encode`). Keys and values are base64 (standard alphabet, padded,
//! as 0G's JSON-RPC), stream IDs and accounts `0x` hex, control ops by their
//! [`ControlOp`] names. The version is written as a decimal string, because
//! JavaScript numbers lose integers above 2^53; it is read from a number, a
//! decimal string, or `"max"` (`u64::MAX`, no version check). Schema:
//! `docs/format.md`, "Transaction bodies".
//!
//! ```json
//! {"version": "7",
//!  "reads": [{"stream": "0x11…", "key": "cg=="}],
//!  "writes": [{"stream": "0x11…", "key": "YQ==", "value": "eHl6"}],
//!  "controls": [{"op": "GrantWriteRole", "stream": "0x11…", "account": "0x22…"}]}
//! ```

use super::zerog::{self, Body, BodyWrite};
use super::{Control, ControlOp, ParseError, Read, MAX_LIST_LEN};
use crate::types::ParseIdError;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// Why a JSON document or a body could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    /// Not JSON, or not shaped like a body document (a missing or unknown
    /// field, a wrong type).
    #[error("not a transaction body document: {0}")]
    Syntax(#[from] serde_json::Error),
    /// `version` is not a `u64`.
    #[error("version: expected a number, a decimal string or \"max\" for a u64, got {got}")]
    Version {
        /// The value found.
        got: String,
    },
    /// A key or value that is not base64.
    #[error("{at}: not base64 (standard alphabet, padded): {source}")]
    Base64 {
        /// Where, as `writes[2].value`.
        at: String,
        /// The decoder's complaint.
        source: base64::DecodeError,
    },
    /// A stream ID or account that is not `0x` hex of the right length.
    #[error("{at}: {source}")]
    Id {
        /// Where, as `controls[0].account`.
        at: String,
        /// The parser's complaint.
        source: ParseIdError,
    },
    /// A control op name that is not one of [`ControlOp`]'s.
    #[error("{at}: unknown op {name:?}, expected one of {}", op_names().join(", "))]
    UnknownOp {
        /// Where, as `controls[1].op`.
        at: String,
        /// The name found.
        name: String,
    },
    /// A body the decoder refuses, or a document describing one (an empty
    /// key, a key on an op that has none, a list too long...).
    #[error("invalid body: {}", detail(.0))]
    Body(#[from] ParseError),
}

/// The JSON document of a 0G body (pretty-printed). Fails if the body does
/// not decode.
pub fn encode_json(body: &[u8]) -> Result<String, JsonError> {
    let body = zerog::decode_body(body)?;
    let doc = Doc {
        version: serde_json::Value::String(body.version.to_string()),
        reads: body
            .reads
            .iter()
            .map(|r| ReadDoc { stream: r.stream.to_string(), key: b64(&r.key) })
            .collect(),
        writes: body
            .writes
            .iter()
            .map(|w| WriteDoc { stream: w.stream.to_string(), key: b64(&w.key), value: b64(&w.value) })
            .collect(),
        controls: body
            .controls
            .iter()
            .map(|c| ControlDoc {
                op: format!("{:?}", c.op),
                stream: c.stream.to_string(),
                key: c.key.as_deref().map(b64),
                account: c.account.map(|a| a.to_string()),
            })
            .collect(),
    };
    Ok(serde_json::to_string_pretty(&doc)?)
}

/// The 0G body a JSON document describes. `reads`, `writes` and `controls`
/// may be left out when empty; the body must pass every check the decoder
/// makes.
pub fn decode_json(json: &str) -> Result<Vec<u8>, JsonError> {
    let doc: Doc = serde_json::from_str(json)?;
    let reads = doc
        .reads
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let at = |field| format!("reads[{i}].{field}");
            Ok(Read { stream: id(&r.stream, at("stream"))?, key: unb64(&r.key, at("key"))? })
        })
        .collect::<Result<_, JsonError>>()?;
    let writes = doc
        .writes
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let at = |field| format!("writes[{i}].{field}");
            Ok(BodyWrite {
                stream: id(&w.stream, at("stream"))?,
                key: unb64(&w.key, at("key"))?,
                value: unb64(&w.value, at("value"))?,
            })
        })
        .collect::<Result<_, JsonError>>()?;
    let controls = doc
        .controls
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let at = |field| format!("controls[{i}].{field}");
            Ok(Control {
                op: op(&c.op).ok_or_else(|| JsonError::UnknownOp { at: at("op"), name: c.op.clone() })?,
                stream: id(&c.stream, at("stream"))?,
                key: c.key.as_deref().map(|k| unb64(k, at("key"))).transpose()?,
                account: c.account.as_deref().map(|a| id(a, at("account"))).transpose()?,
            })
        })
        .collect::<Result<_, JsonError>>()?;
    let body = Body { version: version(&doc.version)?, reads, writes, controls };
    body.check()?;
    Ok(zerog::encode(&body))
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Doc {
    version: serde_json::Value,
    #[serde(default)]
    reads: Vec<ReadDoc>,
    #[serde(default)]
    writes: Vec<WriteDoc>,
    #[serde(default)]
    controls: Vec<ControlDoc>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadDoc {
    stream: String,
    key: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteDoc {
    stream: String,
    key: String,
    value: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ControlDoc {
    op: String,
    stream: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    account: Option<String>,
}

fn version(v: &serde_json::Value) -> Result<u64, JsonError> {
    let parsed = match v {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) if s == "max" => Some(u64::MAX),
        // Digits only: `u64::from_str` would also take a leading `+`.
        serde_json::Value::String(s) if s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok(),
        _ => None,
    };
    parsed.ok_or_else(|| JsonError::Version { got: v.to_string() })
}

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

fn unb64(text: &str, at: String) -> Result<Vec<u8>, JsonError> {
    STANDARD.decode(text).map_err(|source| JsonError::Base64 { at, source })
}

fn id<T: std::str::FromStr<Err = ParseIdError>>(text: &str, at: String) -> Result<T, JsonError> {
    text.parse().map_err(|source| JsonError::Id { at, source })
}

/// Every control op, in byte order.
fn ops() -> impl Iterator<Item = ControlOp> {
    (0..=u8::MAX).filter_map(ControlOp::from_byte)
}

fn op_names() -> Vec<String> {
    ops().map(|op| format!("{op:?}")).collect()
}

fn op(name: &str) -> Option<ControlOp> {
    ops().find(|op| format!("{op:?}") == name)
}

fn detail(e: &ParseError) -> String {
    match e {
        ParseError::Invalid { detail } => detail.clone(),
        ParseError::ListTooLong => format!("a list has more than {MAX_LIST_LEN} items"),
    }
}
