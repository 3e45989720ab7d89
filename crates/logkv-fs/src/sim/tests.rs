use super::*;

fn p(s: &str) -> &Path {
    Path::new(s)
}

/// A file system with `/db` and a durable, empty `/db/f`.
fn with_durable_file() -> (SimFs, Arc<dyn File>) {
    let fs = SimFs::new();
    fs.create_dir_all(p("/db")).unwrap();
    let f = fs.create(p("/db/f")).unwrap();
    fs.sync_dir(p("/db")).unwrap();
    (fs, f)
}

fn read_all(fs: &SimFs, path: &str) -> Option<Vec<u8>> {
    let f = fs.open(p(path)).ok()?;
    let mut buf = vec![0; f.len().unwrap() as usize];
    f.read_exact_at(&mut buf, 0).unwrap();
    Some(buf)
}

fn os_error(e: &io::Error) -> Option<i32> {
    e.raw_os_error()
}

#[test]
fn synced_data_survives_every_power_loss() {
    let (fs, f) = with_durable_file();
    f.write_at(b"durable!", 0).unwrap();
    f.sync_data().unwrap();
    f.write_at(b"maybe", 8).unwrap();
    f.write_at(b"perhaps", 13).unwrap();
    f.allocate(64).unwrap();
    for seed in 0..200 {
        let after = fs.power_loss(seed);
        let data = read_all(&after, "/db/f").expect("synced entry survives");
        assert_eq!(&data[..8], b"durable!", "seed {seed}");
    }
    // The original is untouched.
    assert_eq!(read_all(&fs, "/db/f").unwrap().len(), 64);
    assert_eq!(fs.unsynced_ops(p("/db/f")), 3);
    assert_eq!(fs.durable_len(p("/db/f")), Some(8));
}

#[test]
fn unsynced_write_lost_on_power_loss_kept_on_process_crash() {
    let (fs, f) = with_durable_file();
    f.write_at(b"hello", 0).unwrap();
    assert_eq!(read_all(&fs.power_loss_keep_nothing(), "/db/f").unwrap(), b"");
    let crashed = fs.crash_process();
    assert_eq!(read_all(&crashed, "/db/f").unwrap(), b"hello");
    // The kernel kept it, but it is still not on disk.
    assert_eq!(read_all(&crashed.power_loss_keep_nothing(), "/db/f").unwrap(), b"");
    crashed.open(p("/db/f")).unwrap().sync_data().unwrap();
    assert_eq!(read_all(&crashed.power_loss_keep_nothing(), "/db/f").unwrap(), b"hello");
}

#[test]
fn power_loss_keeps_any_subset_and_tears_writes() {
    let (fs, f) = with_durable_file();
    f.write_at(b"AAAA", 0).unwrap();
    f.write_at(b"BBBB", 4).unwrap();
    let (mut subset, mut torn, mut all, mut none) = (false, false, false, false);
    for seed in 0..200 {
        let data = read_all(&fs.power_loss(seed), "/db/f").unwrap();
        match data.as_slice() {
            b"\0\0\0\0BBBB" => subset = true,
            b"AAAABBBB" => all = true,
            b"" => none = true,
            d if d.len() % 4 != 0 => torn = true,
            _ => {}
        }
    }
    assert!(subset, "a later write kept while an earlier one was lost");
    assert!(torn, "a write torn mid-way");
    assert!(all && none);
    // Deterministic in the seed.
    assert_eq!(read_all(&fs.power_loss(7), "/db/f"), read_all(&fs.power_loss(7), "/db/f"));
}

#[test]
fn created_file_needs_dir_sync() {
    let fs = SimFs::new();
    fs.create_dir_all(p("/db")).unwrap();
    let f = fs.create(p("/db/new")).unwrap();
    f.write_at(b"x", 0).unwrap();
    f.sync_data().unwrap();
    assert!(!fs.power_loss_keep_nothing().exists(p("/db/new")));
    let outcomes: BTreeSet<bool> = (0..50).map(|s| fs.power_loss(s).exists(p("/db/new"))).collect();
    assert_eq!(outcomes.len(), 2, "an unsynced create may or may not survive");
    fs.sync_dir(p("/db")).unwrap();
    let after = fs.power_loss_keep_nothing();
    assert_eq!(read_all(&after, "/db/new").unwrap(), b"x");
    assert_eq!(after.list_dir(p("/db")).unwrap(), vec!["new"]);
    assert_eq!(fs.sync_dir_count(), 1);
}

#[test]
fn rename_needs_dir_sync_and_is_atomic() {
    let fs = SimFs::new();
    fs.create_dir_all(p("/db")).unwrap();
    let old = fs.create(p("/db/CURRENT")).unwrap();
    old.write_at(b"old", 0).unwrap();
    old.sync_data().unwrap();
    let new = fs.create(p("/db/CURRENT.tmp")).unwrap();
    new.write_at(b"new", 0).unwrap();
    new.sync_data().unwrap();
    fs.sync_dir(p("/db")).unwrap();

    fs.rename(p("/db/CURRENT.tmp"), p("/db/CURRENT")).unwrap();
    assert_eq!(read_all(&fs, "/db/CURRENT").unwrap(), b"new");
    assert!(!fs.exists(p("/db/CURRENT.tmp")));

    let lost = fs.power_loss_keep_nothing();
    assert_eq!(read_all(&lost, "/db/CURRENT").unwrap(), b"old");
    assert!(lost.exists(p("/db/CURRENT.tmp")));
    for seed in 0..100 {
        let after = fs.power_loss(seed);
        let current = read_all(&after, "/db/CURRENT").unwrap();
        assert!(current == b"old" || current == b"new", "seed {seed}");
        assert_eq!(after.exists(p("/db/CURRENT.tmp")), current == b"old");
    }

    fs.sync_dir(p("/db")).unwrap();
    let kept = fs.power_loss_keep_nothing();
    assert_eq!(read_all(&kept, "/db/CURRENT").unwrap(), b"new");
    assert_eq!(kept.list_dir(p("/db")).unwrap(), vec!["CURRENT"]);
}

#[test]
fn unsynced_remove_comes_back_and_open_handle_survives_remove() {
    let (fs, f) = with_durable_file();
    f.write_at(b"data", 0).unwrap();
    f.sync_data().unwrap();
    fs.remove_file(p("/db/f")).unwrap();
    assert!(!fs.exists(p("/db/f")));
    assert!(fs.open(p("/db/f")).is_err());
    // POSIX: the handle keeps the inode alive.
    f.write_at(b"more", 4).unwrap();
    let mut buf = [0; 8];
    f.read_exact_at(&mut buf, 0).unwrap();
    assert_eq!(&buf, b"datamore");
    assert_eq!(read_all(&fs.power_loss_keep_nothing(), "/db/f").unwrap(), b"data");
    fs.sync_dir(p("/db")).unwrap();
    assert!(!fs.power_loss_keep_nothing().exists(p("/db/f")));
    drop(f);
    assert!(fs.inner.lock().inodes.is_empty(), "unreachable inode freed");
}

#[test]
fn sync_eio_fires_once_and_sticky_fires_forever() {
    let (fs, f) = with_durable_file();
    fs.inject(Fault { after: 1, ..Fault::new(FaultOp::Sync, FaultKind::Eio) });
    f.sync_data().unwrap();
    let err = f.sync_data().unwrap_err();
    assert_eq!(os_error(&err), Some(libc::EIO));
    f.sync_data().unwrap();
    assert_eq!(fs.sync_count(), 2);

    fs.inject(Fault { sticky: true, ..Fault::new(FaultOp::Sync, FaultKind::Eio) });
    for _ in 0..5 {
        assert_eq!(os_error(&f.sync_data().unwrap_err()), Some(libc::EIO));
    }
    fs.clear_faults();
    f.sync_data().unwrap();
    assert_eq!(fs.sync_count(), 3);
}

#[test]
fn failed_sync_is_not_repaired_by_a_retry() {
    let (fs, f) = with_durable_file();
    f.write_at(b"lost?", 0).unwrap();
    fs.inject(Fault::new(FaultOp::Sync, FaultKind::Eio));
    assert!(f.sync_data().is_err());
    f.sync_data().unwrap();
    f.write_at(b"!", 5).unwrap();
    f.sync_data().unwrap();
    // Reads still see it, but the disk may not have it: fsyncgate.
    assert_eq!(read_all(&fs, "/db/f").unwrap(), b"lost?!");
    assert_eq!(fs.unsynced_ops(p("/db/f")), 1);
    assert_eq!(fs.durable_len(p("/db/f")), Some(6));
    assert_eq!(read_all(&fs.power_loss_keep_nothing(), "/db/f").unwrap(), b"\0\0\0\0\0!");
}

#[test]
fn enospc_on_write_applies_nothing_and_respects_path_filter() {
    let fs = SimFs::new();
    fs.create_dir_all(p("/db")).unwrap();
    let a = fs.create(p("/db/a.log")).unwrap();
    let b = fs.create(p("/db/b.log")).unwrap();
    fs.inject(Fault { path_contains: Some("b.log".into()), ..Fault::new(FaultOp::Write, FaultKind::Enospc) });
    a.write_at(b"fine", 0).unwrap();
    let err = b.write_at(b"full", 0).unwrap_err();
    assert_eq!(os_error(&err), Some(libc::ENOSPC));
    assert_eq!(b.len().unwrap(), 0);
    b.write_at(b"ok", 0).unwrap();
    assert_eq!(fs.write_count(), 2);

    fs.inject(Fault::new(FaultOp::Allocate, FaultKind::Enospc));
    assert!(a.allocate(100).is_err());
    assert_eq!(a.len().unwrap(), 4);
    fs.inject(Fault::new(FaultOp::Create, FaultKind::Eio));
    assert!(fs.create(p("/db/c.log")).is_err());
    assert!(!fs.exists(p("/db/c.log")));
    fs.inject(Fault::new(FaultOp::SyncDir, FaultKind::Eio));
    assert!(fs.sync_dir(p("/db")).is_err());
    assert!(!fs.power_loss_keep_nothing().exists(p("/db/a.log")));
}

#[test]
fn lock_conflict_names_holder_and_drop_releases() {
    let fs = SimFs::new();
    fs.create_dir_all(p("/db")).unwrap();
    let guard = fs.lock(p("/db/LOCK"), "pid 1 logkv").unwrap();
    match fs.clone().lock(p("/db/LOCK"), "pid 2") {
        Err(LockError::Held { holder }) => assert_eq!(holder, "pid 1 logkv"),
        other => panic!("expected Held, got {other:?}"),
    }
    assert_eq!(read_all(&fs, "/db/LOCK").unwrap(), b"pid 1 logkv");
    // A crash releases it.
    drop(fs.crash_process().lock(p("/db/LOCK"), "pid 3").unwrap());
    drop(guard);
    let again = fs.lock(p("/db/LOCK"), "pid 2").unwrap();
    assert_eq!(read_all(&fs, "/db/LOCK").unwrap(), b"pid 2");
    assert!(format!("{again:?}").contains("LOCK"));
    assert!(matches!(
        fs.lock(p("/nowhere/LOCK"), "x"),
        Err(LockError::Io(e)) if e.kind() == io::ErrorKind::NotFound
    ));
}

#[test]
fn namespace_and_io_basics() {
    let fs = SimFs::new();
    assert_eq!(fs.create(p("/db/x")).unwrap_err().kind(), io::ErrorKind::NotFound);
    fs.create_dir_all(p("/db/sub")).unwrap();
    assert_eq!(fs.open(p("/db/missing")).unwrap_err().kind(), io::ErrorKind::NotFound);
    let f = fs.create(p("/db/b")).unwrap();
    fs.create(p("/db/a")).unwrap();
    assert_eq!(fs.create(p("/db/a")).unwrap_err().kind(), io::ErrorKind::AlreadyExists);
    assert_eq!(fs.list_dir(p("/db")).unwrap(), vec!["a", "b", "sub"]);
    assert_eq!(fs.list_dir(p("/")).unwrap(), vec!["db"]);
    assert!(fs.exists(p("/db/sub")) && fs.exists(p("/db/a")));

    f.write_at(b"xy", 3).unwrap();
    let mut buf = [9; 8];
    assert_eq!(f.read_at(&mut buf, 0).unwrap(), 5);
    assert_eq!(&buf[..5], b"\0\0\0xy");
    assert_eq!(f.read_at(&mut buf, 5).unwrap(), 0);
    assert_eq!(f.read_at(&mut buf, 50).unwrap(), 0);
    f.allocate(10).unwrap();
    f.allocate(4).unwrap();
    assert_eq!(f.len().unwrap(), 10);
    f.set_len(4).unwrap();
    assert_eq!(f.len().unwrap(), 4);
    f.set_len(6).unwrap();
    assert_eq!(read_all(&fs, "/db/b").unwrap(), b"\0\0\0x\0\0");
    assert!(format!("{fs:?} {f:?}").contains("SimFs"));
}

#[test]
fn concurrent_writers_share_one_file() {
    let (fs, f) = with_durable_file();
    let threads: Vec<_> = (0..4u8)
        .map(|t| {
            let f = f.clone();
            std::thread::spawn(move || {
                for i in 0..100u64 {
                    f.write_at(&[t; 4], (i * 4 + u64::from(t)) * 4).unwrap();
                    if i % 10 == 0 {
                        f.sync_data().unwrap();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    f.sync_data().unwrap();
    assert_eq!(fs.write_count(), 400);
    assert_eq!(fs.durable_len(p("/db/f")), Some(1600));
    assert_eq!(fs.unsynced_ops(p("/db/f")), 0);
}
