//! Stream flushes (`FLUSHDB`): one op removes every key of a stream in
//! O(1). Store-backed nodes and the in-memory state applying the same
//! entries agree on every answer and on the digest; reads of the newest
//! state see the stream empty while reads as of an older version still see
//! its data; a key the flush covers reports the flush's version to version
//! checks; the flush and the per-stream digest sums survive a reopen; and
//! the op exists only from protocol 6 on; compaction drops what a flush
//! removed, the system keys it voided included.

mod support;

use std::path::Path;
use std::sync::Arc;

use logkv_fs::SimFs;
use logkv_runtime::apply::{OpAnswer, TxResult, Watched};
use logkv_runtime::codec::native::{self, Body, Op};
use logkv_runtime::codec::{ControlOp, NewExpiry, PutCond, FLUSH_KEY};
use logkv_runtime::entry::{Applier, EntryOutcome};
use logkv_runtime::envelope::{Protocol, TxPart};
use logkv_runtime::mem_state::MemState;
use logkv_runtime::node::{Applied, Node, NodeOptions};
use logkv_runtime::signing::Signer;
use logkv_runtime::types::StreamId;
use logkv_store::{Durability, LogConfig, RecoveryMode, Retention, StoreOptions};
use support::{control, controls, nwrite, signed_as, signer, stream};

/// 2100-01-01T00:00:00Z in Unix milliseconds: only log time expires keys.
const T0: u64 = 4_102_444_800_000;

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

/// One transaction of `ops` on `stream`; `reads` at `version` make it
/// conditional on them (Redis `WATCH`).
fn tx_on(stream: StreamId, ops: Vec<(&[u8], Op)>, reads: &[&[u8]], version: u64) -> TxPart {
    let body = Body {
        version: if reads.is_empty() { u64::MAX } else { version },
        check_reads_only: true,
        reads: reads.iter().map(|k| support::read(stream, k)).collect(),
        writes: ops.into_iter().map(|(k, op)| nwrite(stream, k, op)).collect(),
        ..Body::default()
    };
    native::compact_tx(&body, [stream])
}

fn tx(ops: Vec<(&[u8], Op)>) -> TxPart {
    tx_on(stream(1), ops, &[], 0)
}

fn put(v: &[u8]) -> Op {
    Op::Put(v.to_vec().into())
}

fn flush() -> (&'static [u8], Op) {
    (FLUSH_KEY, Op::Flush)
}

/// Nodes (and an in-memory state) applying the same entries.
struct Replicas {
    fss: Vec<SimFs>,
    nodes: Vec<Node>,
    mem: MemState,
    applier: Applier,
    position: u64,
}

impl Replicas {
    fn new(n: usize) -> Self {
        let fss: Vec<SimFs> = (0..n).map(|_| SimFs::new()).collect();
        Replicas {
            nodes: fss.iter().map(open).collect(),
            fss,
            mem: MemState::default(),
            applier: Applier::new(Watched::All),
            position: 0,
        }
    }

    /// Applies one entry of `txs` signed by `who` on every replica; the
    /// first node's outcome, which every replica must share.
    fn apply_as(&mut self, who: &Signer, protocol: Protocol, txs: Vec<TxPart>) -> Applied {
        self.position += 1;
        let time = T0 + self.position;
        let bytes = signed_as(protocol, who, self.position, txs);
        let applied: Vec<Applied> = self
            .nodes
            .iter()
            .map(|n| n.apply_replicated(self.position, time, &bytes, None).unwrap())
            .collect();
        let mem = self.applier.apply_entry(&mut self.mem, self.position, time, &bytes, None);
        for a in &applied {
            assert_eq!((&a.outcome, &a.answers), (&applied[0].outcome, &applied[0].answers));
        }
        assert_eq!(mem, applied[0].outcome);
        self.assert_same_digest();
        applied.into_iter().next().unwrap()
    }

    fn v6(&mut self, txs: Vec<TxPart>) -> Applied {
        self.apply_as(&signer(1), Protocol::V6, txs)
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.get_in(stream(1), key, None)
    }

    fn get_in(&self, s: StreamId, key: &[u8], version: Option<u64>) -> Option<Vec<u8>> {
        let on_node = self.nodes[0].get(&s, key, version).unwrap().map(|(v, _)| v);
        let in_mem = self.mem.get_at(&s, key, version.unwrap_or(u64::MAX)).map(|(_, v)| v.to_vec());
        assert_eq!(on_node, in_mem, "node and in-memory state read {key:?} alike");
        on_node
    }

    fn keys(&self, s: StreamId, version: Option<u64>) -> Vec<Vec<u8>> {
        let options = logkv_store::ScanOptions::default().at(version.unwrap_or(u64::MAX));
        let on_node: Vec<Vec<u8>> = self.nodes[0].scan(&s, options).map(|kv| kv.unwrap().key).collect();
        let in_mem: Vec<Vec<u8>> = self
            .mem
            .iter_at(&s, version.unwrap_or(u64::MAX), None, false)
            .map(|(k, ..)| k.to_vec())
            .collect();
        assert_eq!(on_node, in_mem);
        on_node
    }

    fn assert_same_digest(&self) {
        let digests: Vec<_> = self.nodes.iter().map(|n| n.digest_at(None).unwrap()).collect();
        assert!(digests.iter().all(|d| *d == digests[0]), "{digests:?}");
        assert_eq!(digests[0], self.mem.digest(), "the store-backed and in-memory states agree");
    }
}

fn commits(n: usize) -> EntryOutcome {
    EntryOutcome::Applied(vec![Some(TxResult::Commit); n])
}

#[test]
fn a_flush_empties_its_stream_only_and_older_versions_still_read() {
    let mut r = Replicas::new(2);
    let expiring = Op::PutExpiring {
        value: b"3".to_vec().into(),
        cond: PutCond::Always,
        expiry: NewExpiry::At(T0 + 1_000),
    };
    let before = r.v6(vec![
        tx(vec![(b"a", put(b"1")), (b"b", put(b"2")), (b"c", expiring)]),
        tx_on(stream(2), vec![(b"a", put(b"other"))], &[], 0),
    ]);
    assert_eq!(r.keys(stream(1), None), [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);

    let flushed = r.v6(vec![tx(vec![flush()])]);
    assert_eq!(flushed.outcome, commits(1));
    assert_eq!(flushed.answers[0], vec![OpAnswer::Flushed]);
    assert_eq!((r.get(b"a"), r.get(b"b"), r.get(b"c")), (None, None, None));
    assert!(r.keys(stream(1), None).is_empty());
    assert_eq!(r.nodes[0].expires_at(&stream(1), b"c", None).unwrap(), None);
    assert_eq!(r.get_in(stream(2), b"a", None), Some(b"other".to_vec()), "another stream keeps its keys");

    // Reads as of a version before the flush judge by the flush in force then.
    assert_eq!(r.get_in(stream(1), b"a", Some(before.version)), Some(b"1".to_vec()));
    assert_eq!(r.keys(stream(1), Some(before.version)).len(), 3);
    assert_eq!(r.nodes[0].flush_version(&stream(1), Some(before.version)).unwrap(), 0);
    assert_eq!(r.nodes[0].flush_version(&stream(1), None).unwrap(), flushed.version);

    // Keys written after the flush live; a rewritten key starts afresh
    // (no expiry left from before, an increment from nothing).
    let a = r.v6(vec![tx(vec![(b"c", put(b"new")), (b"b", Op::Increment(5)), (b"a", Op::Get)])]);
    assert_eq!(
        a.answers[0],
        vec![OpAnswer::Wrote { existed: false, changed: true }, OpAnswer::Integer(5), OpAnswer::Value(None)]
    );
    assert_eq!(r.get(b"c"), Some(b"new".to_vec()));
    assert_eq!(r.nodes[0].expires_at(&stream(1), b"c", None).unwrap(), None, "the old expiry went with it");
    assert_eq!(r.keys(stream(1), None), [b"b".to_vec(), b"c".to_vec()]);
}

/// A flush takes the stream's expiries with it: the count drops to 0 and
/// the old queue is never swept, so a key written again after the flush
/// without an expiry outlives the time its old expiry named.
#[test]
fn a_flush_leaves_no_expiry_behind_for_the_sweep() {
    let mut r = Replicas::new(2);
    let expiring = |at| Op::PutExpiring {
        value: b"v".to_vec().into(),
        cond: PutCond::Always,
        expiry: NewExpiry::At(at),
    };
    r.v6(vec![tx(vec![(b"k", expiring(T0 + 3)), (b"j", expiring(T0 + 3))])]);
    assert_eq!(r.nodes[0].expiring_keys(&stream(1)), 2);
    r.v6(vec![tx(vec![flush()])]);
    assert_eq!(r.nodes[0].expiring_keys(&stream(1)), 0);
    r.v6(vec![tx(vec![(b"k", put(b"again")), (b"j", expiring(T0 + 50))])]);
    assert_eq!(r.nodes[0].expiring_keys(&stream(1)), 1);
    for _ in 0..10 {
        r.v6(vec![]);
    }
    assert_eq!(r.get(b"k"), Some(b"again".to_vec()), "not swept by the expiry the flush removed");
    assert_eq!(r.get(b"j"), Some(b"v".to_vec()), "its new expiry is later");
    let node = r.nodes.pop().unwrap();
    node.close().unwrap();
    r.nodes.push(open(&r.fss[1]));
    assert_eq!(r.nodes[1].expiring_keys(&stream(1)), 1);
    for _ in 0..50 {
        r.v6(vec![]);
    }
    assert_eq!((r.get(b"k"), r.get(b"j")), (Some(b"again".to_vec()), None));
    assert_eq!(r.nodes[0].expiring_keys(&stream(1)), 0);
}

#[test]
fn a_flush_inside_a_transaction_drops_what_came_before_it() {
    let mut r = Replicas::new(1);
    r.v6(vec![tx(vec![(b"old", put(b"x"))])]);
    let a = r.v6(vec![tx(vec![
        (b"before", put(b"1")),
        (b"old", Op::Get),
        flush(),
        (b"old", Op::Get),
        (b"after", put(b"2")),
        (b"before", Op::Get),
    ])]);
    assert_eq!(
        a.answers[0],
        vec![
            OpAnswer::Wrote { existed: false, changed: true },
            OpAnswer::Value(Some(b"x".to_vec())),
            OpAnswer::Flushed,
            OpAnswer::Value(None),
            OpAnswer::Wrote { existed: false, changed: true },
            OpAnswer::Value(None),
        ]
    );
    assert_eq!(r.keys(stream(1), None), [b"after".to_vec()]);
}

/// `WATCH k` then `FLUSHDB` by anyone: `EXEC` must abort, whether `k` held
/// a value or not (every key a flush covers reports its version).
#[test]
fn a_flush_conflicts_with_every_watched_key_of_its_stream() {
    let mut r = Replicas::new(2);
    let watched = r.v6(vec![tx(vec![(b"k", put(b"v"))])]);
    r.v6(vec![tx_on(stream(2), vec![flush()], &[], 0)]);
    let other_stream = r.v6(vec![tx_on(stream(1), vec![(b"k", put(b"w"))], &[b"k"], watched.version)]);
    assert_eq!(other_stream.outcome, commits(1), "a flush of another stream changes nothing here");
    let watched = other_stream.version;
    r.v6(vec![tx(vec![flush()])]);
    for key in [&b"k"[..], b"never-written"] {
        let exec = r.v6(vec![tx_on(stream(1), vec![(key, put(b"mine"))], &[key], watched)]);
        assert_eq!(exec.outcome, EntryOutcome::Applied(vec![Some(TxResult::VersionConfliction)]), "{key:?}");
    }
    assert_eq!(r.get(b"k"), None);
}

#[test]
fn flushes_and_digest_sums_survive_a_reopen() {
    let mut r = Replicas::new(1);
    r.v6(vec![tx(vec![(b"a", put(b"1")), (b"b", put(b"2"))])]);
    r.v6(vec![tx(vec![flush()])]);
    r.v6(vec![tx(vec![(b"c", put(b"3"))])]);
    let digest = r.nodes[0].digest_at(None).unwrap();
    let node = r.nodes.pop().unwrap();
    node.close().unwrap();
    r.nodes.push(open(&r.fss[0]));
    assert_eq!(r.nodes[0].digest_at(None).unwrap(), digest);
    assert_eq!((r.get(b"a"), r.get(b"c")), (None, Some(b"3".to_vec())));
    // The stream's sum was kept: a second flush takes out exactly its values.
    r.v6(vec![tx(vec![(b"d", put(b"4"))])]);
    r.v6(vec![tx(vec![flush()])]);
    assert!(r.keys(stream(1), None).is_empty());
}

#[test]
fn the_flush_op_exists_only_from_protocol_6() {
    let mut r = Replicas::new(1);
    r.v6(vec![tx(vec![(b"k", put(b"v"))])]);
    let a = r.apply_as(&signer(1), Protocol::V4, vec![tx(vec![flush()])]);
    assert_eq!(
        support::result_strings(&a.outcome),
        [Some("DataParseError: Invalid stream data".to_string())]
    );
    assert_eq!(r.get(b"k"), Some(b"v".to_vec()));
}

/// A flush writes every key: a stream writer may flush only if it may also
/// write every special key of the stream.
#[test]
fn a_flush_needs_the_right_to_write_every_key() {
    let mut r = Replicas::new(1);
    let (owner, writer) = (signer(1), signer(2));
    let s = stream(1);
    r.apply_as(
        &owner,
        Protocol::V6,
        vec![
            tx(vec![(b"sk", put(b"guarded")), (b"k", put(b"v"))]),
            controls(vec![
                control(ControlOp::GrantWriteRole, s, None, Some(writer.address())),
                control(ControlOp::SetKeyToSpecial, s, Some(b"sk"), None),
            ]),
        ],
    );
    let refused = r.apply_as(&writer, Protocol::V6, vec![tx(vec![flush()])]);
    assert_eq!(
        support::result_strings(&refused.outcome),
        [Some("WritePermissionDenied: stream: ".to_string() + &s.to_string() + ", key: *")]
    );
    assert_eq!(r.get(b"sk"), Some(b"guarded".to_vec()));
    r.apply_as(
        &owner,
        Protocol::V6,
        vec![controls(vec![control(
            ControlOp::GrantSpecialWriteRole,
            s,
            Some(b"sk"),
            Some(writer.address()),
        )])],
    );
    let allowed = r.apply_as(&writer, Protocol::V6, vec![tx(vec![flush()])]);
    assert_eq!(allowed.outcome, commits(1));
    assert!(r.keys(s, None).is_empty());
}

/// Compaction treats a flushed stream's older keys as deleted at the
/// flush: once the flush is older than the version-check horizon (and
/// retention keeps one version), they leave the index — also after a
/// reopen, which learns the flushes again from the system keyspace.
#[test]
fn compaction_drops_what_a_flush_removed() {
    const HORIZON: u64 = 10;
    let fs = SimFs::new();
    let options = || {
        let log = LogConfig {
            segment_size_bytes: 1 << 20,
            durability: Durability::None,
            recovery: RecoveryMode::Strict,
        };
        let retention = logkv_store::Retention { versions: Some(1), ..Default::default() };
        let store = StoreOptions { fs: Arc::new(fs.clone()), log, retention, ..StoreOptions::default() };
        NodeOptions { store, watched: Watched::All, version_check_horizon: HORIZON, ..NodeOptions::default() }
    };
    let me = signer(1);
    let run = |node: &Node, txs: Vec<TxPart>| {
        let (bytes, hash) = node.sign_entry(&me, txs, Protocol::V6).unwrap();
        node.commit_own(&bytes, hash).unwrap()
    };
    let node = Node::open(Path::new("/node"), options()).unwrap();
    run(&node, vec![tx_on(stream(2), vec![(b"kept", put(b"x"))], &[], 0)]);
    let start = node.store().index_entries();
    let keys: Vec<Vec<u8>> = (0..100).map(|i| format!("k{i}").into_bytes()).collect();
    run(&node, vec![tx(keys.iter().map(|k| (k.as_slice(), put(b"v"))).collect())]);
    let first_flush = run(&node, vec![tx(vec![flush()])]);
    run(&node, vec![tx(vec![(b"after", put(b"1"))])]);
    // The flush's own records (its version and the stream's sum) are keys too.
    let with_flushed = node.store().index_entries();
    assert!(with_flushed > start + keys.len(), "{with_flushed}");
    while node.replay_progress().applied_position < first_flush.position + HORIZON + 1 {
        run(&node, vec![tx_on(stream(2), vec![(b"filler", put(b"x"))], &[], 0)]);
    }
    let digest = node.digest_at(None).unwrap();
    let report = node.store().compact(&mut |_, _| {}).unwrap();
    assert!(report.keys_dropped >= keys.len() as u64, "{report:?}");
    let after = node.store().index_entries();
    assert_eq!(with_flushed + 1 - after, keys.len(), "the flushed keys left, \"filler\" came");
    assert_eq!(node.get(&stream(1), b"after", None).unwrap().map(|(v, _)| v), Some(b"1".to_vec()));
    assert_eq!(node.get(&stream(2), b"kept", None).unwrap().map(|(v, _)| v), Some(b"x".to_vec()));
    assert_eq!(node.digest_at(None).unwrap(), digest, "compaction changes no fact");

    // After a reopen the flush still reaches compaction.
    run(&node, vec![tx(keys.iter().map(|k| (k.as_slice(), put(b"w"))).collect())]);
    let second_flush = run(&node, vec![tx(vec![flush()])]);
    node.close().unwrap();
    let node = Node::open(Path::new("/node"), options()).unwrap();
    while node.replay_progress().applied_position < second_flush.position + HORIZON + 1 {
        run(&node, vec![tx_on(stream(2), vec![(b"filler", put(b"x"))], &[], 0)]);
    }
    let before = node.store().index_entries();
    node.store().compact(&mut |_, _| {}).unwrap();
    // The keys, "after" (older than this flush too), and the stream's
    // emptied sum (a delete past the horizon).
    assert_eq!(before - node.store().index_entries(), keys.len() + 2);
    assert_eq!(node.scan(&stream(1), Default::default()).count(), 0);
}

/// One random op of the model test: on stream 1 or 2, key 0 to 3.
#[derive(Debug, Clone)]
enum RandomOp {
    Put(u8, u8, u8),
    Incr(u8, u8),
    Delete(u8, u8),
    Flush(u8),
    /// Stream, key, value and expiry in entries from now (log time moves
    /// 1 ms per entry), so the sweep runs between flushes.
    Expiring(u8, u8, u8, u8),
}

fn random_op() -> impl proptest::strategy::Strategy<Value = RandomOp> {
    use proptest::prelude::*;
    prop_oneof![
        4 => (1..3u8, 0..4u8, any::<u8>()).prop_map(|(s, k, v)| RandomOp::Put(s, k, v)),
        2 => (1..3u8, 0..4u8).prop_map(|(s, k)| RandomOp::Incr(s, k)),
        1 => (1..3u8, 0..4u8).prop_map(|(s, k)| RandomOp::Delete(s, k)),
        1 => (1..3u8).prop_map(RandomOp::Flush),
        2 => (1..3u8, 0..4u8, any::<u8>(), 0..6u8).prop_map(|(s, k, v, t)| RandomOp::Expiring(s, k, v, t)),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

    /// Random entries of puts, increments, deletes, flushes and expiring
    /// puts (swept as they expire) over two streams, with a reopen of one node part way: the store-backed nodes
    /// and the in-memory state agree on every answer, every digest, and
    /// every read of the newest state and as of every earlier version.
    #[test]
    fn nodes_and_the_in_memory_state_agree_under_random_flushes(
        entries in proptest::collection::vec(proptest::collection::vec(random_op(), 1..5), 1..14),
        reopen_at in 0usize..14,
    ) {
        let mut r = Replicas::new(2);
        let mut versions = Vec::new();
        for (i, ops) in entries.iter().enumerate() {
            if i == reopen_at {
                let node = r.nodes.pop().unwrap();
                node.close().unwrap();
                r.nodes.push(open(&r.fss[1]));
                r.assert_same_digest();
            }
            let txs = ops
                .iter()
                .map(|op| {
                    let key = |k: &u8| vec![b'k', b'0' + k];
                    match op {
                        RandomOp::Put(s, k, v) => tx_on(stream(*s), vec![(&key(k), put(&[*v]))], &[], 0),
                        RandomOp::Incr(s, k) => tx_on(stream(*s), vec![(&key(k), Op::Increment(1))], &[], 0),
                        RandomOp::Delete(s, k) => tx_on(stream(*s), vec![(&key(k), Op::DeleteIfPresent)], &[], 0),
                        RandomOp::Flush(s) => tx_on(stream(*s), vec![flush()], &[], 0),
                        RandomOp::Expiring(s, k, v, t) => {
                            // `v6` applies the entry at log time T0 + position.
                            let at = T0 + r.position + 1 + u64::from(*t);
                            let op = Op::PutExpiring {
                                value: vec![*v].into(),
                                cond: PutCond::Always,
                                expiry: NewExpiry::At(at),
                            };
                            tx_on(stream(*s), vec![(&key(k), op)], &[], 0)
                        }
                    }
                })
                .collect();
            versions.push(r.v6(txs).version);
        }
        for s in [stream(1), stream(2)] {
            for version in versions.iter().map(|v| Some(*v)).chain([None]) {
                r.keys(s, version);
                for k in 0..4u8 {
                    r.get_in(s, &[b'k', b'0' + k], version);
                }
            }
        }
    }
}

/// A flush voids its stream's expiry keys in the system keyspace (`"e"`
/// and `"q"`, older than the flush); compaction drops them as it drops the
/// stream's keys. Flushing many expiring keys over and over keeps the
/// index bounded, while the node reads and digests as the in-memory state
/// does, before and after a reopen.
#[test]
fn compaction_drops_the_expiry_keys_a_flush_voided() {
    const KEYS: usize = 500;
    const ROUNDS: usize = 5;
    let fs = SimFs::new();
    let open = || {
        let log = LogConfig {
            segment_size_bytes: 1 << 20,
            durability: Durability::None,
            recovery: RecoveryMode::Strict,
        };
        let retention = Retention { versions: Some(1), ..Retention::default() };
        let store = StoreOptions { fs: Arc::new(fs.clone()), log, retention, ..StoreOptions::default() };
        let options = NodeOptions { store, version_check_horizon: 4, ..NodeOptions::default() };
        Node::open(Path::new("/node"), options).expect("open node")
    };
    let node = open();
    let (mut mem, mut applier) = (MemState::default(), Applier::new(Watched::All));
    let mut position = 0;
    // Applies one entry on the node and the in-memory state; the latter's
    // digest after it.
    let mut apply = |node: &Node, txs: Vec<TxPart>| {
        position += 1;
        let bytes = signed_as(Protocol::V6, &signer(1), position, txs);
        node.apply_replicated(position, T0 + position, &bytes, Some(true)).unwrap();
        applier.apply_entry(&mut mem, position, T0 + position, &bytes, Some(true));
        mem.digest()
    };
    let expiring = Op::PutExpiring {
        value: b"v".to_vec().into(),
        cond: PutCond::Always,
        expiry: NewExpiry::At(T0 + 1_000_000),
    };
    let (mut entries, mut digest) = (Vec::new(), None);
    for round in 0..ROUNDS {
        let keys: Vec<Vec<u8>> = (0..KEYS).map(|i| format!("{round}:{i}").into_bytes()).collect();
        apply(&node, vec![tx(keys.iter().map(|k| (k.as_slice(), expiring.clone())).collect())]);
        apply(&node, vec![tx(vec![flush()])]);
        // One key expiring after the flush stays, with its system keys.
        apply(&node, vec![tx(vec![(b"kept", expiring.clone())])]);
        // Past the version-check horizon, the flush may be compacted away.
        for _ in 0..5 {
            digest = Some(apply(&node, vec![]));
        }
        node.store().compact(&mut |_, _| {}).expect("compact");
        assert_eq!(Some(node.digest_at(None).unwrap()), digest, "round {round}");
        assert_eq!(node.expiring_keys(&stream(1)), 1);
        entries.push(node.store().index_entries());
    }
    // Without dropping the void keys, each round would add 2 × KEYS.
    assert!(entries.iter().all(|&n| n == entries[0] && n < KEYS), "index entries by round: {entries:?}");
    let check = |node: &Node| {
        assert_eq!(node.get(&stream(1), b"kept", None).unwrap().map(|(v, _)| v), Some(b"v".to_vec()));
        assert_eq!(node.expires_at(&stream(1), b"kept", None).unwrap(), Some(T0 + 1_000_000));
        assert_eq!(node.get(&stream(1), b"0:0", None).unwrap(), None);
    };
    check(&node);
    node.close().unwrap();
    let node = open();
    check(&node);
    assert_eq!(Some(node.digest_at(None).unwrap()), digest);
    assert_eq!(node.expiring_keys(&stream(1)), 1);
    node.store().compact(&mut |_, _| {}).expect("compact after reopen");
    assert_eq!(node.store().index_entries(), entries[0]);
}
