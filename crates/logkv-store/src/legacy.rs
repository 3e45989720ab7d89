//! Reading a data directory of format 2 for `logkv migrate`, which writes
//! its records again in format 3 (a node's entries applied again in order,
//! a plain store's batches written again).
//!
//! Format 2's frames and segment headers are format 3's; its payloads
//! differ: op headers lack the checksum (27 bytes), and an applied payload
//! is `version u64 | entry_len u32 | entry | op_count u32 | ops`, without
//! state or annex. Migration needs only what cannot be derived again: a
//! batch's puts and deletes, an applied record's entry, and every record's
//! position and log time. Segments are read one at a time, in order; a
//! file may end before its capacity (its zeros cut off).
//!
//! A format-2 compacted file cannot be migrated: it holds the versions it
//! kept, not the entries they came from, so the entries cannot be applied
//! again. Such a directory is refused.

use std::path::{Path, PathBuf};

use logkv_fs::FileSystem;
use logkv_log::format::{
    read_frame, u32_at, u64_at, FrameRead, RecordType, MIGRATABLE_VERSION, SEGMENT_HEADER_LEN, SEGMENT_MAGIC,
};
use logkv_log::LogError;

use crate::batch::Op;
use crate::error::{Result, StoreError};
use crate::head;

/// Bytes of a format-2 op header: kind u8 | key_len u16 | value_len u32 |
/// keyspace u32 | version u64 | prev u64.
const OP_HEADER_LEN_V2: usize = 27;

/// One record of a format-2 log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyRecord {
    /// Its position.
    pub position: u64,
    /// Its log time (the frame's time, Unix milliseconds).
    pub time_ms: u64,
    /// What it holds.
    pub content: LegacyContent,
}

/// What a format-2 record holds that migration writes again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegacyContent {
    /// A plain store's batch: its puts and deletes, in order.
    Batch(Vec<Op>),
    /// A node's applied entry: the record's version tag and the signed
    /// entry verbatim (its derived ops are not needed: applying the entry
    /// again derives them).
    Applied {
        /// The record's version tag.
        version: u64,
        /// The entry.
        entry: Vec<u8>,
    },
}

/// The records of a format-2 data directory, oldest first.
pub struct LegacyLog<'a> {
    fs: &'a dyn FileSystem,
    segments: Vec<PathBuf>,
    /// The next segment to read.
    next_segment: usize,
    /// The segment being read and the offset of its next frame.
    current: Option<(PathBuf, Vec<u8>, usize)>,
    /// The position the next record must have (`None` before the first).
    expected: Option<u64>,
}

impl<'a> LegacyLog<'a> {
    /// Opens the format-2 data directory `dir` for reading. Refused if a
    /// compacted file replaced its oldest records.
    pub fn open(fs: &'a dyn FileSystem, dir: &Path) -> Result<Self> {
        let mut names = fs.list_dir(dir).map_err(|e| LogError::io(dir, e))?;
        names.sort_unstable();
        if let Some(name) = names.iter().find(|n| head::parse_name(n).is_some()) {
            return Err(StoreError::NotRetained(format!(
                "{}: a compacted file of format 2 replaced the oldest records of this directory, and their \
                 entries are gone, so they cannot be applied again, and no format-2 export can be imported \
                 either: read the data with the logkv release that wrote it (`logkv scan`, `logkv history`) \
                 and write it into a new node",
                dir.join(name).display()
            )));
        }
        let segments = names.iter().filter(|n| is_segment_name(n)).map(|n| dir.join(n)).collect();
        Ok(Self { fs, segments, next_segment: 0, current: None, expected: None })
    }

    /// The next record, or `None` after the last.
    fn next_record(&mut self) -> Result<Option<LegacyRecord>> {
        loop {
            let Some((path, bytes, offset)) = &mut self.current else {
                if !self.open_next_segment()? {
                    return Ok(None);
                }
                continue;
            };
            let corrupt = |offset: usize, detail: String| {
                StoreError::from(LogError::Corruption { file: path.clone(), offset: offset as u64, detail })
            };
            match read_frame(&bytes[*offset..]) {
                FrameRead::Unwritten => self.current = None,
                FrameRead::Damaged { .. } => {
                    return Err(corrupt(
                        *offset,
                        "damaged record: open the directory once with the logkv that wrote it (which cuts \
                         a torn tail) before migrating"
                            .into(),
                    ))
                }
                FrameRead::Intact(frame) => {
                    let expected = self.expected.unwrap_or(frame.position);
                    if frame.position != expected {
                        let detail = format!("record position {}, expected {expected}", frame.position);
                        return Err(corrupt(*offset, detail));
                    }
                    let content = parse(frame.rtype, frame.payload)
                        .map_err(|detail| StoreError::BadRecord { position: frame.position, detail })?;
                    let record = LegacyRecord { position: frame.position, time_ms: frame.time_ms, content };
                    *offset += frame.len();
                    self.expected = Some(expected + 1);
                    return Ok(Some(record));
                }
            }
        }
    }

    /// Reads the next segment file; `false` if there is none.
    fn open_next_segment(&mut self) -> Result<bool> {
        let Some(path) = self.segments.get(self.next_segment).cloned() else { return Ok(false) };
        self.next_segment += 1;
        let io = |e| StoreError::from(LogError::io(&path, e));
        let file = self.fs.open(&path).map_err(io)?;
        let mut bytes = vec![0u8; file.len().map_err(io)? as usize];
        file.read_exact_at(&mut bytes, 0).map_err(io)?;
        let first_position = header_v2(&bytes).map_err(|detail| {
            StoreError::from(LogError::Corruption { file: path.clone(), offset: 0, detail })
        })?;
        if self.expected.is_some_and(|e| e != first_position) {
            let detail = format!("segment starts at position {first_position}, expected {:?}", self.expected);
            return Err(LogError::Corruption { file: path, offset: 0, detail }.into());
        }
        self.expected = Some(first_position);
        self.current = Some((path, bytes, SEGMENT_HEADER_LEN as usize));
        Ok(true)
    }
}

impl Iterator for LegacyLog<'_> {
    type Item = Result<LegacyRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_record().transpose()
    }
}

/// Whether `name` is a segment file's (`NNNNNNNN.log`).
fn is_segment_name(name: &str) -> bool {
    name.strip_suffix(".log").is_some_and(|d| d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit()))
}

/// The first position a format-2 segment header names.
fn header_v2(b: &[u8]) -> Result<u64, String> {
    let len = SEGMENT_HEADER_LEN as usize;
    if b.len() < len || b[..8] != SEGMENT_MAGIC || crc32c::crc32c(&b[..28]) != u32_at(b, 28) {
        return Err("not a segment (bad header)".into());
    }
    let version = u16::from_le_bytes([b[8], b[9]]);
    if version != MIGRATABLE_VERSION {
        return Err(format!("segment format {version}, not {MIGRATABLE_VERSION}: nothing to migrate"));
    }
    Ok(u64_at(b, 16))
}

/// What a format-2 payload of type `rtype` holds.
fn parse(rtype: u8, payload: &[u8]) -> Result<LegacyContent, String> {
    match RecordType::from_byte(rtype) {
        Some(RecordType::Batch) => parse_batch(payload).map(LegacyContent::Batch),
        Some(RecordType::Applied) => {
            let short = || "applied record shorter than its entry".to_string();
            let version = payload.get(..8).map(|b| u64_at(b, 0)).ok_or_else(short)?;
            let len = payload.get(8..12).map(|b| u32_at(b, 0) as usize).ok_or_else(short)?;
            let entry = payload.get(12..12 + len).ok_or_else(short)?;
            Ok(LegacyContent::Applied { version, entry: entry.to_vec() })
        }
        _ => Err(format!("record type {rtype} has no place in a format-2 log")),
    }
}

/// The puts and deletes of a format-2 batch payload (`op_count u32 | ops`).
fn parse_batch(payload: &[u8]) -> Result<Vec<Op>, String> {
    let short = || "batch shorter than its ops".to_string();
    let count = payload.get(..4).map(|b| u32_at(b, 0)).ok_or_else(short)?;
    let mut at = 4;
    let mut ops = Vec::with_capacity((count as usize).min(payload.len() / OP_HEADER_LEN_V2));
    for _ in 0..count {
        let h = payload.get(at..at + OP_HEADER_LEN_V2).ok_or_else(short)?;
        let (kind, key_len, value_len) =
            (h[0], u16::from_le_bytes([h[1], h[2]]) as usize, u32_at(h, 3) as usize);
        let key_at = at + OP_HEADER_LEN_V2;
        let key = payload.get(key_at..key_at + key_len).ok_or_else(short)?.to_vec();
        at = key_at + key_len;
        match kind {
            1 => {
                let value = payload.get(at..at + value_len).ok_or_else(short)?.to_vec();
                at += value_len;
                ops.push(Op::Put { key, value });
            }
            2 => ops.push(Op::Delete { key }),
            _ => return Err(format!("batch op of kind {kind}")),
        }
    }
    if at != payload.len() {
        return Err(format!("{} bytes after the last op", payload.len() - at));
    }
    Ok(ops)
}
