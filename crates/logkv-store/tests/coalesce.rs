//! Compaction in memory: in `periodic` mode with one version kept per key,
//! writes of one window coalesce into one batch, and nothing readers see
//! changes because of it.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{options, periodic, DIR};
use logkv_fs::SimFs;
use logkv_store::{Retention, ScanOptions, Store, StoreOptions, WriteBatch};
use proptest::prelude::*;

fn coalescing(fs: &SimFs) -> StoreOptions {
    StoreOptions {
        retention: Retention { versions: Some(1), duration: None, tombstone_horizon: None },
        ..options(fs, periodic(1 << 30), 64 << 10)
    }
}

fn open(fs: &SimFs) -> Store {
    Store::open(Path::new(DIR), coalescing(fs)).unwrap()
}

#[test]
fn a_hot_key_written_many_times_in_a_window_reaches_the_log_once() {
    let fs = SimFs::new();
    let store = open(&fs);
    let before = store.log().stats().snapshot().bytes_written;
    let mut versions = Vec::new();
    for i in 0..1000u32 {
        versions.push(store.put(b"hot", &i.to_le_bytes()).unwrap());
        assert_eq!(store.get(b"hot").unwrap().unwrap().data, i.to_le_bytes(), "read your write");
    }
    store.put(b"cold", b"c").unwrap();
    assert!(versions.iter().all(|&v| v == versions[0]), "one window, one version");
    store.sync().unwrap();
    let written = store.log().stats().snapshot().bytes_written - before;
    assert!(written < 200, "{written} bytes for one hot key and one cold one");
    assert_eq!(store.history(b"hot").unwrap().len(), 1);
    // The next window gets the next version.
    let next = store.put(b"hot", b"again").unwrap();
    assert_eq!(next, versions[0] + 1);
    store.close().unwrap();
    let store = open(&fs);
    assert_eq!(store.get(b"hot").unwrap().unwrap().data, b"again");
    assert_eq!(store.get(b"cold").unwrap().unwrap().data, b"c");
}

#[test]
fn without_the_retention_that_allows_it_writes_do_not_coalesce() {
    let fs = SimFs::new();
    let store = Store::open(Path::new(DIR), options(&fs, periodic(1 << 30), 64 << 10)).unwrap();
    let a = store.put(b"k", b"1").unwrap();
    let b = store.put(b"k", b"2").unwrap();
    assert_eq!(b, a + 1);
    assert_eq!(store.history(b"k").unwrap().len(), 2);
}

#[test]
fn readers_never_miss_a_value_while_windows_are_written_out() {
    let fs = SimFs::new();
    let store = Arc::new(open(&fs));
    for k in 0..16u8 {
        store.put(&[k], &[k]).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (store, stop) = (store.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut reads = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for k in 0..16u8 {
                        let v = store.get(&[k]).unwrap().expect("every key always has a value");
                        assert_eq!(v.data[0], k);
                        reads += 1;
                    }
                    let all: Vec<_> = store.scan(ScanOptions::default()).collect::<Result<_, _>>().unwrap();
                    assert_eq!(all.len(), 16);
                }
                reads
            })
        })
        .collect();
    for round in 0..300u32 {
        for k in 0..16u8 {
            store.put(&[k], &[k, round as u8]).unwrap();
        }
        if round % 3 == 0 {
            store.sync().unwrap();
        }
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
}

#[derive(Debug, Clone)]
enum Step {
    Put(u8, u8),
    Delete(u8),
    Batch(Vec<(u8, Option<u8>)>),
    Sync,
    Reopen,
    Checkpoint,
    Compact,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (0..8u8, any::<u8>()).prop_map(|(k, v)| Step::Put(k, v)),
        2 => (0..8u8).prop_map(Step::Delete),
        2 => prop::collection::vec((0..8u8, prop::option::of(any::<u8>())), 1..4).prop_map(Step::Batch),
        2 => Just(Step::Sync),
        1 => Just(Step::Reopen),
        1 => Just(Step::Checkpoint),
        1 => Just(Step::Compact),
    ]
}

fn check(store: &Store, model: &BTreeMap<u8, Vec<u8>>) -> Result<(), TestCaseError> {
    for k in 0..8u8 {
        prop_assert_eq!(store.get(&[k]).unwrap().map(|v| v.data), model.get(&k).cloned(), "key {}", k);
    }
    let scanned: Vec<(Vec<u8>, Vec<u8>)> = store
        .scan(ScanOptions::default())
        .map(|r| r.map(|(k, v)| (k, v.data)))
        .collect::<Result<_, _>>()
        .unwrap();
    let want: Vec<(Vec<u8>, Vec<u8>)> = model.iter().map(|(k, v)| (vec![*k], v.clone())).collect();
    prop_assert_eq!(scanned, want);
    prop_assert_eq!(store.len(), model.len() as u64);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Reads, scans and counts follow every write at once; windows written
    /// out, checkpoints, compactions and reopens change nothing.
    #[test]
    fn coalescing_is_invisible_to_readers(steps in prop::collection::vec(step(), 1..80)) {
        let fs = SimFs::new();
        let mut store = open(&fs);
        let mut model = BTreeMap::new();
        for s in steps {
            match s {
                Step::Put(k, v) => {
                    store.put(&[k], &[v]).unwrap();
                    model.insert(k, vec![v]);
                }
                Step::Delete(k) => {
                    let deleted = store.delete(&[k]).unwrap();
                    prop_assert_eq!(deleted.is_some(), model.remove(&k).is_some());
                }
                Step::Batch(ops) => {
                    let mut batch = WriteBatch::new();
                    for (k, v) in ops {
                        match v {
                            Some(v) => {
                                batch.put(vec![k], vec![v]);
                                model.insert(k, vec![v]);
                            }
                            None => {
                                batch.delete(vec![k]);
                                model.remove(&k);
                            }
                        }
                    }
                    store.write(&batch).unwrap();
                }
                Step::Sync => store.sync().unwrap(),
                Step::Reopen => {
                    store.close().unwrap();
                    store = open(&fs);
                }
                Step::Checkpoint => {
                    store.checkpoint().unwrap();
                }
                Step::Compact => {
                    store.compact(&mut |_, _| {}).unwrap();
                }
            }
            check(&store, &model)?;
        }
        store.close().unwrap();
        check(&open(&fs), &model)?;
    }
}

#[test]
fn power_loss_takes_at_most_the_window_not_yet_written_out() {
    let fs = SimFs::new();
    let store = open(&fs);
    for i in 0..50u8 {
        store.put(&[i % 5], &[i]).unwrap();
    }
    store.sync().unwrap();
    for i in 0..50u8 {
        store.put(&[i % 7], &[100 + i]).unwrap();
    }
    let crashed = fs.power_loss_keep_nothing();
    drop(store);
    let store = open(&crashed);
    for k in 0..5u8 {
        assert_eq!(store.get(&[k]).unwrap().unwrap().data, [45 + k], "the synced window survives whole");
    }
    assert_eq!(store.get(&[5]).unwrap(), None, "the unsynced window is gone whole");
}
