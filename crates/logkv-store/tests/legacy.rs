//! The format-2 reader migration builds on, on committed directories
//! written by format 2: a plain store's batches and a node's entries come
//! back in order with their positions and log times; a format-2 compacted
//! file is refused (its entries are gone), and opening such a directory as
//! a store names the migration.

use std::path::{Path, PathBuf};

use logkv_fs::StdFs;
use logkv_log::LogError;
use logkv_store::legacy::{LegacyContent, LegacyLog, LegacyRecord};
use logkv_store::{Op, Store, StoreError, StoreOptions};

fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn records(dir: &Path) -> Vec<LegacyRecord> {
    LegacyLog::open(&StdFs, dir).unwrap().collect::<Result<_, _>>().unwrap()
}

/// A copy of a fixture in a scratch directory (opening it writes a lock).
fn copy(from: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    dir
}

fn put(key: &str, value: String) -> Op {
    Op::Put { key: key.into(), value: value.into_bytes() }
}

#[test]
fn a_plain_stores_batches_come_back_in_order() {
    let records = records(&fixture("tests/data/format2-plain"));
    assert_eq!(records.len(), 21);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.position, i as u64 + 1);
        assert!(r.time_ms > 1_600_000_000_000);
    }
    assert!(records.windows(2).all(|w| w[0].time_ms <= w[1].time_ms));
    let value = |i: u32| format!("value {i} ").repeat(20);
    let batch = |p: usize| match &records[p - 1].content {
        LegacyContent::Batch(ops) => ops.clone(),
        other => panic!("record {p} is {other:?}"),
    };
    assert_eq!(batch(1), [put("key0", value(0))]);
    assert_eq!(batch(3), [put("key2", value(2)), Op::Delete { key: b"key1".to_vec() }]);
    assert_eq!(batch(5), [put("key4", value(4)), put("hot", "hot 4".into())]);
    assert_eq!(batch(21), [Op::Delete { key: b"key0".to_vec() }]);
}

#[test]
fn a_nodes_entries_come_back_in_order_with_their_log_times() {
    // Twelve puts, the overwrite of key3 (851968 in expected.txt), the
    // delete of key5 (917504) and the second stream's put: 15 records.
    let records = records(&fixture("../logkv/tests/data/format2-node"));
    assert_eq!(records.len(), 15);
    for (i, r) in records.iter().enumerate() {
        let position = i as u64 + 1;
        assert_eq!(r.position, position);
        match &r.content {
            LegacyContent::Applied { version, entry } => {
                assert_eq!(version >> 16, position, "tags are transaction versions");
                assert_eq!(&entry[..4], b"LKVE", "record {position} holds a signed entry");
            }
            other => panic!("record {position} is {other:?}"),
        }
    }
    assert!(records.windows(2).all(|w| w[0].time_ms <= w[1].time_ms));
}

#[test]
fn a_format_2_compacted_file_is_refused_because_its_entries_are_gone() {
    let dir = copy(&fixture("tests/data/format2-plain"));
    std::fs::write(dir.path().join("04194304.head"), b"LOGKVHED").unwrap();
    let err = LegacyLog::open(&StdFs, dir.path()).err().expect("refused");
    let message = err.to_string();
    assert!(message.contains("04194304.head") && message.contains("entries are gone"), "{message}");
    assert!(message.contains("export"), "{message}");
}

#[test]
fn opening_a_format_2_directory_as_a_store_names_the_migration() {
    let dir = copy(&fixture("tests/data/format2-plain"));
    let err = Store::open(dir.path(), StoreOptions::default()).unwrap_err();
    assert!(matches!(err, StoreError::Log(LogError::NeedsMigration { found: 2, .. })), "{err:?}");
    let message = err.to_string();
    let command = format!("logkv migrate --data-dir {} --out NEW_DIR", dir.path().display());
    assert!(message.contains("(format 2)") && message.contains(&command), "{message}");
}

#[test]
fn a_damaged_record_is_refused_naming_its_file_and_offset() {
    let dir = copy(&fixture("tests/data/format2-plain"));
    let segment = dir.path().join("00000001.log");
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[100] ^= 0x01;
    std::fs::write(&segment, bytes).unwrap();
    let err = LegacyLog::open(&StdFs, dir.path()).unwrap().find_map(Result::err).expect("refused");
    match &err {
        StoreError::Log(LogError::Corruption { file, offset, .. }) => {
            assert_eq!((file, *offset), (&segment, 32))
        }
        other => panic!("expected corruption, got {other:?}"),
    }
}
