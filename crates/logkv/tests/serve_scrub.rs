//! The scrubber of `logkv serve` finds damage planted in each kind of file
//! — a sealed segment (a value byte, a frame header byte), the compacted
//! file and a checkpoint — and reports it in /metrics and admin_nodeInfo;
//! /readyz turns 503 only once the damage holds a key's current version;
//! compactions retiring segments while passes run raise no alarm. Bytes
//! are flipped in place while the server runs (never by rewriting a file,
//! which would truncate it under the server's maps). Waits are bounded
//! only to detect hangs.

mod rpc_support;
mod server;

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use logkv_runtime::codec::native::Op;
use logkv_runtime::signing::Signer;
use logkv_runtime::types::StreamId;
use rpc_support::{signer, Rpc};
use serde_json::{json, Value};
use server::{Server, PATIENCE};

const TOKEN: &str = "scrub-test-token";
const S: StreamId = StreamId([7; 32]);

/// A server scrubbing as fast as it can, pass after pass, on small segments.
fn start() -> Server {
    Server::builder()
        .args(["--durability", "none", "--admin-token", TOKEN, "--segment-size-bytes", "16384"])
        .args(["--scrub-bytes-per-sec", "1000000000", "--scrub-interval-secs", "0"])
        .start()
}

fn put(rpc: &Rpc, me: &Signer, key: &str, value: &str) {
    rpc.submit(me, vec![(S, key.as_bytes(), Op::Put(value.as_bytes().to_vec().into()))]);
}

/// Keys enough to fill several segments.
fn fill(rpc: &Rpc, me: &Signer, n: usize) {
    for i in 0..n {
        put(rpc, me, &format!("filler-{i}"), &"f".repeat(200));
    }
}

fn metric(rpc: &Rpc, name: &str) -> f64 {
    let (status, text) = rpc.get("/metrics");
    assert_eq!(status, 200);
    let line = text.lines().find(|l| l.split(' ').next() == Some(name));
    line.and_then(|l| l.split(' ').nth(1)).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("no {name}"))
}

fn node_info(rpc: &Rpc) -> Value {
    rpc.call_with("admin_nodeInfo", json!([]), Some(TOKEN))["result"].clone()
}

fn ready(server: &Server) -> Option<u16> {
    server::http_status(&server.http, "/readyz")
}

fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "{what} did not happen within {PATIENCE:?}");
        std::thread::sleep(PATIENCE / 600);
    }
}

/// Waits for `n` more complete passes.
fn passes(rpc: &Rpc, n: f64) {
    let start = metric(rpc, "logkv_scrub_passes_total");
    eventually("scrub passes", || metric(rpc, "logkv_scrub_passes_total") >= start + n);
}

/// The files of `dir` ending in `ext` that hold `needle`, with its offset.
fn find(dir: &Path, ext: &str, needle: &[u8]) -> Vec<(PathBuf, u64)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == ext) {
            let bytes = std::fs::read(&path).unwrap();
            if let Some(at) = bytes.windows(needle.len()).position(|w| w == needle) {
                found.push((path, at as u64));
            }
        }
    }
    found
}

/// The one file of `dir` ending in `ext` that holds `needle`, and where.
fn only(dir: &Path, ext: &str, needle: &[u8]) -> (PathBuf, u64) {
    let mut found = find(dir, ext, needle);
    assert_eq!(found.len(), 1, "{found:?}");
    found.remove(0)
}

/// Flips a bit of the byte at `offset` in place.
fn flip(path: &Path, offset: u64) {
    let file = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
    let mut b = [0u8];
    file.read_exact_at(&mut b, offset).unwrap();
    file.write_all_at(&[b[0] ^ 0x20], offset).unwrap();
    file.sync_all().unwrap();
}

/// The damage admin_nodeInfo lists in `file`.
fn damage_in(rpc: &Rpc, file: &Path) -> Vec<Value> {
    let info = node_info(rpc);
    let damage = info["scrub"]["damage"].as_array().expect("a damage list").clone();
    damage.into_iter().filter(|d| d["file"] == file.display().to_string()).collect()
}

/// The segment files of `dir`, oldest first.
fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    found.sort();
    found
}

/// The newest segment takes appends; every one before it is sealed.
fn sealed(dir: &Path, path: &Path) -> bool {
    segments(dir).last().is_some_and(|newest| path < newest.as_path())
}

#[test]
fn damage_in_a_sealed_segment_degrades_and_fails_readiness_only_under_a_current_version() {
    let server = start();
    let rpc = Rpc::new(&server);
    let me = signer(1);
    // Not in the first records, which hold more than this signer's writes.
    fill(&rpc, &me, 10);
    put(&rpc, &me, "old", "OLD-NEEDLE-version-one");
    put(&rpc, &me, "old", "second version");
    put(&rpc, &me, "cur", "CUR-NEEDLE-only-version");
    fill(&rpc, &me, 200);
    passes(&rpc, 1.0);
    assert_eq!(metric(&rpc, "logkv_scrub_damaged_files"), 0.0);
    assert_eq!(node_info(&rpc)["degraded"], false);
    assert!(metric(&rpc, "logkv_scrub_bytes_total") > 0.0);
    assert!(metric(&rpc, "logkv_scrub_last_pass_end_timestamp_seconds") > 0.0);

    // An old version's value: degraded, still ready.
    let (old_file, old_at) = only(server.dir(), "log", b"OLD-NEEDLE");
    assert!(sealed(server.dir(), &old_file));
    flip(&old_file, old_at + 3);
    eventually("damage under the old version listed", || !damage_in(&rpc, &old_file).is_empty());
    let damage = damage_in(&rpc, &old_file);
    assert_eq!(damage.len(), 1, "{damage:?}");
    assert_eq!(damage[0]["readsFail"], false);
    let offsets = &damage[0]["offsets"];
    assert!(offsets[0].as_u64().unwrap() <= old_at + 3 && old_at + 3 < offsets[1].as_u64().unwrap());
    assert!(damage[0]["positions"].is_array(), "{damage:?}");
    assert_eq!(node_info(&rpc)["degraded"], true);
    assert_eq!(metric(&rpc, "logkv_scrub_damaged_files"), 1.0);
    assert_eq!(metric(&rpc, "logkv_scrub_reads_failing"), 0.0);
    passes(&rpc, 2.0);
    assert_eq!(ready(&server), Some(200));

    // A frame header (the first record's log time) of another sealed segment.
    let (cur_file, cur_at) = only(server.dir(), "log", b"CUR-NEEDLE");
    let first = segments(server.dir())
        .into_iter()
        .find(|p| *p != old_file && *p != cur_file && sealed(server.dir(), p))
        .expect("another sealed segment");
    flip(&first, 32 + 13);
    eventually("damage in a frame header listed", || {
        damage_in(&rpc, &first).iter().any(|d| d["offsets"][0] == 32)
    });

    // The current version's value: reads fail, so not ready.
    assert!(sealed(server.dir(), &cur_file));
    flip(&cur_file, cur_at + 3);
    eventually("not ready", || ready(&server) == Some(503));
    assert_eq!(metric(&rpc, "logkv_scrub_reads_failing"), 1.0);
    assert!(damage_in(&rpc, &cur_file).iter().any(|d| d["readsFail"] == true));
    let stderr = server.stderr();
    assert_eq!(stderr.matches("scrub found damage").count(), 3, "each damage logged once:\n{stderr}");
    assert!(stderr.contains(&old_file.display().to_string()), "{stderr}");
}

#[test]
fn damage_in_the_compacted_file_and_in_a_checkpoint_is_found() {
    let server = start();
    let rpc = Rpc::new(&server);
    let me = signer(2);
    put(&rpc, &me, "kept", "HEAD-NEEDLE-current");
    fill(&rpc, &me, 200);
    let compacted = rpc.call_with("admin_compact", json!([]), Some(TOKEN));
    assert!(compacted.get("error").is_none(), "{compacted}");
    put(&rpc, &me, "later", "after the compaction");
    passes(&rpc, 1.0);
    assert_eq!(node_info(&rpc)["degraded"], false);
    assert_eq!(ready(&server), Some(200));

    let mut checkpoints: Vec<PathBuf> = std::fs::read_dir(server.dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ckpt"))
        .collect();
    checkpoints.sort();
    let checkpoint = checkpoints.pop().expect("compaction ends with a checkpoint");
    let len = std::fs::metadata(&checkpoint).unwrap().len();
    flip(&checkpoint, len - 10);
    eventually("checkpoint damage listed", || !damage_in(&rpc, &checkpoint).is_empty());
    assert_eq!(damage_in(&rpc, &checkpoint)[0]["readsFail"], false);
    assert_eq!(node_info(&rpc)["degraded"], true);
    passes(&rpc, 1.0);
    assert_eq!(ready(&server), Some(200), "a checkpoint is not read by reads");

    let (head, at) = only(server.dir(), "head", b"HEAD-NEEDLE");
    flip(&head, at + 3);
    eventually("not ready", || ready(&server) == Some(503));
    assert!(damage_in(&rpc, &head).iter().any(|d| d["readsFail"] == true));
    assert_eq!(metric(&rpc, "logkv_scrub_damaged_files"), 2.0);
}

#[test]
fn compactions_during_passes_raise_no_alarm() {
    let server = start();
    let rpc = Rpc::new(&server);
    let me = signer(3);
    for round in 0..6 {
        fill(&rpc, &me, 150);
        let compacted = rpc.call_with("admin_compact", json!([]), Some(TOKEN));
        assert!(compacted.get("error").is_none(), "round {round}: {compacted}");
    }
    passes(&rpc, 2.0);
    assert_eq!(metric(&rpc, "logkv_scrub_damage"), 0.0);
    assert_eq!(node_info(&rpc)["degraded"], false);
    assert!(!server.stderr().contains("scrub found damage"), "{}", server.stderr());
}
