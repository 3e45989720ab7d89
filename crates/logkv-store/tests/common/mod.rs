//! Helpers shared by the store's integration tests: opening stores on a
//! simulated file system and an oracle that remembers every version.

#![allow(dead_code)] // each test binary uses its own part of this module

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use logkv_fs::{DynFs, SimFs};
use logkv_store::{Durability, Limits, LogConfig, RecoveryMode, ScanOptions, Store, StoreOptions, Value};

/// Where the stores of these tests live on a [`SimFs`].
pub const DIR: &str = "/db";

/// `periodic` made deterministic: the interval never ends during a test, so
/// flushes happen when the buffer reaches `flush_size_bytes` or on `sync()`.
pub fn periodic(flush_size_bytes: usize) -> Durability {
    Durability::Periodic { flush_interval: Duration::from_secs(3600), flush_size_bytes }
}

/// Options for a store on `fs` with small segments so tests cross them.
pub fn options(fs: &SimFs, durability: Durability, segment_size_bytes: u64) -> StoreOptions {
    options_on(Arc::new(fs.clone()), durability, segment_size_bytes)
}

/// Options for a store on any file system.
pub fn options_on(fs: DynFs, durability: Durability, segment_size_bytes: u64) -> StoreOptions {
    StoreOptions {
        fs,
        log: LogConfig { segment_size_bytes, durability, recovery: RecoveryMode::Strict },
        limits: Limits::default(),
        ..StoreOptions::default()
    }
}

/// Opens the store in [`DIR`] on `fs`.
pub fn open(fs: &SimFs, durability: Durability, segment_size_bytes: u64) -> Store {
    Store::open(Path::new(DIR), options(fs, durability, segment_size_bytes)).expect("open store")
}

/// One write as the oracle records it: `None` is a delete.
pub type OracleOp = (Vec<u8>, Option<Vec<u8>>);

/// Every acknowledged (or attempted) write, by version, so that the state
/// and history at any version can be computed exactly.
#[derive(Debug, Default, Clone)]
pub struct Oracle {
    batches: BTreeMap<u64, Vec<OracleOp>>,
}

/// A key's value and the version that wrote it.
pub type State = BTreeMap<Vec<u8>, (Vec<u8>, u64)>;

impl Oracle {
    /// Records the batch the store gave `version`.
    pub fn record(&mut self, version: u64, ops: Vec<OracleOp>) {
        let old = self.batches.insert(version, ops);
        assert!(old.is_none(), "version {version} handed out twice");
    }

    /// Merges writes recorded elsewhere (other threads).
    pub fn extend(&mut self, other: impl IntoIterator<Item = (u64, Vec<OracleOp>)>) {
        for (v, ops) in other {
            self.record(v, ops);
        }
    }

    /// The newest recorded version (0 when none).
    pub fn last_version(&self) -> u64 {
        self.batches.keys().next_back().copied().unwrap_or(0)
    }

    /// Versions given out, ascending.
    pub fn versions(&self) -> impl Iterator<Item = u64> + '_ {
        self.batches.keys().copied()
    }

    /// The live keys and values as of `version`.
    pub fn state_at(&self, version: u64) -> State {
        let mut state = State::new();
        for (&v, ops) in self.batches.range(..=version) {
            for (key, value) in ops {
                match value {
                    Some(value) => state.insert(key.clone(), (value.clone(), v)),
                    None => state.remove(key),
                };
            }
        }
        state
    }

    /// What the write of `version` left in `key`: `Some(None)` for a
    /// delete, `None` if that write did not touch `key`.
    pub fn written(&self, key: &[u8], version: u64) -> Option<Option<&Vec<u8>>> {
        self.batches.get(&version)?.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_ref())
    }

    /// The value of `key` as of `version`.
    pub fn get_at(&self, key: &[u8], version: u64) -> Option<Value> {
        self.state_at(version).remove(key).map(|(data, version)| Value { data, version })
    }

    /// `(version, deleted, value_len)` of every version of `key`, newest
    /// first. A delete of a key that never had a value leaves no trace; a
    /// batch that touches a key twice is one version (its last op wins).
    pub fn history(&self, key: &[u8]) -> Vec<(u64, bool, u32)> {
        let mut out: Vec<(u64, bool, u32)> = Vec::new();
        let mut known = false;
        for (&v, ops) in &self.batches {
            for (k, value) in ops {
                if k != key {
                    continue;
                }
                let entry = match value {
                    Some(value) => {
                        known = true;
                        (v, false, value.len() as u32)
                    }
                    None if known => (v, true, 0),
                    None => continue,
                };
                match out.last_mut() {
                    Some(last) if last.0 == v => *last = entry,
                    _ => out.push(entry),
                }
            }
        }
        out.reverse();
        out
    }

    /// What `scan(options)` must return as of `version`.
    pub fn scan(&self, options: &ScanOptions, version: u64) -> Vec<(Vec<u8>, Value)> {
        use std::ops::RangeBounds;
        let at = options.at.unwrap_or(u64::MAX).min(version);
        let bounds = (options.start.clone(), options.end.clone());
        let mut hits: Vec<(Vec<u8>, Value)> = self
            .state_at(at)
            .into_iter()
            .filter(|(k, _)| bounds.contains(k))
            .map(|(k, (data, version))| (k, Value { data, version }))
            .collect();
        if options.reverse {
            hits.reverse();
        }
        hits.truncate(options.limit.unwrap_or(usize::MAX));
        hits
    }
}

/// Everything a store holds now, read through a full scan.
pub fn store_state(store: &Store) -> State {
    store
        .scan(ScanOptions::default())
        .map(|r| {
            let (k, v) = r.expect("scan");
            (k, (v.data, v.version))
        })
        .collect()
}

/// Asserts that `store` holds exactly the oracle's state at its own version,
/// and returns that version.
pub fn assert_is_prefix(store: &Store, oracle: &Oracle, context: &str) -> u64 {
    let v = store.version();
    assert!(v <= oracle.last_version(), "{context}: store is at version {v}, newer than any write");
    assert!(
        v == 0 || oracle.versions().any(|x| x == v),
        "{context}: store is at version {v}, which no write was given"
    );
    let want = oracle.state_at(v);
    let got = store_state(store);
    if got != want {
        let diff: Vec<String> = want
            .keys()
            .chain(got.keys())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .filter(|k| want.get(*k) != got.get(*k))
            .take(5)
            .map(|k| {
                format!(
                    "{}: want {:?} got {:?}",
                    String::from_utf8_lossy(k),
                    want.get(k).map(|x| x.1),
                    got.get(k).map(|x| x.1)
                )
            })
            .collect();
        panic!("{context}: recovered state at version {v} is not the oracle's state there: {diff:?}");
    }
    for (k, (data, version)) in &want {
        let got = store.get(k).expect("get");
        assert_eq!(got, Some(Value { data: data.clone(), version: *version }), "{context}: get");
    }
    v
}
