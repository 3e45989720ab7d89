//! Every limit is checked before anything is written: exceeding one is a
//! typed error naming the limit and the size given, and leaves the store's
//! version, index and log exactly as they were.

mod common;

use std::path::Path;

use common::{options, DIR};
use logkv_fs::{FileSystem, SimFs};
use logkv_log::LogError;
use logkv_store::{
    Durability, Limits, Store, StoreError, Value, WriteBatch, FORMAT_MAX_BATCH_OPS, FORMAT_MAX_KEY_BYTES,
    FORMAT_MAX_VALUE_BYTES,
};

const SEGMENT_SIZE_BYTES: u64 = 64 * 1024;

fn open_with(fs: &SimFs, limits: Limits) -> Store {
    let mut o = options(fs, Durability::Always, SEGMENT_SIZE_BYTES);
    o.limits = limits;
    Store::open(Path::new(DIR), o).expect("open")
}

/// What a refused write must leave unchanged.
#[derive(Debug, PartialEq, Eq)]
struct Footprint {
    version: u64,
    live_keys: u64,
    index_entries: usize,
    fs_writes: u64,
    log_bytes: u64,
    segments: Vec<(std::path::PathBuf, u64)>,
}

fn footprint(fs: &SimFs, store: &Store) -> Footprint {
    Footprint {
        version: store.version(),
        live_keys: store.len(),
        index_entries: store.index_entries(),
        fs_writes: fs.write_count(),
        log_bytes: store.log().stats().snapshot().bytes_written,
        segments: store.log().segments(),
    }
}

/// Runs `refused`, expects `LimitExceeded { what, limit, got }`, and checks
/// that nothing changed.
fn assert_refused(
    fs: &SimFs,
    store: &Store,
    what: &str,
    limit: usize,
    got: usize,
    refused: impl FnOnce() -> Result<(), StoreError>,
) {
    let before = footprint(fs, store);
    let err = refused().expect_err("the write must be refused");
    match &err {
        StoreError::LimitExceeded { what: w, limit: l, got: g } => {
            assert_eq!((*w, *l, *g), (what, limit as u64, got as u64), "{err}");
        }
        other => panic!("expected LimitExceeded for {what}, got {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains(what) && message.contains(&got.to_string()), "{message}");
    assert_eq!(footprint(fs, store), before, "a refused write changed the store");
}

fn put<'s>(store: &'s Store, key: &[u8], value: &[u8]) -> impl FnOnce() -> Result<(), StoreError> + use<'s> {
    let (key, value) = (key.to_vec(), value.to_vec());
    move || store.put(&key, &value).map(drop)
}

#[test]
fn empty_key_is_refused_by_put_delete_and_batch_and_writes_nothing() {
    let fs = SimFs::new();
    let store = open_with(&fs, Limits::default());
    store.put(b"k", b"v").unwrap();
    let before = footprint(&fs, &store);
    assert!(matches!(store.put(b"", b"v"), Err(StoreError::EmptyKey)));
    assert!(matches!(store.delete(b""), Err(StoreError::EmptyKey)));
    let mut batch = WriteBatch::new();
    batch.put(b"fine".to_vec(), b"v".to_vec()).put(Vec::new(), b"v".to_vec());
    assert!(matches!(store.write(&batch), Err(StoreError::EmptyKey)));
    assert_eq!(footprint(&fs, &store), before);
    assert_eq!(store.get(b"fine").unwrap(), None, "no op of a refused batch is applied");
    assert!(StoreError::EmptyKey.to_string().contains("empty"));
}

#[test]
fn key_over_max_key_bytes_is_refused_naming_the_limit_and_its_length() {
    let fs = SimFs::new();
    let store = open_with(&fs, Limits::default());
    assert_eq!(store.limits().max_key_bytes, 1024, "documented default");
    let longest = vec![b'k'; 1024];
    store.put(&longest, b"fits").unwrap();
    let long = vec![b'k'; 1025];
    assert_refused(&fs, &store, "max_key_bytes", 1024, 1025, put(&store, &long, b"v"));
    assert_refused(&fs, &store, "max_key_bytes", 1024, 1025, || store.delete(&long).map(drop));
    let mut batch = WriteBatch::new();
    batch.put(b"ok".to_vec(), b"v".to_vec()).delete(long.clone());
    assert_refused(&fs, &store, "max_key_bytes", 1024, 1025, || store.write(&batch).map(drop));
    // Far over the format maximum too: still the configured limit, by name.
    let huge = vec![b'k'; FORMAT_MAX_KEY_BYTES + 10];
    assert_refused(&fs, &store, "max_key_bytes", 1024, huge.len(), put(&store, &huge, b"v"));
    assert_eq!(store.get(&longest).unwrap().unwrap().data, b"fits");
}

#[test]
fn key_over_the_format_maximum_is_refused_when_configured_at_the_maximum() {
    let fs = SimFs::new();
    let limits = Limits { max_key_bytes: FORMAT_MAX_KEY_BYTES, ..Limits::default() };
    let store = open_with(&fs, limits.clone());
    let over = vec![b'o'; FORMAT_MAX_KEY_BYTES + 1];
    assert_refused(&fs, &store, "max_key_bytes", FORMAT_MAX_KEY_BYTES, over.len(), put(&store, &over, b"v"));
}

/// Keys up to the format maximum are accepted when configured, and read,
/// scanned and recovered like any other, among many small keys.
#[test]
fn keys_as_long_as_the_format_allows_round_trip_among_small_keys() {
    let fs = SimFs::new();
    let limits = Limits { max_key_bytes: FORMAT_MAX_KEY_BYTES, ..Limits::default() };
    let store = open_with(&fs, limits.clone());
    let mut keys: Vec<Vec<u8>> = Vec::new();
    for (i, len) in
        [FORMAT_MAX_KEY_BYTES, 20_000, 9_000, 9_000, FORMAT_MAX_KEY_BYTES - 1, 17_000].iter().enumerate()
    {
        // Long keys interleaved (in key order) with short ones.
        let mut long = vec![b'a' + (i as u8 * 3) % 26; *len];
        long[len - 1] = b'0' + i as u8;
        keys.push(long);
        keys.push(format!("{}{i}", (b'a' + (i as u8 * 3) % 26) as char).into_bytes());
        keys.push(format!("{}", (b'b' + (i as u8 * 5) % 25) as char).repeat(i + 1).into_bytes());
    }
    for (i, k) in keys.iter().enumerate() {
        store.put(k, format!("value {i}").as_bytes()).unwrap();
    }
    let check = |store: &Store| {
        for (i, k) in keys.iter().enumerate() {
            let got = store.get(k).unwrap().map(|v| v.data);
            assert_eq!(got, Some(format!("value {i}").into_bytes()), "key {i} of {} bytes", k.len());
        }
        let mut sorted = keys.clone();
        sorted.sort();
        sorted.dedup();
        let scanned: Vec<Vec<u8>> = store.scan(Default::default()).map(|r| r.unwrap().0).collect::<Vec<_>>();
        assert_eq!(scanned, sorted);
    };
    check(&store);
    drop(store);
    check(&open_with(&fs, limits));
}

#[test]
fn value_over_max_value_bytes_is_refused_and_the_largest_allowed_value_round_trips() {
    let fs = SimFs::new();
    let store = open_with(&fs, Limits::default());
    assert_eq!(store.limits().max_value_bytes, 1 << 20, "documented default: 1 MiB");
    let over = vec![7u8; (1 << 20) + 1];
    assert_refused(&fs, &store, "max_value_bytes", 1 << 20, over.len(), put(&store, b"k", &over));
    let mut batch = WriteBatch::new();
    batch.put(b"a".to_vec(), b"small".to_vec()).put(b"b".to_vec(), over.clone());
    assert_refused(&fs, &store, "max_value_bytes", 1 << 20, over.len(), || store.write(&batch).map(drop));
    // Exactly the limit is fine, although it is larger than a segment.
    let max = vec![9u8; 1 << 20];
    let v = store.put(b"k", &max).unwrap();
    assert_eq!(store.get(b"k").unwrap(), Some(Value { data: max.clone(), version: v }));
    drop(store);
    assert_eq!(open_with(&fs, Limits::default()).get(b"k").unwrap().unwrap().data, max);
}

#[test]
fn batch_over_max_batch_ops_is_refused_whole() {
    let fs = SimFs::new();
    let limits = Limits { max_batch_ops: 8, ..Limits::default() };
    let store = open_with(&fs, limits);
    let mut batch = WriteBatch::new();
    for i in 0..8u8 {
        batch.put(vec![b'k', i], vec![i]);
    }
    store.write(&batch).unwrap();
    batch.delete(b"k\x00".to_vec());
    assert_refused(&fs, &store, "max_batch_ops", 8, 9, || store.write(&batch).map(drop));
    assert_eq!(store.get(b"k\x00").unwrap().unwrap().data, vec![0]);
}

#[test]
fn batch_over_max_batch_bytes_is_refused_whole() {
    let fs = SimFs::new();
    let limits = Limits { max_batch_bytes: 1000, ..Limits::default() };
    let store = open_with(&fs, limits);
    // Keys and values count; exactly the limit is accepted.
    let mut batch = WriteBatch::new();
    batch.put(b"a".to_vec(), vec![1; 499]).put(b"b".to_vec(), vec![2; 499]);
    store.write(&batch).unwrap();
    let mut batch = WriteBatch::new();
    batch.put(b"a".to_vec(), vec![3; 499]).put(b"bb".to_vec(), vec![4; 499]);
    assert_refused(&fs, &store, "max_batch_bytes", 1000, 1001, || store.write(&batch).map(drop));
    // A single put is a batch of one.
    assert_refused(&fs, &store, "max_batch_bytes", 1000, 1002, put(&store, b"cc", &[5; 1000]));
    assert_eq!(store.get(b"a").unwrap().unwrap().data, vec![1; 499]);
}

#[test]
fn limits_above_the_format_maxima_are_refused_at_open_before_anything_is_written() {
    let cases = [
        (
            "max_key_bytes",
            FORMAT_MAX_KEY_BYTES,
            Limits { max_key_bytes: FORMAT_MAX_KEY_BYTES + 1, ..Limits::default() },
        ),
        (
            "max_value_bytes",
            FORMAT_MAX_VALUE_BYTES,
            Limits { max_value_bytes: FORMAT_MAX_VALUE_BYTES + 1, ..Limits::default() },
        ),
        (
            "max_batch_ops",
            FORMAT_MAX_BATCH_OPS,
            Limits { max_batch_ops: FORMAT_MAX_BATCH_OPS + 1, ..Limits::default() },
        ),
    ];
    for (what, limit, limits) in cases {
        let fs = SimFs::new();
        let mut o = options(&fs, Durability::Always, SEGMENT_SIZE_BYTES);
        o.limits = limits;
        match Store::open(Path::new(DIR), o) {
            Err(StoreError::LimitExceeded { what: w, limit: l, got }) => {
                assert_eq!((w, l, got), (what, limit as u64, limit as u64 + 1));
            }
            other => panic!("{what}: expected LimitExceeded, got {other:?}"),
        }
        assert!(!fs.exists(Path::new(DIR)), "{what}: open created the data directory");
        assert_eq!(fs.write_count(), 0);
    }
    // At the maxima is fine.
    let fs = SimFs::new();
    let at_max = Limits {
        max_key_bytes: FORMAT_MAX_KEY_BYTES,
        max_value_bytes: FORMAT_MAX_VALUE_BYTES,
        max_batch_ops: FORMAT_MAX_BATCH_OPS,
        ..Limits::default()
    };
    open_with(&fs, at_max);
}

#[test]
fn segment_size_over_the_format_maximum_is_refused_at_open() {
    let fs = SimFs::new();
    let too_big = logkv_log::format::MAX_SEGMENT_BYTES + 1;
    match Store::open(Path::new(DIR), options(&fs, Durability::Always, too_big)) {
        Err(StoreError::Log(LogError::LimitExceeded { what: "segment_size_bytes", got, .. })) => {
            assert_eq!(got, too_big);
        }
        other => panic!("expected LimitExceeded, got {other:?}"),
    }
    assert_eq!(fs.write_count(), 0);
}

#[test]
fn max_index_bytes_refuses_new_keys_while_overwrites_and_deletes_still_work() {
    let fs = SimFs::new();
    let max = 64 * 1024;
    let limits = Limits { max_index_bytes: max, ..Limits::default() };
    let store = open_with(&fs, limits.clone());
    let key = |i: u32| format!("user:{i:06}").into_bytes();
    let mut n = 0;
    let refused_at = loop {
        match store.put(&key(n), b"v") {
            Ok(_) => n += 1,
            Err(StoreError::LimitExceeded { what: "max_index_bytes", limit, got }) => {
                assert_eq!(limit, max as u64);
                assert!(got > limit, "got {got} must be over the limit");
                break n;
            }
            Err(e) => panic!("unexpected error after {n} keys: {e:?}"),
        }
        assert!(n < 100_000, "the index limit never took effect");
    };
    assert!(refused_at > 100, "only {refused_at} keys fit in {max} bytes");
    assert!(store.index_bytes() <= max, "the index grew past its ceiling: {}", store.index_bytes());
    let new_key = key(refused_at);
    let before = footprint(&fs, &store);
    let err = store.put(&new_key, b"v").unwrap_err();
    assert!(err.to_string().contains("max_index_bytes"), "{err}");
    assert_eq!(footprint(&fs, &store), before);

    // Keys already indexed can still be overwritten, deleted and re-put.
    store.put(&key(0), b"overwritten").unwrap();
    store.delete(&key(1)).unwrap().expect("key 1 was live");
    store.put(&key(1), b"back").unwrap();
    let mut batch = WriteBatch::new();
    batch.put(key(2), b"in a batch".to_vec()).delete(key(3));
    store.write(&batch).unwrap();
    // A batch with one new key among overwrites is refused whole.
    batch.put(new_key.clone(), b"v".to_vec());
    let before = footprint(&fs, &store);
    assert!(matches!(store.write(&batch), Err(StoreError::LimitExceeded { what: "max_index_bytes", .. })));
    assert_eq!(footprint(&fs, &store), before);
    // Deleting a key that was never written needs no index room.
    assert_eq!(store.delete(&new_key).unwrap(), None);

    drop(store);
    let store = open_with(&fs, limits);
    assert_eq!(store.get(&key(0)).unwrap().unwrap().data, b"overwritten");
    assert_eq!(store.get(&key(1)).unwrap().unwrap().data, b"back");
    assert_eq!(store.get(&key(3)).unwrap(), None);
    assert_eq!(store.len(), refused_at as u64 - 1);
    assert!(matches!(
        store.put(&new_key, b"v"),
        Err(StoreError::LimitExceeded { what: "max_index_bytes", .. })
    ));
    store.put(&key(5), b"still writable").unwrap();
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 24, failure_persistence: None, ..Default::default()
    })]

    /// Long keys (up to the format maximum) mixed with short ones in any
    /// order: every one is found, and scans list them all in order.
    #[test]
    fn long_and_short_keys_in_any_order_are_all_found_in_order(
        keys in proptest::collection::vec(
            (proptest::prop_oneof![1usize..24, 4_000usize..20_000, 60_000usize..=FORMAT_MAX_KEY_BYTES], 0u8..4, 0u8..3),
            1..24,
        )
    ) {
        let fs = SimFs::new();
        let limits = Limits { max_key_bytes: FORMAT_MAX_KEY_BYTES, ..Limits::default() };
        let store = open_with(&fs, limits);
        let mut model = std::collections::BTreeMap::new();
        for (i, (len, first, last)) in keys.into_iter().enumerate() {
            let mut k = vec![b'm'; len];
            k[0] = b'a' + first;
            k[len - 1] = b'x' + last;
            store.put(&k, &i.to_le_bytes()).unwrap();
            model.insert(k, i);
        }
        for (k, i) in &model {
            proptest::prop_assert_eq!(store.get(k).unwrap().map(|v| v.data), Some(i.to_le_bytes().to_vec()));
        }
        let scanned: Vec<Vec<u8>> = store.scan(Default::default()).map(|r| r.unwrap().0).collect();
        proptest::prop_assert_eq!(scanned, model.keys().cloned().collect::<Vec<_>>());
        let reversed: Vec<Vec<u8>> =
            store.scan(logkv_store::ScanOptions::default().reverse()).map(|r| r.unwrap().0).collect();
        proptest::prop_assert_eq!(reversed, model.keys().rev().cloned().collect::<Vec<_>>());
    }
}
