//! Simulated power loss (and `kill -9`) at random points in every durability
//! mode: a store reopened afterwards holds exactly the state of some version
//! (a prefix of the writes, nothing half-written), and loses nothing the
//! durability contract promised to keep.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use common::{assert_is_prefix, open, periodic, Oracle, OracleOp};
use logkv_fs::SimFs;
use logkv_store::{Durability, Store, Value, WriteBatch};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Small segments, so a run crosses many of them.
const SEGMENT_SIZE_BYTES: u64 = 4 * 1024;
const KEYS: u32 = 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Crash {
    /// `SimFs::power_loss(seed)`: any subset of unsynced writes, one torn.
    PowerLoss(u64),
    /// Only what was synced.
    KeepNothing,
    /// `kill -9`: the page cache survives.
    Process,
}

/// The machine at one instant, and what had been promised by then.
struct Snapshot {
    fs: SimFs,
    crash: Crash,
    /// Newest version acknowledged before the snapshot.
    acked: u64,
    /// Newest version covered by a completed `sync()` before the snapshot.
    synced: u64,
    what: String,
}

/// The versions counted as promised, shared by writer threads.
#[derive(Default)]
struct Promises {
    acked: AtomicU64,
    synced: AtomicU64,
}

fn take(fs: &SimFs, crash: Crash, promises: &Promises, what: String) -> Snapshot {
    // Read the promises first: whatever they count happened before the copy.
    let acked = promises.acked.load(Ordering::SeqCst);
    let synced = promises.synced.load(Ordering::SeqCst);
    let fs = match crash {
        Crash::PowerLoss(seed) => fs.power_loss(seed),
        Crash::KeepNothing => fs.power_loss_keep_nothing(),
        Crash::Process => fs.crash_process(),
    };
    Snapshot { fs, crash, acked, synced, what }
}

fn key(i: u32) -> Vec<u8> {
    format!("key{i:02}").into_bytes()
}

/// A value that names its writer, so a value from the wrong write cannot
/// pass for the right one; often empty, sometimes large.
fn value(rng: &mut StdRng, writer: usize, n: usize) -> Vec<u8> {
    match rng.random_range(0..10) {
        0 => Vec::new(),
        1 => vec![b'x'; rng.random_range(500..1500)],
        _ => {
            let mut v = format!("w{writer}-n{n}-").into_bytes();
            v.resize(v.len() + rng.random_range(0..200), b'a' + (n % 26) as u8);
            v
        }
    }
}

/// Does one random write (or a sync); returns the batch recorded for the
/// oracle if a version was given out.
fn one_op(
    store: &Store,
    rng: &mut StdRng,
    writer: usize,
    n: usize,
    promises: &Promises,
) -> Option<(u64, Vec<OracleOp>)> {
    let done = match rng.random_range(0..20) {
        0..=11 => {
            let (k, v) = (key(rng.random_range(0..KEYS)), value(rng, writer, n));
            let version = store.put(&k, &v).expect("put");
            Some((version, vec![(k, Some(v))]))
        }
        12..=14 => {
            let k = key(rng.random_range(0..KEYS));
            store.delete(&k).expect("delete").map(|version| (version, vec![(k, None)]))
        }
        15..=18 => {
            let mut batch = WriteBatch::new();
            let mut ops = Vec::new();
            for j in 0..rng.random_range(1..6) {
                let k = key(rng.random_range(0..KEYS));
                if rng.random_bool(0.25) {
                    batch.delete(k.clone());
                    ops.push((k, None));
                } else {
                    let v = value(rng, writer, n * 8 + j);
                    batch.put(k.clone(), v.clone());
                    ops.push((k, Some(v)));
                }
            }
            let version = store.write(&batch).expect("batch");
            Some((version, ops))
        }
        _ => {
            let covered = store.version();
            store.sync().expect("sync");
            promises.synced.fetch_max(covered, Ordering::SeqCst);
            None
        }
    };
    if let Some((version, _)) = &done {
        promises.acked.fetch_max(*version, Ordering::SeqCst);
    }
    done
}

/// Reopens a snapshot and checks it against the oracle and the promises of
/// `mode`; returns the recovered version.
fn verify(mode: Durability, snap: &Snapshot, oracle: &Oracle) -> u64 {
    let what = format!("{:?} {:?} {}", mode, snap.crash, snap.what);
    let store = open(&snap.fs, mode, SEGMENT_SIZE_BYTES);
    let v = assert_is_prefix(&store, oracle, &what);
    let floor = match (mode, snap.crash) {
        (Durability::Always, _) | (Durability::None, Crash::Process) => snap.acked,
        _ => snap.synced,
    };
    assert!(v >= floor, "{what}: recovered version {v}, but {floor} was promised (acked {})", snap.acked);

    // The recovered store takes new writes, and once they are synced they
    // survive another power loss together with everything recovered.
    let marker = store.put(b"marker", b"after recovery").expect("write after recovery");
    store.sync().expect("sync after recovery");
    let again = snap.fs.power_loss(marker ^ v);
    drop(store);
    let store = open(&again, mode, SEGMENT_SIZE_BYTES);
    assert_eq!(store.version(), marker, "{what}: a synced write after recovery was lost");
    assert_eq!(
        store.get(b"marker").unwrap(),
        Some(Value { data: b"after recovery".to_vec(), version: marker })
    );
    let mut state = common::store_state(&store);
    state.remove(&b"marker"[..]);
    assert_eq!(state, oracle.state_at(v), "{what}: the second power loss changed the recovered state");
    assert!(store.recovery_report().truncation.is_none() || mode != Durability::Always, "{what}");
    v
}

/// One writer on the test thread; snapshots at random points and right
/// after every few segment rolls. Returns the oracle and the snapshots.
fn single_writer(mode: Durability, seed: u64, ops: usize) -> (Oracle, Vec<Snapshot>) {
    let fs = SimFs::new();
    let store = open(&fs, mode, SEGMENT_SIZE_BYTES);
    let mut rng = StdRng::seed_from_u64(seed);
    let promises = Promises::default();
    let mut oracle = Oracle::default();
    let mut snaps = Vec::new();
    let mut segments = store.log().segments().len();
    for n in 0..ops {
        if let Some((version, ops)) = one_op(&store, &mut rng, 0, n, &promises) {
            oracle.record(version, ops);
        }
        let now = store.log().segments().len();
        let rolled = now != segments;
        segments = now;
        if rolled || rng.random_bool(0.03) {
            let what =
                format!("seed {seed} op {n}{}", if rolled { " right after a segment roll" } else { "" });
            let crash = match rng.random_range(0..4) {
                0 => Crash::KeepNothing,
                1 => Crash::Process,
                _ => Crash::PowerLoss(rng.random()),
            };
            snaps.push(take(&fs, crash, &promises, what));
        }
    }
    drop(store);
    (oracle, snaps)
}

/// Several writers on their own threads while the test thread takes
/// snapshots; whatever was in flight at a snapshot may or may not survive.
fn concurrent_writers(mode: Durability, seed: u64, threads: usize, ops: usize) -> (Oracle, Vec<Snapshot>) {
    let fs = SimFs::new();
    let store = Arc::new(open(&fs, mode, SEGMENT_SIZE_BYTES));
    let promises = Arc::new(Promises::default());
    let recorded = Arc::new(Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..threads)
        .map(|t| {
            let (store, promises, recorded) = (store.clone(), promises.clone(), recorded.clone());
            std::thread::spawn(move || {
                let mut rng = StdRng::seed_from_u64(seed * 1000 + t as u64);
                let mine: Vec<_> =
                    (0..ops).filter_map(|n| one_op(&store, &mut rng, t, n, &promises)).collect();
                recorded.lock().unwrap().extend(mine);
            })
        })
        .collect();
    let mut snaps = Vec::new();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut i = 0;
    // At least one snapshot, even if the writers finish before the first
    // (a snapshot of the finished state is as valid as one taken mid-way).
    while snaps.len() < 24 && (snaps.is_empty() || !writers.iter().all(|w| w.is_finished())) {
        let crash = if i % 5 == 4 { Crash::Process } else { Crash::PowerLoss(rng.random()) };
        snaps.push(take(&fs, crash, &promises, format!("seed {seed} snapshot {i} of {threads} writers")));
        i += 1;
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    for w in writers {
        w.join().expect("writer thread");
    }
    let mut oracle = Oracle::default();
    oracle.extend(std::mem::take(&mut *recorded.lock().unwrap()));
    drop(store);
    (oracle, snaps)
}

/// Runs `single_writer` for many seeds and verifies every snapshot; returns
/// how many power-loss snapshots lost an acknowledged write.
fn single_writer_seeds(mode: Durability, seeds: std::ops::Range<u64>) -> (usize, usize) {
    let (mut losses, mut checked) = (0, 0);
    for seed in seeds {
        let (oracle, snaps) = single_writer(mode, seed, 150);
        for snap in &snaps {
            let v = verify(mode, snap, &oracle);
            checked += 1;
            if v < snap.acked && matches!(snap.crash, Crash::PowerLoss(_) | Crash::KeepNothing) {
                losses += 1;
            }
        }
    }
    (losses, checked)
}

#[test]
fn always_mode_power_loss_at_random_points_keeps_every_acknowledged_write() {
    let (losses, checked) = single_writer_seeds(Durability::Always, 0..40);
    assert_eq!(losses, 0);
    assert!(checked > 100, "only {checked} snapshots checked");
}

#[test]
fn always_mode_power_loss_with_concurrent_writers_keeps_every_acknowledged_write() {
    for seed in 0..4 {
        let (oracle, snaps) = concurrent_writers(Durability::Always, seed, 4, 60);
        assert!(!snaps.is_empty());
        for snap in &snaps {
            verify(Durability::Always, snap, &oracle);
        }
    }
}

#[test]
fn periodic_mode_power_loss_recovers_a_prefix_that_keeps_every_synced_write() {
    single_writer_seeds(periodic(1024), 100..140);
}

#[test]
fn periodic_mode_power_loss_with_concurrent_writers_recovers_a_prefix_that_keeps_every_synced_write() {
    for seed in 0..4 {
        let (oracle, snaps) = concurrent_writers(periodic(1024), seed, 3, 60);
        for snap in &snaps {
            verify(periodic(1024), snap, &oracle);
        }
    }
}

#[test]
fn periodic_mode_loses_at_most_the_writes_after_the_last_completed_flush() {
    // Nothing is flushed by size here, so what survives is decided by sync().
    let mode = periodic(usize::MAX / 4);
    for seed in 0..20u64 {
        let fs = SimFs::new();
        let store = open(&fs, mode, SEGMENT_SIZE_BYTES);
        let mut oracle = Oracle::default();
        for i in 0..30u32 {
            let k = key(i % 7);
            let v = format!("before sync {i}").into_bytes();
            oracle.record(store.put(&k, &v).unwrap(), vec![(k, Some(v))]);
        }
        store.sync().unwrap();
        let synced = store.version();
        for i in 0..(seed as u32 % 10) + 1 {
            let k = key(i % 9);
            let v = format!("after sync {i}").into_bytes();
            oracle.record(store.put(&k, &v).unwrap(), vec![(k, Some(v))]);
        }
        let acked = store.version();
        assert!(acked > synced);
        let promises = Promises { acked: AtomicU64::new(acked), synced: AtomicU64::new(synced) };
        for crash in [Crash::PowerLoss(seed), Crash::KeepNothing] {
            let snap = take(&fs, crash, &promises, format!("seed {seed}"));
            let v = verify(mode, &snap, &oracle);
            if crash == Crash::KeepNothing {
                assert_eq!(v, synced, "nothing after the last flush was synced, so nothing of it survives");
            }
        }
    }
}

#[test]
fn none_mode_power_loss_recovers_a_prefix_and_does_lose_acknowledged_writes() {
    let (losses, checked) = single_writer_seeds(Durability::None, 200..240);
    assert!(checked > 100);
    assert!(losses > 0, "no power loss lost an unsynced acknowledged write: is `none` syncing?");
}

#[test]
fn none_mode_power_loss_with_concurrent_writers_recovers_a_prefix() {
    for seed in 0..4 {
        let (oracle, snaps) = concurrent_writers(Durability::None, seed, 3, 60);
        for snap in &snaps {
            verify(Durability::None, snap, &oracle);
        }
    }
}

#[test]
fn none_mode_kill_9_loses_nothing_acknowledged() {
    for seed in 0..10u64 {
        let fs = SimFs::new();
        let store = open(&fs, Durability::None, SEGMENT_SIZE_BYTES);
        let mut rng = StdRng::seed_from_u64(seed);
        let promises = Promises::default();
        let mut oracle = Oracle::default();
        for n in 0..120 {
            if let Some((version, ops)) = one_op(&store, &mut rng, 0, n, &promises) {
                oracle.record(version, ops);
            }
        }
        let snap = take(&fs, Crash::Process, &promises, format!("seed {seed}"));
        drop(store);
        let v = verify(Durability::None, &snap, &oracle);
        assert_eq!(v, oracle.last_version());
    }
}

#[test]
fn every_mode_recovers_from_power_loss_right_after_a_segment_roll() {
    for mode in [Durability::Always, periodic(1024), Durability::None] {
        for seed in 0..12u64 {
            let fs = SimFs::new();
            let store = open(&fs, mode, SEGMENT_SIZE_BYTES);
            let promises = Promises::default();
            let mut oracle = Oracle::default();
            let mut rolls = 0;
            let mut snaps = Vec::new();
            for i in 0..200u32 {
                let before = store.log().segments().len();
                let k = key(i % 5);
                let v = vec![b'0' + (i % 10) as u8; 300 + (seed as usize * 37) % 200];
                let version = store.put(&k, &v).unwrap();
                promises.acked.fetch_max(version, Ordering::SeqCst);
                oracle.record(version, vec![(k, Some(v))]);
                if store.log().segments().len() > before {
                    rolls += 1;
                    let what = format!("seed {seed} roll {rolls}");
                    snaps.push(take(&fs, Crash::PowerLoss(seed * 31 + rolls), &promises, what.clone()));
                    snaps.push(take(&fs, Crash::KeepNothing, &promises, what.clone()));
                    snaps.push(take(&fs, Crash::Process, &promises, what));
                    if rolls == 4 {
                        break;
                    }
                }
            }
            assert_eq!(rolls, 4, "the workload crosses segment boundaries");
            drop(store);
            for snap in &snaps {
                verify(mode, snap, &oracle);
            }
        }
    }
}

/// A store killed with unsynced bytes in more than one segment, reopened in
/// `always` mode: its first acknowledged write must survive a power loss,
/// although the bytes recovery found were never synced by the killed store.
#[test]
fn write_acknowledged_after_reopening_a_killed_store_survives_power_loss() {
    for seed in 0..16u64 {
        let fs = SimFs::new();
        let store = open(&fs, Durability::None, SEGMENT_SIZE_BYTES);
        let mut oracle = Oracle::default();
        for i in 0..40u32 {
            let (k, v) = (key(i % 6), vec![b'v'; 350]);
            oracle.record(store.put(&k, &v).unwrap(), vec![(k, Some(v))]);
        }
        assert!(store.log().segments().len() >= 3);
        let killed = fs.crash_process();
        drop(store);
        let store = open(&killed, Durability::Always, SEGMENT_SIZE_BYTES);
        assert_eq!(store.version(), oracle.last_version(), "kill -9 in `none` loses nothing");
        let v = store.put(b"acked", b"after restart").unwrap();
        // The power fails while the store is open (a clean close would sync).
        let lost = killed.power_loss(seed);
        drop(store);
        let after = open(&lost, Durability::Always, SEGMENT_SIZE_BYTES);
        assert_eq!(after.version(), v, "seed {seed}: the acknowledged write was lost");
        assert_is_prefix(
            &after,
            &{
                let mut o = oracle.clone();
                o.record(v, vec![(b"acked".to_vec(), Some(b"after restart".to_vec()))]);
                o
            },
            "after restart",
        );
    }
}

/// `periodic` whose buffer never flushes by size (only by interval or an
/// explicit sync) is a valid setting, not an arithmetic overflow.
#[test]
fn periodic_mode_without_a_size_threshold_acknowledges_and_syncs() {
    let fs = SimFs::new();
    let store = open(&fs, periodic(usize::MAX), SEGMENT_SIZE_BYTES);
    let mut oracle = Oracle::default();
    for i in 0..50u32 {
        let (k, v) = (key(i % 9), vec![b'p'; 300]);
        oracle.record(store.put(&k, &v).unwrap(), vec![(k, Some(v))]);
    }
    store.sync().unwrap();
    let snap = take(&fs, Crash::KeepNothing, &Promises::default(), "after sync".into());
    drop(store);
    assert_eq!(verify(periodic(usize::MAX), &snap, &oracle), oracle.last_version());
}
