//! A flipped byte inside a stored value, in a sealed segment a checkpoint
//! covers (so opening the node does not replay, and so does not re-check,
//! that segment): every interface answers it as corruption naming the
//! file, never with the damaged bytes, and counts it in /metrics; the
//! other keys stay readable.

mod rpc_support;
mod server;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rpc_support::Rpc;
use serde_json::json;
use server::{logkv, Server};

const VALUE: &str = "the-value-whose-byte-flips-0123456789";
const ZERO_STREAM: &str = "0x0000000000000000000000000000000000000000000000000000000000000000";

/// Writes the target key, then enough others to seal its 4 KiB segment,
/// then a checkpoint; flips one byte in the middle of the target's value.
/// Returns the damaged segment's file name.
fn damaged_node(dir: &std::path::Path) -> String {
    let d = dir.to_str().unwrap();
    let put = |k: &str, v: &str| {
        let out = logkv(&["--data-dir", d, "--segment-size-bytes", "4096", "put", k, v]);
        assert!(out.status.success(), "put {k}: {}", String::from_utf8_lossy(&out.stderr));
    };
    put("target", VALUE);
    for i in 0..40 {
        put(&format!("other{i}"), &format!("value {i}"));
    }
    let out = logkv(&["--data-dir", d, "checkpoint"]);
    assert!(out.status.success(), "checkpoint: {}", String::from_utf8_lossy(&out.stderr));
    let mut hits = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "log") {
            let bytes = std::fs::read(&path).unwrap();
            if let Some(at) = bytes.windows(VALUE.len()).position(|w| w == VALUE.as_bytes()) {
                hits.push((path, at));
            }
        }
    }
    assert_eq!(hits.len(), 1, "the value is stored once: {hits:?}");
    let (path, at) = hits.pop().unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[at + VALUE.len() / 2] ^= 0x20;
    std::fs::write(&path, bytes).unwrap();
    path.file_name().unwrap().to_str().unwrap().to_string()
}

#[test]
fn a_flipped_value_byte_is_corruption_on_every_interface() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    let file = damaged_node(&dir);
    let d = dir.to_str().unwrap();

    // The CLI: exit 3 naming the file; the other keys still read.
    let out = logkv(&["--data-dir", d, "get", "target"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "stderr: {stderr}");
    assert!(stderr.contains("checksum") && stderr.contains(&file), "names the damage: {stderr}");
    assert!(out.stdout.is_empty(), "no bytes of the damaged value");
    let out = logkv(&["--data-dir", d, "get", "other7"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "value 7");
    let out = logkv(&["--data-dir", d, "scan"]);
    assert_eq!(out.status.code(), Some(3), "a scan reaching the damaged value fails");

    // RESP and JSON-RPC on a running node.
    // Without the scrubber: it would find the damage first and, as the
    // target's current value is hit, keep the node unready (serve_scrub.rs).
    let server = Server::builder().data_dir(&dir).args(["--scrub-bytes-per-sec", "0"]).start();
    let rpc = Rpc::new(&server);
    let reply = rpc.redis(&["GET", "target"]);
    assert!(reply.starts_with("-") && reply.contains("checksum"), "RESP: {reply}");
    assert!(!reply.contains("the-value"), "RESP shows no value bytes: {reply}");
    assert!(rpc.redis(&["GET", "other3"]).contains("value 3"));
    let key = STANDARD.encode("target");
    let error = rpc.error("kv_getValue", json!([ZERO_STREAM, key, 0, 100]));
    assert_eq!(error["code"], -32050, "JSON-RPC: {error}");
    assert!(error["data"].as_str().unwrap().contains(&file), "JSON-RPC names the file: {error}");
    let (_, metrics) = rpc.get("/metrics");
    let failures: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("logkv_checksum_failures_total "))
        .expect("/metrics counts checksum failures")
        .trim()
        .parse()
        .unwrap();
    assert!(failures >= 2.0, "both reads counted: {failures}");
    server.stop_cleanly();
}
