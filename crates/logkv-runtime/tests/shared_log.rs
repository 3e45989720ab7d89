//! Nodes following a shared log (`Node::catch_up` over a `MemLog`): the
//! same log gives the same state however it is taken in, across restarts,
//! and forged entries are rejected alike.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use logkv_fs::SimFs;
use logkv_runtime::apply::Watched;
use logkv_runtime::node::{Node, NodeError, NodeOptions};
use logkv_runtime::shared_log::{Log, MemLog, SharedLogError};
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

    fn entries(&mut self, n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|_| self.next()).collect()
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

#[test]
fn two_nodes_catching_up_from_one_log_agree_and_a_second_call_applies_nothing() {
    let log = MemLog::new();
    let mut w = Writer::default();
    log.append(&w.entries(700)).unwrap();
    let fs = SimFs::new();
    let (a, b) = (open(&fs, "/a"), open(&fs, "/b"));
    assert_eq!(a.catch_up(&log, 1000).unwrap(), 700);
    assert_eq!(b.catch_up(&log, 7).unwrap(), 700);
    assert_same(&a, &b, 700);
    assert_eq!(a.digest_at(None).unwrap(), a.digest_at(Some(tx_version(700, u16::MAX))).unwrap());
    assert_eq!(a.entries_applied(), 700);
    assert_eq!(a.signatures_verified(), 700);
    assert_eq!(a.catch_up(&log, 1000).unwrap(), 700, "idempotent");
    assert_eq!(a.entries_applied(), 700);
    assert_eq!(a.signatures_verified(), 700);
    assert!(
        a.result(tx_version(1, 0)).unwrap().as_deref() == Some("Commit"),
        "the first write creates the stream"
    );
}

#[test]
fn catching_up_in_steps_while_the_log_grows_equals_catching_up_once() {
    let log = MemLog::new();
    let mut w = Writer::default();
    let fs = SimFs::new();
    let steps = open(&fs, "/steps");
    assert_eq!(steps.catch_up(&log, 4).unwrap(), 0, "empty log");
    for n in [1, 3, 10, 0, 57, 2] {
        log.append(&w.entries(n)).unwrap();
        assert_eq!(steps.catch_up(&log, 4).unwrap(), log.tail().unwrap());
    }
    let once = open(&fs, "/once");
    let tail = once.catch_up(&log, 100).unwrap();
    assert_eq!(tail, 73);
    assert_same(&steps, &once, tail);
    assert_eq!(steps.entries_applied(), tail);
}

#[test]
fn a_restarted_node_resumes_from_its_replay_progress() {
    let log = MemLog::new();
    let mut w = Writer::default();
    log.append(&w.entries(40)).unwrap();
    let fs = SimFs::new();
    let node = open(&fs, "/r");
    assert_eq!(node.catch_up(&log, 16).unwrap(), 40);
    node.close().unwrap();
    log.append(&w.entries(25)).unwrap();

    let node = open(&fs, "/r");
    assert_eq!(node.replay_progress().applied_position, 40);
    assert_eq!(node.catch_up(&log, 16).unwrap(), 65);
    assert_eq!(node.entries_applied(), 25, "only the new entries");
    assert_eq!(node.signatures_verified(), 25);

    let reference = open(&fs, "/ref");
    reference.catch_up(&log, 1000).unwrap();
    assert_same(&node, &reference, 65);
    node.close().unwrap();
    let node = open(&fs, "/r");
    assert_eq!(node.catch_up(&log, 16).unwrap(), 65);
    assert_eq!(node.entries_applied(), 0, "nothing left after a reopen");
}

#[test]
fn a_forged_entry_in_the_log_is_rejected_alike_by_every_follower() {
    let log = MemLog::new();
    let mut w = Writer::default();
    log.append(&w.entries(5)).unwrap();
    let genuine = w.next();
    let forgery = forged(&genuine, &signer(9));
    let at = log.append(&[forgery]).unwrap()[0];
    log.append(&w.entries(5)).unwrap();
    let fs = SimFs::new();
    let (a, b) = (open(&fs, "/a"), open(&fs, "/b"));
    a.catch_up(&log, 1).unwrap();
    b.catch_up(&log, 64).unwrap();
    for node in [&a, &b] {
        assert_eq!(node.result(tx_version(at, 0)).unwrap().as_deref(), Some("BadSignature"));
    }
    assert_same(&a, &b, log.tail().unwrap());
}

/// A log that skips a position when read.
struct Gappy(MemLog);

impl Log for Gappy {
    fn append(&self, entries: &[Vec<u8>]) -> Result<Vec<u64>, SharedLogError> {
        self.0.append(entries)
    }
    fn read(&self, from: u64, max: usize) -> Result<Vec<(u64, Vec<u8>)>, SharedLogError> {
        let mut out = self.0.read(from, max.saturating_add(1))?;
        if out.len() > 1 {
            out.remove(1);
        }
        Ok(out)
    }
    fn tail(&self) -> Result<u64, SharedLogError> {
        self.0.tail()
    }
}

#[test]
fn a_log_that_skips_positions_is_refused_and_nothing_past_the_gap_is_applied() {
    let log = Gappy(MemLog::new());
    log.append(&Writer::default().entries(6)).unwrap();
    let node = open(&SimFs::new(), "/g");
    let err = node.catch_up(&log, 4).unwrap_err();
    assert!(matches!(err, NodeError::SharedLog(SharedLogError::Inconsistent(_))), "{err}");
    assert_eq!(node.replay_progress().applied_position, 0);
    assert_eq!(node.entries_applied(), 0);
}
