//! The commit pipeline: concurrent writers sharing signed entries, each
//! getting its own results, versions and op answers; coalescing; the
//! `Get` op only in protocol 3 entries; protocol 5 while a key has an
//! expiry; the queue's bound in bytes.

mod support;

use std::path::Path;
use std::sync::{Arc, Barrier};

use logkv_fs::{FileSystem, SimFs, StdFs};
use logkv_runtime::apply::{OpAnswer, TxResult, Watched};
use logkv_runtime::codec::native::{self, Body, Op};
use logkv_runtime::codec::{ExpireCond, NewExpiry, PutCond};
use logkv_runtime::entry::EntryOutcome;
use logkv_runtime::envelope::{Entry, EntryView, Protocol};
use logkv_runtime::node::{Applied, Node, NodeOptions};
use logkv_runtime::pipeline::{Pipeline, PipelineOptions, Write};
use logkv_runtime::types::{tx_version, version_position, StreamId};
use logkv_store::{Durability, LogConfig, RecoveryMode, StoreOptions};
use support::{nwrite, signer, stream};

fn open_in(fs: Arc<dyn FileSystem>, dir: &Path, durability: Durability) -> Arc<Node> {
    let log = LogConfig { segment_size_bytes: 1 << 20, durability, recovery: RecoveryMode::Strict };
    let store = StoreOptions { fs, log, ..StoreOptions::default() };
    let options = NodeOptions { store, watched: Watched::All, ..NodeOptions::default() };
    Arc::new(Node::open(dir, options).expect("open node"))
}

fn body(s: StreamId, ops: Vec<(&[u8], Op)>) -> Body {
    Body {
        version: u64::MAX,
        writes: ops.into_iter().map(|(k, op)| nwrite(s, k, op)).collect(),
        ..Body::default()
    }
}

fn close(pipeline: Pipeline) {
    let node = pipeline.node().clone();
    pipeline.close();
    Arc::into_inner(node).expect("the pipeline released the node").close().unwrap();
}

#[test]
fn concurrent_writers_share_signed_entries_and_each_sees_its_own_result() {
    // `always` on the real file system, where a sync takes long enough for
    // the other writers to queue up behind the entry under way; `none` on
    // the simulated one.
    let tmp = tempfile::tempdir().unwrap();
    let sim = SimFs::new();
    let runs: [(Arc<dyn FileSystem>, &Path, Durability); 2] = [
        (Arc::new(StdFs), tmp.path(), Durability::Always),
        (Arc::new(sim), Path::new("/node"), Durability::None),
    ];
    for (fs, dir, durability) in runs {
        let pipeline =
            Pipeline::start(open_in(fs.clone(), dir, durability), None, PipelineOptions::default());
        let (me, s) = (signer(4), stream(7));
        const THREADS: usize = 16;
        const PER_THREAD: usize = 60;
        let start = Barrier::new(THREADS);
        let results: Vec<Vec<(Vec<u8>, u64, u64)>> = std::thread::scope(|sc| {
            let handles: Vec<_> = (0..THREADS)
                .map(|t| {
                    let (pipeline, me, start) = (&pipeline, &me, &start);
                    sc.spawn(move || {
                        start.wait();
                        (0..PER_THREAD)
                            .map(|i| {
                                let key = format!("k{t}-{i}").into_bytes();
                                let txs = vec![body(s, vec![(&key, Op::Put(key.clone().into()))])];
                                let a = pipeline
                                    .write_blocking(Write::Local { signer: me.clone(), txs })
                                    .unwrap();
                                assert_eq!(a.outcome, EntryOutcome::Applied(vec![Some(TxResult::Commit)]));
                                let node = pipeline.node();
                                assert!(node.replay_progress().applied_version >= a.version, "acknowledged");
                                (key, a.version, a.position)
                            })
                            .collect()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let node = pipeline.node().clone();
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
        // Under `always` every entry waits for a sync, during which the
        // other writers queue up; without syncs entries are smaller but
        // still shared.
        let bound = if durability == Durability::Always { total / 3 } else { total };
        assert!((entries as usize) < bound, "{durability:?}: {entries} entries for {total} transactions");
        assert_eq!(node.signatures_verified(), 0, "the node signed them itself");
        assert_eq!(pipeline.queued_bytes(), 0, "every write gave its room back");
        drop(node);
        close(pipeline);
        // Reopened: every write is there and nonces continue.
        let pipeline = Pipeline::start(open_in(fs, dir, durability), None, PipelineOptions::default());
        for (key, version, _) in results.iter().flatten() {
            assert_eq!(pipeline.node().get(&s, key, None).unwrap(), Some((key.clone(), *version)));
        }
        let txs = vec![body(s, vec![(b"after", Op::Put(b"x".to_vec().into()))])];
        let a = pipeline.write_blocking(Write::Local { signer: me.clone(), txs }).unwrap();
        assert_eq!(a.outcome, EntryOutcome::Applied(vec![Some(TxResult::Commit)]), "a fresh nonce");
        close(pipeline);
    }
}

#[test]
fn a_writer_gets_consecutive_versions_its_results_and_what_each_op_found() {
    let fs = SimFs::new();
    let pipeline =
        Pipeline::start(open_in(Arc::new(fs), Path::new("/n"), Durability::Always), None, Default::default());
    let (me, s) = (signer(4), stream(7));
    let write = |txs| pipeline.write_blocking(Write::Local { signer: me.clone(), txs }).unwrap();
    write(vec![body(s, vec![(b"a", Op::Put(b"1".to_vec().into())), (b"n", Op::Put(b"x".to_vec().into()))])]);
    let a = write(vec![
        body(s, vec![(b"a", Op::Get), (b"a", Op::Put(b"2".to_vec().into())), (b"a", Op::Get)]),
        body(
            s,
            vec![
                (b"b", Op::PutIfAbsent(b"3".to_vec().into())),
                (b"b", Op::PutIfAbsent(b"4".to_vec().into())),
            ],
        ),
        body(s, vec![(b"a", Op::Append(b"xy".to_vec().into())), (b"c", Op::Increment(-5))]),
        body(s, vec![(b"a", Op::DeleteIfPresent), (b"zz", Op::DeleteIfPresent)]),
        body(s, vec![(b"n", Op::Increment(1))]),
    ]);
    let commit = Some(TxResult::Commit);
    let failed = Some(TxResult::OperationFailed("value is not an integer or out of range"));
    assert_eq!(
        a.outcome,
        EntryOutcome::Applied(vec![commit.clone(), commit.clone(), commit.clone(), commit, failed])
    );
    assert_eq!(a.version, tx_version(a.position, 4));
    let wrote = |existed, changed| OpAnswer::Wrote { existed, changed };
    assert_eq!(
        a.answers,
        vec![
            vec![
                OpAnswer::Value(Some(b"1".to_vec())),
                wrote(true, true),
                OpAnswer::Value(Some(b"2".to_vec()))
            ],
            vec![wrote(false, true), wrote(true, false)],
            vec![OpAnswer::Length(3), OpAnswer::Integer(-5)],
            vec![wrote(true, true), wrote(false, false)],
            vec![],
        ]
    );
    let record = pipeline.node().store().applied_at(a.position).unwrap().unwrap();
    let entry = record.entry.as_deref().and_then(|e| EntryView::parse(e).ok());
    assert_eq!(entry.map(|e| e.protocol()), Some(Protocol::V3), "an entry with a get is protocol 3");
    let empty = write(Vec::new());
    assert_eq!(empty.outcome, EntryOutcome::Applied(Vec::new()));
    close(pipeline);
}

/// Entries are signed in protocol 5, whose entries sweep expired keys,
/// exactly while some key has an expiry: nodes that know no sweep keep
/// following logs whose clients never use expiry.
#[test]
fn entries_are_protocol_5_while_a_key_has_an_expiry() {
    let pipeline = Pipeline::start(
        open_in(Arc::new(SimFs::new()), Path::new("/n"), Durability::None),
        None,
        PipelineOptions::default(),
    );
    let (me, s) = (signer(4), stream(7));
    let write = |ops: Vec<(&[u8], Op)>| {
        let a =
            pipeline.write_blocking(Write::Local { signer: me.clone(), txs: vec![body(s, ops)] }).unwrap();
        assert_eq!(a.outcome, EntryOutcome::Applied(vec![Some(TxResult::Commit)]));
        let record = pipeline.node().store().applied_at(a.position).unwrap().unwrap();
        record.entry.as_deref().and_then(|e| EntryView::parse(e).ok()).map(|e| e.protocol())
    };
    let later = Op::PutExpiring {
        value: b"v".to_vec().into(),
        cond: PutCond::Always,
        expiry: NewExpiry::At(u64::MAX / 2),
    };
    assert_eq!(write(vec![(b"k", later)]), Some(Protocol::V4), "no key had an expiry yet");
    assert_eq!(pipeline.node().expiring_keys(&s), 1);
    assert_eq!(write(vec![(b"x", Op::Put(b"1".to_vec().into()))]), Some(Protocol::V5));
    let persist = Op::Expire { cond: ExpireCond::Always, at: None };
    assert_eq!(write(vec![(b"k", persist)]), Some(Protocol::V5));
    assert_eq!(pipeline.node().expiring_keys(&s), 0);
    assert_eq!(write(vec![(b"y", Op::Put(b"2".to_vec().into()))]), Some(Protocol::V2));
    close(pipeline);
}

#[test]
fn a_get_op_in_a_protocol_2_entry_is_a_parse_error_as_it_was_before_the_op_existed() {
    let node = open_in(Arc::new(SimFs::new()), Path::new("/n"), Durability::None);
    let (me, s) = (signer(4), stream(7));
    let tx = |b: &Body| native::compact_tx(b, [s]);
    let get = body(s, vec![(b"a", Op::Put(b"1".to_vec().into())), (b"a", Op::Get)]);
    let old = Entry { sender: me.address(), nonce: 1, txs: vec![tx(&get)] }
        .encode_signed_as(Protocol::V2, &me)
        .unwrap();
    let a = node.submit(&old).unwrap();
    assert!(
        matches!(&a.outcome, EntryOutcome::Applied(r) if matches!(r[0], Some(TxResult::DataParseError(_))))
    );
    assert_eq!(node.get(&s, b"a", None).unwrap(), None);
    let new = Entry { sender: me.address(), nonce: 2, txs: vec![tx(&get)] }
        .encode_signed_as(Protocol::V3, &me)
        .unwrap();
    let a: Applied = node.submit(&new).unwrap();
    assert_eq!(a.outcome, EntryOutcome::Applied(vec![Some(TxResult::Commit)]));
    assert_eq!(a.answers[0][1], OpAnswer::Value(Some(b"1".to_vec())));
}

#[test]
fn blind_writes_of_one_key_coalesce_into_the_last_when_the_store_keeps_one_version() {
    // `periodic` with one version retained coalesces; many writers of
    // one key queue behind each entry, and all of them are answered.
    let tmp = tempfile::tempdir().unwrap();
    let log = LogConfig { durability: Durability::periodic_default(), ..LogConfig::default() };
    let mut store = StoreOptions { log, ..StoreOptions::default() };
    store.retention.versions = Some(1);
    let node = Arc::new(Node::open(tmp.path(), NodeOptions { store, ..NodeOptions::default() }).unwrap());
    assert!(node.store().coalesces(), "periodic with one version kept coalesces");
    let pipeline = Pipeline::start(node, None, PipelineOptions::default());
    let (me, s) = (signer(4), stream(7));
    const WRITERS: usize = 8;
    const EACH: usize = 200;
    std::thread::scope(|sc| {
        for t in 0..WRITERS {
            let (pipeline, me) = (&pipeline, &me);
            sc.spawn(move || {
                for i in 0..EACH {
                    let txs = vec![body(s, vec![(b"hot", Op::Put(format!("{t}-{i}").into_bytes().into()))])];
                    let a = pipeline.write_blocking(Write::Local { signer: me.clone(), txs }).unwrap();
                    assert_eq!(a.outcome, EntryOutcome::Applied(vec![Some(TxResult::Commit)]));
                }
            });
        }
    });
    let node = pipeline.node().clone();
    assert!(node.local_txs() <= (WRITERS * EACH) as u64);
    assert!(node.get(&s, b"hot", None).unwrap().is_some());
    drop(node);
    close(pipeline);
}

#[test]
fn writers_wait_for_room_and_the_queue_never_holds_more_than_its_bound() {
    // A bound smaller than two writes: at most one is queued or in flight.
    let node = open_in(Arc::new(SimFs::new()), Path::new("/n"), Durability::Always);
    let bound = 6_000;
    let pipeline = Pipeline::start(node, None, PipelineOptions { queue_bytes: bound });
    let (me, s) = (signer(4), stream(7));
    let stop = std::sync::atomic::AtomicBool::new(false);
    let most = std::thread::scope(|sc| {
        let watcher = sc.spawn(|| {
            let mut most = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                most = most.max(pipeline.queued_bytes());
                std::thread::yield_now();
            }
            most
        });
        let writers: Vec<_> = (0..8u8)
            .map(|t| {
                let (pipeline, me) = (&pipeline, &me);
                sc.spawn(move || {
                    for i in 0..50u32 {
                        let key = format!("{t}-{i}").into_bytes();
                        let txs = vec![body(s, vec![(&key, Op::Put(vec![t; 4_000].into()))])];
                        pipeline.write_blocking(Write::Local { signer: me.clone(), txs }).unwrap();
                    }
                })
            })
            .collect();
        writers.into_iter().for_each(|w| w.join().unwrap());
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        watcher.join().unwrap()
    });
    assert!(most > 0 && most <= bound, "the queue held {most} bytes with a bound of {bound}");
    assert_eq!(pipeline.node().local_txs(), 400, "every write went through");
    assert_eq!(pipeline.node().entries_signed(), 400, "one write at a time fits: no entry is shared");
    close(pipeline);
}
