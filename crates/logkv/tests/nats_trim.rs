//! Trimming a shared JetStream log (real `nats-server`s, real `logkv
//! serve` nodes): `logkv log trim --below` purges what it is told and
//! says so; `--nodes` trims nothing while a node reports no checkpoint; a
//! node whose data directory is behind the trimmed point refuses to start,
//! naming both positions and the way out, while a node that is caught up
//! keeps serving.
//!
//! Named `nats_*` so scripts/test.sh runs it against every NATS release it
//! installs (`LOGKV_NATS_SERVER`). Waits are bounded only to detect hangs.

mod nats;
mod rpc_support;
mod server;

use std::path::Path;
use std::thread;
use std::time::Instant;

use logkv_nats::{JetStreamLog, NatsConfig};
use logkv_runtime::shared_log::SharedLog;
use nats::Cluster;
use rpc_support::Rpc;
use serde_json::{json, Value};
use server::{logkv, Server, PATIENCE};

/// The bearer token of `admin_nodeInfo`.
const TOKEN: &str = "nats-trim-test-token";

/// `logkv serve` flags of a node on the 3-replica stream `stream`.
fn node_args(cluster: &Cluster, stream: &str) -> Vec<String> {
    let urls = cluster.urls();
    ["--log", &urls, "--log-stream", stream, "--replicas", "3", "--admin-token", TOKEN]
        .iter()
        .map(|a| a.to_string())
        .collect()
}

/// A node on `dir`, started and ready.
fn start_node(dir: &Path, args: &[String]) -> Server {
    Server::builder().data_dir(dir).args(args).start()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `admin_nodeInfo`.
fn info(node: &Server) -> Value {
    let answer = Rpc::new(node).call_with("admin_nodeInfo", json!([]), Some(TOKEN));
    assert!(answer.get("error").is_none(), "admin_nodeInfo failed: {answer}");
    answer["result"].clone()
}

/// `SET key value` over RESP, which must answer `+OK`.
fn set(node: &Server, key: &str, value: &str) {
    let client = redis::Client::open(node.redis_url()).expect("a redis URL");
    let mut con = client.get_connection_with_timeout(PATIENCE).expect("connect over RESP");
    let reply: String = redis::cmd("SET").arg(key).arg(value).query(&mut con).expect("SET");
    assert_eq!(reply, "OK", "SET {key}");
}

/// The stream's first position, as NATS node 1 reports it.
fn first_seq(cluster: &Cluster, stream: &str) -> Option<u64> {
    cluster.stream_info(1, stream)?["state"]["first_seq"].as_u64()
}

#[test]
fn a_node_behind_the_trimmed_point_refuses_to_start_and_says_how_to_recover() {
    const STREAM: &str = "kv";
    let cluster = Cluster::start(3);
    let root = tempfile::tempdir().expect("temporary directory");
    let args = node_args(&cluster, STREAM);
    let a = start_node(&root.path().join("a"), &args);
    // A's first write makes it the admin of the RESP stream.
    set(&a, "k0", "before");
    let b = start_node(&root.path().join("b"), &args);
    let written = info(&a)["appliedPosition"].as_u64().expect("a position");
    let deadline = Instant::now() + PATIENCE;
    while info(&b)["appliedPosition"].as_u64() != Some(written) {
        assert!(Instant::now() < deadline, "b did not apply position {written}: {}", info(&b));
        thread::sleep(PATIENCE / 300);
    }
    b.stop_cleanly();
    for i in 1..=5 {
        set(&a, &format!("k{i}"), "while b is down");
    }
    let last = info(&a)["appliedPosition"].as_u64().expect("a position");
    assert!(last > written + 1, "positions {written} then {last}");

    // A node without a checkpoint needs every position: nothing trimmed.
    let urls = cluster.urls();
    let base = ["log", "trim", "--log", &urls, "--log-stream", STREAM];
    let out = logkv(&[&base[..], &["--nodes", &a.http_url(), "--admin-token", TOKEN]].concat());
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains(&a.http_url()) && stderr.contains("nothing trimmed"), "{stderr}");
    assert_eq!(first_seq(&cluster, STREAM), Some(1));

    // Past b's position.
    let out = logkv(&[&base[..], &["--below", &last.to_string()]].concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let purged = last - 1;
    assert_eq!(
        text(&out.stdout),
        format!("purged {purged} entries below position {last} of stream {STREAM}; it now starts at position {last}\n")
    );

    let failed = Server::builder()
        .data_dir(root.path().join("b"))
        .args(&args)
        .try_start()
        .err()
        .expect("b must not start behind the trimmed point");
    eprintln!("b: {}", failed.stderr.lines().last().unwrap_or_default());
    let status = failed.status.expect("b exits rather than hangs");
    assert!(!status.success(), "{status}");
    for says in [
        "trimmed past this node's position".to_string(),
        format!("it now starts at position {last}"),
        format!("applied up to position {written} and needs {}", written + 1),
        "logkv checkpoint export".to_string(),
        "logkv checkpoint import".to_string(),
    ] {
        assert!(failed.stderr.contains(&says), "no {says:?} in b's stderr:\n{}", failed.stderr);
    }

    // A was past the trimmed point: it keeps following and serving.
    set(&a, "k6", "after the trim");
    let shared_log = info(&a)["sharedLog"].clone();
    assert_eq!(shared_log["failure"], Value::Null, "{shared_log}");
    assert_eq!(shared_log["caughtUp"], json!(true), "{shared_log}");
    assert!(shared_log["through"].as_u64() > Some(last), "{shared_log}");
}

#[test]
fn log_trim_below_purges_what_it_is_told_and_refuses_past_the_tail() {
    const STREAM: &str = "cli";
    let cluster = Cluster::start(1);
    let config = NatsConfig::new(&cluster.urls(), STREAM, 1).expect("a valid configuration");
    let log = JetStreamLog::open(&config).expect("create the stream");
    for i in 1..=6 {
        log.handle().block_on(log.append(&[format!("entry {i}").into_bytes().into()])).expect("append");
    }
    let urls = cluster.urls();
    let trim = |stream: &str, below: &str| {
        logkv(&["log", "trim", "--log", &urls, "--log-stream", stream, "--below", below])
    };

    let out = trim(STREAM, "4");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "purged 3 entries below position 4 of stream cli; it now starts at position 4\n"
    );
    assert_eq!(first_seq(&cluster, STREAM), Some(4));
    let messages =
        cluster.stream_info(1, STREAM).expect("/jsz reports the stream")["state"]["messages"].clone();
    assert_eq!(messages, 3, "positions 4 to 6 kept");

    let out = trim(STREAM, "2");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "purged 0 entries below position 2 of stream cli; it now starts at position 4\n"
    );

    let out = trim(STREAM, "9");
    assert_eq!(out.status.code(), Some(2), "past the tail + 1 is a usage error");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("cannot trim below position 9: the stream's last position is 6"), "{stderr}");
    assert_eq!(first_seq(&cluster, STREAM), Some(4));

    let out = trim("nosuch", "2");
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("no such stream"), "{}", text(&out.stderr));
    assert!(cluster.stream_info(1, "nosuch").is_none(), "trim never creates a stream");
}
