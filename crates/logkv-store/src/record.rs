//! The payload of a `Batch` record: the store's own version records.
//!
//! ```text
//! op_count u32
//! op_count x [ kind u8 | key_len u16 | value_len u32 | version u64 | prev u64 | key | value ]
//! ```
//!
//! Little-endian. `prev` is the packed location of the previous version
//! record of the same key (0 = none): history is a chain on disk, so no
//! copy of it lives in memory. The index points at an op's first byte.

use logkv_log::Loc;

/// Bytes of an op before its key.
pub const OP_HEADER_LEN: usize = 1 + 2 + 4 + 8 + 8;
/// Bytes of a batch payload before its first op.
pub const BATCH_HEADER_LEN: usize = 4;

/// What an op does to its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum OpKind {
    /// Sets the value (an empty value is a value).
    Put = 1,
    /// Removes the key (a tombstone).
    Delete = 2,
}

/// The fixed part of a version record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpHeader {
    /// Put or delete.
    pub kind: OpKind,
    /// Key length.
    pub key_len: u16,
    /// Value length (0 for deletes).
    pub value_len: u32,
    /// The version this write created.
    pub version: u64,
    /// The previous version record of the key, if any.
    pub prev: Option<Loc>,
}

impl OpHeader {
    /// Bytes of the whole op.
    pub fn op_len(&self) -> usize {
        OP_HEADER_LEN + self.key_len as usize + self.value_len as usize
    }

    /// Writes the header into the first [`OP_HEADER_LEN`] bytes of `out`.
    pub fn encode(&self, out: &mut [u8]) {
        out[0] = self.kind as u8;
        out[1..3].copy_from_slice(&self.key_len.to_le_bytes());
        out[3..7].copy_from_slice(&self.value_len.to_le_bytes());
        out[7..15].copy_from_slice(&self.version.to_le_bytes());
        out[15..23].copy_from_slice(&self.prev.map_or(0, Loc::to_u64).to_le_bytes());
    }

    /// Reads a header; `None` if the bytes are not a valid one.
    pub fn decode(b: &[u8]) -> Option<Self> {
        if b.len() < OP_HEADER_LEN {
            return None;
        }
        let kind = match b[0] {
            1 => OpKind::Put,
            2 => OpKind::Delete,
            _ => return None,
        };
        let key_len = u16::from_le_bytes([b[1], b[2]]);
        let value_len = u32::from_le_bytes(b[3..7].try_into().ok()?);
        let version = u64::from_le_bytes(b[7..15].try_into().ok()?);
        let prev = u64::from_le_bytes(b[15..23].try_into().ok()?);
        if key_len == 0 || (kind == OpKind::Delete && value_len != 0) {
            return None;
        }
        Some(Self { kind, key_len, value_len, version, prev: (prev != 0).then(|| Loc::from_u64(prev)) })
    }
}

/// One op of a batch payload being read.
#[derive(Debug, Clone, Copy)]
pub struct OpRef<'a> {
    /// Its header.
    pub header: OpHeader,
    /// Its key.
    pub key: &'a [u8],
    /// Byte offset of the op inside the payload.
    pub offset: usize,
}

/// Parses a batch payload, checking every op lies inside it and carries the
/// record's version. `Err` describes the first inconsistency.
pub fn parse_batch(payload: &[u8], version: u64) -> Result<Vec<OpRef<'_>>, String> {
    if payload.len() < BATCH_HEADER_LEN {
        return Err("batch shorter than its header".into());
    }
    let count = u32::from_le_bytes(payload[..4].try_into().expect("4 bytes")) as usize;
    let mut ops = Vec::with_capacity(count.min(payload.len() / OP_HEADER_LEN));
    let mut at = BATCH_HEADER_LEN;
    for i in 0..count {
        let header = OpHeader::decode(&payload[at..])
            .ok_or_else(|| format!("op {i} at payload offset {at} has an invalid header"))?;
        if header.version != version {
            return Err(format!("op {i} has version {}, record has {version}", header.version));
        }
        let end = at + header.op_len();
        if end > payload.len() {
            return Err(format!("op {i} runs past the end of the batch"));
        }
        let key = &payload[at + OP_HEADER_LEN..at + OP_HEADER_LEN + header.key_len as usize];
        ops.push(OpRef { header, key, offset: at });
        at = end;
    }
    if at != payload.len() {
        return Err(format!("{} trailing bytes after the last op", payload.len() - at));
    }
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let h = OpHeader {
            kind: OpKind::Put,
            key_len: 3,
            value_len: 10,
            version: 42,
            prev: Some(Loc::new(2, 99)),
        };
        let mut b = [0u8; OP_HEADER_LEN];
        h.encode(&mut b);
        assert_eq!(OpHeader::decode(&b), Some(h));
        b[0] = 9;
        assert_eq!(OpHeader::decode(&b), None);
    }

    #[test]
    fn parse_rejects_inconsistent_batches() {
        let h = OpHeader { kind: OpKind::Put, key_len: 1, value_len: 1, version: 5, prev: None };
        let mut p = vec![1, 0, 0, 0];
        let mut b = [0u8; OP_HEADER_LEN];
        h.encode(&mut b);
        p.extend_from_slice(&b);
        p.extend_from_slice(b"kv");
        assert_eq!(parse_batch(&p, 5).unwrap().len(), 1);
        assert!(parse_batch(&p, 6).is_err());
        assert!(parse_batch(&p[..p.len() - 1], 5).is_err());
        let mut longer = p.clone();
        longer.push(0);
        assert!(parse_batch(&longer, 5).is_err());
    }
}
