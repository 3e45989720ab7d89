//! logkv's native body: the 0G body plus what a Redis-compatible server
//! needs — a flags byte (check the read set only, as Redis `WATCH`), an op
//! byte on every write (explicit delete, so an empty value is a value, and
//! read-modify-write ops applied in log order, so `INCR`, `APPEND` and
//! `SET NX|XX` need no client retries). Reads and controls are 0G's, byte for
//! byte. Layout: `docs/format.md`, "Transaction bodies".
//!
//! The same body has two spellings: codec 1 ([`Native`]) uses 0G's fixed
//! widths, codec 2 ([`NativeCompact`]) varints and streams as indexes into
//! the transaction's tags, which spares 31 bytes per tagged stream and most
//! of every count (a SET of a 16-byte key and a 100-byte value: 177 body
//! bytes in codec 1, 125 in codec 2). One parser and one encoder serve both
//! (`Layout`).
//!
//! The body carries no format version of its own: the entry's protocol
//! version covers it, so a node never half-understands a newer body.

use std::collections::BTreeSet;

use bytes::Bytes;

use super::layout::{Cursor, Layout, Out};
use super::zerog::{self, after};
use super::{
    Codec, Control, Decoded, ExpireCond, NewExpiry, ParseError, PutCond, Read, ValueRef, Write, WriteOp,
    FLUSH_KEY, NATIVE, NATIVE_COMPACT,
};
use crate::collection::CollOp;
use crate::envelope::{Protocol, TxPart, TxWrite};
use crate::types::StreamId;

/// Flags bit: check versions of the read set only, not of the writes.
pub const FLAG_CHECK_READS_ONLY: u8 = 0x01;

/// Op bytes of native writes.
const PUT: u8 = 0x01;
const DELETE: u8 = 0x02;
const INCREMENT: u8 = 0x03;
const APPEND: u8 = 0x04;
const PUT_IF_ABSENT: u8 = 0x05;
const PUT_IF_PRESENT: u8 = 0x06;
const DELETE_IF_PRESENT: u8 = 0x07;
const GET: u8 = 0x08;
const PUT_EXPIRING: u8 = 0x09;
const EXPIRE: u8 = 0x0a;
const FLUSH: u8 = 0x0b;

/// The mode byte of a `PutExpiring` op: bits 0-1 the condition, bits 2-3
/// the expiry (0 never, 1 keep, 2 at: a `u64` follows).
pub(crate) fn put_mode(cond: PutCond, expiry: NewExpiry) -> u8 {
    let cond = match cond {
        PutCond::Always => 0,
        PutCond::IfAbsent => 1,
        PutCond::IfPresent => 2,
    };
    let expiry = match expiry {
        NewExpiry::Never => 0,
        NewExpiry::Keep => 1,
        NewExpiry::At(_) => 2,
    };
    cond | expiry << 2
}

/// The mode byte of an `Expire` op: bits 0-2 the condition, bit 3 set when
/// an expiry time follows (clear: remove the expiry, condition `Always`).
pub(crate) fn expire_mode(cond: ExpireCond, at: Option<u64>) -> u8 {
    let cond = match cond {
        ExpireCond::Always => 0,
        ExpireCond::IfNone => 1,
        ExpireCond::IfSome => 2,
        ExpireCond::IfLater => 3,
        ExpireCond::IfEarlier => 4,
        ExpireCond::IfSomeAndEarlier => 5,
    };
    cond | u8::from(at.is_some()) << 3
}

/// The condition and whether a time follows, of an `Expire` mode byte.
pub(crate) fn expire_cond(mode: u8) -> Option<(ExpireCond, bool)> {
    let cond = match mode & 0x07 {
        0 => ExpireCond::Always,
        1 => ExpireCond::IfNone,
        2 => ExpireCond::IfSome,
        3 => ExpireCond::IfLater,
        4 => ExpireCond::IfEarlier,
        5 => ExpireCond::IfSomeAndEarlier,
        _ => return None,
    };
    let timed = mode & 0x08 != 0;
    (mode & 0xf0 == 0 && (timed || cond == ExpireCond::Always)).then_some((cond, timed))
}

/// The condition and expiry kind of a `PutExpiring` mode byte (the time of
/// `At` is read after it; `At(0)` stands in).
pub(crate) fn put_cond(mode: u8) -> Option<(PutCond, NewExpiry)> {
    let cond = match mode & 0x03 {
        0 => PutCond::Always,
        1 => PutCond::IfAbsent,
        2 => PutCond::IfPresent,
        _ => return None,
    };
    let expiry = match mode >> 2 {
        0 => NewExpiry::Never,
        1 => NewExpiry::Keep,
        2 => NewExpiry::At(0),
        _ => return None,
    };
    Some((cond, expiry))
}

/// The native codec (codec byte [`NATIVE`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Native;

impl Codec for Native {
    fn id(&self) -> u8 {
        NATIVE
    }

    fn name(&self) -> &'static str {
        "native"
    }

    /// Codec 1 spells streams out: the tags are not needed.
    fn decode(&self, body: &[u8], _tags: &[StreamId]) -> Result<Decoded, ParseError> {
        decode_in(body, Layout::Fixed)
    }
}

/// The compact native codec (codec byte [`NATIVE_COMPACT`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct NativeCompact;

impl Codec for NativeCompact {
    fn id(&self) -> u8 {
        NATIVE_COMPACT
    }

    fn name(&self) -> &'static str {
        "native-compact"
    }

    fn decode(&self, body: &[u8], tags: &[StreamId]) -> Result<Decoded, ParseError> {
        decode_in(body, Layout::Compact(tags))
    }
}

fn decode_in(body: &[u8], layout: Layout<'_>) -> Result<Decoded, ParseError> {
    let mut cur = Cursor::new(body, layout);
    let version = cur.version()?;
    let at = cur.pos();
    let flags = cur.u8("flags")?;
    if flags & !FLAG_CHECK_READS_ONLY != 0 {
        return Err(ParseError::invalid(format!("unknown flags 0x{flags:02x} at offset {at}")));
    }
    let reads = zerog::read_set(&mut cur);
    let writes = after(&reads, || write_set(&mut cur));
    let controls = after(&writes, || zerog::last_stage(&mut cur));
    Ok(Decoded { version, check_reads_only: flags & FLAG_CHECK_READS_ONLY != 0, reads, writes, controls })
}

/// A native body as owned data, for building bodies and for tools.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Body {
    /// Reads were made at this version; `u64::MAX` disables version checks.
    pub version: u64,
    /// Check versions of the read set only (Redis `WATCH`), not of the writes.
    pub check_reads_only: bool,
    /// The read set.
    pub reads: Vec<Read>,
    /// The write set.
    pub writes: Vec<BodyWrite>,
    /// The access-control ops.
    pub controls: Vec<Control>,
}

/// One write of a native [`Body`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyWrite {
    /// Its stream.
    pub stream: StreamId,
    /// The key.
    pub key: Vec<u8>,
    /// What it does.
    pub op: Op,
}

/// What a native write does, with its value owned (see [`WriteOp`]). Values
/// are [`Bytes`] so a server can plan a write on a slice of the request it
/// read, and the value is first copied when the entry is encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Set the value; empty is a value.
    Put(Bytes),
    /// Remove the key.
    Delete,
    /// Add to the value read as a decimal `i64`.
    Increment(i64),
    /// Append to the value.
    Append(Bytes),
    /// Set only if the key has no live value.
    PutIfAbsent(Bytes),
    /// Set only if the key has a live value.
    PutIfPresent(Bytes),
    /// Remove the key only if it has a live value, so deleting a missing
    /// key creates no version (Redis `DEL` does not touch a missing key,
    /// which `WATCH` can tell).
    DeleteIfPresent,
    /// Read the value as the transaction sees it at this point; changes
    /// nothing. Its answer is the value (a `GET` queued in `MULTI`, the old
    /// value of `GETSET`).
    Get,
    /// Set the value with an expiry (`SET` with `EX`, `KEEPTTL`…, `SETEX`).
    PutExpiring {
        /// The value.
        value: Bytes,
        /// When it may be set.
        cond: PutCond,
        /// The expiry it leaves.
        expiry: NewExpiry,
    },
    /// Set (Unix milliseconds) or, with `None`, remove the expiry of a
    /// live key.
    Expire {
        /// When it applies.
        cond: ExpireCond,
        /// The new expiry.
        at: Option<u64>,
    },
    /// Remove every key of the write's stream (`FLUSHDB`); the write's key
    /// must be [`FLUSH_KEY`] ([`WriteOp::Flush`]).
    Flush,
    /// A collection op ([`WriteOp::Collection`]): op byte 0x10 and up.
    Collection {
        /// Which op.
        op: CollOp,
        /// Its arguments (`collection::encode_args`).
        args: Bytes,
    },
}

impl Op {
    fn byte(&self) -> u8 {
        match self {
            Op::Put(_) => PUT,
            Op::Delete => DELETE,
            Op::Increment(_) => INCREMENT,
            Op::Append(_) => APPEND,
            Op::PutIfAbsent(_) => PUT_IF_ABSENT,
            Op::PutIfPresent(_) => PUT_IF_PRESENT,
            Op::DeleteIfPresent => DELETE_IF_PRESENT,
            Op::Get => GET,
            Op::PutExpiring { .. } => PUT_EXPIRING,
            Op::Expire { .. } => EXPIRE,
            Op::Flush => FLUSH,
            Op::Collection { op, .. } => op.byte(),
        }
    }

    /// The bytes the op carries in the body's data section, if any.
    pub fn value(&self) -> Option<&[u8]> {
        match self {
            Op::Put(v) | Op::Append(v) | Op::PutIfAbsent(v) | Op::PutIfPresent(v) => Some(v),
            Op::PutExpiring { value, .. } => Some(value),
            Op::Collection { args, .. } => Some(args),
            Op::Delete | Op::DeleteIfPresent | Op::Increment(_) | Op::Get | Op::Expire { .. } | Op::Flush => {
                None
            }
        }
    }

    /// The oldest entry protocol that may hold the op (its feature level,
    /// as [`WriteOp::protocol`]).
    pub fn protocol(&self) -> Protocol {
        match self {
            Op::Get => Protocol::V3,
            Op::PutExpiring { .. } | Op::Expire { .. } => Protocol::V4,
            Op::Flush => Protocol::V6,
            Op::Collection { op, .. } => op.protocol(),
            _ => Protocol::V1,
        }
    }
}

impl Body {
    /// The streams this body writes or controls, each once, in order of first
    /// appearance: the transaction's tags.
    pub fn tags(&self) -> Vec<StreamId> {
        zerog::tags_of(self.writes.iter().map(|w| w.stream), &self.controls)
    }

    /// Checks everything the decoder checks, so that a body that passes
    /// decodes back to itself after [`encode`].
    pub fn check(&self) -> Result<(), ParseError> {
        zerog::check_reads(&self.reads)?;
        zerog::check_list_len(self.writes.len())?;
        for (i, w) in self.writes.iter().enumerate() {
            zerog::check_key(&w.key, "writes", i)?;
            if w.op == Op::Flush && w.key != FLUSH_KEY {
                return Err(ParseError::invalid(format!("writes[{i}]: a flush's key must be {FLUSH_KEY:?}")));
            }
            zerog::check_value(w.op.value().map_or(0, <[u8]>::len), "writes", i)?;
        }
        zerog::check_controls(&self.controls)
    }
}

/// Decodes a codec 1 body into owned data; the first error of any stage fails it.
pub fn decode_body(body: &[u8]) -> Result<Body, ParseError> {
    owned(decode_in(body, Layout::Fixed)?, body)
}

/// Decodes a codec 2 body of a transaction with these tags (ascending and
/// unique, as the entry lists them) into owned data.
pub fn decode_compact(body: &[u8], tags: &[StreamId]) -> Result<Body, ParseError> {
    owned(decode_in(body, Layout::Compact(tags))?, body)
}

/// The owned form of a decoded body; the first error of any stage fails it.
fn owned(decoded: Decoded, body: &[u8]) -> Result<Body, ParseError> {
    let (reads, writes, controls) = (decoded.reads?, decoded.writes?, decoded.controls?);
    let writes = writes
        .into_iter()
        .map(|w| {
            let op = match w.op {
                WriteOp::Put(v) => Op::Put(Bytes::copy_from_slice(v.get(body))),
                WriteOp::Delete => Op::Delete,
                WriteOp::Increment(n) => Op::Increment(n),
                WriteOp::Append(v) => Op::Append(Bytes::copy_from_slice(v.get(body))),
                WriteOp::PutIfAbsent(v) => Op::PutIfAbsent(Bytes::copy_from_slice(v.get(body))),
                WriteOp::PutIfPresent(v) => Op::PutIfPresent(Bytes::copy_from_slice(v.get(body))),
                WriteOp::DeleteIfPresent => Op::DeleteIfPresent,
                WriteOp::Get => Op::Get,
                WriteOp::PutExpiring { value, cond, expiry } => {
                    Op::PutExpiring { value: Bytes::copy_from_slice(value.get(body)), cond, expiry }
                }
                WriteOp::Expire { cond, at } => Op::Expire { cond, at },
                WriteOp::Flush => Op::Flush,
                WriteOp::Collection { op, args } => {
                    Op::Collection { op, args: Bytes::copy_from_slice(args.get(body)) }
                }
            };
            BodyWrite { stream: w.stream, key: w.key, op }
        })
        .collect();
    let check_reads_only = decoded.check_reads_only;
    Ok(Body { version: decoded.version, check_reads_only, reads, writes, controls })
}

/// Encodes a codec 1 body. Run [`Body::check`] first to refuse what the
/// decoder would; lengths too large for their field keep only its low bytes.
pub fn encode(body: &Body) -> Vec<u8> {
    encode_in(body, Layout::Fixed)
}

/// Encodes a codec 2 body for a transaction with these tags, which must be
/// ascending and unique (the entry lists them so, and the indexes point into
/// that list); a stream not among them is written out in full.
pub fn encode_compact(body: &Body, tags: &[StreamId]) -> Vec<u8> {
    debug_assert!(tags.is_sorted_by(|a, b| a < b), "tags must be ascending and unique");
    encode_in(body, Layout::Compact(tags))
}

/// A codec 2 transaction of `body` with these tags (in any order, repeats
/// allowed: they are sorted and deduplicated as the entry will list them,
/// which the body's indexes must match).
pub fn compact_tx(body: &Body, tags: impl IntoIterator<Item = StreamId>) -> TxPart {
    let tx = CompactTx::new(body, tags);
    let mut encoded = Vec::with_capacity(tx.body_len());
    tx.write_body(&mut encoded);
    TxPart { codec: NATIVE_COMPACT, tags: tx.tags, body: encoded }
}

/// A codec 2 transaction ready to be written into an entry
/// ([`crate::envelope::Entry`] of [`TxWrite`]s): everything but the values
/// is encoded up front, so its length is known, and the values are copied
/// once, from the planned body straight into the entry's bytes.
#[derive(Debug)]
pub struct CompactTx<'b> {
    tags: Vec<StreamId>,
    body: &'b Body,
    around: AroundValues,
}

impl<'b> CompactTx<'b> {
    /// The transaction of `body` with these tags (as [`compact_tx`]).
    pub fn new(body: &'b Body, tags: impl IntoIterator<Item = StreamId>) -> Self {
        let tags = entry_order(&tags.into_iter().collect::<Vec<_>>());
        let around = AroundValues::new(body, Layout::Compact(&tags));
        CompactTx { body, around, tags }
    }
}

impl TxWrite for CompactTx<'_> {
    fn codec(&self) -> u8 {
        NATIVE_COMPACT
    }

    fn tags(&self) -> &[StreamId] {
        &self.tags
    }

    fn body_len(&self) -> usize {
        self.around.len(self.body)
    }

    fn write_body(&self, out: &mut Vec<u8>) {
        self.around.write(self.body, out)
    }
}

/// Tags as an entry lists a transaction's: ascending, each once.
fn entry_order(tags: &[StreamId]) -> Vec<StreamId> {
    tags.iter().copied().collect::<BTreeSet<_>>().into_iter().collect()
}

/// The values of a body's writes, in the order its data section holds them.
fn values(body: &Body) -> impl Iterator<Item = &[u8]> {
    body.writes.iter().filter_map(|w| w.op.value())
}

fn encode_in(body: &Body, layout: Layout<'_>) -> Vec<u8> {
    let around = AroundValues::new(body, layout);
    let mut out = Vec::with_capacity(around.len(body));
    around.write(body, &mut out);
    out
}

/// A body's bytes before its values (version, flags, reads, write headers)
/// and after them (controls): with the values, which are raw bytes, the
/// whole body, so its length is known before the values are copied.
#[derive(Debug)]
struct AroundValues {
    head: Vec<u8>,
    tail: Vec<u8>,
}

impl AroundValues {
    fn new(body: &Body, layout: Layout<'_>) -> Self {
        let mut out = Out::new(layout, 64 + 48 * body.writes.len());
        out.version(body.version);
        out.raw(&[if body.check_reads_only { FLAG_CHECK_READS_ONLY } else { 0 }]);
        zerog::put_reads(&mut out, &body.reads);
        out.count(body.writes.len());
        for w in &body.writes {
            out.raw(&[w.op.byte()]);
            out.stream(&w.stream);
            out.key(&w.key);
            match &w.op {
                Op::Delete | Op::DeleteIfPresent | Op::Get | Op::Flush => {}
                Op::Increment(n) => out.raw(&n.to_be_bytes()),
                Op::Put(v)
                | Op::Append(v)
                | Op::PutIfAbsent(v)
                | Op::PutIfPresent(v)
                | Op::Collection { args: v, .. } => out.value_len(v.len(), 4),
                Op::PutExpiring { value, cond, expiry } => {
                    out.raw(&[put_mode(*cond, *expiry)]);
                    if let NewExpiry::At(at) = expiry {
                        out.raw(&at.to_be_bytes());
                    }
                    out.value_len(value.len(), 4)
                }
                Op::Expire { cond, at } => {
                    out.raw(&[expire_mode(*cond, *at)]);
                    if let Some(at) = at {
                        out.raw(&at.to_be_bytes());
                    }
                }
            }
        }
        let mut tail = Out::new(layout, 1 + 64 * body.controls.len());
        zerog::put_controls(&mut tail, &body.controls);
        AroundValues { head: out.bytes, tail: tail.bytes }
    }

    /// The body's length in bytes.
    fn len(&self, body: &Body) -> usize {
        self.head.len() + values(body).map(<[u8]>::len).sum::<usize>() + self.tail.len()
    }

    /// Appends the whole body to `out`.
    fn write(&self, body: &Body, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.head);
        values(body).for_each(|value| out.extend_from_slice(value));
        out.extend_from_slice(&self.tail);
    }
}

/// A write whose header is parsed: complete, or waiting for its value,
/// which comes after all headers (the op holds an empty one until then).
enum Pending {
    Ready(WriteOp),
    Value(WriteOp, usize),
}

/// `op` with its value, read after all headers.
fn with_value(op: WriteOp, v: ValueRef) -> WriteOp {
    match op {
        WriteOp::Put(_) => WriteOp::Put(v),
        WriteOp::Append(_) => WriteOp::Append(v),
        WriteOp::PutIfAbsent(_) => WriteOp::PutIfAbsent(v),
        WriteOp::PutIfPresent(_) => WriteOp::PutIfPresent(v),
        WriteOp::PutExpiring { cond, expiry, .. } => WriteOp::PutExpiring { value: v, cond, expiry },
        WriteOp::Collection { op, .. } => WriteOp::Collection { op, args: v },
        op => op,
    }
}

/// The write set: all headers, then the values of the ops that have one.
fn write_set(cur: &mut Cursor<'_, '_>) -> Result<Vec<Write>, ParseError> {
    let count = cur.count("write count")?;
    let mut headers = Vec::with_capacity(cur.capacity(count, 37, 4));
    for _ in 0..count {
        let at = cur.pos();
        let byte = cur.u8("write op")?;
        let stream = cur.stream("write stream")?;
        let key = cur.key("write key")?;
        let none = ValueRef { offset: 0, len: 0 };
        let pending = match byte {
            PUT_EXPIRING => {
                let mode = cur.u8("write mode")?;
                let (cond, expiry) = put_cond(mode).ok_or_else(|| {
                    ParseError::invalid(format!("unknown put mode 0x{mode:02x} at offset {at}"))
                })?;
                let expiry = match expiry {
                    NewExpiry::At(_) => NewExpiry::At(cur.u64("write expiry")?),
                    other => other,
                };
                WriteOp::PutExpiring { value: none, cond, expiry }
            }
            EXPIRE => {
                let mode = cur.u8("write mode")?;
                let (cond, timed) = expire_cond(mode).ok_or_else(|| {
                    ParseError::invalid(format!("unknown expire mode 0x{mode:02x} at offset {at}"))
                })?;
                let at = if timed { Some(cur.u64("write expiry")?) } else { None };
                WriteOp::Expire { cond, at }
            }
            PUT => WriteOp::Put(none),
            DELETE => WriteOp::Delete,
            // Two's complement: the same bits as `i64::from_be_bytes`.
            INCREMENT => WriteOp::Increment(cur.u64("write increment")? as i64),
            APPEND => WriteOp::Append(none),
            PUT_IF_ABSENT => WriteOp::PutIfAbsent(none),
            PUT_IF_PRESENT => WriteOp::PutIfPresent(none),
            DELETE_IF_PRESENT => WriteOp::DeleteIfPresent,
            GET => WriteOp::Get,
            FLUSH if key == FLUSH_KEY => WriteOp::Flush,
            FLUSH => {
                return Err(ParseError::invalid(format!(
                    "flush at offset {at} has a key other than {FLUSH_KEY:?}"
                )))
            }
            _ => match CollOp::of_byte(byte) {
                Some(op) => WriteOp::Collection { op, args: none },
                None => {
                    return Err(ParseError::invalid(format!("unknown write op 0x{byte:02x} at offset {at}")))
                }
            },
        };
        let pending = match pending {
            WriteOp::Put(_)
            | WriteOp::Append(_)
            | WriteOp::PutIfAbsent(_)
            | WriteOp::PutIfPresent(_)
            | WriteOp::PutExpiring { .. }
            | WriteOp::Collection { .. } => Pending::Value(pending, cur.value_len(4, "write value_len")?),
            op => Pending::Ready(op),
        };
        headers.push((stream, key, pending));
    }
    let mut writes = Vec::with_capacity(headers.len());
    for (stream, key, pending) in headers {
        let op = match pending {
            Pending::Ready(op) => op,
            Pending::Value(op, len) => with_value(op, cur.value(len, "write value")?),
        };
        writes.push(Write { stream, key, op });
    }
    Ok(writes)
}
