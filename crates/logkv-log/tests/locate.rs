//! Log time and lookups: a given time is kept unless it would go back,
//! records are found by position and by time through each segment's
//! sparse marks, and a segment of format 2 is refused with the way to
//! migrate it. A location read from a file that runs past any segment is
//! an error.

use std::path::Path;
use std::sync::Arc;

use logkv_fs::{DynFs, FileSystem, SimFs};
use logkv_log::format::{SegmentHeader, MAX_SEGMENT_BYTES, MIGRATABLE_VERSION};
use logkv_log::{Durability, FileLog, Loc, LogConfig, LogError, RecordType, RecoveryMode, ReplayStart};

const DIR: &str = "/log";

fn open(fs: &SimFs, segment_size_bytes: u64, start: ReplayStart) -> Result<FileLog, LogError> {
    let config =
        LogConfig { segment_size_bytes, durability: Durability::Always, recovery: RecoveryMode::Strict };
    let fs: DynFs = Arc::new(fs.clone());
    let mut visit = |r: logkv_log::RecordRef<'_>| -> Result<u64, LogError> { Ok(r.position) };
    Ok(FileLog::open(fs, Path::new(DIR), config, start, 0, &mut visit, &mut |_, _| {})?.0)
}

/// Appends a record of `len` bytes (each its position's low byte) at `time`.
fn append(log: &FileLog, len: usize, time: Option<u64>) -> u64 {
    let position = log
        .append::<LogError>(RecordType::Batch, len, time, |position, _, buf| {
            buf.fill(position as u8);
            Ok(position)
        })
        .unwrap();
    log.commit(position).unwrap();
    position
}

fn time_of(log: &FileLog, position: u64) -> u64 {
    log.locate(position).unwrap().expect("record").time_ms
}

#[test]
fn a_given_log_time_is_kept_unless_it_would_go_back() {
    let fs = SimFs::new();
    let log = open(&fs, 1 << 20, ReplayStart::default()).unwrap();
    append(&log, 10, Some(5_000));
    append(&log, 10, Some(4_000));
    append(&log, 10, Some(7_000));
    assert_eq!([1, 2, 3].map(|p| time_of(&log, p)), [5_000, 5_000, 7_000]);
    // The clock is far past the given times.
    append(&log, 10, None);
    assert!(time_of(&log, 4) > 1_600_000_000_000);
    drop(log);
    // A log whose records a compacted file replaced starts from its time.
    let fs = SimFs::new();
    let start =
        ReplayStart { first_position: 11, known_through: 10, time_ms: 9_000, ..ReplayStart::default() };
    let log = open(&fs, 1 << 20, start).unwrap();
    assert_eq!(append(&log, 10, Some(8_000)), 11);
    assert_eq!(time_of(&log, 11), 9_000);
}

#[test]
fn records_are_found_by_position_and_time_across_segments_and_marks() {
    let fs = SimFs::new();
    let log = open(&fs, 256 << 10, ReplayStart::default()).unwrap();
    // Records of 1 to 9 KiB, so segments hold several marks; ten
    // records share each time.
    let n = 300u64;
    for p in 1..=n {
        append(&log, 1024 * (1 + (p as usize * 7) % 9), Some(1_000 + p / 10 * 10));
    }
    assert!(log.segment_info().unwrap().len() > 3);
    let check = |log: &FileLog| {
        for p in (1..=n).rev().step_by(7).chain([1, n]) {
            let meta = log.locate(p).unwrap().expect("record");
            assert_eq!((meta.position, meta.time_ms), (p, 1_000 + p / 10 * 10));
            let first = log.read_record(p, |r| (r.rtype, r.payload.len(), r.payload[0])).unwrap();
            assert_eq!(first, Some((RecordType::Batch, meta.payload_len, p as u8)));
        }
        assert_eq!(log.locate(0).unwrap(), None);
        assert_eq!(log.locate(n + 1).unwrap(), None);
        assert_eq!(log.position_at_time(999).unwrap(), None);
        for t in [1_000, 1_005, 1_010, 1_555, 1_990, 4_000, 3_000] {
            let expected = (1..=n).filter(|p| 1_000 + p / 10 * 10 <= t).max();
            assert_eq!(log.position_at_time(t).unwrap(), expected, "time {t}");
        }
    };
    check(&log);
    log.close().unwrap();
    check(&open(&fs, 256 << 10, ReplayStart::default()).unwrap());
}

#[test]
fn a_segment_of_format_2_is_refused_with_the_way_to_migrate_it() {
    let fs = SimFs::new();
    let log = open(&fs, 4096, ReplayStart::default()).unwrap();
    append(&log, 10, None);
    log.close().unwrap();
    let old = SegmentHeader { version: MIGRATABLE_VERSION, segment: 1, first_position: 1 };
    let file = fs.open(&Path::new(DIR).join("00000001.log")).unwrap();
    file.write_at(&old.encode(), 0).unwrap();
    let err = open(&fs, 4096, ReplayStart::default()).unwrap_err();
    assert!(matches!(err, LogError::NeedsMigration { found: 2, .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("written by an older logkv (format 2)")
            && message.contains("logkv migrate --data-dir /log --out NEW_DIR"),
        "{message}"
    );
}

/// Found by fuzzing (`fuzz/regressions/checkpoint/`, `compacted/`): a
/// checkpoint or compacted file can name any location, and one whose end
/// lies past the largest segment offset tripped an assertion (and in a
/// release build wrapped into the segment number) instead of failing.
#[test]
fn a_read_running_past_the_largest_segment_offset_is_corruption() {
    let fs = SimFs::new();
    let log = open(&fs, 4096, ReplayStart::default()).unwrap();
    append(&log, 10, None);
    for (offset, len) in [(MAX_SEGMENT_BYTES - 1, 2), (MAX_SEGMENT_BYTES - 100, 100), (40, usize::MAX)] {
        match log.read(Loc::new(1, offset), len, <[u8]>::to_vec) {
            Err(LogError::Corruption { offset: at, .. }) => assert_eq!(at, offset),
            other => panic!("offset {offset}, {len} bytes: {other:?}"),
        }
    }
}
