//! The HTTP side of a real `logkv serve`: every `kv_*` method over HTTP
//! (paging, as-of versions, history), `kv_submit` of entries signed with a
//! client-held key (permission denied for a second key, malformed entries),
//! `kv_nextNonce`, `kv_waitForVersion`, `kv_watch` over the WebSocket
//! (history, then live writes, in version order), the admin token,
//! oversized bodies, the connection limit, `/metrics`, `/healthz` and
//! `/readyz`.

mod rpc_support;
mod server;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use logkv_runtime::codec::native::Op;
use logkv_runtime::types::{tx_version, StreamId};
use rpc_support::{entry_hex, native_tx, signer, Rpc, Ws};
use serde_json::{json, Value};
use server::{Server, PATIENCE};

const S: StreamId = StreamId([1; 32]);
const OTHER: StreamId = StreamId([2; 32]);

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

fn s(id: StreamId) -> String {
    id.to_string()
}

fn version_of(submitted: &Value) -> u64 {
    submitted["version"].as_u64().expect("a version")
}

#[test]
fn kv_methods_answer_over_http_with_paging_versions_and_history() {
    let server = Server::builder().start();
    let rpc = Rpc::new(&server);
    let me = signer(1);
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let v1 = version_of(&rpc.submit(
        &me,
        vec![(S, b"a", Op::Put(b"hello world".to_vec().into())), (S, b"b", Op::Put(b"bee".to_vec().into()))],
    ));
    let v2 = version_of(
        &rpc.submit(&me, vec![(S, b"a", Op::Put(b"HELLO".to_vec().into())), (S, b"b", Op::Delete)]),
    );
    let v3 = version_of(&rpc.submit(&me, vec![(S, b"c", Op::Put(big.clone().into()))]));
    assert!(v1 < v2 && v2 < v3);

    assert_eq!(rpc.result("kv_getStatus", json!([])), json!(true));
    // Paging: startIndex/len, and len 0 for the metadata only.
    let page = rpc.result("kv_getValue", json!([s(S), b64(b"a"), 1, 3, v1]));
    assert_eq!(page, json!({ "version": v1, "data": b64(b"ell"), "size": 11 }));
    let now = rpc.result("kv_getValue", json!([s(S), b64(b"a"), 0, 100]));
    assert_eq!(now, json!({ "version": v2, "data": b64(b"HELLO"), "size": 5 }));
    let meta = rpc.result("kv_getValue", json!([s(S), b64(b"c"), 0, 0]));
    assert_eq!(meta, json!({ "version": v3, "data": "", "size": big.len() }));
    let mut read = Vec::new();
    while read.len() < big.len() {
        let page = rpc.result("kv_getValue", json!([s(S), b64(b"c"), read.len(), 262_144, v3]));
        read.extend(STANDARD.decode(page["data"].as_str().unwrap()).unwrap());
    }
    assert_eq!(read, big, "a value larger than one page reads back page by page");
    let too_long = rpc.error("kv_getValue", json!([s(S), b64(b"c"), 0, 262_145]));
    assert_eq!(too_long["code"], json!(-32602));
    // A deleted key: the delete's version, size 0; as of v1 it was live.
    assert_eq!(
        rpc.result("kv_getValue", json!([s(S), b64(b"b"), 0, 10])),
        json!({ "version": v2, "data": "", "size": 0 })
    );
    assert_eq!(rpc.result("kv_getValue", json!([s(S), b64(b"b"), 0, 10, v1]))["data"], json!(b64(b"bee")));
    // Iteration skips deleted keys, as of any version.
    let first = rpc.result("kv_getFirst", json!([s(S), 0, 10]));
    assert_eq!((first["key"].clone(), first["data"].clone()), (json!(b64(b"a")), json!(b64(b"HELLO"))));
    let next = rpc.result("kv_getNext", json!([s(S), b64(b"a"), 0, 0, false]));
    assert_eq!(next["key"], json!(b64(b"c")), "b is deleted");
    let next_then = rpc.result("kv_getNext", json!([s(S), b64(b"a"), 0, 3, false, v1]));
    assert_eq!((next_then["key"].clone(), next_then["data"].clone()), (json!(b64(b"b")), json!(b64(b"bee"))));
    assert_eq!(rpc.result("kv_getLast", json!([s(S), 0, 0]))["key"], json!(b64(b"c")));
    assert_eq!(rpc.result("kv_getPrev", json!([s(S), b64(b"c"), 0, 0, false]))["key"], json!(b64(b"a")));
    assert_eq!(rpc.result("kv_getPrev", json!([s(S), b64(b"a"), 0, 0, false])), Value::Null);
    // Results, streams, progress, permissions.
    assert_eq!(rpc.result("kv_getTransactionResult", json!([v1])), json!("Commit"));
    assert_eq!(rpc.result("kv_getTransactionResult", json!([v3.to_string()])), json!("Commit"));
    assert_eq!(rpc.result("kv_getHoldingStreamIds", json!([])), json!([s(S)]));
    let progress = rpc.result("kv_getReplayProgress", json!([]));
    assert_eq!(progress["appliedVersion"], json!(v3));
    let me_hex = me.address().to_string();
    let stranger = signer(9).address().to_string();
    assert_eq!(rpc.result("kv_hasWritePermission", json!([me_hex, s(S), b64(b"a")])), json!(true));
    assert_eq!(rpc.result("kv_hasWritePermission", json!([stranger, s(S), b64(b"a")])), json!(false));
    assert_eq!(rpc.result("kv_isAdmin", json!([me_hex, s(S)])), json!(true));
    assert_eq!(rpc.result("kv_IsAdmin", json!([stranger, s(S)])), json!(false));
    assert_eq!(rpc.result("kv_isSpecialKey", json!([s(S), b64(b"a")])), json!(false));
    assert_eq!(rpc.result("kv_isWriterOfKey", json!([stranger, s(S), b64(b"a")])), json!(false));
    assert_eq!(rpc.result("kv_isWriterOfStream", json!([stranger, s(S)])), json!(false));
    // History, newest first, limited by a version.
    let history = rpc.result("kv_getHistory", json!([s(S), b64(b"b")]));
    assert_eq!(
        history,
        json!([{ "version": v2, "deleted": true, "size": 0 }, { "version": v1, "deleted": false, "size": 3 }])
    );
    let before = rpc.result("kv_getHistory", json!([s(S), b64(b"b"), v1]));
    assert_eq!(before, json!([{ "version": v1, "deleted": false, "size": 3 }]));
    assert_eq!(rpc.result("kv_getHistory", json!([s(S), b64(b"never")])), json!([]));
    // Unknown methods and bad JSON.
    assert_eq!(rpc.error("kv_nope", json!([]))["code"], json!(-32601));
    let (status, body) = rpc.post("{not json", None);
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["error"]["code"], json!(-32700));
    // A batch runs in order, reads and writes alike.
    let batch = json!([
        { "jsonrpc": "2.0", "id": 1, "method": "kv_getValue", "params": [s(S), b64(b"a"), 0, 5] },
        { "jsonrpc": "2.0", "id": 2, "method": "kv_waitForVersion", "params": [v3, 1000] },
    ]);
    let (_, body) = rpc.post(&batch.to_string(), None);
    let answers: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answers[0]["result"]["data"], json!(b64(b"HELLO")));
    assert_eq!(answers[1]["result"]["appliedVersion"], json!(v3));
    server.stop_cleanly();
}

#[test]
fn kv_submit_takes_client_signed_entries_and_reports_each_transaction() {
    let server = Server::builder().start();
    let rpc = Rpc::new(&server);
    let (owner, intruder) = (signer(1), signer(2));
    let address = owner.address().to_string();
    // Nonces are reserved: never the same twice, above every one applied.
    let n1 = rpc.result("kv_nextNonce", json!([address])).as_u64().unwrap();
    let n2 = rpc.result("kv_nextNonce", json!([address])).as_u64().unwrap();
    assert!(n2 > n1);
    let entry = entry_hex(
        &owner,
        n2,
        vec![
            native_tx(vec![(S, b"k", Op::Put(b"v1".to_vec().into()))]),
            native_tx(vec![(S, b"k2", Op::Put(b"v2".to_vec().into()))]),
        ],
    );
    let submitted = rpc.result("kv_submit", json!([entry]));
    let position = submitted["position"].as_u64().unwrap();
    assert_eq!(
        submitted,
        json!({
            "position": position,
            "version": tx_version(position, 1),
            "versions": [tx_version(position, 0), tx_version(position, 1)],
            "results": ["Commit", "Commit"],
        })
    );
    // The same bytes again: a replay, logged with its result.
    let again = rpc.result("kv_submit", json!([entry]));
    assert_eq!(again["results"], json!(["Replayed", "Replayed"]), "{again}");
    // The reserved n1 is still the owner's to use.
    let late = rpc.result(
        "kv_submit",
        json!([entry_hex(&owner, n1, vec![native_tx(vec![(S, b"k", Op::Put(b"v3".to_vec().into()))])])]),
    );
    assert_eq!(late["results"], json!(["Commit"]));
    assert!(rpc.result("kv_nextNonce", json!([address])).as_u64().unwrap() > n2);
    // Another key cannot write the owner's stream.
    let denied = rpc.submit(&intruder, vec![(S, b"k", Op::Put(b"mine".to_vec().into()))]);
    assert_eq!(denied["results"], json!(["SenderNoWritePermission"]), "{denied}");
    assert_eq!(rpc.result("kv_getValue", json!([s(S), b64(b"k"), 0, 10]))["data"], json!(b64(b"v3")));
    // Its own new stream it can.
    let own = rpc.submit(&intruder, vec![(OTHER, b"k", Op::Put(b"mine".to_vec().into()))]);
    assert_eq!(own["results"], json!(["Commit"]));
    // Refusals: bad hex, not an entry, a newer protocol, no parameter.
    let bad_hex = rpc.error("kv_submit", json!(["0xzz"]));
    assert_eq!(
        (bad_hex["code"].clone(), bad_hex["message"].clone()),
        (json!(-32602), json!("Invalid params: entry"))
    );
    let garbage = rpc.error("kv_submit", json!(["0x00010203"]));
    assert_eq!(garbage["code"], json!(-32010), "{garbage}");
    assert!(garbage["data"].as_str().unwrap().contains("not a logkv entry"), "{garbage}");
    let mut newer = hex::decode(&entry[2..]).unwrap();
    newer[4..6].copy_from_slice(&u16::MAX.to_be_bytes());
    let upgrade = rpc.error("kv_submit", json!([format!("0x{}", hex::encode(&newer))]));
    assert_eq!(upgrade["code"], json!(-32011), "{upgrade}");
    assert!(upgrade["data"].as_str().unwrap().contains("upgrade logkv"), "{upgrade}");
    assert_eq!(rpc.error("kv_submit", json!([]))["code"], json!(-32602));
    server.stop_cleanly();
}

#[test]
fn kv_wait_for_version_wakes_on_a_resp_write_and_times_out_with_an_error() {
    let server = Server::builder().start();
    let rpc = Rpc::new(&server);
    let now = rpc.result("kv_getReplayProgress", json!([]))["appliedVersion"].as_u64().unwrap();
    let target = tx_version((now >> 16) + 1, 0);
    let done = thread::scope(|scope| {
        let waiter = scope.spawn(|| rpc.call("kv_waitForVersion", json!([target, 30_000])));
        assert_eq!(rpc.redis(&["SET", "x", "1"]), "+OK\r\n");
        waiter.join().unwrap()
    });
    assert!(done["result"]["appliedVersion"].as_u64().unwrap() >= target, "{done}");
    // Already visible: answered at once.
    let at_once = rpc.result("kv_waitForVersion", json!([target, 0]));
    assert!(at_once["appliedVersion"].as_u64().unwrap() >= target, "{at_once}");
    let timeout = rpc.error("kv_waitForVersion", json!([u64::MAX, 20]));
    assert_eq!(timeout["code"], json!(-32020), "{timeout}");
    assert!(timeout["data"].as_str().unwrap().contains("not visible"), "{timeout}");
    assert_eq!(rpc.error("kv_waitForVersion", json!([]))["code"], json!(-32602));
    server.stop_cleanly();
}

#[test]
fn kv_watch_sends_the_history_then_live_writes_in_version_order() {
    let server = Server::builder().start();
    let rpc = Rpc::new(&server);
    let me = signer(1);
    let v1 = version_of(&rpc.submit(&me, vec![(S, b"a", Op::Put(b"1".to_vec().into()))]));
    rpc.submit(&me, vec![(OTHER, b"elsewhere", Op::Put(b"x".to_vec().into()))]);
    let v2 =
        version_of(&rpc.submit(&me, vec![(S, b"b", Op::Put(b"2".to_vec().into())), (S, b"a", Op::Delete)]));
    let v3 = version_of(&rpc.submit(&me, vec![(S, b"a", Op::Put(b"3".to_vec().into()))]));
    let mut ws = Ws::connect(&server);
    let all = ws.watch(S, 0);
    let expected_history = vec![
        (v1, b"a".to_vec(), Some(b"1".to_vec())),
        (v2, b"b".to_vec(), Some(b"2".to_vec())),
        (v2, b"a".to_vec(), None),
        (v3, b"a".to_vec(), Some(b"3".to_vec())),
    ];
    assert_eq!(ws.changes(&all, 4), expected_history, "the history, deletes included, in version order");
    // From a later version: only what came at or after it.
    let mut late = Ws::connect(&server);
    let from_v3 = late.watch(S, v3);
    assert_eq!(late.changes(&from_v3, 1), vec![(v3, b"a".to_vec(), Some(b"3".to_vec()))]);
    // Live: a client's entry, then a RESP write of the node (its stream is
    // the default one, not S, so it must not show up).
    let v4 = version_of(&rpc.submit(&me, vec![(S, b"c", Op::Put(b"4".to_vec().into()))]));
    assert_eq!(rpc.redis(&["SET", "resp-key", "r"]), "+OK\r\n");
    let v5 = version_of(&rpc.submit(&me, vec![(S, b"c", Op::Delete)]));
    let live = vec![(v4, b"c".to_vec(), Some(b"4".to_vec())), (v5, b"c".to_vec(), None)];
    assert_eq!(ws.changes(&all, 2), live);
    assert_eq!(late.changes(&from_v3, 2), live);
    // A stream that does not exist yet is watched until it does.
    let fresh = StreamId([7; 32]);
    let waiting = ws.watch(fresh, 0);
    let v6 = version_of(&rpc.submit(&me, vec![(fresh, b"new", Op::Put(b"6".to_vec().into()))]));
    assert_eq!(ws.changes(&waiting, 1), vec![(v6, b"new".to_vec(), Some(b"6".to_vec()))]);
    // Ordinary methods work over the socket too; unwatch ends one.
    ws.send(json!({ "jsonrpc": "2.0", "id": 5, "method": "kv_unwatch", "params": [all] }));
    assert_eq!(ws.next(), json!({ "jsonrpc": "2.0", "id": 5, "result": true }));
    ws.send(json!({ "jsonrpc": "2.0", "id": 6, "method": "kv_getValue", "params": [s(fresh), b64(b"new"), 0, 10] }));
    assert_eq!(ws.next()["result"]["data"], json!(b64(b"6")));
    // kv_watch is not a plain HTTP method.
    assert_eq!(rpc.error("kv_watch", json!([s(S), 0]))["code"], json!(-32601));
    drop((ws, late));
    server.stop_cleanly();
}

#[test]
fn a_watcher_that_does_not_read_is_closed_with_an_error_not_buffered() {
    let server = Server::builder().args(["--durability", "none", "--max-request-bytes", "10000000"]).start();
    let rpc = Rpc::new(&server);
    let me = signer(1);
    let mut ws = Ws::connect(&server);
    let id = ws.watch(S, 0);
    // Caught up on an empty stream; now far more live changes than the
    // queue and the socket buffers hold, while the client reads nothing.
    let value = vec![b'v'; 4 * 1024];
    let keys: Vec<Vec<u8>> = (0..1000u32).map(|i| format!("k{i:04}").into_bytes()).collect();
    const ROUNDS: usize = 4;
    for round in 0..ROUNDS {
        let writes = keys.iter().map(|k| (S, &k[..], Op::Put(value.clone().into()))).collect();
        let submitted = rpc.submit(&me, writes);
        assert_eq!(submitted["results"], json!(["Commit"]), "round {round}");
    }
    // Reading now: changes, then the error, then nothing more for it.
    let mut changes = 0;
    let error = loop {
        let note = ws.next();
        assert_eq!(note["params"]["subscription"], id, "{note}");
        if let Some(error) = note["params"].get("error") {
            break error.clone();
        }
        changes += 1;
    };
    assert_eq!(error["code"], json!(-32030), "{error}");
    assert!(error["data"].as_str().unwrap().contains("not reading fast enough"), "{error}");
    assert!(changes < ROUNDS * keys.len(), "closed before every change was queued ({changes} delivered)");
    // The connection itself still answers.
    ws.send(json!({ "jsonrpc": "2.0", "id": 9, "method": "kv_getStatus" }));
    assert_eq!(ws.next()["result"], json!(true));
    drop(ws);
    server.stop_cleanly();
}

#[test]
fn admin_calls_need_the_configured_bearer_token() {
    let token = "s3cret-token-value";
    let server = Server::builder().args(["--admin-token", token]).start();
    let rpc = Rpc::new(&server);
    let call = |method: &str, token: Option<&str>| rpc.call_with(method, json!([]), token);
    let missing = call("admin_nodeInfo", None);
    assert_eq!(missing["error"]["code"], json!(-32001), "{missing}");
    assert!(missing["error"]["data"].as_str().unwrap().contains("Authorization: Bearer"), "{missing}");
    let wrong = call("admin_nodeInfo", Some("guess"));
    assert_eq!(wrong["error"]["code"], json!(-32001));
    assert!(wrong["error"]["data"].as_str().unwrap().contains("not the server's admin_token"), "{wrong}");
    assert_eq!(call("admin_sync", Some("s3cret-token-valuE"))["error"]["code"], json!(-32001));
    let info = call("admin_nodeInfo", Some(token))["result"].clone();
    let node_key = logkv_runtime::keyfile::load(server.dir().join("node.key")).unwrap();
    assert_eq!(info["address"], json!(node_key.address().to_string()));
    assert_eq!(info["dataDir"], json!(server.dir().display().to_string()));
    assert_eq!(info["durability"], json!("always"));
    assert!(info["uptimeSeconds"].is_u64() && info["appliedVersion"].is_u64(), "{info}");
    let synced = call("admin_sync", Some(token));
    assert!(synced["result"]["appliedVersion"].is_u64(), "{synced}");
    // The token shows up in neither the metrics nor the log.
    let (_, metrics) = rpc.get("/metrics");
    assert!(!metrics.contains(token) && !server.stderr().contains(token));
    server.stop_cleanly();

    let plain = Server::builder().start();
    let disabled = Rpc::new(&plain).call_with("admin_sync", json!([]), Some(token));
    assert_eq!(disabled["error"]["code"], json!(-32001));
    assert!(disabled["error"]["data"].as_str().unwrap().contains("no admin_token configured"), "{disabled}");
    plain.stop_cleanly();
}

/// Sends raw bytes over a new connection; everything the server answers
/// until it closes (or `PATIENCE`).
fn raw_exchange(addr: &str, parts: &[&[u8]]) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    for part in parts {
        // The server may refuse and close before it all arrives.
        if stream.write_all(part).is_err() {
            break;
        }
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn oversized_bodies_are_refused_before_they_are_buffered() {
    let server = Server::builder().args(["--max-request-bytes", "1024"]).start();
    let rpc = Rpc::new(&server);
    let big = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"kv_getStatus","pad":"{}"}}"#, "x".repeat(2000));
    let (status, body) = rpc.post(&big, None);
    assert_eq!(status, 413, "{body}");
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"]["code"], json!(-32600));
    assert!(error["error"]["data"].as_str().unwrap().contains("max_request_bytes (1024 bytes)"), "{error}");
    // Declared larger than the limit: refused from the header alone, with
    // none of the body sent.
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: 5000000\r\n\r\n",
        server.http
    );
    let answer = raw_exchange(&server.http, &[head.as_bytes()]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("max_request_bytes"), "{answer}");
    // Chunked, no length: refused once it grows past the limit, without
    // waiting for the end of the body (the last chunk is never sent).
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        server.http
    );
    let chunk = format!("800\r\n{}\r\n", "y".repeat(0x800));
    let answer = raw_exchange(&server.http, &[head.as_bytes(), chunk.as_bytes()]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"code\":-32600"), "{answer}");
    // Within the limit it is served.
    assert_eq!(rpc.result("kv_getStatus", json!([])), json!(true));
    server.stop_cleanly();
}

#[test]
fn connections_over_max_connections_get_503_and_close() {
    let server = Server::builder().args(["--max-connections", "2"]).start();
    // Two connections held open: a RESP one and an HTTP keep-alive one,
    // each known to be accepted because it was answered.
    let mut resp = TcpStream::connect(&server.resp).unwrap();
    resp.set_read_timeout(Some(PATIENCE)).unwrap();
    resp.write_all(b"PING\r\n").unwrap();
    let mut pong = [0u8; 7];
    resp.read_exact(&mut pong).unwrap();
    assert_eq!(&pong, b"+PONG\r\n");
    // The start-up probe's connection may still be counted for a moment
    // after it closed: until it is released, this one is refused too.
    let deadline = Instant::now() + PATIENCE;
    let http = loop {
        let mut http = TcpStream::connect(&server.http).unwrap();
        http.set_read_timeout(Some(PATIENCE)).unwrap();
        write!(http, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut first = [0u8; 12];
        http.read_exact(&mut first).unwrap();
        if &first == b"HTTP/1.1 200" {
            break http;
        }
        assert_eq!(&first, b"HTTP/1.1 503", "only a refusal while the probe's connection lingers");
        assert!(Instant::now() < deadline, "the start-up probe's connection was never released");
        thread::sleep(Duration::from_millis(20));
    };
    // A third is told so and closed.
    let answer = raw_exchange(&server.http, &[b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"]);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.ends_with("too many connections\n"), "{answer}");
    let (_, metrics) = {
        // Once one closes, a new one is served again (the close reaches
        // the server asynchronously: retry until it has).
        drop(resp);
        let started = Instant::now();
        loop {
            let answer = raw_exchange(&server.http, &[b"GET /metrics HTTP/1.0\r\n\r\n"]);
            if answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200") {
                break (200, answer);
            }
            assert!(started.elapsed() < PATIENCE, "never served again: {answer}");
            thread::sleep(Duration::from_millis(20));
        }
    };
    // The third connection, and any retry made before the close landed.
    let rejected: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("logkv_connections_rejected_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(rejected >= 1, "{metrics}");
    drop(http);
    server.stop_cleanly();
}

#[test]
fn metrics_name_each_method_and_command_and_health_endpoints_answer() {
    let server = Server::builder().start();
    let rpc = Rpc::new(&server);
    assert_eq!(rpc.get("/healthz"), (200, "ok\n".to_string()));
    assert_eq!(rpc.get("/readyz"), (200, "ready\n".to_string()));
    rpc.submit(&signer(1), vec![(S, b"a", Op::Put(b"1".to_vec().into()))]);
    rpc.result("kv_getValue", json!([s(S), b64(b"a"), 0, 1]));
    rpc.error("kv_getValue", json!([s(S), b64(b"a"), 0]));
    rpc.error("no_such_method", json!([]));
    assert_eq!(rpc.redis(&["SET", "k", "v"]), "+OK\r\n");
    assert_eq!(rpc.redis(&["GET", "k"]), "$1\r\nv\r\n");
    let (status, text) = rpc.get("/metrics");
    assert_eq!(status, 200);
    for series in [
        r#"logkv_rpc_call_seconds_count{method="kv_getValue"} 2"#,
        r#"logkv_rpc_call_errors_total{method="kv_getValue"} 1"#,
        r#"logkv_rpc_call_seconds_count{method="kv_submit"} 1"#,
        r#"logkv_rpc_call_seconds_count{method="kv_nextNonce"} 1"#,
        r#"logkv_rpc_call_seconds_count{method="unknown"} 1"#,
        r#"logkv_resp_command_seconds_count{command="set"} 1"#,
        r#"logkv_resp_command_seconds_count{command="get"} 1"#,
        "logkv_group_commit_records_count ",
        "logkv_group_commit_bytes_bucket{le=",
        "logkv_log_fsync_duration_seconds_bucket{le=",
        "logkv_log_bytes_written_total ",
        "logkv_log_segment_bytes ",
        "logkv_applied_position ",
        "logkv_index_bytes ",
        "logkv_index_entries ",
        "logkv_connections ",
    ] {
        assert!(text.contains(series), "no {series} in\n{text}");
    }
    assert!(!text.contains("no_such_method"), "a client's method name is never a label");
    let groups: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("logkv_group_commit_records_count "))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(groups >= 2, "each always-mode write is synced: {groups} groups");
    server.stop_cleanly();
}
