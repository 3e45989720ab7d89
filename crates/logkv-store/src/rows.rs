//! The rows a compacted file keeps of the applied records it replaced:
//! what a node reads by position (its state, annex and log time) once the
//! record itself, with its entry, is gone.
//!
//! ```text
//! row block payload: row_count u32 | rows, positions increasing
//! row: position u64 | version u64 | time_ms u64 | state 32 bytes | annex_len u32 | annex
//! ```

use crate::applied::STATE_LEN;

/// Bytes of a row before its annex.
const ROW_HEADER_LEN: usize = 8 + 8 + 8 + STATE_LEN + 4;

/// One kept record of a compacted file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row {
    pub(crate) position: u64,
    pub(crate) version: u64,
    pub(crate) time_ms: u64,
    pub(crate) state: [u8; STATE_LEN],
    pub(crate) annex: Vec<u8>,
}

impl Row {
    /// Bytes of the row on disk.
    pub(crate) fn len(&self) -> usize {
        ROW_HEADER_LEN + self.annex.len()
    }

    /// Writes the row into the first [`Row::len`] bytes of `out`.
    pub(crate) fn encode(&self, out: &mut [u8]) {
        out[0..8].copy_from_slice(&self.position.to_le_bytes());
        out[8..16].copy_from_slice(&self.version.to_le_bytes());
        out[16..24].copy_from_slice(&self.time_ms.to_le_bytes());
        out[24..24 + STATE_LEN].copy_from_slice(&self.state);
        out[24 + STATE_LEN..ROW_HEADER_LEN].copy_from_slice(&(self.annex.len() as u32).to_le_bytes());
        out[ROW_HEADER_LEN..self.len()].copy_from_slice(&self.annex);
    }

    /// Parses a row block's payload; `Err` describes the first
    /// inconsistency.
    pub(crate) fn parse_block(payload: &[u8]) -> Result<Vec<Row>, String> {
        let short = || "row block shorter than its rows".to_string();
        let count = payload.get(..4).ok_or_else(short)?;
        let count = u32::from_le_bytes(count.try_into().expect("4 bytes")) as usize;
        let mut rows = Vec::with_capacity(count.min(payload.len() / ROW_HEADER_LEN));
        let mut at = 4;
        for _ in 0..count {
            let b = payload.get(at..at + ROW_HEADER_LEN).ok_or_else(short)?;
            let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
            let annex_len = u32::from_le_bytes(b[24 + STATE_LEN..].try_into().expect("4 bytes")) as usize;
            let annex =
                payload.get(at + ROW_HEADER_LEN..at + ROW_HEADER_LEN + annex_len).ok_or_else(short)?;
            let row = Row {
                position: u64_at(0),
                version: u64_at(8),
                time_ms: u64_at(16),
                state: b[24..24 + STATE_LEN].try_into().expect("32 bytes"),
                annex: annex.to_vec(),
            };
            if rows.last().is_some_and(|r: &Row| r.position >= row.position) {
                return Err(format!("row of position {} out of order", row.position));
            }
            at += row.len();
            rows.push(row);
        }
        if at != payload.len() {
            return Err(format!("{} bytes after the last row", payload.len() - at));
        }
        Ok(rows)
    }
}
