//! `logkv serve --log file:DIR`: a node on a file log of entries, the
//! shared log that needs no NATS. Its writes go through the log and come
//! back through the follower (the same replica as on JetStream), a
//! restart resumes from the node's own applied position, the data
//! directory is marked as the log's copy, a second process cannot take
//! the log, and `logkv log trim` works on it while the node is stopped.

mod rpc_support;
mod server;

use rpc_support::Rpc;
use serde_json::{json, Value};
use server::{logkv, Server};

const TOKEN: &str = "file-log-test-token";

fn info(node: &Server) -> Value {
    let answer = Rpc::new(node).call_with("admin_nodeInfo", json!([]), Some(TOKEN));
    answer["result"].clone()
}

#[test]
fn a_node_runs_on_a_file_log_of_entries_and_resumes_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let (log, data) = (dir.path().join("log"), dir.path().join("data"));
    let log_arg = format!("file:{}", log.display());
    let args = ["--log", &log_arg, "--admin-token", TOKEN];
    let node = Server::builder().data_dir(&data).args(args).start();
    let rpc = Rpc::new(&node);
    assert_eq!(rpc.redis(&["SET", "greeting", "hello"]), "+OK\r\n");
    assert_eq!(rpc.redis(&["SET", "other", "value"]), "+OK\r\n");
    assert_eq!(rpc.redis(&["GET", "greeting"]), "$5\r\nhello\r\n", "read back at once");
    let before = info(&node);
    let shared = &before["sharedLog"];
    let identity = format!("file:{}", log.canonicalize().unwrap().display());
    assert_eq!(shared["log"], json!(identity), "{before}");
    assert_eq!(shared["caughtUp"], json!(true), "{before}");
    assert_eq!(before["appliedPosition"], json!(2), "{before}");
    assert!(before["appliedLogTimeMs"].as_u64().is_some(), "{before}");
    let marker = std::fs::read_to_string(data.join("shared-log.toml")).unwrap();
    assert_eq!(marker, format!("log = \"{identity}\"\nwatch = \"all\"\n"));

    // Another process cannot share it: the log is one process's.
    let other = Server::builder().data_dir(dir.path().join("other")).args(args).try_start();
    let failed = other.err().expect("a second process is refused");
    assert!(failed.stderr.contains("locked by pid"), "{}", failed.stderr);
    node.stop_cleanly();

    // The node's own log alone is refused for a copy of a shared log.
    let embedded = Server::builder().data_dir(&data).try_start();
    let failed = embedded.err().expect("the marker refuses the embedded log");
    assert!(failed.stderr.contains("copy of a shared log"), "{}", failed.stderr);

    // Trimming while no node holds the log: it keeps whole files, so a
    // small log keeps everything.
    let out = logkv(&["log", "trim", "--log", &log_arg, "--below", "2"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.starts_with("purged 0 entries below position 2 of file log "), "{said}");

    // A restart resumes where it was, with the same log times.
    let node = Server::builder().data_dir(&data).args(args).start();
    let rpc = Rpc::new(&node);
    assert_eq!(rpc.redis(&["GET", "other"]), "$5\r\nvalue\r\n");
    assert_eq!(info(&node)["appliedLogTimeMs"], before["appliedLogTimeMs"]);
    assert_eq!(rpc.redis(&["SET", "greeting", "again"]), "+OK\r\n");
    assert_eq!(info(&node)["appliedPosition"], json!(3));
    node.stop_cleanly();
}
