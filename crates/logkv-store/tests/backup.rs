//! Point-in-time restore and export/import against the oracle.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{options, Oracle, DIR};
use logkv_fs::SimFs;
use logkv_store::{Durability, Retention, ScanOptions, Store, StoreError, StoreOptions, Value};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SEGMENT_SIZE_BYTES: u64 = 4096;

fn opts(fs: &SimFs) -> StoreOptions {
    options(fs, Durability::Always, SEGMENT_SIZE_BYTES)
}

fn all(store: &Store, at: u64) -> Vec<(Vec<u8>, Value)> {
    store.scan(ScanOptions { at: Some(at), ..ScanOptions::default() }).collect::<Result<_, _>>().unwrap()
}

/// Random puts and deletes over few keys, with a checkpoint and a
/// compaction (keeping all history) along the way.
fn fill(store: &Store, oracle: &mut Oracle, seed: u64, writes: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    for n in 0..writes {
        let key = format!("k{}", rng.random_range(0..20)).into_bytes();
        if rng.random_bool(0.2) {
            if let Some(v) = store.delete(&key).unwrap() {
                oracle.record(v, vec![(key, None)]);
            }
        } else {
            let value = vec![n as u8; rng.random_range(0..60)];
            let v = store.put(&key, &value).unwrap();
            oracle.record(v, vec![(key, Some(value))]);
        }
        if n == writes / 3 {
            store.checkpoint().unwrap();
        }
        if n == writes / 2 {
            store.compact(&mut |_, _| {}).unwrap();
        }
    }
}

#[test]
fn a_restore_holds_exactly_the_state_and_history_at_its_version() {
    let fs = SimFs::new();
    let store = Store::open(Path::new(DIR), opts(&fs)).unwrap();
    let mut oracle = Oracle::default();
    fill(&store, &mut oracle, 7, 300);
    let head = store.compacted().expect("compacted").last_version;
    for (i, version) in
        [head, head + 1, head + 57, oracle.last_version() - 1, oracle.last_version()].into_iter().enumerate()
    {
        let out = format!("/restored-{i}");
        let report = store.restore(version, Path::new(&out)).unwrap();
        assert_eq!(report.version, version);
        let restored = Store::open(Path::new(&out), opts(&fs)).unwrap();
        assert_eq!(restored.version(), version);
        let want: Vec<(Vec<u8>, Value)> = oracle.scan(&ScanOptions::default(), version);
        assert_eq!(all(&restored, version), want, "restored to {version}");
        for v in (version.saturating_sub(30)..=version).step_by(7) {
            assert_eq!(
                all(&restored, v),
                oracle.scan(&ScanOptions::default(), v),
                "history at {v} of {version}"
            );
        }
        // The restored store takes writes after the restored version.
        assert_eq!(restored.put(b"new", b"1").unwrap(), version + 1);
    }
}

#[test]
fn a_restore_inside_the_compacted_log_keeps_the_state_and_history_retention_kept() {
    let fs = SimFs::new();
    let store = Store::open(Path::new(DIR), opts(&fs)).unwrap();
    let mut oracle = Oracle::default();
    fill(&store, &mut oracle, 11, 200);
    let inside = store.compacted().unwrap().last_version - 10;
    store.restore(inside, Path::new("/inside")).unwrap();
    let restored = Store::open(Path::new("/inside"), opts(&fs)).unwrap();
    assert_eq!(restored.version(), inside);
    for v in (1..=inside).rev().step_by(9) {
        assert_eq!(all(&restored, v), oracle.scan(&ScanOptions::default(), v), "history at {v}");
    }
    assert_eq!(restored.put(b"new", b"1").unwrap(), inside + 1);
    restored.close().unwrap();
    store.close().unwrap();

    // Keeping one version per key drops the state of older versions: a
    // restore to one is refused, naming the oldest it can reach.
    let options =
        StoreOptions { retention: Retention { versions: Some(1), ..Retention::default() }, ..opts(&fs) };
    let store = Store::open(Path::new(DIR), options).unwrap();
    store.compact(&mut |_, _| {}).unwrap();
    let oldest = match store.restore(inside, Path::new("/dropped")) {
        Err(StoreError::NotRetained(why)) => {
            let oldest = why.split("can reach is version ").nth(1).expect("names the oldest");
            oldest.parse::<u64>().expect("a version")
        }
        other => panic!("expected NotRetained, got {other:?}"),
    };
    assert!(oldest > inside);
    store.restore(oldest, Path::new("/oldest")).unwrap();
    let restored = Store::open(Path::new("/oldest"), opts(&fs)).unwrap();
    assert_eq!(all(&restored, oldest), oracle.scan(&ScanOptions::default(), oldest));
}

#[test]
fn a_restore_by_time_stops_at_the_last_record_appended_by_then() {
    let fs = SimFs::new();
    let store = Store::open(Path::new(DIR), opts(&fs)).unwrap();
    store.put(b"a", b"before").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let between =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    std::thread::sleep(std::time::Duration::from_millis(20));
    store.put(b"a", b"after").unwrap();
    assert_eq!(store.version_at_time(between).unwrap(), 1);
    store.restore(store.version_at_time(between).unwrap(), Path::new("/then")).unwrap();
    let restored = Store::open(Path::new("/then"), opts(&fs)).unwrap();
    assert_eq!(restored.get(b"a").unwrap().unwrap().data, b"before");
}

#[test]
fn an_export_taken_under_writes_imports_to_the_state_at_its_version() {
    let fs = SimFs::new();
    let store = Arc::new(Store::open(Path::new(DIR), opts(&fs)).unwrap());
    let mut oracle = Oracle::default();
    fill(&store, &mut oracle, 3, 200);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, stop) = (store.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                store.put(format!("k{}", n % 25).as_bytes(), &n.to_le_bytes()).unwrap();
                n += 1;
            }
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(20));
    let export = store.export(Path::new("/backup.head")).unwrap();
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let want = all(&store, export.version);
    Store::import(&fs, Path::new("/backup.head"), Path::new("/imported")).unwrap();
    let imported = Store::open(Path::new("/imported"), opts(&fs)).unwrap();
    assert_eq!(imported.version(), export.version);
    assert_eq!(all(&imported, export.version), want);
    assert_eq!(imported.put(b"next", b"1").unwrap(), export.position + 1);
    // Nothing older than the export is in it.
    assert!(matches!(imported.get_at(b"k1", export.version - 1), Err(StoreError::Compacted { .. })));
}

#[test]
fn importing_something_that_is_not_an_export_is_refused_and_writes_nothing() {
    let fs = SimFs::new();
    for bytes in [&b"junk"[..], &[0u8; 100][..], &[7u8; 4096][..]] {
        let file = logkv_fs::FileSystem::create(&fs, Path::new("/not-an-export")).unwrap();
        file.write_at(bytes, 0).unwrap();
        drop(file);
        let err = Store::import(&fs, Path::new("/not-an-export"), Path::new("/into")).unwrap_err();
        assert!(err.is_corruption(), "{err}");
        assert!(!logkv_fs::FileSystem::exists(&fs, Path::new("/into/04194304.head")));
        logkv_fs::FileSystem::remove_file(&fs, Path::new("/not-an-export")).unwrap();
    }
}
