//! A new node of a shared JetStream log started from another node's export
//! once the stream no longer holds its beginning (real `nats-server`s,
//! real `logkv serve` nodes): node A exports while three nodes write
//! (`logkv checkpoint export --remote`), the stream is trimmed right after
//! the export's position (`logkv log trim --below`), a fresh node refuses
//! to start, and node D, imported from the export (`logkv checkpoint
//! import --log --log-stream`), catches up to the same state digest at the
//! same version as the others and reads every acknowledged write. The
//! export holds exactly A's state at its version: D's digest as of it is
//! A's.
//!
//! Each node writes over RESP to a stream of its own, whose admin its
//! first write makes it, so no node needs rights from another.
//!
//! Named `nats_*` so scripts/test.sh runs it against every NATS release it
//! installs (`LOGKV_NATS_SERVER`). Waits are bounded only to detect hangs.

mod nats;
mod rpc_support;
mod server;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use logkv_runtime::apply::Watched;
use logkv_runtime::node::{Node, NodeOptions};
use logkv_store::StoreOptions;
use nats::Cluster;
use rpc_support::Rpc;
use serde_json::{json, Value};
use server::{logkv, Server, PATIENCE};

const TOKEN: &str = "nats-checkpoint-import-test-token";
const STREAM: &str = "seeded";

/// Acknowledged writes to wait for before the export, and after it.
const WRITES_EACH_SIDE: usize = 150;

/// `logkv serve` flags of a node on the 3-replica stream.
fn node_args(cluster: &Cluster) -> Vec<String> {
    let urls = cluster.urls();
    ["--log", &urls, "--log-stream", STREAM, "--replicas", "3", "--admin-token", TOKEN]
        .iter()
        .map(|a| a.to_string())
        .collect()
}

/// The RESP stream of writer node `n`.
fn resp_stream(n: u8) -> String {
    format!("0x{}", hex::encode([n; 32]))
}

/// `logkv ARGS`, which must succeed: its stdout.
fn logkv_ok(args: &[&str]) -> String {
    let out = logkv(args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "logkv {args:?}: {}\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The number `name=` of the line of `out` starting with `line`.
fn field(out: &str, line: &str, name: &str) -> u64 {
    let report =
        out.lines().find(|l| l.starts_with(line)).unwrap_or_else(|| panic!("no {line:?} in {out:?}"));
    let value = report.split_whitespace().find_map(|w| w.strip_prefix(&format!("{name}=")));
    value.and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("no number {name}= in {report:?}"))
}

fn info(node: &Server) -> Value {
    let answer = Rpc::new(node).call_with("admin_nodeInfo", json!([]), Some(TOKEN));
    assert!(answer.get("error").is_none(), "admin_nodeInfo failed: {answer}");
    answer["result"].clone()
}

/// Writes whose `+OK` a client read: RESP stream, key and value.
type Acked = Arc<Mutex<Vec<(String, String, String)>>>;

/// SETs unique keys through `node`'s RESP address until `stop`.
fn writer(resp: String, stream: String, label: String, stop: Arc<AtomicBool>, acked: Acked) {
    let client = redis::Client::open(format!("redis://{resp}/")).expect("a redis URL");
    let mut con = client.get_connection_with_timeout(PATIENCE).expect("connect over RESP");
    con.set_read_timeout(Some(PATIENCE)).expect("read timeout");
    for n in 0.. {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let (key, value) = (format!("{label}-{n}"), format!("{label} wrote {n}"));
        let reply: String = redis::cmd("SET").arg(&key).arg(&value).query(&mut con).expect("SET");
        assert_eq!(reply, "OK", "SET {key}");
        acked.lock().unwrap().push((stream.clone(), key, value));
    }
}

fn wait_for_acks(acked: &Acked, count: usize) {
    let deadline = Instant::now() + PATIENCE;
    while acked.lock().unwrap().len() < count {
        assert!(Instant::now() < deadline, "{} of {count} writes acknowledged", acked.lock().unwrap().len());
        thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until every node has applied the stream's last position (as NATS
/// node 1 reports it) and returns their `admin_nodeInfo`.
fn settle(nodes: &[&Server], cluster: &Cluster) -> Vec<Value> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let infos: Vec<Value> = nodes.iter().map(|n| info(n)).collect();
        let tail = cluster.last_seq(1, STREAM);
        let positions: Vec<Option<u64>> = infos.iter().map(|i| i["appliedPosition"].as_u64()).collect();
        if tail.is_some() && positions.iter().all(|p| *p == tail) {
            return infos;
        }
        assert!(Instant::now() < deadline, "not settled: applied {positions:?}, stream tail {tail:?}");
        thread::sleep(Duration::from_millis(200));
    }
}

/// The state digest of the node in `dir` as of `version`, read from its
/// stopped data directory.
fn digest_at(dir: &Path, version: u64) -> String {
    let node = Node::open(
        dir,
        NodeOptions { store: StoreOptions::default(), watched: Watched::All, ..NodeOptions::default() },
    )
    .unwrap_or_else(|e| panic!("open {}: {e}", dir.display()));
    let digest = node.digest_at(Some(version)).expect("the digest as of the version");
    node.close().expect("close");
    hex::encode(digest.to_bytes())
}

#[test]
fn a_node_imported_from_an_export_catches_up_after_the_stream_was_trimmed() {
    let cluster = Cluster::start(3);
    let root = tempfile::tempdir().expect("temporary directory");
    let args = node_args(&cluster);
    // Exports are written into the root (each node's backup_dir).
    let start = |name: &str, extra: &[String]| {
        Server::builder()
            .data_dir(root.path().join(name))
            .args(&args)
            .arg("--backup-dir")
            .arg(root.path())
            .args(extra)
            .start()
    };
    let writers: Vec<Server> =
        (1..=3).map(|n| start(&format!("w{n}"), &["--stream".to_string(), resp_stream(n)])).collect();
    let a = &writers[0];

    let stop = Arc::new(AtomicBool::new(false));
    let acked: Acked = Arc::default();
    let mut threads = Vec::new();
    for (i, node) in writers.iter().enumerate() {
        for t in 0..2 {
            let (resp, stream, stop, acked) =
                (node.resp.clone(), resp_stream(i as u8 + 1), stop.clone(), acked.clone());
            let label = format!("w{}t{t}", i + 1);
            threads.push(thread::spawn(move || writer(resp, stream, label, stop, acked)));
        }
    }
    wait_for_acks(&acked, WRITES_EACH_SIDE);

    // A exports while every node goes on writing.
    let export = root.path().join("a.export");
    let out = logkv_ok(&[
        "checkpoint",
        "export",
        &export.display().to_string(),
        "--remote",
        &a.http_url(),
        "--admin-token",
        TOKEN,
    ]);
    let (version, position) = (field(&out, "exported", "version"), field(&out, "exported", "position"));
    assert_eq!(position, version >> 16, "{out}");
    let during = acked.lock().unwrap().len();
    wait_for_acks(&acked, during + WRITES_EACH_SIDE);
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("a writer panicked");
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    let tail = cluster.last_seq(1, STREAM).expect("the stream's tail");
    assert!(
        position > 1 && position < tail,
        "the export at {position} is inside the stream (1..={tail}): {out}"
    );
    eprintln!("exported at position {position} of {tail}; {} writes acknowledged", acked.len());

    // Everything up to the export's position is gone from the stream.
    let urls = cluster.urls();
    let below = (position + 1).to_string();
    let trim = ["log", "trim", "--log", &urls, "--log-stream", STREAM, "--below", &below];
    let out = logkv_ok(&trim);
    assert!(out.contains(&format!("it now starts at position {below}")), "{out}");

    let fresh = Server::builder()
        .data_dir(root.path().join("fresh"))
        .args(&args)
        .try_start()
        .err()
        .expect("a fresh node must not start on the trimmed stream");
    assert!(fresh.stderr.contains("trimmed past this node's position"), "{}", fresh.stderr);

    // An import names a stream that exists, and nothing is left of one
    // that does not.
    let d_dir = root.path().join("d");
    let d_path = d_dir.display().to_string();
    let import = |stream: &str| {
        logkv(&[
            "checkpoint",
            "import",
            &export.display().to_string(),
            "--data-dir",
            &d_path,
            "--log",
            &urls,
            "--log-stream",
            stream,
        ])
    };
    let refused = import("nosuch");
    assert_eq!(refused.status.code(), Some(3), "{}", String::from_utf8_lossy(&refused.stderr));
    assert!(!d_dir.exists(), "nothing imported for a stream that does not exist");
    let out = import(STREAM);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        (field(&stdout, "imported", "version"), field(&stdout, "imported", "position")),
        (version, position)
    );
    assert_eq!(field(&stdout, "follows", "from_position"), position + 1, "{stdout}");

    let d = Server::builder().data_dir(&d_dir).args(&args).start();
    let mut nodes: Vec<&Server> = writers.iter().collect();
    nodes.push(&d);
    let infos = settle(&nodes, &cluster);
    let states: Vec<(&Value, &Value)> =
        infos.iter().map(|i| (&i["stateDigest"], &i["stateDigestVersion"])).collect();
    assert!(states.iter().all(|s| *s == states[0]), "nodes w1, w2, w3, d differ: {states:?}");
    let shared_log = &infos[3]["sharedLog"];
    assert_eq!(shared_log["failure"], Value::Null, "{shared_log}");

    // D reads every acknowledged write, those before the export included.
    let rpc = Rpc::new(&d);
    for (stream, key, value) in &acked {
        let got = rpc.result("kv_getValue", json!([stream, STANDARD.encode(key), 0, 1024, null]));
        let data = STANDARD.decode(got["data"].as_str().expect("data")).expect("base64");
        assert_eq!(String::from_utf8_lossy(&data), *value, "d: {key} on {stream}");
    }

    // The export, taken under writes, is A's state as of its version.
    let a_dir = a.dir().to_path_buf();
    drop(nodes);
    d.stop_cleanly();
    writers.into_iter().next().expect("node a").stop_cleanly();
    assert_eq!(digest_at(&d_dir, version), digest_at(&a_dir, version));
}
