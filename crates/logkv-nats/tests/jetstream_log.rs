//! `JetStreamLog` and `Follower` against a real nats-server (the binary
//! `LOGKV_NATS_SERVER` names, else Debian's; a missing server fails the
//! tests, it never skips them): the shared-log contract a node relies on
//! (positions, bounded reads from anywhere, idempotent appends, the size
//! limit, log times), a node catching up from JetStream agreeing with one
//! catching up from a `MemLog`, selective followers reading only their subjects (and
//! transferring only those bytes), misrouted messages dropped alike, live
//! tailing, appends surviving a crashed server of a 3-node cluster, and
//! trimming: exactly the positions below the point purged, and readers
//! (reads, followers, a node catching up) that need one of them stopped
//! with `SharedLogError::Trimmed` rather than skipping it.
//!
//! Waits are bounded (hang detectors); nothing asserts on time.

#[path = "../../logkv/tests/nats/mod.rs"]
mod nats;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use logkv_nats::{Follower, JetStreamLog, NatsConfig, OpenError};
use logkv_runtime::apply::Watched;
use logkv_runtime::codec::{native, NATIVE};
use logkv_runtime::envelope::{Entry, TxPart};
use logkv_runtime::node::{Node, NodeOptions};
use logkv_runtime::shared_log::{Batch, Follower as _, LogEntry, MemLog, SharedLog, SharedLogError};
use logkv_runtime::signing::Signer;
use logkv_runtime::types::StreamId;
use nats::Cluster;

/// Longest wait for anything that should come promptly: a hang detector.
const PATIENCE: Duration = Duration::from_secs(30);

fn config(cluster: &Cluster, stream: &str, replicas: usize) -> NatsConfig {
    NatsConfig::new(&cluster.urls(), stream, replicas).expect("a valid configuration")
}

fn open(cluster: &Cluster, stream: &str, replicas: usize) -> JetStreamLog {
    JetStreamLog::open(&config(cluster, stream, replicas)).expect("open the stream")
}

/// Runs one of the log's futures to completion from this thread.
fn wait<T>(log: &JetStreamLog, f: impl std::future::Future<Output = T>) -> T {
    log.handle().block_on(f)
}

fn append(log: &JetStreamLog, entries: &[Vec<u8>]) -> Result<Vec<u64>, SharedLogError> {
    let entries: Vec<Bytes> = entries.iter().map(|e| Bytes::from(e.clone())).collect();
    wait(log, log.append(&entries))
}

fn tail_of(log: &JetStreamLog) -> u64 {
    wait(log, log.tail()).expect("stream info")
}

fn trim(log: &JetStreamLog, first_kept: u64) -> Result<u64, SharedLogError> {
    wait(log, log.trim_below(first_kept))
}

/// The follower's next batch of at most `max` entries, or `None` if none
/// came within `patience`.
fn next_batch(
    log: &JetStreamLog,
    follower: &mut Follower,
    max: usize,
    patience: Duration,
) -> Result<Option<Batch>, SharedLogError> {
    wait(log, async { tokio::time::timeout(patience, follower.next(max)).await })
        .map_or(Ok(None), |r| r.map(Some))
}

/// The entries from `from` on, at most `max` of them and none past the
/// tail, as a follower of every stream hands them over.
fn read_from(log: &JetStreamLog, from: u64, max: usize) -> Result<Entries, SharedLogError> {
    let end = tail_of(log).min(from + max as u64 - 1);
    let mut follower = log.follow(from, &Watched::All);
    let mut out = Vec::new();
    let mut through = from - 1;
    while through < end {
        let batch = next_batch(log, &mut follower, max, PATIENCE)?.expect("a batch within PATIENCE");
        out.extend(owned(&batch.entries).into_iter().filter(|(p, _)| *p <= end));
        through = batch.through;
    }
    Ok(out)
}

fn stream_id(n: u8) -> StreamId {
    StreamId([n; 32])
}

/// Signs native puts, one signer per writer, nonces 1, 2, 3, ...
struct Writer {
    signer: Signer,
    nonce: u64,
}

impl Writer {
    fn new(n: u8) -> Self {
        Writer { signer: Signer::from_secret_bytes([n; 32]).expect("a valid secret"), nonce: 0 }
    }

    /// One entry of one transaction putting every `(stream, key, value)`:
    /// tagged with every stream it writes.
    fn put(&mut self, writes: &[(StreamId, &[u8], &[u8])]) -> Vec<u8> {
        self.nonce += 1;
        let writes = writes
            .iter()
            .map(|(stream, key, value)| native::BodyWrite {
                stream: *stream,
                key: key.to_vec(),
                op: native::Op::Put(value.to_vec().into()),
            })
            .collect();
        let body = native::Body { version: u64::MAX, writes, ..native::Body::default() };
        let tx = TxPart { codec: NATIVE, tags: body.tags(), body: native::encode(&body) };
        Entry { sender: self.signer.address(), nonce: self.nonce, txs: vec![tx] }
            .encode_signed(&self.signer)
            .expect("the entry encodes")
    }
}

/// Reads `follower` until its `through` reaches `upto`; every entry it
/// handed over, checking positions increase and never pass `upto`.
fn collect(log: &JetStreamLog, follower: &mut Follower, upto: u64) -> Vec<LogEntry> {
    let deadline = Instant::now() + PATIENCE;
    let mut out: Vec<LogEntry> = Vec::new();
    let mut through = 0;
    while through < upto {
        assert!(Instant::now() < deadline, "the follower reached {through}, not {upto}, within {PATIENCE:?}");
        let Some(batch) = next_batch(log, follower, 4096, Duration::from_secs(1)).expect("follow") else {
            continue;
        };
        assert!(batch.through >= through, "through went back from {through} to {}", batch.through);
        for e in batch.entries {
            let p = e.position;
            assert!(out.last().is_none_or(|q| q.position < p), "position {p} after {:?}", out.last());
            assert!(p <= batch.through, "entry {p} past through {}", batch.through);
            out.push(e);
        }
        through = batch.through;
    }
    assert!(out.last().is_none_or(|e| e.position <= upto), "an entry past {upto}");
    out
}

fn owned(entries: &[LogEntry]) -> Entries {
    entries.iter().map(|e| (e.position, e.bytes.to_vec())).collect()
}

#[test]
fn positions_reads_and_the_tail_follow_the_log_contract() {
    let cluster = Cluster::start(1);
    let log = open(&cluster, "contract", 1);
    assert_eq!(tail_of(&log), 0, "a new stream is empty");
    assert!(read_from(&log, 1, 10).unwrap().is_empty());

    let entries: Vec<Vec<u8>> = (0..12).map(|i| format!("entry {i}").into_bytes()).collect();
    let mut positions = append(&log, &entries[..5]).unwrap();
    positions.extend(append(&log, &entries[5..6]).unwrap());
    positions.extend(append(&log, &entries[6..]).unwrap());
    assert_eq!(positions.len(), 12);
    // One writer: the positions are 1..=12 (a batch's entries may land in
    // any order among themselves, each after the previous call's).
    let mut sorted = positions.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (1..=12).collect::<Vec<u64>>());
    assert!(positions[..5].iter().all(|p| *p <= 5) && positions[5] == 6);
    assert_eq!(tail_of(&log), 12);
    let by_position: BTreeMap<u64, Vec<u8>> =
        positions.iter().copied().zip(entries.iter().cloned()).collect();
    let expect = |from: u64, to: u64| -> Vec<(u64, Vec<u8>)> {
        by_position.range(from..=to).map(|(p, e)| (*p, e.clone())).collect()
    };

    assert_eq!(read_from(&log, 1, 100).unwrap(), expect(1, 12), "bounded by the tail");
    assert_eq!(read_from(&log, 1, 3).unwrap(), expect(1, 3));
    assert_eq!(read_from(&log, 4, 5).unwrap(), expect(4, 8), "bounded by max");
    assert_eq!(read_from(&log, 9, 2).unwrap(), expect(9, 10));
    assert_eq!(read_from(&log, 3, 4).unwrap(), expect(3, 6));
    assert_eq!(read_from(&log, 12, 10).unwrap(), expect(12, 12));
    assert_eq!(read_from(&log, 11, 1).unwrap(), expect(11, 11));
    assert!(read_from(&log, 13, 10).unwrap().is_empty(), "past the tail");

    // The log grows: a read from the old tail sees the new entries.
    let more = vec![b"thirteen".to_vec(), b"fourteen".to_vec()];
    let p = append(&log, &more).unwrap();
    assert_eq!(p.iter().copied().collect::<BTreeSet<u64>>(), BTreeSet::from([13, 14]));
    let got = read_from(&log, 13, 10).unwrap();
    assert_eq!(got.len(), 2);
    for (p, e) in p.iter().zip(&more) {
        assert!(got.contains(&(*p, e.clone())));
    }
    assert_eq!(tail_of(&log), 14);

    // A follower asked for fewer entries than it holds keeps the rest.
    let mut follower = log.follow(1, &Watched::All);
    let mut got = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    while got.len() < 14 {
        assert!(Instant::now() < deadline, "the follower handed over {} of 14 entries", got.len());
        if let Some(batch) = next_batch(&log, &mut follower, 3, Duration::from_secs(1)).unwrap() {
            assert!(batch.entries.len() <= 3);
            assert!(batch.entries.last().is_none_or(|e| e.position <= batch.through));
            got.extend(owned(&batch.entries));
        }
    }
    assert_eq!(got, read_from(&log, 1, 14).unwrap());

    // Another connection sees the same log, with the same log times: the
    // stream's timestamps, not the reader's clock.
    let other = open(&cluster, "contract", 1);
    assert_eq!(tail_of(&other), 14);
    assert_eq!(read_from(&other, 1, 12).unwrap(), expect(1, 12));
    let mine = collect(&log, &mut log.follow(1, &Watched::All), 14);
    let theirs = collect(&other, &mut other.follow(1, &Watched::All), 14);
    assert_eq!(mine, theirs, "the same entries and log times through both connections");
    let since_2020 = 1_577_836_800_000;
    assert!(mine.iter().all(|e| e.time_ms > since_2020), "log times are Unix milliseconds");
}

#[test]
fn appending_the_same_bytes_again_returns_the_first_position_and_stores_one_copy() {
    let cluster = Cluster::start(1);
    let log = open(&cluster, "idem", 1);
    let mut w = Writer::new(1);
    let (a, b) = (w.put(&[(stream_id(1), b"k", b"a")]), w.put(&[(stream_id(1), b"k", b"b")]));
    let first = append(&log, std::slice::from_ref(&a)).unwrap();
    assert_eq!(first, vec![1]);
    assert_eq!(append(&log, std::slice::from_ref(&b)).unwrap(), vec![2]);
    let again = append(&log, std::slice::from_ref(&a)).unwrap();
    assert_eq!(again, vec![1], "a retry of a stored entry gets its position");
    assert_eq!(append(&log, &[a.clone(), b.clone()]).unwrap(), vec![1, 2], "both again, in one call");
    assert_eq!(tail_of(&log), 2, "nothing stored twice");
    assert_eq!(read_from(&log, 1, 10).unwrap(), vec![(1, a), (2, b)]);
}

#[test]
fn an_entry_over_the_limit_is_refused_and_a_large_one_is_kept_whole() {
    let cluster = Cluster::start(1);
    let log = open(&cluster, "sizes", 1);
    let max = log.max_entry_bytes();
    assert!(max > (1 << 20) + 4096, "the cluster allows 8 MiB messages, the log takes {max} bytes");

    let too_big = vec![7u8; max + 1];
    match append(&log, std::slice::from_ref(&too_big)) {
        Err(SharedLogError::Refused(why)) => assert!(why.contains(&max.to_string()), "{why}"),
        other => panic!("expected Refused, got {other:?}"),
    }
    assert_eq!(tail_of(&log), 0, "nothing stored");

    // A 1 MiB value in a signed entry, and an entry of exactly the limit.
    let value = vec![0x5a; 1 << 20];
    let large = Writer::new(1).put(&[(stream_id(1), b"big", &value)]);
    assert!(large.len() > 1 << 20);
    let largest = vec![9u8; max];
    assert_eq!(append(&log, std::slice::from_ref(&large)).unwrap(), vec![1]);
    assert_eq!(append(&log, std::slice::from_ref(&largest)).unwrap(), vec![2]);
    let read = read_from(&log, 1, 10).unwrap();
    assert_eq!(read.len(), 2);
    assert!(read[0] == (1, large) && read[1] == (2, largest), "read back byte for byte");
}

#[test]
fn opening_an_existing_stream_with_other_replicas_is_a_mismatch() {
    let cluster = Cluster::start(1);
    let log = open(&cluster, "replicas", 1);
    append(&log, &[b"x".to_vec()]).unwrap();
    match JetStreamLog::open(&config(&cluster, "replicas", 3)) {
        Err(OpenError::Mismatch { stream, why }) => {
            assert_eq!(stream, "replicas");
            assert!(why.contains("1 replicas"), "{why}");
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }
    let again = open(&cluster, "replicas", 1);
    assert_eq!(tail_of(&again), 1, "the same settings open the same stream");

    // Appends retried longer than the default duplicate window: the
    // stream is created with a window that covers them.
    let mut patient = config(&cluster, "patient", 1);
    patient.append_deadline = Duration::from_secs(600);
    JetStreamLog::open(&patient).expect("a stream created for long retries");
    JetStreamLog::open(&patient).expect("and opened again");
}

/// Entries by three signers over streams 1 and 2, some tagging both.
fn workload(n: usize) -> Vec<Vec<u8>> {
    let mut writers: Vec<Writer> = (1..=3).map(Writer::new).collect();
    (0..n)
        .map(|i| {
            let w = &mut writers[i % 3];
            let key = format!("k{}", i % 7).into_bytes();
            let value = format!("v{i}").into_bytes();
            match i % 5 {
                0 => w.put(&[(stream_id(1), &key, &value), (stream_id(2), &key, &value)]),
                1 | 3 => w.put(&[(stream_id(1), &key, &value)]),
                _ => w.put(&[(stream_id(2), &key, &value)]),
            }
        })
        .collect()
}

fn open_node(dir: &std::path::Path) -> Node {
    Node::open(dir, NodeOptions::default()).expect("open the node")
}

/// Every key of the workload in both streams, as `node` has it.
fn values(node: &Node) -> Vec<Option<Vec<u8>>> {
    let mut out = Vec::new();
    for s in [stream_id(1), stream_id(2)] {
        for k in 0..7 {
            out.push(node.get(&s, format!("k{k}").as_bytes(), None).unwrap().map(|(v, _)| v));
        }
    }
    out
}

#[test]
fn a_node_catching_up_from_jetstream_agrees_with_one_catching_up_from_memory() {
    let cluster = Cluster::start(1);
    let log = open(&cluster, "catchup", 1);
    let entries = workload(90);
    let mut positions = Vec::new();
    for chunk in entries.chunks(25) {
        positions.extend(append(&log, chunk).unwrap());
    }
    // The same entries in the same order (by position) in memory.
    let mut ordered: Vec<(u64, &Vec<u8>)> = positions.iter().copied().zip(&entries).collect();
    ordered.sort_by_key(|(p, _)| *p);
    assert_eq!(ordered.iter().map(|(p, _)| *p).collect::<Vec<_>>(), (1..=90).collect::<Vec<u64>>());
    let mem = MemLog::new("catchup");
    let in_order: Vec<Bytes> = ordered.iter().map(|(_, e)| Bytes::from((*e).clone())).collect();
    wait(&log, mem.append(&in_order)).unwrap();

    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (from_js, from_mem) = (open_node(dirs.0.path()), open_node(dirs.1.path()));
    assert_eq!(wait(&log, from_js.catch_up(&log, 16)).unwrap(), 90);
    assert_eq!(wait(&log, from_mem.catch_up(&mem, 1000)).unwrap(), 90);
    assert_eq!(from_js.state_digest(), from_mem.state_digest());
    assert_ne!(from_js.state_digest().0, [0; 32], "the entries changed the state");
    assert_eq!(values(&from_js), values(&from_mem));
    // Signer 1 created both streams (the first entry) and alone may
    // write them: its last write of k6 in stream 1 is i = 48.
    assert_eq!(from_js.get(&stream_id(1), b"k6", None).unwrap().map(|(v, _)| v), Some(b"v48".to_vec()));
    assert_eq!(from_js.entries_applied(), 90);
    // Each entry's log time is the stream's timestamp, stored by the node.
    let times: Vec<u64> =
        collect(&log, &mut log.follow(1, &Watched::All), 90).iter().map(|e| e.time_ms).collect();
    let stored: Vec<u64> = (1..=90).map(|p| from_js.store().time_of_position(p).unwrap().unwrap()).collect();
    assert_eq!(stored, times, "the stream's timestamps, as the node stored them");

    // More entries later: a second call applies only those.
    let more = {
        let mut w = Writer::new(4);
        (0..10).map(|i| w.put(&[(stream_id(3), b"late", format!("{i}").as_bytes())])).collect::<Vec<_>>()
    };
    for e in &more {
        append(&log, std::slice::from_ref(e)).unwrap();
        wait(&log, mem.append(&[Bytes::from(e.clone())])).unwrap();
    }
    assert_eq!(wait(&log, from_js.catch_up(&log, 3)).unwrap(), 100);
    assert_eq!(wait(&log, from_mem.catch_up(&mem, 3)).unwrap(), 100);
    assert_eq!(from_js.entries_applied(), 100);
    assert_eq!(from_js.state_digest(), from_mem.state_digest());
    assert_eq!(from_js.get(&stream_id(3), b"late", None).unwrap().map(|(v, _)| v), Some(b"9".to_vec()));
}

#[test]
fn a_selective_follower_reads_its_streams_and_the_mixed_entries_only() {
    let cluster = Cluster::start(1);
    let log = open(&cluster, "selective", 1);
    let (a, b) = (stream_id(0xa), stream_id(0xb));
    let (mut wa, mut wb, mut wm) = (Writer::new(1), Writer::new(2), Writer::new(3));
    let big = vec![0xbb; 20 << 10];
    let mut a_entries = BTreeSet::new();
    let mut mixed_entries = BTreeSet::new();
    let mut b_bytes = 0;
    // B writes 200 entries of 20 KiB, A 20 small ones, 5 tag both.
    for i in 0..200u32 {
        let key = i.to_be_bytes();
        let mut batch = vec![wb.put(&[(b, &key, &big)])];
        b_bytes += batch[0].len();
        if i % 10 == 0 {
            let e = wa.put(&[(a, &key, b"small")]);
            a_entries.insert(e.clone());
            batch.push(e);
            let e = wa.put(&[(a, &key, b"small too")]);
            a_entries.insert(e.clone());
            batch.push(e);
        }
        if i % 40 == 0 {
            let e = wm.put(&[(a, &key, b"both"), (b, &key, b"both")]);
            mixed_entries.insert(e.clone());
            batch.push(e);
        }
        append(&log, &batch).unwrap();
    }
    assert_eq!((a_entries.len(), mixed_entries.len()), (40, 5));
    let tail = tail_of(&log);
    assert_eq!(tail, 245);
    let all = read_from(&log, 1, 1000).unwrap();
    assert_eq!(all.len(), 245);
    let wanted: Vec<(u64, Vec<u8>)> =
        all.iter().filter(|(_, e)| a_entries.contains(e) || mixed_entries.contains(e)).cloned().collect();
    assert_eq!(wanted.len(), 45);

    let only_a = Watched::Only(BTreeSet::from([a]));
    let got = collect(&log, &mut log.follow(1, &only_a), tail);
    assert_eq!(owned(&got), wanted, "A's entries and the mixed ones, in stream order");
    let got = collect(&log, &mut log.follow(1, &Watched::All), tail);
    assert_eq!(owned(&got), all, "everything");
    // From the middle.
    let got = collect(&log, &mut log.follow(100, &only_a), tail);
    let from_100: Vec<_> = wanted.iter().filter(|(p, _)| *p >= 100).cloned().collect();
    assert_eq!(owned(&got), from_100);

    // Selective transfer: a connection following A only receives far less
    // than B's entries weigh.
    let reader = open(&cluster, "selective", 1);
    let before = reader.received_bytes();
    let mut follower = reader.follow(1, &only_a);
    assert_eq!(owned(&collect(&log, &mut follower, tail)), wanted);
    let received = reader.received_bytes() - before;
    eprintln!("following A received {received} bytes; B's entries weigh {b_bytes}");
    assert!(received < (b_bytes / 10) as u64, "following A received {received} bytes of B's {b_bytes}");
    assert_eq!(follower.stats().misrouted.load(Ordering::Relaxed), 0);
    drop(follower);
    // The measure itself: following everything receives B's bytes.
    let before = reader.received_bytes();
    collect(&log, &mut reader.follow(1, &Watched::All), tail);
    assert!(reader.received_bytes() - before > b_bytes as u64);
}

#[test]
fn an_entry_published_on_the_wrong_subject_is_dropped_by_every_follower() {
    let cluster = Cluster::start(1);
    let log = open(&cluster, "misrouted", 1);
    let (a, b) = (stream_id(0xa), stream_id(0xb));
    let mut w = Writer::new(1);
    let mut mem_entries = Vec::new();
    for i in 0..3u8 {
        let batch = [w.put(&[(a, &[i], b"a")]), w.put(&[(b, &[i], b"b")])];
        append(&log, &batch).unwrap();
        mem_entries.extend(batch);
    }
    // A's entry, straight on B's subject, bypassing logkv.
    let stray = w.put(&[(a, b"stray", b"never applied")]);
    let wrong = log.subjects().single(&b);
    let at = log.handle().block_on(async {
        let client = async_nats::connect(cluster.url(1)).await.expect("connect");
        let js = async_nats::jetstream::new(client);
        js.publish(wrong, Bytes::from(stray.clone())).await.expect("publish").await.expect("ack").sequence
    });
    assert_eq!(at, 7);
    // What a shared log shows in its place: not an entry.
    mem_entries.push(Vec::new());
    for i in 3..5u8 {
        let batch = [w.put(&[(a, &[i], b"a")]), w.put(&[(b, &[i], b"b")])];
        append(&log, &batch).unwrap();
        mem_entries.extend(batch);
    }
    let tail = tail_of(&log);
    assert_eq!(tail, 11);

    for (watched, counted) in
        [(Watched::All, 1), (Watched::Only(BTreeSet::from([b])), 1), (Watched::Only(BTreeSet::from([a])), 0)]
    {
        let mut follower = log.follow(1, &watched);
        let got = collect(&log, &mut follower, tail);
        assert!(
            got.iter().all(|e| e.position != at && e.bytes[..] != stray[..]),
            "{watched:?} returned the stray entry"
        );
        assert_eq!(follower.stats().misrouted.load(Ordering::Relaxed), counted, "{watched:?}");
        let expected = if watched == Watched::All { 10 } else { 5 };
        assert_eq!(got.len(), expected, "{watched:?}");
    }

    // A node following the stream passes over it, and stays on par with a
    // node reading a non-entry there from memory (which it applies as
    // nothing).
    let read = read_from(&log, 1, 100).unwrap();
    let positions: Vec<u64> = read.iter().map(|(p, _)| *p).collect();
    assert_eq!(positions, (1..=11).filter(|p| *p != at).collect::<Vec<u64>>());
    let mem = MemLog::new("misrouted");
    let mem_entries: Vec<Bytes> = mem_entries.into_iter().map(Bytes::from).collect();
    wait(&log, mem.append(&mem_entries)).unwrap();
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (from_js, from_mem) = (open_node(dirs.0.path()), open_node(dirs.1.path()));
    assert_eq!(wait(&log, from_js.catch_up(&log, 4)).unwrap(), 11);
    assert_eq!(wait(&log, from_mem.catch_up(&mem, 100)).unwrap(), 11);
    assert_eq!(from_js.state_digest(), from_mem.state_digest());
    assert_eq!(from_js.get(&a, b"stray", None).unwrap(), None, "the stray entry is not applied");
    assert!(from_js.get(&a, &[4], None).unwrap().is_some());
}

#[test]
fn followers_started_at_the_tail_receive_what_is_appended_later() {
    let cluster = Cluster::start(1);
    let log = open(&cluster, "live", 1);
    let (a, b) = (stream_id(0xa), stream_id(0xb));
    let mut w = Writer::new(1);
    append(&log, &[w.put(&[(a, b"0", b"old")]), w.put(&[(a, b"0", b"old"), (b, b"0", b"old")])]).unwrap();
    let start = tail_of(&log) + 1;
    let only_a = Watched::Only(BTreeSet::from([a]));
    let mut selective = log.follow(start, &only_a);
    let mut whole = log.follow(start, &Watched::All);
    // Nothing new yet: no entries, whatever the wait.
    let first = next_batch(&log, &mut selective, 100, Duration::from_millis(300)).unwrap();
    assert!(first.is_none_or(|b| b.entries.is_empty()), "nothing was appended");

    // Only A's subject gets new entries: the mixed filter must be proved
    // empty by a probe for them to pass.
    let new_a: Vec<Vec<u8>> = (0..3).map(|i| w.put(&[(a, &[i], b"new")])).collect();
    let appender = {
        let config = config(&cluster, "live", 1);
        let new_a = new_a.clone();
        std::thread::spawn(move || {
            let log = JetStreamLog::open(&config).unwrap();
            for e in new_a {
                std::thread::sleep(Duration::from_millis(50));
                append(&log, &[e]).unwrap();
            }
        })
    };
    appender.join().unwrap();
    let tail = tail_of(&log);
    let got = collect(&log, &mut selective, tail);
    assert_eq!(got.iter().map(|e| e.bytes.to_vec()).collect::<Vec<_>>(), new_a);
    assert_eq!(collect(&log, &mut whole, tail).len(), 3);

    // Then only B's: the selective follower gets nothing but its
    // `through` still reaches the tail (both its filters probed idle).
    append(&log, &[w.put(&[(b, b"1", b"b")]), w.put(&[(b, b"2", b"b")])]).unwrap();
    let tail = tail_of(&log);
    assert!(collect(&log, &mut selective, tail).is_empty());
    assert_eq!(collect(&log, &mut whole, tail).len(), 2);

    // And a mixed one reaches both.
    let m = w.put(&[(a, b"3", b"m"), (b, b"3", b"m")]);
    append(&log, std::slice::from_ref(&m)).unwrap();
    let tail = tail_of(&log);
    assert_eq!(owned(&collect(&log, &mut selective, tail)), vec![(tail, m.clone())]);
    assert_eq!(owned(&collect(&log, &mut whole, tail)), vec![(tail, m)]);
}

/// `(position, entry)` pairs.
type Entries = Vec<(u64, Vec<u8>)>;

/// The name (`n<i>`) of the server leading `stream`'s Raft group, as an
/// index.
fn stream_leader(cluster: &Cluster, log: &JetStreamLog, stream: &str) -> usize {
    let urls = cluster.urls();
    log.handle().block_on(async move {
        let client = async_nats::connect(urls.split(',').collect::<Vec<_>>()).await.expect("connect");
        let js = async_nats::jetstream::new(client);
        let deadline = Instant::now() + PATIENCE;
        loop {
            let info = js.get_stream(stream).await.expect("stream").info().await.expect("info").clone();
            if let Some(leader) = info.cluster.and_then(|c| c.leader) {
                return leader.trim_start_matches('n').parse().expect("servers are named n<i>");
            }
            assert!(Instant::now() < deadline, "no leader for {stream}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

#[test]
fn appends_survive_a_crashed_server_and_every_acknowledged_one_is_stored_once() {
    let cluster = Cluster::start(3);
    let log = open(&cluster, "crash", 3);
    let acked: Arc<Mutex<Entries>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let config = config(&cluster, "crash", 3);
        let (acked, stop) = (acked.clone(), stop.clone());
        std::thread::spawn(move || {
            let log = JetStreamLog::open(&config).unwrap();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let batch: Vec<Vec<u8>> = (i..i + 4).map(|j| format!("entry {j}").into_bytes()).collect();
                i += 4;
                let positions = append(&log, &batch).expect("appends are retried through the crash");
                acked.lock().unwrap().extend(positions.into_iter().zip(batch));
            }
        })
    };
    let wait_for = |n: usize, what: &str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while acked.lock().unwrap().len() < n {
            assert!(!writer.is_finished(), "the writer stopped: {what}");
            assert!(Instant::now() < deadline, "fewer than {n} appends acknowledged: {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    // Followers through the crash: every filter's consumer must recover.
    let mut whole = log.follow(1, &Watched::All);
    let mut selective = log.follow(1, &Watched::Only(BTreeSet::from([stream_id(1)])));
    wait_for(100, "before the crash");
    let leader = stream_leader(&cluster, &log, "crash");
    cluster.kill9(leader);
    let n = acked.lock().unwrap().len();
    wait_for(n + 100, "with the leader crashed");
    cluster.restart(leader);
    let n = acked.lock().unwrap().len();
    wait_for(n + 100, "after the restart");
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("the writer never failed");

    let mut acked = std::mem::take(&mut *acked.lock().unwrap());
    acked.sort_unstable();
    let tail = tail_of(&log);
    assert_eq!(tail, acked.len() as u64, "one stored copy per acknowledged append, nothing else");
    let mut read = Vec::new();
    while (read.len() as u64) < tail {
        let next = read.len() as u64 + 1;
        read.extend(read_from(&log, next, 1000).unwrap());
    }
    assert_eq!(read, acked, "every acknowledged entry at its position, exactly once");
    // The entries are not signed entries: they all go to the mixed
    // subject, which a selective follower reads too.
    assert_eq!(owned(&collect(&log, &mut whole, tail)), acked, "the whole follower through the crash");
    assert_eq!(
        owned(&collect(&log, &mut selective, tail)),
        acked,
        "the selective follower through the crash"
    );
}

/// The stream's first position, read through `log`.
fn first_position(log: &JetStreamLog) -> u64 {
    log.handle().block_on(log.first_position()).expect("stream info")
}

/// The error `follower` stops with; panics if it hands over an entry
/// first or has not failed within PATIENCE.
fn stop_error(log: &JetStreamLog, follower: &mut Follower) -> SharedLogError {
    let deadline = Instant::now() + PATIENCE;
    loop {
        assert!(Instant::now() < deadline, "the follower did not fail within {PATIENCE:?}");
        match next_batch(log, follower, 4096, Duration::from_secs(1)) {
            Err(e) => return e,
            Ok(Some(b)) => assert!(b.entries.is_empty(), "handed over {:?}", b.entries.first()),
            Ok(None) => {}
        }
    }
}

#[test]
fn trimming_purges_exactly_the_positions_below_and_reading_one_of_them_is_an_error() {
    let cluster = Cluster::start(1);
    let log = open(&cluster, "trim", 1);
    assert_eq!(first_position(&log), 1, "a new stream starts at 1");
    assert_eq!(trim(&log, 1).unwrap(), 0);
    let entries: Vec<Vec<u8>> = (1..=10).map(|i| format!("entry {i}").into_bytes()).collect();
    for e in &entries {
        append(&log, std::slice::from_ref(e)).unwrap();
    }
    let at = |p: u64| (p, entries[p as usize - 1].clone());
    // A reader left at position 3, which is about to go.
    assert_eq!(read_from(&log, 1, 2).unwrap(), vec![at(1), at(2)]);

    assert_eq!(trim(&log, 4).unwrap(), 3);
    assert_eq!(first_position(&log), 4);
    assert_eq!(tail_of(&log), 10, "the tail stays");
    let messages =
        cluster.stream_info(1, "trim").expect("/jsz reports the stream")["state"]["messages"].clone();
    assert_eq!(messages, 7, "only positions 1 to 3 purged");
    for needed in [3, 1] {
        assert_eq!(read_from(&log, needed, 10), Err(SharedLogError::Trimmed { first_kept: 4, needed }));
    }
    assert_eq!(read_from(&log, 4, 100).unwrap(), (4..=10).map(at).collect::<Vec<_>>());
    let node_dir = tempfile::tempdir().unwrap();
    let error = wait(&log, open_node(node_dir.path()).catch_up(&log, 100)).expect_err("position 1 is gone");
    let trimmed = SharedLogError::Trimmed { first_kept: 4, needed: 1 };
    assert!(error.to_string().contains(&trimmed.to_string()), "{error}");

    assert_eq!(trim(&log, 4).unwrap(), 0, "trimming again purges nothing");
    assert_eq!(trim(&log, 2).unwrap(), 0, "below the first position: nothing");
    assert!(matches!(trim(&log, 12), Err(SharedLogError::Refused(_))), "past the tail + 1");
    assert_eq!(first_position(&log), 4);

    // Everything: the stream starts where the next append lands.
    assert_eq!(trim(&log, 11).unwrap(), 7);
    assert_eq!(first_position(&log), 11);
    assert!(read_from(&log, 11, 10).unwrap().is_empty());
    assert_eq!(read_from(&log, 10, 10), Err(SharedLogError::Trimmed { first_kept: 11, needed: 10 }));
    assert_eq!(append(&log, &[b"next".to_vec()]).unwrap(), vec![11]);
    assert_eq!(read_from(&log, 11, 10).unwrap(), vec![(11, b"next".to_vec())]);
}

#[test]
fn a_follower_that_needs_a_trimmed_position_stops_instead_of_skipping_it() {
    let cluster = Cluster::start(1);
    let log = open(&cluster, "trim-follow", 1);
    let (a, b) = (stream_id(0xa), stream_id(0xb));
    let mut w = Writer::new(1);
    // A at the odd positions, B at the even ones.
    let entries: Vec<Vec<u8>> =
        (1..=10u8).map(|i| w.put(&[(if i % 2 == 1 { a } else { b }, &[i], b"v")])).collect();
    for e in &entries {
        append(&log, std::slice::from_ref(e)).unwrap();
    }
    assert_eq!(trim(&log, 5).unwrap(), 4);
    let only_a = Watched::Only(BTreeSet::from([a]));
    for watched in [Watched::All, only_a.clone()] {
        // Its first message comes after a gap: a purge, not other streams'.
        let error = stop_error(&log, &mut log.follow(2, &watched));
        assert_eq!(error, SharedLogError::Trimmed { first_kept: 5, needed: 2 }, "{watched:?}");
        // From the first kept on, nothing is missing.
        let got = collect(&log, &mut log.follow(5, &watched), 10);
        let expect: Vec<(u64, Vec<u8>)> = (5..=10u64)
            .filter(|p| watched == Watched::All || p % 2 == 1)
            .map(|p| (p, entries[p as usize - 1].clone()))
            .collect();
        assert_eq!(owned(&got), expect, "{watched:?}");
    }
    // Everything purged: nothing is ever delivered, yet the follower finds
    // out.
    assert_eq!(trim(&log, 11).unwrap(), 6);
    for watched in [Watched::All, only_a] {
        let error = stop_error(&log, &mut log.follow(7, &watched));
        assert_eq!(error, SharedLogError::Trimmed { first_kept: 11, needed: 7 }, "{watched:?}");
    }
}
