//! Deleted keys of the runtime's keyspaces leave the index once their
//! delete is older than the runtime's version-check horizon: put and
//! delete churn does not grow memory, while a delete still inside the
//! horizon (one a transaction may compare with) stays.

mod common;

use std::path::Path;

use common::{options, DIR};
use logkv_fs::SimFs;
use logkv_store::{AppliedOp, AppliedValue, Durability, Retention, Store, StoreError, StoreOptions};

const HORIZON: u64 = 5;

fn v(position: u64, index: u64) -> u64 {
    (position << 16) | index
}

#[test]
fn put_delete_churn_beyond_the_horizon_leaves_the_index_where_it_started() {
    let fs = SimFs::new();
    let retention = Retention { versions: Some(1), duration: None, tombstone_horizon: Some(HORIZON) };
    let options = StoreOptions { retention, ..options(&fs, Durability::Always, 64 << 10) };
    let store = Store::open(Path::new(DIR), options).unwrap();
    let ops = [AppliedOp { keyspace: 2, key: b"stays", version: v(1, 0), value: AppliedValue::Put(b"x") }];
    store.append_applied(None, v(1, 0), b"", &ops, &[0; 32], b"", None).unwrap();
    store.commit(1).unwrap();
    let before = store.index_entries();
    let pairs = 10_000u64;
    for p in 2..2 + pairs {
        let key = format!("churn-{p}").into_bytes();
        let ops = [
            AppliedOp { keyspace: 2, key: &key, version: v(p, 0), value: AppliedValue::Put(b"value") },
            AppliedOp { keyspace: 2, key: &key, version: v(p, 1), value: AppliedValue::Delete },
        ];
        store.append_applied(None, v(p, 1), b"", &ops, &[0; 32], b"", None).unwrap();
    }
    let last = 1 + pairs;
    store.commit(last).unwrap();
    assert_eq!(store.index_entries(), before + pairs as usize, "each delete leaves a tombstone");
    let report = store.compact(&mut |_, _| {}).unwrap();
    assert_eq!(report.compacted_through, last);
    let check = |store: &Store| {
        // The deletes of the last HORIZON positions (and the one at the
        // horizon itself) are inside it and stay.
        assert!(store.index_entries() <= before + HORIZON as usize + 1, "{}", store.index_entries());
        let recent = format!("churn-{last}").into_bytes();
        assert_eq!(
            store.newest_meta_in(2, &recent).unwrap().map(|m| (m.version, m.deleted)),
            Some((v(last, 1), true))
        );
        assert_eq!(store.newest_meta_in(2, b"churn-2").unwrap(), None);
        assert_eq!(store.get_at_in(2, b"stays", u64::MAX).unwrap().unwrap().data, b"x");
        // Below the newest dropped delete every read is "compacted".
        let dropped = v(last - HORIZON - 1, 1);
        assert_eq!(store.horizon(), dropped);
        assert!(matches!(store.get_at_in(2, b"stays", dropped - 1), Err(StoreError::Compacted { .. })));
    };
    check(&store);
    store.close().unwrap();
    let options = StoreOptions { retention, ..common::options(&fs, Durability::Always, 64 << 10) };
    check(&Store::open(Path::new(DIR), options).unwrap());
}

#[test]
fn without_a_horizon_or_with_history_kept_runtime_deletes_stay() {
    for retention in [
        Retention { versions: Some(1), duration: None, tombstone_horizon: None },
        Retention { versions: Some(2), duration: None, tombstone_horizon: Some(1) },
    ] {
        let fs = SimFs::new();
        let options = StoreOptions { retention, ..options(&fs, Durability::Always, 4096) };
        let store = Store::open(Path::new(DIR), options).unwrap();
        for p in 1..=20u64 {
            let key = format!("k{p}").into_bytes();
            let ops = [
                AppliedOp { keyspace: 3, key: &key, version: v(p, 0), value: AppliedValue::Put(b"v") },
                AppliedOp { keyspace: 3, key: &key, version: v(p, 1), value: AppliedValue::Delete },
            ];
            store.append_applied(None, v(p, 1), b"", &ops, &[0; 32], b"", None).unwrap();
        }
        store.commit(20).unwrap();
        store.compact(&mut |_, _| {}).unwrap();
        assert_eq!(store.index_entries(), 20, "{retention:?}");
        assert_eq!(store.horizon(), 0);
    }
}
