//! Repair of a shared-log node's damaged local log (real `nats-server`s,
//! real `logkv serve` nodes; docs/distributed.md, "Repair"): three nodes
//! follow one 3-replica stream while node A writes keys in several
//! versions; node C is stopped and bytes of its sealed segments are
//! flipped — inside a record's value and inside another record's frame
//! header. `logkv repair` writes both records again from the stream, byte
//! for byte; C restarts with the same state digest as A and the same
//! history (every version of every key, and its value). Then `logkv
//! serve` itself repairs new damage at start, and its scrubber damage
//! made while it runs. Last, damage whose entries
//! the stream no longer holds (trimmed) cannot be repaired in place: C is
//! rebuilt from A's export, its damaged directory set aside, and catches
//! up with the others.
//!
//! Named `nats_*` so scripts/test.sh runs it against every NATS release it
//! installs (`LOGKV_NATS_SERVER`). Waits are bounded only to detect hangs.

mod nats;
mod rpc_support;
mod server;

use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use nats::Cluster;
use rpc_support::Rpc;
use serde_json::{json, Value};
use server::{logkv, Server, PATIENCE};

const TOKEN: &str = "nats-repair-test-token";
const LOG_STREAM: &str = "repaired";
/// Small segments, so the writes fill several and most are sealed.
const SEGMENT_BYTES: &str = "16384";
const KEYS: usize = 30;
const VERSIONS: usize = 6;

/// `logkv serve` flags of a node on the 3-replica stream, writing RESP
/// commands to `stream`.
fn node_args(cluster: &Cluster) -> Vec<String> {
    let urls = cluster.urls();
    let args = ["--log", &urls, "--log-stream", LOG_STREAM, "--replicas", "3", "--admin-token", TOKEN];
    let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    args.extend(["--segment-size-bytes".into(), SEGMENT_BYTES.into(), "--stream".into(), stream()]);
    // Scrub the few small files continuously, so damage made while a node
    // runs is found at once.
    args.extend(["--scrub-bytes-per-sec", "100000000", "--scrub-interval-secs", "1"].map(String::from));
    args
}

/// The RESP stream every node writes and reads.
fn stream() -> String {
    format!("0x{}", hex::encode([7u8; 32]))
}

/// Starts a node in `dir`, whose exports go beside it.
fn start(dir: &Path, cluster: &Cluster) -> Server {
    let backups = dir.parent().expect("a directory in the test's root");
    Server::builder().data_dir(dir).args(node_args(cluster)).arg("--backup-dir").arg(backups).start()
}

/// `logkv repair` on `dir` with the node's settings and `extra`.
fn repair(dir: &Path, cluster: &Cluster, extra: &[&str]) -> std::process::Output {
    let dir = dir.display().to_string();
    let urls = cluster.urls();
    let mut args = vec!["repair", "--data-dir", &dir, "--log", &urls, "--log-stream", LOG_STREAM];
    args.extend(["--segment-size-bytes", SEGMENT_BYTES]);
    args.extend(extra);
    logkv(&args)
}

fn info(node: &Server) -> Value {
    let answer = Rpc::new(node).call_with("admin_nodeInfo", json!([]), Some(TOKEN));
    assert!(answer.get("error").is_none(), "admin_nodeInfo failed: {answer}");
    answer["result"].clone()
}

/// Waits until every node has applied the stream's tail and returns their
/// (state digest, its version).
fn settle(nodes: &[&Server], cluster: &Cluster) -> Vec<(Value, Value)> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let infos: Vec<Value> = nodes.iter().map(|n| info(n)).collect();
        let tail = cluster.last_seq(1, LOG_STREAM);
        let positions: Vec<Option<u64>> = infos.iter().map(|i| i["appliedPosition"].as_u64()).collect();
        if tail.is_some() && positions.iter().all(|p| *p == tail) {
            return infos
                .iter()
                .map(|i| (i["stateDigest"].clone(), i["stateDigestVersion"].clone()))
                .collect();
        }
        assert!(Instant::now() < deadline, "not settled: applied {positions:?}, stream tail {tail:?}");
        thread::sleep(Duration::from_millis(100));
    }
}

/// Writes `rounds` versions of every key through `node`'s RESP.
fn write(node: &Server, round: std::ops::Range<usize>) {
    let client = redis::Client::open(format!("redis://{}/", node.resp)).expect("a redis URL");
    let mut con = client.get_connection_with_timeout(PATIENCE).expect("connect over RESP");
    for r in round {
        for k in 0..KEYS {
            let value = format!("key {k} in round {r}: {}", "v".repeat(80));
            let reply: String =
                redis::cmd("SET").arg(format!("k{k}")).arg(value).query(&mut con).expect("SET");
            assert_eq!(reply, "OK");
        }
    }
}

/// Every key's history and the value of each version in it, as `node`
/// serves them.
fn histories(node: &Server) -> Vec<(Value, Vec<String>)> {
    let rpc = Rpc::new(node);
    (0..KEYS)
        .map(|k| {
            let key = STANDARD.encode(format!("k{k}"));
            let history = rpc.result("kv_getHistory", json!([stream(), key]));
            let values = history
                .as_array()
                .expect("a list of versions")
                .iter()
                .map(|v| {
                    let got = rpc.result("kv_getValue", json!([stream(), key, 0, 1024, v["version"]]));
                    let data = STANDARD.decode(got["data"].as_str().expect("data")).expect("base64");
                    String::from_utf8(data).expect("utf-8")
                })
                .collect();
            (history, values)
        })
        .collect()
}

/// The offsets of the frames of segment `path`, in order.
fn frames(path: &Path) -> Vec<usize> {
    let bytes = std::fs::read(path).expect("segment");
    let mut offsets = Vec::new();
    let mut off = 32;
    while off + 21 <= bytes.len() && bytes[off..off + 21].iter().any(|&b| b != 0) {
        offsets.push(off);
        off += 26 + u32::from_le_bytes(bytes[off..off + 4].try_into().unwrap()) as usize;
    }
    offsets
}

fn segment(dir: &Path, n: u32) -> PathBuf {
    dir.join(format!("{n:08}.log"))
}

/// Flips the byte at `at` of `path`.
fn flip(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).expect("segment");
    bytes[at] ^= 0x5a;
    std::fs::write(path, bytes).expect("write the segment back");
}

/// Flips the byte at `at` of `path` in place, as a disk would under a
/// running node (the file is never shorter meanwhile).
fn flip_in_place(path: &Path, at: usize) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new().read(true).write(true).open(path).expect("segment");
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, at as u64).expect("read the byte");
    file.write_all_at(&[byte[0] ^ 0x5a], at as u64).expect("write the byte back");
}

/// Where the middle of the payload of frame `i` of `path` is: inside the
/// entry, where the values are.
fn payload_middle(path: &Path, i: usize) -> usize {
    let at = frames(path)[i];
    let len = u32::from_le_bytes(std::fs::read(path).unwrap()[at..at + 4].try_into().unwrap()) as usize;
    at + 21 + len / 2
}

/// Flips a byte in the middle of the payload of frame `i` of `path`.
fn flip_payload(path: &Path, i: usize) {
    flip(path, payload_middle(path, i));
}

fn ok_stdout(out: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}\n{stdout}{}", out.status, String::from_utf8_lossy(&out.stderr));
    stdout
}

#[test]
fn a_damaged_node_is_repaired_from_the_stream_or_rebuilt_from_an_export() {
    let cluster = Cluster::start(3);
    let root = tempfile::tempdir().expect("temporary directory");
    let a = start(&root.path().join("a"), &cluster);
    let b = start(&root.path().join("b"), &cluster);
    let c_dir = root.path().join("c");
    let c = start(&c_dir, &cluster);
    write(&a, 0..VERSIONS);
    settle(&[&a, &b, &c], &cluster);
    c.stop_cleanly();
    assert!(segment(&c_dir, 4).exists(), "the writes fill several segments");

    // A value's byte in one record, the position in another's frame header.
    let sealed = segment(&c_dir, 2);
    let pristine = std::fs::read(&sealed).unwrap();
    flip_payload(&sealed, 2);
    flip(&sealed, frames(&segment(&c_dir, 2))[4] + 6);
    let damaged = logkv(&["inspect", "--data-dir", &c_dir.display().to_string()]);
    assert_eq!(damaged.status.code(), Some(3), "inspect sees the damage");
    let out = ok_stdout(&repair(&c_dir, &cluster, &[]));
    assert_eq!(out.lines().filter(|l| l.starts_with("repaired ")).count(), 2, "{out}");
    assert_eq!(std::fs::read(&sealed).unwrap(), pristine, "the segment is byte for byte what it was");
    ok_stdout(&logkv(&["inspect", "--data-dir", &c_dir.display().to_string()]));

    let c = start(&c_dir, &cluster);
    let states = settle(&[&a, &b, &c], &cluster);
    assert!(states.iter().all(|s| *s == states[0]), "a, b, c differ: {states:?}");
    let expected = histories(&a);
    assert_eq!(expected[0].0.as_array().map(Vec::len), Some(VERSIONS), "every version is kept");
    assert_eq!(histories(&c), expected, "c's history after repair");

    // Damage strict open meets: `serve` repairs it before it starts.
    c.stop_cleanly();
    let sealed = segment(&c_dir, 3);
    let pristine = std::fs::read(&sealed).unwrap();
    flip_payload(&sealed, 1);
    let c = start(&c_dir, &cluster);
    assert!(c.stderr().contains("repaired damaged records"), "{}", c.stderr());
    assert_eq!(std::fs::read(&sealed).unwrap(), pristine);
    let states = settle(&[&a, &b, &c], &cluster);
    assert!(states.iter().all(|s| *s == states[0]), "a, b, c differ: {states:?}");
    assert_eq!(histories(&c), expected, "c's history after the repair at start");

    // Damage under the running node: its scrubber finds it and repairs it
    // from the stream, and the node is no longer degraded.
    let sealed = segment(&c_dir, 2);
    let pristine = std::fs::read(&sealed).unwrap();
    flip_in_place(&sealed, payload_middle(&sealed, 5));
    let deadline = Instant::now() + PATIENCE;
    loop {
        let repairs = c.stderr().matches("repaired damaged records").count();
        let restored = std::fs::read(&sealed).unwrap() == pristine;
        if repairs == 2 && restored && info(&c)["degraded"] == json!(false) {
            break;
        }
        assert!(Instant::now() < deadline, "not repaired while running: {}", c.stderr());
        thread::sleep(Duration::from_millis(100));
    }
    assert!(c.stderr().contains("scrub found damage"), "{}", c.stderr());
    let states = settle(&[&a, &b, &c], &cluster);
    assert!(states.iter().all(|s| *s == states[0]), "a, b, c differ: {states:?}");
    assert_eq!(histories(&c), expected, "c's history after the scrubber's repair");

    // The stream trimmed past the damage: rebuilt from a's export.
    c.stop_cleanly();
    let export = root.path().join("a.export");
    let export_path = export.display().to_string();
    let out = ok_stdout(&logkv(&[
        "checkpoint",
        "export",
        &export_path,
        "--remote",
        &a.http_url(),
        "--admin-token",
        TOKEN,
    ]));
    let position: u64 = out
        .split_whitespace()
        .find_map(|w| w.strip_prefix("position="))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no position in {out}"));
    let below = (position + 1).to_string();
    let urls = cluster.urls();
    ok_stdout(&logkv(&["log", "trim", "--log", &urls, "--log-stream", LOG_STREAM, "--below", &below]));
    flip_payload(&segment(&c_dir, 2), 3);
    let refused = repair(&c_dir, &cluster, &[]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("trimmed") && stderr.contains("--from-export"), "{stderr}");
    let out = ok_stdout(&repair(&c_dir, &cluster, &["--from-export", &export_path]));
    let aside = out
        .split_whitespace()
        .find_map(|w| w.strip_prefix("damaged_dir="))
        .unwrap_or_else(|| panic!("no damaged_dir in {out}"));
    assert!(segment(Path::new(aside), 2).exists(), "the damaged directory is set aside, not deleted: {out}");
    write(&a, VERSIONS..VERSIONS + 1);
    let c = start(&c_dir, &cluster);
    let states = settle(&[&a, &b, &c], &cluster);
    assert!(states.iter().all(|s| *s == states[0]), "a, b, c differ after the rebuild: {states:?}");
    let newest = |node: &Server| -> Vec<Value> {
        let rpc = Rpc::new(node);
        (0..KEYS)
            .map(|k| {
                rpc.result("kv_getValue", json!([stream(), STANDARD.encode(format!("k{k}")), 0, 1024, null]))
            })
            .collect()
    };
    assert_eq!(newest(&c), newest(&a), "c's newest values after the rebuild");
}
