//! What a store reads from its directory: log segments (framing and
//! recovery, then the records' payloads as the store replays them),
//! checkpoints and compacted files. Each target lays the input out as
//! files of a store directory on the simulated file system, opens it, and
//! reads back everything it holds.
//!
//! Checksums would stop almost every mutated input at the first frame, so
//! an input's first byte can ask for them to be recomputed ("sealed")
//! before the files are written: the fuzzer then reaches what lies behind
//! them, which is what a buggy writer (or anyone who can write the files)
//! could put there.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use logkv_fs::{FileSystem, SimFs};
use logkv_log::format::{
    u32_at, u64_at, FRAME_END, FRAME_HEADER_LEN, FRAME_OVERHEAD, MAX_LOG_SEGMENT_ID, SEGMENT_MAGIC,
};
use logkv_log::{Durability, FileLog, LogConfig, RecordRef, RecoveryMode, ReplayStart};
use logkv_store::{MaintenanceOptions, ScanOptions, Store, StoreOptions};

/// Where the store lives on the simulated file system.
pub(crate) const DIR: &str = "/db";
/// Small segments, so that a few records span several.
pub(crate) const SEGMENT_BYTES: u64 = 4096;
/// The first number a compacted file gets (the store's `FIRST_HEAD_ID`).
pub(crate) const FIRST_HEAD_ID: u32 = MAX_LOG_SEGMENT_ID + 1;
/// Bytes before the first frame of a segment, checkpoint and compacted file.
const SEGMENT_HEADER: usize = 32;
const CHECKPOINT_HEADER: usize = 128;
const HEAD_HEADER: usize = 128;
/// Where the header checksum of a checkpoint and a compacted file is.
const HEADER_CRC_AT: usize = 124;

/// Input: a flags byte (bit 0: seal; bit 1: recover with `truncate`
/// instead of `strict`), then segment files one after the other (each
/// starts with the segment magic; bytes before the first magic make a
/// segment of their own).
///
/// Checks: recovery hands over records at consecutive positions from 1,
/// each of them a frame whose checksum matches in the bytes as written;
/// opening the log again finds the same records and nothing more to
/// truncate; and the store then opens on those segments or fails with an
/// error, and every key it lists can be read.
pub(crate) fn check_segments(data: &[u8]) {
    let [flags, input @ ..] = data else { return };
    let mut segments = split_segments(input);
    if flags & 1 == 1 {
        segments.iter_mut().for_each(|s| seal_segment(s));
    }
    let recovery = if flags & 2 == 2 { RecoveryMode::TruncateAtCorruption } else { RecoveryMode::Strict };
    let fs = SimFs::new();
    let files: Vec<(String, Vec<u8>)> =
        segments.into_iter().enumerate().map(|(i, bytes)| (format!("{:08}.log", i + 1), bytes)).collect();
    write_files(&fs, &files);

    let Some(records) = recover(&fs, recovery) else { return };
    for (i, record) in records.iter().enumerate() {
        assert_eq!(record.position, i as u64 + 1, "positions are not consecutive");
        let (name, file) = &files[record.segment as usize - 1];
        assert!(intact_frame(file, record), "record {} in {name} fails its checksum", record.position);
    }
    let again = recover(&fs, recovery).expect("a recovered log opens again");
    assert_eq!(again, records, "a second recovery found other records");
    read_store(&fs);
}

/// Input: a flags byte (bit 0: seal), then a checkpoint file, placed
/// beside a small valid log.
///
/// Checks: listing checkpoints reports it or why it is unusable; the store
/// opens from it or fails with an error, and every key it lists can be
/// read (a checkpoint pointing at records the log lacks gives errors, not
/// panics or wrong-sized reads).
pub(crate) fn check_checkpoint(data: &[u8]) {
    let [flags, file @ ..] = data else { return };
    let mut file = file.to_vec();
    if flags & 1 == 1 {
        seal_header(&mut file, CHECKPOINT_HEADER);
        if file.len() >= CHECKPOINT_HEADER + 4 {
            let body_end = file.len() - 4;
            let crc = crc32c::crc32c(&file[CHECKPOINT_HEADER..body_end]);
            file[body_end..].copy_from_slice(&crc.to_le_bytes());
        }
    }
    let position = if file.len() >= 24 { u64_at(&file, 16) } else { 0 };
    let fs = SimFs::new();
    write_files(&fs, base_log());
    write_files(&fs, &[(format!("checkpoint-{position:020}.ckpt"), file)]);
    let _ = logkv_store::inspect_checkpoints(&fs, Path::new(DIR));
    read_store(&fs);
}

/// Input: a flags byte (bit 0: seal: also sets the file's id to the name
/// it is written under), then a compacted file.
///
/// Checks: inspecting it (which reads every block) reports it or an
/// error; the store opens on it or fails with an error, and every key it
/// lists can be read.
pub(crate) fn check_compacted(data: &[u8]) {
    let [flags, file @ ..] = data else { return };
    let mut file = file.to_vec();
    if flags & 1 == 1 {
        if file.len() >= 16 {
            file[12..16].copy_from_slice(&FIRST_HEAD_ID.to_le_bytes());
        }
        seal_header(&mut file, HEAD_HEADER);
        seal_frames(&mut file, HEAD_HEADER);
    }
    let fs = SimFs::new();
    write_files(&fs, &[(format!("{FIRST_HEAD_ID:08}.head"), file)]);
    let _ = logkv_store::inspect_compacted(&fs, Path::new(DIR));
    read_store(&fs);
}

/// A record as recovery handed it over.
#[derive(Debug, PartialEq, Eq)]
struct Recovered {
    position: u64,
    segment: u32,
    offset: u64,
    payload: Vec<u8>,
}

/// The records recovery hands over, or `None` if it refuses the log.
fn recover(fs: &SimFs, recovery: RecoveryMode) -> Option<Vec<Recovered>> {
    let mut records = Vec::new();
    let mut visit = |r: RecordRef<'_>| -> Result<u64, logkv_log::LogError> {
        let (segment, offset) = (r.payload_loc.segment(), r.payload_loc.offset());
        records.push(Recovered { position: r.position, segment, offset, payload: r.payload.to_vec() });
        Ok(r.position)
    };
    let config = LogConfig { segment_size_bytes: SEGMENT_BYTES, durability: Durability::Always, recovery };
    let opened = FileLog::open(
        Arc::new(fs.clone()),
        Path::new(DIR),
        config,
        ReplayStart::default(),
        0,
        &mut visit,
        &mut |_, _| {},
    );
    opened.ok().map(|_| records)
}

/// Whether `record` is an intact frame of `file`: its header names its
/// position and length, and checksum and end byte match.
fn intact_frame(file: &[u8], record: &Recovered) -> bool {
    let Some(start) = usize::try_from(record.offset).ok().and_then(|o| o.checked_sub(FRAME_HEADER_LEN))
    else {
        return false;
    };
    let end = start + FRAME_OVERHEAD + record.payload.len();
    let Some(frame) = file.get(start..end) else { return false };
    let body_end = FRAME_HEADER_LEN + record.payload.len();
    u32_at(frame, 0) as usize == record.payload.len()
        && u64_at(frame, 5) == record.position
        && frame[FRAME_HEADER_LEN..body_end] == record.payload[..]
        && crc32c::crc32c(&frame[..body_end]) == u32_at(frame, body_end)
        && frame[body_end + 4] == FRAME_END
}

/// Opens the store in [`DIR`] and reads every key it lists, its value and
/// its history, and the applied records of the first positions by
/// position. Errors are fine; panics are not.
fn read_store(fs: &SimFs) {
    let Ok(store) = Store::open(DIR, options(fs)) else { return };
    let keys: Vec<Vec<u8>> =
        store.scan(ScanOptions::default()).filter_map(|r| r.ok().map(|(k, _)| k)).collect();
    for key in keys {
        let _ = store.get(&key);
        let _ = store.history(&key);
    }
    for position in 1..store.next_position().min(64) {
        let _ = store.applied_at(position);
    }
    let _ = store.close();
}

/// Store options for a store on `fs` that never maintains itself.
pub(crate) fn options(fs: &SimFs) -> StoreOptions {
    StoreOptions {
        fs: Arc::new(fs.clone()),
        log: LogConfig {
            segment_size_bytes: SEGMENT_BYTES,
            durability: Durability::Always,
            recovery: RecoveryMode::Strict,
        },
        maintenance: MaintenanceOptions {
            checkpoint_interval_bytes: 0,
            compact_min_bytes: u64::MAX,
            ..Default::default()
        },
        ..StoreOptions::default()
    }
}

/// The segments of a small store with a few keys, written once.
fn base_log() -> &'static [(String, Vec<u8>)] {
    static BASE: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    BASE.get_or_init(|| {
        let fs = SimFs::new();
        crate::seeds::small_store(&fs);
        read_files(&fs).into_iter().filter(|(name, _)| name.ends_with(".log")).collect()
    })
}

/// Writes `files` into [`DIR`].
fn write_files(fs: &SimFs, files: &[(String, Vec<u8>)]) {
    let dir = Path::new(DIR);
    fs.create_dir_all(dir).expect("create dir");
    for (name, bytes) in files {
        let file = fs.create(&dir.join(name)).expect("create file");
        file.write_at(bytes, 0).expect("write file");
        file.sync_data().expect("sync file");
    }
    fs.sync_dir(dir).expect("sync dir");
}

/// Every file in [`DIR`] with its bytes, by name.
pub(crate) fn read_files(fs: &SimFs) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(DIR);
    let names = fs.list_dir(dir).expect("list dir");
    names
        .into_iter()
        .map(|name| {
            let file = fs.open(&dir.join(&name)).expect("open file");
            let mut bytes = vec![0; file.len().expect("file length") as usize];
            file.read_exact_at(&mut bytes, 0).expect("read file");
            (name, bytes)
        })
        .collect()
}

/// Splits concatenated segment files before each segment magic.
fn split_segments(input: &[u8]) -> Vec<Vec<u8>> {
    let mut starts: Vec<usize> = input
        .windows(SEGMENT_MAGIC.len())
        .enumerate()
        .filter(|(_, w)| *w == SEGMENT_MAGIC)
        .map(|(i, _)| i)
        .collect();
    if starts.first() != Some(&0) {
        starts.insert(0, 0);
    }
    starts.push(input.len());
    starts.windows(2).map(|w| input[w[0]..w[1]].to_vec()).collect()
}

/// Recomputes a segment's header checksum and those of its frames.
fn seal_segment(segment: &mut [u8]) {
    if segment.len() >= SEGMENT_HEADER {
        let crc = crc32c::crc32c(&segment[..28]);
        segment[28..32].copy_from_slice(&crc.to_le_bytes());
    }
    seal_frames(segment, SEGMENT_HEADER);
}

/// Recomputes the checksum of a 128-byte header (of `header_len` bytes).
fn seal_header(file: &mut [u8], header_len: usize) {
    if file.len() >= header_len {
        let crc = crc32c::crc32c(&file[..HEADER_CRC_AT]);
        file[HEADER_CRC_AT..HEADER_CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
    }
}

/// Recomputes checksum and end byte of each frame from `offset` on,
/// following the declared lengths, until one runs past the end or a
/// frame header is all zeros (unwritten space).
fn seal_frames(file: &mut [u8], mut offset: usize) {
    while let Some(header) = file.get(offset..offset + FRAME_HEADER_LEN) {
        if header.iter().all(|&b| b == 0) {
            return;
        }
        let body_end = offset + FRAME_HEADER_LEN + u32_at(header, 0) as usize;
        if file.len() < body_end + 5 {
            return;
        }
        let crc = crc32c::crc32c(&file[offset..body_end]);
        file[body_end..body_end + 4].copy_from_slice(&crc.to_le_bytes());
        file[body_end + 4] = FRAME_END;
        offset = body_end + 5;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seeds::seeds;

    /// The targets reach past the checksums on their seeds: otherwise
    /// they would check nothing.
    #[test]
    fn seeds_are_valid_store_files() {
        let segments = &seeds("segments")[0][1..];
        let fs = SimFs::new();
        write_files(&fs, &[("00000001.log".into(), segments.to_vec())]);
        let records = recover(&fs, RecoveryMode::Strict).expect("the seed log recovers");
        assert!(records.len() > 20, "{} records", records.len());
        assert!(split_segments(segments).len() > 1, "the seed spans several segments");

        let fs = SimFs::new();
        write_files(&fs, base_log());
        let ckpt = &seeds("checkpoint")[0][1..];
        write_files(&fs, &[(format!("checkpoint-{:020}.ckpt", u64_at(ckpt, 16)), ckpt.to_vec())]);
        let listed = logkv_store::inspect_checkpoints(&fs, Path::new(DIR)).expect("list checkpoints");
        assert!(matches!(listed[..], [(_, Ok(_))]), "{listed:?}");

        let fs = SimFs::new();
        write_files(&fs, &[(format!("{FIRST_HEAD_ID:08}.head"), seeds("compacted")[0][1..].to_vec())]);
        let (_, keys) =
            logkv_store::inspect_compacted(&fs, Path::new(DIR)).expect("inspect").expect("a file");
        assert!(keys > 5, "{keys} keys");
    }

    /// Sealing leaves valid files as they are.
    #[test]
    fn sealing_keeps_valid_files() {
        let segments = &seeds("segments")[0][1..];
        for mut segment in split_segments(segments) {
            let original = segment.clone();
            seal_segment(&mut segment);
            assert_eq!(segment, original);
        }
        let head = &seeds("compacted")[0][1..];
        let mut sealed = head.to_vec();
        seal_header(&mut sealed, HEAD_HEADER);
        seal_frames(&mut sealed, HEAD_HEADER);
        assert_eq!(sealed, head);
    }
}
