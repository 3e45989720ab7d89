//! Recovery of the file log: a torn final record is cut off and reported,
//! damage before the tail is `Corruption` naming file and offset (unless the
//! user asked to truncate there), newer formats are refused, and no bytes
//! on disk make opening panic.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use logkv_fs::{DynFs, FileSystem, SimFs, StdFs};
use logkv_log::format::{
    begin_frame, seal_frame, SegmentHeader, FORMAT_VERSION, FRAME_HEADER_LEN, FRAME_OVERHEAD,
    SEGMENT_HEADER_LEN,
};
use logkv_log::{
    Durability, FileLog, Loc, LogConfig, LogError, RecordType, RecoveryMode, RecoveryReport, ReplayStart,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const DIR: &str = "/log";

fn config(segment_size_bytes: u64, recovery: RecoveryMode) -> LogConfig {
    LogConfig { segment_size_bytes, durability: Durability::Always, recovery }
}

/// A record as replay handed it over.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Replayed {
    position: u64,
    payload: Vec<u8>,
    loc: Loc,
}

fn open(
    fs: DynFs,
    dir: &Path,
    config: LogConfig,
) -> Result<(FileLog, RecoveryReport, Vec<Replayed>), LogError> {
    let mut records = Vec::new();
    let mut visit = |r: logkv_log::RecordRef<'_>| -> Result<u64, LogError> {
        assert_eq!(r.rtype, RecordType::Batch);
        records.push(Replayed { position: r.position, payload: r.payload.to_vec(), loc: r.payload_loc });
        Ok(r.position)
    };
    let (log, report) =
        FileLog::open(fs, dir, config, ReplayStart::default(), 0, &mut visit, &mut |_, _| {})?;
    Ok((log, report, records))
}

fn sim(fs: &SimFs) -> DynFs {
    Arc::new(fs.clone())
}

fn payload(i: u64) -> Vec<u8> {
    // 37 + i bytes: the length's low byte is never zero.
    (0..37 + i).map(|b| (b as u8).wrapping_mul(7).wrapping_add(i as u8) | 1).collect()
}

/// Appends and acknowledges one record; returns where its payload lives.
fn append(log: &FileLog, data: &[u8]) -> Loc {
    let mut at = None;
    let position = log
        .append::<LogError>(RecordType::Batch, data.len(), None, |position, loc, buf| {
            buf.copy_from_slice(data);
            at = Some(loc);
            Ok(position)
        })
        .expect("append");
    log.commit(position).expect("commit");
    at.expect("fill ran")
}

/// Writes `n` records and closes the log; returns their payload locations.
fn write_log(fs: DynFs, dir: &Path, segment_size_bytes: u64, n: u64) -> Vec<Loc> {
    let (log, report, records) = open(fs, dir, config(segment_size_bytes, RecoveryMode::Strict)).unwrap();
    assert!(records.is_empty() && report.truncation.is_none());
    let locs = (1..=n).map(|i| append(&log, &payload(i))).collect();
    log.close().unwrap();
    locs
}

fn segment_path(dir: &Path, id: u32) -> PathBuf {
    dir.join(format!("{id:08}.log"))
}

fn frame_start(loc: Loc) -> u64 {
    loc.offset() - FRAME_HEADER_LEN as u64
}

fn frame_len(i: u64) -> u64 {
    (FRAME_OVERHEAD + payload(i).len()) as u64
}

fn read_file(fs: &SimFs, path: &Path) -> Vec<u8> {
    let f = fs.open(path).unwrap();
    let mut buf = vec![0; f.len().unwrap() as usize];
    f.read_exact_at(&mut buf, 0).unwrap();
    buf
}

fn write_at(fs: &SimFs, path: &Path, offset: u64, bytes: &[u8]) {
    let f = fs.open(path).unwrap();
    f.write_at(bytes, offset).unwrap();
    f.sync_data().unwrap();
}

/// Checks the replayed records are the first `n` written, readable at
/// their locations through the reopened log.
fn assert_records(log: &FileLog, records: &[Replayed], n: u64, locs: &[Loc]) {
    assert_eq!(records.len() as u64, n);
    for (i, r) in records.iter().enumerate() {
        let i = i as u64 + 1;
        assert_eq!((r.position, &r.payload, r.loc), (i, &payload(i), locs[i as usize - 1]));
        let read = log.read(r.loc, r.payload.len(), <[u8]>::to_vec).unwrap();
        assert_eq!(read, payload(i));
    }
}

/// After recovery cut the log: a new record goes where the cut was, and a
/// second open is clean and finds it.
fn assert_writable_and_clean(fs: DynFs, dir: &Path, log: FileLog, kept: u64, locs: &[Loc]) {
    let new = b"written after recovery".to_vec();
    let at = append(&log, &new);
    log.close().unwrap();
    let (log, report, records) = open(fs, dir, config(4096, RecoveryMode::Strict)).unwrap();
    assert_eq!(report.truncation, None, "the second open must be clean");
    assert_records(&log, &records[..kept as usize], kept, locs);
    let last = records.last().unwrap();
    assert_eq!((last.position, &last.payload, last.loc), (kept + 1, &new, at));
}

#[test]
fn torn_final_record_cut_at_every_byte_is_truncated_and_reported() {
    let fs = SimFs::new();
    let dir = Path::new(DIR);
    let locs = write_log(sim(&fs), dir, 4096, 5);
    let seg = segment_path(dir, 1);
    let start = frame_start(locs[4]);
    let len = frame_len(5);
    for cut in 0..len {
        // A copy of the disk whose last frame kept only its first `cut` bytes.
        let disk = fs.crash_process();
        write_at(&disk, &seg, start + cut, &vec![0; (len - cut) as usize]);
        let (log, report, records) = open(sim(&disk), dir, config(4096, RecoveryMode::Strict)).unwrap();
        assert_records(&log, &records, 4, &locs);
        if cut == 0 {
            assert_eq!(report.truncation, None, "an unwritten frame is the clean end of the log");
        } else {
            let t = report.truncation.clone().unwrap_or_else(|| panic!("cut {cut}: no truncation reported"));
            assert_eq!((t.file.as_path(), t.offset), (seg.as_path(), start), "cut {cut}");
            assert!(t.dropped_bytes > 0 && t.dropped_bytes <= cut, "cut {cut}: dropped {}", t.dropped_bytes);
            assert!(t.removed_segments.is_empty());
            assert!(read_file(&disk, &seg)[start as usize..].iter().all(|&b| b == 0), "dropped bytes zeroed");
        }
        assert_writable_and_clean(sim(&disk), dir, log, 4, &locs);
    }
}

#[test]
fn torn_final_record_of_a_real_file_cut_short_is_truncated_and_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let original = tmp.path().join("original");
    let locs = write_log(Arc::new(StdFs), &original, 4096, 5);
    let bytes = std::fs::read(segment_path(&original, 1)).unwrap();
    let start = frame_start(locs[4]);
    let len = frame_len(5);
    for cut in 1..len {
        // The file ends inside the last frame, as if its length was lost too.
        let dir = tmp.path().join(format!("cut{cut}"));
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(segment_path(&dir, 1), &bytes[..(start + cut) as usize]).unwrap();
        let (log, report, records) = open(Arc::new(StdFs), &dir, config(4096, RecoveryMode::Strict)).unwrap();
        assert_records(&log, &records, 4, &locs);
        let t = report.truncation.clone().unwrap_or_else(|| panic!("cut {cut}: no truncation reported"));
        assert_eq!((t.file, t.offset), (segment_path(&dir, 1), start));
        assert!(t.dropped_bytes > 0, "cut {cut}");
        assert_writable_and_clean(Arc::new(StdFs), &dir, log, 4, &locs);
    }
}

#[test]
fn torn_record_at_the_start_of_a_new_segment_is_truncated_and_reported() {
    let fs = SimFs::new();
    let dir = Path::new(DIR);
    // 200-byte segments hold two records each: record 5 opens segment 3.
    let locs = write_log(sim(&fs), dir, 200, 5);
    assert_eq!(locs[4].segment(), 3);
    let seg = segment_path(dir, 3);
    let start = frame_start(locs[4]);
    write_at(&fs, &seg, start + 9, &vec![0; frame_len(5) as usize - 9]);
    let (log, report, records) = open(sim(&fs), dir, config(200, RecoveryMode::Strict)).unwrap();
    assert_records(&log, &records, 4, &locs);
    let t = report.truncation.clone().unwrap();
    assert_eq!((t.file, t.offset), (seg, SEGMENT_HEADER_LEN));
    assert_writable_and_clean(sim(&fs), dir, log, 4, &locs);
}

/// Flips one payload byte of record `victim`, opens strictly and expects
/// `Corruption` at that frame; the files are left as they were.
fn assert_corruption_at(fs: &SimFs, dir: &Path, locs: &[Loc], victim: usize, segment_size_bytes: u64) {
    let loc = locs[victim];
    let seg = segment_path(dir, loc.segment());
    let before: Vec<Vec<u8>> =
        (1..=locs.last().unwrap().segment()).map(|s| read_file(fs, &segment_path(dir, s))).collect();
    let mut byte = [0u8];
    fs.open(&seg).unwrap().read_exact_at(&mut byte, loc.offset() + 3).unwrap();
    write_at(fs, &seg, loc.offset() + 3, &[byte[0] ^ 0x20]);
    let damaged: Vec<Vec<u8>> =
        (1..=locs.last().unwrap().segment()).map(|s| read_file(fs, &segment_path(dir, s))).collect();
    match open(sim(fs), dir, config(segment_size_bytes, RecoveryMode::Strict)) {
        Err(LogError::Corruption { file, offset, detail }) => {
            assert_eq!((file.as_path(), offset), (seg.as_path(), frame_start(loc)), "{detail}");
            let message = LogError::Corruption { file, offset, detail }.to_string();
            assert!(message.contains(&seg.display().to_string()) && message.contains(&offset.to_string()));
        }
        Err(other) => panic!("expected Corruption, got {other}"),
        Ok((_, report, records)) => panic!("opened despite damage: {report:?}, {} records", records.len()),
    }
    let after: Vec<Vec<u8>> =
        (1..=locs.last().unwrap().segment()).map(|s| read_file(fs, &segment_path(dir, s))).collect();
    assert_eq!(after, damaged, "a refused open must not change the files");
    assert_ne!(before, damaged);
}

#[test]
fn bad_checksum_before_intact_records_is_corruption_naming_file_and_frame_offset() {
    // Early in the first segment, with more records in it and after it.
    let fs = SimFs::new();
    let locs = write_log(sim(&fs), Path::new(DIR), 200, 12);
    assert!(locs.last().unwrap().segment() >= 4);
    assert_corruption_at(&fs, Path::new(DIR), &locs, 1, 200);
    // The last record of a middle segment, intact segments after it.
    let fs = SimFs::new();
    let locs = write_log(sim(&fs), Path::new(DIR), 200, 12);
    let victim = locs.iter().rposition(|l| l.segment() == 2).unwrap();
    assert_corruption_at(&fs, Path::new(DIR), &locs, victim, 200);
    // In the last segment, with one intact record after it.
    let fs = SimFs::new();
    let locs = write_log(sim(&fs), Path::new(DIR), 4096, 6);
    assert_corruption_at(&fs, Path::new(DIR), &locs, 4, 4096);
}

#[test]
fn truncate_at_corruption_mode_keeps_the_prefix_and_reports_what_it_dropped() {
    let fs = SimFs::new();
    let dir = Path::new(DIR);
    let locs = write_log(sim(&fs), dir, 300, 12);
    let victim = 3;
    let loc = locs[victim];
    let seg = segment_path(dir, loc.segment());
    let last_segment = locs.last().unwrap().segment();
    let mut byte = [0u8];
    fs.open(&seg).unwrap().read_exact_at(&mut byte, loc.offset()).unwrap();
    write_at(&fs, &seg, loc.offset(), &[byte[0] ^ 1]);
    assert!(matches!(
        open(sim(&fs), dir, config(300, RecoveryMode::Strict)),
        Err(LogError::Corruption { .. })
    ));
    let (log, report, records) =
        open(sim(&fs), dir, config(300, RecoveryMode::TruncateAtCorruption)).unwrap();
    assert_records(&log, &records, victim as u64, &locs);
    let t = report.truncation.clone().expect("the cut is reported");
    assert_eq!((t.file.as_path(), t.offset), (seg.as_path(), frame_start(loc)));
    let later: Vec<PathBuf> = (loc.segment() + 1..=last_segment).map(|s| segment_path(dir, s)).collect();
    assert_eq!(t.removed_segments, later);
    assert!(t.dropped_bytes >= (12 - victim as u64) * frame_len(victim as u64 + 1));
    assert!(t.reason.contains("checksum"), "{}", t.reason);
    assert_writable_and_clean(sim(&fs), dir, log, victim as u64, &locs);
}

#[test]
fn segment_header_with_a_newer_format_version_is_refused_as_too_new() {
    let fs = SimFs::new();
    let dir = Path::new(DIR);
    let locs = write_log(sim(&fs), dir, 300, 6);
    let last = locs.last().unwrap().segment();
    let newer = SegmentHeader { version: FORMAT_VERSION + 1, segment: last, first_position: 99 };
    write_at(&fs, &segment_path(dir, last), 0, &newer.encode());
    match open(sim(&fs), dir, config(300, RecoveryMode::TruncateAtCorruption)) {
        Err(e @ LogError::TooNew { .. }) => {
            let LogError::TooNew { ref file, what, found, supported } = e else { unreachable!() };
            assert_eq!(file, &segment_path(dir, last));
            assert_eq!(
                (what, found, supported),
                ("format version", u32::from(FORMAT_VERSION) + 1, u32::from(FORMAT_VERSION))
            );
            let message = e.to_string();
            assert!(
                message.contains("upgrade") && message.contains(&format!("{:08}.log", last)),
                "{message}"
            );
        }
        other => panic!("expected TooNew, got {:?}", other.map(|x| x.1)),
    }
}

#[test]
fn unknown_record_type_is_refused_as_too_new() {
    let fs = SimFs::new();
    let dir = Path::new(DIR);
    let locs = write_log(sim(&fs), dir, 4096, 3);
    // A well-formed frame of a type this code does not know, after the last record.
    let mut frame = Vec::new();
    let start = begin_frame(&mut frame, RecordType::Batch, 4, 0, 5);
    frame[start + 4] = 77;
    frame[start + FRAME_HEADER_LEN..].copy_from_slice(b"newer");
    seal_frame(&mut frame, start);
    let at = frame_start(locs[2]) + frame_len(3);
    write_at(&fs, &segment_path(dir, 1), at, &frame);
    for mode in [RecoveryMode::Strict, RecoveryMode::TruncateAtCorruption] {
        match open(sim(&fs), dir, config(4096, mode)) {
            Err(e @ LogError::TooNew { what: "record type", found: 77, .. }) => {
                assert!(e.to_string().contains("upgrade"), "{e}");
            }
            other => panic!("{mode:?}: expected TooNew, got {:?}", other.map(|x| x.1)),
        }
    }
}

#[test]
fn missing_middle_segment_is_corruption() {
    let fs = SimFs::new();
    let dir = Path::new(DIR);
    let locs = write_log(sim(&fs), dir, 200, 12);
    assert!(locs.last().unwrap().segment() >= 4);
    fs.remove_file(&segment_path(dir, 2)).unwrap();
    for mode in [RecoveryMode::Strict, RecoveryMode::TruncateAtCorruption] {
        match open(sim(&fs), dir, config(200, mode)) {
            Err(LogError::Corruption { file, offset: 0, detail }) => {
                assert_eq!(file, segment_path(dir, 2));
                assert!(detail.contains("missing"), "{detail}");
            }
            other => panic!("{mode:?}: expected Corruption, got {:?}", other.map(|x| x.1)),
        }
    }
}

#[test]
fn garbage_segment_before_intact_segments_is_corruption() {
    let fs = SimFs::new();
    let dir = Path::new(DIR);
    let locs = write_log(sim(&fs), dir, 300, 12);
    let mut rng = StdRng::seed_from_u64(1);
    let garbage: Vec<u8> = (0..300).map(|_| rng.random()).collect();
    write_at(&fs, &segment_path(dir, 2), 0, &garbage);
    match open(sim(&fs), dir, config(300, RecoveryMode::Strict)) {
        Err(LogError::Corruption { file, offset: 0, .. }) => assert_eq!(file, segment_path(dir, 2)),
        other => panic!("expected Corruption, got {:?}", other.map(|x| x.1)),
    }
    assert!(locs.len() > 3);
}

/// Random bytes in files named like segments, of any size, alone or after
/// a real log: opening never panics, and whatever it does not refuse it
/// reports (nothing is dropped silently).
#[test]
fn garbage_named_like_a_segment_never_panics_and_is_never_dropped_silently() {
    let mut rng = StdRng::seed_from_u64(7);
    for round in 0..300u32 {
        let fs = SimFs::new();
        let dir = Path::new(DIR);
        let real = round % 2 == 1;
        let segments = if real { write_log(sim(&fs), dir, 300, 5).last().unwrap().segment() } else { 0 };
        fs.create_dir_all(dir).unwrap();
        let len = [0, 5, 31, 32, 33, 64, 300, 4096][rng.random_range(0..8)];
        let mut garbage: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        let valid_header = len >= 32 && rng.random_bool(0.5);
        if valid_header {
            // A valid header in front of random frames.
            let h = SegmentHeader { version: FORMAT_VERSION, segment: segments + 1, first_position: 1 };
            garbage[..32].copy_from_slice(&h.encode());
        }
        let path = segment_path(dir, segments + 1);
        let f = fs.create(&path).unwrap();
        f.write_at(&garbage, 0).unwrap();
        drop(f);
        let nonzero = garbage[if valid_header { 32 } else { 0 }..].iter().any(|&b| b != 0);
        match open(sim(&fs), dir, config(300, RecoveryMode::Strict)) {
            Ok((_, report, records)) => {
                if nonzero && records.len() as u64 <= if real { 5 } else { 0 } {
                    assert!(
                        report.truncation.is_some(),
                        "round {round}: {len} bytes of garbage dropped without a report: {report:?} {}",
                        records.len()
                    );
                }
            }
            Err(LogError::Corruption { .. } | LogError::TooNew { .. }) => {}
            Err(other) => panic!("round {round}: unexpected error {other}"),
        }
    }
}

/// A copy of segment 1 saved as segment 2 (found by fuzzing): its header
/// names segment 1 and position 1, which once made recovery start replay
/// at the copy, skip the real segment, and reopen the log empty, handing
/// position 1 out again. The copy is a torn tail after the real records.
#[test]
fn a_segment_copied_under_a_later_name_does_not_hide_the_records_before_it() {
    for mode in [RecoveryMode::Strict, RecoveryMode::TruncateAtCorruption] {
        let fs = SimFs::new();
        let dir = Path::new(DIR);
        let locs = write_log(sim(&fs), dir, 4096, 5);
        assert!(locs.iter().all(|l| l.segment() == 1));
        let copy = read_file(&fs, &segment_path(dir, 1));
        let f = fs.create(&segment_path(dir, 2)).unwrap();
        f.write_at(&copy, 0).unwrap();
        f.sync_data().unwrap();
        let (log, report, records) = open(sim(&fs), dir, config(4096, mode)).unwrap();
        assert_records(&log, &records, 5, &locs);
        let cut = report.truncation.expect("the copy is reported");
        assert_eq!(cut.removed_segments, vec![segment_path(dir, 2)], "{mode:?}");
        assert_writable_and_clean(sim(&fs), dir, log, 5, &locs);
    }
}

/// A later segment whose header (checksum intact) says it starts at
/// position 0 (found by fuzzing): replay once started there, skipping the
/// records before it (and, finding none after, computed the last position
/// as 0 - 1). It is a reported torn tail after the records before it.
#[test]
fn a_later_segment_starting_at_position_0_does_not_hide_the_log() {
    let fs = SimFs::new();
    let dir = Path::new(DIR);
    let locs = write_log(sim(&fs), dir, 300, 12);
    let last = locs.last().unwrap().segment();
    assert!(last >= 3);
    let header = SegmentHeader { version: FORMAT_VERSION, segment: last, first_position: 0 };
    write_at(&fs, &segment_path(dir, last), 0, &header.encode());
    let kept = locs.iter().filter(|l| l.segment() < last).count() as u64;
    let (log, report, records) = open(sim(&fs), dir, config(300, RecoveryMode::Strict)).unwrap();
    assert_records(&log, &records, kept, &locs);
    let cut = report.truncation.expect("the segment is reported");
    assert_eq!(cut.removed_segments, vec![segment_path(dir, last)]);
}
