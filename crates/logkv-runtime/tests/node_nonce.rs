//! Nonces of a key the node signs with while a client elsewhere signs with
//! it too: reservations never repeat and never collide with the node's own
//! entries, and an entry of that key from elsewhere moves the node's
//! counter past it, so the node's next entry is not `Replayed`.

mod support;

use std::path::Path;
use std::sync::Arc;

use logkv_fs::SimFs;
use logkv_runtime::apply::{TxResult, Watched};
use logkv_runtime::entry::EntryOutcome;
use logkv_runtime::node::{Node, NodeOptions};
use logkv_store::{Durability, LogConfig, RecoveryMode, StoreOptions};
use support::{puts, signed, signer, stream, zwrite};

fn open(fs: &SimFs) -> Node {
    let log = LogConfig {
        segment_size_bytes: 1 << 20,
        durability: Durability::None,
        recovery: RecoveryMode::Strict,
    };
    let store = StoreOptions { fs: Arc::new(fs.clone()), log, ..StoreOptions::default() };
    Node::open(Path::new("/node"), NodeOptions { store, watched: Watched::All, ..NodeOptions::default() })
        .expect("open node")
}

fn committed(outcome: &EntryOutcome) -> bool {
    *outcome == EntryOutcome::Applied(vec![Some(TxResult::Commit)])
}

#[test]
fn reserved_nonces_start_above_applied_ones_and_never_repeat() {
    let fs = SimFs::new();
    let node = open(&fs);
    let (key, s) = (signer(1), stream(1));
    // Nonces the node never handed out, applied before it caches a counter.
    let a = node.submit(&signed(&key, 41, vec![puts(vec![zwrite(s, b"a", b"1")])])).unwrap();
    assert!(committed(&a.outcome));
    let first = node.reserve_nonce(&key.address());
    assert_eq!(first, 42, "above the highest nonce applied");
    let second = node.reserve_nonce(&key.address());
    assert_eq!(second, 43, "a reservation is never handed out twice");
    // The node's own entry takes the next one, not a reserved one.
    let local = node.append_entry(&key, vec![puts(vec![zwrite(s, b"b", b"2")])]).unwrap();
    assert!(committed(&local.outcome));
    // Both reservations are still usable by the client that holds them.
    for nonce in [first, second] {
        let a = node.submit(&signed(&key, nonce, vec![puts(vec![zwrite(s, b"c", b"3")])])).unwrap();
        assert!(committed(&a.outcome), "reserved nonce {nonce}: {:?}", a.outcome);
    }
    assert_eq!(node.reserve_nonce(&key.address()), 45);
    // Another account's counter is its own.
    assert_eq!(node.reserve_nonce(&signer(2).address()), 1);
}

#[test]
fn an_entry_of_the_node_key_from_elsewhere_moves_the_local_counter_past_it() {
    let fs = SimFs::new();
    let node = open(&fs);
    let (key, s) = (signer(3), stream(2));
    // The node writes with its key, so it caches the key's next nonce (2).
    let a = node.append_entry(&key, vec![puts(vec![zwrite(s, b"x", b"1")])]).unwrap();
    assert!(committed(&a.outcome));
    // A client holding the same key signs with nonces of its own choosing,
    // ahead of the node's counter, on this stream and another.
    for (nonce, st) in [(2, s), (3, stream(9)), (10, s)] {
        let e = node.submit(&signed(&key, nonce, vec![puts(vec![zwrite(st, b"y", b"2")])])).unwrap();
        assert!(committed(&e.outcome), "client nonce {nonce}: {:?}", e.outcome);
    }
    // The node's next local entries are not replays of the client's.
    for i in 0..3u8 {
        let a = node.append_entry(&key, vec![puts(vec![zwrite(s, &[b'z', i], b"3")])]).unwrap();
        assert!(committed(&a.outcome), "local write {i} after the client's entries: {:?}", a.outcome);
    }
    assert_eq!(node.reserve_nonce(&key.address()), 14, "10 from elsewhere, then 11..=13 locally");
}
