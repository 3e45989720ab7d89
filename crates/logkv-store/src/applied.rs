//! The payload of an `Applied` record: a signed entry exactly as it was
//! logged, what the node made of it, and the version records it derived.
//!
//! ```text
//! version   u64       the record's version tag (the newest version it creates)
//! state     32 bytes  the node's state after the entry (opaque here: its digest)
//! entry_len u32
//! entry     entry_len bytes, never modified
//! annex_len u32
//! annex     annex_len bytes, opaque here (the node's transaction results)
//! op_count  u32
//! ops       the version records (see [`crate::record`])
//! ```
//!
//! Little-endian. Values written by the entry are not copied: a `put_ref`
//! op points back into `entry`. Ops carry explicit versions (never
//! decreasing, at most `version`); replay indexes them without looking at
//! the entry, which the node verified before it wrote the record. State and
//! annex are per record, not per key, so they cost the index nothing and
//! are read by position ([`crate::Store::applied_at`]).

use crate::record::{parse_ops, value_crc, OpHeader, OpKind, OpRef, OpRule, OP_HEADER_LEN, VALUE_BACK_LEN};

/// Bytes of an applied payload before the entry.
pub const APPLIED_HEADER_LEN: usize = 8 + STATE_LEN + 4;
/// Bytes of the state an applied record carries.
pub const STATE_LEN: usize = 32;

/// What an op of an applied entry leaves as the key's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppliedValue<'a> {
    /// These bytes, held in the op (computed values, results, facts).
    Put(&'a [u8]),
    /// `len` bytes of the entry, starting at `offset` in it: not copied.
    InEntry {
        /// Offset in the entry.
        offset: usize,
        /// Length.
        len: usize,
    },
    /// No value: the key is deleted.
    Delete,
}

/// One version record to derive from an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppliedOp<'a> {
    /// The keyspace of the key.
    pub keyspace: u32,
    /// The key.
    pub key: &'a [u8],
    /// The version the write creates.
    pub version: u64,
    /// What the key becomes.
    pub value: AppliedValue<'a>,
}

impl AppliedOp<'_> {
    /// The op kind on disk.
    pub(crate) fn kind(&self) -> OpKind {
        match self.value {
            AppliedValue::Put(_) => OpKind::Put,
            AppliedValue::InEntry { .. } => OpKind::PutRef,
            AppliedValue::Delete => OpKind::Delete,
        }
    }

    /// Length of the key's value (0 for deletes).
    pub(crate) fn value_len(&self) -> usize {
        match self.value {
            AppliedValue::Put(v) => v.len(),
            AppliedValue::InEntry { len, .. } => len,
            AppliedValue::Delete => 0,
        }
    }

    /// Bytes of the op on disk.
    pub(crate) fn op_len(&self) -> usize {
        OP_HEADER_LEN
            + self.key.len()
            + match self.value {
                AppliedValue::Put(v) => v.len(),
                AppliedValue::InEntry { .. } => VALUE_BACK_LEN,
                AppliedValue::Delete => 0,
            }
    }

    /// Writes the op at `at` in `payload` with version `version` and
    /// previous version record `prev`; `entry_at` is where the record's
    /// entry starts in `payload` (for `put_ref`, whose value is read there
    /// for the op's checksum, so the entry must be in place). Returns the
    /// op's length.
    pub(crate) fn encode(
        &self,
        payload: &mut [u8],
        at: usize,
        version: u64,
        prev: Option<logkv_log::Loc>,
        entry_at: usize,
    ) -> usize {
        let value = match self.value {
            AppliedValue::Put(v) => v,
            AppliedValue::InEntry { offset, len } => &payload[entry_at + offset..entry_at + offset + len],
            AppliedValue::Delete => &[],
        };
        let header = OpHeader {
            kind: self.kind(),
            key_len: self.key.len() as u16,
            value_len: self.value_len() as u32,
            keyspace: self.keyspace,
            version,
            prev,
            truncated: false,
            crc: value_crc(self.key, value),
        };
        header.encode(&mut payload[at..]);
        let key_at = at + OP_HEADER_LEN;
        let body_at = key_at + self.key.len();
        payload[key_at..body_at].copy_from_slice(self.key);
        let end = at + header.op_len();
        match self.value {
            AppliedValue::Put(v) => payload[body_at..end].copy_from_slice(v),
            AppliedValue::InEntry { offset, .. } => {
                let back = (at - (entry_at + offset)) as u32;
                payload[body_at..end].copy_from_slice(&back.to_le_bytes());
            }
            AppliedValue::Delete => {}
        }
        end - at
    }
}

/// Bytes of the payload of an applied record.
pub(crate) fn payload_len(entry_len: usize, annex_len: usize, ops: &[AppliedOp<'_>]) -> usize {
    APPLIED_HEADER_LEN + entry_len + 4 + annex_len + 4 + ops.iter().map(AppliedOp::op_len).sum::<usize>()
}

/// Writes the parts of an applied payload before its ops (version, state,
/// entry, annex, op count) into `buf`; returns where the first op goes.
pub(crate) fn encode_head(
    buf: &mut [u8],
    version: u64,
    state: &[u8; STATE_LEN],
    entry: &[u8],
    annex: &[u8],
    op_count: usize,
) -> usize {
    buf[..8].copy_from_slice(&version.to_le_bytes());
    buf[8..8 + STATE_LEN].copy_from_slice(state);
    let mut at = 8 + STATE_LEN;
    for part in [entry, annex] {
        buf[at..at + 4].copy_from_slice(&(part.len() as u32).to_le_bytes());
        buf[at + 4..at + 4 + part.len()].copy_from_slice(part);
        at += 4 + part.len();
    }
    buf[at..at + 4].copy_from_slice(&(op_count as u32).to_le_bytes());
    at + 4
}

/// An applied payload being read.
#[derive(Debug)]
pub struct ParsedApplied<'a> {
    /// The record's version tag.
    pub version: u64,
    /// The node's state after the entry.
    pub state: [u8; STATE_LEN],
    /// The entry.
    pub entry: &'a [u8],
    /// The node's annex (its transaction results).
    pub annex: &'a [u8],
    /// The ops.
    pub ops: Vec<OpRef<'a>>,
}

/// Parses an applied payload. `Err` describes the first inconsistency.
pub fn parse_applied(payload: &[u8]) -> Result<ParsedApplied<'_>, String> {
    if payload.len() < APPLIED_HEADER_LEN {
        return Err("applied record shorter than its header".into());
    }
    let version = u64::from_le_bytes(payload[..8].try_into().expect("8 bytes"));
    let state = payload[8..8 + STATE_LEN].try_into().expect("32 bytes");
    let (entry, entry_end) = sized(payload, 8 + STATE_LEN, "entry")?;
    let (annex, annex_end) = sized(payload, entry_end, "annex")?;
    let ops =
        parse_ops(payload, annex_end, OpRule::Applied { version, refs: APPLIED_HEADER_LEN..entry_end })?;
    Ok(ParsedApplied { version, state, entry, annex, ops })
}

/// The `len u32 | bytes` part of `payload` at `at`, and where it ends.
fn sized<'a>(payload: &'a [u8], at: usize, what: &str) -> Result<(&'a [u8], usize), String> {
    let short = || format!("{what} runs past the end of the record");
    let len = payload.get(at..at + 4).ok_or_else(short)?;
    let start = at + 4;
    let end = start
        .checked_add(u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize)
        .filter(|&e| e <= payload.len())
        .ok_or_else(short)?;
    Ok((&payload[start..end], end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_encode_to_what_parse_reads_back() {
        let entry = b"the signed entry";
        let ops = [
            AppliedOp {
                keyspace: 2,
                key: b"k",
                version: 10,
                value: AppliedValue::InEntry { offset: 4, len: 6 },
            },
            AppliedOp { keyspace: 1, key: b"r", version: 10, value: AppliedValue::Put(b"Commit") },
            AppliedOp { keyspace: 2, key: b"gone", version: 11, value: AppliedValue::Delete },
        ];
        let mut payload = vec![0u8; payload_len(entry.len(), 7, &ops)];
        let mut at = encode_head(&mut payload, 11, &[9; STATE_LEN], entry, b"results", ops.len());
        for op in &ops {
            at += op.encode(&mut payload, at, op.version, None, APPLIED_HEADER_LEN);
        }
        assert_eq!(at, payload.len());
        let parsed = parse_applied(&payload).unwrap();
        assert_eq!((parsed.version, parsed.entry), (11, &entry[..]));
        assert_eq!((parsed.state, parsed.annex), ([9; STATE_LEN], &b"results"[..]));
        let first = &parsed.ops[0];
        assert_eq!((first.header.kind, first.header.keyspace, first.key), (OpKind::PutRef, 2, &b"k"[..]));
        let value_at = first.value_at.unwrap();
        assert_eq!(&payload[value_at..value_at + 6], b"signed");
        assert_eq!(parsed.ops[2].header.kind, OpKind::Delete);
        assert!(parse_applied(&payload[..payload.len() - 1]).is_err());
    }
}
