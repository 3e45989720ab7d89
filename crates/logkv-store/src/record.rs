//! The store's version records ("ops") and the payload of a `Batch` record.
//!
//! ```text
//! op: kind u8 | key_len u16 | value_len u32 | keyspace u32 | version u64 | prev u64 | crc u32 | key | body
//! body: put: value (value_len bytes); put_ref: value_back u32; delete: nothing
//! batch payload: op_count u32 | op_count x op
//! ```
//!
//! Little-endian. `prev` is the packed location of the previous version
//! record of the same key in the same keyspace (0 = none; bit 63 set =
//! compaction dropped the versions before this one): history is a
//! chain on disk, so no copy of it lives in memory. The index points at an
//! op's first byte. A `put_ref` op holds no value: its value is the
//! `value_len` bytes that start `value_back` bytes before the op's first
//! byte, inside the same record (an `Applied` record's entry, see
//! [`crate::applied`]).
//!
//! `crc` is CRC32C of `key || value` (the value wherever it lives, empty
//! for a delete). A frame's checksum is checked only when a segment is
//! replayed, and segments behind a checkpoint never are: the op's own
//! checksum is what lets every read check exactly the bytes it returns.

use logkv_log::Loc;

/// Bytes of an op before its key.
pub const OP_HEADER_LEN: usize = 1 + 2 + 4 + 4 + 8 + 8 + 4;
/// Bytes of a batch payload before its first op.
pub const BATCH_HEADER_LEN: usize = 4;
/// Bytes of a `put_ref` op after its key (`value_back`).
pub const VALUE_BACK_LEN: usize = 4;

/// What an op does to its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum OpKind {
    /// Sets the value, held in the op (an empty value is a value).
    Put = 1,
    /// Removes the key (a tombstone).
    Delete = 2,
    /// Sets the value to bytes earlier in the same record.
    PutRef = 3,
}

impl OpKind {
    /// Whether the op leaves a live value.
    pub fn is_put(self) -> bool {
        self != OpKind::Delete
    }
}

/// The fixed part of a version record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpHeader {
    /// Put, put by reference or delete.
    pub kind: OpKind,
    /// Key length.
    pub key_len: u16,
    /// Value length (0 for deletes).
    pub value_len: u32,
    /// The keyspace the key belongs to.
    pub keyspace: u32,
    /// The version this write created.
    pub version: u64,
    /// The previous version record of the key, if any.
    pub prev: Option<Loc>,
    /// Compaction dropped older versions of the key: a read as of a
    /// version older than this record is answered "compacted" (bit 63 of
    /// `prev` on disk).
    pub truncated: bool,
    /// CRC32C of `key || value` ([`value_crc`]).
    pub crc: u32,
}

/// The checksum an op carries: CRC32C of its key followed by its value
/// (empty for a delete).
pub fn value_crc(key: &[u8], value: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(key), value)
}

/// Bit 63 of an op's `prev`: older versions were dropped by compaction.
pub const TRUNCATED: u64 = 1 << 63;

impl OpHeader {
    /// Bytes of the op after its header and key.
    pub fn body_len(&self) -> usize {
        match self.kind {
            OpKind::Put => self.value_len as usize,
            OpKind::PutRef => VALUE_BACK_LEN,
            OpKind::Delete => 0,
        }
    }

    /// Bytes of the whole op.
    pub fn op_len(&self) -> usize {
        OP_HEADER_LEN + self.key_len as usize + self.body_len()
    }

    /// Writes the header into the first [`OP_HEADER_LEN`] bytes of `out`.
    pub fn encode(&self, out: &mut [u8]) {
        out[0] = self.kind as u8;
        out[1..3].copy_from_slice(&self.key_len.to_le_bytes());
        out[3..7].copy_from_slice(&self.value_len.to_le_bytes());
        out[7..11].copy_from_slice(&self.keyspace.to_le_bytes());
        out[11..19].copy_from_slice(&self.version.to_le_bytes());
        let prev = self.prev.map_or(0, Loc::to_u64) | if self.truncated { TRUNCATED } else { 0 };
        out[19..27].copy_from_slice(&prev.to_le_bytes());
        out[27..31].copy_from_slice(&self.crc.to_le_bytes());
    }

    /// Reads a header; `None` if the bytes are not a valid one.
    pub fn decode(b: &[u8]) -> Option<Self> {
        if b.len() < OP_HEADER_LEN {
            return None;
        }
        let kind = match b[0] {
            1 => OpKind::Put,
            2 => OpKind::Delete,
            3 => OpKind::PutRef,
            _ => return None,
        };
        let key_len = u16::from_le_bytes([b[1], b[2]]);
        let value_len = u32::from_le_bytes(b[3..7].try_into().ok()?);
        let keyspace = u32::from_le_bytes(b[7..11].try_into().ok()?);
        let version = u64::from_le_bytes(b[11..19].try_into().ok()?);
        let prev = u64::from_le_bytes(b[19..27].try_into().ok()?);
        let crc = u32::from_le_bytes(b[27..31].try_into().ok()?);
        if key_len == 0 || (kind == OpKind::Delete && value_len != 0) {
            return None;
        }
        let truncated = prev & TRUNCATED != 0;
        let prev = (prev & !TRUNCATED != 0).then(|| Loc::from_u64(prev));
        Some(Self { kind, key_len, value_len, keyspace, version, prev, truncated, crc })
    }
}

/// One op of a payload being read.
#[derive(Debug, Clone, Copy)]
pub struct OpRef<'a> {
    /// Its header.
    pub header: OpHeader,
    /// Its key.
    pub key: &'a [u8],
    /// Byte offset of the op inside the payload.
    pub offset: usize,
    /// For `put_ref`: the payload offset where its value starts.
    pub value_at: Option<usize>,
}

/// What the ops of a record may be.
#[derive(Debug, Clone)]
pub enum OpRule {
    /// A batch: every op carries the record's position as its version, and
    /// none refers to other bytes of the record.
    Batch {
        /// The record's position.
        position: u64,
    },
    /// A block of a compacted file: puts and deletes, each with its own
    /// version (ordered by keyspace, key and version, which the reader of
    /// the file checks).
    Compacted,
    /// An applied entry: versions never decrease and stay at or below the
    /// record's version tag; `put_ref` values lie inside `refs` (the entry).
    Applied {
        /// The record's version tag.
        version: u64,
        /// The payload range `put_ref` values may point into.
        refs: std::ops::Range<usize>,
    },
}

/// Parses `op_count u32 | ops` starting at payload offset `at` and running
/// to the end of the payload, checking every op lies inside it and follows
/// `rule`. `Err` describes the first inconsistency.
pub fn parse_ops(payload: &[u8], mut at: usize, rule: OpRule) -> Result<Vec<OpRef<'_>>, String> {
    let Some(count) = payload.get(at..at + 4) else {
        return Err("record shorter than its op count".into());
    };
    let count = u32::from_le_bytes(count.try_into().expect("4 bytes")) as usize;
    at += 4;
    let mut ops = Vec::with_capacity(count.min(payload.len() / OP_HEADER_LEN));
    let mut last_version = 0;
    for i in 0..count {
        let header = OpHeader::decode(&payload[at..])
            .ok_or_else(|| format!("op {i} at payload offset {at} has an invalid header"))?;
        let end = at + header.op_len();
        if end > payload.len() {
            return Err(format!("op {i} runs past the end of the record"));
        }
        let key_end = at + OP_HEADER_LEN + header.key_len as usize;
        let key = &payload[at + OP_HEADER_LEN..key_end];
        let mut value_at = None;
        match &rule {
            OpRule::Batch { position } => {
                if header.version != *position {
                    return Err(format!("op {i} has version {}, record has {position}", header.version));
                }
                if header.kind == OpKind::PutRef {
                    return Err(format!("op {i} of a batch refers to other bytes"));
                }
            }
            OpRule::Compacted => {
                if header.kind == OpKind::PutRef {
                    return Err(format!("op {i} of a compacted block refers to other bytes"));
                }
            }
            OpRule::Applied { version, refs } => {
                if header.version < last_version || header.version > *version {
                    return Err(format!(
                        "op {i} has version {}, outside {last_version}..={version}",
                        header.version
                    ));
                }
                last_version = header.version;
                if header.kind == OpKind::PutRef {
                    let back = u32::from_le_bytes(payload[key_end..end].try_into().expect("4 bytes"));
                    let start = at.checked_sub(back as usize);
                    let inside = start.filter(|&s| {
                        s >= refs.start
                            && s.checked_add(header.value_len as usize).is_some_and(|e| e <= refs.end)
                    });
                    value_at =
                        Some(inside.ok_or_else(|| format!("op {i} refers to bytes outside the entry"))?);
                }
            }
        }
        ops.push(OpRef { header, key, offset: at, value_at });
        at = end;
    }
    if at != payload.len() {
        return Err(format!("{} trailing bytes after the last op", payload.len() - at));
    }
    Ok(ops)
}

/// Parses a batch payload, whose every op carries the record's position as
/// its version.
pub fn parse_batch(payload: &[u8], position: u64) -> Result<Vec<OpRef<'_>>, String> {
    parse_ops(payload, 0, OpRule::Batch { position })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let h = OpHeader {
            kind: OpKind::PutRef,
            key_len: 3,
            value_len: 10,
            keyspace: 7,
            version: 42,
            prev: Some(Loc::new(2, 99)),
            truncated: true,
            crc: 0xdead_beef,
        };
        let mut b = [0u8; OP_HEADER_LEN];
        h.encode(&mut b);
        assert_eq!(OpHeader::decode(&b), Some(h));
        b[0] = 9;
        assert_eq!(OpHeader::decode(&b), None);
    }

    fn op(kind: OpKind, version: u64, value_len: u32, body: &[u8]) -> Vec<u8> {
        let h = OpHeader {
            kind,
            key_len: 1,
            value_len,
            keyspace: 0,
            version,
            prev: None,
            truncated: false,
            crc: 0,
        };
        let mut b = vec![0u8; OP_HEADER_LEN];
        h.encode(&mut b);
        b.push(b'k');
        b.extend_from_slice(body);
        b
    }

    #[test]
    fn parse_rejects_inconsistent_batches() {
        let mut p = vec![1, 0, 0, 0];
        p.extend(op(OpKind::Put, 5, 1, b"v"));
        assert_eq!(parse_batch(&p, 5).unwrap().len(), 1);
        assert!(parse_batch(&p, 6).is_err());
        assert!(parse_batch(&p[..p.len() - 1], 5).is_err());
        let mut longer = p.clone();
        longer.push(0);
        assert!(parse_batch(&longer, 5).is_err());
        let mut by_ref = vec![1, 0, 0, 0];
        by_ref.extend(op(OpKind::PutRef, 5, 0, &[0; 4]));
        assert!(parse_batch(&by_ref, 5).unwrap_err().contains("refers"));
    }

    #[test]
    fn applied_ops_keep_versions_in_order_and_refer_inside_the_entry() {
        // Six bytes of "entry", then the ops.
        let entry = 0..6;
        let ops = |ops: &[Vec<u8>]| {
            let mut p = b"abcdef".to_vec();
            p.extend_from_slice(&(ops.len() as u32).to_le_bytes());
            ops.iter().for_each(|o| p.extend_from_slice(o));
            p
        };
        let rule = |version| OpRule::Applied { version, refs: entry.clone() };
        // An op at offset 10 whose value "cde" starts 8 bytes back.
        let good = ops(&[op(OpKind::PutRef, 3, 3, &8u32.to_le_bytes()), op(OpKind::Delete, 4, 0, b"")]);
        let parsed = parse_ops(&good, 6, rule(4)).unwrap();
        assert_eq!(parsed[0].value_at, Some(2));
        assert!(parse_ops(&good, 6, rule(3)).unwrap_err().contains("outside"), "above the tag");
        let backwards = ops(&[op(OpKind::Put, 4, 0, b""), op(OpKind::Put, 3, 0, b"")]);
        assert!(parse_ops(&backwards, 6, rule(9)).is_err());
        for (back, len) in [(11u32, 1u32), (8, 5), (0, 1)] {
            let bad = ops(&[op(OpKind::PutRef, 3, len, &back.to_le_bytes())]);
            assert!(parse_ops(&bad, 6, rule(9)).unwrap_err().contains("outside the entry"), "{back} {len}");
        }
    }
}
