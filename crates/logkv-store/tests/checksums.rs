//! Every read checks the value it returns against its version record's
//! checksum: a flipped byte in a segment no replay reads again (behind a
//! checkpoint) or in the compacted file is refused with a typed error
//! naming the file and the record, never served. Files whose checksums
//! hold but whose contents cannot be right (crafted, or written by a bug)
//! are refused as corruption or damage too, never followed into a panic or
//! an endless walk.

mod common;

use std::path::{Path, PathBuf};

use common::{options, DIR};
use logkv_fs::{FileSystem, SimFs};
use logkv_store::{Durability, NewestMeta, ScanOptions, Store, StoreError, StoreOptions};

fn opts(fs: &SimFs) -> StoreOptions {
    options(fs, Durability::Always, 4096)
}

/// Writes `victim` and enough after it that its segment is sealed, with
/// the version it got.
fn fill(store: &Store) -> u64 {
    let version = store.put(b"victim", &[b'v'; 200]).unwrap();
    for i in 0..40 {
        store.put(format!("other{i}").as_bytes(), &[b'o'; 150]).unwrap();
    }
    version
}

/// Flips the first byte of `victim`'s value where it lives now; returns
/// the file.
fn flip_victim(store: Store, fs: &SimFs) -> PathBuf {
    let at = store.locate_in(0, b"victim", u64::MAX).unwrap().expect("victim is stored");
    store.close().unwrap();
    let file = fs.open(&at.file).unwrap();
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, at.offset).unwrap();
    file.write_at(&[byte[0] ^ 0x20], at.offset).unwrap();
    file.sync_data().unwrap();
    at.file
}

fn assert_checksum(err: StoreError, file: &Path) {
    match &err {
        StoreError::Checksum { file: f, .. } => assert_eq!(f, file),
        other => panic!("expected a checksum error, got {other:?}"),
    }
    assert!(err.is_corruption());
    assert!(err.to_string().contains(&file.display().to_string()), "{err}");
}

/// Every read that returns (or lists) the damaged version refuses it, and
/// counts it; the rest of the store reads normally.
fn every_read_refuses(store: &Store, version: u64, file: &Path) {
    assert_checksum(store.get(b"victim").unwrap_err(), file);
    assert_checksum(store.get_at(b"victim", version).unwrap_err(), file);
    assert_checksum(store.history(b"victim").unwrap_err(), file);
    let scanned: Vec<_> = store.scan(ScanOptions::prefix(b"vic")).collect();
    assert_checksum(scanned.into_iter().next().unwrap().unwrap_err(), file);
    assert_eq!(store.checksum_failures(), 4);
    assert_eq!(store.get(b"other3").unwrap().unwrap().data, vec![b'o'; 150]);
    assert_eq!(store.history(b"other3").unwrap().len(), 1);
}

#[test]
fn a_flipped_value_byte_behind_a_checkpoint_is_refused_and_counted() {
    let fs = SimFs::new();
    let store = Store::open(Path::new(DIR), opts(&fs)).unwrap();
    let version = fill(&store);
    store.checkpoint().unwrap();
    let file = flip_victim(store, &fs);
    assert!(file.ends_with("00000001.log"), "{}", file.display());
    let store = Store::open(Path::new(DIR), opts(&fs)).expect("the store still opens");
    assert_eq!(store.open_report().checkpoint, Some(store.visible_position()));
    every_read_refuses(&store, version, &file);
    drop(store);
    // With checks off (only for measuring their cost) the bytes are served.
    let unchecked =
        Store::open(Path::new(DIR), StoreOptions { verify_checksums: false, ..opts(&fs) }).unwrap();
    assert_eq!(unchecked.get(b"victim").unwrap().unwrap().data[0], b'v' ^ 0x20);
    assert_eq!(unchecked.checksum_failures(), 0);
}

#[test]
fn a_flipped_value_byte_in_the_compacted_file_is_refused_and_counted() {
    let fs = SimFs::new();
    let store = Store::open(Path::new(DIR), opts(&fs)).unwrap();
    let version = fill(&store);
    store.compact(&mut |_, _| {}).unwrap();
    let file = flip_victim(store, &fs);
    assert!(file.extension().is_some_and(|e| e == "head"), "{}", file.display());
    let store = Store::open(Path::new(DIR), opts(&fs)).expect("the store still opens");
    every_read_refuses(&store, version, &file);
    // Compaction and export read every value too, and refuse the same way.
    assert_checksum(store.compact(&mut |_, _| {}).unwrap_err(), &file);
    assert_checksum(store.export(Path::new("/export")).unwrap_err(), &file);
}

#[test]
fn newest_meta_describes_the_newest_version_from_its_header() {
    let fs = SimFs::new();
    let store = Store::open(Path::new(DIR), opts(&fs)).unwrap();
    assert_eq!(store.newest_meta_in(0, b"k").unwrap(), None);
    let v = store.put(b"k", b"value").unwrap();
    let crc = crc32c::crc32c(b"kvalue");
    let meta = NewestMeta { version: v, deleted: false, value_len: 5, crc };
    assert_eq!(store.newest_meta_in(0, b"k").unwrap(), Some(meta));
    let d = store.delete(b"k").unwrap().unwrap();
    let meta = NewestMeta { version: d, deleted: true, value_len: 0, crc: crc32c::crc32c(b"k") };
    assert_eq!(store.newest_meta_in(0, b"k").unwrap(), Some(meta));
}

/// A compacted file whose checksums hold but where a key's version chain
/// points back into itself (found by fuzzing: `fuzz/regressions/compacted/`)
/// made reading the key's history, or a version below the loop, run
/// forever. It is refused as corruption.
#[test]
fn a_version_chain_that_loops_is_corruption_not_a_hang() {
    let fs = SimFs::new();
    let dir = Path::new(DIR);
    fs.create_dir_all(dir).unwrap();
    let head = include_bytes!("data/looping-version-chain.head");
    let f = fs.create(&dir.join("04194304.head")).unwrap();
    f.write_at(head, 0).unwrap();
    f.sync_data().unwrap();
    drop(f);
    let store = Store::open(DIR, opts(&fs)).unwrap();
    let keys: Vec<Vec<u8>> =
        store.scan(ScanOptions::default()).filter_map(|r| r.ok().map(|(k, _)| k)).collect();
    let mut loops = 0;
    for key in &keys {
        let _ = store.get(key);
        let _ = store.get_at(key, 1);
        match store.history(key) {
            Err(StoreError::Log(logkv_log::LogError::Corruption { detail, .. }))
                if detail.contains("loops") =>
            {
                loops += 1
            }
            Err(_) | Ok(_) => {}
        }
    }
    assert!(loops > 0, "no key's history was refused for looping among {keys:?}");
}

/// A compacted file whose header (checksum and all) says it replaces the
/// log up to the last position there is (found by fuzzing:
/// `fuzz/regressions/compacted/`): the log could not continue after it,
/// and opening overflowed computing where. It is refused as corruption.
#[test]
fn a_compacted_file_through_the_last_position_is_corruption() {
    let fs = SimFs::new();
    let store = Store::open(DIR, opts(&fs)).unwrap();
    fill(&store);
    store.compact(&mut |_, _| {}).unwrap();
    let path = Path::new(DIR).join(format!("{:08}.head", store.compacted().unwrap().id));
    store.close().unwrap();
    let file = fs.open(&path).unwrap();
    let mut header = [0u8; 128];
    file.read_exact_at(&mut header, 0).unwrap();
    header[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
    let crc = crc32c::crc32c(&header[..124]);
    header[124..].copy_from_slice(&crc.to_le_bytes());
    file.write_at(&header, 0).unwrap();
    file.sync_data().unwrap();
    drop(file);
    match Store::open(DIR, opts(&fs)) {
        Err(StoreError::Log(logkv_log::LogError::Corruption { file, offset: 0, .. })) => {
            assert_eq!(file, path)
        }
        other => panic!("expected corruption, got {:?}", other.map(|_| ())),
    }
}

/// A checkpoint whose checksums hold but whose header counts fewer live
/// keys than its index holds (found by fuzzing:
/// `fuzz/regressions/checkpoint/`): replay counted down from that number
/// past zero. It is reported as damaged and the log replayed instead.
#[test]
fn a_checkpoint_whose_live_count_disagrees_with_its_index_is_damaged() {
    let fs = SimFs::new();
    let store = Store::open(DIR, opts(&fs)).unwrap();
    fill(&store);
    let path = store.checkpoint().unwrap().path;
    store.delete(b"victim").unwrap();
    store.close().unwrap();
    let file = fs.open(&path).unwrap();
    let mut header = [0u8; 128];
    file.read_exact_at(&mut header, 0).unwrap();
    header[32..40].copy_from_slice(&0u64.to_le_bytes());
    let crc = crc32c::crc32c(&header[..124]);
    header[124..].copy_from_slice(&crc.to_le_bytes());
    file.write_at(&header, 0).unwrap();
    file.sync_data().unwrap();
    drop(file);
    let listed = logkv_store::inspect_checkpoints(&fs, Path::new(DIR)).unwrap();
    assert!(matches!(&listed[..], [(p, Err(why))] if *p == path && why.contains("live")), "{listed:?}");
    let store = Store::open(DIR, opts(&fs)).unwrap();
    assert_eq!(store.open_report().skipped_checkpoints.len(), 1);
    assert_eq!(store.get(b"victim").unwrap(), None);
    assert_eq!(store.len(), 40);
}

/// A checkpoint whose checksums hold but whose count of superseded bytes
/// is more than a log can hold (found by fuzzing:
/// `fuzz/regressions/checkpoint/`): replay overflowed adding to it. It is
/// reported as damaged and the log replayed instead.
#[test]
fn a_checkpoint_counting_more_superseded_bytes_than_a_log_holds_is_damaged() {
    let fs = SimFs::new();
    let store = Store::open(DIR, opts(&fs)).unwrap();
    fill(&store);
    let path = store.checkpoint().unwrap().path;
    store.put(b"victim", b"again").unwrap();
    store.close().unwrap();
    let file = fs.open(&path).unwrap();
    let mut header = [0u8; 128];
    file.read_exact_at(&mut header, 0).unwrap();
    header[52..60].copy_from_slice(&u64::MAX.to_le_bytes());
    let crc = crc32c::crc32c(&header[..124]);
    header[124..].copy_from_slice(&crc.to_le_bytes());
    file.write_at(&header, 0).unwrap();
    file.sync_data().unwrap();
    drop(file);
    let listed = logkv_store::inspect_checkpoints(&fs, Path::new(DIR)).unwrap();
    assert!(matches!(&listed[..], [(p, Err(why))] if *p == path && why.contains("superseded")), "{listed:?}");
    let store = Store::open(DIR, opts(&fs)).unwrap();
    assert_eq!(store.open_report().skipped_checkpoints.len(), 1);
    assert_eq!(store.get(b"victim").unwrap().unwrap().data, b"again");
}
