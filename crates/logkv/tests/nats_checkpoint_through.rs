//! `admin_nodeInfo`'s `sharedLog.checkpointThrough` on nodes of a shared
//! JetStream log (a real `nats-server`, real `logkv serve` nodes): null
//! until the node has a checkpoint, then the stream position the
//! checkpoint covers — a stream position, not the node's own log
//! position, which differs on a node watching some streams only — also
//! after a restart, and what `logkv log trim --nodes` trims below.
//!
//! Named `nats_*` so scripts/test.sh runs it against every NATS release it
//! installs (`LOGKV_NATS_SERVER`). Waits are bounded only to detect hangs.

mod nats;
mod rpc_support;
mod server;

use std::process::Command;
use std::time::Instant;

use logkv_runtime::codec::native::Op;
use logkv_runtime::types::StreamId;
use nats::Cluster;
use rpc_support::{signer, Rpc};
use serde_json::{json, Value};
use server::{Server, PATIENCE};

const TOKEN: &str = "checkpoint-through-test-token";
const STREAM: &str = "ckpt";
/// The stream the selective node watches.
const WATCHED: StreamId = StreamId([7; 32]);

fn info(node: &Server) -> Value {
    let answer = Rpc::new(node).call_with("admin_nodeInfo", json!([]), Some(TOKEN));
    assert!(answer.get("error").is_none(), "admin_nodeInfo failed: {answer}");
    answer["result"].clone()
}

fn checkpoint(node: &Server) -> Value {
    let answer = Rpc::new(node).call_with("admin_checkpoint", json!([]), Some(TOKEN));
    assert!(answer.get("error").is_none(), "admin_checkpoint failed: {answer}");
    answer["result"].clone()
}

#[test]
fn checkpoint_through_is_the_stream_position_a_checkpoint_covers() {
    let cluster = Cluster::start(1);
    let root = tempfile::tempdir().expect("temporary directory");
    let urls = cluster.urls();
    let args = ["--log", &urls, "--log-stream", STREAM, "--admin-token", TOKEN];
    let all = Server::builder().data_dir(root.path().join("all")).args(args).start();
    let watched = WATCHED.to_string();
    let selective =
        Server::builder().data_dir(root.path().join("one")).args(args).args(["--watch", &watched]).start();
    // Positions 1 to 3 on the RESP stream, which the selective node skips;
    // position 4 on the watched stream.
    let rpc = Rpc::new(&all);
    for i in 0..3 {
        assert_eq!(rpc.redis(&["SET", &format!("k{i}"), "v"]), "+OK\r\n");
    }
    let written = rpc.submit(&signer(1), vec![(WATCHED, b"w", Op::Put(b"v".to_vec().into()))]);
    let last = written["position"].as_u64().expect("a position");
    assert_eq!(last, 4, "{written}");
    let deadline = Instant::now() + PATIENCE;
    while info(&selective)["appliedPosition"].as_u64() != Some(last) {
        assert!(Instant::now() < deadline, "the selective node did not apply {last}: {}", info(&selective));
        std::thread::sleep(PATIENCE / 600);
    }

    for node in [&all, &selective] {
        assert_eq!(info(node)["sharedLog"]["checkpointThrough"], Value::Null, "no checkpoint yet");
        let taken = checkpoint(node);
        let shared_log = info(node)["sharedLog"].clone();
        assert_eq!(shared_log["checkpointThrough"], json!(last), "{shared_log}, checkpoint {taken}");
    }
    let own = info(&selective)["checkpoint"]["position"].as_u64().expect("a checkpoint");
    assert!(own < last, "the selective node logged only what it watches: its own position {own}");

    let out = Command::new(server::binary())
        .args(["log", "trim", "--log", &urls, "--log-stream", STREAM, "--admin-token", TOKEN])
        .args(["--nodes", &format!("{},{}", all.http_url(), selective.http_url())])
        .output()
        .expect("run logkv log trim");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(&format!("purged {last} entries below position {}", last + 1)), "{stdout}");

    // A restarted node still reports the checkpoint it loaded.
    selective.stop_cleanly();
    let selective =
        Server::builder().data_dir(root.path().join("one")).args(args).args(["--watch", &watched]).start();
    assert_eq!(info(&selective)["sharedLog"]["checkpointThrough"], json!(last));
}
