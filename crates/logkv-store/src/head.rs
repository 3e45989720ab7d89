//! The compacted head of the log: one file that replaces every segment up
//! to a position, holding the versions retention keeps, sorted by keyspace,
//! key and version (see `docs/format.md`, "Compacted file").
//!
//! Sorting by key is what lets the head stand in for the segments it
//! replaced: the newest version of every key is found by key (a block
//! index in memory, then one block), so a location that pointed into a
//! removed segment is resolved by looking its key up here; the index can be
//! rebuilt from it in one pass; and a key's versions sit together, each
//! pointing at the one before it inside this file.
//!
//! It also keeps rows of the applied records it replaced ([`crate::rows`]),
//! so a node can still read a replaced record's state, annex and log time
//! by position, and in its header the range's last log time and last state,
//! so a store opened from it alone continues with them.
//!
//! ```text
//! header (128 bytes): magic "LOGKVHED" | version u16 | flags u16 (bit 0: state) |
//!     id u32 | last_position u64 | last_version u64 | horizon u64 |
//!     created_ms u64 | data_end u64 | table_end u64 | last_time_ms u64 |
//!     state 32 bytes | reserved 28 | crc32c u32 (of bytes 0..124)
//! blocks (header .. data_end): frames of type Compacted (position = block
//!     number from 1), payload op_count u32 | ops (puts and deletes)
//! row blocks (data_end .. table_end): frames of type Compacted, numbered
//!     on, payload row_count u32 | rows
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use logkv_fs::{File, FileSystem};
use logkv_log::format::{
    begin_frame, read_frame, seal_frame, u32_at, u64_at, FrameRead, RecordType, FRAME_HEADER_LEN,
    FRAME_OVERHEAD, MAX_LOG_SEGMENT_ID,
};
use logkv_log::{Loc, LogError};

use crate::applied::STATE_LEN;
use crate::error::{Result, StoreError};
use crate::record::{parse_ops, value_crc, OpHeader, OpKind, OpRef, OpRule, BATCH_HEADER_LEN, OP_HEADER_LEN};
use crate::rows::Row;

/// First bytes of a compacted file.
pub const HEAD_MAGIC: [u8; 8] = *b"LOGKVHED";
/// The compacted-file format this code writes and reads (1 had 27-byte op
/// headers and no rows).
pub const HEAD_VERSION: u16 = 2;
/// Bytes of the header; the first block starts here.
pub const HEAD_HEADER_LEN: u64 = 128;
/// Bytes of the header the checksum covers (the checksum follows).
const HEAD_CRC_AT: usize = 124;
/// Header flag: the file carries the state of the range's last record.
const HAS_STATE: u16 = 1;
/// Payload a block holds before the writer starts the next one: small
/// enough that resolving a key scans little, large enough that the block
/// index stays small (about 40 bytes per 16 KiB).
const BLOCK_BYTES: usize = 16 << 10;
/// The first number a compacted file gets; numbers below are log segments,
/// so a location tells which kind of file it points into.
pub const FIRST_HEAD_ID: u32 = MAX_LOG_SEGMENT_ID + 1;

/// The file name of compacted file `id`.
pub fn file_name(id: u32) -> String {
    format!("{id:08}.head")
}

/// The id in a compacted file's name (`NNNNNNNN.head`).
pub fn parse_name(name: &str) -> Option<u32> {
    let digits = name.strip_suffix(".head")?;
    let id: u32 =
        digits.parse().ok().filter(|_| digits.len() == 8 && digits.bytes().all(|b| b.is_ascii_digit()))?;
    (FIRST_HEAD_ID..crate::coalesce::FIRST_PENDING_ID).contains(&id).then_some(id)
}

/// What a compacted file covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadInfo {
    /// Its number (at least `FIRST_HEAD_ID`; a newer file has a larger one).
    pub id: u32,
    /// The last log position it replaces (it replaces 1 to this).
    pub last_position: u64,
    /// The version tag of that position's record.
    pub last_version: u64,
    /// Reads as of a version below this are answered "compacted" for every
    /// key (0: per key only; see `docs/format.md`).
    pub horizon: u64,
    /// When it was written (Unix milliseconds).
    pub created_ms: u64,
    /// End of its blocks of ops; its rows follow.
    pub data_end: u64,
    /// End of its rows (and of the file's data).
    pub table_end: u64,
    /// The log time of the record at `last_position`.
    pub last_time_ms: u64,
    /// The state of the newest applied record it replaced (whose version
    /// tag is `last_version`), if any.
    pub state: Option<[u8; STATE_LEN]>,
}

impl HeadInfo {
    fn encode(&self) -> [u8; HEAD_HEADER_LEN as usize] {
        let mut b = [0u8; HEAD_HEADER_LEN as usize];
        b[0..8].copy_from_slice(&HEAD_MAGIC);
        b[8..10].copy_from_slice(&HEAD_VERSION.to_le_bytes());
        let flags = if self.state.is_some() { HAS_STATE } else { 0 };
        b[10..12].copy_from_slice(&flags.to_le_bytes());
        b[12..16].copy_from_slice(&self.id.to_le_bytes());
        b[16..24].copy_from_slice(&self.last_position.to_le_bytes());
        b[24..32].copy_from_slice(&self.last_version.to_le_bytes());
        b[32..40].copy_from_slice(&self.horizon.to_le_bytes());
        b[40..48].copy_from_slice(&self.created_ms.to_le_bytes());
        b[48..56].copy_from_slice(&self.data_end.to_le_bytes());
        b[56..64].copy_from_slice(&self.table_end.to_le_bytes());
        b[64..72].copy_from_slice(&self.last_time_ms.to_le_bytes());
        b[72..72 + STATE_LEN].copy_from_slice(&self.state.unwrap_or_default());
        let crc = crc32c::crc32c(&b[..HEAD_CRC_AT]);
        b[HEAD_CRC_AT..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    pub(crate) fn decode(b: &[u8], path: &Path) -> Result<Self> {
        let bad = |detail: &str| corrupt(path, 0, detail);
        if b.len() < HEAD_HEADER_LEN as usize || b[0..8] != HEAD_MAGIC {
            return Err(bad("not a compacted file (bad magic)"));
        }
        let version = u16::from_le_bytes([b[8], b[9]]);
        if version < HEAD_VERSION {
            return Err(LogError::TooOld {
                file: path.to_path_buf(),
                found: version.into(),
                supported: HEAD_VERSION.into(),
            }
            .into());
        }
        if crc32c::crc32c(&b[..HEAD_CRC_AT]) != u32_at(b, HEAD_CRC_AT) {
            return Err(bad("header checksum mismatch"));
        }
        if version > HEAD_VERSION {
            return Err(LogError::TooNew {
                file: path.to_path_buf(),
                what: "compacted file version",
                found: version.into(),
                supported: HEAD_VERSION.into(),
            }
            .into());
        }
        Ok(Self {
            id: u32_at(b, 12),
            last_position: u64_at(b, 16),
            last_version: u64_at(b, 24),
            horizon: u64_at(b, 32),
            created_ms: u64_at(b, 40),
            data_end: u64_at(b, 48),
            table_end: u64_at(b, 56),
            last_time_ms: u64_at(b, 64),
            state: (u16::from_le_bytes([b[10], b[11]]) & HAS_STATE != 0)
                .then(|| b[72..72 + STATE_LEN].try_into().expect("32 bytes")),
        })
    }
}

fn corrupt(path: &Path, offset: u64, detail: &str) -> StoreError {
    LogError::Corruption { file: path.to_path_buf(), offset, detail: detail.into() }.into()
}

/// The first key of a block.
#[derive(Debug)]
struct BlockStart {
    keyspace: u32,
    key: Box<[u8]>,
    offset: u64,
}

/// An open compacted file.
pub struct Head {
    info: HeadInfo,
    path: PathBuf,
    /// Read with `pread` only, never mapped (see [`logkv_fs::read_with`]).
    file: Arc<dyn File>,
    blocks: Vec<BlockStart>,
    /// The first position of every row block, and where it starts.
    row_blocks: Vec<(u64, u64)>,
}

impl std::fmt::Debug for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Head").field("info", &self.info).field("path", &self.path).finish_non_exhaustive()
    }
}

/// One op of a compacted file, as the reader meets it.
#[derive(Debug, Clone, Copy)]
pub struct HeadOp<'a> {
    /// Its header.
    pub header: OpHeader,
    /// Its key.
    pub key: &'a [u8],
    /// Where it is.
    pub loc: Loc,
}

impl Head {
    /// Opens compacted file `id` at `path`: reads its header and the first
    /// key of every block (block checksums are checked when blocks are read
    /// whole, by [`Head::for_each`]).
    pub fn open(fs: &dyn FileSystem, path: &Path, id: u32) -> Result<Self> {
        let io = |e| StoreError::from(LogError::io(path, e));
        let file = fs.open(path).map_err(io)?;
        let len = file.len().map_err(io)?;
        if len < HEAD_HEADER_LEN {
            return Err(corrupt(path, 0, &format!("{len} bytes: shorter than a compacted file's header")));
        }
        let mut head = Self {
            info: HeadInfo {
                id,
                last_position: 0,
                last_version: 0,
                horizon: 0,
                created_ms: 0,
                data_end: 0,
                table_end: 0,
                last_time_ms: 0,
                state: None,
            },
            path: path.to_path_buf(),
            file,
            blocks: Vec::new(),
            row_blocks: Vec::new(),
        };
        let info = head.with_bytes(0, HEAD_HEADER_LEN as usize, |b| HeadInfo::decode(b, path))??;
        // The log goes on after the last position the file replaces.
        if info.id != id
            || info.last_position == u64::MAX
            || info.table_end > len
            || info.data_end < HEAD_HEADER_LEN
            || info.table_end < info.data_end
        {
            return Err(corrupt(path, 0, "header does not match the file"));
        }
        head.info = info;
        let mut offset = HEAD_HEADER_LEN;
        while offset < info.data_end {
            let start = offset + FRAME_HEADER_LEN as u64 + BATCH_HEADER_LEN as u64;
            let (len, first) = head
                .with_bytes(offset, FRAME_HEADER_LEN, |b| u32_at(b, 0) as u64)
                .and_then(|len| Ok((len, head.with_bytes(start, OP_HEADER_LEN, OpHeader::decode)?)))?;
            let Some(first) = first else {
                return Err(corrupt(path, offset, "block does not start with an op"));
            };
            let key = head.with_bytes(start + OP_HEADER_LEN as u64, first.key_len.into(), |k| k.into())?;
            head.blocks.push(BlockStart { keyspace: first.keyspace, key, offset });
            offset += FRAME_OVERHEAD as u64 + len;
        }
        if offset != info.data_end {
            return Err(corrupt(path, offset, "blocks do not end where the header says"));
        }
        while offset < info.table_end {
            let (len, first) = head.with_bytes(offset, FRAME_HEADER_LEN + 4 + 8, |b| {
                (u32_at(b, 0) as u64, u64_at(b, FRAME_HEADER_LEN + 4))
            })?;
            head.row_blocks.push((first, offset));
            offset += FRAME_OVERHEAD as u64 + len;
        }
        if offset != info.table_end {
            return Err(corrupt(path, offset, "rows do not end where the header says"));
        }
        Ok(head)
    }

    /// What the file covers.
    pub fn info(&self) -> &HeadInfo {
        &self.info
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Calls `f` with `len` bytes at `offset`.
    pub fn with_bytes<R>(&self, offset: u64, len: usize, f: impl FnOnce(&[u8]) -> R) -> Result<R> {
        if offset.checked_add(len as u64).is_none_or(|end| end > self.info.table_end.max(HEAD_HEADER_LEN)) {
            return Err(corrupt(&self.path, offset, &format!("read of {len} bytes runs past the data")));
        }
        logkv_fs::read_with(self.file.as_ref(), offset, len, f).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                corrupt(&self.path, offset, &format!("the file ends before the {len} bytes read here"))
            } else {
                LogError::io(&self.path, e).into()
            }
        })
    }

    /// The block at `offset`, checked, with its ops.
    fn block<R>(&self, offset: u64, f: impl FnOnce(&[OpRef<'_>]) -> Result<R>) -> Result<R> {
        self.frame(offset, |payload| {
            let ops = parse_ops(payload, 0, OpRule::Compacted)
                .map_err(|detail| corrupt(&self.path, offset, &detail))?;
            f(&ops)
        })
    }

    /// The payload of the frame at `offset`, checked.
    fn frame<R>(&self, offset: u64, f: impl FnOnce(&[u8]) -> Result<R>) -> Result<R> {
        let len = self.with_bytes(offset, 4, |b| u32_at(b, 0) as usize)?;
        self.with_bytes(offset, FRAME_OVERHEAD + len, |b| match read_frame(b) {
            FrameRead::Intact(frame) if frame.rtype == RecordType::Compacted as u8 => f(frame.payload),
            _ => Err(corrupt(&self.path, offset, "compacted block damaged")),
        })?
    }

    /// The rows of the row block at `offset`, checked.
    fn row_block(&self, offset: u64) -> Result<Vec<Row>> {
        self.frame(offset, |payload| Row::parse_block(payload).map_err(|d| corrupt(&self.path, offset, &d)))
    }

    /// The row kept of the record at `position`, if the file kept one.
    pub(crate) fn row(&self, position: u64) -> Result<Option<Row>> {
        let after = self.row_blocks.partition_point(|&(first, _)| first <= position);
        let Some(&(_, offset)) = after.checked_sub(1).map(|i| &self.row_blocks[i]) else { return Ok(None) };
        Ok(self.row_block(offset)?.into_iter().find(|r| r.position == position))
    }

    /// Calls `f` with every row, in position order.
    pub(crate) fn for_each_row(&self, f: &mut dyn FnMut(Row) -> Result<()>) -> Result<()> {
        for &(_, offset) in &self.row_blocks {
            self.row_block(offset)?.into_iter().try_for_each(&mut *f)?;
        }
        Ok(())
    }

    /// The newest version record of `key` in `keyspace`, if the file holds
    /// one.
    pub fn lookup(&self, keyspace: u32, key: &[u8]) -> Result<Option<(Loc, OpHeader)>> {
        let target = (keyspace, key);
        let after = self.blocks.partition_point(|b| (b.keyspace, &b.key[..]) <= target);
        let Some(block) = after.checked_sub(1).map(|i| &self.blocks[i]) else {
            return Ok(None);
        };
        let payload = block.offset + FRAME_HEADER_LEN as u64;
        self.block(block.offset, |ops| {
            Ok(ops
                .iter()
                .rev()
                .find(|o| o.header.keyspace == keyspace && o.key == key)
                .map(|o| (Loc::new(self.info.id, payload + o.offset as u64), o.header)))
        })
    }

    /// Distinct keys in the file, reading (and so checking) every block.
    pub fn keys(&self) -> Result<u64> {
        let mut keys = 0u64;
        let mut last: Option<(u32, Vec<u8>)> = None;
        self.for_each(
            &mut |op| {
                if last.as_ref().is_none_or(|(ks, k)| (*ks, &k[..]) != (op.header.keyspace, op.key)) {
                    keys += 1;
                    last = Some((op.header.keyspace, op.key.to_vec()));
                }
                Ok(())
            },
            &mut |_, _| {},
        )?;
        self.for_each_row(&mut |_| Ok(()))?;
        Ok(keys)
    }

    /// Calls `f` with every op in file order (keyspace, key, version),
    /// checking every block; `progress(bytes read, total)` between blocks.
    pub fn for_each(
        &self,
        f: &mut dyn FnMut(HeadOp<'_>) -> Result<()>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<()> {
        let mut last: Option<(u32, Vec<u8>, u64)> = None;
        for block in &self.blocks {
            let payload = block.offset + FRAME_HEADER_LEN as u64;
            self.block(block.offset, |ops| {
                for o in ops {
                    let here = (o.header.keyspace, o.key, o.header.version);
                    if let Some((ks, key, version)) = &last {
                        if (*ks, &key[..], *version) >= here {
                            return Err(corrupt(&self.path, payload + o.offset as u64, "ops out of order"));
                        }
                    }
                    last = Some((here.0, here.1.to_vec(), here.2));
                    f(HeadOp {
                        header: o.header,
                        key: o.key,
                        loc: Loc::new(self.info.id, payload + o.offset as u64),
                    })?;
                }
                Ok(())
            })?;
            progress(block.offset, self.info.data_end);
        }
        progress(self.info.data_end, self.info.data_end);
        Ok(())
    }
}

/// Writes a compacted file: ops in (keyspace, key, version) order go into
/// blocks, written to a temporary file that [`HeadWriter::finish`] syncs
/// and renames into place.
pub struct HeadWriter<'a> {
    fs: &'a dyn FileSystem,
    id: u32,
    tmp: PathBuf,
    path: PathBuf,
    file: Arc<dyn File>,
    /// The block being filled: its frame, payload after the header.
    block: Vec<u8>,
    block_ops: u32,
    blocks: u64,
    /// Where the block being filled will start.
    offset: u64,
    time_ms: u64,
    last: Option<(u32, Vec<u8>, u64)>,
    /// Where the ops ended, once rows started; the position of the last row.
    rows: Option<(u64, Option<u64>)>,
    /// Bytes written since the last sync.
    unsynced: u64,
    limiter: &'a mut dyn FnMut(u64),
}

/// What a compacted file says of the end of the log range it replaces.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RangeEnd {
    pub(crate) last_position: u64,
    pub(crate) last_version: u64,
    /// Reads below this are "compacted" for every key.
    pub(crate) horizon: u64,
    pub(crate) last_time_ms: u64,
    /// The state of the newest applied record in the range.
    pub(crate) state: Option<[u8; STATE_LEN]>,
}

/// Bytes the writer lets pile up before syncing them: syncing its own
/// file as it goes keeps its dirty pages from landing on a foreground
/// sync of the log.
const SYNC_EVERY_BYTES: u64 = 8 << 20;

impl<'a> HeadWriter<'a> {
    /// Starts compacted file `id` at `path` (written as `path.tmp` until
    /// finished). `limiter(bytes)` is called before each block is written
    /// (to rate-limit).
    pub fn create(
        fs: &'a dyn FileSystem,
        path: &Path,
        id: u32,
        time_ms: u64,
        limiter: &'a mut dyn FnMut(u64),
    ) -> Result<Self> {
        let path = path.to_path_buf();
        let mut tmp = path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let file = fs.create(&tmp).map_err(|e| LogError::io(&tmp, e))?;
        let mut w = Self {
            fs,
            id,
            tmp,
            path,
            file,
            block: Vec::new(),
            block_ops: 0,
            blocks: 0,
            offset: HEAD_HEADER_LEN,
            time_ms,
            last: None,
            rows: None,
            unsynced: 0,
            limiter,
        };
        w.start_block();
        Ok(w)
    }

    fn start_block(&mut self) {
        self.block.clear();
        self.blocks += 1;
        begin_frame(&mut self.block, RecordType::Compacted, self.blocks, self.time_ms, BATCH_HEADER_LEN);
        self.block_ops = 0;
    }

    /// Adds an op; returns where it will be. Ops must come in strictly
    /// increasing (keyspace, key, version) order.
    pub fn push(
        &mut self,
        keyspace: u32,
        key: &[u8],
        version: u64,
        value: Option<&[u8]>,
        prev: Option<Loc>,
        truncated: bool,
    ) -> Result<Loc> {
        let here = (keyspace, key, version);
        if self.rows.is_some() {
            return Err(StoreError::Invalid("compaction output: an op after the rows".into()));
        }
        if self.last.as_ref().is_some_and(|(ks, k, v)| (*ks, &k[..], *v) >= here) {
            return Err(StoreError::Invalid(format!("compaction output out of order at version {version}")));
        }
        self.last = Some((keyspace, key.to_vec(), version));
        let header = OpHeader {
            kind: if value.is_some() { OpKind::Put } else { OpKind::Delete },
            key_len: key.len() as u16,
            value_len: value.map_or(0, |v| v.len() as u32),
            keyspace,
            version,
            prev,
            truncated,
            crc: value_crc(key, value.unwrap_or_default()),
        };
        let at = self.block.len();
        let loc = Loc::new(self.id, self.offset + at as u64);
        self.block.resize(at + header.op_len(), 0);
        header.encode(&mut self.block[at..]);
        self.block[at + OP_HEADER_LEN..at + OP_HEADER_LEN + key.len()].copy_from_slice(key);
        if let Some(v) = value {
            self.block[at + OP_HEADER_LEN + key.len()..].copy_from_slice(v);
        }
        self.block_ops += 1;
        if self.block.len() - FRAME_HEADER_LEN >= BLOCK_BYTES {
            self.write_block()?;
        }
        Ok(loc)
    }

    /// Adds the row of a replaced record, after every op; rows must come
    /// in increasing position order.
    pub(crate) fn push_row(&mut self, row: &Row) -> Result<()> {
        let data_end = match self.rows {
            Some((data_end, last)) if last.is_none_or(|l| l < row.position) => data_end,
            Some(_) => return Err(StoreError::Invalid(format!("row {} out of order", row.position))),
            None => {
                self.write_block()?;
                self.offset
            }
        };
        self.rows = Some((data_end, Some(row.position)));
        let at = self.block.len();
        self.block.resize(at + row.len(), 0);
        row.encode(&mut self.block[at..]);
        self.block_ops += 1;
        if self.block.len() - FRAME_HEADER_LEN >= BLOCK_BYTES {
            self.write_block()?;
        }
        Ok(())
    }

    fn write_block(&mut self) -> Result<()> {
        if self.block_ops == 0 {
            return Ok(());
        }
        let payload_len = (self.block.len() - FRAME_HEADER_LEN) as u32;
        self.block[0..4].copy_from_slice(&payload_len.to_le_bytes());
        self.block[FRAME_HEADER_LEN..FRAME_HEADER_LEN + 4].copy_from_slice(&self.block_ops.to_le_bytes());
        seal_frame(&mut self.block, 0);
        (self.limiter)(self.block.len() as u64);
        let io = |e| StoreError::from(LogError::io(&self.tmp, e));
        self.file.write_at(&self.block, self.offset).map_err(io)?;
        self.offset += self.block.len() as u64;
        self.unsynced += self.block.len() as u64;
        if self.unsynced >= SYNC_EVERY_BYTES {
            self.file.sync_data().map_err(io)?;
            self.unsynced = 0;
        }
        self.start_block();
        Ok(())
    }

    /// Writes the last block and the header, syncs the file, renames it into
    /// place and syncs the directory: from then on the file replaces the
    /// log up to `end.last_position`.
    pub(crate) fn finish(mut self, end: RangeEnd) -> Result<Head> {
        self.write_block()?;
        let info = HeadInfo {
            id: self.id,
            last_position: end.last_position,
            last_version: end.last_version,
            horizon: end.horizon,
            created_ms: self.time_ms,
            data_end: self.rows.map_or(self.offset, |(data_end, _)| data_end),
            table_end: self.offset,
            last_time_ms: end.last_time_ms,
            state: end.state,
        };
        let io = |p: &Path, e| StoreError::from(LogError::io(p, e));
        self.file.write_at(&info.encode(), 0).map_err(|e| io(&self.tmp, e))?;
        self.file.sync_data().map_err(|e| io(&self.tmp, e))?;
        self.fs.rename(&self.tmp, &self.path).map_err(|e| io(&self.path, e))?;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        self.fs.sync_dir(dir).map_err(|e| io(dir, e))?;
        Head::open(self.fs, &self.path, self.id)
    }

    /// Abandons the file (on error or cancel).
    pub fn abandon(self) {
        let _ = self.fs.remove_file(&self.tmp);
    }
}
