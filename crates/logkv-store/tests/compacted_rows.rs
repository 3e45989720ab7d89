//! What a node reads by position after compaction replaced its records:
//! the rows retention kept (state, annex, log time; the entry is gone),
//! `Compacted` for the others, and the newest state and log time carried
//! by the compacted file, checkpoints and exports.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{options, DIR};
use logkv_fs::{FileSystem, SimFs};
use logkv_store::{AppliedOp, AppliedValue, Durability, Retention, Store, StoreError, StoreOptions};

fn v(position: u64) -> u64 {
    position << 16
}

fn opts(fs: &SimFs, retention: Retention) -> StoreOptions {
    StoreOptions { retention, ..options(fs, Durability::Always, 4096) }
}

/// Appends records `from..=to`, each with state `[p; 32]`, annex
/// `"annex p"` and log time `1_000 * p`.
fn append(store: &Store, from: u64, to: u64) {
    for p in from..=to {
        let key = format!("k{}", p % 3).into_bytes();
        let ops = [AppliedOp {
            keyspace: 2,
            key: &key,
            version: v(p),
            value: AppliedValue::InEntry { offset: 0, len: 4 },
        }];
        let annex = format!("annex {p}");
        let entry = vec![p as u8; 300];
        store
            .append_applied(None, v(p), &entry, &ops, &[p as u8; 32], annex.as_bytes(), Some(1_000 * p))
            .unwrap();
    }
    store.commit(to).unwrap();
}

fn assert_row(store: &Store, p: u64, entry: bool) {
    let r = store.applied_at(p).unwrap().unwrap_or_else(|| panic!("record {p}"));
    assert_eq!((r.position, r.version, r.time_ms, r.state), (p, v(p), 1_000 * p, [p as u8; 32]));
    assert_eq!(r.annex, format!("annex {p}").into_bytes());
    assert_eq!(r.entry.is_some(), entry, "record {p}");
}

#[test]
fn without_retention_every_replaced_record_keeps_its_row() {
    let fs = SimFs::new();
    let store = Store::open(Path::new(DIR), opts(&fs, Retention::default())).unwrap();
    append(&store, 1, 30);
    store.compact(&mut |_, _| {}).unwrap();
    let through = store.compacted().unwrap().last_position;
    assert!(through > 10);
    append(&store, 31, 40);
    store.compact(&mut |_, _| {}).unwrap();
    let check = |store: &Store| {
        for p in 1..=40 {
            assert_row(store, p, p > store.compacted().unwrap().last_position);
        }
        assert_eq!(store.newest_state(), Some(([40; 32], v(40))));
        assert_eq!(store.time_of_position(5).unwrap(), Some(5_000));
    };
    check(&store);
    store.close().unwrap();
    // Without checkpoints the compacted file alone carries state and time.
    for name in fs.list_dir(Path::new(DIR)).unwrap() {
        if name.ends_with(".ckpt") {
            fs.remove_file(&Path::new(DIR).join(name)).unwrap();
        }
    }
    let store = Store::open(Path::new(DIR), opts(&fs, Retention::default())).unwrap();
    check(&store);
    store.append_applied(None, v(41), b"e", &[], &[41; 32], b"", Some(5)).unwrap();
    store.commit(41).unwrap();
    assert_eq!(store.time_of_position(41).unwrap(), Some(40_000), "log time never goes back");
}

#[test]
fn with_one_version_kept_only_the_last_replaced_record_keeps_its_row() {
    let fs = SimFs::new();
    let retention = Retention { versions: Some(1), duration: None, tombstone_horizon: None };
    let store = Store::open(Path::new(DIR), opts(&fs, retention)).unwrap();
    append(&store, 1, 30);
    store.compact(&mut |_, _| {}).unwrap();
    let last = store.compacted().unwrap().last_position;
    assert_row(&store, last, false);
    match store.applied_at(3) {
        Err(StoreError::Compacted { version: 3, oldest }) => assert_eq!(oldest, last + 1),
        other => panic!("expected Compacted, got {other:?}"),
    }
    assert!(matches!(store.time_of_position(3), Err(StoreError::Compacted { .. })));
    assert_eq!(store.position_at_time(1_000 * last).unwrap(), Some(last));
    assert_eq!(store.version_at_time(1_000 * last).unwrap(), v(last));
    assert_eq!(store.version_at_time(1_000 * last + 500).unwrap(), v(last));
    assert_eq!(store.newest_state(), Some(([30; 32], v(30))));
}

#[test]
fn a_time_window_keeps_the_rows_inside_it() {
    let fs = SimFs::new();
    // Log times are given as 1_000 * position ms after 1970: every record
    // is far outside a one-day window. The window maps to versions by the
    // segments' first records, conservatively: the last segment that
    // started before it is kept whole, the rows of older ones are not.
    let retention =
        Retention { versions: None, duration: Some(Duration::from_secs(86_400)), tombstone_horizon: None };
    let store = Store::open(Path::new(DIR), opts(&fs, retention)).unwrap();
    append(&store, 1, 30);
    store.compact(&mut |_, _| {}).unwrap();
    let last = store.compacted().unwrap().last_position;
    assert_row(&store, last, false);
    assert!(matches!(store.applied_at(1), Err(StoreError::Compacted { .. })));
}

#[test]
fn an_export_carries_the_state_and_log_time_into_the_imported_store() {
    let fs = SimFs::new();
    let store = Store::open(Path::new(DIR), opts(&fs, Retention::default())).unwrap();
    append(&store, 1, 12);
    store.export(Path::new("/export")).unwrap();
    Store::import(&fs, Path::new("/export"), Path::new("/imported")).unwrap();
    let imported = Store::open(Path::new("/imported"), opts(&fs, Retention::default())).unwrap();
    assert_eq!(imported.newest_state(), Some(([12; 32], v(12))));
    assert_row(&imported, 12, false);
    assert!(matches!(imported.applied_at(11), Err(StoreError::Compacted { .. })));
    imported.append_applied(None, v(13), b"e", &[], &[13; 32], b"", Some(1)).unwrap();
    imported.commit(13).unwrap();
    assert_eq!(imported.time_of_position(13).unwrap(), Some(12_000));
    assert_eq!(imported.newest_state(), Some(([13; 32], v(13))));
}

#[test]
fn a_checkpoint_carries_the_state_when_nothing_is_replayed() {
    let fs = SimFs::new();
    let store = Store::open(Path::new(DIR), opts(&fs, Retention::default())).unwrap();
    append(&store, 1, 5);
    store.checkpoint().unwrap();
    store.close().unwrap();
    let store = Store::open(Path::new(DIR), opts(&fs, Retention::default())).unwrap();
    assert_eq!(store.open_report().replayed_records, 0);
    assert_eq!(store.newest_state(), Some(([5; 32], v(5))));
}

#[test]
fn a_restore_inside_the_compacted_part_takes_the_state_and_time_of_its_row() {
    let fs = SimFs::new();
    let store = Store::open(Path::new(DIR), opts(&fs, Retention::default())).unwrap();
    append(&store, 1, 30);
    store.compact(&mut |_, _| {}).unwrap();
    assert!(store.compacted().unwrap().last_position > 10);
    assert_eq!(store.version_at_time(5_500).unwrap(), v(5));
    assert_eq!(store.version_at_time(999).unwrap(), 0, "nothing was appended by then");
    // A version between two records restores the older one.
    let report = store.restore(v(5) + 3, Path::new("/at-5")).unwrap();
    assert_eq!((report.version, report.position), (v(5), 5));
    let restored = Store::open(Path::new("/at-5"), opts(&fs, Retention::default())).unwrap();
    assert_eq!(restored.newest_state(), Some(([5; 32], v(5))));
    for p in 1..=5 {
        assert_row(&restored, p, false);
    }
    assert_eq!(restored.applied_at(6).unwrap(), None);
    assert_eq!(restored.get_at_in(2, b"k2", u64::MAX).unwrap().unwrap().version, v(5));
    assert_eq!(restored.get_at_in(2, b"k2", v(4)).unwrap().unwrap().version, v(2), "history before it");
    restored.append_applied(None, v(6), b"e", &[], &[6; 32], b"", Some(1)).unwrap();
    restored.commit(6).unwrap();
    assert_eq!(restored.time_of_position(6).unwrap(), Some(5_000), "log time goes on from the row's");
}

#[test]
fn a_restore_before_the_rows_a_time_window_kept_is_refused_naming_the_oldest_it_can_reach() {
    let fs = SimFs::new();
    // Every record is far outside a one-day window (see above): only the
    // rows and versions from the newest input segment's first record on stay.
    let retention =
        Retention { versions: None, duration: Some(Duration::from_secs(86_400)), tombstone_horizon: None };
    let store = Store::open(Path::new(DIR), opts(&fs, retention)).unwrap();
    append(&store, 1, 30);
    store.compact(&mut |_, _| {}).unwrap();
    let oldest = match store.restore(v(2), Path::new("/early")) {
        Err(StoreError::NotRetained(why)) => {
            let named = why.split("can reach is version ").nth(1).expect("names the oldest");
            named.parse::<u64>().unwrap_or_else(|_| panic!("{why}"))
        }
        other => panic!("expected NotRetained, got {other:?}"),
    };
    assert!(oldest > v(2) && oldest < store.compacted().unwrap().last_version, "{oldest}");
    assert!(matches!(store.version_at_time(2_000), Err(StoreError::NotRetained(_))));
    assert_eq!(store.version_at_time(1_000 * (oldest >> 16)).unwrap(), oldest);
    let report = store.restore(oldest, Path::new("/oldest")).unwrap();
    assert_eq!(report.version, oldest);
    let restored = Store::open(Path::new("/oldest"), opts(&fs, Retention::default())).unwrap();
    let p = oldest >> 16;
    assert_eq!(restored.newest_state(), Some(([p as u8; 32], oldest)));
    for i in 0..3u64 {
        // Key `k{i}` was written at the positions `i` modulo 3.
        let newest = restored.get_at_in(2, format!("k{i}").as_bytes(), u64::MAX).unwrap().unwrap().version;
        assert_eq!(newest, v(p - (p + 3 - i) % 3), "k{i}");
    }
}
