//! Read-only verification of a log directory: every segment is walked frame
//! by frame and every checksum checked, without opening the log — opening
//! would truncate a torn tail, and an inspection must change nothing.
//!
//! Damage is classified with the recovery rules of `docs/format.md`, so
//! [`Damage::is_torn_tail`] says exactly what a strict open would cut off
//! rather than refuse.

use std::path::{Path, PathBuf};

use logkv_fs::FileSystem;

use crate::error::{LogError, Result};
use crate::format::{
    intact_frame_from, read_frame_in_segment, FrameRead, HeaderError, RecordType, SegmentHeader,
    FORMAT_VERSION,
};
use crate::segment::Segment;

/// What one segment file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    /// The segment file.
    pub file: PathBuf,
    /// Its length (the preallocated capacity).
    pub capacity: u64,
    /// Intact records before the first damage.
    pub records: u64,
    /// Position of the first of those records.
    pub first_position: Option<u64>,
    /// Position of the last of those records.
    pub last_position: Option<u64>,
    /// Bytes of those records' frames.
    pub data_bytes: u64,
    /// The first damage in this segment, if any.
    pub damage: Option<Damage>,
}

/// The first anomaly found in a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// Byte offset of the damaged header (0) or frame.
    pub offset: u64,
    /// What was wrong.
    pub detail: String,
    /// Whether it looks like a write cut short rather than bit rot.
    pub looks_torn: bool,
    /// Whether an intact record follows it, in this segment or a later one.
    pub intact_follows: bool,
}

impl Damage {
    /// Whether recovery treats this as the normal end of a crashed log
    /// (truncated and reported) rather than corruption.
    pub fn is_torn_tail(&self) -> bool {
        self.looks_torn || !self.intact_follows
    }
}

/// Checks every segment in `dir` and describes each, oldest first. Only
/// unreadable files or a format newer than this code are errors; damage is
/// reported in the result.
pub fn inspect(fs: &dyn FileSystem, dir: &Path) -> Result<Vec<SegmentInfo>> {
    inspect_from(fs, dir, 1)
}

/// [`inspect`] for a log whose oldest segment starts at `first_position`
/// (after a compacted file that replaced the segments before it).
pub fn inspect_from(fs: &dyn FileSystem, dir: &Path, first_position: u64) -> Result<Vec<SegmentInfo>> {
    let ids = Segment::list(fs, dir)?;
    let mut infos: Vec<SegmentInfo> = Vec::with_capacity(ids.len());
    // Where the next segment must start; known only after a clean segment.
    let mut next_position = Some(first_position);
    for (i, &id) in ids.iter().enumerate() {
        let seg = Segment::open(fs, &dir.join(Segment::file_name(id)), id)?;
        let mut info = check_segment(&seg, next_position, i + 1 == ids.len())?;
        if i > 0 && id != ids[i - 1] + 1 {
            // A later segment exists only once the missing one filled up,
            // so the log certainly went on past the gap.
            let detail = format!("segment {} is missing before this one", Segment::file_name(ids[i - 1] + 1));
            info.damage = Some(Damage { offset: 0, detail, looks_torn: false, intact_follows: true });
        }
        next_position = match (&info.damage, info.last_position) {
            (Some(_), _) => None,
            (None, last) => last.map(|p| p.saturating_add(1)).or(next_position),
        };
        infos.push(info);
    }
    let mut later_intact = false;
    for info in infos.iter_mut().rev() {
        if let Some(d) = &mut info.damage {
            d.intact_follows |= later_intact;
        }
        later_intact |= info.records > 0 || info.damage.as_ref().is_some_and(|d| d.intact_follows);
    }
    Ok(infos)
}

/// Walks one segment up to its first damage. `start` is the position its
/// first record must have, when the segments before it say so; `last`
/// says it is the newest segment (the only one whose header a crash can
/// have left unwritten).
fn check_segment(seg: &Segment, start: Option<u64>, last: bool) -> Result<SegmentInfo> {
    let bytes = seg.contents()?;
    let mut info = SegmentInfo {
        file: seg.path.clone(),
        capacity: seg.capacity,
        records: 0,
        first_position: None,
        last_position: None,
        data_bytes: 0,
        damage: None,
    };
    let header_damage = |looks_torn, detail: String| {
        let min_position = start.unwrap_or(1);
        let intact_follows = intact_frame_from(&bytes, Segment::data_start() as usize, min_position);
        Some(Damage { offset: 0, detail, looks_torn, intact_follows })
    };
    let header = match SegmentHeader::decode(&bytes) {
        Ok(h) => h,
        Err(HeaderError::TooNew(v)) => {
            return Err(too_new(seg, "format version", v.into(), FORMAT_VERSION.into()))
        }
        Err(HeaderError::TooOld(v)) => return Err(LogError::too_old(&seg.path, v)),
        Err(HeaderError::Unwritten) => {
            info.damage = header_damage(last, "segment header never written".into());
            return Ok(info);
        }
        Err(HeaderError::Damaged) => {
            info.damage = header_damage(false, "segment header checksum mismatch".into());
            return Ok(info);
        }
    };
    if header.segment != seg.id {
        info.damage = header_damage(false, format!("header names segment {}", header.segment));
        return Ok(info);
    }
    if let Some(expected) = start.filter(|&s| s != header.first_position) {
        let detail = format!("segment starts at position {}, expected {expected}", header.first_position);
        info.damage = header_damage(true, detail);
        return Ok(info);
    }
    let mut expected = header.first_position;
    let mut off = Segment::data_start() as usize;
    let (looks_torn, detail) = loop {
        match read_frame_in_segment(&bytes, off, expected) {
            FrameRead::Intact(f) if f.position != expected => {
                break (false, format!("record position {}, expected {expected}", f.position));
            }
            FrameRead::Intact(f) => {
                if RecordType::from_byte(f.rtype).is_none() {
                    return Err(too_new(seg, "record type", f.rtype.into(), RecordType::NEWEST as u32));
                }
                info.first_position.get_or_insert(expected);
                info.last_position = Some(expected);
                info.records += 1;
                info.data_bytes += f.len() as u64;
                // Positions come from disk: saturate rather than overflow on garbage.
                expected = expected.saturating_add(1);
                off += f.len();
            }
            FrameRead::Unwritten if bytes[off..].iter().all(|&b| b == 0) => return Ok(info),
            FrameRead::Unwritten => break (true, "data after unwritten space".to_string()),
            FrameRead::Damaged { torn: true } => break (true, "record cut short".to_string()),
            FrameRead::Damaged { torn: false } => break (false, "record checksum mismatch".to_string()),
        }
    };
    let intact_follows = intact_frame_from(&bytes, off + 1, expected);
    info.damage = Some(Damage { offset: off as u64, detail, looks_torn, intact_follows });
    Ok(info)
}

fn too_new(seg: &Segment, what: &'static str, found: u32, supported: u32) -> LogError {
    LogError::TooNew { file: seg.path.clone(), what, found, supported }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{begin_frame, seal_frame, FRAME_OVERHEAD, SEGMENT_HEADER_LEN};
    use logkv_fs::StdFs;

    /// Writes segment `id` holding records `first..first + n` of 8-byte payloads.
    fn segment(dir: &Path, id: u32, first: u64, n: u64) -> PathBuf {
        let mut buf =
            SegmentHeader { version: FORMAT_VERSION, segment: id, first_position: first }.encode().to_vec();
        for p in first..first + n {
            let start = begin_frame(&mut buf, RecordType::Batch, p, 0, 8);
            seal_frame(&mut buf, start);
        }
        buf.resize(4096, 0);
        let path = dir.join(Segment::file_name(id));
        std::fs::write(&path, buf).unwrap();
        path
    }

    fn flip(path: &Path, offset: usize) {
        let mut b = std::fs::read(path).unwrap();
        b[offset] ^= 0x01;
        std::fs::write(path, b).unwrap();
    }

    const FRAME: usize = FRAME_OVERHEAD + 8;

    #[test]
    fn a_clean_log_has_no_damage_and_counts_every_record() {
        let dir = tempfile::tempdir().unwrap();
        segment(dir.path(), 1, 1, 3);
        segment(dir.path(), 2, 4, 2);
        let infos = inspect(&StdFs, dir.path()).unwrap();
        let summary: Vec<_> = infos.iter().map(|i| (i.records, i.first_position, i.last_position)).collect();
        assert_eq!(summary, vec![(3, Some(1), Some(3)), (2, Some(4), Some(5))]);
        assert!(infos.iter().all(|i| i.damage.is_none() && i.data_bytes == i.records * FRAME as u64));
    }

    #[test]
    fn a_flipped_byte_before_intact_records_is_corruption_and_nothing_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = segment(dir.path(), 1, 1, 4);
        let offset = SEGMENT_HEADER_LEN as usize + FRAME;
        flip(&path, offset + 14);
        let before = std::fs::read(&path).unwrap();
        let infos = inspect(&StdFs, dir.path()).unwrap();
        let d = infos[0].damage.clone().unwrap();
        assert_eq!((d.offset, d.looks_torn, d.intact_follows), (offset as u64, false, true));
        assert!(!d.is_torn_tail());
        assert_eq!(infos[0].records, 1);
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    #[test]
    fn a_zeroed_end_of_the_last_record_is_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = segment(dir.path(), 1, 1, 3);
        let mut b = std::fs::read(&path).unwrap();
        let end = SEGMENT_HEADER_LEN as usize + 3 * FRAME;
        b[end - 3..end].fill(0);
        std::fs::write(&path, b).unwrap();
        let d = inspect(&StdFs, dir.path()).unwrap()[0].damage.clone().unwrap();
        assert!(d.looks_torn && !d.intact_follows && d.is_torn_tail());
    }

    #[test]
    fn damage_counts_as_mid_log_when_a_later_segment_holds_records() {
        let dir = tempfile::tempdir().unwrap();
        let first = segment(dir.path(), 1, 1, 2);
        segment(dir.path(), 2, 3, 1);
        flip(&first, SEGMENT_HEADER_LEN as usize + 14);
        let infos = inspect(&StdFs, dir.path()).unwrap();
        let d = infos[0].damage.clone().unwrap();
        assert!(d.intact_follows && !d.is_torn_tail());
        assert!(infos[1].damage.is_none(), "a segment after damage is still checked on its own");
    }

    #[test]
    fn random_damage_is_reported_as_a_strict_open_would_treat_it() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for round in 0..200 {
            let dir = tempfile::tempdir().unwrap();
            let path = segment(dir.path(), 1, 1, 3);
            let mut b = std::fs::read(&path).unwrap();
            let from = if round % 2 == 0 { 0 } else { SEGMENT_HEADER_LEN as usize };
            let len = rng.random_range(1..64);
            let at = rng.random_range(from..b.len() - len);
            rng.fill(&mut b[at..at + len]);
            b.truncate(rng.random_range(0..=b.len()));
            std::fs::write(&path, b).unwrap();
            let corrupt = inspect(&StdFs, dir.path())
                .map(|infos| infos.iter().any(|i| i.damage.as_ref().is_some_and(|d| !d.is_torn_tail())));
            let opened = crate::FileLog::open(
                std::sync::Arc::new(StdFs),
                dir.path(),
                crate::LogConfig { segment_size_bytes: 4096, ..Default::default() },
                crate::ReplayStart::default(),
                0,
                &mut |r| Ok::<_, LogError>(r.position),
                &mut |_, _| {},
            );
            let refused = matches!(opened, Err(LogError::Corruption { .. }));
            assert_eq!(corrupt.ok(), Some(refused), "round {round}: inspect and a strict open disagree");
        }
    }

    #[test]
    fn a_missing_segment_and_a_position_gap_are_damage() {
        let dir = tempfile::tempdir().unwrap();
        segment(dir.path(), 1, 1, 2);
        segment(dir.path(), 3, 9, 1);
        let infos = inspect(&StdFs, dir.path()).unwrap();
        assert!(!infos[1].damage.clone().unwrap().is_torn_tail());
        std::fs::remove_file(dir.path().join(Segment::file_name(3))).unwrap();
        segment(dir.path(), 2, 9, 1);
        let d = inspect(&StdFs, dir.path()).unwrap()[1].damage.clone().unwrap();
        assert!(d.detail.contains("expected 3") && d.is_torn_tail(), "{d:?}");
    }
}
