//! What a node's index holds: keys that exist, never one per write. Each
//! entry's results and the digest after it live in its applied record, so
//! writing one key over and over leaves the index as it was; a deleted key
//! leaves the index once compaction passes it by more than the
//! version-check horizon, which every node applies alike. Sizes are read
//! from the store, never timed.

mod support;

use std::path::Path;
use std::sync::Arc;

use logkv_fs::SimFs;
use logkv_runtime::apply::Watched;
use logkv_runtime::codec::native::{self, Op};
use logkv_runtime::codec::Read;
use logkv_runtime::envelope::TxPart;
use logkv_runtime::node::{Node, NodeError, NodeOptions};
use logkv_runtime::signing::Signer;
use logkv_runtime::types::{tx_version, version_position, StreamId};
use logkv_store::{Durability, LogConfig, RecoveryMode, Retention, StoreError, StoreOptions};
use support::{native_tx, nwrite, result_strings, signed, signer, stream};

const DIR: &str = "/node";
const S: StreamId = StreamId([7; 32]);

/// Options of a node on `fs` with the version-check horizon `horizon`,
/// keeping only each key's newest version when compacted.
fn options(fs: &SimFs, horizon: u64) -> NodeOptions {
    let log = LogConfig {
        segment_size_bytes: 1 << 20,
        durability: Durability::None,
        recovery: RecoveryMode::Strict,
    };
    let store = StoreOptions {
        fs: Arc::new(fs.clone()),
        log,
        retention: Retention { versions: Some(1), ..Retention::default() },
        ..StoreOptions::default()
    };
    NodeOptions { store, watched: Watched::All, version_check_horizon: horizon, ..NodeOptions::default() }
}

fn open(fs: &SimFs, horizon: u64) -> Node {
    Node::open(Path::new(DIR), options(fs, horizon)).expect("open node")
}

/// One native transaction writing `ops` on S, checking `reads` as of
/// `version` (`u64::MAX`: no check).
fn tx(version: u64, reads: &[&[u8]], ops: Vec<(Vec<u8>, Op)>) -> TxPart {
    native_tx(&native::Body {
        version,
        check_reads_only: false,
        reads: reads.iter().map(|k| Read { stream: S, key: k.to_vec() }).collect(),
        writes: ops.into_iter().map(|(k, op)| nwrite(S, &k, op)).collect(),
        controls: Vec::new(),
    })
}

fn put(key: &[u8], value: &[u8]) -> (Vec<u8>, Op) {
    (key.to_vec(), Op::Put(value.to_vec().into()))
}

/// Appends one entry of `me` holding `txs`; its results.
fn run(node: &Node, me: &Signer, txs: Vec<TxPart>) -> Vec<Option<String>> {
    result_strings(&node.append_entry(me, txs).expect("append").outcome)
}

#[test]
fn a_hundred_thousand_writes_of_one_key_leave_the_index_as_it_was() {
    const TXS: usize = 100;
    let fs = SimFs::new();
    let node = open(&fs, 1 << 20);
    let me = signer(1);
    let batch = |n: usize| {
        (0..TXS).map(|i| tx(u64::MAX, &[], vec![put(b"k", (n * TXS + i).to_string().as_bytes())])).collect()
    };
    run(&node, &me, batch(0));
    let store = node.store();
    let (entries, bytes) = (store.index_entries(), store.index_bytes());
    for n in 1..100_000 / TXS {
        run(&node, &me, batch(n));
    }
    assert_eq!((store.index_entries(), store.index_bytes()), (entries, bytes), "no key per write");
    let last = node.replay_progress().applied_version;
    assert_eq!(node.get(&S, b"k", None).unwrap(), Some((b"99999".to_vec(), last)));
    // Every transaction's result and every entry's digest still answer.
    for version in [tx_version(1, 0), tx_version(500, 42), last] {
        assert_eq!(node.result(version).unwrap().as_deref(), Some("Commit"), "version {version}");
    }
    assert_ne!(node.digest_at(Some(tx_version(1, 99))).unwrap(), node.digest_at(None).unwrap());
    assert_eq!(node.digest_at(Some(last)).unwrap(), node.digest_at(None).unwrap());
}

/// Appends small entries until the log reaches `until_position`.
fn filler(node: &Node, me: &Signer, until_position: u64) {
    while node.replay_progress().applied_position < until_position {
        run(node, me, vec![tx(u64::MAX, &[], vec![put(b"filler", b"x")])]);
    }
}

#[test]
fn compaction_forgets_deletes_older_than_the_horizon_and_keeps_what_checks_can_reach() {
    const HORIZON: u64 = 10;
    let fs = SimFs::new();
    let node = open(&fs, HORIZON);
    let me = signer(1);
    run(&node, &me, vec![tx(u64::MAX, &[], vec![put(b"filler", b"x")])]);
    let start = node.store().index_entries();
    let keys: Vec<Vec<u8>> = (0..100).map(|i| format!("gone{i}").into_bytes()).collect();
    run(&node, &me, vec![tx(u64::MAX, &[], keys.iter().map(|k| put(k, b"v")).collect())]);
    let deleted = node
        .append_entry(&me, vec![tx(u64::MAX, &[], keys.iter().map(|k| (k.clone(), Op::Delete)).collect())])
        .unwrap();
    assert_eq!(node.store().index_entries(), start + keys.len(), "a delete leaves a tombstone");
    filler(&node, &me, version_position(deleted.version) + HORIZON);
    // A late delete, within the horizon when the log is compacted.
    let late = node.append_entry(&me, vec![tx(u64::MAX, &[], vec![put(b"late", b"v")])]).unwrap();
    let late_delete =
        node.append_entry(&me, vec![tx(u64::MAX, &[], vec![(b"late".to_vec(), Op::Delete)])]).unwrap();
    let through = version_position(late_delete.version);
    let digest = node.digest_at(None).unwrap();
    node.store().compact(&mut |_, _| {}).expect("compact");
    assert_eq!(node.store().index_entries(), start + 1, "only the late delete's tombstone stays");
    // A check that may still be made sees the late delete.
    let stale = tx(late.version, &[b"late"], vec![put(b"x", b"1")]);
    assert_eq!(run(&node, &me, vec![stale]), [Some("VersionConfliction".to_string())]);
    // The last record compaction replaced kept its results and state, and
    // the records after it are whole; the others are compacted.
    let check = |node: &Node| {
        assert_eq!(node.result(late_delete.version).unwrap().as_deref(), Some("Commit"));
        assert_eq!(node.digest_at(Some(late_delete.version)).unwrap(), digest);
        let after = node.result(tx_version(through + 1, 0)).unwrap();
        assert_eq!(after.as_deref(), Some("VersionConfliction"));
        for gone in [node.result(deleted.version), node.digest_at(Some(deleted.version)).map(|_| None)] {
            match gone {
                Err(NodeError::Store(StoreError::Compacted { version, oldest })) => {
                    assert_eq!((version, oldest), (deleted.version, tx_version(through, 0)));
                }
                other => panic!("expected Compacted, got {other:?}"),
            }
        }
    };
    check(&node);
    node.close().unwrap();
    let node = open(&fs, HORIZON);
    assert_eq!(node.store().index_entries(), start + 1, "reopened");
    check(&node);
}

#[test]
fn two_nodes_judge_checks_against_the_horizon_alike() {
    const HORIZON: u64 = 3;
    let (fs_a, fs_b) = (SimFs::new(), SimFs::new());
    let a = open(&fs_a, HORIZON);
    // The follower watches S only, and is given only S's entries: its own
    // log positions fall behind the shared log's, which version them.
    let b = Node::open(
        Path::new(DIR),
        NodeOptions { watched: Watched::Only([S].into()), ..options(&fs_b, HORIZON) },
    )
    .expect("open node");
    let me = signer(2);
    let t = stream(9);
    let mut nonce = 0;
    let mut entry = |txs| {
        nonce += 1;
        signed(&me, nonce, txs)
    };
    let on_s = |a: &Node, b: &Node, bytes: Vec<u8>| {
        let got_a = a.submit(&bytes).unwrap();
        let got_b = b.apply_replicated(version_position(got_a.version), 0, &bytes, None).unwrap();
        assert_eq!(got_a.outcome, got_b.outcome, "the nodes disagree");
        result_strings(&got_a.outcome)
    };
    let commit = [Some("Commit".to_string())];
    assert_eq!(on_s(&a, &b, entry(vec![tx(u64::MAX, &[], vec![put(b"k", b"1")])])), commit);
    let v1 = tx_version(1, 0);
    for _ in 0..3 {
        let elsewhere = native_tx(&native::Body {
            version: u64::MAX,
            writes: vec![nwrite(t, b"x", Op::Put(b"1".to_vec().into()))],
            ..native::Body::default()
        });
        a.submit(&entry(vec![elsewhere])).unwrap();
    }
    // Position 5 checks position 1: 1 + 3 < 5, refused before the read
    // set is looked at; position 6 checks position 3: 3 + 3 = 6, checked.
    let too_old = [Some("VersionTooOld".to_string())];
    assert_eq!(on_s(&a, &b, entry(vec![tx(v1, &[b"k"], vec![put(b"k", b"2")])])), too_old);
    assert_eq!(on_s(&a, &b, entry(vec![tx(tx_version(3, 0), &[b"k"], vec![put(b"k", b"2")])])), commit);
    for version in [tx_version(5, 0), tx_version(6, 0)] {
        assert_eq!(a.result(version).unwrap(), b.result(version).unwrap(), "version {version}");
    }
    assert_eq!(b.store().next_position(), 4, "b logged three entries");
    assert_eq!(b.result(tx_version(3, 0)).unwrap(), None, "an entry b was not given");
    // Compacted, b keeps the row of its last record only; the search over
    // its positions passes the dropped ones and names that one the oldest.
    b.store().compact(&mut |_, _| {}).expect("compact");
    assert_eq!(b.result(tx_version(6, 0)).unwrap().as_deref(), Some("Commit"));
    for version in [v1, tx_version(5, 0)] {
        match b.result(version) {
            Err(NodeError::Store(StoreError::Compacted { version: asked, oldest })) => {
                assert_eq!((asked, oldest), (version, tx_version(6, 0)));
            }
            other => panic!("expected Compacted, got {other:?}"),
        }
    }
}
