//! Quotas on what a stranger can grow (`docs/runtime.md`, "Quotas"): two
//! nodes of one shared log refuse the same transactions with the same
//! results and end with the same digest, across a restart; and a flood of
//! fresh senders stops growing a node's memory at the window quota.

mod support;

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use logkv_fs::SimFs;
use logkv_runtime::apply::Watched;
use logkv_runtime::codec::ControlOp;
use logkv_runtime::node::{Node, NodeOptions};
use logkv_runtime::quota::{QuotaUsage, Quotas};
use logkv_runtime::shared_log::{MemLog, SharedLog};
use logkv_runtime::signing::Signer;
use logkv_runtime::types::{tx_version, StreamId};
use logkv_store::{Durability, LogConfig, RecoveryMode, StoreOptions};
use support::{control, controls, puts, signed, signer, stream, zwrite};

fn open(fs: &SimFs, dir: &str, quotas: Quotas) -> Node {
    let log = LogConfig {
        segment_size_bytes: 1 << 16,
        durability: Durability::None,
        recovery: RecoveryMode::Strict,
    };
    let store = StoreOptions { fs: Arc::new(fs.clone()), log, ..StoreOptions::default() };
    let options = NodeOptions { store, watched: Watched::All, quotas, ..NodeOptions::default() };
    Node::open(Path::new(dir), options).expect("open node")
}

fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime").block_on(f)
}

/// The `n`th of as many distinct senders as a stranger likes: fresh keys
/// cost nothing.
fn stranger(n: u32) -> Signer {
    let mut secret = [0x11; 32];
    secret[28..].copy_from_slice(&n.to_be_bytes());
    Signer::from_secret_bytes(secret).expect("a valid secret")
}

/// One entry writing `key` on `s`, by `who` at nonce 1.
fn write(who: &Signer, s: StreamId) -> Bytes {
    signed(who, 1, vec![puts(vec![zwrite(s, b"k", b"v")])]).into()
}

const QUOTAS: Quotas = Quotas { windows: 8, windows_per_sender: 3, streams: 4, acl_bytes: 10 * 128 };

/// A log that crosses every quota of [`QUOTAS`], and the result each of
/// its entries must get.
fn hostile_log() -> Vec<(Bytes, &'static str)> {
    let (two, three) = (signer(2), signer(3));
    let grants = |n: u8| {
        let ops = (0..n)
            .map(|i| control(ControlOp::GrantWriteRole, stream(13), None, Some(signer(40 + i).address())));
        controls(ops.collect())
    };
    let mut log = vec![
        // Signer 2 claims three streams (three windows), then may use no
        // fourth: its own window quota.
        (write(&two, stream(10)), "Commit"),
        (signed(&two, 2, vec![puts(vec![zwrite(stream(11), b"k", b"v")])]).into(), "Commit"),
        (signed(&two, 3, vec![puts(vec![zwrite(stream(12), b"k", b"v")])]).into(), "Commit"),
        (
            signed(&two, 4, vec![puts(vec![zwrite(stream(13), b"k", b"v")])]).into(),
            "QuotaExceeded: anti-replay windows of the sender",
        ),
        // Signer 3 claims the fourth stream; a fifth is past the stream
        // quota (its window is recorded: windows 5).
        (write(&three, stream(13)), "Commit"),
        (
            signed(&three, 2, vec![puts(vec![zwrite(stream(14), b"k", b"v")])]).into(),
            "QuotaExceeded: streams",
        ),
        // Four admins hold 512 access-control bytes: ten more roles do not
        // fit in 1,280, six do.
        (signed(&three, 3, vec![grants(10)]).into(), "QuotaExceeded: access-control bytes"),
        (signed(&three, 4, vec![grants(6)]).into(), "Commit"),
    ];
    // Strangers write a stream they have no right to: each costs a window
    // all the same, until the node holds eight.
    for n in 0..6 {
        let result = if n < 3 { "SenderNoWritePermission" } else { "QuotaExceeded: anti-replay windows" };
        log.push((write(&stranger(n), stream(13)), result));
    }
    log
}

#[test]
fn two_nodes_of_a_shared_log_refuse_the_same_entries_past_a_quota() {
    let entries = hostile_log();
    let bytes: Vec<Bytes> = entries.iter().map(|(e, _)| e.clone()).collect();
    let (first, rest) = bytes.split_at(bytes.len() / 2);
    let log = MemLog::new("quotas");
    let fs = SimFs::new();
    let a = open(&fs, "/a", QUOTAS);
    let mut b = open(&fs, "/b", QUOTAS);
    run(log.append(first)).unwrap();
    run(a.catch_up(&log, 64)).unwrap();
    run(b.catch_up(&log, 1)).unwrap();
    // B restarts half way: its counts come back from what it stored.
    b.close().unwrap();
    b = open(&fs, "/b", QUOTAS);
    run(log.append(rest)).unwrap();
    run(a.catch_up(&log, 64)).unwrap();
    run(b.catch_up(&log, 1)).unwrap();
    for (p, (_, want)) in (1..).zip(&entries) {
        let v = tx_version(p, 0);
        assert_eq!(a.result(v).unwrap().as_deref(), Some(*want), "node a at position {p}");
        assert_eq!(b.result(v).unwrap().as_deref(), Some(*want), "node b at position {p}");
        assert_eq!(a.digest_at(Some(v)).unwrap(), b.digest_at(Some(v)).unwrap(), "digest at {p}");
    }
    let usage = QuotaUsage { windows: 8, streams: 4, acl_bytes: 10 * 128 };
    assert_eq!(a.quota_usage(), usage);
    assert_eq!(b.quota_usage(), usage);
    assert_eq!(a.state_digest(), b.state_digest());
    assert_eq!(a.get(&stream(14), b"k", None).unwrap(), None, "the refused claim wrote nothing");
}

#[test]
fn a_flood_of_fresh_senders_stops_growing_the_node_at_the_window_quota() {
    const WINDOWS: u64 = 500;
    let quotas = Quotas { windows: WINDOWS, ..Quotas::default() };
    let node = open(&SimFs::new(), "/n", quotas);
    let s = stream(5);
    let before = node.store().index_bytes();
    for n in 0..WINDOWS as u32 {
        node.submit(&write(&stranger(n), s)).unwrap();
    }
    let full = node.store().index_bytes();
    assert_eq!(node.quota_usage().windows, WINDOWS);
    for n in WINDOWS as u32..3 * WINDOWS as u32 {
        let applied = node.submit(&write(&stranger(n), s)).unwrap();
        let result = node.result(applied.version).unwrap();
        assert_eq!(result.as_deref(), Some("QuotaExceeded: anti-replay windows"));
    }
    assert_eq!(node.quota_usage().windows, WINDOWS, "no window past the quota");
    assert_eq!(node.store().index_bytes(), full, "the index holds no key past the quota");
    let per_window = (full - before) / WINDOWS as usize;
    println!("index bytes per sender with one window: {per_window}");
    assert!(per_window < 256, "a window's index entry is small: {per_window} bytes");
}

#[test]
fn a_flood_of_new_streams_stops_growing_the_node_at_the_stream_quota() {
    const STREAMS: u64 = 200;
    let quotas = Quotas { streams: STREAMS, ..Quotas::default() };
    let node = open(&SimFs::new(), "/n", quotas);
    let claim = |n: u32| {
        let mut id = [0x22; 32];
        id[28..].copy_from_slice(&n.to_be_bytes());
        node.submit(&write(&stranger(n), StreamId(id))).unwrap()
    };
    let before = node.store().index_bytes();
    for n in 0..STREAMS as u32 {
        claim(n);
    }
    let full = node.store().index_bytes();
    assert_eq!(node.quota_usage().streams, STREAMS);
    for n in STREAMS as u32..3 * STREAMS as u32 {
        let result = node.result(claim(n).version).unwrap();
        assert_eq!(result.as_deref(), Some("QuotaExceeded: streams"));
    }
    assert_eq!(node.quota_usage().streams, STREAMS, "no stream past the quota");
    let per_stream = (full - before) / STREAMS as usize;
    println!("index bytes per claimed stream with one key: {per_stream}");
    // A refused claim still costs its fresh sender a window, one small
    // index key (bounded by the window quota), and no stream index.
    let per_refused = (node.store().index_bytes() - full) / (2 * STREAMS as usize);
    assert!(per_refused < 128, "a refused claim grew the index by {per_refused} bytes");
}
