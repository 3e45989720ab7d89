//! Scrubbing: a pass that reads back every file a read or a restart may
//! need — the sealed segments, the compacted file and the checkpoints —
//! and checks every frame checksum, every value checksum and the structure
//! (headers that match the file, positions that follow each other, value
//! references inside their record, version chains whose `prev` points
//! back at an earlier version of the same key in a file that exists).
//! Reads check only the bytes they return, and a restart skips what a
//! checkpoint covers, so without this, damage to data nobody reads lately
//! stays unnoticed until the day it is needed.
//!
//! A pass takes the list of files, then reads each with `pread` in chunks
//! of 256 KiB, holding no lock, and tells the kernel to drop what it
//! read from the page cache. The caller paces it (`pace` is called before
//! every read, so it can sleep to a rate and stop the pass). A file that
//! compaction removed meanwhile is skipped, and what was found in it
//! forgotten: it no longer holds anything a read or an open could reach.
//!
//! Each [`Damage`] says whether reads fail because of it: whether the
//! index points into the damaged bytes, so that a key's current version
//! cannot be read. Damage to older versions, or to a checkpoint (which a
//! restart can do without: it falls back to an older one or replays the
//! log), leaves every current value readable.

use std::io;
use std::ops::{Range, RangeInclusive};
use std::path::PathBuf;
use std::sync::Arc;

use logkv_fs::File;
use logkv_log::format::{
    read_frame, u32_at, u64_at, FrameRead, RecordType, SegmentHeader, FRAME_END, FRAME_HEADER_LEN,
    FRAME_OVERHEAD, MAX_PAYLOAD_LEN, SEGMENT_HEADER_LEN,
};
use logkv_log::{Loc, LogError};

use crate::applied::parse_applied;
use crate::checkpoint::{self, CheckpointInfo};
use crate::coalesce::is_pending;
use crate::error::Result;
use crate::head::{Head, HeadInfo, FIRST_HEAD_ID, HEAD_HEADER_LEN};
use crate::keyspaces::DELETED;
use crate::record::{parse_batch, parse_ops, value_crc, OpKind, OpRef, OpRule, OP_HEADER_LEN};
use crate::rows::Row;
use crate::store::Store;

/// Bytes read at a time (more only for a frame larger than this).
const CHUNK: usize = 256 << 10;

/// Something wrong in a file, as a pass found it: what a repair needs to
/// know to reproduce the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// The file.
    pub file: PathBuf,
    /// The damaged bytes (a frame, an op, a header, or from the first
    /// damage to the end when what follows cannot be told apart).
    pub offsets: Range<u64>,
    /// The log positions whose records those bytes held, when known (a
    /// log segment's records).
    pub positions: Option<RangeInclusive<u64>>,
    /// What is wrong.
    pub detail: String,
    /// Whether the index points into the damaged bytes: some key's current
    /// version cannot be read until they are repaired.
    pub reads_fail: bool,
}

/// What one pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScrubReport {
    /// Files checked to the end (files removed meanwhile not counted).
    pub files: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Whether the pass went through every file (`false`: `pace` stopped it).
    pub complete: bool,
}

/// Why reading a file stopped early.
enum Halt {
    /// `pace` asked to stop the pass.
    Stop,
    /// A read failed (bytes missing, an I/O error): damage in itself.
    Io(u64, io::Error),
}

/// Reads one file front to back in chunks, calling `pace` before each read
/// and dropping each chunk from the page cache once past it.
struct Reader<'a> {
    file: Arc<dyn File>,
    len: u64,
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    at: u64,
    pace: &'a mut dyn FnMut(u64) -> bool,
    bytes: u64,
}

impl<'a> Reader<'a> {
    fn new(file: Arc<dyn File>, len: u64, pace: &'a mut dyn FnMut(u64) -> bool) -> Self {
        Self { file, len, buf: Vec::new(), at: 0, pace, bytes: 0 }
    }

    /// The `n` bytes at `off` (callers keep `off + n` within the length).
    fn get(&mut self, off: u64, n: usize) -> std::result::Result<&[u8], Halt> {
        let end = off + n as u64;
        if off < self.at || end > self.at + self.buf.len() as u64 {
            let want = (n.max(CHUNK) as u64).min(self.len.saturating_sub(off)).max(n as u64) as usize;
            if !(self.pace)(want as u64) {
                return Err(Halt::Stop);
            }
            self.forget();
            self.buf.resize(want, 0);
            self.file.read_exact_at(&mut self.buf, off).map_err(|e| Halt::Io(off, e))?;
            self.at = off;
            self.bytes += want as u64;
        }
        let from = (off - self.at) as usize;
        Ok(&self.buf[from..from + n])
    }

    /// The first non-zero byte in `from..to`.
    fn first_nonzero(&mut self, from: u64, to: u64) -> std::result::Result<Option<u64>, Halt> {
        let mut off = from;
        while off < to {
            let n = (to - off).min(CHUNK as u64) as usize;
            if let Some(i) = self.get(off, n)?.iter().position(|&b| b != 0) {
                return Ok(Some(off + i as u64));
            }
            off += n as u64;
        }
        Ok(None)
    }

    /// Drops the chunk held from the page cache (a hint; failure is harmless).
    fn forget(&mut self) {
        if !self.buf.is_empty() {
            let _ = self.file.drop_cache(self.at, self.buf.len() as u64);
        }
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        self.forget();
    }
}

/// Damage found in the file being read, before it is known whether reads
/// fail because of it.
struct Finding {
    offsets: Range<u64>,
    positions: Option<RangeInclusive<u64>>,
    detail: String,
}

/// What a file being scrubbed is, for the checks of its version chains.
struct Links {
    /// The number its locations carry.
    file: u32,
    /// Whether it is the compacted file (whose chains stay inside it).
    head: bool,
    /// The newest compacted file's number, if any.
    newest_head: Option<u32>,
    /// The log's segments when the pass started, with their capacities.
    segments: Vec<(u32, u64)>,
    /// Every op read so far in this file: offset, key fingerprint, version.
    seen: Vec<(u64, u32, u64)>,
    /// Damaged records met so far in this file: a `prev` into one is not
    /// damage of its own (it is reported once, as the record's).
    damaged: Vec<Range<u64>>,
}

/// A file and what kind it is.
enum Target {
    Segment { id: u32, capacity: u64, positions: RangeInclusive<u64> },
    Head(Arc<Head>),
    Checkpoint,
}

impl Store {
    /// Runs one scrub pass over the sealed segments, the compacted file
    /// and the checkpoints (see the module docs). `pace(bytes)` is called
    /// before each read of up to 256 KiB and stops the pass by
    /// returning `false`; `found` is called with each damage as its file
    /// is finished. Only a failure to list the files is an error.
    pub fn scrub(
        &self,
        pace: &mut dyn FnMut(u64) -> bool,
        found: &mut dyn FnMut(Damage),
    ) -> Result<ScrubReport> {
        let segments = self.log.segment_info()?;
        let newest_head = self.head.read().clone();
        let mut targets: Vec<(PathBuf, Target)> = Vec::new();
        // The last segment takes appends: not sealed.
        for pair in segments.windows(2) {
            let (seg, next) = (&pair[0], &pair[1]);
            let positions = seg.first_position..=next.first_position.saturating_sub(1);
            targets
                .push((seg.path.clone(), Target::Segment { id: seg.id, capacity: seg.capacity, positions }));
        }
        if let Some(head) = &newest_head {
            targets.push((head.path().to_path_buf(), Target::Head(head.clone())));
        }
        for (_, path) in checkpoint::list(self.fs.as_ref(), &self.dir)? {
            targets.push((path, Target::Checkpoint));
        }
        let mut links = Links {
            file: 0,
            head: false,
            newest_head: newest_head.as_ref().map(|h| h.info().id),
            segments: segments.iter().map(|s| (s.id, s.capacity)).collect(),
            seen: Vec::new(),
            damaged: Vec::new(),
        };
        let mut report = ScrubReport { files: 0, bytes: 0, complete: true };
        for (path, target) in targets {
            let file = match self.fs.open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(LogError::io(&path, e).into()),
            };
            let len = match &target {
                Target::Segment { capacity, .. } => *capacity,
                Target::Head(head) => head.info().table_end,
                Target::Checkpoint => file.len().map_err(|e| LogError::io(&path, e))?,
            };
            let mut findings = Vec::new();
            let mut reader = Reader::new(file, len, pace);
            let walked = match &target {
                Target::Segment { id, positions, .. } => {
                    links.file = *id;
                    links.head = false;
                    self.scrub_segment(&mut reader, positions.clone(), &mut links, &mut findings)
                }
                Target::Head(head) => {
                    links.file = head.info().id;
                    links.head = true;
                    scrub_head(self, &mut reader, head, &mut links, &mut findings)
                }
                Target::Checkpoint => scrub_checkpoint(&mut reader, &mut findings),
            };
            links.seen.clear();
            links.damaged.clear();
            report.bytes += reader.bytes;
            drop(reader);
            match walked {
                Ok(()) => {}
                Err(Halt::Stop) => {
                    report.complete = false;
                    return Ok(report);
                }
                Err(Halt::Io(at, e)) => findings.push(Finding {
                    offsets: at..len.max(at + 1),
                    positions: None,
                    detail: format!("read failed: {e}"),
                }),
            }
            // Removed meanwhile (compacted away, or a checkpoint
            // superseded): nothing can reach its bytes any more.
            if !self.fs.exists(&path) {
                continue;
            }
            report.files += 1;
            let file_id = match &target {
                Target::Segment { id, .. } => Some(*id),
                Target::Head(head) => Some(head.info().id),
                Target::Checkpoint => None,
            };
            let fail =
                file_id.map_or_else(|| vec![false; findings.len()], |id| self.reads_fail(id, &findings));
            for (f, reads_fail) in findings.into_iter().zip(fail) {
                found(Damage {
                    file: path.clone(),
                    offsets: f.offsets,
                    positions: f.positions,
                    detail: f.detail,
                    reads_fail,
                });
            }
        }
        Ok(report)
    }

    /// For each finding in file `file`, whether a key's index entry (its
    /// newest version) points into it. Walks a snapshot of the index, so
    /// writers never wait for it.
    fn reads_fail(&self, file: u32, findings: &[Finding]) -> Vec<bool> {
        let mut fail = vec![false; findings.len()];
        if findings.is_empty() {
            return fail;
        }
        let snapshot = self.index.read().snapshot();
        for (_, index) in &snapshot.spaces {
            for (_, meta) in index.iter() {
                let loc = Loc::from_u64(meta & !DELETED);
                if loc.segment() != file {
                    continue;
                }
                for (f, hit) in findings.iter().zip(fail.iter_mut()) {
                    *hit |= f.offsets.contains(&loc.offset());
                }
            }
        }
        fail
    }

    /// Walks a sealed segment frame by frame.
    fn scrub_segment(
        &self,
        r: &mut Reader<'_>,
        positions: RangeInclusive<u64>,
        links: &mut Links,
        out: &mut Vec<Finding>,
    ) -> std::result::Result<(), Halt> {
        let cap = r.len;
        let at_most = |p: u64| Some(p..=(*positions.end()).max(p));
        let header_len = SEGMENT_HEADER_LEN as usize;
        let mut expected = match SegmentHeader::decode(r.get(0, header_len)?) {
            Ok(h) if h.segment == links.file && h.first_position == *positions.start() => {
                Some(h.first_position)
            }
            Ok(h) => {
                let detail = format!("header names segment {} from position {}", h.segment, h.first_position);
                out.push(Finding { offsets: 0..SEGMENT_HEADER_LEN, positions: None, detail });
                None
            }
            Err(e) => {
                let detail = format!("segment header unreadable: {e:?}");
                out.push(Finding { offsets: 0..SEGMENT_HEADER_LEN, positions: None, detail });
                None
            }
        };
        let mut off = SEGMENT_HEADER_LEN;
        while off + FRAME_HEADER_LEN as u64 <= cap {
            let head = r.get(off, FRAME_HEADER_LEN)?;
            if head.iter().all(|&b| b == 0) {
                break;
            }
            let (len, position) = (u32_at(head, 0) as usize, u64_at(head, 5));
            let total = (FRAME_OVERHEAD + len) as u64;
            let expected_here = expected.unwrap_or(position);
            if len > MAX_PAYLOAD_LEN || off + total > cap {
                let detail = format!("frame length {len} runs past the segment; the rest cannot be walked");
                out.push(Finding { offsets: off..cap, positions: at_most(expected_here), detail });
                return Ok(());
            }
            let bytes = r.get(off, total as usize)?;
            let frame = match read_frame(bytes) {
                FrameRead::Intact(f) => Some((f.rtype, f.position, f.payload.to_vec())),
                _ => None,
            };
            let end_marker = bytes[total as usize - 1] == FRAME_END;
            match frame {
                Some((rtype, position, payload)) => {
                    if position != expected_here {
                        let detail = format!("record position {position}, expected {expected_here}");
                        out.push(Finding {
                            offsets: off..off + total,
                            positions: Some(position..=position),
                            detail,
                        });
                    }
                    let payload_off = off + FRAME_HEADER_LEN as u64;
                    self.check_record(rtype, position, &payload, payload_off, links, out);
                    expected = Some(position.saturating_add(1));
                }
                None => {
                    // The length is believed when the next record (or the
                    // unwritten space) starts where it says.
                    let next = off + total;
                    let follows = end_marker
                        && (next + FRAME_HEADER_LEN as u64 > cap || {
                            let h = r.get(next, FRAME_HEADER_LEN)?;
                            h.iter().all(|&b| b == 0) || u64_at(h, 5) == expected_here.saturating_add(1)
                        });
                    if !follows {
                        let detail = "record damaged; the rest of the segment cannot be walked".to_string();
                        out.push(Finding { offsets: off..cap, positions: at_most(expected_here), detail });
                        return Ok(());
                    }
                    let detail = "record checksum mismatch".to_string();
                    let positions = Some(expected_here..=expected_here);
                    links.damaged.push(off..next);
                    out.push(Finding { offsets: off..next, positions, detail });
                    expected = Some(expected_here.saturating_add(1));
                }
            }
            off += total;
        }
        if let Some(at) = r.first_nonzero(off, cap)? {
            let detail = "data after the unwritten space".to_string();
            out.push(Finding { offsets: at..cap, positions: None, detail });
        }
        Ok(())
    }

    /// Checks the ops of one intact log record.
    fn check_record(
        &self,
        rtype: u8,
        position: u64,
        payload: &[u8],
        payload_off: u64,
        links: &mut Links,
        out: &mut Vec<Finding>,
    ) {
        let whole = payload_off - FRAME_HEADER_LEN as u64..payload_off + (payload.len() + 5) as u64;
        let positions = Some(position..=position);
        let parsed = match RecordType::from_byte(rtype) {
            Some(RecordType::Batch) => parse_batch(payload, position),
            Some(RecordType::Applied) => parse_applied(payload).map(|a| a.ops),
            Some(RecordType::Entry) => return,
            Some(RecordType::Compacted) => Err("a compacted block in a log segment".into()),
            None => Err(format!("unknown record type {rtype}")),
        };
        match parsed {
            Ok(ops) => self.check_ops(&ops, payload, payload_off, positions, links, out),
            Err(detail) => out.push(Finding { offsets: whole, positions, detail }),
        }
    }

    /// Checks each op's value checksum and where its `prev` points.
    fn check_ops(
        &self,
        ops: &[OpRef<'_>],
        payload: &[u8],
        payload_off: u64,
        positions: Option<RangeInclusive<u64>>,
        links: &mut Links,
        out: &mut Vec<Finding>,
    ) {
        for o in ops {
            let h = &o.header;
            let at = payload_off + o.offset as u64;
            let value = match h.kind {
                OpKind::Put => &payload[o.offset + OP_HEADER_LEN + o.key.len()..][..h.value_len as usize],
                OpKind::PutRef => &payload[o.value_at.unwrap_or_default()..][..h.value_len as usize],
                OpKind::Delete => &[],
            };
            let mut wrong = Vec::new();
            if value_crc(o.key, value) != h.crc {
                wrong.push(format!("value checksum mismatch in version {}", h.version));
            }
            let fingerprint = value_crc(&h.keyspace.to_le_bytes(), o.key);
            if let Some(why) = h.prev.and_then(|prev| self.bad_prev(links, at, prev, fingerprint, h.version))
            {
                wrong.push(format!("version {}: previous version {why}", h.version));
            }
            links.seen.push((at, fingerprint, h.version));
            if !wrong.is_empty() {
                let offsets = at..at + h.op_len() as u64;
                out.push(Finding { offsets, positions: positions.clone(), detail: wrong.join("; ") });
            }
        }
    }

    /// Why the `prev` of the op at `at` (of the key `fingerprint` names,
    /// at `version`) cannot be its previous version, if it cannot.
    fn bad_prev(&self, links: &Links, at: u64, prev: Loc, fingerprint: u32, version: u64) -> Option<String> {
        let (segment, offset) = (prev.segment(), prev.offset());
        if segment == links.file {
            if offset >= at {
                return Some(format!("points forward, to offset {offset}"));
            }
            if links.damaged.iter().any(|d| d.contains(&offset)) {
                return None;
            }
            return match links.seen.binary_search_by_key(&offset, |s| s.0) {
                Ok(i) if links.seen[i].1 == fingerprint && links.seen[i].2 <= version => None,
                Ok(_) => Some(format!("at offset {offset} is of another key or newer")),
                Err(_) => Some(format!("points at offset {offset}, where no version record starts")),
            };
        }
        if links.head {
            return Some(format!(
                "points out of the compacted file, to {}",
                self.file_path(segment).display()
            ));
        }
        if segment == 0 || is_pending(segment) {
            return Some(format!("points at no file (number {segment})"));
        }
        if segment >= FIRST_HEAD_ID {
            return (links.newest_head.is_none_or(|newest| segment > newest))
                .then(|| format!("points at compacted file {segment}, newer than any"));
        }
        if segment > links.file {
            return Some(format!("points at a later segment, {segment}"));
        }
        match links.segments.iter().find(|s| s.0 == segment) {
            Some(&(_, capacity)) if (SEGMENT_HEADER_LEN..capacity).contains(&offset) => None,
            Some(_) => Some(format!("points past the end of segment {segment}, to offset {offset}")),
            None if self.log.is_retired(segment) => None,
            None => Some(format!("points at segment {segment}, which is missing")),
        }
    }
}

/// Walks the compacted file: its header against the one opened, its
/// blocks of ops, then its rows.
fn scrub_head(
    store: &Store,
    r: &mut Reader<'_>,
    head: &Head,
    links: &mut Links,
    out: &mut Vec<Finding>,
) -> std::result::Result<(), Halt> {
    let info = *head.info();
    let header = r.get(0, HEAD_HEADER_LEN as usize)?;
    let problem = match HeadInfo::decode(header, head.path()) {
        Ok(on_disk) if on_disk == info => None,
        Ok(_) => Some("header differs from the one read at open".to_string()),
        Err(e) => Some(e.to_string()),
    };
    if let Some(detail) = problem {
        out.push(Finding { offsets: 0..HEAD_HEADER_LEN, positions: None, detail });
    }
    let mut last: Option<(u32, Vec<u8>, u64)> = None;
    let mut blocks = 0u64;
    let mut off = HEAD_HEADER_LEN;
    for (end, rows) in [(info.data_end, false), (info.table_end, true)] {
        while off < end {
            blocks += 1;
            let Some(total) = frame_len(r, off, end)? else {
                let detail =
                    format!("block {blocks}: length runs past its section; the rest cannot be walked");
                out.push(Finding { offsets: off..end, positions: None, detail });
                last = None;
                off = end;
                break;
            };
            let bytes = r.get(off, total as usize)?;
            let payload = match read_frame(bytes) {
                FrameRead::Intact(f) if f.rtype == RecordType::Compacted as u8 && f.position == blocks => {
                    Some(f.payload.to_vec())
                }
                _ => None,
            };
            let payload_off = off + FRAME_HEADER_LEN as u64;
            let detail = match payload {
                None => Some(format!("block {blocks} damaged (checksum, type or number)")),
                Some(p) if rows => Row::parse_block(&p).err(),
                Some(p) => match parse_ops(&p, 0, OpRule::Compacted) {
                    Err(detail) => Some(detail),
                    Ok(ops) => {
                        for o in &ops {
                            let here = (o.header.keyspace, o.key, o.header.version);
                            if last.as_ref().is_some_and(|(ks, k, v)| (*ks, &k[..], *v) >= here) {
                                let at = payload_off + o.offset as u64;
                                let detail = "ops out of (keyspace, key, version) order".to_string();
                                out.push(Finding {
                                    offsets: at..at + o.header.op_len() as u64,
                                    positions: None,
                                    detail,
                                });
                            }
                            last = Some((here.0, here.1.to_vec(), here.2));
                        }
                        store.check_ops(&ops, &p, payload_off, None, links, out);
                        None
                    }
                },
            };
            if let Some(detail) = detail {
                links.damaged.push(off..off + total);
                out.push(Finding { offsets: off..off + total, positions: None, detail });
                last = None;
            }
            off += total;
        }
    }
    Ok(())
}

/// The length of the frame at `off` if it ends by `end`.
fn frame_len(r: &mut Reader<'_>, off: u64, end: u64) -> std::result::Result<Option<u64>, Halt> {
    if off + FRAME_HEADER_LEN as u64 > end {
        return Ok(None);
    }
    let len = u32_at(r.get(off, FRAME_HEADER_LEN)?, 0) as u64;
    let total = FRAME_OVERHEAD as u64 + len;
    Ok((len <= MAX_PAYLOAD_LEN as u64 && off + total <= end).then_some(total))
}

/// Walks a checkpoint: header, entries in order, live count and checksum.
fn scrub_checkpoint(r: &mut Reader<'_>, out: &mut Vec<Finding>) -> std::result::Result<(), Halt> {
    let len = r.len;
    let header_len = checkpoint::HEADER_LEN as u64;
    let mut fail =
        |offsets: Range<u64>, detail: String| out.push(Finding { offsets, positions: None, detail });
    if len < header_len + 4 {
        fail(0..len, format!("{len} bytes: shorter than a checkpoint"));
        return Ok(());
    }
    let info = match CheckpointInfo::decode(r.get(0, header_len as usize)?) {
        Ok(info) => info,
        Err(detail) => {
            fail(0..header_len, detail);
            return Ok(());
        }
    };
    let body_end = len - 4;
    // Version 3 lists the sealed segments it covers after the entries.
    let extents = u64::from(info.segments) * checkpoint::EXTENT_LEN as u64;
    let Some(entries_end) = body_end.checked_sub(extents).filter(|&e| e >= header_len) else {
        fail(0..header_len, format!("{} segments listed, more than the file holds", info.segments));
        return Ok(());
    };
    let (mut at, mut crc, mut live) = (header_len, 0u32, 0u64);
    let mut last_space: Option<u32> = None;
    let mut last_key = Vec::new();
    let mut take =
        |r: &mut Reader<'_>, at: &mut u64, n: usize| -> std::result::Result<Option<Vec<u8>>, Halt> {
            if *at + n as u64 > entries_end {
                return Ok(None);
            }
            let b = r.get(*at, n)?;
            crc = crc32c::crc32c_append(crc, b);
            *at += n as u64;
            Ok(Some(b.to_vec()))
        };
    for _ in 0..info.keyspaces {
        let start = at;
        let Some(head) = take(r, &mut at, 12)? else {
            fail(start..len, "entries run past the end".into());
            return Ok(());
        };
        let (keyspace, count) = (u32_at(&head, 0), u64_at(&head, 4));
        if last_space.is_some_and(|l| l >= keyspace) {
            fail(start..start + 12, format!("keyspace {keyspace} out of order"));
            return Ok(());
        }
        last_space = Some(keyspace);
        for i in 0..count {
            let start = at;
            let key_len = take(r, &mut at, 2)?.map(|b| u16::from_le_bytes([b[0], b[1]]) as usize);
            let Some(entry) = key_len.map(|n| take(r, &mut at, n + 8)).transpose()?.flatten() else {
                fail(start..len, "entries run past the end".into());
                return Ok(());
            };
            let (key, meta) = entry.split_at(entry.len() - 8);
            if i > 0 && key <= &last_key[..] {
                fail(start..at, format!("keys of keyspace {keyspace} out of order"));
                return Ok(());
            }
            last_key.clear();
            last_key.extend_from_slice(key);
            live += u64::from(u64_at(meta, 0) & DELETED == 0);
        }
    }
    if at != entries_end {
        fail(at..len, format!("{} bytes after the last keyspace", entries_end - at));
        return Ok(());
    }
    if extents > 0 {
        crc = crc32c::crc32c_append(crc, r.get(entries_end, extents as usize)?);
    }
    if u32_at(r.get(body_end, 4)?, 0) != crc {
        fail(header_len..len, "checksum mismatch".into());
    }
    if live != info.live {
        fail(0..header_len, format!("the header counts {} live keys, the entries {live}", info.live));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use logkv_log::LogConfig;

    use super::*;
    use crate::{StoreOptions, DEFAULT_KEYSPACE};

    fn open(dir: &Path) -> Store {
        let log = LogConfig { segment_size_bytes: 4096, ..LogConfig::default() };
        Store::open(dir, StoreOptions { log, ..StoreOptions::default() }).unwrap()
    }

    fn scrub(store: &Store) -> (ScrubReport, Vec<Damage>) {
        let mut found = Vec::new();
        let report = store.scrub(&mut |_| true, &mut |d| found.push(d)).unwrap();
        (report, found)
    }

    fn flip(path: &Path, offset: u64) {
        let mut b = std::fs::read(path).unwrap();
        b[offset as usize] ^= 0x20;
        std::fs::write(path, b).unwrap();
    }

    /// Keys `k0..k59`, each written twice, over many 4 KiB segments, with a
    /// checkpoint.
    fn filled(dir: &Path) -> Store {
        let store = open(dir);
        for round in 0..2 {
            for i in 0..60 {
                store
                    .put(
                        format!("k{i}").as_bytes(),
                        format!("value {round} of {i} {}", "x".repeat(40)).as_bytes(),
                    )
                    .unwrap();
            }
        }
        store.checkpoint().unwrap();
        store
    }

    #[test]
    fn a_clean_store_has_no_damage_before_and_after_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let store = filled(dir.path());
        let (report, found) = scrub(&store);
        assert!(report.complete && report.files > 3 && report.bytes > 4096 * 3, "{report:?}");
        assert_eq!(found, vec![]);
        store.compact(&mut |_, _| {}).unwrap();
        store.put(b"k1", b"after").unwrap();
        let (report, found) = scrub(&store);
        assert!(report.complete && report.files >= 2, "{report:?}");
        assert_eq!(found, vec![]);
    }

    #[test]
    fn a_flipped_value_byte_is_found_and_fails_reads_only_in_a_current_version() {
        let dir = tempfile::tempdir().unwrap();
        let store = filled(dir.path());
        let old = store
            .locate_in(DEFAULT_KEYSPACE, b"k3", store.history(b"k3").unwrap()[1].version)
            .unwrap()
            .unwrap();
        let new = store.locate_in(DEFAULT_KEYSPACE, b"k4", u64::MAX).unwrap().unwrap();
        assert_ne!(new.file, store.log.segment_info().unwrap().last().unwrap().path, "sealed");
        flip(&old.file, old.offset + 2);
        let (_, found) = scrub(&store);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!((&found[0].file, found[0].reads_fail), (&old.file, false));
        assert!(found[0].offsets.contains(&(old.offset + 2)) && found[0].positions.is_some(), "{found:?}");
        flip(&new.file, new.offset + 2);
        let (_, found) = scrub(&store);
        assert_eq!(found.iter().filter(|d| d.reads_fail).count(), 1, "{found:?}");
    }

    #[test]
    fn damage_in_the_compacted_file_and_a_checkpoint_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let store = filled(dir.path());
        store.compact(&mut |_, _| {}).unwrap();
        let at = store.locate_in(DEFAULT_KEYSPACE, b"k7", u64::MAX).unwrap().unwrap();
        assert!(at.file.extension().is_some_and(|e| e == "head"), "{at:?}");
        flip(&at.file, at.offset + 1);
        let (_, found) = scrub(&store);
        assert!(found.len() == 1 && found[0].file == at.file && found[0].reads_fail, "{found:?}");
        let (_, checkpoint) = checkpoint::list(&logkv_fs::StdFs, dir.path()).unwrap().remove(0);
        let len = std::fs::metadata(&checkpoint).unwrap().len();
        flip(&checkpoint, len - 10);
        let (_, found) = scrub(&store);
        let in_checkpoint: Vec<_> = found.iter().filter(|d| d.file == checkpoint).collect();
        assert!(in_checkpoint.len() == 1 && !in_checkpoint[0].reads_fail, "{found:?}");
    }

    #[test]
    fn a_compaction_retiring_files_mid_pass_is_no_damage() {
        let dir = tempfile::tempdir().unwrap();
        let store = filled(dir.path());
        let before = store.log.segment_info().unwrap().len();
        let mut reads = 0;
        let mut found = Vec::new();
        let report = store
            .scrub(
                &mut |_| {
                    reads += 1;
                    if reads == 2 {
                        store.compact(&mut |_, _| {}).unwrap();
                    }
                    true
                },
                &mut |d| found.push(d),
            )
            .unwrap();
        assert!(store.log.segment_info().unwrap().len() < before, "the compaction retired segments");
        assert!(report.complete && report.files < before as u64, "{report:?}");
        assert_eq!(found, vec![]);
    }

    #[test]
    fn pace_stops_a_pass_and_sees_every_byte_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = filled(dir.path());
        let mut paced = 0;
        let report = store
            .scrub(
                &mut |n| {
                    paced += n;
                    true
                },
                &mut |_| {},
            )
            .unwrap();
        assert_eq!(paced, report.bytes);
        let mut reads = 0;
        let report = store
            .scrub(
                &mut |_| {
                    reads += 1;
                    reads < 3
                },
                &mut |_| {},
            )
            .unwrap();
        assert!(!report.complete && report.files == 2, "{report:?}");
    }
}
