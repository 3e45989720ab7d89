//! Key expiry: apply judges it by each entry's log time, never a node's
//! clock, so nodes applying the same entries at the same log times reach
//! the same state and digest; reads judge it by the newest log time when
//! the clock is behind; an expiry counts as a change for version checks;
//! and the expiry ops exist only from protocol 4 on.
//!
//! Log times here lie in the year 2100, past any test machine's clock, so
//! only log time can expire a key.

mod support;

use std::path::Path;
use std::sync::Arc;

use logkv_fs::SimFs;
use logkv_runtime::apply::{OpAnswer, TxResult, Watched};
use logkv_runtime::codec::native::{self, Body, Op};
use logkv_runtime::codec::{ExpireCond, NewExpiry, PutCond};
use logkv_runtime::digest::Fact;
use logkv_runtime::entry::{Applier, EntryOutcome};
use logkv_runtime::envelope::{Protocol, TxPart};
use logkv_runtime::mem_state::MemState;
use logkv_runtime::node::{Applied, Node, NodeOptions};
use logkv_runtime::shared_log::LogEntry;
use logkv_runtime::sweep::SWEEP_PER_STREAM;
use logkv_runtime::types::StreamId;
use logkv_store::{Durability, LogConfig, RecoveryMode, Retention, StoreOptions};
use proptest::prelude::*;
use support::{nwrite, signed_as, signer, stream};

/// 2100-01-01T00:00:00Z in Unix milliseconds.
const T0: u64 = 4_102_444_800_000;

fn s() -> StreamId {
    stream(1)
}

fn open(fs: &SimFs) -> Node {
    open_watching(fs, Watched::All)
}

fn open_watching(fs: &SimFs, watched: Watched) -> Node {
    let log = LogConfig {
        segment_size_bytes: 1 << 20,
        durability: Durability::None,
        recovery: RecoveryMode::Strict,
    };
    let store = StoreOptions { fs: Arc::new(fs.clone()), log, ..StoreOptions::default() };
    Node::open(Path::new("/node"), NodeOptions { store, watched, ..NodeOptions::default() })
        .expect("open node")
}

/// One transaction of `ops` on the test stream; `reads` at `version`
/// make it conditional on them (Redis `WATCH`).
fn tx(ops: Vec<(&[u8], Op)>, reads: &[&[u8]], version: u64) -> TxPart {
    let body = Body {
        version: if reads.is_empty() { u64::MAX } else { version },
        check_reads_only: true,
        reads: reads.iter().map(|k| support::read(s(), k)).collect(),
        writes: ops.into_iter().map(|(k, op)| nwrite(s(), k, op)).collect(),
        ..Body::default()
    };
    native::compact_tx(&body, [s()])
}

fn put_at(value: &[u8], at: u64) -> Op {
    Op::PutExpiring { value: value.to_vec().into(), cond: PutCond::Always, expiry: NewExpiry::At(at) }
}

/// Nodes (and an in-memory state) applying the same entries at the same
/// log times.
struct Replicas {
    nodes: Vec<Node>,
    mem: MemState,
    applier: Applier,
    position: u64,
}

impl Replicas {
    fn new(fss: &[SimFs]) -> Self {
        Replicas {
            nodes: fss.iter().map(open).collect(),
            mem: MemState::default(),
            applier: Applier::new(Watched::All),
            position: 0,
        }
    }

    /// Applies one entry of `txs` at log time `time` on every replica; the
    /// first node's outcome, which every node must share.
    fn apply(&mut self, protocol: Protocol, time: u64, txs: Vec<TxPart>) -> Applied {
        self.position += 1;
        let bytes = signed_as(protocol, &signer(1), self.position, txs);
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
        applied.into_iter().next().unwrap()
    }

    fn v4(&mut self, time: u64, txs: Vec<TxPart>) -> Applied {
        self.apply(Protocol::V4, time, txs)
    }

    fn v5(&mut self, time: u64, txs: Vec<TxPart>) -> Applied {
        self.apply(Protocol::V5, time, txs)
    }

    /// The value a read of the first node's newest state returns.
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.nodes[0].get(&s(), key, None).unwrap().map(|(v, _)| v)
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

fn value(v: &[u8]) -> OpAnswer {
    OpAnswer::Value(Some(v.to_vec()))
}

#[test]
fn liveness_follows_log_time_and_replicas_agree() {
    let mut r = Replicas::new(&[SimFs::new(), SimFs::new()]);
    let a = r.v4(
        T0,
        vec![tx(vec![(b"k", put_at(b"v", T0 + 100)), (b"p", Op::Put(b"lasting".to_vec().into()))], &[], 0)],
    );
    assert_eq!(a.outcome, commits(1));
    assert_eq!(r.nodes[0].expires_at(&s(), b"k", None).unwrap(), Some(T0 + 100));
    assert_eq!(r.nodes[0].expires_at(&s(), b"p", None).unwrap(), None);
    r.assert_same_digest();

    // Before its expiry an append keeps the expiry and sees the value;
    // through the expiry's own millisecond the key still lives.
    let appended =
        r.v4(T0 + 50, vec![tx(vec![(b"k", Op::Append(b"!".to_vec().into())), (b"k", Op::Get)], &[], 0)]);
    assert_eq!(appended.answers[0], vec![OpAnswer::Length(2), value(b"v!")]);
    assert_eq!(r.nodes[0].expires_at(&s(), b"k", None).unwrap(), Some(T0 + 100));
    let a = r.v4(T0 + 100, vec![tx(vec![(b"k", Op::Get)], &[], 0)]);
    assert_eq!(a.answers[0], vec![value(b"v!")]);
    assert_eq!(r.get(b"k"), Some(b"v!".to_vec()), "the newest log time has not passed the expiry");

    // An unrelated entry moves log time past it: reads no longer see the
    // key, though every clock is decades before its expiry.
    r.v4(T0 + 101, vec![tx(vec![(b"other", Op::Put(b"x".to_vec().into()))], &[], 0)]);
    assert_eq!(r.get(b"k"), None);
    assert!(r.nodes[0].scan(&s(), Default::default()).all(|kv| kv.unwrap().key != b"k"));
    // A read as of an older version judges by that version's log time.
    let then = r.nodes[0].get(&s(), b"k", Some(appended.version)).unwrap();
    assert_eq!(then.map(|(v, _)| v), Some(b"v!".to_vec()));
    r.assert_same_digest();

    // Apply judges the same: the key is absent for a conditional put, and
    // an expiry in the past deletes a live key.
    let past = Op::Expire { cond: ExpireCond::Always, at: Some(T0) };
    let nx =
        Op::PutExpiring { value: b"new".to_vec().into(), cond: PutCond::IfAbsent, expiry: NewExpiry::Never };
    let a = r.v4(T0 + 102, vec![tx(vec![(b"k", nx), (b"p", past)], &[], 0)]);
    assert_eq!(
        a.answers[0],
        vec![
            OpAnswer::Wrote { existed: false, changed: true },
            OpAnswer::Wrote { existed: true, changed: true }
        ]
    );
    assert_eq!((r.get(b"k"), r.get(b"p")), (Some(b"new".to_vec()), None));
    assert_eq!(r.nodes[0].expires_at(&s(), b"k", None).unwrap(), None, "a put without expiry clears it");
    r.assert_same_digest();
}

#[test]
fn the_same_entries_at_other_log_times_reach_another_state() {
    let entries = |times: [u64; 2]| {
        let mut r = Replicas::new(&[SimFs::new()]);
        r.v4(times[0], vec![tx(vec![(b"k", put_at(b"v", T0 + 10))], &[], 0)]);
        let a = r.v4(times[1], vec![tx(vec![(b"k", Op::Increment(1))], &[], 0)]);
        (a, r.nodes[0].digest_at(None).unwrap())
    };
    let (_, on_time) = entries([T0, T0 + 5]);
    let (late, after) = entries([T0, T0 + 11]);
    assert_eq!(
        late.outcome,
        EntryOutcome::Applied(vec![Some(TxResult::Commit)]),
        "after the expiry the increment starts from an absent key"
    );
    assert_eq!(late.answers[0], vec![OpAnswer::Integer(1)]);
    assert_ne!(on_time, after);
}

#[test]
fn expire_conditions_and_persist_answer_as_redis_does() {
    let mut r = Replicas::new(&[SimFs::new()]);
    r.v4(T0, vec![tx(vec![(b"k", Op::Put(b"v".to_vec().into()))], &[], 0)]);
    let expire = |cond, at| Op::Expire { cond, at };
    let wrote = |changed| OpAnswer::Wrote { existed: true, changed };
    let a = r.v4(
        T0 + 1,
        vec![tx(
            vec![
                (b"k", expire(ExpireCond::IfSome, Some(T0 + 500))), // no expiry yet: refused
                (b"k", expire(ExpireCond::IfLater, Some(T0 + 500))), // none counts as infinite: refused
                (b"k", expire(ExpireCond::IfEarlier, Some(T0 + 500))), // earlier than infinite: set
                (b"k", expire(ExpireCond::IfNone, Some(T0 + 900))), // has one now: refused
                (b"k", expire(ExpireCond::IfLater, Some(T0 + 900))), // later: set
                (b"missing", expire(ExpireCond::Always, Some(T0 + 900))),
            ],
            &[],
            0,
        )],
    );
    assert_eq!(
        a.answers[0],
        vec![
            wrote(false),
            wrote(false),
            wrote(true),
            wrote(false),
            wrote(true),
            OpAnswer::Wrote { existed: false, changed: false }
        ]
    );
    assert_eq!(r.nodes[0].expires_at(&s(), b"k", None).unwrap(), Some(T0 + 900));
    let persist = expire(ExpireCond::Always, None);
    let a = r.v4(T0 + 2, vec![tx(vec![(b"k", persist.clone()), (b"k", persist)], &[], 0)]);
    assert_eq!(a.answers[0], vec![wrote(true), wrote(false)], "PERSIST of a key without expiry is 0");
    assert_eq!(r.nodes[0].expires_at(&s(), b"k", None).unwrap(), None);
    let keep =
        Op::PutExpiring { value: b"w".to_vec().into(), cond: PutCond::IfPresent, expiry: NewExpiry::Keep };
    r.v4(T0 + 3, vec![tx(vec![(b"k", put_at(b"v", T0 + 50)), (b"k", keep)], &[], 0)]);
    assert_eq!(r.nodes[0].expires_at(&s(), b"k", None).unwrap(), Some(T0 + 50), "KEEPTTL keeps it");
    r.assert_same_digest();
}

/// A client holds a lock while it is alive: it watches the lock, and
/// extends it in a transaction. Once the lock expired the extension must
/// not commit, even though nobody wrote the key since (another client may
/// have seen it gone and taken it).
#[test]
fn a_lock_extended_after_it_expired_does_not_commit() {
    let mut r = Replicas::new(&[SimFs::new(), SimFs::new()]);
    let taken = r.v4(T0, vec![tx(vec![(b"lock", put_at(b"me", T0 + 100))], &[], 0)]);
    let watched_at = taken.version;
    let extend = || {
        tx(
            vec![(b"lock", Op::Expire { cond: ExpireCond::Always, at: Some(T0 + 10_000) })],
            &[b"lock"],
            watched_at,
        )
    };

    // In time: the extension commits.
    let a = r.v4(T0 + 60, vec![extend()]);
    assert_eq!(a.outcome, commits(1));
    let watched_at = a.version;
    let extend = || {
        tx(
            vec![(b"lock", Op::Expire { cond: ExpireCond::Always, at: Some(T0 + 20_000) })],
            &[b"lock"],
            watched_at,
        )
    };
    // Too late (log time past the new expiry, no write since): refused.
    let late = r.v4(T0 + 10_001, vec![extend()]);
    assert_eq!(late.outcome, EntryOutcome::Applied(vec![Some(TxResult::VersionConfliction)]));
    assert_eq!(r.get(b"lock"), None);

    // A client that watched the lock after it expired saw it gone, and
    // takes it.
    let mine = Op::PutExpiring {
        value: b"you".to_vec().into(),
        cond: PutCond::IfAbsent,
        expiry: NewExpiry::At(T0 + 30_000),
    };
    let a = r.v4(T0 + 10_002, vec![tx(vec![(b"lock", mine)], &[b"lock"], late.version)]);
    assert_eq!(a.outcome, commits(1));
    assert_eq!(r.get(b"lock"), Some(b"you".to_vec()));
    r.assert_same_digest();
}

#[test]
fn expiry_ops_exist_only_from_protocol_4() {
    let mut r = Replicas::new(&[SimFs::new()]);
    for protocol in [Protocol::V2, Protocol::V3] {
        let a = r.apply(protocol, T0, vec![tx(vec![(b"k", put_at(b"v", T0 + 5))], &[], 0)]);
        let EntryOutcome::Applied(results) = a.outcome else { panic!("{:?}", a.outcome) };
        assert_eq!(
            results[0].as_ref().unwrap().to_string(),
            "DataParseError: Invalid stream data",
            "{protocol:?}"
        );
    }
    assert_eq!(r.get(b"k"), None);
    assert_eq!(r.v4(T0, vec![tx(vec![(b"k", put_at(b"v", T0 + 5))], &[], 0)]).outcome, commits(1));
}

#[test]
fn expiries_survive_compaction_and_a_reopen() {
    let fs = SimFs::new();
    let mut r = Replicas::new(std::slice::from_ref(&fs));
    r.v4(T0, vec![tx(vec![(b"k", put_at(b"v", T0 + 100))], &[], 0)]);
    r.v4(T0 + 200, vec![tx(vec![(b"p", put_at(b"v", T0 + 300))], &[], 0)]);
    let digest = r.nodes[0].digest_at(None).unwrap();
    r.nodes[0].store().compact(&mut |_, _| {}).expect("compact");
    drop(r);
    let node = open(&fs);
    assert_eq!(node.expires_at(&s(), b"p", None).unwrap(), Some(T0 + 300));
    assert_eq!(node.get(&s(), b"p", None).unwrap().map(|(v, _)| v), Some(b"v".to_vec()));
    assert_eq!(node.get(&s(), b"k", None).unwrap(), None, "judged by the newest log time kept");
    assert_eq!(node.digest_at(None).unwrap(), digest);
}

/// `n` keys `{prefix}{i}` put in one transaction, each expiring at `at`.
fn expiring(prefix: &str, n: usize, at: u64) -> TxPart {
    let keys: Vec<Vec<u8>> = (0..n).map(|i| format!("{prefix}{i}").into_bytes()).collect();
    tx(keys.iter().map(|k| (k.as_slice(), put_at(b"v", at))).collect(), &[], 0)
}

#[test]
fn from_protocol_5_each_entry_deletes_the_keys_expired_before_it() {
    let mut r = Replicas::new(&[SimFs::new(), SimFs::new()]);
    r.v4(
        T0,
        vec![tx(vec![(b"k", put_at(b"v", T0 + 100)), (b"p", Op::Put(b"lasting".to_vec().into()))], &[], 0)],
    );
    assert_eq!(r.nodes[0].expiring_keys(&s()), 1);
    assert!(r.nodes[0].has_queued_expiries());

    // An entry of protocol 4 sweeps nothing: the expired key stays, unseen.
    r.v4(T0 + 200, vec![tx(vec![(b"other", Op::Put(b"x".to_vec().into()))], &[], 0)]);
    assert_eq!(r.get(b"k"), None);
    assert_eq!(r.nodes[0].expires_at(&s(), b"k", None).unwrap(), Some(T0 + 100));
    assert_eq!(r.nodes[0].expiring_keys(&s()), 1);
    let before = r.nodes[0].digest_at(None).unwrap();

    // An empty entry of protocol 5 (a tick) deletes it: the digest loses
    // exactly its fact, on every node and in memory.
    let tick = r.v5(T0 + 201, Vec::new());
    assert_eq!(tick.outcome, commits(0));
    r.assert_same_digest();
    let mut expected = before;
    expected.remove(Fact::value(&s(), b"k", b"v", Some(T0 + 100)));
    assert_eq!(r.nodes[0].digest_at(None).unwrap(), expected);
    assert_eq!(r.nodes[0].expires_at(&s(), b"k", None).unwrap(), None);
    assert_eq!(r.nodes[0].expiring_keys(&s()), 0);
    assert!(!r.nodes[0].has_queued_expiries(), "nothing left to sweep: ticks may stop");
    let history = r.nodes[0].history(&s(), b"k").unwrap();
    assert_eq!(history.first().map(|h| (h.version, h.deleted)), Some((tick.version, true)), "newest first");
    assert_eq!(r.get(b"p"), Some(b"lasting".to_vec()));

    // A key living through its expiry's millisecond is not swept then.
    r.v5(T0 + 300, vec![tx(vec![(b"k", put_at(b"w", T0 + 400))], &[], 0)]);
    r.v5(T0 + 400, Vec::new());
    assert_eq!(r.get(b"k"), Some(b"w".to_vec()));
    assert_eq!(r.nodes[0].expiring_keys(&s()), 1);
    r.assert_same_digest();
}

#[test]
fn an_entry_sweeps_a_bounded_number_of_keys_per_stream() {
    let mut r = Replicas::new(&[SimFs::new()]);
    let n = SWEEP_PER_STREAM + 300;
    r.v5(T0, vec![expiring("a", n, T0 + 10), expiring("b", 5, T0 + 20)]);
    assert_eq!(r.nodes[0].expiring_keys(&s()), n as u64 + 5);
    r.v5(T0 + 30, Vec::new());
    assert_eq!(r.nodes[0].expiring_keys(&s()), 305, "the earliest {SWEEP_PER_STREAM} went first");
    r.assert_same_digest();
    r.v5(T0 + 31, Vec::new());
    assert_eq!(r.nodes[0].expiring_keys(&s()), 0);
    assert!(r.nodes[0].scan(&s(), Default::default()).next().is_none());
    r.assert_same_digest();
}

/// The sweep deletes a key at the entry's first version, and the entry's
/// first transaction writes it again at that same version.
#[test]
fn a_key_swept_and_written_again_by_the_same_entry_keeps_the_new_value() {
    let fs = SimFs::new();
    let mut r = Replicas::new(std::slice::from_ref(&fs));
    r.v5(T0, vec![tx(vec![(b"k", put_at(b"old", T0 + 10))], &[], 0)]);
    let a = r.v5(T0 + 20, vec![tx(vec![(b"k", Op::Get), (b"k", Op::Put(b"new".to_vec().into()))], &[], 0)]);
    assert_eq!(a.answers[0], vec![OpAnswer::Value(None), OpAnswer::Wrote { existed: false, changed: true }]);
    assert_eq!(r.get(b"k"), Some(b"new".to_vec()));
    assert_eq!(r.nodes[0].expiring_keys(&s()), 0);
    r.assert_same_digest();
    let digest = r.nodes[0].digest_at(None).unwrap();
    drop(r);
    let node = open(&fs);
    assert_eq!(node.get(&s(), b"k", None).unwrap().map(|(v, _)| v), Some(b"new".to_vec()));
    assert_eq!((node.digest_at(None).unwrap(), node.expiring_keys(&s())), (digest, 0));
}

/// The sweep reads the newest *sequenced* state: a node applying a batch
/// of entries under one commit (nothing acknowledged until the end) sweeps
/// what a node acknowledging each entry sweeps.
#[test]
fn grouping_entries_into_commits_does_not_change_the_sweep() {
    let signer = signer(1);
    let entries: Vec<LogEntry> = [
        (T0, vec![expiring("a", 50, T0 + 10)]),
        (T0 + 20, Vec::new()),
        (T0 + 21, vec![expiring("b", 50, T0 + 30)]),
        (
            T0 + 22,
            vec![tx(vec![(b"b1", Op::Expire { cond: ExpireCond::Always, at: Some(T0 + 100) })], &[], 0)],
        ),
        (T0 + 40, vec![tx(vec![(b"b2", Op::Get)], &[], 0)]),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (time, txs))| {
        let position = i as u64 + 1;
        LogEntry { position, time_ms: time, bytes: signed_as(Protocol::V5, &signer, position, txs).into() }
    })
    .collect();
    let (one_by_one, batched) = (open(&SimFs::new()), open(&SimFs::new()));
    let mut mem = MemState::default();
    let mut applier = Applier::new(Watched::All);
    for e in &entries {
        one_by_one.apply_replicated(e.position, e.time_ms, &e.bytes, None).unwrap();
        applier.apply_entry(&mut mem, e.position, e.time_ms, &e.bytes, None);
    }
    let applied = batched.apply_replicated_batch(&entries).unwrap();
    assert_eq!(applied.last().unwrap().answers[0], vec![OpAnswer::Value(None)]);
    for node in [&one_by_one, &batched] {
        assert_eq!(node.expiring_keys(&s()), 1, "b1 alone is left");
        assert_eq!(node.digest_at(None).unwrap(), mem.digest());
    }
}

/// Each stream is swept on its own, so a node watching one stream deletes
/// there exactly what a node watching more deletes.
#[test]
fn a_node_watching_fewer_streams_sweeps_its_streams_alike() {
    let (wide, narrow) =
        (open(&SimFs::new()), open_watching(&SimFs::new(), Watched::Only([s()].into_iter().collect())));
    let other = stream(2);
    let other_tx = {
        let writes = (0..SWEEP_PER_STREAM)
            .map(|i| nwrite(other, format!("o{i}").as_bytes(), put_at(b"v", T0 + 5)))
            .collect();
        native::compact_tx(&Body { version: u64::MAX, writes, ..Body::default() }, [other])
    };
    let entries =
        [(T0, vec![other_tx, expiring("k", 10, T0 + 10)]), (T0 + 20, Vec::new()), (T0 + 21, Vec::new())];
    for (i, (time, txs)) in entries.into_iter().enumerate() {
        let bytes = signed_as(Protocol::V5, &signer(1), i as u64 + 1, txs);
        for node in [&wide, &narrow] {
            node.apply_replicated(i as u64 + 1, time, &bytes, None).unwrap();
        }
        let keys = |n: &Node| n.scan(&s(), Default::default()).map(|kv| kv.unwrap().key).collect::<Vec<_>>();
        assert_eq!(keys(&wide), keys(&narrow));
        assert_eq!(wide.expiring_keys(&s()), narrow.expiring_keys(&s()));
    }
    assert_eq!((wide.expiring_keys(&s()), wide.expiring_keys(&other)), (0, 0));
}

/// A cache of many distinct expiring keys: with the sweep, compaction
/// leaves an index the size of what is alive, not of what was ever
/// written; and the store-backed and in-memory states agree throughout.
#[test]
fn expired_keys_leave_the_index() {
    const KEYS: usize = 200_000;
    const BATCH: usize = 1_000;
    let live = |swept: bool| {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = LogConfig {
            segment_size_bytes: 1 << 20,
            durability: Durability::None,
            recovery: RecoveryMode::Strict,
        };
        let retention = Retention { versions: Some(1), ..Retention::default() };
        let store = StoreOptions { log, retention, ..StoreOptions::default() };
        let options = NodeOptions { store, version_check_horizon: 16, ..NodeOptions::default() };
        let node = Node::open(dir.path(), options).expect("open node");
        let (mut mem, mut applier) = (MemState::default(), Applier::new(Watched::All));
        let protocol = if swept { Protocol::V5 } else { Protocol::V4 };
        let keys = if swept { KEYS } else { KEYS / 10 };
        let mut position = 0;
        let mut apply = |time: u64, txs: Vec<TxPart>| {
            position += 1;
            let bytes = signed_as(protocol, &signer(1), position, txs);
            node.apply_replicated(position, time, &bytes, Some(true)).unwrap();
            applier.apply_entry(&mut mem, position, time, &bytes, Some(true));
        };
        // A batch a second, each key living for one and a half.
        for b in 0..keys / BATCH {
            let time = T0 + b as u64 * 1_000;
            apply(time, vec![expiring(&format!("{b}:"), BATCH, time + 1_500)]);
        }
        let end = T0 + (keys / BATCH) as u64 * 1_000;
        // The last batches and some lasting keys are alive at the end.
        apply(end, vec![expiring("alive:", 100, end + 60_000)]);
        for i in 0..40 {
            apply(end + 2_000 + i, Vec::new());
        }
        assert_eq!(node.digest_at(None).unwrap(), mem.digest(), "store-backed and in-memory agree");
        let report = node.store().compact(&mut |_, _| {}).expect("compact");
        eprintln!("swept: {swept}, compaction: {:?}, {} keys dropped", report.elapsed, report.keys_dropped);
        let index = node.store().index_entries();
        assert_eq!(node.digest_at(None).unwrap(), mem.digest());
        (index, node.expiring_keys(&s()))
    };
    let (index, expiring) = live(true);
    assert_eq!(expiring, 100);
    // Each live expiring key holds three index entries (value, "e", "q");
    // what else the index holds (tombstones newer than the horizon, stream
    // and nonce keys) does not grow with the keys written.
    assert!(index < 3 * 100 + 3 * BATCH * 3, "{index} index entries for 100 live keys");
    let (unswept, _) = live(false);
    assert!(unswept > KEYS / 10, "without the sweep every key stays: {unswept} index entries");
}

/// One generated op: which key of [`RANDOM_KEYS`] (on the transaction's
/// stream, or with `stream` 0 on the other one) and what. Its expiry
/// times are offsets from `T0`, made relative to the entry by [`relative`].
#[derive(Debug, Clone)]
struct GenOp {
    stream: u8,
    key: usize,
    op: Op,
}

/// `op` with each time `T0 + d` moved to `time + d - 100`: some in the
/// past of the entry (which deletes), most a few entries ahead of it.
fn relative(op: &Op, time: u64) -> Op {
    let shift = |at: u64| time + (at - T0) - 100;
    match op.clone() {
        Op::PutExpiring { value, cond, expiry: NewExpiry::At(at) } => {
            Op::PutExpiring { value, cond, expiry: NewExpiry::At(shift(at)) }
        }
        Op::Expire { cond, at } => Op::Expire { cond, at: at.map(shift) },
        other => other,
    }
}

const RANDOM_KEYS: [&[u8]; 4] = [b"a", b"b", b"c", b"d"];

fn op_gen() -> impl Strategy<Value = Op> {
    let at = (0u64..40).prop_map(|d| T0 + 10 * d);
    let put_cond = prop_oneof![Just(PutCond::Always), Just(PutCond::IfAbsent), Just(PutCond::IfPresent)];
    let expire_cond = prop_oneof![
        Just(ExpireCond::Always),
        Just(ExpireCond::IfNone),
        Just(ExpireCond::IfSome),
        Just(ExpireCond::IfLater),
        Just(ExpireCond::IfEarlier),
        Just(ExpireCond::IfSomeAndEarlier),
    ];
    let expiry =
        prop_oneof![Just(NewExpiry::Never), Just(NewExpiry::Keep), at.clone().prop_map(NewExpiry::At)];
    prop_oneof![
        Just(Op::Put(b"p".to_vec().into())),
        Just(Op::Delete),
        Just(Op::Increment(1)),
        Just(Op::Append(b"+".to_vec().into())),
        Just(Op::Get),
        (put_cond, expiry).prop_map(|(cond, expiry)| Op::PutExpiring {
            value: b"x".to_vec().into(),
            cond,
            expiry
        }),
        (expire_cond, proptest::option::of(at)).prop_map(|(cond, at)| Op::Expire { cond, at }),
    ]
}

/// An entry: how far log time moves before it, whether it is protocol 5,
/// and its transactions, each on one stream, some reading a key at the
/// version of an earlier entry (a `WATCH`).
type GenEntry = (u64, bool, Vec<(u8, Option<(usize, u8)>, Vec<GenOp>)>);

fn entry_gen() -> impl Strategy<Value = GenEntry> {
    let op = (0u8..8, 0..RANDOM_KEYS.len(), op_gen()).prop_map(|(stream, key, op)| GenOp { stream, key, op });
    let tx =
        (1u8..3, proptest::option::of((0..RANDOM_KEYS.len(), 1u8..4)), proptest::collection::vec(op, 1..4));
    ((0u64..6).prop_map(|d| 10 * d), any::<bool>(), proptest::collection::vec(tx, 0..3))
}

fn build(entries: &[GenEntry]) -> Vec<LogEntry> {
    let mut time = T0;
    entries
        .iter()
        .enumerate()
        .map(|(i, (advance, v5, txs))| {
            let position = i as u64 + 1;
            time += advance;
            let txs = txs
                .iter()
                .map(|(stream_n, watch, ops)| {
                    let tagged = stream(*stream_n);
                    let (version, reads) = match watch {
                        Some((key, back)) => (
                            (position.saturating_sub(u64::from(*back)) << 16),
                            vec![support::read(tagged, RANDOM_KEYS[*key])],
                        ),
                        None => (u64::MAX, Vec::new()),
                    };
                    let writes = ops
                        .iter()
                        .map(|o| {
                            // Mostly the tagged stream; the other one makes a tags mismatch.
                            let s = if o.stream == 0 { stream(3 - stream_n) } else { tagged };
                            nwrite(s, RANDOM_KEYS[o.key], relative(&o.op, time))
                        })
                        .collect();
                    let body = Body { version, check_reads_only: true, reads, writes, ..Body::default() };
                    native::compact_tx(&body, [tagged])
                })
                .collect();
            let protocol = if *v5 { Protocol::V5 } else { Protocol::V4 };
            LogEntry { position, time_ms: time, bytes: signed_as(protocol, &signer(1), position, txs).into() }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Random expiry ops at random log times, protocols 4 and 5 mixed: a
    /// node acknowledging each entry, a node applying batches under one
    /// commit and the in-memory state give the same results, answers and
    /// digests after every batch, and the node reopens to the same state.
    #[test]
    fn random_logs_sweep_alike_on_every_state(
        entries in proptest::collection::vec(entry_gen(), 1..40),
        cuts in proptest::collection::vec(1usize..8, 1..10),
    ) {
        let log = build(&entries);
        let fs = SimFs::new();
        let (one_by_one, batched) = (open(&fs), open(&SimFs::new()));
        let (mut mem, mut applier) = (MemState::default(), Applier::new(Watched::All));
        let mut rest = &log[..];
        for cut in cuts.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (batch, after) = rest.split_at((*cut).min(rest.len()));
            rest = after;
            let together = batched.apply_replicated_batch(batch).unwrap();
            for (e, b) in batch.iter().zip(&together) {
                let a = one_by_one.apply_replicated(e.position, e.time_ms, &e.bytes, None).unwrap();
                let (m, answers) = applier.apply_entry_answered(&mut mem, e.position, e.time_ms, &e.bytes, None);
                prop_assert_eq!(&a.outcome, &b.outcome);
                prop_assert_eq!(&a.outcome, &m);
                prop_assert_eq!(&a.answers, &b.answers);
                prop_assert_eq!(&a.answers, &answers);
            }
            let digest = one_by_one.digest_at(None).unwrap();
            prop_assert_eq!(digest, batched.digest_at(None).unwrap());
            prop_assert_eq!(digest, mem.digest());
            for s in [stream(1), stream(2)] {
                prop_assert_eq!(one_by_one.expiring_keys(&s), batched.expiring_keys(&s));
            }
        }
        let (digest, counts) = (one_by_one.digest_at(None).unwrap(), one_by_one.expiring_keys(&stream(1)));
        drop(one_by_one);
        let reopened = open(&fs);
        prop_assert_eq!((reopened.digest_at(None).unwrap(), reopened.expiring_keys(&stream(1))), (digest, counts));
    }
}
