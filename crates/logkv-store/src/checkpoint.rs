//! Checkpoints: the whole index as of one record, written in the
//! background and loaded in bulk at open, so a restart replays only the
//! log after it (see `docs/format.md`, "Checkpoint file").
//!
//! Besides the index, the header keeps the log time of the record at the
//! checkpoint's position and the newest applied record's state, so an
//! open that replays nothing still continues the log's times and answers
//! `newest_state`. Since version 3 it also lists the extent of every sealed
//! segment it covers, so an open that skips those segments can still check
//! they are whole ([`logkv_log::SegmentExtent`]); a version 2 checkpoint is
//! still read, and the segments it covers are then read too.
//!
//! ```text
//! header (128 bytes): magic "LOGKVCKP" | version u16 | reserved u16 | head_id u32 |
//!     position u64 | version u64 | live u64 | created_ms u64 | keyspaces u32 |
//!     superseded_bytes u64 | time_ms u64 | state_version u64 | state 32 bytes |
//!     flags u16 (bit 0: state) | segments u32 (v3) | reserved 10 | crc32c u32 (of bytes 0..124)
//! per keyspace, ascending: keyspace u32 | count u64 | count x (key_len u16 | key | meta u64)
//! (v3) per segment, ascending: id u32 | first_position u64 | last_position u64 | last_frame u64
//! crc32c u32 of every byte after the header
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use logkv_fs::FileSystem;
use logkv_log::format::{u32_at, u64_at, MAX_LOG_SEGMENT_ID, MAX_SEGMENT_BYTES};
use logkv_log::{LogError, SegmentExtent};

use crate::error::{Result, StoreError};
use crate::index::Builder;
use crate::keyspaces::{Keyspaces, KeyspacesSnapshot, Through, DELETED};

/// First bytes of a checkpoint file.
pub const CHECKPOINT_MAGIC: [u8; 8] = *b"LOGKVCKP";
/// The checkpoint format this code writes.
pub const CHECKPOINT_VERSION: u16 = 3;
/// The oldest checkpoint format this code reads (no segment extents).
const OLDEST_READ_VERSION: u16 = 2;
/// Bytes of one segment extent.
pub(crate) const EXTENT_LEN: usize = 28;
pub(crate) const HEADER_LEN: usize = 128;
/// Bytes of the header the checksum covers (the checksum follows).
const CRC_AT: usize = 124;
/// Checkpoints kept: the newest, and one to fall back on if it is damaged.
pub const KEEP: usize = 2;
/// Bytes buffered before a write while encoding.
const WRITE_BYTES: usize = 1 << 20;

/// The file name of the checkpoint at `position`.
pub fn file_name(position: u64) -> String {
    format!("checkpoint-{position:020}.ckpt")
}

/// The position in a checkpoint's file name (`checkpoint-P.ckpt`, P in 20 digits).
pub fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("checkpoint-")?.strip_suffix(".ckpt")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok())?
}

/// The checkpoints in `dir`, newest first.
pub fn list(fs: &dyn FileSystem, dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let names = fs.list_dir(dir).map_err(|e| LogError::io(dir, e))?;
    let mut found: Vec<(u64, PathBuf)> =
        names.iter().filter_map(|n| parse_name(n).map(|p| (p, dir.join(n)))).collect();
    found.sort_unstable_by_key(|f| std::cmp::Reverse(f.0));
    Ok(found)
}

/// What a checkpoint says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointInfo {
    /// The compacted file the index pointed into when it was taken (0: none).
    pub head_id: u32,
    /// The last record it includes.
    pub position: u64,
    /// That record's version tag.
    pub version: u64,
    /// Live keys.
    pub live: u64,
    /// When it was written (Unix milliseconds).
    pub created_ms: u64,
    /// Keyspaces in it.
    pub keyspaces: u32,
    /// Bytes superseded since the last compaction (see `Keyspaces`).
    pub superseded_bytes: u64,
    /// The log time of the record at `position`.
    pub time_ms: u64,
    /// The state of the newest applied record and its version tag.
    pub state: Option<([u8; 32], u64)>,
    /// The format version it was written in.
    pub format: u16,
    /// Sealed segments it covers, listed in the body (0 before version 3).
    pub segments: u32,
}

impl CheckpointInfo {
    fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&CHECKPOINT_MAGIC);
        b[8..10].copy_from_slice(&CHECKPOINT_VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&self.head_id.to_le_bytes());
        b[16..24].copy_from_slice(&self.position.to_le_bytes());
        b[24..32].copy_from_slice(&self.version.to_le_bytes());
        b[32..40].copy_from_slice(&self.live.to_le_bytes());
        b[40..48].copy_from_slice(&self.created_ms.to_le_bytes());
        b[48..52].copy_from_slice(&self.keyspaces.to_le_bytes());
        b[52..60].copy_from_slice(&self.superseded_bytes.to_le_bytes());
        b[60..68].copy_from_slice(&self.time_ms.to_le_bytes());
        if let Some((state, version)) = self.state {
            b[68..76].copy_from_slice(&version.to_le_bytes());
            b[76..108].copy_from_slice(&state);
            b[108] = 1;
        }
        b[110..114].copy_from_slice(&self.segments.to_le_bytes());
        let crc = crc32c::crc32c(&b[..CRC_AT]);
        b[CRC_AT..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    pub(crate) fn decode(b: &[u8]) -> std::result::Result<Self, String> {
        if b.len() < HEADER_LEN || b[..8] != CHECKPOINT_MAGIC {
            return Err("not a checkpoint (bad magic)".into());
        }
        let version = u16::from_le_bytes([b[8], b[9]]);
        if !(OLDEST_READ_VERSION..=CHECKPOINT_VERSION).contains(&version) {
            return Err(format!(
                "checkpoint format {version}, this logkv reads {OLDEST_READ_VERSION} to {CHECKPOINT_VERSION}"
            ));
        }
        if crc32c::crc32c(&b[..CRC_AT]) != u32_at(b, CRC_AT) {
            return Err("header checksum mismatch".into());
        }
        Ok(Self {
            head_id: u32_at(b, 12),
            position: u64_at(b, 16),
            version: u64_at(b, 24),
            live: u64_at(b, 32),
            created_ms: u64_at(b, 40),
            keyspaces: u32_at(b, 48),
            superseded_bytes: u64_at(b, 52),
            time_ms: u64_at(b, 60),
            state: (b[108] & 1 != 0).then(|| (b[76..108].try_into().expect("32 bytes"), u64_at(b, 68))),
            format: version,
            segments: if version >= 3 { u32_at(b, 110) } else { 0 },
        })
    }
}

/// Writes `snapshot` as the checkpoint file for its position in `dir`:
/// a temporary file, synced, renamed into place, directory synced. The
/// caller must have made the log durable through the snapshot's position,
/// whose log time is `time_ms`, and `segments` are the sealed segments it
/// covers ([`logkv_log::FileLog::sealed_extents`]). Returns the file and
/// its size.
pub fn write(
    fs: &dyn FileSystem,
    dir: &Path,
    snapshot: &KeyspacesSnapshot,
    head_id: u32,
    created_ms: u64,
    time_ms: u64,
    segments: &[SegmentExtent],
) -> Result<(PathBuf, u64)> {
    let Through { position, version } = snapshot.through;
    let path = dir.join(file_name(position));
    let tmp = dir.join(format!("{}.tmp", file_name(position)));
    let io = |p: &Path, e| StoreError::from(LogError::io(p, e));
    let file = fs.create(&tmp).map_err(|e| io(&tmp, e))?;
    let info = CheckpointInfo {
        head_id,
        position,
        version,
        live: snapshot.live,
        created_ms,
        keyspaces: snapshot.spaces.len() as u32,
        superseded_bytes: snapshot.superseded_bytes,
        time_ms,
        state: snapshot.newest_state,
        format: CHECKPOINT_VERSION,
        segments: segments.len() as u32,
    };
    let mut offset = HEADER_LEN as u64;
    let mut crc = 0u32;
    let mut buf = Vec::with_capacity(WRITE_BYTES + 64 * 1024);
    let mut flush = |buf: &mut Vec<u8>, crc: &mut u32| -> Result<()> {
        *crc = crc32c::crc32c_append(*crc, buf);
        file.write_at(buf, offset).map_err(|e| io(&tmp, e))?;
        offset += buf.len() as u64;
        buf.clear();
        Ok(())
    };
    for (keyspace, index) in &snapshot.spaces {
        buf.extend_from_slice(&keyspace.to_le_bytes());
        buf.extend_from_slice(&(index.len() as u64).to_le_bytes());
        for (key, meta) in index.iter() {
            buf.extend_from_slice(&(key.len() as u16).to_le_bytes());
            buf.extend_from_slice(key);
            buf.extend_from_slice(&meta.to_le_bytes());
            if buf.len() >= WRITE_BYTES {
                flush(&mut buf, &mut crc)?;
            }
        }
    }
    for e in segments {
        buf.extend_from_slice(&e.id.to_le_bytes());
        buf.extend_from_slice(&e.first_position.to_le_bytes());
        buf.extend_from_slice(&e.last_position.to_le_bytes());
        buf.extend_from_slice(&e.last_frame.to_le_bytes());
    }
    flush(&mut buf, &mut crc)?;
    buf.extend_from_slice(&crc.to_le_bytes());
    file.write_at(&buf, offset).map_err(|e| io(&tmp, e))?;
    let size = offset + 4;
    file.write_at(&info.encode(), 0).map_err(|e| io(&tmp, e))?;
    file.sync_data().map_err(|e| io(&tmp, e))?;
    drop(file);
    fs.rename(&tmp, &path).map_err(|e| io(&path, e))?;
    fs.sync_dir(dir).map_err(|e| io(dir, e))?;
    Ok((path, size))
}

/// A checkpoint read back: its header and the index it holds.
pub struct Loaded {
    pub info: CheckpointInfo,
    pub index: Keyspaces,
    /// The sealed segments it covers (none from a version 2 checkpoint).
    pub segments: Vec<SegmentExtent>,
    /// Keys it holds.
    pub keys: u64,
}

/// Why a checkpoint could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damaged(pub String);

/// Reads the checkpoint at `path`, checking every byte against its
/// checksums. An unreadable or damaged checkpoint is `Ok(Err(..))`, so the
/// caller can fall back to an older one; I/O errors are `Err`.
pub fn load(fs: &dyn FileSystem, path: &Path) -> Result<std::result::Result<Loaded, Damaged>> {
    let io = |e| StoreError::from(LogError::io(path, e));
    let file = fs.open(path).map_err(io)?;
    let len = file.len().map_err(io)?;
    let mut bytes = vec![0u8; len as usize];
    match file.read_exact_at(&mut bytes, 0) {
        Ok(()) => Ok(parse(&bytes).map_err(Damaged)),
        // Cut short since its length was read: damaged, like any other.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(Err(Damaged(e.to_string()))),
        Err(e) => Err(io(e)),
    }
}

fn parse(bytes: &[u8]) -> std::result::Result<Loaded, String> {
    let info = CheckpointInfo::decode(bytes)?;
    // Superseded bytes are bytes of the log, which holds at most this
    // many; replay and writes add to the count.
    let log_bytes = (u64::from(MAX_LOG_SEGMENT_ID) + 1) * MAX_SEGMENT_BYTES;
    if info.superseded_bytes > log_bytes {
        return Err(format!("{} superseded bytes, more than a log can hold", info.superseded_bytes));
    }
    if bytes.len() < HEADER_LEN + 4 {
        return Err("shorter than a checkpoint".into());
    }
    let body = &bytes[HEADER_LEN..bytes.len() - 4];
    if crc32c::crc32c(body) != u32_at(bytes, bytes.len() - 4) {
        return Err("checksum mismatch".into());
    }
    let extents_len = info.segments as usize * EXTENT_LEN;
    let Some(keys_len) = body.len().checked_sub(extents_len) else {
        return Err(format!("{} segments listed, more than the file holds", info.segments));
    };
    let (body, extents) = body.split_at(keys_len);
    let segments: Vec<SegmentExtent> = extents
        .chunks_exact(EXTENT_LEN)
        .map(|e| SegmentExtent {
            id: u32_at(e, 0),
            first_position: u64_at(e, 4),
            last_position: u64_at(e, 12),
            last_frame: u64_at(e, 20),
        })
        .collect();
    let short = || "entries run past the end".to_string();
    let mut at = 0usize;
    let mut spaces = BTreeMap::new();
    let mut live = 0u64;
    for _ in 0..info.keyspaces {
        let head = body.get(at..at + 12).ok_or_else(short)?;
        let (keyspace, count) = (u32_at(head, 0), u64_at(head, 4));
        at += 12;
        let mut builder = Builder::default();
        for _ in 0..count {
            let key_len =
                body.get(at..at + 2).map(|b| u16::from_le_bytes([b[0], b[1]]) as usize).ok_or_else(short)?;
            let entry = body.get(at + 2..at + 2 + key_len + 8).ok_or_else(short)?;
            let meta = u64_at(entry, key_len);
            live += u64::from(meta & DELETED == 0);
            builder.push(&entry[..key_len], meta).map_err(|e| e.to_string())?;
            at += 2 + key_len + 8;
        }
        if spaces.insert(keyspace, builder.finish()).is_some() {
            return Err(format!("keyspace {keyspace} appears twice"));
        }
    }
    if at != body.len() {
        return Err(format!("{} bytes after the last keyspace", body.len() - at));
    }
    // Replay counts live keys down from the header's count.
    if live != info.live {
        return Err(format!("the header counts {} live keys, the index holds {live}", info.live));
    }
    let through = Through { position: info.position, version: info.version };
    let keys = spaces.values().map(|i| i.len() as u64).sum();
    let mut index = Keyspaces::from_parts(spaces, info.live, through);
    index.superseded_bytes = info.superseded_bytes;
    index.newest_state = info.state;
    Ok(Loaded { info, index, segments, keys })
}
