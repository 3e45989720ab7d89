//! Finding a record by position or by log time without an index entry per
//! record.
//!
//! Each segment keeps *marks* (position, offset, log time): one for its
//! first record, then one for the first record at least
//! [`MARK_EVERY_BYTES`] after the previous mark. They are built the first
//! time a lookup reaches the segment, by reading its frame headers once,
//! and extended as far as later lookups need (the segment appends go to
//! grows). A lookup then reads at most `MARK_EVERY_BYTES` of frame headers
//! past a mark. Memory is 24 bytes per 64 KiB of log, whatever the number
//! of records; marks go away with their segment.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::error::{LogError, Result};
use crate::format::{
    read_frame, u32_at, u64_at, FrameRead, Loc, RecordType, FRAME_HEADER_LEN, FRAME_OVERHEAD,
};
use crate::log::Inner;
use crate::recovery::RecordRef;
use crate::segment::Segment;

/// Bytes of frames between two marks of a segment.
pub const MARK_EVERY_BYTES: u64 = 64 << 10;

/// Where one record of a segment starts.
#[derive(Debug, Clone, Copy)]
struct Mark {
    position: u64,
    offset: u64,
    time_ms: u64,
}

/// A segment's marks, and how far its frames have been read.
#[derive(Debug, Default)]
pub(crate) struct Marks {
    marks: Vec<Mark>,
    /// The next frame not read yet: its position and offset.
    next: Option<(u64, u64)>,
}

/// A record found by [`crate::FileLog::locate`], from its frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordMeta {
    /// Its position.
    pub position: u64,
    /// Its log time (Unix milliseconds).
    pub time_ms: u64,
    /// Its type byte.
    pub rtype: u8,
    /// Where its frame starts.
    pub frame: Loc,
    /// Its payload length.
    pub payload_len: usize,
}

impl Inner {
    /// The visible record at `position`, from its frame header; `None` if
    /// the log holds no such record (before its oldest segment, or not yet
    /// acknowledged).
    pub(crate) fn locate(&self, position: u64) -> Result<Option<RecordMeta>> {
        let visible = self.visible.load(Ordering::Acquire);
        if position == 0 || position > visible {
            return Ok(None);
        }
        let segments = self.live_segments(visible);
        let Some(seg) = segments.iter().rev().find(|s| s.first_position <= position) else {
            return Ok(None);
        };
        let mut marks = seg.marks.lock();
        self.extend(seg, &mut marks, position)?;
        let from = marks.marks[marks.marks.partition_point(|m| m.position <= position) - 1];
        let mut found = None;
        self.walk(seg, from, position, &mut |r| {
            found = Some(*r);
            true
        })?;
        Ok(found.filter(|r| r.position == position))
    }

    /// The newest visible position whose log time is at most `time_ms`;
    /// `None` if the oldest record in the segments is later (or there is
    /// none). Reads one frame header per segment probed, then one segment.
    pub(crate) fn position_at_time(&self, time_ms: u64) -> Result<Option<u64>> {
        let visible = self.visible.load(Ordering::Acquire);
        let segments = self.live_segments(visible);
        // Log times never decrease: find the last segment whose first
        // record is not later than `time_ms`.
        let (mut lo, mut hi) = (0, segments.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.first_time(&segments[mid])? <= time_ms {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let Some(index) = lo.checked_sub(1) else { return Ok(None) };
        let seg = &segments[index];
        let last = segments.get(index + 1).map_or(visible, |next| next.first_position - 1);
        let mut marks = seg.marks.lock();
        self.extend(seg, &mut marks, last)?;
        let from = marks.marks[marks.marks.partition_point(|m| m.time_ms <= time_ms).max(1) - 1];
        let mut found = None;
        self.walk(seg, from, last, &mut |r| {
            let within = r.time_ms <= time_ms;
            if within {
                found = Some(r.position);
            }
            within
        })?;
        Ok(found)
    }

    /// Calls `f` with the visible record at `position`, its whole frame
    /// checked; `None` if the log holds no such record.
    pub(crate) fn read_record<R>(
        &self,
        position: u64,
        f: impl FnOnce(RecordRef<'_>) -> R,
    ) -> Result<Option<R>> {
        let Some(meta) = self.locate(position)? else { return Ok(None) };
        let corrupt = |detail: &str| LogError::Corruption {
            file: self.dir.join(Segment::file_name(meta.frame.segment())),
            offset: meta.frame.offset(),
            detail: detail.into(),
        };
        self.read(meta.frame, FRAME_OVERHEAD + meta.payload_len, |b| match read_frame(b) {
            FrameRead::Intact(frame) if frame.position == position => {
                let rtype = RecordType::from_byte(frame.rtype).ok_or_else(|| LogError::TooNew {
                    file: self.dir.join(Segment::file_name(meta.frame.segment())),
                    what: "record type",
                    found: frame.rtype.into(),
                    supported: RecordType::NEWEST as u32,
                })?;
                let payload_loc = meta.frame.forward(FRAME_HEADER_LEN as u64);
                Ok(Some(f(RecordRef {
                    position,
                    time_ms: frame.time_ms,
                    rtype,
                    payload: frame.payload,
                    payload_loc,
                })))
            }
            _ => Err(corrupt("record checksum mismatch")),
        })?
    }

    /// The segments holding visible records, oldest first.
    fn live_segments(&self, visible: u64) -> Vec<Arc<Segment>> {
        let segments = self.segments.read();
        segments.values().filter(|s| s.first_position != 0 && s.first_position <= visible).cloned().collect()
    }

    /// The log time of a segment's first record.
    fn first_time(&self, seg: &Segment) -> Result<u64> {
        let offset = Segment::data_start();
        Ok(self.frame_header(seg, offset, seg.first_position)?.time_ms)
    }

    /// Reads frame headers of `seg` until the record at `through` has a
    /// mark at or before it.
    fn extend(&self, seg: &Segment, marks: &mut Marks, through: u64) -> Result<()> {
        let (mut position, mut offset) = marks.next.unwrap_or((seg.first_position, Segment::data_start()));
        while position <= through {
            let r = self.frame_header(seg, offset, position)?;
            let last = marks.marks.last().map(|m| m.offset);
            if last.is_none_or(|l| offset - l >= MARK_EVERY_BYTES) {
                marks.marks.push(Mark { position, offset, time_ms: r.time_ms });
            }
            position += 1;
            offset += (FRAME_OVERHEAD + r.payload_len) as u64;
        }
        marks.next = Some((position, offset));
        Ok(())
    }

    /// Reads the records of `seg` from `from` up to `last` while `f`
    /// returns `true`.
    fn walk(
        &self,
        seg: &Segment,
        from: Mark,
        last: u64,
        f: &mut dyn FnMut(&RecordMeta) -> bool,
    ) -> Result<()> {
        let (mut position, mut offset) = (from.position, from.offset);
        while position <= last {
            let r = self.frame_header(seg, offset, position)?;
            if !f(&r) {
                break;
            }
            position += 1;
            offset += (FRAME_OVERHEAD + r.payload_len) as u64;
        }
        Ok(())
    }

    /// The frame header at `offset` of `seg`, which must be the record at
    /// `position`.
    fn frame_header(&self, seg: &Segment, offset: u64, position: u64) -> Result<RecordMeta> {
        let frame = Loc::new(seg.id, offset);
        let r = self.read(frame, FRAME_HEADER_LEN, |b| RecordMeta {
            position: u64_at(b, 5),
            time_ms: u64_at(b, 13),
            rtype: b[4],
            frame,
            payload_len: u32_at(b, 0) as usize,
        })?;
        if r.position != position {
            return Err(LogError::Corruption {
                file: seg.path.clone(),
                offset,
                detail: format!("record position {}, expected {position}", r.position),
            });
        }
        Ok(r)
    }
}
