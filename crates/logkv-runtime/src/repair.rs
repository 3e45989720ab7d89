//! Repairing a shared-log node's local log from the stream: each damaged
//! stretch of a segment is written again, byte for byte, at the same
//! offsets (docs/distributed.md, "Repair").
//!
//! An `Applied` record is not a function of its entry alone: its state
//! digest, results, anti-replay windows and access-control facts depend on
//! the state before it, and every op's `prev` is the location of the key's
//! previous version in this very log. It is a function of the entry and
//! the log before it, though, since apply is deterministic and the frame's
//! position and log time come from the log. So the stretch is reproduced
//! by replaying: a scratch copy of the log up to the damage is opened as a
//! node, the stream's entries from there up to the first intact record
//! after the damage are applied to it, and the scratch copy's new bytes
//! are accepted only if that intact record comes out identical, at the
//! same segment and offset — which pins down every byte before it (offsets,
//! positions, times, and the state its digest covers). Only then are they
//! written over the damage and synced. Anything else (a damaged segment
//! header, no intact record after the damage, the stream trimmed below
//! it, a mismatch) is [`RepairError`], and the node must be rebuilt from a
//! peer's export instead.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use logkv_fs::LockError;
use logkv_log::format::{find_intact_frame, read_frame, u64_at, FrameRead, RecordType, SegmentHeader};
use logkv_log::inspect::inspect_from;
use logkv_log::{LogError, Segment};
use logkv_store::{
    checkpoint_position, compacted_file_id, inspect_compacted, MaintenanceOptions, StoreError, LOCK_FILE,
};

use crate::node::{Node, NodeError, NodeOptions};
use crate::shared_log::{LogEntry, SharedLogError};
use crate::types::version_position;

/// Where a segment is damaged, as verification found it: its first
/// damaged byte, where a frame should start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamagedRange {
    /// The segment's number.
    pub segment: u32,
    /// Offset of the damaged frame (0: the segment header).
    pub offset: u64,
    /// What verification found there.
    pub detail: String,
}

/// A stretch written again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repaired {
    /// The segment file.
    pub file: PathBuf,
    /// Where the rewritten bytes start.
    pub offset: u64,
    /// How many bytes were written.
    pub bytes: u64,
    /// The node's own log positions of the records rewritten.
    pub positions: std::ops::RangeInclusive<u64>,
    /// The stream positions their entries were fetched from.
    pub stream_positions: std::ops::RangeInclusive<u64>,
}

/// What [`repair_records`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepairReport {
    /// The stretches written again, in order.
    pub repaired: Vec<Repaired>,
}

/// Why a stretch could not be reproduced in place.
#[derive(Debug, thiserror::Error)]
pub enum RepairError {
    /// The damage cannot be reproduced from the stream: the node's copy
    /// must be rebuilt from a peer's export.
    #[error("{file} at offset {offset}: cannot be reproduced from the stream: {why}")]
    Unreproducible {
        /// The segment file.
        file: PathBuf,
        /// The damaged offset.
        offset: u64,
        /// Why.
        why: String,
    },
    /// The stream could not hand over the entries (trimmed, unreachable).
    #[error("fetching the damaged records' entries: {0}")]
    Stream(#[from] SharedLogError),
    /// The scratch copy could not be opened or applied to.
    #[error("replaying into the scratch copy: {0}")]
    Node(#[from] NodeError),
    /// The log could not be verified.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The compacted file could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A file could not be read, copied or written.
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
}

/// Hands over a shared log's entries by position, as the node would have
/// received them (the same watched streams).
pub trait EntrySource {
    /// The entries from `from` through `through`, in order.
    fn entries(&self, from: u64, through: u64) -> Result<Vec<LogEntry>, SharedLogError>;
}

/// The damage in `dir`'s segments that intact records follow: what a
/// strict open refuses and what [`repair_records`] can take. Damage with
/// nothing intact after it is a torn tail, which recovery cuts off and the
/// node fetches again from the stream.
pub fn find_damage(options: &NodeOptions, dir: &Path) -> Result<Vec<DamagedRange>, RepairError> {
    let fs = &*options.store.fs;
    let first_position = inspect_compacted(fs, dir)?.map_or(1, |(info, _)| info.last_position + 1);
    let infos = inspect_from(fs, dir, first_position)?;
    Ok(infos
        .into_iter()
        .filter_map(|info| {
            let damage = info.damage.filter(|d| d.intact_follows)?;
            let name = info.file.file_name()?.to_str()?;
            let segment = Segment::parse_name(name)?;
            Some(DamagedRange { segment, offset: damage.offset, detail: damage.detail })
        })
        .collect())
}

/// Repairs every damaged stretch [`find_damage`] finds in a stopped
/// node's directory, holding its lock, until none is left (a segment's
/// verification stops at its first damage, so another may show once that
/// is repaired).
pub fn repair(
    options: &NodeOptions,
    dir: &Path,
    source: &dyn EntrySource,
) -> Result<RepairReport, RepairError> {
    let holder = format!("pid {} (repair)", std::process::id());
    let _lock = options.store.fs.lock(&dir.join(LOCK_FILE), &holder).map_err(|e| match e {
        LockError::Held { holder } => StoreError::Locked { dir: dir.to_path_buf(), holder }.into(),
        LockError::Io(e) => RepairError::Io(dir.join(LOCK_FILE), e),
    })?;
    let mut report = RepairReport::default();
    loop {
        let damaged = find_damage(options, dir)?;
        let Some(first) = damaged.first() else { return Ok(report) };
        let done = repair_records(options, dir, std::slice::from_ref(first), source)?;
        report.repaired.extend(done.repaired);
    }
}

/// Writes each damaged stretch of `damaged` again from `source`, byte for
/// byte (see the module's documentation), in the node directory `dir`
/// opened with `options`. The caller holds the directory: [`repair`] its
/// lock, or a running node (a scrubber's finding) its store, whose readers
/// see the repaired bytes once they are written. Only sealed segments may
/// be given. Stops at the first stretch that cannot be repaired.
pub fn repair_records(
    options: &NodeOptions,
    dir: &Path,
    damaged: &[DamagedRange],
    source: &dyn EntrySource,
) -> Result<RepairReport, RepairError> {
    let mut report = RepairReport::default();
    for range in damaged {
        report.repaired.push(repair_one(options, dir, range, source)?);
    }
    Ok(report)
}

/// The first intact record after the damage: where the log resumes.
struct Anchor {
    segment: u32,
    offset: u64,
    /// Its frame, exactly as stored.
    frame: Vec<u8>,
    /// Its position in the node's log.
    position: u64,
    /// Its entry's position in the stream.
    stream_position: u64,
}

fn repair_one(
    options: &NodeOptions,
    dir: &Path,
    range: &DamagedRange,
    source: &dyn EntrySource,
) -> Result<Repaired, RepairError> {
    let path = dir.join(Segment::file_name(range.segment));
    let unreproducible =
        |why: String| RepairError::Unreproducible { file: path.clone(), offset: range.offset, why };
    let bytes = read(&path)?;
    let header = SegmentHeader::decode(&bytes)
        .map_err(|e| unreproducible(format!("the segment header is unreadable ({e:?})")))?;
    let damaged_position = position_at(&bytes, header.first_position, range.offset)
        .ok_or_else(|| unreproducible("the records before the damage do not end where it starts".into()))?;
    let anchor = anchor_after(dir, range, &bytes, damaged_position)
        .ok_or_else(|| unreproducible("no intact record follows the damage".into()))?;

    let scratch = scratch_dir(dir);
    let replayed = (|| {
        let capacity = options.store.log.segment_size_bytes;
        copy_before(dir, &scratch, (range, capacity), &bytes, damaged_position)?;
        replay_through(options, &scratch, &anchor, source)
    })();
    let written = replayed.and_then(|stream_from| {
        let fresh = read(&scratch.join(Segment::file_name(range.segment)))?;
        let anchor_file = scratch.join(Segment::file_name(anchor.segment));
        let anchored = read(&anchor_file)?;
        let at = anchor.offset as usize;
        if anchored.get(at..at + anchor.frame.len()) != Some(&anchor.frame[..]) {
            return Err(unreproducible(format!(
                "replaying the stream from position {stream_from} did not reproduce the intact record at \
                 position {} (the stream or the node's settings differ from when it was written)",
                anchor.position
            )));
        }
        // An anchor in the next segment: the damaged one is written again
        // to its end (its unwritten space included).
        let end = if anchor.segment == range.segment { anchor.offset as usize } else { fresh.len() };
        let patch = &fresh[range.offset as usize..end];
        write_synced(&path, range.offset, patch)?;
        Ok(Repaired {
            file: path.clone(),
            offset: range.offset,
            bytes: patch.len() as u64,
            positions: damaged_position..=anchor.position - 1,
            stream_positions: stream_from..=anchor.stream_position - 1,
        })
    });
    let _ = std::fs::remove_dir_all(&scratch);
    written
}

/// The position of the record at `offset`, walking the intact frames from
/// the start of the segment; `None` if they do not end exactly there.
fn position_at(bytes: &[u8], first_position: u64, offset: u64) -> Option<u64> {
    let mut off = Segment::data_start() as usize;
    let mut position = first_position;
    while (off as u64) < offset {
        let FrameRead::Intact(frame) = read_frame(&bytes[off..]) else { return None };
        off += frame.len();
        position += 1;
    }
    (off as u64 == offset).then_some(position)
}

/// The first intact record after the damage: later in the same segment,
/// or else the first of the next one.
fn anchor_after(dir: &Path, range: &DamagedRange, bytes: &[u8], damaged: u64) -> Option<Anchor> {
    let later = damaged + 1..damaged + (1 << 32);
    let (segment, offset, next_bytes) = match find_intact_frame(bytes, range.offset as usize + 1, later) {
        Some(off) => (range.segment, off as u64, None),
        None => {
            let next = range.segment + 1;
            let next_bytes = std::fs::read(dir.join(Segment::file_name(next))).ok()?;
            SegmentHeader::decode(&next_bytes).ok().filter(|h| h.segment == next)?;
            (next, Segment::data_start(), Some(next_bytes))
        }
    };
    let bytes = next_bytes.as_deref().unwrap_or(bytes);
    let FrameRead::Intact(frame) = read_frame(&bytes[offset as usize..]) else { return None };
    if frame.rtype != RecordType::Applied as u8 || frame.payload.len() < 8 {
        return None;
    }
    Some(Anchor {
        segment,
        offset,
        frame: bytes[offset as usize..offset as usize + frame.len()].to_vec(),
        position: frame.position,
        stream_position: version_position(u64_at(frame.payload, 0)),
    })
}

/// Where the scratch copy goes: beside the data directory, so it is on the
/// same disk and never taken for a file of the node's.
fn scratch_dir(dir: &Path) -> PathBuf {
    let mut name = dir.file_name().map(|n| n.to_os_string()).unwrap_or_else(|| "data".into());
    name.push(".repair-scratch");
    dir.with_file_name(name)
}

/// Copies into `scratch` what the node's log was just before the damaged
/// record was appended: the compacted file, the checkpoints below it, the
/// segments before its segment, and its segment cut at the damage (zeros
/// after it, as unwritten space reads) and at least `capacity` long, so a
/// segment cut short gets back the room its records were written in.
fn copy_before(
    dir: &Path,
    scratch: &Path,
    (range, capacity): (&DamagedRange, u64),
    bytes: &[u8],
    damaged: u64,
) -> Result<(), RepairError> {
    if scratch.exists() {
        // Left by a repair that was interrupted: nothing in it is the node's.
        std::fs::remove_dir_all(scratch).map_err(|e| RepairError::Io(scratch.into(), e))?;
    }
    std::fs::create_dir(scratch).map_err(|e| RepairError::Io(scratch.into(), e))?;
    let entries = std::fs::read_dir(dir).map_err(|e| RepairError::Io(dir.into(), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| RepairError::Io(dir.into(), e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let keep = match Segment::parse_name(&name) {
            Some(id) => id < range.segment,
            None => {
                compacted_file_id(&name).is_some() || checkpoint_position(&name).is_some_and(|p| p < damaged)
            }
        };
        if keep {
            std::fs::copy(entry.path(), scratch.join(&*name))
                .map_err(|e| RepairError::Io(entry.path(), e))?;
        }
    }
    let mut cut = bytes[..range.offset as usize].to_vec();
    cut.resize(bytes.len().max(capacity as usize), 0);
    let path = scratch.join(Segment::file_name(range.segment));
    let mut file = File::create(&path).map_err(|e| RepairError::Io(path.clone(), e))?;
    file.write_all(&cut).map_err(|e| RepairError::Io(path, e))
}

/// Opens the scratch copy as a node and applies the stream's entries after
/// its applied position up to the anchor's. Returns the first stream
/// position applied.
fn replay_through(
    options: &NodeOptions,
    scratch: &Path,
    anchor: &Anchor,
    source: &dyn EntrySource,
) -> Result<u64, RepairError> {
    let mut options = options.clone();
    // Nothing may rewrite or add to the copy but the replay itself.
    options.store.maintenance = MaintenanceOptions {
        checkpoint_interval_bytes: 0,
        compact_min_bytes: u64::MAX,
        ..options.store.maintenance
    };
    let node = Node::open(scratch, options)?;
    let from = node.replay_progress().applied_position + 1;
    let entries = source.entries(from, anchor.stream_position)?;
    node.apply_replicated_batch(&entries)?;
    node.close()?;
    Ok(from)
}

fn read(path: &Path) -> Result<Vec<u8>, RepairError> {
    std::fs::read(path).map_err(|e| RepairError::Io(path.into(), e))
}

/// Writes `patch` at `offset` of the segment file and syncs it.
fn write_synced(path: &Path, offset: u64, patch: &[u8]) -> Result<(), RepairError> {
    let io = |e| RepairError::Io(path.into(), e);
    let file = OpenOptions::new().write(true).open(path).map_err(io)?;
    file.write_all_at(patch, offset).map_err(io)?;
    file.sync_data().map_err(io)
}
