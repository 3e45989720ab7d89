//! Opening a log: scan every segment in order, hand each intact record to the
//! caller, and decide what to do with the first damage found.
//!
//! The rule (documented in `docs/format.md`): damage is a *torn tail* — the
//! normal result of a crash — when it looks like a write that was cut short
//! (a zero where a frame's end byte should be, data after unwritten space, a
//! gap in positions right after a segment's clean end), or when no intact
//! record follows it anywhere. A torn tail is truncated and
//! reported. Any other damage is `Corruption` naming file and offset, unless
//! the user opened with [`RecoveryMode::TruncateAtCorruption`].
//!
//! Two rules keep an open from dropping what was durable. A log that would
//! end (cleanly, or cut at damage) before [`ReplayStart::durable`] lost
//! acknowledged records: corruption, whatever the damage looks like. And a
//! sealed segment replay skips (a checkpoint covers it) is first checked
//! against the extent the checkpoint recorded ([`SegmentExtent`]): header,
//! and the frame of its last record; one that fails is read like any other,
//! so its damage is judged by the rules above.

use std::path::{Path, PathBuf};

use logkv_fs::FileSystem;

use crate::config::RecoveryMode;
use crate::error::{LogError, Result};
use crate::format::{
    intact_frame_from, read_frame, read_frame_in_segment, u32_at, u64_at, FrameRead, HeaderError, Loc,
    RecordType, SegmentHeader, FORMAT_VERSION, FRAME_END, FRAME_HEADER_LEN, FRAME_OVERHEAD,
    SEGMENT_HEADER_LEN,
};
use crate::segment::Segment;

/// Replay reports progress at least this often within a segment.
const PROGRESS_STEP_BYTES: usize = 4 << 20;

/// Where replay begins: what the caller already knows from a checkpoint
/// or a compacted file, so that only the records after it are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayStart {
    /// Position the oldest segment must start at: 1, or the position after
    /// the last one a compacted file covers (its segments were removed).
    pub first_position: u64,
    /// Records up to this position are already known: segments wholly
    /// before it are not read, and its records are not visited (0: visit
    /// all).
    pub known_through: u64,
    /// The log time of the record at `known_through`: no record after it
    /// gets an earlier time, even when no segment holds that record.
    pub time_ms: u64,
    /// The sealed segments up to `known_through` as they were when the
    /// caller's checkpoint was written ([`crate::FileLog::sealed_extents`]).
    /// A segment before `known_through` is skipped only if it is listed
    /// and still matches its entry; otherwise it is read.
    pub covered: Vec<SegmentExtent>,
    /// Records up to here were durable (a checkpoint or compacted file
    /// covers them): a log that ends before it lost them.
    pub durable: Option<Durable>,
}

impl Default for ReplayStart {
    fn default() -> Self {
        Self { first_position: 1, known_through: 0, time_ms: 0, covered: Vec::new(), durable: None }
    }
}

/// A sealed segment's records and where the last one is: what a checkpoint
/// records of each segment it covers, so that an open can check, with two
/// small reads and without reading it, that the segment is still whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentExtent {
    /// The segment number.
    pub id: u32,
    /// Position of its first record.
    pub first_position: u64,
    /// Position of its last record (`first_position - 1`: it holds none).
    pub last_position: u64,
    /// Offset of its last record's frame (0 when it holds none).
    pub last_frame: u64,
}

impl SegmentExtent {
    fn holds_records(&self) -> bool {
        self.last_position >= self.first_position
    }
}

/// Positions known durable, and what says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Durable {
    /// The last durable position.
    pub through: u64,
    /// The file that covers it (a checkpoint or compacted file), for messages.
    pub source: PathBuf,
}

/// One intact record met during replay.
#[derive(Debug, Clone, Copy)]
pub struct RecordRef<'a> {
    /// The record's position.
    pub position: u64,
    /// When it was appended (Unix milliseconds).
    pub time_ms: u64,
    /// Its type.
    pub rtype: RecordType,
    /// Its payload.
    pub payload: &'a [u8],
    /// Where the payload starts on disk.
    pub payload_loc: Loc,
}

/// What recovery dropped because it was a torn tail (or, on request, damage).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    /// The file where the kept log now ends.
    pub file: PathBuf,
    /// The offset where the dropped bytes began.
    pub offset: u64,
    /// Non-zero bytes dropped, over this file and any removed later segments.
    pub dropped_bytes: u64,
    /// Later segment files removed.
    pub removed_segments: Vec<PathBuf>,
    /// Why the bytes were dropped.
    pub reason: String,
}

/// What opening the log found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Records replayed.
    pub records: u64,
    /// Segment bytes scanned.
    pub bytes_scanned: u64,
    /// Set when a torn tail (or tolerated damage) was cut off.
    pub truncation: Option<Truncation>,
    /// Segments rewritten and synced because the previous run's sync failed
    /// (see `sync_failure`); 0 normally.
    pub rewritten_segments: usize,
    /// Durable positions (first, last) the log no longer holds: only with
    /// [`RecoveryMode::TruncateAtCorruption`]; a strict open refuses.
    pub lost_durable: Option<(u64, u64)>,
}

/// The log as recovery left it: open segments and where appends continue.
pub(crate) struct Recovered {
    pub segments: Vec<Segment>,
    pub next_position: u64,
    /// Offset in the last segment where the next frame goes.
    pub tail_offset: u64,
    /// Append time of the last intact record (0: none).
    pub last_time_ms: u64,
    /// Offset of the last record's frame in the last segment (0: none).
    pub last_frame: u64,
    pub report: RecoveryReport,
}

struct Anomaly {
    index: usize,
    offset: u64,
    torn: bool,
    detail: String,
}

/// Replays the log in `dir`, calling `visit` for each intact record in order
/// and `progress(scanned, total)` as segments are read.
pub(crate) fn recover<E: From<LogError>>(
    fs: &dyn FileSystem,
    dir: &Path,
    mode: RecoveryMode,
    start: &ReplayStart,
    visit: &mut dyn FnMut(RecordRef<'_>) -> Result<(), E>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Recovered, E> {
    let mut segments = Vec::new();
    for id in Segment::list(fs, dir)? {
        segments.push(Segment::open(fs, &dir.join(Segment::file_name(id)), id)?);
    }
    // Segments a compacted file replaced, left behind (any of them, in any
    // order) by a crash before their removal was synced: they start before
    // the first position the log must hold, which the segment cut for the
    // compaction starts exactly at.
    if start.first_position > 1 {
        let mut kept = Vec::with_capacity(segments.len());
        let mut removed = false;
        for seg in segments {
            if header_of(&seg)?.is_some_and(|h| h.first_position < start.first_position) {
                fs.remove_file(&seg.path).map_err(|e| LogError::io(&seg.path, e))?;
                removed = true;
            } else {
                kept.push(seg);
            }
        }
        if removed {
            fs.sync_dir(dir).map_err(|e| LogError::io(dir, e))?;
        }
        segments = kept;
    }
    for pair in segments.windows(2) {
        if pair[1].id != pair[0].id + 1 {
            return Err(LogError::Corruption {
                file: dir.join(Segment::file_name(pair[0].id + 1)),
                offset: 0,
                detail: "segment file missing from the middle of the log".into(),
            }
            .into());
        }
    }
    // Segments wholly before `known_through` are not read: the newest
    // segment starting at or before the first unknown position is where
    // replay begins (the oldest must start where the caller says, which
    // the check of the skipped segments' extents below covers). Only
    // a header that names its own segment and a position the log can hold
    // counts: a segment copied under a later name would otherwise hide
    // every record before it.
    let mut first_read = 0;
    for index in (1..segments.len()).rev() {
        if header_of(&segments[index])?.is_some_and(|h| {
            h.segment == segments[index].id
                && (start.first_position..=start.known_through.saturating_add(1)).contains(&h.first_position)
        }) {
            first_read = index;
            break;
        }
    }
    // Each skipped segment must still be whole as the checkpoint saw it;
    // from the first one that is not (or that it does not list), read.
    let mut extents = Vec::with_capacity(segments.len());
    let mut chain = start.first_position;
    for (index, seg) in segments.iter().enumerate().take(first_read) {
        let ext = start.covered.iter().find(|e| e.id == seg.id && e.first_position == chain);
        match ext {
            Some(ext) if still_whole(seg, ext)? => {
                extents.push(*ext);
                chain = ext.last_position + 1;
            }
            _ => {
                first_read = index;
                break;
            }
        }
    }
    let mut expected = chain;
    let total: u64 = segments[first_read..].iter().map(|s| s.capacity).sum();
    let mut report = RecoveryReport::default();
    let mut tail_offset = Segment::data_start();
    let mut last_time_ms = 0;
    let mut anomaly = None;
    let last_index = segments.len().saturating_sub(1);
    'segments: for (index, seg) in segments.iter().enumerate().skip(first_read) {
        let bytes = seg.contents()?;
        let found = |offset: u64, torn: bool, detail: String| Some(Anomaly { index, offset, torn, detail });
        // Filled in as frames are read; an anomaly leaves it at the last
        // intact record.
        extents.push(SegmentExtent {
            id: seg.id,
            first_position: expected,
            last_position: expected - 1,
            last_frame: 0,
        });
        match SegmentHeader::decode(&bytes) {
            Err(HeaderError::TooOld(v)) => return Err(LogError::too_old(&seg.path, v).into()),
            Err(HeaderError::TooNew(v)) => {
                return Err(LogError::TooNew {
                    file: seg.path.clone(),
                    what: "format version",
                    found: v.into(),
                    supported: FORMAT_VERSION.into(),
                }
                .into())
            }
            // Only the newest segment can be one whose creation a crash cut
            // short: a later segment exists only once this one was whole.
            Err(HeaderError::Unwritten) => {
                anomaly = found(0, index == last_index, "segment header never written".into());
                break;
            }
            Err(HeaderError::Damaged) => {
                anomaly = found(0, false, "segment header checksum mismatch".into());
                break;
            }
            Ok(h) if h.segment != seg.id => {
                anomaly = found(0, false, format!("header names segment {}", h.segment));
                break;
            }
            Ok(h) if index == 0 && h.first_position != expected => {
                return Err(LogError::Corruption {
                    file: seg.path.clone(),
                    offset: 0,
                    detail: if h.first_position > expected {
                        format!(
                            "positions {expected}..={} are lost: the log must continue at position \
                             {expected} but its oldest segment starts at {}; restore the data directory \
                             from a backup (a node of a shared log can be rebuilt from another node's \
                             export: `logkv repair --from-export FILE`)",
                            h.first_position - 1,
                            h.first_position
                        )
                    } else {
                        format!(
                            "the oldest segment starts at position {}, expected {expected}",
                            h.first_position
                        )
                    },
                }
                .into())
            }
            Ok(h) if h.first_position != expected => {
                let detail = format!("segment starts at position {}, expected {expected}", h.first_position);
                anomaly = found(0, true, detail);
                break;
            }
            Ok(_) => {}
        }
        let mut off = Segment::data_start() as usize;
        loop {
            match read_frame_in_segment(&bytes, off, expected) {
                FrameRead::Intact(f) => {
                    if f.position != expected {
                        let detail = format!("record position {}, expected {expected}", f.position);
                        anomaly = found(off as u64, false, detail);
                        break 'segments;
                    }
                    let Some(rtype) = RecordType::from_byte(f.rtype) else {
                        return Err(LogError::TooNew {
                            file: seg.path.clone(),
                            what: "record type",
                            found: f.rtype.into(),
                            supported: RecordType::NEWEST as u32,
                        }
                        .into());
                    };
                    last_time_ms = f.time_ms;
                    if let Some(ext) = extents.last_mut() {
                        ext.last_position = expected;
                        ext.last_frame = off as u64;
                    }
                    if expected > start.known_through {
                        let payload_loc = Loc::new(seg.id, (off + FRAME_HEADER_LEN) as u64);
                        let time_ms = f.time_ms;
                        visit(RecordRef {
                            position: expected,
                            time_ms,
                            rtype,
                            payload: f.payload,
                            payload_loc,
                        })?;
                        report.records += 1;
                    }
                    expected += 1;
                    let before = off;
                    off += f.len();
                    if before / PROGRESS_STEP_BYTES != off / PROGRESS_STEP_BYTES {
                        progress(report.bytes_scanned + off as u64, total);
                    }
                }
                FrameRead::Unwritten => {
                    if bytes[off..].iter().any(|&b| b != 0) {
                        anomaly = found(off as u64, true, "data after unwritten space".into());
                        break 'segments;
                    }
                    break;
                }
                FrameRead::Damaged { torn } => {
                    let detail = if torn { "record cut short" } else { "record checksum mismatch" };
                    anomaly = found(off as u64, torn, detail.into());
                    break 'segments;
                }
            }
        }
        tail_offset = off as u64;
        report.bytes_scanned += seg.capacity;
        progress(report.bytes_scanned, total);
    }
    if let Some(d) = start.durable.as_ref().filter(|d| expected <= d.through) {
        if mode == RecoveryMode::Strict {
            let (file, offset, why) = match &anomaly {
                Some(a) => (segments[a.index].path.clone(), a.offset, format!(" ({})", a.detail)),
                None => match segments.last() {
                    Some(seg) => (seg.path.clone(), tail_offset, String::new()),
                    None => (dir.to_path_buf(), 0, " (no segment file is left)".into()),
                },
            };
            return Err(LogError::Corruption {
                file,
                offset,
                detail: format!(
                    "positions {expected}..={} are covered by {} but the log ends at {}{why}; \
                     to open it anyway, dropping them, use `--recovery truncate`, or restore the data \
                     directory from a backup (a node of a shared log can re-fetch them from the stream)",
                    d.through,
                    d.source.display(),
                    expected - 1,
                ),
            }
            .into());
        }
        report.lost_durable = Some((expected, d.through));
    }
    if let Some(a) = anomaly {
        let cut = truncate(fs, dir, &mut segments, a, expected, mode)?;
        tail_offset = cut.offset;
        if tail_offset == 0 {
            // The damaged segment itself was removed; continue at the end of
            // the previous one (its own clean end was found while scanning).
            tail_offset = previous_tail(&segments)?;
        }
        report.truncation = Some(cut);
    }
    progress(total, total);
    // Every segment but the last is sealed: its extent is what a checkpoint
    // records of it.
    extents.truncate(segments.len());
    let last_frame = extents.pop().map_or(0, |e| e.last_frame);
    for (seg, ext) in segments.iter().zip(extents) {
        let _ = seg.sealed.set(ext);
    }
    Ok(Recovered { segments, next_position: expected, tail_offset, last_time_ms, last_frame, report })
}

/// Whether `seg` still is the segment `ext` describes: its header, and the
/// frame of its last record where `ext` says, with the right position and
/// end byte (not its checksums: scrubbing reads whole segments).
fn still_whole(seg: &Segment, ext: &SegmentExtent) -> Result<bool> {
    if !header_of(seg)?.is_some_and(|h| h.segment == ext.id && h.first_position == ext.first_position) {
        return Ok(false);
    }
    if !ext.holds_records() {
        return Ok(true);
    }
    if ext.last_frame.saturating_add(FRAME_HEADER_LEN as u64) > seg.capacity {
        return Ok(false);
    }
    let (len, position) =
        seg.with_bytes(ext.last_frame, FRAME_HEADER_LEN, |b| (u64::from(u32_at(b, 0)), u64_at(b, 5)))?;
    let end = ext.last_frame + FRAME_OVERHEAD as u64 + len;
    if position != ext.last_position || end > seg.capacity {
        return Ok(false);
    }
    seg.with_bytes(end - 1, 1, |b| b[0] == FRAME_END)
}

/// The header of `seg`, if it is intact.
fn header_of(seg: &Segment) -> Result<Option<SegmentHeader>> {
    // A file shorter than a header is a segment whose creation a crash cut
    // short (the header never reached the disk whole): no header, which
    // the torn-tail rule then judges, rather than a read past its end.
    if seg.capacity < SEGMENT_HEADER_LEN {
        return Ok(None);
    }
    seg.with_bytes(0, SEGMENT_HEADER_LEN as usize, |b| SegmentHeader::decode(b).ok())
}

/// Applies the torn-tail rule to `a`, then cuts the log there.
fn truncate(
    fs: &dyn FileSystem,
    dir: &Path,
    segments: &mut Vec<Segment>,
    a: Anomaly,
    expected: u64,
    mode: RecoveryMode,
) -> Result<Truncation> {
    let seg = &segments[a.index];
    if !a.torn && mode == RecoveryMode::Strict && intact_follows(segments, &a, expected)? {
        return Err(LogError::Corruption { file: seg.path.clone(), offset: a.offset, detail: a.detail });
    }
    let io = |p: &Path, e| LogError::io(p, e);
    let mut dropped = nonzero_len(&seg.contents()?, a.offset);
    let mut removed = Vec::new();
    let first_removed = if a.offset == 0 { a.index } else { a.index + 1 };
    for later in segments.drain(first_removed..) {
        dropped += nonzero_len(&later.contents()?, 0);
        fs.remove_file(&later.path).map_err(|e| io(&later.path, e))?;
        removed.push(later.path.clone());
    }
    let file = if a.offset == 0 {
        removed[0].clone()
    } else {
        let seg = &segments[a.index];
        // Zero the dropped bytes so a later recovery cannot mistake them for
        // records, keeping the preallocated capacity.
        seg.file.set_len(a.offset).map_err(|e| io(&seg.path, e))?;
        seg.file.allocate(seg.capacity).map_err(|e| io(&seg.path, e))?;
        seg.file.sync_data().map_err(|e| io(&seg.path, e))?;
        seg.path.clone()
    };
    if !removed.is_empty() {
        fs.sync_dir(dir).map_err(|e| io(dir, e))?;
    }
    Ok(Truncation {
        file,
        offset: a.offset,
        dropped_bytes: dropped,
        removed_segments: removed,
        reason: a.detail,
    })
}

/// Whether an intact record with a position at or past `expected` exists
/// after the anomaly: if so, the damage is in the middle of the log.
fn intact_follows(segments: &[Segment], a: &Anomaly, expected: u64) -> Result<bool> {
    let first = segments[a.index].contents()?;
    if intact_frame_from(&first, a.offset as usize + 1, expected) {
        return Ok(true);
    }
    for seg in &segments[a.index + 1..] {
        if intact_frame_from(&seg.contents()?, Segment::data_start() as usize, expected) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Bytes from `from` up to the last non-zero byte.
fn nonzero_len(bytes: &[u8], from: u64) -> u64 {
    let tail = &bytes[(from as usize).min(bytes.len())..];
    tail.iter().rposition(|&b| b != 0).map_or(0, |i| i as u64 + 1)
}

/// Where the data of the (now) last segment ends.
fn previous_tail(segments: &[Segment]) -> Result<u64> {
    let Some(seg) = segments.last() else {
        return Ok(Segment::data_start());
    };
    let bytes = seg.contents()?;
    let mut off = Segment::data_start() as usize;
    while let FrameRead::Intact(f) = read_frame(&bytes[off..]) {
        off += f.len();
    }
    Ok(off as u64)
}
