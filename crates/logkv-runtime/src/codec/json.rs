//! Bodies as JSON documents, for people and tools (`logkv tx
//! decode|encode`): 0G bodies (codec 0) alone, and native bodies (codecs 1
//! and 2) inside entries (`crate::entry_json`), where a codec 2 body finds
//! the tags its streams are indexes into. Keys and values are base64
//! (standard alphabet, padded, as 0G's JSON-RPC), stream IDs and accounts
//! `0x` hex, ops by their names. The version (and an increment's delta) is
//! written as a decimal string, because JavaScript numbers lose integers
//! above 2^53; it is read from a number, a decimal string, or `"max"`
//! (`u64::MAX`, no version check). Schema: `docs/format.md`, "Transaction
//! bodies".
//!
//! ```json
//! {"version": "7",
//!  "reads": [{"stream": "0x11…", "key": "cg=="}],
//!  "writes": [{"stream": "0x11…", "key": "YQ==", "value": "eHl6"}],
//!  "controls": [{"op": "GrantWriteRole", "stream": "0x11…", "account": "0x22…"}]}
//! ```

use super::native::{self, Op};
use super::zerog::{self, Body, BodyWrite};
use super::{Control, ControlOp, NewExpiry, ParseError, Read, MAX_LIST_LEN, NATIVE, NATIVE_COMPACT, ZEROG};
use crate::collection::{CollOp, COLL_OPS};
use crate::envelope::EnvelopeError;
use crate::types::{ParseIdError, StreamId};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// Why a JSON document, a body or an entry could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    /// Not JSON, or not shaped like a body or entry document (a missing or
    /// unknown field, a wrong type).
    #[error("not a transaction body or entry document: {0}")]
    Syntax(#[from] serde_json::Error),
    /// A number field (`version`, `delta`, `nonce`...) out of its range.
    #[error("{at}: expected {expected}, got {got}")]
    Number {
        /// Where, as `version`.
        at: String,
        /// What is allowed there.
        expected: &'static str,
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
    /// Raw bytes (a signature, a body) that are not `0x` hex.
    #[error("{at}: not 0x hex of {expected}")]
    Hex {
        /// Where, as `signature`.
        at: String,
        /// What was expected.
        expected: &'static str,
    },
    /// An op name that is not one of the list's.
    #[error("{at}: unknown op {name:?}, expected one of {expected}")]
    UnknownOp {
        /// Where, as `controls[1].op`.
        at: String,
        /// The name found.
        name: String,
        /// The names there are.
        expected: String,
    },
    /// A native write whose `value` or `delta` does not match its op.
    #[error("{at}: {op} takes {}", match *op { "Increment" => "a delta and no value", "Delete" | "DeleteIfPresent" | "Get" => "neither value nor delta", _ => "a value and no delta" })]
    OpFields {
        /// Where, as `writes[0]`.
        at: String,
        /// The op.
        op: &'static str,
    },
    /// A transaction of a codec with no JSON form given as a document, or a
    /// transaction given both or neither of `body` and `raw`.
    #[error("{at}: {detail}")]
    Tx {
        /// Where, as `txs[1]`.
        at: String,
        /// What is wrong.
        detail: String,
    },
    /// A body the decoder refuses, or a document describing one (an empty
    /// key, a key on an op that has none, a list too long...).
    #[error("invalid body: {}", detail(.0))]
    Body(#[from] ParseError),
    /// An entry the parser refuses.
    #[error("invalid entry: {0}")]
    Entry(#[from] EnvelopeError),
}

/// The JSON document of a 0G body (pretty-printed). Fails if the body does
/// not decode.
pub fn encode_json(body: &[u8]) -> Result<String, JsonError> {
    Ok(serde_json::to_string_pretty(&zerog_doc(&zerog::decode_body(body)?))?)
}

/// The 0G body a JSON document describes. `reads`, `writes` and `controls`
/// may be left out when empty; the body must pass every check the decoder
/// makes.
pub fn decode_json(json: &str) -> Result<Vec<u8>, JsonError> {
    zerog_body(serde_json::from_str(json)?)
}

/// The document of a body in `codec` (0, 1, or 2 with its transaction's
/// `tags`), or `None` when the codec has no JSON form or the body does not
/// decode (tools then show its bytes).
pub fn body_doc(codec: u8, body: &[u8], tags: &[StreamId]) -> Option<serde_json::Value> {
    let doc = match codec {
        ZEROG => serde_json::to_value(zerog_doc(&zerog::decode_body(body).ok()?)),
        NATIVE => serde_json::to_value(native_doc(&native::decode_body(body).ok()?)),
        NATIVE_COMPACT => serde_json::to_value(native_doc(&native::decode_compact(body, tags).ok()?)),
        _ => return None,
    };
    doc.ok()
}

/// The body in `codec` (0, 1, or 2 with its transaction's `tags`) that a
/// document describes; `at` names the document in errors.
pub fn body_bytes(
    codec: u8,
    doc: serde_json::Value,
    tags: &[StreamId],
    at: &str,
) -> Result<Vec<u8>, JsonError> {
    match codec {
        ZEROG => zerog_body(serde_json::from_value(doc)?),
        NATIVE => Ok(native::encode(&native_body(serde_json::from_value(doc)?)?)),
        NATIVE_COMPACT => Ok(native::encode_compact(&native_body(serde_json::from_value(doc)?)?, tags)),
        _ => Err(JsonError::Tx {
            at: at.to_string(),
            detail: format!("codec {codec} has no JSON form: give the body as raw hex"),
        }),
    }
}

fn zerog_doc(body: &Body) -> Doc {
    Doc {
        version: decimal(body.version),
        reads: read_docs(&body.reads),
        writes: body
            .writes
            .iter()
            .map(|w| WriteDoc { stream: w.stream.to_string(), key: b64(&w.key), value: b64(&w.value) })
            .collect(),
        controls: control_docs(&body.controls),
    }
}

fn zerog_body(doc: Doc) -> Result<Vec<u8>, JsonError> {
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
    let body = Body {
        version: version(&doc.version)?,
        reads: reads(&doc.reads)?,
        writes,
        controls: controls(&doc.controls)?,
    };
    body.check()?;
    Ok(zerog::encode(&body))
}

fn native_doc(body: &native::Body) -> NativeDoc {
    NativeDoc {
        version: decimal(body.version),
        check_reads_only: body.check_reads_only,
        reads: read_docs(&body.reads),
        writes: body
            .writes
            .iter()
            .map(|w| {
                let (value, delta) = match &w.op {
                    Op::Put(v) | Op::Append(v) | Op::PutIfAbsent(v) | Op::PutIfPresent(v) => {
                        (Some(b64(v)), None)
                    }
                    Op::PutExpiring { value, .. } | Op::Collection { args: value, .. } => {
                        (Some(b64(value)), None)
                    }
                    Op::Increment(n) => (None, Some(serde_json::Value::String(n.to_string()))),
                    Op::Delete | Op::DeleteIfPresent | Op::Get | Op::Expire { .. } | Op::Flush => {
                        (None, None)
                    }
                };
                let (mode, at) = match &w.op {
                    Op::PutExpiring { cond, expiry, .. } => {
                        let at = match expiry {
                            NewExpiry::At(at) => Some(decimal(*at)),
                            NewExpiry::Never | NewExpiry::Keep => None,
                        };
                        (Some(native::put_mode(*cond, *expiry)), at)
                    }
                    Op::Expire { cond, at } => (Some(native::expire_mode(*cond, *at)), at.map(decimal)),
                    _ => (None, None),
                };
                let op = write_op_name(&w.op).to_string();
                NativeWriteDoc { op, stream: w.stream.to_string(), key: b64(&w.key), value, delta, mode, at }
            })
            .collect(),
        controls: control_docs(&body.controls),
    }
}

fn native_body(doc: NativeDoc) -> Result<native::Body, JsonError> {
    let writes = doc
        .writes
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let at = |field| format!("writes[{i}].{field}");
            let value = w.value.as_deref().map(|v| unb64(v, at("value"))).transpose()?;
            let delta = w.delta.as_ref().map(|d| delta(d, at("delta"))).transpose()?;
            let mut names = WRITE_OPS.iter().copied().chain(COLL_OPS.iter().map(|o| o.name()));
            let name: &'static str = names.find(|n| *n == w.op).ok_or_else(|| JsonError::UnknownOp {
                at: at("op"),
                name: w.op.clone(),
                expected: WRITE_OPS.join(", ") + ", and the collection ops",
            })?;
            let at_ms =
                w.at.as_ref().map(|v| unsigned(v, "at")).transpose().map_err(|_| JsonError::Number {
                    at: at("at"),
                    expected: "a number or a decimal string for a u64",
                    got: w.at.as_ref().map(ToString::to_string).unwrap_or_default(),
                })?;
            let bad = || JsonError::OpFields { at: format!("writes[{i}]"), op: name };
            if let ("PutExpiring", Some(v), None) = (name, &value, delta) {
                let (cond, expiry) = w.mode.and_then(native::put_cond).ok_or_else(bad)?;
                let expiry = match (expiry, at_ms) {
                    (NewExpiry::At(_), Some(t)) => NewExpiry::At(t),
                    (NewExpiry::Never | NewExpiry::Keep, None) => expiry,
                    _ => return Err(bad()),
                };
                let op = Op::PutExpiring { value: v.clone().into(), cond, expiry };
                return Ok(native::BodyWrite {
                    stream: id(&w.stream, at("stream"))?,
                    key: unb64(&w.key, at("key"))?,
                    op,
                });
            }
            if let ("Expire", None, None) = (name, &value, delta) {
                let (cond, timed) = w.mode.and_then(native::expire_cond).ok_or_else(bad)?;
                if timed != at_ms.is_some() {
                    return Err(bad());
                }
                let op = Op::Expire { cond, at: at_ms };
                return Ok(native::BodyWrite {
                    stream: id(&w.stream, at("stream"))?,
                    key: unb64(&w.key, at("key"))?,
                    op,
                });
            }
            if w.mode.is_some() || at_ms.is_some() {
                return Err(bad());
            }
            let op = match (name, value, delta) {
                ("Put", Some(v), None) => Op::Put(v.into()),
                ("Delete", None, None) => Op::Delete,
                ("Increment", None, Some(n)) => Op::Increment(n),
                ("Append", Some(v), None) => Op::Append(v.into()),
                ("PutIfAbsent", Some(v), None) => Op::PutIfAbsent(v.into()),
                ("PutIfPresent", Some(v), None) => Op::PutIfPresent(v.into()),
                ("DeleteIfPresent", None, None) => Op::DeleteIfPresent,
                ("Get", None, None) => Op::Get,
                ("Flush", None, None) => Op::Flush,
                (name, Some(v), None) if CollOp::of_name(name).is_some() => {
                    Op::Collection { op: CollOp::of_name(name).expect("just found"), args: v.into() }
                }
                (op, ..) => return Err(JsonError::OpFields { at: format!("writes[{i}]"), op }),
            };
            Ok(native::BodyWrite { stream: id(&w.stream, at("stream"))?, key: unb64(&w.key, at("key"))?, op })
        })
        .collect::<Result<_, JsonError>>()?;
    let body = native::Body {
        version: version(&doc.version)?,
        check_reads_only: doc.check_reads_only,
        reads: reads(&doc.reads)?,
        writes,
        controls: controls(&doc.controls)?,
    };
    body.check()?;
    Ok(body)
}

/// Native write op names, as [`Op`]'s variants.
const WRITE_OPS: [&str; 11] = [
    "Put",
    "Delete",
    "Increment",
    "Append",
    "PutIfAbsent",
    "PutIfPresent",
    "DeleteIfPresent",
    "Get",
    "PutExpiring",
    "Expire",
    "Flush",
];

fn write_op_name(op: &Op) -> &'static str {
    if let Op::Collection { op, .. } = op {
        return op.name();
    }
    WRITE_OPS[match op {
        Op::Put(_) => 0,
        Op::Delete => 1,
        Op::Increment(_) => 2,
        Op::Append(_) => 3,
        Op::PutIfAbsent(_) => 4,
        Op::PutIfPresent(_) => 5,
        Op::DeleteIfPresent => 6,
        Op::Get => 7,
        Op::PutExpiring { .. } => 8,
        Op::Expire { .. } => 9,
        Op::Flush => 10,
        Op::Collection { .. } => unreachable!("named above"),
    }]
}

fn read_docs(reads: &[Read]) -> Vec<ReadDoc> {
    reads.iter().map(|r| ReadDoc { stream: r.stream.to_string(), key: b64(&r.key) }).collect()
}

fn reads(docs: &[ReadDoc]) -> Result<Vec<Read>, JsonError> {
    docs.iter()
        .enumerate()
        .map(|(i, r)| {
            let at = |field| format!("reads[{i}].{field}");
            Ok(Read { stream: id(&r.stream, at("stream"))?, key: unb64(&r.key, at("key"))? })
        })
        .collect()
}

fn control_docs(controls: &[Control]) -> Vec<ControlDoc> {
    controls
        .iter()
        .map(|c| ControlDoc {
            op: format!("{:?}", c.op),
            stream: c.stream.to_string(),
            key: c.key.as_deref().map(b64),
            account: c.account.map(|a| a.to_string()),
        })
        .collect()
}

fn controls(docs: &[ControlDoc]) -> Result<Vec<Control>, JsonError> {
    docs.iter()
        .enumerate()
        .map(|(i, c)| {
            let at = |field| format!("controls[{i}].{field}");
            Ok(Control {
                op: op(&c.op).ok_or_else(|| JsonError::UnknownOp {
                    at: at("op"),
                    name: c.op.clone(),
                    expected: op_names().join(", "),
                })?,
                stream: id(&c.stream, at("stream"))?,
                key: c.key.as_deref().map(|k| unb64(k, at("key"))).transpose()?,
                account: c.account.as_deref().map(|a| id(a, at("account"))).transpose()?,
            })
        })
        .collect()
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

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NativeDoc {
    version: serde_json::Value,
    #[serde(default)]
    check_reads_only: bool,
    #[serde(default)]
    reads: Vec<ReadDoc>,
    #[serde(default)]
    writes: Vec<NativeWriteDoc>,
    #[serde(default)]
    controls: Vec<ControlDoc>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NativeWriteDoc {
    op: String,
    stream: String,
    key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delta: Option<serde_json::Value>,
    /// The mode byte of `PutExpiring` and `Expire` (docs/format.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mode: Option<u8>,
    /// Their expiry time, Unix milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    at: Option<serde_json::Value>,
}

/// A `u64` as JSON: a decimal string, which JavaScript reads without loss.
pub(crate) fn decimal(n: u64) -> serde_json::Value {
    serde_json::Value::String(n.to_string())
}

/// A `u64` from a JSON number or a decimal string.
pub(crate) fn unsigned(v: &serde_json::Value, at: &str) -> Result<u64, JsonError> {
    let parsed = match v {
        serde_json::Value::Number(n) => n.as_u64(),
        // Digits only: `u64::from_str` would also take a leading `+`.
        serde_json::Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().ok()
        }
        _ => None,
    };
    parsed.ok_or_else(|| JsonError::Number {
        at: at.to_string(),
        expected: "a number or a decimal string for a u64",
        got: v.to_string(),
    })
}

fn version(v: &serde_json::Value) -> Result<u64, JsonError> {
    match v {
        serde_json::Value::String(s) if s == "max" => Ok(u64::MAX),
        _ => unsigned(v, "version").map_err(|_| JsonError::Number {
            at: "version".into(),
            expected: "a number, a decimal string or \"max\" for a u64",
            got: v.to_string(),
        }),
    }
}

fn delta(v: &serde_json::Value, at: String) -> Result<i64, JsonError> {
    let parsed = match v {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => {
            let digits = s.strip_prefix('-').unwrap_or(s);
            (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse().ok())
                .flatten()
        }
        _ => None,
    };
    parsed.ok_or_else(|| JsonError::Number {
        at,
        expected: "a number or a decimal string for an i64",
        got: v.to_string(),
    })
}

pub(crate) fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

pub(crate) fn unb64(text: &str, at: String) -> Result<Vec<u8>, JsonError> {
    STANDARD.decode(text).map_err(|source| JsonError::Base64 { at, source })
}

pub(crate) fn id<T: std::str::FromStr<Err = ParseIdError>>(text: &str, at: String) -> Result<T, JsonError> {
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
