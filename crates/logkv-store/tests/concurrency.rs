//! Writers and readers on one store at once: readers never see a key's
//! version go backwards or a value nobody wrote, every acknowledged write is
//! readable as soon as it returns, and scans see one consistent version even
//! while atomic batches change many keys.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use common::{open, periodic, Oracle, OracleOp};
use logkv_fs::SimFs;
use logkv_store::{Durability, ScanOptions, Store, Value, WriteBatch};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SEGMENT_SIZE_BYTES: u64 = 16 * 1024;
const ACCOUNTS: u32 = 8;
const TOTAL: u64 = 800;
const SHARED: u32 = 6;

fn account(i: u32) -> Vec<u8> {
    format!("bal/{i}").into_bytes()
}

fn shared(i: u32) -> Vec<u8> {
    format!("shared/{i}").into_bytes()
}

/// A batch that rewrites every account: one generation, amounts summing to
/// [`TOTAL`].
fn transfer(rng: &mut StdRng, generation: u64) -> Vec<OracleOp> {
    let mut cuts: Vec<u64> = (0..ACCOUNTS - 1).map(|_| rng.random_range(0..=TOTAL)).collect();
    cuts.sort_unstable();
    cuts.insert(0, 0);
    cuts.push(TOTAL);
    (0..ACCOUNTS)
        .map(|i| {
            let amount = cuts[i as usize + 1] - cuts[i as usize];
            (account(i), Some(format!("{generation}:{amount}").into_bytes()))
        })
        .collect()
}

fn write_batch(store: &Store, ops: &[OracleOp]) -> u64 {
    let mut batch = WriteBatch::new();
    for (k, v) in ops {
        match v {
            Some(v) => batch.put(k.clone(), v.clone()),
            None => batch.delete(k.clone()),
        };
    }
    store.write(&batch).expect("batch")
}

/// The accounts as a scan at `at` sees them: every account present, one
/// generation, and the total unchanged.
fn check_accounts(store: &Store, at: Option<u64>, context: &str) -> Vec<(Vec<u8>, Value)> {
    let mut options = ScanOptions::prefix(b"bal/");
    options.at = at;
    let rows: Vec<(Vec<u8>, Value)> = store.scan(options).collect::<Result<_, _>>().expect("scan");
    assert_eq!(rows.len(), ACCOUNTS as usize, "{context}: a scan lost an account");
    let mut generations = Vec::new();
    let mut sum = 0;
    for (_, v) in &rows {
        let text = String::from_utf8(v.data.clone()).expect("utf-8");
        let (generation, amount) = text.split_once(':').expect("generation:amount");
        generations.push(generation.to_string());
        sum += amount.parse::<u64>().expect("amount");
    }
    generations.dedup();
    assert_eq!(generations.len(), 1, "{context}: a scan mixed two batches: {rows:?}");
    assert_eq!(sum, TOTAL, "{context}: a scan saw half a transfer");
    let versions: Vec<u64> = rows.iter().map(|r| r.1.version).collect();
    assert!(versions.windows(2).all(|w| w[0] == w[1]), "{context}: one batch, one version: {versions:?}");
    rows
}

fn run(mode: Durability, seed: u64) {
    let fs = SimFs::new();
    let store = Arc::new(open(&fs, mode, SEGMENT_SIZE_BYTES));
    let mut oracle = Oracle::default();
    let mut rng = StdRng::seed_from_u64(seed);
    let first = transfer(&mut rng, 0);
    oracle.record(write_batch(&store, &first), first);

    let writers_done = Arc::new(AtomicBool::new(false));
    // Everyone starts together, so readers run while writers write.
    let start = Arc::new(std::sync::Barrier::new(5));
    let writers: Vec<_> = (0..3u64)
        .map(|t| {
            let (store, start) = (store.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                let mut rng = StdRng::seed_from_u64(seed * 100 + t);
                let mut mine: Vec<(u64, Vec<OracleOp>)> = Vec::new();
                for n in 0..150u64 {
                    let ops = match rng.random_range(0..10) {
                        0..=2 => transfer(&mut rng, (t + 1) * 1_000_000 + n),
                        3 => vec![(shared(rng.random_range(0..SHARED)), None)],
                        _ => {
                            let mut v = format!("t{t}-n{n}-").into_bytes();
                            v.resize(v.len() + rng.random_range(0..300), b'.');
                            vec![(shared(rng.random_range(0..SHARED)), Some(v))]
                        }
                    };
                    let version = write_batch(&store, &ops);
                    // Read your writes: at its own version the write is
                    // exactly there, and now it or something newer is.
                    for (k, v) in &ops {
                        let want = v.clone().map(|data| Value { data, version });
                        assert_eq!(store.get_at(k, version).unwrap(), want, "writer {t} op {n}");
                        if let Some(now) = store.get(k).unwrap() {
                            assert!(now.version >= version, "writer {t} op {n}: read an older version");
                        }
                    }
                    assert!(store.version() >= version);
                    if ops.len() > 1 {
                        let rows = check_accounts(&store, Some(version), &format!("writer {t} op {n}"));
                        assert!(rows.iter().all(|r| r.1.version == version));
                    }
                    mine.push((version, ops));
                }
                mine
            })
        })
        .collect();

    let readers: Vec<_> = (0..2u64)
        .map(|r| {
            let (store, done, start) = (store.clone(), writers_done.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                let mut rng = StdRng::seed_from_u64(seed * 1000 + r);
                let mut newest: HashMap<Vec<u8>, u64> = HashMap::new();
                let mut seen: Vec<(Vec<u8>, Value)> = Vec::new();
                let mut last_version = 0;
                let mut rounds = 0;
                while !done.load(Ordering::SeqCst) && rounds < 5_000 {
                    rounds += 1;
                    let now = store.version();
                    assert!(now >= last_version, "reader {r}: the store's version went backwards");
                    last_version = now;
                    let k = shared(rng.random_range(0..SHARED));
                    if let Some(v) = store.get(&k).unwrap() {
                        let before = newest.insert(k.clone(), v.version).unwrap_or(0);
                        assert!(
                            v.version >= before,
                            "reader {r}: {k:?} went from {before} back to {}",
                            v.version
                        );
                        assert!(
                            v.version <= store.version(),
                            "reader {r}: saw a version not yet acknowledged"
                        );
                        seen.push((k, v));
                    }
                    if rounds % 8 == 0 {
                        // A scan is one snapshot, and repeating it at its
                        // version gives the same rows.
                        let at = store.version();
                        let rows = check_accounts(&store, Some(at), &format!("reader {r}"));
                        assert_eq!(rows, check_accounts(&store, Some(at), &format!("reader {r} again")));
                        let mut reverse = ScanOptions::prefix(b"bal/").reverse();
                        reverse.at = Some(at);
                        let mut backwards: Vec<_> = store.scan(reverse).map(|x| x.unwrap()).collect();
                        backwards.reverse();
                        assert_eq!(backwards, rows, "reader {r}: reverse scan differs");
                        seen.extend(rows);
                    }
                    if rounds % 16 == 0 {
                        check_accounts(&store, None, &format!("reader {r} current"));
                    }
                }
                seen
            })
        })
        .collect();

    let written: Vec<(u64, Vec<OracleOp>)> =
        writers.into_iter().flat_map(|w| w.join().expect("writer")).collect();
    writers_done.store(true, Ordering::SeqCst);
    let seen: Vec<(Vec<u8>, Value)> = readers.into_iter().flat_map(|r| r.join().expect("reader")).collect();
    oracle.extend(written);

    // Every value a reader saw is exactly what the write of that version
    // stored for that key.
    for (k, v) in &seen {
        assert_eq!(oracle.written(k, v.version), Some(Some(&v.data)), "a reader saw a value nobody wrote");
    }
    let last = oracle.last_version();
    assert_eq!(store.version(), last);
    common::assert_is_prefix(&store, &oracle, "after the run");
    drop(store);
    let reopened = open(&fs, mode, SEGMENT_SIZE_BYTES);
    assert_eq!(common::assert_is_prefix(&reopened, &oracle, "after reopening"), last);
}

#[test]
fn concurrent_readers_and_writers_in_always_mode_see_consistent_monotonic_state() {
    for seed in 0..3 {
        run(Durability::Always, seed);
    }
}

#[test]
fn concurrent_readers_and_writers_in_periodic_mode_see_consistent_monotonic_state() {
    for seed in 10..13 {
        run(periodic(4096), seed);
    }
}

#[test]
fn concurrent_readers_and_writers_in_none_mode_see_consistent_monotonic_state() {
    run(Durability::None, 20);
}

/// Writers that touch disjoint keys each read back their own writes at
/// once, in every mode, while other writers keep the log busy.
#[test]
fn every_acknowledged_write_is_readable_as_soon_as_it_returns() {
    for mode in [Durability::Always, periodic(2048), Durability::None] {
        let fs = SimFs::new();
        let store = Arc::new(open(&fs, mode, SEGMENT_SIZE_BYTES));
        let oracle = Arc::new(Mutex::new(Oracle::default()));
        let threads: Vec<_> = (0..4u32)
            .map(|t| {
                let (store, oracle) = (store.clone(), oracle.clone());
                std::thread::spawn(move || {
                    for i in 0..100u32 {
                        let k = format!("w{t}/{}", i % 5).into_bytes();
                        let v = format!("{t}-{i}").into_bytes();
                        let version = store.put(&k, &v).unwrap();
                        // Nobody else writes this key: the newest value is ours.
                        assert_eq!(
                            store.get(&k).unwrap(),
                            Some(Value { data: v.clone(), version }),
                            "{mode:?}"
                        );
                        if i % 7 == 0 {
                            let d = store.delete(&k).unwrap().expect("our key is live");
                            assert_eq!(store.get(&k).unwrap(), None);
                            assert_eq!(store.get_at(&k, d - 1).unwrap().map(|x| x.data), Some(v.clone()));
                            oracle.lock().unwrap().record(d, vec![(k.clone(), None)]);
                        }
                        oracle.lock().unwrap().record(version, vec![(k, Some(v))]);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let oracle = oracle.lock().unwrap();
        common::assert_is_prefix(&store, &oracle, &format!("{mode:?}"));
        assert_eq!(store.version(), oracle.last_version());
    }
}
