//! Ticks: once a key has an expiry, an idle node appends empty entries so
//! log time advances without writes (docs/expiry.md), and they change
//! neither the data nor the state digest.

mod rpc_support;
mod server;

use std::time::{Duration, Instant};

use rpc_support::Rpc;
use serde_json::{json, Value};
use server::{Server, PATIENCE};

const TOKEN: &str = "expiry-tick-test-token";

fn info(node: &Server) -> Value {
    Rpc::new(node).call_with("admin_nodeInfo", json!([]), Some(TOKEN))["result"].clone()
}

#[test]
fn an_idle_node_with_expiring_keys_moves_log_time_on() {
    let node = Server::builder().args(["--admin-token", TOKEN, "--expiry-tick-ms", "20"]).start();
    let rpc = Rpc::new(&node);
    assert_eq!(rpc.redis(&["SET", "session", "v", "PX", "600000"]), "+OK\r\n");
    let after_set = info(&node);
    let deadline = Instant::now() + PATIENCE;
    let later = loop {
        let now = info(&node);
        if now["appliedPosition"].as_u64() > after_set["appliedPosition"].as_u64() {
            break now;
        }
        assert!(Instant::now() < deadline, "no tick was appended: {now}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(later["appliedLogTimeMs"].as_u64() > after_set["appliedLogTimeMs"].as_u64(), "{later}");
    assert_eq!(later["stateDigest"], after_set["stateDigest"], "a tick changes no state");
    assert_eq!(rpc.redis(&["GET", "session"]), "$1\r\nv\r\n");
}
