//! Ticks: while a key has an expiry, an idle node appends empty entries so
//! log time advances without writes (docs/expiry.md); they change neither
//! the data nor the state digest until a key expires, which the next one
//! then deletes (the sweep), and they stop once no key has an expiry.

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

fn keyspace(rpc: &Rpc) -> String {
    rpc.redis(&["INFO", "keyspace"])
}

#[test]
fn ticks_delete_an_expired_key_and_stop_once_no_key_has_an_expiry() {
    let node = Server::builder().args(["--admin-token", TOKEN, "--expiry-tick-ms", "20"]).start();
    let rpc = Rpc::new(&node);
    assert_eq!(rpc.redis(&["SET", "lasting", "v"]), "+OK\r\n");
    assert_eq!(rpc.redis(&["SET", "brief", "v", "PX", "100"]), "+OK\r\n");
    assert_eq!(rpc.redis(&["SET", "later", "v", "EX", "100000"]), "+OK\r\n");
    assert!(keyspace(&rpc).contains("expires=2"), "{}", keyspace(&rpc));
    let deadline = Instant::now() + PATIENCE;
    while !keyspace(&rpc).contains("expires=1") {
        assert!(Instant::now() < deadline, "the expired key was not swept: {}", keyspace(&rpc));
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(rpc.redis(&["GET", "brief"]), "$-1\r\n");
    assert_eq!(rpc.redis(&["PERSIST", "later"]), ":1\r\n");
    assert!(keyspace(&rpc).contains("keys=2,expires=0"), "{}", keyspace(&rpc));
    // No key has an expiry: the node stops ticking (a tick in this window
    // would be one of the ten it would append at its interval).
    let idle = info(&node)["appliedPosition"].clone();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(info(&node)["appliedPosition"], idle, "no tick without an expiring key");
}
