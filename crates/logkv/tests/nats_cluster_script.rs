//! scripts/nats-cluster.sh through tests/nats: the nodes the NATS tests
//! rely on greet clients with an 8 MiB payload limit and JetStream on, a
//! crashed node refuses connections, and a restarted one greets again.

mod nats;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::time::Duration;

use nats::Cluster;

/// The `INFO {...}` line a NATS server sends first on a client connection.
fn greeting(addr: &str) -> String {
    let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("read timeout");
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap_or_else(|e| panic!("read INFO from {addr}: {e}"));
    assert!(line.starts_with("INFO {"), "{addr} greeted with {line:?}");
    line
}

fn assert_greets(cluster: &Cluster, i: usize) -> String {
    let info = greeting(&cluster.addr(i));
    for expected in ["\"max_payload\":8388608", "\"jetstream\":true", &format!("\"server_name\":\"n{i}\"")] {
        assert!(info.contains(expected), "node {i}'s INFO lacks {expected}: {info}");
    }
    info
}

#[test]
fn three_nodes_greet_crash_and_restart() {
    eprintln!("server: {}", nats::server_version());
    let cluster = Cluster::start(3);
    let urls: Vec<String> = (1..=3).map(|i| cluster.url(i)).collect();
    assert_eq!(cluster.urls(), urls.join(","));
    for i in 1..=3 {
        let info = assert_greets(&cluster, i);
        assert!(info.contains("\"cluster\":\"logkv\""), "node {i} is not clustered: {info}");
    }

    cluster.kill9(2);
    let refused = TcpStream::connect(cluster.addr(2));
    assert!(refused.is_err(), "node 2 still accepts connections after SIGKILL");
    assert_greets(&cluster, 1);
    assert_greets(&cluster, 3);

    cluster.restart(2);
    assert_greets(&cluster, 2);
}

#[test]
fn one_node_is_standalone_jetstream() {
    let cluster = Cluster::start(1);
    assert_eq!(cluster.urls(), cluster.url(1));
    let info = assert_greets(&cluster, 1);
    assert!(!info.contains("\"cluster\":"), "a single node must not be clustered: {info}");
}
