//! Several real `logkv serve` nodes on one shared JetStream log (real
//! `nats-server` processes, real `kill -9`): they converge on the same
//! state through crashes of NATS servers and of nodes (and the same log
//! time for the newest position), a late node replays from the head, a
//! node watching one stream downloads only it, and an
//! entry published behind logkv's back is judged alike by every node.
//!
//! Every node signs with its own `node.key`: the first node's first write
//! makes it the admin of the RESP stream, and it grants writer to the
//! others with `logkv acl grant-writer --server`.
//!
//! Named `nats_*` so scripts/test.sh runs it against every NATS release it
//! installs (`LOGKV_NATS_SERVER`). Waits are bounded only to detect hangs.

mod nats;
mod rpc_support;
mod server;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use logkv_runtime::codec::native;
use logkv_runtime::envelope::Entry;
use logkv_runtime::keyfile;
use logkv_runtime::types::{tx_version, StreamId};
use nats::Cluster;
use rand::Rng;
use rpc_support::{native_tx, Rpc};
use serde_json::{json, Value};
use server::{Server, PATIENCE};

/// The bearer token of `admin_nodeInfo`.
const TOKEN: &str = "nats-nodes-test-token";

/// The RESP stream when `--stream` is not given.
const ZERO_STREAM: &str = "0x0000000000000000000000000000000000000000000000000000000000000000";

/// Writer threads per node in the crash test.
const WRITERS_PER_NODE: usize = 3;

/// Acknowledged writes to wait for between two steps of the crash test.
const STEP_ACKS: usize = 300;

/// Polls in a row that must agree before nodes count as settled.
const SETTLED_POLLS: usize = 4;

/// `logkv serve` flags of a node on the JetStream stream `name`.
fn shared_log_args(cluster: &Cluster, name: &str, replicas: usize) -> Vec<String> {
    let args = ["--log", &cluster.urls(), "--log-stream", name, "--replicas", &replicas.to_string()];
    let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    args.extend(["--admin-token".to_string(), TOKEN.to_string()]);
    args
}

/// A node of the test: its flags and data directory outlive its process,
/// so it restarts on the same copy.
struct Node {
    name: String,
    args: Vec<String>,
    dir: PathBuf,
    server: Option<Server>,
    /// Its current RESP address (new ports after every start).
    resp: Arc<RwLock<String>>,
    /// What earlier processes of this node wrote on stderr.
    old_stderr: String,
}

impl Node {
    fn start(name: &str, root: &Path, args: Vec<String>) -> Node {
        let dir = root.join(name);
        let server = Server::builder().data_dir(&dir).args(&args).start();
        let resp = Arc::new(RwLock::new(server.resp.clone()));
        Node { name: name.to_string(), args, dir, server: Some(server), resp, old_stderr: String::new() }
    }

    fn server(&self) -> &Server {
        self.server.as_ref().unwrap_or_else(|| panic!("{} is not running", self.name))
    }

    fn kill9(&mut self) {
        let server = self.server.take().expect("running");
        self.old_stderr.push_str(&server.stderr());
        let status = server.kill9();
        eprintln!("{}: killed with SIGKILL ({status})", self.name);
        *self.resp.write().unwrap() = "127.0.0.1:1".to_string();
    }

    fn restart(&mut self) {
        assert!(self.server.is_none(), "{} is running", self.name);
        let server = Server::builder().data_dir(&self.dir).args(&self.args).start();
        *self.resp.write().unwrap() = server.resp.clone();
        eprintln!("{}: restarted on its data directory, ready", self.name);
        self.server = Some(server);
    }

    fn rpc(&self) -> Rpc<'_> {
        Rpc::new(self.server())
    }

    /// `admin_nodeInfo`.
    fn info(&self) -> Value {
        let answer = self.rpc().call_with("admin_nodeInfo", json!([]), Some(TOKEN));
        assert!(answer.get("error").is_none(), "{}: admin_nodeInfo failed: {answer}", self.name);
        answer["result"].clone()
    }

    fn address(&self) -> String {
        self.info()["address"].as_str().expect("an address").to_string()
    }

    fn redis(&self) -> redis::Connection {
        let client = redis::Client::open(self.server().redis_url()).expect("a redis URL");
        let con = client.get_connection_with_timeout(Duration::from_secs(10)).expect("connect over RESP");
        con.set_read_timeout(Some(PATIENCE)).expect("read timeout");
        con
    }

    fn stderr(&self) -> String {
        let now = self.server.as_ref().map(|s| s.stderr()).unwrap_or_default();
        format!("{}{now}", self.old_stderr)
    }
}

/// Prints every node's and NATS server's log tail if the test fails.
struct Witness<'a> {
    nodes: Vec<Shared>,
    cluster: &'a Cluster,
}

/// A node the test's threads share.
type Shared = Arc<Mutex<Node>>;

impl Drop for Witness<'_> {
    fn drop(&mut self) {
        if !thread::panicking() {
            return;
        }
        for node in &self.nodes {
            let node = node.lock().unwrap_or_else(|e| e.into_inner());
            eprintln!("--- {} stderr (last 40 lines)\n{}", node.name, tail(&node.stderr(), 40));
        }
        for i in 1..=self.cluster.nodes() {
            eprintln!("--- nats n{i} log (last 20 lines)\n{}", tail(&self.cluster.log(i), 20));
        }
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Waits until every node reports the same `appliedPosition`, equal to its
/// `sharedLog.through` and to the stream's last sequence in NATS (node
/// `nats_node`), for several polls in a row; returns their infos.
fn settle(nodes: &[Shared], cluster: &Cluster, nats_node: usize, stream: &str) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut agreed = 0;
    let mut last = None;
    loop {
        let infos: Vec<Value> = nodes.iter().map(|n| n.lock().unwrap().info()).collect();
        let positions: Vec<u64> = infos.iter().map(|i| i["appliedPosition"].as_u64().unwrap()).collect();
        let throughs: Vec<u64> = infos.iter().map(|i| i["sharedLog"]["through"].as_u64().unwrap()).collect();
        let tail = cluster.last_seq(nats_node, stream);
        let same = positions.iter().chain(&throughs).all(|p| Some(*p) == tail);
        agreed = if same && last == tail { agreed + 1 } else { 0 };
        last = tail;
        if agreed >= SETTLED_POLLS {
            eprintln!("settled at position {} on {} nodes", positions[0], nodes.len());
            return infos;
        }
        assert!(
            Instant::now() < deadline,
            "nodes did not settle: appliedPosition {positions:?}, through {throughs:?}, stream tail {tail:?}"
        );
        thread::sleep(Duration::from_millis(300));
    }
}

/// Asserts every node has the same state digest at the same version.
fn assert_same_state(nodes: &[Shared], infos: &[Value]) {
    let states: Vec<(String, &Value, &Value)> = nodes
        .iter()
        .zip(infos)
        .map(|(n, i)| (n.lock().unwrap().name.clone(), &i["stateDigest"], &i["stateDigestVersion"]))
        .collect();
    eprintln!("states: {states:?}");
    for (name, digest, version) in &states[1..] {
        assert!(
            *digest == states[0].1 && *version == states[0].2,
            "{name} differs from {}: {states:?}",
            states[0].0
        );
    }
    assert!(states[0].1.as_str().is_some_and(|d| d.len() == 66), "{states:?}");
}

/// `SET key value` through `node`, which must answer `+OK`.
fn set(node: &Node, key: &str, value: &str) {
    let reply: String = redis::cmd("SET").arg(key).arg(value).query(&mut node.redis()).expect("SET");
    assert_eq!(reply, "OK", "{}: SET {key}", node.name);
}

/// Writes whose `+OK` a client read: key and value.
type Acked = Arc<Mutex<Vec<(String, String)>>>;

/// One client of one node: SETs unique keys until `stop`, reconnecting to
/// the node's current address after any error (a crash, a refused write).
fn writer(
    resp: Arc<RwLock<String>>,
    label: String,
    stop: Arc<AtomicBool>,
    acked: Acked,
    count: Arc<AtomicUsize>,
    errors: Arc<Mutex<Vec<String>>>,
) {
    let mut rng = rand::rng();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let addr = resp.read().unwrap().clone();
        let con = redis::Client::open(format!("redis://{addr}/"))
            .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(2)));
        let Ok(mut con) = con else {
            thread::sleep(Duration::from_millis(50));
            continue;
        };
        con.set_read_timeout(Some(PATIENCE)).unwrap();
        while !stop.load(Ordering::Relaxed) {
            let key = format!("{label}-{n}");
            n += 1;
            let value = format!("{key}={:016x}", rng.random::<u64>());
            match redis::cmd("SET").arg(&key).arg(&value).query::<String>(&mut con) {
                Ok(ok) => {
                    assert_eq!(ok, "OK", "SET {key}");
                    acked.lock().unwrap().push((key, value));
                    count.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    errors.lock().unwrap().push(format!("{label}: {e}"));
                    thread::sleep(Duration::from_millis(20));
                    break;
                }
            }
        }
    }
}

/// Waits until `counts` (one per node, or their sum) grew by `more`.
fn wait_for_acks(what: &str, counts: &[Arc<AtomicUsize>], more: usize) {
    let sum = || counts.iter().map(|c| c.load(Ordering::Relaxed)).sum::<usize>();
    let target = sum() + more;
    let deadline = Instant::now() + Duration::from_secs(90);
    while sum() < target {
        assert!(Instant::now() < deadline, "{what}: {} of {target} writes acknowledged", sum());
        thread::sleep(Duration::from_millis(20));
    }
    eprintln!("{what}: {} writes acknowledged", sum());
}

/// Every acknowledged write reads back with its value on `node` (GETs
/// pipelined in chunks).
fn assert_all_read_back(node: &Node, acked: &[(String, String)]) {
    let mut con = node.redis();
    for chunk in acked.chunks(500) {
        let mut pipe = redis::pipe();
        for (key, _) in chunk {
            pipe.cmd("GET").arg(key);
        }
        let values: Vec<Option<String>> = pipe.query(&mut con).expect("pipelined GETs");
        for ((key, value), got) in chunk.iter().zip(values) {
            assert_eq!(got.as_deref(), Some(value.as_str()), "{}: GET {key}", node.name);
        }
    }
}

/// `logkv acl grant-writer ADDRESS` on stream zero through `server`,
/// signed with `key`.
fn grant_writer(server: &Server, key: &Path, address: &str) {
    let out = Command::new(server::binary())
        .env_remove("LOGKV_DATA_DIR")
        .env_remove("LOGKV_SERVER")
        .env_remove("LOGKV_KEY")
        .args(["acl", "grant-writer", address, "--server", &server.http_url(), "--key"])
        .arg(key)
        .output()
        .expect("run logkv acl");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim().ends_with("\tCommit"),
        "grant-writer {address}: {}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Waits until `node` has applied the grant of writer to `address`.
fn wait_for_writer(node: &Node, address: &str) {
    let deadline = Instant::now() + PATIENCE;
    while node.rpc().result("kv_isWriterOfStream", json!([address, ZERO_STREAM])) != json!(true) {
        assert!(Instant::now() < deadline, "{} never saw {address} become a writer", node.name);
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn three_nodes_converge_through_crashes() {
    let started = Instant::now();
    eprintln!("nats: {}", nats::server_version());
    const STREAM: &str = "nodes";
    let cluster = Cluster::start(3);
    let root = tempfile::tempdir().expect("temporary directory");
    let args = shared_log_args(&cluster, STREAM, 3);

    // Each node signs with its own key; node 1's first write makes it the
    // admin of the RESP stream, and it grants writer to the others.
    let n1 = Arc::new(Mutex::new(Node::start("node1", root.path(), args.clone())));
    let mut witness = Witness { nodes: vec![n1.clone()], cluster: &cluster };
    set(&n1.lock().unwrap(), "first", "node1 is admin");
    let n2 = Arc::new(Mutex::new(Node::start("node2", root.path(), args.clone())));
    let n3 = Arc::new(Mutex::new(Node::start("node3", root.path(), args.clone())));
    witness.nodes.extend([n2.clone(), n3.clone()]);
    let nodes = [n1.clone(), n2.clone(), n3.clone()];
    {
        let admin = n1.lock().unwrap();
        for other in [&n2, &n3] {
            let other = other.lock().unwrap();
            let address = other.address();
            grant_writer(admin.server(), &admin.dir.join("node.key"), &address);
            wait_for_writer(&other, &address);
        }
    }

    let stop = Arc::new(AtomicBool::new(false));
    let acked: Acked = Arc::default();
    let errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let counts: Vec<Arc<AtomicUsize>> = (0..3).map(|_| Arc::default()).collect();
    let mut writers = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let resp = node.lock().unwrap().resp.clone();
        for t in 0..WRITERS_PER_NODE {
            let (resp, stop, acked, errors) = (resp.clone(), stop.clone(), acked.clone(), errors.clone());
            let (label, count) = (format!("n{}t{t}", i + 1), counts[i].clone());
            writers.push(thread::spawn(move || writer(resp, label, stop, acked, count, errors)));
        }
    }

    wait_for_acks("writing through 3 nodes", &counts, STEP_ACKS);
    // The stream's leader, if a server names one: the harder crash.
    let victim = cluster.stream_leader(1, STREAM).unwrap_or(1);
    cluster.kill9(victim);
    eprintln!("nats n{victim} (stream leader) killed with SIGKILL");
    wait_for_acks(&format!("nats n{victim} down"), &counts, STEP_ACKS);
    cluster.restart(victim);
    eprintln!("nats n{victim} restarted");
    wait_for_acks(&format!("nats n{victim} back"), &counts, STEP_ACKS);

    n3.lock().unwrap().kill9();
    wait_for_acks("node3 down", &counts[..2], STEP_ACKS);
    n3.lock().unwrap().restart();
    wait_for_acks("node3's writers after its restart", &counts[2..], STEP_ACKS / 3);
    wait_for_acks("all nodes after node3's restart", &counts, STEP_ACKS);

    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().expect("a writer panicked");
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    let errors = errors.lock().unwrap();
    let per_node: Vec<usize> = counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    eprintln!(
        "{} writes acknowledged (per node {per_node:?}); {} refused or cut off, e.g. {:?}",
        acked.len(),
        errors.len(),
        errors.iter().take(3).collect::<Vec<_>>()
    );

    // A fourth node on an empty directory replays the stream from its head.
    let n4 = Arc::new(Mutex::new(Node::start("node4", root.path(), args.clone())));
    witness.nodes.push(n4.clone());
    let all = [n1.clone(), n2.clone(), n3.clone(), n4.clone()];
    let infos = settle(&all, &cluster, 1, STREAM);
    assert_same_state(&all, &infos);
    // The same log time for the newest position on every node, node 4
    // included, which applied it long after it was written: the stream's
    // timestamp, not the applying node's clock.
    let times: Vec<&Value> = infos.iter().map(|i| &i["appliedLogTimeMs"]).collect();
    eprintln!("log time of position {}: {times:?}", infos[0]["appliedPosition"]);
    assert!(times[0].as_u64().is_some(), "{times:?}");
    assert!(times.iter().all(|t| *t == times[0]), "{times:?}");
    for node in &all {
        assert_all_read_back(&node.lock().unwrap(), &acked);
    }
    eprintln!("{} acknowledged writes read back on 4 nodes; took {:?}", acked.len(), started.elapsed());
}

#[test]
fn watching_one_stream_downloads_only_it() {
    let started = Instant::now();
    const NAME: &str = "watch";
    let (a, b) = (StreamId([0xa1; 32]), StreamId([0xb2; 32]));
    let cluster = Cluster::start(1);
    let root = tempfile::tempdir().expect("temporary directory");
    let args = |stream: &StreamId, extra: &[&str]| {
        let mut args = shared_log_args(&cluster, NAME, 1);
        args.extend(["--stream".to_string(), stream.to_string()]);
        args.extend(extra.iter().map(|a| a.to_string()));
        args
    };
    let writer_a = Arc::new(Mutex::new(Node::start("writer-a", root.path(), args(&a, &[]))));
    let writer_b = Arc::new(Mutex::new(Node::start("writer-b", root.path(), args(&b, &[]))));
    let mut witness = Witness { nodes: vec![writer_a.clone(), writer_b.clone()], cluster: &cluster };

    // B: 300 values of 16 KiB; A: 200 small ones.
    let mut rng = rand::rng();
    let big: Vec<(String, Vec<u8>)> = (0..300)
        .map(|i| {
            (format!("big{i}"), (0..16 * 1024 / 8).flat_map(|_| rng.random::<u64>().to_le_bytes()).collect())
        })
        .collect();
    let small: Vec<(String, String)> =
        (0..200).map(|i| (format!("small{i}"), format!("value {i}"))).collect();
    {
        let mut con = writer_b.lock().unwrap().redis();
        for chunk in big.chunks(25) {
            let mut pipe = redis::pipe();
            for (key, value) in chunk {
                pipe.cmd("SET").arg(key).arg(value.as_slice()).ignore();
            }
            let () = pipe.query(&mut con).expect("SETs of B");
        }
        let mut con = writer_a.lock().unwrap().redis();
        for chunk in small.chunks(25) {
            let mut pipe = redis::pipe();
            for (key, value) in chunk {
                pipe.cmd("SET").arg(key).arg(value).ignore();
            }
            let () = pipe.query(&mut con).expect("SETs of A");
        }
    }
    eprintln!("written in {:?}", started.elapsed());
    let b_bytes: u64 = big.iter().map(|(_, v)| v.len() as u64).sum();

    let narrow =
        Arc::new(Mutex::new(Node::start("watching-a", root.path(), args(&a, &["--watch", &a.to_string()]))));
    witness.nodes.push(narrow.clone());
    let narrow = narrow.lock().unwrap();
    let mut con = narrow.redis();
    for (key, value) in &small {
        let got: Option<String> = redis::cmd("GET").arg(key).query(&mut con).expect("GET");
        assert_eq!(got.as_deref(), Some(value.as_str()), "watching-a: GET {key}");
    }
    let rpc = narrow.rpc();
    let wide = writer_b.lock().unwrap();
    let wide_rpc = wide.rpc();
    for (key, value) in big.iter().step_by(30) {
        let params = json!([b.to_string(), STANDARD.encode(key), 0, value.len()]);
        let here = rpc.result("kv_getValue", params.clone());
        assert!(
            here.is_null()
                || (here["size"] == json!(0) && here["data"] == json!("") && here["version"] == json!(0)),
            "watching-a holds {key} of stream B: {here}"
        );
        let there = wide_rpc.result("kv_getValue", params);
        assert_eq!(there["data"], json!(STANDARD.encode(value)), "writer-b's {key}");
    }
    let info = narrow.info();
    let received = info["sharedLog"]["receivedBytes"].as_u64().expect("receivedBytes");
    let wide_received = writer_a.lock().unwrap().info()["sharedLog"]["receivedBytes"].as_u64().unwrap();
    eprintln!(
        "B's values: {b_bytes} bytes; the node watching A received {received} bytes, \
         writer-a (watching every stream) {wide_received}; took {:?}",
        started.elapsed()
    );
    assert!(received < b_bytes, "watching A downloaded {received} bytes, B's values are {b_bytes}");
    assert!(wide_received > b_bytes, "a node watching everything received only {wide_received} bytes");
}

#[test]
fn forged_entry_is_rejected_by_every_node_alike() {
    let started = Instant::now();
    const NAME: &str = "forge";
    let cluster = Cluster::start(1);
    let root = tempfile::tempdir().expect("temporary directory");
    let args = shared_log_args(&cluster, NAME, 1);
    let n1 = Arc::new(Mutex::new(Node::start("node1", root.path(), args.clone())));
    let mut witness = Witness { nodes: vec![n1.clone()], cluster: &cluster };
    set(&n1.lock().unwrap(), "real", "by node1");
    let n2 = Arc::new(Mutex::new(Node::start("node2", root.path(), args.clone())));
    witness.nodes.push(n2.clone());
    let nodes = [n1.clone(), n2.clone()];

    let stream: StreamId = ZERO_STREAM.parse().unwrap();
    let subject = format!("{NAME}.s.{}", hex::encode(stream.0));
    let (admin_key, admin_address) = {
        let n1 = n1.lock().unwrap();
        (keyfile::load(n1.dir.join("node.key")).expect("node 1's key"), n1.address())
    };
    let put = |key: &'static [u8], value: &'static [u8]| {
        native_tx(vec![(stream, key, native::Op::Put(value.to_vec().into()))])
    };

    // Signed by a stranger, then claimed to be node 1's (the admin's): the
    // signature no longer matches the sender.
    let stranger = rpc_support::signer(7);
    let entry = Entry { sender: stranger.address(), nonce: 1 << 40, txs: vec![put(b"forged", b"x")] };
    let mut forged = entry.encode_signed(&stranger).unwrap();
    let sender_at = 4 + 2; // magic, protocol version
    assert_eq!(&forged[sender_at..sender_at + 20], &stranger.address().0);
    forged[sender_at..sender_at + 20].copy_from_slice(&admin_key.address().0);
    assert_eq!(admin_key.address().to_string(), admin_address);
    let forged_at = cluster.publish(1, &subject, &forged);
    // Garbage on the subject of entries that are not one stream's.
    let garbage_at = cluster.publish(1, &format!("{NAME}.m"), b"\x00not an entry at all\xff");
    // A genuine entry of the admin, on the wrong subject.
    let nonce = n1.lock().unwrap().rpc().result("kv_nextNonce", json!([admin_address])).as_u64().unwrap();
    let genuine = Entry { sender: admin_key.address(), nonce, txs: vec![put(b"misrouted", b"y")] };
    let genuine = genuine.encode_signed(&admin_key).unwrap();
    let misrouted_at = cluster.publish(1, &format!("{NAME}.m"), &genuine);
    eprintln!("published: forged at {forged_at}, garbage at {garbage_at}, misrouted at {misrouted_at}");
    // The nodes go on after them.
    set(&n1.lock().unwrap(), "after", "still writing");

    let infos = settle(&nodes, &cluster, 1, NAME);
    assert_same_state(&nodes, &infos);
    let forged_version = tx_version(forged_at, 0);
    let mut results = Vec::new();
    for node in &nodes {
        let node = node.lock().unwrap();
        let mut con = node.redis();
        for (key, want) in [
            ("real", Some("by node1")),
            ("after", Some("still writing")),
            ("forged", None),
            ("misrouted", None),
        ] {
            let got: Option<String> = redis::cmd("GET").arg(key).query(&mut con).expect("GET");
            assert_eq!(got.as_deref(), want, "{}: GET {key}", node.name);
        }
        let result = node.rpc().result("kv_getTransactionResult", json!([forged_version]));
        let garbage = node.rpc().result("kv_getTransactionResult", json!([tx_version(garbage_at, 0)]));
        let misrouted = node.info()["sharedLog"]["misrouted"].clone();
        eprintln!(
            "{}: forged transaction {forged_version}: {result}; garbage's: {garbage}; misrouted {misrouted}",
            node.name
        );
        assert_eq!(misrouted, json!(1), "{}: misrouted", node.name);
        results.push((result, garbage));
    }
    assert!(results.iter().all(|r| *r == results[0]), "the nodes' results differ: {results:?}");
    assert!(
        results[0].0.as_str().is_some_and(|r| r.contains("Signature")),
        "the forged transaction's result is {}",
        results[0].0
    );
    eprintln!("took {:?}", started.elapsed());
}

/// Strangers publishing straight to the stream past the quotas on state
/// they can grow (`--max-streams`, `--max-windows`): both nodes record the
/// same `QuotaExceeded` results and reach the same state.
#[test]
fn quotas_refuse_the_same_entries_on_every_node() {
    const NAME: &str = "quota";
    let cluster = Cluster::start(1);
    let root = tempfile::tempdir().expect("temporary directory");
    let mut args = shared_log_args(&cluster, NAME, 1);
    args.extend(["--max-streams", "2", "--max-windows", "4"].map(String::from));
    let n1 = Arc::new(Mutex::new(Node::start("node1", root.path(), args.clone())));
    let mut witness = Witness { nodes: vec![n1.clone()], cluster: &cluster };
    // Node 1's key claims the zero stream: one stream, one window.
    set(&n1.lock().unwrap(), "real", "by node1");
    let n2 = Arc::new(Mutex::new(Node::start("node2", root.path(), args.clone())));
    witness.nodes.push(n2.clone());
    let nodes = [n1.clone(), n2.clone()];

    let zero: StreamId = ZERO_STREAM.parse().unwrap();
    let publish = |who: u8, stream: StreamId| {
        let signer = rpc_support::signer(who);
        let txs = vec![native_tx(vec![(stream, b"k", native::Op::Put(b"v".to_vec().into()))])];
        let entry = Entry { sender: signer.address(), nonce: 1, txs }.encode_signed(&signer).unwrap();
        cluster.publish(1, &format!("{NAME}.s.{}", hex::encode(stream.0)), &entry)
    };
    let published = [
        (publish(20, StreamId([0x20; 32])), "Commit"),
        (publish(21, StreamId([0x21; 32])), "QuotaExceeded: streams"),
        (publish(22, zero), "SenderNoWritePermission"),
        (publish(23, zero), "QuotaExceeded: anti-replay windows"),
    ];
    // Node 1 still writes: its window exists.
    set(&n1.lock().unwrap(), "after", "still writing");

    let infos = settle(&nodes, &cluster, 1, NAME);
    assert_same_state(&nodes, &infos);
    for node in &nodes {
        let node = node.lock().unwrap();
        for (at, want) in published {
            let result = node.rpc().result("kv_getTransactionResult", json!([tx_version(at, 0)]));
            assert_eq!(result, json!(want), "{}: the entry at {at}", node.name);
        }
        let got: Option<String> = redis::cmd("GET").arg("after").query(&mut node.redis()).expect("GET");
        assert_eq!(got.as_deref(), Some("still writing"), "{}", node.name);
    }
}

/// A client that wrote through node 1 reads its write through node 2 by
/// asking for the version its write got: the read waits (bounded) until
/// node 2 applied it, and a version nobody wrote yet times out with
/// `-32020` instead of answering from an older state.
#[test]
fn a_read_as_of_a_version_waits_for_it_on_another_node() {
    const NAME: &str = "ryw";
    let cluster = Cluster::start(1);
    let root = tempfile::tempdir().expect("temporary directory");
    let args = shared_log_args(&cluster, NAME, 1);
    let n1 = Arc::new(Mutex::new(Node::start("node1", root.path(), args.clone())));
    let n2 = Arc::new(Mutex::new(Node::start("node2", root.path(), args)));
    let _witness = Witness { nodes: vec![n1.clone(), n2.clone()], cluster: &cluster };
    let (n1, n2) = (n1.lock().unwrap(), n2.lock().unwrap());
    let stream = StreamId([9; 32]);
    let client = rpc_support::signer(9);
    for i in 0..20u32 {
        let value = format!("value {i}");
        let written = n1
            .rpc()
            .submit(&client, vec![(stream, b"k", native::Op::Put(value.clone().into_bytes().into()))]);
        let version = written["version"].as_u64().expect("a version");
        let read = n2
            .rpc()
            .result("kv_getValue", json!([stream.to_string(), STANDARD.encode(b"k"), 0, 100, version]));
        assert_eq!(read["data"], json!(STANDARD.encode(value.as_bytes())), "read {i} through node 2: {read}");
        assert_eq!(read["version"], json!(version));
    }
    let visible = n2.info()["appliedVersion"].as_u64().unwrap();
    let future = tx_version((visible >> 16) + 1_000, 0);
    let error =
        n2.rpc().error("kv_getValue", json!([stream.to_string(), STANDARD.encode(b"k"), 0, 100, future]));
    assert_eq!(error["code"], json!(-32020), "a version nobody wrote: {error}");
}
