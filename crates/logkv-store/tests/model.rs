//! Model-based property test: random operations on a store and on an oracle
//! that keeps every version must agree on every read, across reopens.

mod common;

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use common::{options, options_on, Oracle, DIR};
use logkv_fs::{SimFs, StdFs};
use logkv_store::{Durability, ScanOptions, Store, StoreOptions, Value, WriteBatch};
use proptest::prelude::*;

/// Keys of 1..=3 bytes over a tiny alphabet (with 0xff, so prefix scans
/// exercise the carry), so writes collide often.
fn key() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(vec![b'a', b'b', b'c', 0xff]), 1..=3)
}

/// Values are often empty (a value, not a delete) and sometimes large
/// enough that a few fill a segment.
fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => Just(Vec::new()),
        6 => prop::collection::vec(any::<u8>(), 1..16),
        1 => prop::collection::vec(any::<u8>(), 200..1500),
    ]
}

fn bound() -> impl Strategy<Value = Bound<Vec<u8>>> {
    prop_oneof![Just(Bound::Unbounded), key().prop_map(Bound::Included), key().prop_map(Bound::Excluded),]
}

#[derive(Debug, Clone)]
enum BatchOp {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
}

#[derive(Debug, Clone)]
enum Action {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    Batch(Vec<BatchOp>),
    Get(Vec<u8>),
    /// A version picked as a fraction of the current one.
    GetAt(Vec<u8>, f64),
    History(Vec<u8>),
    Scan {
        start: Bound<Vec<u8>>,
        end: Bound<Vec<u8>>,
        reverse: bool,
        limit: Option<usize>,
        at: Option<f64>,
    },
    Prefix {
        prefix: Vec<u8>,
        reverse: bool,
        limit: Option<usize>,
        at: Option<f64>,
    },
    First,
    Last,
    Next(Vec<u8>, bool),
    Prev(Vec<u8>, bool),
    /// Drop the store and open it again.
    Reopen,
    /// Open a copy of the file system as a killed process leaves it.
    CrashReopen,
}

fn action() -> impl Strategy<Value = Action> {
    let batch_op = prop_oneof![
        3 => (key(), value()).prop_map(|(k, v)| BatchOp::Put(k, v)),
        1 => key().prop_map(BatchOp::Delete),
    ];
    let fraction = 0.0..=1.0f64;
    prop_oneof![
        30 => (key(), value()).prop_map(|(k, v)| Action::Put(k, v)),
        10 => key().prop_map(Action::Delete),
        10 => prop::collection::vec(batch_op, 0..6).prop_map(Action::Batch),
        12 => key().prop_map(Action::Get),
        10 => (key(), fraction.clone()).prop_map(|(k, f)| Action::GetAt(k, f)),
        5 => key().prop_map(Action::History),
        8 => (bound(), bound(), any::<bool>(), prop::option::of(0usize..5), prop::option::of(fraction.clone()))
            .prop_map(|(start, end, reverse, limit, at)| Action::Scan { start, end, reverse, limit, at }),
        4 => (prop::collection::vec(prop::sample::select(vec![b'a', b'b', 0xff]), 0..=2),
              any::<bool>(), prop::option::of(0usize..4), prop::option::of(fraction))
            .prop_map(|(prefix, reverse, limit, at)| Action::Prefix { prefix, reverse, limit, at }),
        1 => Just(Action::First),
        1 => Just(Action::Last),
        2 => (key(), any::<bool>()).prop_map(|(k, i)| Action::Next(k, i)),
        2 => (key(), any::<bool>()).prop_map(|(k, i)| Action::Prev(k, i)),
        2 => Just(Action::Reopen),
        1 => Just(Action::CrashReopen),
    ]
}

#[derive(Debug, Clone, Copy)]
enum Backing {
    Sim(Durability),
    /// The real file system in a temporary directory.
    Disk,
}

fn backing() -> impl Strategy<Value = Backing> {
    prop_oneof![
        Just(Backing::Sim(Durability::Always)),
        Just(Backing::Sim(Durability::None)),
        Just(Backing::Sim(common::periodic(2048))),
        Just(Backing::Disk),
    ]
}

/// The store under test and what it lives on.
struct Harness {
    backing: Backing,
    sim: SimFs,
    tmp: Option<tempfile::TempDir>,
    store: Option<Store>,
}

const SEGMENT_SIZE_BYTES: u64 = 8 * 1024;

impl Harness {
    fn new(backing: Backing) -> Self {
        let tmp = matches!(backing, Backing::Disk).then(|| tempfile::tempdir().expect("tempdir"));
        let mut h = Harness { backing, sim: SimFs::new(), tmp, store: None };
        h.store = Some(h.open());
        h
    }

    fn options(&self) -> (StoreOptions, &Path) {
        match (self.backing, &self.tmp) {
            (Backing::Sim(d), _) => (options(&self.sim, d, SEGMENT_SIZE_BYTES), Path::new(DIR)),
            (Backing::Disk, Some(tmp)) => {
                (options_on(Arc::new(StdFs), Durability::Always, SEGMENT_SIZE_BYTES), tmp.path())
            }
            (Backing::Disk, None) => unreachable!("a disk harness has a temporary directory"),
        }
    }

    fn open(&self) -> Store {
        let (options, dir) = self.options();
        Store::open(dir, options).expect("reopen")
    }

    fn store(&self) -> &Store {
        self.store.as_ref().expect("store is open")
    }

    fn reopen(&mut self) {
        drop(self.store.take());
        self.store = Some(self.open());
    }

    /// `kill -9`: the page cache keeps everything. `periodic` may lose its
    /// buffer then, so it is only checked in the other modes.
    fn crash_reopen(&mut self) {
        match self.backing {
            Backing::Sim(Durability::Always | Durability::None) => {
                let crashed = self.sim.crash_process();
                drop(self.store.take());
                self.sim = crashed;
                self.store = Some(self.open());
            }
            _ => self.reopen(),
        }
    }
}

fn pick_version(current: u64, fraction: f64) -> u64 {
    (current as f64 * fraction).round() as u64
}

fn run(backing: Backing, actions: Vec<Action>) -> Result<(), TestCaseError> {
    let mut h = Harness::new(backing);
    let mut oracle = Oracle::default();
    let mut now = 0u64;
    for (step, action) in actions.into_iter().enumerate() {
        let store = h.store();
        match action {
            Action::Put(k, v) => {
                let version = store.put(&k, &v).expect("put");
                prop_assert!(version > now, "step {step}: version {version} after {now}");
                now = version;
                oracle.record(version, vec![(k, Some(v))]);
            }
            Action::Delete(k) => {
                let live = oracle.get_at(&k, now).is_some();
                match store.delete(&k).expect("delete") {
                    Some(version) => {
                        prop_assert!(live, "step {step}: delete of an absent key wrote version {version}");
                        prop_assert!(version > now);
                        now = version;
                        oracle.record(version, vec![(k, None)]);
                    }
                    None => prop_assert!(!live, "step {step}: delete of a live key wrote nothing"),
                }
            }
            Action::Batch(ops) => {
                let mut batch = WriteBatch::new();
                let mut recorded = Vec::new();
                for op in ops {
                    match op {
                        BatchOp::Put(k, v) => {
                            batch.put(k.clone(), v.clone());
                            recorded.push((k, Some(v)));
                        }
                        BatchOp::Delete(k) => {
                            batch.delete(k.clone());
                            recorded.push((k, None));
                        }
                    }
                }
                let version = store.write(&batch).expect("batch");
                if recorded.is_empty() {
                    prop_assert_eq!(version, now, "an empty batch writes nothing");
                } else {
                    prop_assert!(version > now);
                    now = version;
                    oracle.record(version, recorded);
                }
            }
            Action::Get(k) => {
                prop_assert_eq!(store.get(&k).expect("get"), oracle.get_at(&k, now), "step {}", step);
            }
            Action::GetAt(k, f) => {
                let at = pick_version(now, f);
                prop_assert_eq!(store.get_at(&k, at).expect("get_at"), oracle.get_at(&k, at), "at {}", at);
            }
            Action::History(k) => {
                let got: Vec<(u64, bool, u32)> = store
                    .history(&k)
                    .expect("history")
                    .into_iter()
                    .map(|h| (h.version, h.deleted, h.value_len))
                    .collect();
                prop_assert_eq!(got, oracle.history(&k), "step {}: history of {:?}", step, k);
            }
            Action::Scan { start, end, reverse, limit, at } => {
                let mut o = ScanOptions { start, end, reverse, limit, at: None };
                if let Some(f) = at {
                    o = o.at(pick_version(now, f));
                }
                check_scan(store, &oracle, o, now)?;
            }
            Action::Prefix { prefix, reverse, limit, at } => {
                let mut o = ScanOptions::prefix(&prefix);
                o.reverse = reverse;
                o.limit = limit;
                if let Some(f) = at {
                    o = o.at(pick_version(now, f));
                }
                check_scan(store, &oracle, o, now)?;
            }
            Action::First => {
                let want = oracle.scan(&ScanOptions::default().limit(1), now).pop();
                prop_assert_eq!(store.first().expect("first"), want);
            }
            Action::Last => {
                let want = oracle.scan(&ScanOptions::default().reverse().limit(1), now).pop();
                prop_assert_eq!(store.last().expect("last"), want);
            }
            Action::Next(k, inclusive) => {
                let start = if inclusive { Bound::Included(k.clone()) } else { Bound::Excluded(k.clone()) };
                let want = oracle.scan(&ScanOptions { start, ..ScanOptions::default() }.limit(1), now).pop();
                prop_assert_eq!(store.next(&k, inclusive).expect("next"), want);
            }
            Action::Prev(k, inclusive) => {
                let end = if inclusive { Bound::Included(k.clone()) } else { Bound::Excluded(k.clone()) };
                let want =
                    oracle.scan(&ScanOptions { end, ..ScanOptions::default() }.reverse().limit(1), now).pop();
                prop_assert_eq!(store.prev(&k, inclusive).expect("prev"), want);
            }
            Action::Reopen => {
                h.reopen();
                prop_assert_eq!(h.store().version(), now, "a clean reopen keeps every version");
                prop_assert!(h.store().recovery_report().truncation.is_none(), "clean reopen truncated");
            }
            Action::CrashReopen => {
                h.crash_reopen();
                prop_assert_eq!(h.store().version(), now, "kill -9 loses nothing acknowledged here");
            }
        }
        let store = h.store();
        prop_assert_eq!(store.version(), now);
        prop_assert_eq!(store.len(), oracle.state_at(now).len() as u64, "live key count");
    }
    // Finally every key, every version, and a last reopen.
    h.reopen();
    let store = h.store();
    let state = oracle.state_at(now);
    prop_assert_eq!(common::store_state(store), state);
    for v in 0..=now {
        let want = oracle.scan(&ScanOptions::default(), v);
        let got: Vec<(Vec<u8>, Value)> =
            store.scan(ScanOptions::default().at(v)).map(|r| r.unwrap()).collect();
        prop_assert_eq!(got, want, "full scan at version {}", v);
    }
    Ok(())
}

fn check_scan(store: &Store, oracle: &Oracle, options: ScanOptions, now: u64) -> Result<(), TestCaseError> {
    let want = oracle.scan(&options, now);
    let got: Vec<(Vec<u8>, Value)> = store.scan(options.clone()).collect::<Result<_, _>>().expect("scan");
    prop_assert_eq!(got, want, "scan {:?}", options);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, max_shrink_iters: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn store_agrees_with_a_versioned_btreemap_oracle(
        backing in backing(),
        actions in prop::collection::vec(action(), 1..200),
    ) {
        run(backing, actions)?;
    }
}

/// A batch that touches one key twice creates one version of it, and the
/// last op in the batch wins for reads and for history alike.
#[test]
fn batch_touching_a_key_twice_is_one_version_and_the_last_op_wins() {
    let fs = SimFs::new();
    let store = common::open(&fs, Durability::Always, SEGMENT_SIZE_BYTES);
    let v1 = store.put(b"k", b"old").unwrap();
    let mut batch = WriteBatch::new();
    batch.put(b"k".to_vec(), b"first".to_vec()).put(b"k".to_vec(), b"").put(b"j".to_vec(), b"x".to_vec());
    let v2 = store.write(&batch).unwrap();
    assert_eq!(store.get(b"k").unwrap(), Some(Value { data: Vec::new(), version: v2 }));
    let versions: Vec<u64> = store.history(b"k").unwrap().iter().map(|h| h.version).collect();
    assert_eq!(versions, vec![v2, v1]);
    let mut batch = WriteBatch::new();
    batch.put(b"k".to_vec(), b"again".to_vec()).delete(b"k".to_vec());
    let v3 = store.write(&batch).unwrap();
    assert_eq!(store.get(b"k").unwrap(), None);
    let history = store.history(b"k").unwrap();
    assert_eq!(history.len(), 3);
    assert!(history[0].deleted && history[0].version == v3);
    assert_eq!(store.get_at(b"k", v2).unwrap().unwrap().data, b"");
}
