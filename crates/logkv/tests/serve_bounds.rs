//! Hostile clients cannot grow `logkv serve` without bound: a batch asking
//! for far more than `max_response_bytes`, WebSocket watchers that never
//! read, a client trickling a request a byte at a time, running out of
//! file descriptors, a full disk. Memory is measured from the process
//! (`RssAnon` in `/proc/PID/status`) and log lines are counted, never
//! timed.

mod rpc_support;
mod server;

use std::io::{Read, Write};
use std::net::TcpStream;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use logkv_runtime::codec::native::Op;
use logkv_runtime::types::StreamId;
use rpc_support::{signer, Rpc};
use serde_json::{json, Value};
use server::{Server, PATIENCE};

const S: StreamId = StreamId([1; 32]);

/// What every case must stay under: growth of the anonymous resident set
/// over the server's idle size.
const GROWTH_BOUND: u64 = 256 << 20;

/// The server's anonymous resident memory in bytes.
fn rss_anon(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("RssAnon in /proc status");
    kib * 1024
}

/// Sends a raw HTTP request on a new connection; the stream, unread.
fn post(server: &Server, body: &str) -> TcpStream {
    let mut stream = TcpStream::connect(&server.http).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(
        stream,
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    stream
}

/// The body of an HTTP response read to its end.
fn body_of(mut stream: TcpStream) -> String {
    let mut all = Vec::new();
    stream.read_to_end(&mut all).expect("read the answer");
    let text = String::from_utf8(all).expect("UTF-8");
    text.split_once("\r\n\r\n").expect("a head and a body").1.to_string()
}

#[test]
fn a_batch_asking_for_gigabytes_is_cut_at_max_response_bytes() {
    let server = Server::start();
    let rpc = Rpc::new(&server);
    let value: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
    rpc.submit(&signer(1), vec![(S, b"big", Op::Put(value.into()))]);
    let one = json!({ "jsonrpc": "2.0", "id": 0, "method": "kv_getValue",
        "params": [S.to_string(), STANDARD.encode(b"big"), 0, 262_144] });
    assert_eq!(rpc.call("kv_getValue", one["params"].clone())["result"]["size"], json!(1 << 20));
    let idle = rss_anon(server.pid());

    // 1,024 reads of 256 KiB each: about 358 MB of response per batch.
    let batch: Vec<Value> = (0..1024)
        .map(|i| {
            let mut call = one.clone();
            call["id"] = json!(i);
            call
        })
        .collect();
    let batch = Value::Array(batch).to_string();
    // Four at once, none read: every answer is built and waiting once its
    // first byte is there.
    let clients: Vec<TcpStream> = (0..4).map(|_| post(&server, &batch)).collect();
    for c in &clients {
        let mut first = [0u8; 1];
        assert_eq!(c.peek(&mut first).expect("an answer starts"), 1);
    }
    let grew = rss_anon(server.pid()).saturating_sub(idle);
    assert!(grew < GROWTH_BOUND, "RssAnon grew {} MiB over idle", grew >> 20);

    for c in clients {
        let answers: Vec<Value> = serde_json::from_str(&body_of(c)).expect("a JSON array");
        assert_eq!(answers.len(), 1024, "every call is answered");
        let full = answers.iter().take_while(|a| a.get("result").is_some()).count();
        assert!(full > 0 && full < 1024, "{full} results fit");
        for (i, a) in answers.iter().enumerate() {
            assert_eq!(a["id"], json!(i));
        }
        let cut = &answers[full]["error"];
        assert_eq!(cut["code"], json!(-32013), "{cut}");
        assert!(cut["data"].as_str().unwrap().contains("max_response_bytes (16777216 bytes)"), "{cut}");
        assert!(answers[full + 1..].iter().all(|a| a["error"]["code"] == json!(-32013)));
    }
    drop(rpc);
    server.stop_cleanly();
}

#[test]
fn a_single_result_past_max_response_bytes_is_an_error_for_its_id() {
    let server = Server::builder().args(["--durability", "none", "--max-response-bytes", "65536"]).start();
    let rpc = Rpc::new(&server);
    rpc.submit(&signer(1), vec![(S, b"big", Op::Put(vec![7u8; 100_000].into()))]);
    let error = rpc.error("kv_getValue", json!([S.to_string(), STANDARD.encode(b"big"), 0, 262_144]));
    assert_eq!(error["code"], json!(-32013), "{error}");
    assert_eq!(error["message"], json!("Response too large"), "{error}");
    // What fits is answered.
    let page = rpc.result("kv_getValue", json!([S.to_string(), STANDARD.encode(b"big"), 0, 1000]));
    assert_eq!(page["size"], json!(100_000));
    drop(rpc);
    server.stop_cleanly();
}
