//! Applied entries in the store: keyspaces, explicit versions inside one
//! record, values read from the logged entry (never copied), the order of
//! versions across records, and replay after reopening or power loss.

mod common;

use std::path::Path;

use common::{open, DIR};
use logkv_fs::SimFs;
use logkv_store::{
    AppliedOp, AppliedValue, Durability, HistoryEntry, Newest, ScanOptions, Store, StoreError, StoreOptions,
};

const SEGMENT: u64 = 64 * 1024;

fn v(position: u64, index: u64) -> u64 {
    (position << 16) | index
}

fn put<'a>(keyspace: u32, key: &'a [u8], version: u64, value: &'a [u8]) -> AppliedOp<'a> {
    AppliedOp { keyspace, key, version, value: AppliedValue::Put(value) }
}

fn by_ref(keyspace: u32, key: &[u8], version: u64, offset: usize, len: usize) -> AppliedOp<'_> {
    AppliedOp { keyspace, key, version, value: AppliedValue::InEntry { offset, len } }
}

fn delete(keyspace: u32, key: &[u8], version: u64) -> AppliedOp<'_> {
    AppliedOp { keyspace, key, version, value: AppliedValue::Delete }
}

/// Appends and waits; the record's tag is its last op's version.
fn apply(store: &Store, entry: &[u8], ops: &[AppliedOp<'_>]) -> u64 {
    let tag = ops.last().map_or(0, |o| o.version);
    let position = store.append_applied(None, tag, entry, ops, &[0; 32], &[], None).expect("append");
    store.commit(position).expect("commit");
    position
}

fn data(store: &Store, keyspace: u32, key: &[u8], version: u64) -> Option<(Vec<u8>, u64)> {
    store.get_at_in(keyspace, key, version).unwrap().map(|v| (v.data, v.version))
}

fn keys(store: &Store, keyspace: u32, at: u64) -> Vec<Vec<u8>> {
    store.scan_in(keyspace, ScanOptions::default().at(at)).map(|r| r.unwrap().0).collect()
}

#[test]
fn keyspaces_hold_the_same_key_apart_and_survive_reopen() {
    let fs = SimFs::new();
    let store = open(&fs, Durability::Always, SEGMENT);
    apply(
        &store,
        b"e1",
        &[put(1, b"k", v(1, 0), b"one"), put(2, b"k", v(1, 0), b"two"), put(2, b"z", v(1, 0), b"")],
    );
    apply(&store, b"e2", &[delete(1, b"k", v(2, 0)), put(7, b"a", v(2, 1), b"seven")]);
    let check = |store: &Store| {
        assert_eq!(data(store, 1, b"k", u64::MAX), None);
        assert_eq!(data(store, 1, b"k", v(1, 0)), Some((b"one".to_vec(), v(1, 0))));
        assert_eq!(data(store, 2, b"k", u64::MAX), Some((b"two".to_vec(), v(1, 0))));
        assert_eq!(store.get(b"k").unwrap(), None, "the plain keyspace holds nothing");
        assert_eq!(keys(store, 2, u64::MAX), [b"k".to_vec(), b"z".to_vec()]);
        assert_eq!(keys(store, 1, v(1, 0)), [b"k".to_vec()]);
        assert!(keys(store, 1, u64::MAX).is_empty(), "deleted keys are hidden");
        assert_eq!(keys(store, 7, v(2, 0)), Vec::<Vec<u8>>::new(), "as of before the write");
        assert_eq!(keys(store, 7, v(2, 1)), [b"a".to_vec()]);
        assert_eq!(store.version(), v(2, 1));
        assert_eq!(store.len(), 3);
    };
    check(&store);
    store.close().unwrap();
    check(&open(&fs, Durability::Always, SEGMENT));
}

#[test]
fn ops_of_one_record_are_visible_as_of_each_of_their_versions() {
    let fs = SimFs::new();
    let store = open(&fs, Durability::Always, SEGMENT);
    let entry = b"....value-a....value-b....";
    let ops = [
        by_ref(3, b"k", v(5, 0), 4, 7),
        put(1, b"r0", v(5, 0), b"Commit"),
        by_ref(3, b"k", v(5, 1), 15, 7),
        delete(3, b"k", v(5, 3)),
        put(1, b"d", v(5, 3), b"digest"),
    ];
    let position = store.append_applied(None, v(5, 3), entry, &ops, &[0; 32], &[], None).unwrap();
    assert_eq!(position, 1, "positions and versions are independent");
    // Sequenced, not yet acknowledged: hidden from readers, not from the appender.
    assert_eq!(store.version(), 0);
    assert_eq!(data(&store, 3, b"k", u64::MAX), None);
    assert_eq!(store.newest_in(3, b"k").unwrap(), Some(Newest { version: v(5, 3), value: None }));
    store.commit(position).unwrap();
    assert_eq!(store.version(), v(5, 3));
    assert_eq!(data(&store, 3, b"k", v(5, 0)), Some((b"value-a".to_vec(), v(5, 0))));
    assert_eq!(data(&store, 3, b"k", v(5, 2)), Some((b"value-b".to_vec(), v(5, 1))));
    assert_eq!(data(&store, 3, b"k", v(5, 3)), None);
    assert_eq!(data(&store, 3, b"k", v(4, 0xffff)), None);
    let history = store.history_in(3, b"k").unwrap();
    let versions: Vec<(u64, bool)> = history.iter().map(|h: &HistoryEntry| (h.version, h.deleted)).collect();
    assert_eq!(versions, [(v(5, 3), true), (v(5, 1), false), (v(5, 0), false)]);
    assert_eq!(data(&store, 1, b"d", u64::MAX), Some((b"digest".to_vec(), v(5, 3))));
}

#[test]
fn a_value_in_the_entry_is_stored_once_and_read_from_the_entry() {
    let dir = tempfile::tempdir().unwrap();
    // A value no other bytes could repeat by chance.
    let value: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let mut entry = b"header of a signed entry".to_vec();
    let offset = entry.len();
    entry.extend_from_slice(&value);
    entry.extend_from_slice(b"signature");
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    apply(&store, &entry, &[by_ref(2, b"big", v(1, 0), offset, value.len())]);
    let check = |store: &Store| {
        let found = store.locate_in(2, b"big", u64::MAX).unwrap().expect("located");
        let file = std::fs::read(&found.file).unwrap();
        let entry_at = find(&file, &entry).expect("the entry is in the segment verbatim");
        assert_eq!(found.offset as usize, entry_at + offset, "the value is read inside the entry");
        assert_eq!(&file[found.offset as usize..][..found.len], &value[..]);
        assert_eq!(count(&file, &value), 1, "no second copy of the value");
        assert_eq!(data(store, 2, b"big", u64::MAX), Some((value.clone(), v(1, 0))));
    };
    check(&store);
    store.close().unwrap();
    check(&Store::open(dir.path(), StoreOptions::default()).unwrap());
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack.windows(needle.len()).filter(|w| *w == needle).count()
}

#[test]
fn a_damaged_entry_byte_fails_the_record_checksum() {
    let fs = SimFs::new();
    let store = open(&fs, Durability::Always, SEGMENT);
    let entry = b"entry bytes with a value inside";
    apply(&store, entry, &[by_ref(2, b"k", v(1, 0), 6, 5)]);
    apply(&store, b"second", &[put(2, b"x", v(2, 0), b"1")]);
    let file = store.locate_in(2, b"k", u64::MAX).unwrap().unwrap();
    store.close().unwrap();
    use logkv_fs::FileSystem;
    let f = fs.open(&file.file).unwrap();
    let mut byte = [0u8];
    f.read_exact_at(&mut byte, file.offset).unwrap();
    f.write_at(&[byte[0] ^ 0x40], file.offset).unwrap();
    f.sync_data().unwrap();
    let err = Store::open(Path::new(DIR), common::options(&fs, Durability::Always, SEGMENT)).unwrap_err();
    assert!(err.is_corruption(), "{err}");
}

#[test]
fn writes_out_of_version_order_are_refused_and_change_nothing() {
    let fs = SimFs::new();
    let store = open(&fs, Durability::Always, SEGMENT);
    apply(&store, b"e", &[put(2, b"k", v(3, 0), b"a"), put(2, b"k", v(3, 4), b"b")]);
    let before = (store.next_position(), data(&store, 2, b"k", u64::MAX));
    let not_after = |e: StoreError| assert!(matches!(e, StoreError::OutOfOrder(_)), "{e}");
    // A plain put is versioned by its position (2), below v(3, 4).
    not_after(store.put(b"plain", b"x").unwrap_err());
    not_after(
        store
            .append_applied(None, v(3, 9), b"e", &[put(2, b"k", v(3, 4), b"c")], &[0; 32], &[], None)
            .unwrap_err(),
    );
    not_after(
        store
            .append_applied(Some(7), v(4, 0), b"e", &[put(2, b"k", v(4, 0), b"c")], &[0; 32], &[], None)
            .unwrap_err(),
    );
    let invalid = |e: StoreError| assert!(matches!(e, StoreError::Invalid(_)), "{e}");
    invalid(
        store
            .append_applied(None, v(4, 0), b"e", &[by_ref(2, b"k", v(4, 0), 1, 1)], &[0; 32], &[], None)
            .unwrap_err(),
    );
    invalid(
        store
            .append_applied(None, v(4, 0), b"e", &[put(2, b"k", v(4, 1), b"c")], &[0; 32], &[], None)
            .unwrap_err(),
    );
    not_after(store.append_applied(None, v(3, 3), b"nothing", &[], &[0; 32], &[], None).unwrap_err());
    let backwards = [put(2, b"k", v(4, 1), b"c"), put(2, b"j", v(4, 0), b"c")];
    invalid(store.append_applied(None, v(4, 1), b"e", &backwards, &[0; 32], &[], None).unwrap_err());
    assert!(matches!(
        store.append_applied(None, v(4, 0), b"e", &[put(2, b"", v(4, 0), b"c")], &[0; 32], &[], None),
        Err(StoreError::EmptyKey)
    ));
    assert_eq!((store.next_position(), data(&store, 2, b"k", u64::MAX)), before);
    // The right numbering goes through, with an empty record too.
    assert_eq!(store.append_applied(Some(2), v(4, 0), b"malformed", &[], &[0; 32], &[], None).unwrap(), 2);
    let p = store
        .append_applied(Some(3), v(5, 0), b"e", &[put(2, b"k", v(5, 0), b"c")], &[0; 32], &[], None)
        .unwrap();
    store.commit(p).unwrap();
    assert_eq!(data(&store, 2, b"k", u64::MAX), Some((b"c".to_vec(), v(5, 0))));
    store.close().unwrap();
    let store = open(&fs, Durability::Always, SEGMENT);
    assert_eq!((store.version(), store.next_position()), (v(5, 0), 4));
}

#[test]
fn power_loss_keeps_every_acknowledged_applied_record() {
    let fs = SimFs::new();
    let store = open(&fs, Durability::Always, 4096);
    let entry = vec![7u8; 300];
    for p in 1..=40u64 {
        let key = format!("k{}", p % 5).into_bytes();
        apply(&store, &entry, &[by_ref(2, &key, v(p, 0), 10, 20), put(1, b"d", v(p, 1), &p.to_le_bytes())]);
    }
    for seed in 0..8 {
        let crashed = fs.power_loss(seed);
        let store = open(&crashed, Durability::Always, 4096);
        assert_eq!(store.version(), v(40, 1));
        assert_eq!(data(&store, 1, b"d", u64::MAX), Some((40u64.to_le_bytes().to_vec(), v(40, 1))));
        assert_eq!(data(&store, 2, b"k3", v(39, 0xffff)), Some((vec![7; 20], v(38, 0))));
    }
}

#[test]
fn an_applied_delete_of_a_key_never_held_keeps_its_version() {
    // In the runtime a delete is a write: a later transaction that read the
    // key at an older version must conflict with it.
    let fs = SimFs::new();
    let store = open(&fs, Durability::Always, SEGMENT);
    apply(&store, b"e", &[delete(2, b"never", v(1, 0))]);
    let want = Some(Newest { version: v(1, 0), value: None });
    assert_eq!(store.newest_in(2, b"never").unwrap(), want);
    assert_eq!(data(&store, 2, b"never", u64::MAX), None);
    assert_eq!((store.len(), store.index_entries()), (0, 1));
    store.close().unwrap();
    let store = open(&fs, Durability::Always, SEGMENT);
    assert_eq!(store.newest_in(2, b"never").unwrap(), want);
}

#[test]
fn applied_records_are_read_back_by_position_with_their_state_annex_and_log_time() {
    let fs = SimFs::new();
    let store = open(&fs, Durability::Always, 4096);
    assert_eq!(store.newest_state(), None);
    let entry = vec![5u8; 700];
    for (p, time) in [(1u64, 1_000u64), (2, 500), (3, 2_000), (4, 2_000), (5, 9_000), (6, 9_500)] {
        let ops = [by_ref(2, b"k", v(p, 0), 3, 9)];
        let annex = format!("results of {p}");
        let state = [p as u8; 32];
        store.append_applied(None, v(p, 0), &entry, &ops, &state, annex.as_bytes(), Some(time)).unwrap();
    }
    store.commit(6).unwrap();
    let check = |store: &Store| {
        let r = store.applied_at(2).unwrap().expect("record 2");
        assert_eq!((r.position, r.version, r.time_ms, r.state), (2, v(2, 0), 1_000, [2; 32]));
        assert_eq!((r.annex.as_slice(), r.entry.as_deref()), (&b"results of 2"[..], Some(&entry[..])));
        assert_eq!(store.applied_at(5).unwrap().unwrap().time_ms, 9_000);
        assert_eq!(store.applied_at(0).unwrap(), None);
        assert_eq!(store.applied_at(7).unwrap(), None);
        assert_eq!(store.newest_state(), Some(([6; 32], v(6, 0))));
        assert_eq!(store.time_of_position(3).unwrap(), Some(2_000));
        assert_eq!(store.position_at_time(1_999).unwrap(), Some(2));
        assert_eq!(store.position_at_time(2_000).unwrap(), Some(4));
        assert_eq!(store.position_at_time(999).unwrap(), None);
        assert_eq!(store.version_at_time(9_100).unwrap(), v(5, 0));
    };
    check(&store);
    assert!(store.log().segment_info().unwrap().len() > 1);
    store.close().unwrap();
    let store = open(&fs, Durability::Always, 4096);
    check(&store);
    // A record after reopening continues from the last log time.
    store.append_applied(None, v(7, 0), b"e", &[], &[7; 32], &[], Some(1)).unwrap();
    store.commit(7).unwrap();
    assert_eq!(store.time_of_position(7).unwrap(), Some(9_500));
    // A plain store's records are batches.
    let plain = open(&SimFs::new(), Durability::Always, 4096);
    plain.put(b"k", b"v").unwrap();
    assert!(matches!(plain.applied_at(1), Err(StoreError::Invalid(_))));
}

/// The appender's range read: what it sequenced counts before it is
/// acknowledged, deleted keys are passed over (however many the index
/// still holds), and the range's end and the limit are kept.
#[test]
fn a_range_of_the_newest_state_counts_what_is_sequenced_and_skips_deletes() {
    let fs = SimFs::new();
    let store = open(&fs, Durability::Always, SEGMENT);
    let names: Vec<Vec<u8>> = (0..600u32).map(|i| format!("q{i:04}").into_bytes()).collect();
    let puts: Vec<AppliedOp<'_>> = names.iter().map(|k| put(1, k, v(1, 0), k)).collect();
    apply(&store, b"e1", &puts);
    // The first 500 deleted (two pages of the index and more), then one
    // put past the range: sequenced, not acknowledged.
    let deletes: Vec<AppliedOp<'_>> = names[..500].iter().map(|k| delete(1, k, v(2, 0))).collect();
    apply(&store, b"e2", &deletes);
    let position = store
        .append_applied(None, v(3, 0), b"e3", &[put(1, b"r", v(3, 0), b"late")], &[0; 32], &[], None)
        .unwrap();
    let range = |end: &[u8], max| store.newest_range_in(1, b"q", end, max).unwrap();
    let found = range(b"s", 1000);
    assert_eq!(found.len(), 101);
    assert_eq!(found[0], (names[500].clone(), names[500].clone()), "the deleted keys are passed over");
    assert_eq!(found[100], (b"r".to_vec(), b"late".to_vec()), "sequenced counts");
    assert!(keys(&store, 1, u64::MAX).iter().all(|k| k.as_slice() != b"r"), "not yet visible to readers");
    assert_eq!(range(b"r", 1000).len(), 100, "the end is excluded");
    assert_eq!(range(b"s", 7).len(), 7);
    store.commit(position).unwrap();
}
