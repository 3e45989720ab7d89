//! The 0G "stream data" body, byte-compatible with 0G Storage KV and its
//! SDKs (`StreamData.encode()`), and the 0G tags that name a transaction's
//! streams. Layout: `docs/format.md`, "Codec 0: 0G stream data".
//!
//! The decoder is stricter than 0G's node where 0G is loose by accident: the
//! body must end exactly after the controls (0G reads into the zero padding
//! of its storage entries), and keys and values obey logkv's protocol limits.
//! The field readers and the read and control sets are shared with the
//! native codec, whose body is a superset of this one.

use super::layout::{Cursor, Layout, Out};
use super::{
    Codec, Control, ControlOp, Decoded, ParseError, Read, Write, WriteOp, MAX_KEY_BYTES, MAX_LIST_LEN,
    MAX_VALUE_BYTES, ZEROG,
};
use crate::types::StreamId;
use std::collections::BTreeSet;

/// The 0G codec (codec byte [`ZEROG`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct ZeroG;

impl Codec for ZeroG {
    fn id(&self) -> u8 {
        ZEROG
    }

    fn name(&self) -> &'static str {
        "0g"
    }

    /// 0G bodies spell streams out: the tags are not needed.
    fn decode(&self, body: &[u8], _tags: &[StreamId]) -> Result<Decoded, ParseError> {
        let mut cur = Cursor::new(body, Layout::Fixed);
        let version = cur.version()?;
        let reads = read_set(&mut cur);
        let writes = after(&reads, || write_set(&mut cur));
        let controls = after(&writes, || last_stage(&mut cur));
        Ok(Decoded { version, check_reads_only: false, reads, writes, controls })
    }
}

/// A 0G body as owned data, for building bodies and for tools. Unlike
/// [`Decoded`] it copies the values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Body {
    /// Reads were made at this version; `u64::MAX` disables version checks.
    pub version: u64,
    /// The read set.
    pub reads: Vec<Read>,
    /// The write set.
    pub writes: Vec<BodyWrite>,
    /// The access-control ops.
    pub controls: Vec<Control>,
}

/// One write of a 0G [`Body`]: an empty value deletes the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyWrite {
    /// Its stream.
    pub stream: StreamId,
    /// The key.
    pub key: Vec<u8>,
    /// The new value; empty = delete.
    pub value: Vec<u8>,
}

impl Body {
    /// The streams this body writes or controls, each once, in order of first
    /// appearance: the transaction's tags. Reads are not tagged (as in 0G).
    /// For bodies built by the SDK this is the order `buildTags()` uses.
    pub fn tags(&self) -> Vec<StreamId> {
        tags_of(self.writes.iter().map(|w| w.stream), &self.controls)
    }

    /// Checks everything the decoder checks, so that a body that passes
    /// decodes back to itself after [`encode`].
    pub fn check(&self) -> Result<(), ParseError> {
        check_reads(&self.reads)?;
        check_list_len(self.writes.len())?;
        for (i, w) in self.writes.iter().enumerate() {
            check_key(&w.key, "writes", i)?;
            check_value(w.value.len(), "writes", i)?;
        }
        check_controls(&self.controls)
    }
}

/// Decodes a body into owned data; the first error of any stage fails it.
pub fn decode_body(body: &[u8]) -> Result<Body, ParseError> {
    let decoded = ZeroG.decode(body, &[])?;
    let (reads, writes, controls) = (decoded.reads?, decoded.writes?, decoded.controls?);
    let writes = writes
        .into_iter()
        .map(|w| {
            let value = match w.op {
                WriteOp::Put(v) => v.get(body).to_vec(),
                _ => Vec::new(),
            };
            BodyWrite { stream: w.stream, key: w.key, value }
        })
        .collect();
    Ok(Body { version: decoded.version, reads, writes, controls })
}

/// Encodes a body exactly as the 0G SDK's `StreamData.encode()` does. Like
/// the SDK, a control's key and account are written when present, whatever
/// the op says; run [`Body::check`] first to refuse what the decoder would.
/// Lengths too large for their field (a key of 2^24 bytes or more) keep
/// only the field's low bytes: no valid body has them.
pub fn encode(body: &Body) -> Vec<u8> {
    let data_len: usize = body.writes.iter().map(|w| w.value.len()).sum();
    let mut out = Out::new(Layout::Fixed, 64 + data_len);
    out.version(body.version);
    put_reads(&mut out, &body.reads);
    out.count(body.writes.len());
    for w in &body.writes {
        out.stream(&w.stream);
        out.key(&w.key);
        out.value_len(w.value.len(), 8);
    }
    for w in &body.writes {
        out.raw(&w.value);
    }
    put_controls(&mut out, &body.controls);
    out.bytes
}

/// `sha256("STREAM")`: the first 32 bytes of 0G tags, followed by the stream IDs.
pub const TAGS_DOMAIN: [u8; 32] = [
    0xdf, 0x2f, 0xf3, 0xbb, 0x0a, 0xf3, 0x6c, 0x63, 0x84, 0xe6, 0x20, 0x65, 0x52, 0xa4, 0xed, 0x80, 0x7f,
    0x6f, 0x6a, 0x26, 0xe7, 0xd0, 0xaa, 0x6b, 0xff, 0x77, 0x2d, 0xdc, 0x9d, 0x43, 0x07, 0xaa,
];

/// 0G tags for these streams, as the SDK's `buildTags()` makes them.
pub fn encode_tags(streams: &[StreamId]) -> Vec<u8> {
    let mut out = Vec::with_capacity(StreamId::LEN * (1 + streams.len()));
    out.extend_from_slice(&TAGS_DOMAIN);
    streams.iter().for_each(|s| out.extend_from_slice(&s.0));
    out
}

/// The streams named by 0G tags, duplicates kept; `None` when the bytes are
/// not 0G tags (0G then tags the transaction with no stream and skips it).
pub fn decode_tags(tags: &[u8]) -> Option<Vec<StreamId>> {
    let (domain, ids) = tags.split_first_chunk::<32>()?;
    if *domain != TAGS_DOMAIN || ids.len() % StreamId::LEN != 0 {
        return None;
    }
    ids.chunks_exact(StreamId::LEN).map(StreamId::from_slice).collect()
}

/// Streams of the writes, then of the controls, each once, in order of
/// first appearance.
pub(crate) fn tags_of(writes: impl Iterator<Item = StreamId>, controls: &[Control]) -> Vec<StreamId> {
    let mut seen = BTreeSet::new();
    writes.chain(controls.iter().map(|c| c.stream)).filter(|s| seen.insert(*s)).collect()
}

/// Runs a stage only if the one before it parsed: after a failure the
/// offset of the next stage is unknown, so it fails with the same error.
pub(crate) fn after<T, U>(
    earlier: &Result<T, ParseError>,
    stage: impl FnOnce() -> Result<U, ParseError>,
) -> Result<U, ParseError> {
    match earlier {
        Ok(_) => stage(),
        Err(e) => Err(e.clone()),
    }
}

/// The read set: a count, then `stream | key` each.
pub(crate) fn read_set(cur: &mut Cursor<'_, '_>) -> Result<Vec<Read>, ParseError> {
    let count = cur.count("read count")?;
    let mut reads = Vec::with_capacity(cur.capacity(count, 36, 3));
    for _ in 0..count {
        let stream = cur.stream("read stream")?;
        let key = cur.key("read key")?;
        reads.push(Read { stream, key });
    }
    Ok(reads)
}

/// The write set: all headers, then all values in the same order.
fn write_set(cur: &mut Cursor<'_, '_>) -> Result<Vec<Write>, ParseError> {
    let count = cur.count("write count")?;
    // Only codec 0 has this write set, and it is always fixed-width.
    let mut headers = Vec::with_capacity(cur.capacity(count, 44, 44));
    for _ in 0..count {
        let stream = cur.stream("write stream")?;
        let key = cur.key("write key")?;
        let len = cur.value_len(8, "write data_len")?;
        headers.push((stream, key, len));
    }
    let mut writes = Vec::with_capacity(headers.len());
    for (stream, key, len) in headers {
        let value = cur.value(len, "write data")?;
        let op = if len == 0 { WriteOp::Delete } else { WriteOp::Put(value) };
        writes.push(Write { stream, key, op });
    }
    Ok(writes)
}

/// The controls, which must end the body.
pub(crate) fn last_stage(cur: &mut Cursor<'_, '_>) -> Result<Vec<Control>, ParseError> {
    let controls = control_set(cur)?;
    cur.finish()?;
    Ok(controls)
}

/// The controls: a count, then `op u8 | stream | [key] | [account 20]` each.
fn control_set(cur: &mut Cursor<'_, '_>) -> Result<Vec<Control>, ParseError> {
    let count = cur.count("control count")?;
    let mut controls = Vec::with_capacity(cur.capacity(count, 33, 2));
    for _ in 0..count {
        let at = cur.pos();
        let byte = cur.u8("control op")?;
        let op = ControlOp::from_byte(byte)
            .ok_or_else(|| ParseError::invalid(format!("unknown control op 0x{byte:02x} at offset {at}")))?;
        let stream = cur.stream("control stream")?;
        let key = if op.has_key() { Some(cur.key("control key")?) } else { None };
        let account = if op.has_account() { Some(cur.address("control account")?) } else { None };
        controls.push(Control { op, stream, key, account });
    }
    Ok(controls)
}

/// Appends a read set.
pub(crate) fn put_reads(out: &mut Out<'_>, reads: &[Read]) {
    out.count(reads.len());
    for r in reads {
        out.stream(&r.stream);
        out.key(&r.key);
    }
}

/// Appends the controls.
pub(crate) fn put_controls(out: &mut Out<'_>, controls: &[Control]) {
    out.count(controls.len());
    for c in controls {
        out.raw(&[c.op as u8]);
        out.stream(&c.stream);
        if let Some(key) = &c.key {
            out.key(key);
        }
        if let Some(account) = &c.account {
            out.raw(&account.0);
        }
    }
}

/// Checks a read set against the decoder's rules.
pub(crate) fn check_reads(reads: &[Read]) -> Result<(), ParseError> {
    check_list_len(reads.len())?;
    reads.iter().enumerate().try_for_each(|(i, r)| check_key(&r.key, "reads", i))
}

/// Checks controls against the decoder's rules: keys and accounts exactly
/// where the op has them.
pub(crate) fn check_controls(controls: &[Control]) -> Result<(), ParseError> {
    check_list_len(controls.len())?;
    for (i, c) in controls.iter().enumerate() {
        match &c.key {
            Some(key) if c.op.has_key() => check_key(key, "controls", i)?,
            None if !c.op.has_key() => {}
            Some(_) => return Err(ParseError::invalid(format!("controls[{i}]: {:?} has no key", c.op))),
            None => return Err(ParseError::invalid(format!("controls[{i}]: {:?} needs a key", c.op))),
        }
        if c.account.is_some() != c.op.has_account() {
            let has = if c.op.has_account() { "needs an" } else { "has no" };
            return Err(ParseError::invalid(format!("controls[{i}]: {:?} {has} account", c.op)));
        }
    }
    Ok(())
}

/// Checks a list length against [`MAX_LIST_LEN`].
pub(crate) fn check_list_len(len: usize) -> Result<(), ParseError> {
    if len > MAX_LIST_LEN {
        return Err(ParseError::ListTooLong);
    }
    Ok(())
}

/// Checks a key: 1..=[`MAX_KEY_BYTES`] bytes.
pub(crate) fn check_key(key: &[u8], list: &str, i: usize) -> Result<(), ParseError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        let len = key.len();
        return Err(ParseError::invalid(format!("{list}[{i}]: key of {len} bytes, not 1..={MAX_KEY_BYTES}")));
    }
    Ok(())
}

/// Checks a value: at most [`MAX_VALUE_BYTES`].
pub(crate) fn check_value(len: usize, list: &str, i: usize) -> Result<(), ParseError> {
    if len > MAX_VALUE_BYTES {
        return Err(ParseError::invalid(format!(
            "{list}[{i}]: value of {len} bytes, more than {MAX_VALUE_BYTES}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Address;

    fn sid(b: u8) -> StreamId {
        StreamId([b; 32])
    }

    #[test]
    fn tags_round_trip_and_anything_else_is_not_tags() {
        let streams = [sid(1), sid(2), sid(1)];
        assert_eq!(decode_tags(&encode_tags(&streams)), Some(streams.to_vec()));
        assert_eq!(decode_tags(&TAGS_DOMAIN), Some(vec![]));
        assert_eq!(decode_tags(&[]), None);
        assert_eq!(decode_tags(&encode_tags(&streams)[..60]), None);
        let mut other = encode_tags(&streams);
        other[0] ^= 1;
        assert_eq!(decode_tags(&other), None);
    }

    #[test]
    fn tags_list_written_and_controlled_streams_once_in_first_appearance_order() {
        let write = |s| BodyWrite { stream: sid(s), key: b"k".to_vec(), value: vec![] };
        let control =
            |s| Control { op: ControlOp::RenounceWriteRole, stream: sid(s), key: None, account: None };
        let body = Body {
            version: 0,
            reads: vec![Read { stream: sid(9), key: b"r".to_vec() }],
            writes: vec![write(3), write(1), write(3)],
            controls: vec![control(2), control(1)],
        };
        assert_eq!(body.tags(), vec![sid(3), sid(1), sid(2)]);
    }

    #[test]
    fn check_refuses_controls_whose_fields_do_not_match_their_op() {
        let mut c = Control { op: ControlOp::GrantWriteRole, stream: sid(1), key: None, account: None };
        let body = |c: &Control| Body { controls: vec![c.clone()], ..Body::default() };
        assert!(body(&c).check().is_err());
        c.account = Some(Address([2; 20]));
        assert_eq!(body(&c).check(), Ok(()));
        c.key = Some(b"k".to_vec());
        assert!(body(&c).check().is_err());
        c.op = ControlOp::GrantSpecialWriteRole;
        assert_eq!(body(&c).check(), Ok(()));
    }
}
