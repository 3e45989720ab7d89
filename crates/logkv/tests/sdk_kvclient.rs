//! The official 0G TypeScript SDK's `KvClient` (npm
//! `@0gfoundation/0g-ts-sdk`, the version scripts/golden pins) reads a
//! real `logkv serve`: `getValue`, a value larger than one page read page
//! by page with `KvClient.get` and the SDK's `MAX_QUERY_SIZE`, and
//! iteration over a stream both ways through its `KvIterator`
//! (`getFirst`/`getNext`, `getLast`/`getPrev`), deleted keys skipped.
//! (`KvClient.getValue` and the iterator cannot read values larger than
//! one page from any server: the SDK passes the base64 length of what it
//! has as the next `startIndex`; see scripts/sdk/kvclient.mjs.) Needs Node.js and npm; installs scripts/sdk's packages on first
//! run. Without them the test fails, saying so.

mod rpc_support;
mod server;

use std::path::PathBuf;
use std::process::Command;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use logkv_runtime::codec::native::Op;
use logkv_runtime::types::StreamId;
use rpc_support::{signer, Rpc};
use serde_json::{json, Value};
use server::Server;

const S: StreamId = StreamId([0x5d; 32]);
const LARGE: StreamId = StreamId([0x5e; 32]);

fn sdk_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/sdk")
}

/// Runs a tool of Node.js, failing the test with a clear message if it is
/// missing or fails.
fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).current_dir(sdk_dir()).output().unwrap_or_else(|e| {
        panic!("this test needs Node.js and npm on PATH to run the 0G SDK: cannot run `{program}`: {e}")
    });
    assert!(
        out.status.success(),
        "`{program} {}` failed ({}):\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn install_sdk() {
    if !sdk_dir().join("node_modules/@0gfoundation/0g-ts-sdk").is_dir() {
        run("npm", &["ci", "--no-audit", "--no-fund", "--loglevel=error"]);
    }
}

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

#[test]
fn the_0g_sdk_kvclient_reads_values_and_iterates_streams() {
    install_sdk();
    let server = Server::builder().start();
    let rpc = Rpc::new(&server);
    let me = signer(3);
    // Within the SDK's 256 KiB page, as getValue and the iterator need.
    let big: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 256) as u8).collect();
    // Larger than three pages, in a stream of its own.
    let huge: Vec<u8> = (0..800_000u32).map(|i| (i * 13 % 251) as u8).collect();
    let v_huge =
        rpc.submit(&me, vec![(LARGE, b"huge", Op::Put(huge.clone().into()))])["version"].as_u64().unwrap();
    rpc.submit(
        &me,
        vec![
            (S, b"apple", Op::Put(b"red".to_vec().into())),
            (S, b"banana", Op::Put(b"yellow".to_vec().into())),
            (S, b"cherry", Op::Put(b"dark red".to_vec().into())),
            (S, b"gone", Op::Put(b"soon deleted".to_vec().into())),
        ],
    );
    rpc.submit(&me, vec![(S, b"big", Op::Put(big.clone().into())), (S, b"gone", Op::Delete)]);
    let last = rpc.submit(&me, vec![(S, b"apple", Op::Put(b"green".to_vec().into()))]);
    let v_last = last["version"].as_u64().unwrap();
    // The live keys in key order: (key, value, version).
    let versions = |key: &[u8]| {
        rpc.result("kv_getValue", json!([S.to_string(), b64(key), 0, 0]))["version"].as_u64().unwrap()
    };
    assert_eq!(versions(b"apple"), v_last);
    assert!(versions(b"big") < v_last);
    let live: Vec<(&[u8], Vec<u8>)> = vec![
        (b"apple", b"green".to_vec()),
        (b"banana", b"yellow".to_vec()),
        (b"big", big.clone()),
        (b"cherry", b"dark red".to_vec()),
    ];
    let expected = |(key, value): &(&[u8], Vec<u8>)| json!({ "key": b64(key), "data": b64(value), "size": value.len(), "version": versions(key) });
    let forward: Vec<Value> = live.iter().map(expected).collect();
    let backward: Vec<Value> = live.iter().rev().map(expected).collect();

    let url = rpc.url();
    let stream = S.to_string();
    let out = run("node", &["kvclient.mjs", &url, &stream, "big", "banana", "missing", "--paged=big"]);
    let seen: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"));
    assert_eq!(seen["values"][0], expected(&live[2]), "getValue of a 200 kB value");
    assert_eq!(seen["values"][1], expected(&live[1]));
    assert_eq!(seen["values"][2], json!({ "key": b64(b"missing"), "data": "", "size": 0, "version": 0 }));
    assert_eq!(seen["forward"], Value::Array(forward), "getFirst/getNext skip the deleted key");
    assert_eq!(seen["backward"], Value::Array(backward), "getLast/getPrev");
    let mut one_page = expected(&live[2]);
    one_page["pages"] = json!(1);
    assert_eq!(seen["paged"], json!([one_page]));
    let large = LARGE.to_string();
    let out = run("node", &["kvclient.mjs", &url, &large, "--paged=huge", "--no-iterate"]);
    let seen: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"));
    assert_eq!(
        seen["paged"],
        json!([{ "key": b64(b"huge"), "data": b64(&huge), "size": huge.len(), "version": v_huge, "pages": 4 }]),
        "an 800 kB value in four pages of MAX_QUERY_SIZE"
    );
    server.stop_cleanly();
}
