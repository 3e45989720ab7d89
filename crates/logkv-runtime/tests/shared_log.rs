//! Nodes following a shared log (`Node::follow`, `Node::catch_up`) on the
//! in-memory log and on the file log of entries: the same log gives the
//! same state and the same stored log times however it is taken in,
//! across restarts; forged entries are rejected alike; a trimmed log is refused
//! rather than skipped; the logs keep the trait's contract.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use logkv_fs::SimFs;
use logkv_runtime::apply::Watched;
use logkv_runtime::envelope::PROTOCOL_VERSION;
use logkv_runtime::node::follow::CATCH_UP_BATCHES;
use logkv_runtime::node::{Node, NodeError, NodeOptions};
use logkv_runtime::shared_log::{FileEntryLog, Follower, LogEntry, MemLog, SharedLog, SharedLogError};
use logkv_runtime::types::tx_version;
use logkv_store::{Durability, LogConfig, RecoveryMode, StoreOptions};
use support::{forged, puts, signed, signer, stream, zwrite};

fn open(fs: &SimFs, dir: &str) -> Node {
    let log = LogConfig {
        segment_size_bytes: 1 << 16,
        durability: Durability::None,
        recovery: RecoveryMode::Strict,
    };
    let store = StoreOptions { fs: Arc::new(fs.clone()), log, ..StoreOptions::default() };
    Node::open(Path::new(dir), NodeOptions { store, watched: Watched::All, ..NodeOptions::default() })
        .expect("open node")
}

/// Builds entries by a few signers over two streams; every fifth has two
/// transactions, and some writes are refused (no permission).
#[derive(Default)]
struct Writer {
    nonces: BTreeMap<u8, u64>,
    count: u64,
}

impl Writer {
    fn next(&mut self) -> Vec<u8> {
        let k = self.count;
        self.count += 1;
        let who = 1 + (k % 3) as u8;
        let nonce = self.nonces.entry(who).or_insert(0);
        *nonce += 1;
        let s = stream(7 + (k % 2) as u8);
        let key = format!("k{}", k % 11).into_bytes();
        let value = format!("v{k}").into_bytes();
        let mut txs = vec![puts(vec![zwrite(s, &key, &value)])];
        if k.is_multiple_of(5) {
            txs.push(puts(vec![zwrite(stream(9), &key, &value)]));
        }
        signed(&signer(who), *nonce, txs)
    }

    fn entries(&mut self, n: usize) -> Vec<Bytes> {
        (0..n).map(|_| self.next().into()).collect()
    }
}

/// The results and digests of both nodes agree at every position up to
/// `tail`, and their values at the end.
fn assert_same(a: &Node, b: &Node, tail: u64) {
    for p in 1..=tail {
        for i in 0..2 {
            let v = tx_version(p, i);
            assert_eq!(a.result(v).unwrap(), b.result(v).unwrap(), "result at {p}.{i}");
        }
        assert!(a.result(tx_version(p, 0)).unwrap().is_some(), "position {p} applied");
        let v = Some(tx_version(p, u16::MAX));
        assert_eq!(a.digest_at(v).unwrap(), b.digest_at(v).unwrap(), "digest at {p}");
    }
    for s in [stream(7), stream(8), stream(9)] {
        for k in 0..11 {
            let key = format!("k{k}").into_bytes();
            assert_eq!(a.get(&s, &key, None).unwrap(), b.get(&s, &key, None).unwrap());
        }
    }
    assert_eq!(a.digest_at(None).unwrap(), b.digest_at(None).unwrap());
    assert_eq!(a.replay_progress(), b.replay_progress());
}

/// Runs `f` to completion on a current-thread runtime (blocking work of
/// the file log goes to its blocking pool).
fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime").block_on(f)
}

/// Every entry of `log` from `from` to the tail, as followers hand them.
async fn read_all<L: SharedLog>(log: &L, from: u64) -> Vec<LogEntry> {
    let tail = log.tail().await.unwrap();
    let mut follower = log.follow(from, &Watched::All);
    let mut out: Vec<LogEntry> = Vec::new();
    let mut through = from - 1;
    while through < tail {
        let batch = follower.next(5).await.unwrap();
        assert!(batch.entries.len() <= 5, "bounded batches");
        through = batch.through;
        out.extend(batch.entries);
    }
    out
}

/// The trait's contract, on any log: positions from 1, batches bounded,
/// log times never decreasing, trims refusing a hole, a follower below
/// the first position stopped with `Trimmed`.
async fn contract<L: SharedLog>(log: &L) {
    assert_eq!(log.tail().await.unwrap(), 0);
    assert_eq!(log.first_position().await.unwrap(), 1);
    let e = |i: u32| Bytes::from(format!("entry {i}"));
    assert_eq!(log.append(&[e(1), e(2)]).await.unwrap(), vec![1, 2]);
    assert_eq!(log.append(&[]).await.unwrap(), Vec::<u64>::new());
    let more: Vec<Bytes> = (3..=200).map(e).collect();
    assert_eq!(log.append(&more).await.unwrap(), (3..=200).collect::<Vec<u64>>());
    assert_eq!(log.tail().await.unwrap(), 200);
    let all = read_all(log, 1).await;
    assert_eq!(all.iter().map(|x| x.position).collect::<Vec<_>>(), (1..=200).collect::<Vec<u64>>());
    assert!(all.iter().all(|x| x.bytes == e(x.position as u32)));
    assert!(all.windows(2).all(|w| w[0].time_ms <= w[1].time_ms), "log times never decrease");
    assert_eq!(read_all(log, 130).await, all[129..].to_vec(), "from the middle");
    assert_eq!(read_all(log, 64).await, all[63..].to_vec(), "from a mark");

    // A follower at the tail waits, then hands over what comes.
    let mut follower = log.follow(201, &Watched::All);
    let last = [e(201)];
    let (batch, positions) = tokio::join!(follower.next(10), log.append(&last));
    assert_eq!(positions.unwrap(), vec![201]);
    let batch = batch.unwrap();
    assert_eq!((batch.entries.len(), batch.through), (1, 201));
    assert_eq!(batch.entries[0].bytes, e(201));

    let refused = log.trim_below(203).await.unwrap_err();
    assert!(matches!(refused, SharedLogError::Refused(_)), "{refused}");
    let removed = log.trim_below(150).await.unwrap();
    let first = log.first_position().await.unwrap();
    assert_eq!(removed, first - 1);
    assert!(first <= 150, "nothing at or above the point is removed");
    assert_eq!(
        read_all(log, 150).await,
        all[149..].iter().cloned().chain([batch.entries[0].clone()]).collect::<Vec<_>>()
    );
    if first > 1 {
        let err = log.follow(first - 1, &Watched::All).next(10).await.unwrap_err();
        assert_eq!(err, SharedLogError::Trimmed { first_kept: first, needed: first - 1 });
    }
}

#[test]
fn the_memory_log_keeps_the_contract() {
    let log = MemLog::new("contract");
    run(contract(&log));
    assert_eq!(log.identity(), "mem:contract");
    assert_eq!(run(log.first_position()).unwrap(), 150, "memory trims exactly");
}

#[test]
fn the_file_log_keeps_the_contract_and_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let log = FileEntryLog::open(&path).unwrap();
    run(contract(&log));
    assert_eq!(log.identity(), format!("file:{}", path.canonicalize().unwrap().display()));
    let before = run(read_all(&log, run(log.first_position()).unwrap()));
    let same = FileEntryLog::open(&path).unwrap();
    assert_eq!(run(same.tail()).unwrap(), 201, "a second open in one process shares the log");
    drop((log, same));
    let reopened = FileEntryLog::open(&path).unwrap();
    assert_eq!(run(reopened.tail()).unwrap(), 201);
    assert_eq!(
        run(read_all(&reopened, run(reopened.first_position()).unwrap())),
        before,
        "times and bytes kept"
    );
    assert_eq!(run(reopened.append(&[Bytes::from_static(b"next")])).unwrap(), vec![202]);
}

#[test]
fn the_file_log_trims_whole_segments_and_remembers_where_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let log = FileEntryLog::open(&path).unwrap();
    // 1 MiB entries: a 16 MiB segment holds fifteen.
    let big = Bytes::from(vec![7u8; 1 << 20]);
    for _ in 0..40 {
        run(log.append(std::slice::from_ref(&big))).unwrap();
    }
    let removed = run(log.trim_below(35)).unwrap();
    let first = run(log.first_position()).unwrap();
    assert!(removed > 0 && first == removed + 1 && first <= 35, "removed {removed}, first {first}");
    drop(log);
    let log = FileEntryLog::open(&path).unwrap();
    assert_eq!(run(log.first_position()).unwrap(), first);
    let read = run(read_all(&log, first));
    assert_eq!(read.len() as u64, 41 - first);
    assert!(read.iter().all(|e| e.bytes == big));
}

#[test]
fn a_second_process_cannot_open_a_file_log() {
    // The lock is per open file: a fresh lock of the same file, as another
    // process would take, is refused while the log is open.
    let dir = tempfile::tempdir().unwrap();
    let _log = FileEntryLog::open(dir.path()).unwrap();
    let fs = logkv_fs::StdFs;
    let held = logkv_fs::FileSystem::lock(&fs, &dir.path().canonicalize().unwrap().join("LOCK"), "test");
    assert!(held.is_err(), "the lock is held");
}

/// Two nodes following `log` (one in big batches, one in small ones)
/// reach the same results, digests and values, and store the log's time
/// of every entry with it.
fn two_nodes_agree<L: SharedLog>(log: &L) {
    let mut w = Writer::default();
    for chunk in 0..7 {
        run(log.append(&w.entries(100 + chunk))).unwrap();
    }
    let tail = run(log.tail()).unwrap();
    let fs = SimFs::new();
    let (a, b) = (open(&fs, "/a"), open(&fs, "/b"));
    let follow = |node: &Node, batch: usize| {
        let mut following = node.follow(log, &Watched::All);
        while following.through() < tail {
            let step = run(following.step(node, batch)).unwrap();
            assert_eq!(step.entries.len(), step.applied.len());
            assert!(step.entries.len() <= batch, "bounded batches");
        }
    };
    follow(&a, 1000);
    follow(&b, 7);
    assert_same(&a, &b, tail);
    // Each node's record of position p is its p-th (both followed the log
    // from its start), holding the entry's log time.
    let times: Vec<u64> = run(read_all(log, 1)).iter().map(|e| e.time_ms).collect();
    for node in [&a, &b] {
        let stored: Vec<u64> =
            (1..=tail).map(|p| node.store().time_of_position(p).unwrap().unwrap()).collect();
        assert_eq!(stored, times, "the log's times, stored by the node");
    }
    assert_eq!(a.digest_at(None).unwrap(), a.digest_at(Some(tx_version(tail, u16::MAX))).unwrap());
    assert_eq!(a.entries_applied(), tail);
    assert_eq!(run(a.catch_up(log, 1000)).unwrap(), tail, "idempotent");
    assert_eq!(a.entries_applied(), tail);
    let first = a.result(tx_version(1, 0)).unwrap();
    assert_eq!(first.as_deref(), Some("Commit"), "the first write creates the stream");
}

#[test]
fn two_nodes_on_one_memory_log_agree_on_state_and_log_times() {
    two_nodes_agree(&MemLog::new("two"));
}

#[test]
fn two_nodes_on_one_file_log_agree_on_state_and_log_times() {
    let dir = tempfile::tempdir().unwrap();
    two_nodes_agree(&FileEntryLog::open(dir.path()).unwrap());
}

#[test]
fn nodes_on_threads_writing_through_one_file_log_agree() {
    // Each thread appends its own signer's entries while its node follows
    // the log; all end with the same state.
    let dir = tempfile::tempdir().unwrap();
    let log = FileEntryLog::open(dir.path()).unwrap();
    let fs = SimFs::new();
    let per_writer = 60;
    let threads: Vec<_> = (1..=3u8)
        .map(|who| {
            let (log, fs) = (log.clone(), fs.clone());
            std::thread::spawn(move || {
                let node = open(&fs, &format!("/n{who}"));
                for nonce in 1..=per_writer {
                    let key = format!("k{}", nonce % 5).into_bytes();
                    let entry =
                        signed(&signer(who), nonce, vec![puts(vec![zwrite(stream(who), &key, &[who])])]);
                    run(log.append(&[entry.into()])).unwrap();
                    run(node.catch_up(&log, 16)).unwrap();
                }
                node
            })
        })
        .collect();
    let nodes: Vec<Node> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let tail = run(log.tail()).unwrap();
    assert_eq!(tail, 3 * per_writer);
    for node in &nodes {
        run(node.catch_up(&log, 64)).unwrap();
        assert_eq!(node.state_digest(), nodes[0].state_digest());
        for who in 1..=3u8 {
            assert_eq!(node.get(&stream(who), b"k0", None).unwrap().map(|(v, _)| v), Some(vec![who]));
        }
    }
}

#[test]
fn catching_up_in_steps_while_the_log_grows_equals_catching_up_once() {
    let log = MemLog::new("steps");
    let mut w = Writer::default();
    let fs = SimFs::new();
    let steps = open(&fs, "/steps");
    assert_eq!(run(steps.catch_up(&log, 4)).unwrap(), 0, "empty log");
    for n in [1, 3, 10, 0, 57, 2] {
        run(log.append(&w.entries(n))).unwrap();
        assert_eq!(run(steps.catch_up(&log, 4)).unwrap(), run(log.tail()).unwrap());
    }
    let once = open(&fs, "/once");
    let tail = run(once.catch_up(&log, 100)).unwrap();
    assert_eq!(tail, 73);
    assert_same(&steps, &once, tail);
    assert_eq!(steps.entries_applied(), tail);
}

#[test]
fn a_restarted_node_resumes_from_its_replay_progress() {
    let log = MemLog::new("restart");
    let mut w = Writer::default();
    run(log.append(&w.entries(40))).unwrap();
    let fs = SimFs::new();
    let node = open(&fs, "/r");
    assert_eq!(run(node.catch_up(&log, 16)).unwrap(), 40);
    node.close().unwrap();
    run(log.append(&w.entries(25))).unwrap();

    let node = open(&fs, "/r");
    assert_eq!(node.replay_progress().applied_position, 40);
    assert_eq!(run(node.catch_up(&log, 16)).unwrap(), 65);
    assert_eq!(node.entries_applied(), 25, "only the new entries");
    assert_eq!(node.signatures_verified(), 25);

    let reference = open(&fs, "/ref");
    run(reference.catch_up(&log, 1000)).unwrap();
    assert_same(&node, &reference, 65);
    node.close().unwrap();
    let node = open(&fs, "/r");
    assert_eq!(run(node.catch_up(&log, 16)).unwrap(), 65);
    assert_eq!(node.entries_applied(), 0, "nothing left after a reopen");
}

#[test]
fn a_forged_entry_in_the_log_is_rejected_alike_by_every_follower() {
    let log = MemLog::new("forged");
    let mut w = Writer::default();
    run(log.append(&w.entries(5))).unwrap();
    let genuine = w.next();
    let forgery = forged(&genuine, &signer(9));
    let at = run(log.append(&[forgery.into()])).unwrap()[0];
    run(log.append(&w.entries(5))).unwrap();
    let fs = SimFs::new();
    let (a, b) = (open(&fs, "/a"), open(&fs, "/b"));
    run(a.catch_up(&log, 1)).unwrap();
    run(b.catch_up(&log, 64)).unwrap();
    for node in [&a, &b] {
        assert_eq!(node.result(tx_version(at, 0)).unwrap().as_deref(), Some("BadSignature"));
    }
    assert_same(&a, &b, run(log.tail()).unwrap());
}

#[test]
fn a_node_behind_a_trim_is_stopped_and_applies_nothing_past_it() {
    let log = MemLog::new("trimmed");
    run(log.append(&Writer::default().entries(6))).unwrap();
    run(log.trim_below(4)).unwrap();
    let node = open(&SimFs::new(), "/g");
    let err = run(node.catch_up(&log, 4)).unwrap_err();
    assert!(
        matches!(err, NodeError::SharedLog(SharedLogError::Trimmed { first_kept: 4, needed: 1 })),
        "{err}"
    );
    assert_eq!(node.replay_progress().applied_position, 0);
    assert_eq!(node.entries_applied(), 0);
}

/// A [`MemLog`] whose followers count the entries they hand over and tell
/// `probe` the running total after each batch.
#[derive(Clone)]
struct Counting {
    log: MemLog,
    probe: Arc<dyn Fn(u64) + Send + Sync>,
}

struct CountingFollower {
    inner: logkv_runtime::shared_log::MemFollower,
    handed: u64,
    probe: Arc<dyn Fn(u64) + Send + Sync>,
}

impl Follower for CountingFollower {
    async fn next(&mut self, max: usize) -> Result<logkv_runtime::shared_log::Batch, SharedLogError> {
        let batch = self.inner.next(max).await?;
        self.handed += batch.entries.len() as u64;
        (self.probe)(self.handed);
        Ok(batch)
    }
}

impl SharedLog for Counting {
    type Follower = CountingFollower;
    type Reports = logkv_runtime::shared_log::BoardReports;

    async fn append(&self, entries: &[Bytes]) -> Result<Vec<u64>, SharedLogError> {
        self.log.append(entries).await
    }

    fn follow(&self, from: u64, watched: &Watched) -> CountingFollower {
        CountingFollower { inner: self.log.follow(from, watched), handed: 0, probe: self.probe.clone() }
    }

    async fn first_position(&self) -> Result<u64, SharedLogError> {
        self.log.first_position().await
    }

    async fn tail(&self) -> Result<u64, SharedLogError> {
        self.log.tail().await
    }

    async fn trim_below(&self, first_kept: u64) -> Result<u64, SharedLogError> {
        self.log.trim_below(first_kept).await
    }

    fn identity(&self) -> String {
        self.log.identity()
    }

    async fn publish_digest(
        &self,
        report: &logkv_runtime::divergence::DigestReport,
    ) -> Result<(), SharedLogError> {
        self.log.publish_digest(report).await
    }

    async fn digest_reports(&self) -> Result<Self::Reports, SharedLogError> {
        self.log.digest_reports().await
    }
}

#[test]
fn reading_ahead_holds_no_more_entries_than_its_bound() {
    // A reader that keeps what it takes (as a slow apply does) stops the
    // read-ahead at the bound, counting what both hold; every turn lets
    // the read-ahead task run until it cannot go on.
    let log = MemLog::new("ahead");
    let total = 500;
    run(log.append(&(0..total).map(|i| Bytes::from(format!("e{i}"))).collect::<Vec<_>>())).unwrap();
    let handed = Arc::new(AtomicU64::new(0));
    let counting = Counting {
        log,
        probe: Arc::new({
            let handed = handed.clone();
            move |n| handed.store(n, Ordering::SeqCst)
        }),
    };
    let node = open(&SimFs::new(), "/ahead");
    let (max, bound) = (10, 35);
    run(async {
        let runtime = tokio::runtime::Handle::current();
        let mut ahead = node.follow(&counting, &Watched::All).read_ahead(&runtime, max, bound);
        let (mut taken, mut kept) = (0, std::collections::VecDeque::new());
        while taken < total {
            let batch = ahead.next().await.unwrap();
            assert!(batch.entries.len() <= max);
            taken += batch.entries.len() as u64;
            kept.push_back(batch);
            for _ in 0..20 {
                tokio::task::yield_now().await;
            }
            let handed = handed.load(Ordering::SeqCst);
            let held = handed - taken + kept.iter().map(|b| b.entries.len() as u64).sum::<u64>();
            assert!(held <= bound as u64, "{held} entries held, bound {bound}");
            assert!(held > (bound - max) as u64 || handed == total, "reads ahead up to the bound: {held}");
            if kept.len() == 2 {
                kept.pop_front();
            }
        }
    });
}

#[test]
fn catching_up_reads_no_further_ahead_than_its_bound() {
    // Reading a memory log is far faster than verifying and applying
    // signed entries: without the bound the read-ahead would take the
    // whole log at once. What was handed over and not yet applied is
    // counted at every batch.
    let log = MemLog::new("bounded");
    let total = 400;
    run(log.append(&Writer::default().entries(total))).unwrap();
    let node = Arc::new(open(&SimFs::new(), "/bounded"));
    let most_ahead = Arc::new(AtomicU64::new(0));
    let counting = Counting {
        log,
        probe: Arc::new({
            let (node, most_ahead) = (node.clone(), most_ahead.clone());
            move |handed| {
                most_ahead.fetch_max(handed - node.entries_applied(), Ordering::SeqCst);
            }
        }),
    };
    let batch = 8;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    assert_eq!(runtime.block_on(node.catch_up(&counting, batch)).unwrap(), total as u64);
    assert_eq!(node.entries_applied(), total as u64);
    let bound = (CATCH_UP_BATCHES * batch) as u64;
    let most = most_ahead.load(Ordering::SeqCst);
    assert!(most <= bound, "{most} entries read ahead of apply, bound {bound}");
}

#[test]
fn an_entry_that_cannot_be_applied_stops_catching_up_after_the_ones_before_it() {
    // Batches of 8: the entry at 30 (of a newer protocol) is in the fourth,
    // while the third is syncing and the fifth verified. The reference
    // takes the same log one batch at a time, without the overlap.
    let log = MemLog::new("upgrade");
    let mut w = Writer::default();
    run(log.append(&w.entries(29))).unwrap();
    let mut newer = w.next();
    newer[4..6].copy_from_slice(&(PROTOCOL_VERSION + 1).to_be_bytes());
    run(log.append(&[newer.into()])).unwrap();
    run(log.append(&w.entries(10))).unwrap();
    let fs = SimFs::new();
    let (overlapped, stepped) = (open(&fs, "/overlapped"), open(&fs, "/stepped"));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    let err = runtime.block_on(overlapped.catch_up(&log, 8)).unwrap_err();
    assert!(matches!(err, NodeError::UpgradeNeeded(_)), "{err}");
    let mut following = stepped.follow(&log, &Watched::All);
    let err = loop {
        if let Err(e) = run(following.step(&stepped, 8)) {
            break e;
        }
    };
    assert!(matches!(err, NodeError::UpgradeNeeded(_)), "{err}");
    for node in [&overlapped, &stepped] {
        assert_eq!(node.replay_progress().applied_position, 29);
        assert_eq!(node.entries_applied(), 29);
    }
    assert_same(&overlapped, &stepped, 29);
}

#[test]
fn reading_ahead_hands_over_every_position_once_as_the_node_falls_behind_and_catches_up() {
    // Full batches move the reading to the task, a short one back to the
    // reader: appends of every size between reads to the tail switch
    // between the two.
    let log = MemLog::new("tail");
    let node = open(&SimFs::new(), "/tail");
    run(async {
        let runtime = tokio::runtime::Handle::current();
        let mut ahead = node.follow(&log, &Watched::All).read_ahead(&runtime, 10, 40);
        let mut seen = Vec::new();
        for n in [25, 3, 0, 47, 10, 1, 100] {
            let entries: Vec<Bytes> = (0..n).map(|i| Bytes::from(format!("e{i}"))).collect();
            log.append(&entries).await.unwrap();
            let tail = log.tail().await.unwrap();
            while seen.last().copied().unwrap_or(0) < tail {
                let batch = ahead.next().await.unwrap();
                assert!(batch.entries.len() <= 10);
                seen.extend(batch.entries.iter().map(|e| e.position));
            }
        }
        assert_eq!(seen, (1..=log.tail().await.unwrap()).collect::<Vec<u64>>());
    });
}
