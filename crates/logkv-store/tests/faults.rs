//! I/O faults: a failed write or fsync makes the store read-only for good
//! (never retrying the fsync) without losing or hiding anything acknowledged;
//! a full disk when a new segment is created fails only that write.

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use common::{assert_is_prefix, open, periodic, Oracle, DIR};
use logkv_fs::{Fault, FaultKind, FaultOp, FileSystem, SimFs};
use logkv_log::LogError;
use logkv_store::{Durability, ScanOptions, Store, StoreError, Value, WriteBatch};

const SEGMENT_SIZE_BYTES: u64 = 4 * 1024;
/// Linux's errno values, as the simulated file system reports them.
const EIO: i32 = 5;
const ENOSPC: i32 = 28;

fn key(i: u32) -> Vec<u8> {
    format!("key{i:03}").into_bytes()
}

/// Writes `n` keys, recording them; values are big enough that segments fill.
fn write_some(store: &Store, oracle: &mut Oracle, n: u32, tag: &str) {
    for i in 0..n {
        let (k, v) = (key(i % 13), format!("{tag}-{i}-{}", "v".repeat(150)).into_bytes());
        oracle.record(store.put(&k, &v).expect("put before the fault"), vec![(k, Some(v))]);
    }
}

fn read_only_reason(e: &StoreError) -> Option<&str> {
    match e {
        StoreError::Log(LogError::ReadOnly(why)) => Some(why),
        _ => None,
    }
}

fn io_error(e: &StoreError) -> Option<(PathBuf, Option<i32>)> {
    match e {
        StoreError::Log(LogError::Io { file, source }) => Some((file.clone(), source.raw_os_error())),
        _ => None,
    }
}

/// Every kind of write now fails with `ReadOnly`, and reads of what was
/// acknowledged still work.
fn assert_read_only(store: &Store, oracle: &Oracle, context: &str) {
    let acked = oracle.last_version();
    assert_eq!(store.version(), acked, "{context}: the failed write must not become visible");
    let mut batch = WriteBatch::new();
    batch.put(b"b".to_vec(), b"1".to_vec()).delete(key(0));
    let attempts: Vec<(&str, StoreError)> = vec![
        ("put", store.put(b"new", b"value").unwrap_err()),
        ("overwrite", store.put(&key(1), b"value").unwrap_err()),
        ("delete", store.delete(&key(2)).unwrap_err()),
        ("delete of an absent key", store.delete(b"absent").unwrap_err()),
        ("batch", store.write(&batch).unwrap_err()),
        ("sync", store.sync().unwrap_err()),
    ];
    for (what, err) in attempts {
        assert!(read_only_reason(&err).is_some(), "{context}: {what} after the failure gave {err:?}");
    }
    assert!(store.log().failure().is_some());
    assert_eq!(store.version(), acked);
    assert_is_prefix(store, oracle, context);
    for (k, (data, version)) in oracle.state_at(acked) {
        assert_eq!(store.get_at(&k, version).unwrap(), Some(Value { data, version }));
        assert_eq!(store.history(&k).unwrap()[0].version, version);
    }
    assert_eq!(store.scan(ScanOptions::default()).count(), oracle.state_at(acked).len());
}

/// Reopens copies of `fs` after a crash and after power losses: every
/// acknowledged write is there, and at most the one failed write besides.
fn assert_acknowledged_survive(fs: &SimFs, oracle: &Oracle, failed: (Vec<u8>, Vec<u8>)) {
    let acked = oracle.last_version();
    let mut copies = vec![("kill -9".to_string(), fs.crash_process())];
    copies.push(("power loss keeping nothing".to_string(), fs.power_loss_keep_nothing()));
    copies.extend((0..24).map(|seed| (format!("power loss {seed}"), fs.power_loss(seed))));
    for (what, copy) in copies {
        let store = open(&copy, Durability::Always, SEGMENT_SIZE_BYTES);
        let v = store.version();
        let mut with_failed = oracle.clone();
        if v > acked {
            // The failed write reached the disk after all; that is allowed,
            // as long as it is whole and nothing else appears.
            with_failed.record(v, vec![(failed.0.clone(), Some(failed.1.clone()))]);
        }
        assert!(v >= acked, "{what}: recovered version {v} < acknowledged {acked}");
        assert_is_prefix(&store, &with_failed, &what);
        // A reopened store is writable again.
        store.put(b"after", b"reopen").unwrap_or_else(|e| panic!("{what}: write after reopen: {e}"));
    }
}

#[test]
fn failed_fsync_in_always_mode_fails_the_write_turns_read_only_and_is_never_retried() {
    let fs = SimFs::new();
    let store = open(&fs, Durability::Always, SEGMENT_SIZE_BYTES);
    let mut oracle = Oracle::default();
    write_some(&store, &mut oracle, 30, "before");
    assert!(store.log().segments().len() > 1);

    fs.inject(Fault::new(FaultOp::Sync, FaultKind::Eio));
    let err = store.put(&key(3), b"never acknowledged").unwrap_err();
    let why = read_only_reason(&err).unwrap_or_else(|| panic!("expected ReadOnly, got {err:?}"));
    assert!(why.contains("fsync"), "the error says what failed: {why}");
    assert!(err.to_string().contains("read-only"), "{err}");

    // The fault was one-shot: a retried fsync would now succeed and count.
    let syncs = fs.sync_count();
    let log_syncs = store.log().stats().snapshot().syncs;
    assert_read_only(&store, &oracle, "after a failed fsync");
    assert_eq!(store.get(&key(3)).unwrap(), oracle.get_at(&key(3), oracle.last_version()));
    assert_eq!(store.log().stats().snapshot().syncs, log_syncs, "the log counted another fsync");
    drop(store);
    assert_eq!(fs.sync_count(), syncs, "an fsync was attempted again after it failed");

    assert_acknowledged_survive(&fs, &oracle, (key(3), b"never acknowledged".to_vec()));
}

#[test]
fn failed_fsync_under_concurrent_writers_fails_every_unacknowledged_write_and_loses_no_acknowledged_one() {
    let fs = SimFs::new();
    // One segment holds every write, so the failing sync is a data sync.
    let store = Arc::new(open(&fs, Durability::Always, 1 << 20));
    fs.inject(Fault { after: 25, ..Fault::new(FaultOp::Sync, FaultKind::Eio) });
    let acked = Arc::new(Mutex::new(Vec::new()));
    let last_acked = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..4u32)
        .map(|t| {
            let (store, acked, last_acked) = (store.clone(), acked.clone(), last_acked.clone());
            std::thread::spawn(move || {
                for i in 0..200u32 {
                    let (k, v) = (key(t * 100 + i % 10), format!("t{t}-{i}").into_bytes());
                    match store.put(&k, &v) {
                        Ok(version) => {
                            last_acked.fetch_max(version, Ordering::SeqCst);
                            acked.lock().unwrap().push((version, vec![(k, Some(v))]));
                        }
                        Err(e) => {
                            assert!(read_only_reason(&e).is_some(), "thread {t}: {e:?}");
                            // Once failed, always failed.
                            assert!(read_only_reason(&store.put(&k, b"again").unwrap_err()).is_some());
                            return;
                        }
                    }
                }
                panic!("thread {t} never saw the fsync failure");
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut oracle = Oracle::default();
    oracle.extend(acked.lock().unwrap().drain(..));
    assert!(oracle.last_version() > 0);
    let syncs = fs.sync_count();
    assert_read_only(&store, &oracle, "after a failed group fsync");
    drop(store);
    assert_eq!(fs.sync_count(), syncs, "an fsync was attempted again after it failed");
    // Unacknowledged writes may surface after a reopen, but only as whole
    // writes after every acknowledged one: check the acknowledged part.
    for seed in 0..16 {
        let copy = if seed == 0 { fs.crash_process() } else { fs.power_loss(seed) };
        let reopened = open(&copy, Durability::Always, SEGMENT_SIZE_BYTES);
        assert!(reopened.version() >= oracle.last_version(), "seed {seed}");
        for (k, (data, version)) in oracle.state_at(oracle.last_version()) {
            let got = reopened.get_at(&k, oracle.last_version()).unwrap();
            assert_eq!(got, Some(Value { data, version }), "seed {seed}");
        }
    }
}

#[test]
fn failed_write_eio_or_enospc_in_always_mode_turns_read_only_and_loses_nothing_acknowledged() {
    for kind in [FaultKind::Eio, FaultKind::Enospc] {
        let fs = SimFs::new();
        let store = open(&fs, Durability::Always, SEGMENT_SIZE_BYTES);
        let mut oracle = Oracle::default();
        write_some(&store, &mut oracle, 20, "before");
        fs.inject(Fault { path_contains: Some(".log".into()), ..Fault::new(FaultOp::Write, kind) });
        let err = store.put(&key(5), b"failed").unwrap_err();
        let why =
            read_only_reason(&err).unwrap_or_else(|| panic!("{kind:?}: expected ReadOnly, got {err:?}"));
        assert!(why.contains("write"), "{why}");
        let (syncs, writes) = (fs.sync_count(), fs.write_count());
        assert_read_only(&store, &oracle, &format!("after {kind:?} on write"));
        drop(store);
        assert_eq!(fs.sync_count(), syncs, "{kind:?}: synced after the failure");
        assert_eq!(fs.write_count(), writes, "{kind:?}: wrote after the failure");
        assert_acknowledged_survive(&fs, &oracle, (key(5), b"failed".to_vec()));
    }
}

#[test]
fn failed_flush_in_periodic_mode_turns_read_only_and_keeps_everything_flushed_before() {
    let fs = SimFs::new();
    let store = open(&fs, periodic(usize::MAX / 4), SEGMENT_SIZE_BYTES);
    let mut oracle = Oracle::default();
    write_some(&store, &mut oracle, 20, "flushed");
    store.sync().unwrap();
    let flushed = oracle.clone();
    // Acknowledged into the buffer, then the flush that would write it fails.
    let v = store.put(b"buffered", b"acknowledged, never written").unwrap();
    oracle.record(v, vec![(b"buffered".to_vec(), Some(b"acknowledged, never written".to_vec()))]);
    fs.inject(Fault { sticky: true, ..Fault::new(FaultOp::Sync, FaultKind::Eio) });
    let err = store.sync().unwrap_err();
    assert!(read_only_reason(&err).is_some(), "{err:?}");
    fs.clear_faults();
    let syncs = fs.sync_count();
    assert_read_only(&store, &oracle, "periodic after a failed flush");
    drop(store);
    assert_eq!(fs.sync_count(), syncs, "an fsync was attempted again after it failed");
    for seed in 0..16 {
        let reopened = open(&fs.power_loss(seed), Durability::Always, SEGMENT_SIZE_BYTES);
        let v = assert_is_prefix(&reopened, &oracle, &format!("seed {seed}"));
        assert!(v >= flushed.last_version(), "seed {seed}: lost a write synced before the failure");
    }
}

/// Puts until one fails (the one that has to create a segment).
fn put_until_error(store: &Store, oracle: &mut Oracle) -> (Vec<u8>, StoreError) {
    for i in 0..100u32 {
        let (k, v) = (key(i % 7), vec![b'x'; 400]);
        match store.put(&k, &v) {
            Ok(version) => oracle.record(version, vec![(k, Some(v))]),
            Err(e) => return (k, e),
        }
    }
    panic!("no write needed a new segment");
}

#[test]
fn enospc_when_allocating_a_new_segment_fails_only_that_write_and_the_store_stays_writable() {
    for op in [FaultOp::Allocate, FaultOp::Create] {
        let fs = SimFs::new();
        let store = open(&fs, Durability::Always, SEGMENT_SIZE_BYTES);
        let mut oracle = Oracle::default();
        write_some(&store, &mut oracle, 10, "before");
        let segments = store.log().segments().len();
        fs.inject(Fault { sticky: true, ..Fault::new(op, FaultKind::Enospc) });

        let (k, err) = put_until_error(&store, &mut oracle);
        let (file, errno) =
            io_error(&err).unwrap_or_else(|| panic!("{op:?}: expected an I/O error, got {err:?}"));
        assert_eq!(errno, Some(ENOSPC), "{op:?}: {err}");
        let next = PathBuf::from(DIR).join(format!("{:08}.log", segments + 1));
        assert_eq!(file, next, "{op:?}: the error names the segment that could not be made");
        assert!(err.to_string().contains(&format!("{:08}.log", segments + 1)), "{err}");
        assert!(store.log().failure().is_none(), "{op:?}: a full disk must not make the store read-only");
        assert_eq!(store.log().segments().len(), segments, "{op:?}");
        assert!(!fs.power_loss_keep_nothing().exists(&next));

        // While the disk stays full, every write that needs the segment fails
        // the same way, and nothing becomes visible.
        let version = store.version();
        for _ in 0..3 {
            let err = store.put(&k, &[b'y'; 400]).unwrap_err();
            assert_eq!(io_error(&err).map(|x| x.1), Some(Some(ENOSPC)));
        }
        assert_eq!(store.version(), version);
        assert_is_prefix(&store, &oracle, &format!("{op:?} while full"));

        // Space is freed: the same write goes through, in a new segment.
        fs.clear_faults();
        let value = [b"after space was freed ".as_slice(), &[b'z'; 400]].concat();
        let v = store.put(&k, &value).unwrap();
        oracle.record(v, vec![(k.clone(), Some(value))]);
        assert_eq!(store.log().segments().len(), segments + 1);
        write_some(&store, &mut oracle, 20, "after");
        assert_acknowledged_survive(&fs, &oracle, (k.clone(), Vec::new()));
        drop(store);
    }
}

#[test]
fn failed_sync_while_creating_a_segment_fails_that_write_and_loses_nothing_acknowledged() {
    for op in [FaultOp::Sync, FaultOp::SyncDir] {
        let fs = SimFs::new();
        let store = open(&fs, Durability::Always, SEGMENT_SIZE_BYTES);
        let mut oracle = Oracle::default();
        write_some(&store, &mut oracle, 10, "before");
        let segments = store.log().segments().len();
        let next = format!("{:08}.log", segments + 1);
        // Only the sync of the segment being created (or of the directory) fails.
        let path_contains = Some(if op == FaultOp::Sync { next.clone() } else { DIR.to_string() });
        fs.inject(Fault { path_contains, ..Fault::new(op, FaultKind::Eio) });
        let (k, err) = put_until_error(&store, &mut oracle);
        assert_eq!(io_error(&err).map(|x| x.1), Some(Some(EIO)), "{op:?}: {err:?}");
        assert_eq!(store.log().segments().len(), segments);
        assert_is_prefix(&store, &oracle, &format!("{op:?}"));
        // The file that could not be made durable was not used; the next
        // attempt makes a new one and syncs it.
        let value = [b"retried ".as_slice(), &[b'r'; 400]].concat();
        let v = store.put(&k, &value).unwrap();
        oracle.record(v, vec![(k.clone(), Some(value))]);
        assert_eq!(store.log().segments().len(), segments + 1);
        assert_acknowledged_survive(&fs, &oracle, (k, Vec::new()));
        drop(store);
    }
}

#[test]
fn after_a_failed_fsync_a_restarted_store_rewrites_what_it_recovered_so_later_writes_survive_power_loss() {
    // One segment, so the failed write sits in the segment later writes go to.
    let fs = SimFs::new();
    let store = open(&fs, Durability::Always, 1 << 20);
    let mut oracle = Oracle::default();
    write_some(&store, &mut oracle, 10, "before");
    fs.inject(Fault::new(FaultOp::Sync, FaultKind::Eio));
    let failed = (key(4), b"sync failed".to_vec());
    store.put(&failed.0, &failed.1).unwrap_err();
    drop(store);
    assert!(fs.exists(&PathBuf::from(DIR).join(logkv_log::SYNC_FAILED_MARKER)));

    // kill -9 and restart without a reboot: the page cache still shows the
    // write whose sync failed, but the disk may not have it.
    let restarted = fs.crash_process();
    let store = open(&restarted, Durability::Always, 1 << 20);
    assert_eq!(store.recovery_report().rewritten_segments, 1);
    assert!(!restarted.exists(&PathBuf::from(DIR).join(logkv_log::SYNC_FAILED_MARKER)));
    if store.version() > oracle.last_version() {
        oracle.record(store.version(), vec![(failed.0.clone(), Some(failed.1.clone()))]);
    }
    let later = store.put(b"later", b"acknowledged after restart").unwrap();
    oracle.record(later, vec![(b"later".to_vec(), Some(b"acknowledged after restart".to_vec()))]);
    drop(store);

    for seed in 0..32 {
        let store = open(&restarted.power_loss(seed), Durability::Always, 1 << 20);
        assert_eq!(store.version(), later, "seed {seed}: a write acknowledged after the restart was lost");
        assert_is_prefix(&store, &oracle, &format!("power loss {seed}"));
    }
}
