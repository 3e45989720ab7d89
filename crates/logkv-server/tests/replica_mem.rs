//! The replica on the in-memory shared log: two nodes of one process, each
//! writing through its own replica, reach the same state and store the
//! same log times, with no NATS — the write path and the follower are the
//! ones the server runs on JetStream — and compare their state digests
//! through the log, telling a peer of another state. Waits are bounded
//! only to detect hangs.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use logkv_runtime::apply::{TxResult, Watched};
use logkv_runtime::codec::{native, NATIVE};
use logkv_runtime::divergence::{DigestReport, DivergenceCheck};
use logkv_runtime::entry::EntryOutcome;
use logkv_runtime::envelope::{Protocol, TxPart};
use logkv_runtime::node::{Node, NodeOptions};
use logkv_runtime::shared_log::{MemLog, SharedLog};
use logkv_runtime::signing::Signer;
use logkv_runtime::types::StreamId;
use logkv_server::digest_exchange::DigestSettings;
use logkv_server::replica::{Replica, ReplicaError};

/// A native transaction putting `key = value` in stream `[1; 32]`.
fn put(key: &str, value: &str) -> Vec<TxPart> {
    let write = native::BodyWrite {
        stream: StreamId([1; 32]),
        key: key.as_bytes().to_vec(),
        op: native::Op::Put(value.as_bytes().to_vec().into()),
    };
    let body = native::Body { version: u64::MAX, writes: vec![write], ..native::Body::default() };
    vec![TxPart { codec: NATIVE, tags: body.tags(), body: native::encode(&body) }]
}

/// Positions between two digest reports in these tests.
const EVERY: u64 = 5;

/// Digest reports as node `name` publishes them here.
fn digests(name: &str) -> DigestSettings {
    DigestSettings { node: name.into(), address: format!("{name}:7380"), every: EVERY, kept: 16 }
}

fn start(dir: &Path, log: &MemLog, name: &str) -> (Arc<Node>, Arc<Replica<MemLog>>) {
    let node = Arc::new(Node::open(dir, NodeOptions::default()).expect("open the node"));
    let replica =
        Replica::start(node.clone(), log.clone(), &Watched::All, dir, digests(name), Box::new(|| {}))
            .expect("start the replica");
    (node, replica)
}

/// Waits until `check` holds of `replica`'s digest comparison.
fn wait_for(replica: &Replica<MemLog>, what: &str, check: impl Fn(&DivergenceCheck) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check(&replica.digests().check()) {
        assert!(Instant::now() < deadline, "{what}: {:?}", replica.digests().check());
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn two_nodes_writing_through_replicas_on_one_memory_log_agree() {
    let log = MemLog::new("replicas");
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, replica_a) = start(dirs.0.path(), &log, "a");
    let (b, replica_b) = start(dirs.1.path(), &log, "b");
    let signer = Signer::from_secret_bytes([3; 32]).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // Alternate the node written through: each write is answered once its
    // own node applied it from the log.
    for i in 0..20 {
        let (node, replica) = if i % 2 == 0 { (&a, &replica_a) } else { (&b, &replica_b) };
        let (entry, hash) =
            node.sign_entry(&signer, put(&format!("k{}", i % 7), &format!("v{i}")), Protocol::V2).unwrap();
        let applied = runtime.block_on(replica.append_own(node, &signer, entry.into(), hash)).unwrap();
        assert_eq!(applied.outcome, EntryOutcome::Applied(vec![Some(TxResult::Commit)]), "write {i}");
        assert!(node.replay_progress().applied_position >= applied.position);
    }
    // Both nodes sign with one key: an entry signed before the other
    // node's last one reached it loses its nonce, stays in the log as
    // Replayed and is signed again, so the log may hold more than 20.
    let tail = runtime.block_on(log.tail()).unwrap();
    assert!(tail >= 20, "{tail}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while replica_a.through() < tail || replica_b.through() < tail {
        assert!(Instant::now() < deadline, "the followers did not reach {tail}");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(a.state_digest(), b.state_digest());
    for k in 0..7 {
        let key = format!("k{k}");
        let get = |n: &Node| n.get(&StreamId([1; 32]), key.as_bytes(), None).unwrap();
        assert_eq!(get(&a), get(&b), "{key}");
    }
    for p in 1..=tail {
        let times = (a.store().time_of_position(p).unwrap(), b.store().time_of_position(p).unwrap());
        assert!(times.0.is_some() && times.0 == times.1, "log time of position {p}: {times:?}");
    }
    let marker = std::fs::read_to_string(dirs.0.path().join("shared-log.toml")).unwrap();
    assert_eq!(marker, "log = \"mem:replicas\"\nwatch = \"all\"\n");

    // Each compared its digests with the other's through the log's board
    // and agreed at the last reporting position both passed.
    let last = tail / EVERY * EVERY;
    for (replica, peer) in [(&replica_a, "b"), (&replica_b, "a")] {
        wait_for(replica, "agreement", |c| c.peers().get(peer).is_some_and(|p| p.agreed == Some(last)));
        assert_eq!(replica.digests().check().mismatches(), 0);
    }
    // A report of another state at a position both hold is a divergence
    // named by the node that published it.
    let (ours, _) = a.state_digest();
    let mut forged = [0xee; 32];
    forged[0] = !ours[0];
    let report = DigestReport {
        node: "forger".into(),
        address: "forger:7380".into(),
        watch: "all".into(),
        position: last,
        digest: forged,
    };
    runtime.block_on(log.publish_digest(&report)).unwrap();
    for replica in [&replica_a, &replica_b] {
        wait_for(replica, "the forged digest", |c| c.peers().get("forger").is_some_and(|p| p.diverged()));
        let check = replica.digests().check();
        let mismatch = check.peers()["forger"].mismatch.clone().unwrap();
        assert_eq!((mismatch.position, mismatch.theirs), (last, forged));
        assert_eq!(check.mismatches(), 1);
    }
    replica_a.stop();
    replica_b.stop();
    drop(replica_a);
    Arc::into_inner(a).expect("the replica released the node").close().unwrap();

    // The directory is a copy of this log: another log is refused.
    let node = Arc::new(Node::open(dirs.0.path(), NodeOptions::default()).unwrap());
    let other = MemLog::new("other");
    match Replica::start(node, other, &Watched::All, dirs.0.path(), digests("a"), Box::new(|| {})) {
        Err(ReplicaError::WrongDirectory { why, .. }) => assert!(why.contains("mem:replicas"), "{why}"),
        Err(e) => panic!("expected WrongDirectory, got {e}"),
        Ok(_) => panic!("a copy of another log was accepted"),
    }
}
