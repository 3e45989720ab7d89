//! Checkpoints and compaction against the oracle: whatever mix of writes,
//! checkpoints, compactions, reopens and crashes, every read inside the
//! retention horizon returns what the oracle says, and a read outside it is
//! answered "compacted", never with a wrong value.

mod common;

use std::path::Path;

use common::{options, Oracle, DIR};
use logkv_fs::{Fault, FaultKind, FaultOp, SimFs};
use logkv_store::{Durability, Retention, ScanOptions, Store, StoreError, StoreOptions, WriteBatch};
use proptest::prelude::*;

/// Small segments, so a few writes fill several.
const SEGMENT_SIZE_BYTES: u64 = 2048;

fn opts(fs: &SimFs, retention: Retention) -> StoreOptions {
    StoreOptions { retention, ..options(fs, Durability::Always, SEGMENT_SIZE_BYTES) }
}

fn open(fs: &SimFs, retention: Retention) -> Store {
    Store::open(Path::new(DIR), opts(fs, retention)).expect("open")
}

fn key(i: u8) -> Vec<u8> {
    format!("key-{i:02}").into_bytes()
}

/// Checks every key at every version against the oracle: a read is right,
/// or (below what `retention` keeps for the key) "compacted".
fn check(store: &Store, oracle: &Oracle, keys: u8, retention: Retention) -> Result<(), TestCaseError> {
    let last = oracle.last_version();
    prop_assert_eq!(store.version(), last);
    for i in 0..keys {
        let k = key(i);
        prop_assert_eq!(store.get(&k).unwrap(), oracle.get_at(&k, last), "key {}", i);
        let versions: Vec<u64> = oracle.history(&k).iter().map(|h| h.0).collect();
        // The versions the store must still answer for: the newest N.
        let kept_from = match retention.versions {
            Some(n) => versions.get(n as usize - 1).copied().unwrap_or(0),
            None => 0,
        };
        for v in oracle.versions() {
            match store.get_at(&k, v) {
                Ok(got) => prop_assert_eq!(got, oracle.get_at(&k, v), "key {} at {}", i, v),
                Err(StoreError::Compacted { .. }) if v < kept_from => {}
                Err(e) => prop_assert!(false, "key {} at {}: {}", i, v, e),
            }
        }
        let history: Vec<u64> = store.history(&k).unwrap().iter().map(|h| h.version).collect();
        prop_assert!(versions.starts_with(&history) || history.is_empty() && versions.is_empty());
        let keep = retention.versions.map_or(versions.len(), |n| (n as usize).min(versions.len()));
        prop_assert!(history.len() >= keep, "key {}: history {:?}, versions {:?}", i, history, versions);
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum Step {
    Put(u8, u8),
    Delete(u8),
    Batch(Vec<(u8, Option<u8>)>),
    Checkpoint,
    Compact,
    Reopen,
    /// Power loss (nothing unsynced survives), then reopen.
    Crash,
}

fn step(keys: u8) -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (0..keys, any::<u8>()).prop_map(|(k, v)| Step::Put(k, v)),
        2 => (0..keys).prop_map(Step::Delete),
        2 => prop::collection::vec((0..keys, prop::option::of(any::<u8>())), 1..4).prop_map(Step::Batch),
        1 => Just(Step::Checkpoint),
        1 => Just(Step::Compact),
        1 => Just(Step::Reopen),
        1 => Just(Step::Crash),
    ]
}

fn value(v: u8, version_hint: usize) -> Vec<u8> {
    vec![v; 1 + version_hint % 40]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn checkpoints_and_compactions_never_change_what_retention_keeps(
        steps in prop::collection::vec(step(6), 1..60),
        versions in prop::option::of(1u32..4),
    ) {
        let retention = Retention { versions, duration: None, tombstone_horizon: None };
        let mut fs = SimFs::new();
        let mut store = open(&fs, retention);
        let mut oracle = Oracle::default();
        for (n, s) in steps.iter().enumerate() {
            match s {
                Step::Put(k, v) => {
                    let value = value(*v, n);
                    let version = store.put(&key(*k), &value).unwrap();
                    oracle.record(version, vec![(key(*k), Some(value))]);
                }
                Step::Delete(k) => {
                    if let Some(version) = store.delete(&key(*k)).unwrap() {
                        oracle.record(version, vec![(key(*k), None)]);
                    }
                }
                Step::Batch(ops) => {
                    let mut batch = WriteBatch::new();
                    let mut recorded = Vec::new();
                    for (k, v) in ops {
                        match v {
                            Some(v) => {
                                batch.put(key(*k), value(*v, n));
                                recorded.push((key(*k), Some(value(*v, n))));
                            }
                            None => {
                                batch.delete(key(*k));
                                recorded.push((key(*k), None));
                            }
                        }
                    }
                    let version = store.write(&batch).unwrap();
                    oracle.record(version, recorded);
                }
                Step::Checkpoint => {
                    store.checkpoint().unwrap();
                }
                Step::Compact => {
                    store.compact(&mut |_, _| {}).unwrap();
                }
                Step::Reopen => {
                    store.close().unwrap();
                    store = open(&fs, retention);
                }
                Step::Crash => {
                    // Go on with the machine that lost power; `always`
                    // means nothing acknowledged may be missing from it.
                    fs = fs.power_loss_keep_nothing();
                    drop(store);
                    store = open(&fs, retention);
                    check(&store, &oracle, 6, retention)?;
                }
            }
        }
        check(&store, &oracle, 6, retention)?;
        store.close().unwrap();
        let store = open(&fs, retention);
        check(&store, &oracle, 6, retention)?;
    }
}

#[test]
fn a_deleted_key_does_not_come_back_after_compaction() {
    let fs = SimFs::new();
    // A window of zero: every delete is older than it, so deleted keys are
    // dropped whole, which is where a stale older value could resurface.
    let retention =
        Retention { versions: Some(1), duration: Some(std::time::Duration::ZERO), tombstone_horizon: None };
    let store = open(&fs, retention);
    store.put(b"gone", b"old value").unwrap();
    for i in 0..60u32 {
        store.put(format!("filler-{i}").as_bytes(), &[7; 64]).unwrap();
    }
    let deleted = store.delete(b"gone").unwrap().unwrap();
    for i in 0..60u32 {
        store.put(format!("filler-{i}").as_bytes(), &[8; 64]).unwrap();
    }
    // Let the clock pass the writes: the window is measured in milliseconds.
    std::thread::sleep(std::time::Duration::from_millis(5));
    store.log().roll().unwrap();
    store.put(b"after", b"x").unwrap();
    let report = store.compact(&mut |_, _| {}).unwrap();
    assert!(report.keys_dropped >= 1, "{report:?}");
    assert_eq!(store.get(b"gone").unwrap(), None);
    // Below the horizon every read is "compacted", never the old value.
    assert!(matches!(store.get_at(b"gone", deleted - 1), Err(StoreError::Compacted { .. })));
    let scan = ScanOptions { at: Some(deleted - 1), ..ScanOptions::default() };
    assert!(matches!(store.scan(scan).next(), Some(Err(StoreError::Compacted { .. }))));
    store.close().unwrap();
    let store = open(&fs, retention);
    assert_eq!(store.get(b"gone").unwrap(), None);
    assert!(store.history(b"gone").unwrap().is_empty());
    store.compact(&mut |_, _| {}).unwrap();
    store.close().unwrap();
    let store = open(&fs, retention);
    assert_eq!(store.get(b"gone").unwrap(), None);
    assert_eq!(store.get(b"filler-3").unwrap().unwrap().data, vec![8; 64]);
}

#[test]
fn a_checkpoint_spares_replaying_what_it_holds() {
    let fs = SimFs::new();
    let store = open(&fs, Retention::default());
    for i in 0..200u32 {
        store.put(format!("k{i}").as_bytes(), &i.to_le_bytes()).unwrap();
    }
    let taken = store.checkpoint().unwrap();
    for i in 0..10u32 {
        store.put(format!("k{i}").as_bytes(), b"newer").unwrap();
    }
    store.close().unwrap();
    let store = open(&fs, Retention::default());
    let report = store.open_report();
    assert_eq!(report.checkpoint, Some(taken.position));
    assert_eq!(report.replayed_records, 10);
    assert_eq!(store.get(b"k3").unwrap().unwrap().data, b"newer");
    assert_eq!(store.get(b"k150").unwrap().unwrap().data, 150u32.to_le_bytes());
    assert_eq!(store.history(b"k3").unwrap().len(), 2);
}

#[test]
fn a_damaged_checkpoint_is_reported_and_an_older_one_used() {
    let fs = SimFs::new();
    let store = open(&fs, Retention::default());
    store.put(b"a", b"1").unwrap();
    let older = store.checkpoint().unwrap();
    store.put(b"a", b"2").unwrap();
    let newer = store.checkpoint().unwrap();
    store.put(b"a", b"3").unwrap();
    store.close().unwrap();
    // Flip a byte inside the newer checkpoint's entries.
    let file = logkv_fs::FileSystem::open(&fs, &newer.path).unwrap();
    let mut b = [0u8; 1];
    file.read_exact_at(&mut b, 70).unwrap();
    file.write_at(&[b[0] ^ 0x40], 70).unwrap();
    drop(file);
    let store = open(&fs, Retention::default());
    let report = store.open_report();
    assert_eq!(report.checkpoint, Some(older.position));
    assert_eq!(report.skipped_checkpoints.len(), 1, "{report:?}");
    assert!(report.skipped_checkpoints[0].1.contains("checksum"), "{report:?}");
    assert_eq!(store.get(b"a").unwrap().unwrap().data, b"3");
    assert_eq!(store.history(b"a").unwrap().len(), 3);
}

/// Power is lost just before each sync (file or directory) that compaction
/// and the checkpoint after it make, one run per sync point: the store
/// reopens with every acknowledged write and all history retention keeps.
#[test]
fn a_crash_at_any_sync_point_of_compaction_leaves_a_consistent_store() {
    let retention = Retention { versions: Some(2), duration: None, tombstone_horizon: None };
    let mut completed = false;
    for op in [FaultOp::Sync, FaultOp::SyncDir] {
        for after in 0.. {
            let fs = SimFs::new();
            let store = open(&fs, retention);
            let mut oracle = Oracle::default();
            for round in 0..6u8 {
                for i in 0..12u8 {
                    let value = vec![round; 20 + i as usize];
                    let version = store.put(&key(i), &value).unwrap();
                    oracle.record(version, vec![(key(i), Some(value))]);
                }
            }
            fs.inject(Fault { after, ..Fault::new(op, FaultKind::Eio) });
            let outcome = store.compact(&mut |_, _| {});
            for seed in [1, 2, 3] {
                let crashed = fs.power_loss(seed);
                let reopened = open(&crashed, retention);
                check(&reopened, &oracle, 12, retention)
                    .unwrap_or_else(|e| panic!("{op:?} #{after} seed {seed}: {e}"));
                reopened.compact(&mut |_, _| {}).unwrap();
                check(&reopened, &oracle, 12, retention).unwrap();
            }
            if outcome.is_ok() {
                completed = true;
                break;
            }
        }
    }
    assert!(completed);
}

/// Power is lost just before each sync a checkpoint makes, in turn: the
/// store reopens with every acknowledged write, from the older checkpoint
/// or the log, and a checkpoint cut short is never loaded.
#[test]
fn a_crash_at_any_sync_point_of_a_checkpoint_leaves_a_consistent_store() {
    let retention = Retention::default();
    for op in [FaultOp::Sync, FaultOp::SyncDir, FaultOp::Write] {
        for after in 0.. {
            let fs = SimFs::new();
            let store = open(&fs, retention);
            let mut oracle = Oracle::default();
            for round in 0..4u8 {
                for i in 0..10u8 {
                    let value = vec![round; 10 + i as usize];
                    let version = store.put(&key(i), &value).unwrap();
                    oracle.record(version, vec![(key(i), Some(value))]);
                }
                if round == 1 {
                    store.checkpoint().unwrap();
                }
            }
            fs.inject(Fault { after, ..Fault::new(op, FaultKind::Eio) });
            let outcome = store.checkpoint();
            for seed in [1, 2, 3] {
                let reopened = open(&fs.power_loss(seed), retention);
                check(&reopened, &oracle, 10, retention)
                    .unwrap_or_else(|e| panic!("{op:?} #{after} seed {seed}: {e}"));
            }
            if outcome.is_ok() {
                break;
            }
        }
    }
}

/// Compactions while a writer goes on, in `always` and in coalescing
/// `periodic`: every key ends with the value written to it last, before
/// and after a reopen.
#[test]
fn compactions_under_concurrent_writes_keep_every_newest_value() {
    use std::sync::Arc;
    let modes = [(Durability::Always, "always"), (common::periodic(1 << 30), "periodic, coalescing")];
    for (durability, what) in modes {
        let fs = SimFs::new();
        let retention = Retention { versions: Some(1), duration: None, tombstone_horizon: None };
        let options = || StoreOptions { retention, ..options(&fs, durability, SEGMENT_SIZE_BYTES) };
        let store = Arc::new(Store::open(Path::new(DIR), options()).unwrap());
        let writer = {
            let store = store.clone();
            std::thread::spawn(move || {
                let mut last = std::collections::BTreeMap::new();
                for n in 0..20_000u32 {
                    let k = format!("key-{}", n % 300).into_bytes();
                    store.put(&k, &n.to_le_bytes()).unwrap();
                    last.insert(k, n);
                }
                last
            })
        };
        let mut compactions = 0;
        while !writer.is_finished() {
            store.compact(&mut |_, _| {}).unwrap();
            compactions += 1;
        }
        let last = writer.join().unwrap();
        assert!(compactions >= 2, "{what}: only {compactions} compactions ran during the writes");
        let check = |store: &Store| {
            for (k, n) in &last {
                let got = store.get(k).unwrap().unwrap_or_else(|| panic!("{what}: {k:?} missing"));
                assert_eq!(got.data, n.to_le_bytes(), "{what}: {k:?}");
            }
        };
        check(&store);
        Arc::into_inner(store).unwrap().close().unwrap();
        check(&Store::open(Path::new(DIR), options()).unwrap());
    }
}

/// A swept cache: nearly every key written was deleted since. Compaction
/// drops the deleted keys whole, the index keeps only the live ones and
/// they read back, before and after a reopen. It prints how long the
/// compaction took (docs/benchmarks.md): forgetting a dropped key must not
/// cost a random read of the compacted file.
#[test]
fn compacting_a_swept_cache_leaves_only_its_live_keys_in_the_index() {
    const KEYS: u32 = 100_000;
    const LIVE: u32 = 100;
    let dir = tempfile::tempdir().expect("temp dir");
    let retention =
        Retention { versions: Some(1), duration: Some(std::time::Duration::ZERO), tombstone_horizon: None };
    let options = || StoreOptions {
        log: logkv_store::LogConfig {
            segment_size_bytes: 1 << 20,
            durability: Durability::None,
            ..Default::default()
        },
        retention,
        ..StoreOptions::default()
    };
    let store = Store::open(dir.path(), options()).expect("open");
    let key = |i: u32| format!("cache:{i:08}").into_bytes();
    for chunk in (0..KEYS).collect::<Vec<_>>().chunks(1_000) {
        let (mut puts, mut deletes) = (WriteBatch::new(), WriteBatch::new());
        for &i in chunk {
            puts.put(key(i), vec![1; 32]);
            if i >= LIVE {
                deletes.delete(key(i));
            }
        }
        store.write(&puts).unwrap();
        store.write(&deletes).unwrap();
    }
    // The window starts after the last segment that began before it: one
    // more segment, begun after the deletes, puts them all behind it.
    store.log().roll().unwrap();
    store.put(b"after", b"x").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    let report = store.compact(&mut |_, _| {}).unwrap();
    eprintln!("compacting {KEYS} keys, {} dropped: {:?}", report.keys_dropped, report.elapsed);
    assert_eq!(report.keys_dropped, u64::from(KEYS - LIVE), "{report:?}");
    assert_eq!(store.index_entries(), LIVE as usize + 1);
    assert_eq!(store.get(&key(LIVE - 1)).unwrap().unwrap().data, vec![1; 32]);
    assert_eq!(store.get(&key(LIVE)).unwrap(), None);
    store.close().unwrap();
    let store = Store::open(dir.path(), options()).expect("reopen");
    assert_eq!(store.index_entries(), LIVE as usize + 1);
    assert_eq!(store.get(&key(0)).unwrap().unwrap().data, vec![1; 32]);
}
