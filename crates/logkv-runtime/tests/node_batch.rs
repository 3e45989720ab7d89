//! Local writes batched into one signed entry per group commit, the
//! hashes of the node's own entries sparing a second verification (only
//! for the exact bytes), and parallel verification of entries from
//! another log.

mod support;

use std::path::Path;
use std::sync::{Arc, Barrier};

use logkv_fs::{FileSystem, SimFs, StdFs};
use logkv_runtime::apply::{TxResult, Watched};
use logkv_runtime::codec::native::{self, Body, Op};
use logkv_runtime::entry::EntryOutcome;
use logkv_runtime::envelope::{EntryView, Protocol};
use logkv_runtime::node::verify::{verify_entries, verify_one};
use logkv_runtime::node::{Node, NodeOptions};
use logkv_runtime::shared_log::LogEntry;
use logkv_runtime::types::{tx_version, version_position};
use logkv_store::{Durability, LogConfig, RecoveryMode, StoreOptions};
use support::{forged, nwrite, puts, signed, signed_as, signer, stream, zwrite};

fn open_in(fs: Arc<dyn FileSystem>, dir: &Path, durability: Durability) -> Node {
    let log = LogConfig { segment_size_bytes: 1 << 20, durability, recovery: RecoveryMode::Strict };
    let store = StoreOptions { fs, log, ..StoreOptions::default() };
    Node::open(dir, NodeOptions { store, watched: Watched::All, ..NodeOptions::default() })
        .expect("open node")
}

fn open(fs: &SimFs, durability: Durability) -> Node {
    open_in(Arc::new(fs.clone()), Path::new("/node"), durability)
}

#[test]
fn concurrent_local_writes_share_signed_entries_and_each_caller_sees_its_own_result() {
    // `always` on the real file system, where a sync takes long enough for
    // the other callers to queue up behind the batch under way; `none` on
    // the simulated one.
    let tmp = tempfile::tempdir().unwrap();
    let sim = SimFs::new();
    let runs: [(Arc<dyn FileSystem>, &Path, Durability); 2] = [
        (Arc::new(StdFs), tmp.path(), Durability::Always),
        (Arc::new(sim), Path::new("/node"), Durability::None),
    ];
    for (fs, dir, durability) in runs {
        let node = open_in(fs.clone(), dir, durability);
        let (me, s) = (signer(4), stream(7));
        const THREADS: usize = 16;
        const PER_THREAD: usize = 60;
        let start = Barrier::new(THREADS);
        let results: Vec<Vec<(Vec<u8>, u64, u64)>> = std::thread::scope(|sc| {
            let handles: Vec<_> = (0..THREADS)
                .map(|t| {
                    let (node, me, start) = (&node, &me, &start);
                    sc.spawn(move || {
                        start.wait();
                        (0..PER_THREAD)
                            .map(|i| {
                                let key = format!("k{t}-{i}").into_bytes();
                                let a =
                                    node.append_local(me, vec![puts(vec![zwrite(s, &key, &key)])]).unwrap();
                                assert_eq!(a.outcome, EntryOutcome::Applied(vec![Some(TxResult::Commit)]));
                                assert!(node.replay_progress().applied_version >= a.version, "acknowledged");
                                (key, a.version, a.position)
                            })
                            .collect()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let total = THREADS * PER_THREAD;
        let mut versions: Vec<u64> = results.iter().flatten().map(|(_, v, _)| *v).collect();
        versions.sort_unstable();
        versions.dedup();
        assert_eq!(versions.len(), total, "every transaction has its own version");
        for (key, version, position) in results.iter().flatten() {
            assert_eq!(version_position(*version), *position);
            assert_eq!(node.get(&s, key, None).unwrap(), Some((key.clone(), *version)), "{durability:?}");
            assert_eq!(node.result(*version).unwrap().as_deref(), Some("Commit"));
        }
        assert_eq!(node.local_txs(), total as u64);
        let entries = node.entries_signed();
        assert_eq!(entries, node.entries_applied(), "one signature per entry");
        // Under `always` every batch waits for a sync, during which the other
        // callers queue up; without syncs batches are smaller but still shared.
        let bound = if durability == Durability::Always { total / 3 } else { total };
        assert!((entries as usize) < bound, "{durability:?}: {entries} entries for {total} transactions");
        assert_eq!(node.signatures_verified(), 0, "the node signed them itself");
        node.close().unwrap();
        // Reopened: every write is there and nonces continue.
        let node = open_in(fs, dir, durability);
        for (key, version, _) in results.iter().flatten() {
            assert_eq!(node.get(&s, key, None).unwrap(), Some((key.clone(), *version)));
        }
        let a = node.append_local(&me, vec![puts(vec![zwrite(s, b"after", b"x")])]).unwrap();
        assert_eq!(a.outcome, EntryOutcome::Applied(vec![Some(TxResult::Commit)]), "a fresh nonce");
    }
}

#[test]
fn a_caller_with_several_transactions_gets_consecutive_versions_and_its_own_results() {
    let fs = SimFs::new();
    let node = open(&fs, Durability::Always);
    let (me, s) = (signer(4), stream(7));
    let txs = vec![puts(vec![zwrite(s, b"a", b"1")]), puts(vec![zwrite(s, b"b", b"2")])];
    let a = node.append_local(&me, txs).unwrap();
    assert_eq!(a.outcome, EntryOutcome::Applied(vec![Some(TxResult::Commit), Some(TxResult::Commit)]));
    assert_eq!(a.version, tx_version(a.position, 1));
    assert_eq!(node.get(&s, b"a", None).unwrap(), Some((b"1".to_vec(), tx_version(a.position, 0))));
    let empty = node.append_local(&me, Vec::new()).unwrap();
    assert_eq!(empty.outcome, EntryOutcome::Applied(Vec::new()));
}

#[test]
fn own_entries_coming_back_are_not_verified_again_but_a_tampered_copy_is() {
    let fs = SimFs::new();
    let node = open(&fs, Durability::Always);
    let (me, s) = (signer(4), stream(7));
    let txs = vec![puts(vec![zwrite(s, b"k", b"value")])];
    node.append_local(&me, txs.clone()).unwrap();
    // RFC 6979 signatures are deterministic: these are the bytes it wrote
    // (in protocol 2, as a node signs its own entries).
    let own = signed_as(Protocol::V2, &me, 1, txs);
    let a = node.apply_replicated(10, 0, &own, None).unwrap();
    assert_eq!(a.outcome, EntryOutcome::Applied(vec![Some(TxResult::Replayed)]), "its nonce was used");
    assert_eq!((node.signatures_verified(), node.verifications_skipped()), (0, 1));

    // One byte of the value changed, same sender: verified, and forged.
    let mut tampered = own.clone();
    let at = tampered.windows(5).position(|w| w == b"value").unwrap();
    tampered[at] = b'V';
    let a = node.apply_replicated(11, 0, &tampered, None).unwrap();
    assert_eq!(a.outcome, EntryOutcome::Applied(vec![Some(TxResult::BadSignature)]));
    assert_eq!((node.signatures_verified(), node.verifications_skipped()), (1, 1));
    let a = node.apply_replicated(12, 0, &tampered, None).unwrap();
    assert_eq!(
        a.outcome,
        EntryOutcome::Applied(vec![Some(TxResult::BadSignature)]),
        "forged is not remembered"
    );
    assert_eq!((node.signatures_verified(), node.verifications_skipped()), (2, 1));

    // An entry it verified itself is remembered too.
    let other = signed(&signer(5), 1, vec![puts(vec![zwrite(stream(8), b"k", b"v")])]);
    node.apply_replicated(13, 0, &other, None).unwrap();
    node.apply_replicated(20, 0, &other, None).unwrap();
    assert_eq!((node.signatures_verified(), node.verifications_skipped()), (3, 2));
    // The batch path skips it as well, and verifies the tampered copy.
    node.apply_replicated_batch(&[entry(21, &own), entry(22, &tampered)]).unwrap();
    assert_eq!((node.signatures_verified(), node.verifications_skipped()), (4, 3));
}

#[test]
fn the_node_signs_protocol_2_and_serves_compact_values_from_inside_its_entries() {
    let fs = SimFs::new();
    let node = open(&fs, Durability::Always);
    let (me, s) = (signer(4), stream(7));
    let set = |key: &[u8], value: &[u8]| {
        let body = Body {
            version: u64::MAX,
            writes: vec![nwrite(s, key, Op::Put(value.to_vec()))],
            ..Body::default()
        };
        native::compact_tx(&body, [s])
    };
    let (bytes, _) = node.sign_entry(&me, vec![set(b"x", b"signed only")]).unwrap();
    assert_eq!(EntryView::parse(&bytes).unwrap().protocol(), Protocol::V2);

    let a = node.append_local(&me, vec![set(b"a", b"first"), set(b"b", &[7; 300])]).unwrap();
    assert_eq!(a.outcome, EntryOutcome::Applied(vec![Some(TxResult::Commit), Some(TxResult::Commit)]));
    assert_eq!(node.get(&s, b"a", None).unwrap(), Some((b"first".to_vec(), tx_version(a.position, 0))));
    assert_eq!(node.get(&s, b"b", None).unwrap(), Some((vec![7; 300], tx_version(a.position, 1))));
    drop(node);
    let node = open(&fs, Durability::Always);
    assert_eq!(node.get(&s, b"b", None).unwrap(), Some((vec![7; 300], tx_version(a.position, 1))));
}

#[test]
fn parallel_verification_equals_sequential_on_a_mixed_batch() {
    let forger = signer(9);
    let mut entries: Vec<Vec<u8>> = Vec::new();
    // More than two pipeline chunks, so apply_replicated_batch verifies while it applies.
    for i in 0..700u64 {
        let who = signer(1 + (i % 5) as u8);
        let e =
            signed(&who, i + 1, vec![puts(vec![zwrite(stream(1 + (i % 3) as u8), b"k", &i.to_be_bytes())])]);
        entries.push(match i % 7 {
            0 => forged(&e, &forger),
            3 => e[..e.len() - 3].to_vec(),
            5 => {
                let mut t = e.clone();
                t[40] ^= 1;
                t
            }
            _ => e,
        });
    }
    let sequential: Vec<Option<bool>> = entries.iter().map(|e| verify_one(e)).collect();
    assert_eq!(verify_entries(&entries), sequential);
    assert!(
        sequential.contains(&Some(false)) && sequential.contains(&None) && sequential.contains(&Some(true))
    );

    // A node applying the batch records what one applying them one by one does.
    let (fs_a, fs_b) = (SimFs::new(), SimFs::new());
    let (a, b) = (open(&fs_a, Durability::None), open(&fs_b, Durability::None));
    let batch: Vec<LogEntry> = entries.iter().enumerate().map(|(i, e)| entry(i as u64 + 1, e)).collect();
    let together = a.apply_replicated_batch(&batch).unwrap();
    let one_by_one: Vec<_> =
        batch.iter().map(|e| b.apply_replicated(e.position, e.time_ms, &e.bytes, None).unwrap()).collect();
    assert_eq!(together, one_by_one);
    assert_eq!(a.signatures_verified(), b.signatures_verified());
    assert_eq!(a.digest_at(None).unwrap(), b.digest_at(None).unwrap());
}

/// An entry at `position` whose log time is its position.
fn entry(position: u64, bytes: &[u8]) -> LogEntry {
    LogEntry { position, time_ms: position, bytes: bytes.to_vec().into() }
}
