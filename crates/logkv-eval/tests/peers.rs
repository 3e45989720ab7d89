//! Every peer engine this build has: writes, reads, ordered scans, a clean
//! close and a reopen that finds every write.

use logkv_eval::engine::{EngineKind, Promise};

/// The peer kinds compiled into this build.
fn peers() -> Vec<EngineKind> {
    EngineKind::ALL
        .into_iter()
        .filter(|k| !k.is_logkv() && *k != EngineKind::Naive && k.available())
        .collect()
}

fn key(i: u32) -> [u8; 4] {
    i.to_be_bytes()
}

fn value(i: u32, round: u8) -> Vec<u8> {
    let mut v = vec![round; 100];
    v[..4].copy_from_slice(&i.to_le_bytes());
    v
}

#[test]
fn peers_write_read_scan_close_and_reopen() {
    for kind in peers() {
        let dir = tempfile::tempdir().unwrap();
        let engine = kind.open(dir.path()).unwrap_or_else(|e| panic!("{kind}: open: {e}"));
        let mut last = 0;
        for i in 0..500u32 {
            let ticket = engine.put(&key(i), &value(i, 1)).unwrap();
            assert!(ticket > last, "{kind}: tickets grow");
            last = ticket;
        }
        // Overwrites replace values without adding keys.
        for i in (0..500u32).step_by(7) {
            last = engine.put(&key(i), &value(i, 2)).unwrap();
        }
        if kind.promise() == Promise::Synced {
            assert_eq!(
                engine.persisted_through(),
                Some(last),
                "{kind}: synced writes are persisted when acked"
            );
        }
        assert_eq!(engine.get(&key(7)).unwrap(), Some(value(7, 2)), "{kind}");
        assert_eq!(engine.get(&key(8)).unwrap(), Some(value(8, 1)), "{kind}");
        assert_eq!(engine.get(&key(500)).unwrap(), None, "{kind}");
        assert_eq!(engine.scan(&key(0), 10).unwrap(), Some(10), "{kind}");
        assert_eq!(engine.scan(&key(495), 10).unwrap(), Some(5), "{kind}: scans stop at the last key");
        assert_eq!(engine.scan(&key(1000), 10).unwrap(), Some(0), "{kind}");
        engine.close().unwrap_or_else(|e| panic!("{kind}: close: {e}"));

        let engine = kind.open(dir.path()).unwrap_or_else(|e| panic!("{kind}: reopen: {e}"));
        for i in 0..500u32 {
            let round = if i % 7 == 0 { 2 } else { 1 };
            assert_eq!(engine.get(&key(i)).unwrap(), Some(value(i, round)), "{kind}: key {i} after reopen");
        }
        assert_eq!(engine.scan(&key(250), 1000).unwrap(), Some(250), "{kind}");
        engine.close().unwrap();
    }
}

#[test]
fn settings_name_every_built_peer() {
    for kind in peers() {
        assert!(!kind.settings().starts_with("(not built"), "{kind}");
    }
}
