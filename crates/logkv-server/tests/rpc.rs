//! The JSON-RPC layer against a node holding signed entries: every `kv_*`
//! method with 0G's wire behaviour (paging, missing and deleted keys,
//! iteration that skips deleted keys without looping, "as of" versions,
//! permissions, results by number or decimal string, sorted holding
//! streams, replay progress), and JSON-RPC's error codes and id echoing.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use logkv_runtime::codec::{zerog, Control, ControlOp, ZEROG};
use logkv_runtime::envelope::{Entry, TxPart};
use logkv_runtime::node::{Node, NodeOptions};
use logkv_runtime::signing::Signer;
use logkv_runtime::types::{tx_version, StreamId};
use logkv_server::rpc::{methods, parse, response, Call, Incoming, Response};
use serde_json::{json, Value};

const S: StreamId = StreamId([1; 32]);
const S3: StreamId = StreamId([3; 32]);
const NEW: StreamId = StreamId([9; 32]);

fn signer(n: u8) -> Signer {
    Signer::from_secret_bytes([n; 32]).expect("[n; 32] with 0 < n < 0xff is a valid secp256k1 secret")
}

fn tx(writes: &[(StreamId, &[u8], &[u8])], controls: Vec<Control>) -> TxPart {
    let writes = writes
        .iter()
        .map(|(stream, key, value)| zerog::BodyWrite {
            stream: *stream,
            key: key.to_vec(),
            value: value.to_vec(),
        })
        .collect();
    let body = zerog::Body { version: u64::MAX, writes, controls, ..zerog::Body::default() };
    TxPart { codec: ZEROG, tags: body.tags(), body: zerog::encode(&body) }
}

/// The node and the versions of what it holds:
/// v1: S a="hello world", b="bee", c="sea", d="dee"; S3 x="1"
/// v2: S a="HELLO", b deleted
/// v3: S grants writer to B, makes "d" special
/// v4: B writes S c="C" (Commit); v4+1: B writes S d (denied, special key)
struct Fixture {
    _dir: tempfile::TempDir,
    node: Node,
    v: [u64; 4],
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = Node::open(dir.path(), NodeOptions::default()).expect("open node");
    let (a, b) = (signer(1), signer(2));
    let submit = |signer: &Signer, nonce: u64, txs: Vec<TxPart>| {
        let entry =
            Entry { sender: signer.address(), nonce, txs }.encode_signed(signer).expect("entry encodes");
        node.submit(&entry).expect("submit").position
    };
    let p1 = submit(
        &a,
        1,
        vec![tx(
            &[
                (S3, b"x", b"1"),
                (S, b"a", b"hello world"),
                (S, b"b", b"bee"),
                (S, b"c", b"sea"),
                (S, b"d", b"dee"),
            ],
            vec![],
        )],
    );
    let p2 = submit(&a, 2, vec![tx(&[(S, b"a", b"HELLO"), (S, b"b", b"")], vec![])]);
    let controls = vec![
        Control { op: ControlOp::GrantWriteRole, stream: S, key: None, account: Some(b.address()) },
        Control { op: ControlOp::SetKeyToSpecial, stream: S, key: Some(b"d".to_vec()), account: None },
    ];
    let p3 = submit(&a, 3, vec![tx(&[], controls)]);
    let p4 = submit(&b, 1, vec![tx(&[(S, b"c", b"C")], vec![]), tx(&[(S, b"d", b"no")], vec![])]);
    let v = [p1, p2, p3, p4].map(|p| tx_version(p, 0));
    Fixture { _dir: dir, node, v }
}

fn raw(node: &Node, body: &str) -> Option<String> {
    handle(node, body.as_bytes()).map(|bytes| String::from_utf8(bytes).expect("responses are UTF-8"))
}

fn response(node: &Node, body: &str) -> Value {
    serde_json::from_str(&raw(node, body).expect("a response")).expect("response is JSON")
}

/// The result of `method(params)`, or the error object.
fn call(node: &Node, method: &str, params: Value) -> Result<Value, Value> {
    let request = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let mut r = response(node, &request.to_string());
    assert_eq!(r["id"], 1);
    match r.get_mut("error") {
        Some(e) => Err(e.take()),
        None => Ok(r["result"].take()),
    }
}

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

fn sid(s: StreamId) -> String {
    s.to_string()
}

#[test]
fn get_value_pages_with_clamping_and_len_zero_gives_metadata_only() {
    let f = fixture();
    let get = |start: u64, len: u64, version: Value| {
        call(&f.node, "kv_getValue", json!([sid(S), b64(b"a"), start, len, version]))
    };
    let v1 = json!(f.v[0]);
    assert_eq!(
        get(0, 262144, v1.clone()),
        Ok(json!({"version": f.v[0], "data": b64(b"hello world"), "size": 11}))
    );
    assert_eq!(get(6, 3, v1.clone()), Ok(json!({"version": f.v[0], "data": b64(b"wor"), "size": 11})));
    assert_eq!(get(9, 100, v1.clone()), Ok(json!({"version": f.v[0], "data": b64(b"ld"), "size": 11})));
    assert_eq!(get(11, 5, v1.clone()), Ok(json!({"version": f.v[0], "data": "", "size": 11})));
    assert_eq!(get(100, 0, v1), Ok(json!({"version": f.v[0], "data": "", "size": 11})));
    // Latest, with version absent and null.
    let latest = json!({"version": f.v[1], "data": b64(b"HELLO"), "size": 5});
    assert_eq!(call(&f.node, "kv_getValue", json!([sid(S), b64(b"a"), 0, 262144])), Ok(latest.clone()));
    assert_eq!(get(0, 262144, Value::Null), Ok(latest));
}

#[test]
fn get_value_rejects_start_past_end_len_too_large_and_empty_key() {
    let f = fixture();
    let e = call(&f.node, "kv_getValue", json!([sid(S), b64(b"a"), 6, 1])).unwrap_err();
    assert_eq!(e["code"], -32602);
    assert_eq!(e["message"], "Invalid params: start_index");
    assert_eq!(e["data"], "start index is greater than value length");
    let e = call(&f.node, "kv_getValue", json!([sid(S), b64(b"a"), 0, 262145])).unwrap_err();
    assert_eq!((e["code"].clone(), e["message"].clone()), (json!(-32602), json!("Invalid params: len")));
    let e = call(&f.node, "kv_getValue", json!([sid(S), "", 0, 1])).unwrap_err();
    assert_eq!(
        (e["message"].clone(), e["data"].clone()),
        (json!("Invalid params: key"), json!("key is empty"))
    );
}

#[test]
fn missing_key_is_version_zero_and_deleted_key_is_the_deletes_version() {
    let f = fixture();
    let get = |stream: StreamId, key: &[u8], version: Value| {
        call(&f.node, "kv_getValue", json!([sid(stream), b64(key), 0, 262144, version]))
    };
    let empty = |version: u64| Ok(json!({"version": version, "data": "", "size": 0}));
    assert_eq!(get(S, b"zz", Value::Null), empty(0));
    assert_eq!(get(NEW, b"a", Value::Null), empty(0));
    assert_eq!(get(S, b"b", Value::Null), empty(f.v[1]));
    assert_eq!(get(S, b"b", json!(f.v[1])), empty(f.v[1]));
    assert_eq!(get(S, b"b", json!(f.v[0])), Ok(json!({"version": f.v[0], "data": b64(b"bee"), "size": 3})));
    assert_eq!(get(S, b"a", json!(f.v[0] - 1)), empty(0));
}

#[test]
fn iteration_skips_a_deleted_key_even_inclusive_and_reads_as_of() {
    let f = fixture();
    let step = |method: &str, key: &[u8], inclusive: bool, version: Value| {
        let r = call(&f.node, method, json!([sid(S), b64(key), 0, 262144, inclusive, version]))
            .expect("a result");
        (!r.is_null()).then(|| {
            let key = STANDARD.decode(r["key"].as_str().expect("key")).expect("base64 key");
            (String::from_utf8(key).expect("utf8"), r["version"].as_u64().expect("version"))
        })
    };
    let kv = |k: &str, v: u64| Some((k.to_string(), v));
    assert_eq!(step("kv_getNext", b"a", true, Value::Null), kv("a", f.v[1]));
    assert_eq!(step("kv_getNext", b"a", false, Value::Null), kv("c", f.v[3]));
    // The 0G trap: inclusive on a deleted key must move on, not loop.
    assert_eq!(step("kv_getNext", b"b", true, Value::Null), kv("c", f.v[3]));
    assert_eq!(step("kv_getPrev", b"b", true, Value::Null), kv("a", f.v[1]));
    assert_eq!(step("kv_getPrev", b"c", false, Value::Null), kv("a", f.v[1]));
    assert_eq!(step("kv_getNext", b"d", false, Value::Null), None);
    assert_eq!(step("kv_getPrev", b"a", false, Value::Null), None);
    // As of v1, b was live.
    assert_eq!(step("kv_getNext", b"a", false, json!(f.v[0])), kv("b", f.v[0]));
    assert_eq!(step("kv_getPrev", b"c", false, json!(f.v[0])), kv("b", f.v[0]));

    let r = call(&f.node, "kv_getNext", json!([sid(S), b64(b"b"), 1, 1, true])).expect("a result");
    assert_eq!(r, json!({"version": f.v[3], "key": b64(b"c"), "data": "", "size": 1}));
    let r = call(&f.node, "kv_getNext", json!([sid(S), b64(b"a"), 0, 0, false, f.v[0]])).expect("a result");
    assert_eq!(r, json!({"version": f.v[0], "key": b64(b"b"), "data": "", "size": 3}));
}

#[test]
fn first_and_last_give_the_live_ends_or_null() {
    let f = fixture();
    let first = call(&f.node, "kv_getFirst", json!([sid(S), 0, 3])).expect("first");
    assert_eq!(first, json!({"version": f.v[1], "key": b64(b"a"), "data": b64(b"HEL"), "size": 5}));
    let last = call(&f.node, "kv_getLast", json!([sid(S), 1, 262144, f.v[0]])).expect("last");
    assert_eq!(last, json!({"version": f.v[0], "key": b64(b"d"), "data": b64(b"ee"), "size": 3}));
    assert_eq!(call(&f.node, "kv_getFirst", json!([sid(NEW), 0, 0])), Ok(Value::Null));
    assert_eq!(call(&f.node, "kv_getLast", json!([sid(NEW), 0, 0, null])), Ok(Value::Null));
}

#[test]
fn permission_queries_answer_as_of_a_version_and_accept_both_is_admin_spellings() {
    let f = fixture();
    let (a, b) = (signer(1).address().to_string(), signer(2).address().to_string());
    let ask = |method: &str, params: Value| call(&f.node, method, params).expect("a result");
    assert_eq!(ask("kv_isAdmin", json!([a, sid(S)])), json!(true));
    assert_eq!(ask("kv_IsAdmin", json!([a, sid(S), null])), json!(true));
    assert_eq!(ask("kv_IsAdmin", json!([b, sid(S)])), json!(false));
    assert_eq!(ask("kv_isWriterOfStream", json!([b, sid(S)])), json!(true));
    assert_eq!(ask("kv_isWriterOfStream", json!([b, sid(S), f.v[1]])), json!(false));
    assert_eq!(ask("kv_isSpecialKey", json!([sid(S), b64(b"d")])), json!(true));
    assert_eq!(ask("kv_isSpecialKey", json!([sid(S), b64(b"d"), f.v[1]])), json!(false));
    assert_eq!(ask("kv_isWriterOfKey", json!([b, sid(S), b64(b"d")])), json!(false));
    assert_eq!(ask("kv_hasWritePermission", json!([b, sid(S), b64(b"c")])), json!(true));
    assert_eq!(ask("kv_hasWritePermission", json!([b, sid(S), b64(b"d")])), json!(false));
    assert_eq!(ask("kv_hasWritePermission", json!([b, sid(S), b64(b"c"), f.v[1]])), json!(false));
    assert_eq!(ask("kv_hasWritePermission", json!([b, sid(NEW), b64(b"c")])), json!(true));
    let e = call(&f.node, "kv_isAdmin", json!(["0x12", sid(S)])).unwrap_err();
    assert_eq!((e["code"].clone(), e["message"].clone()), (json!(-32602), json!("Invalid params: account")));
}

#[test]
fn transaction_results_are_found_by_number_or_decimal_string() {
    let f = fixture();
    let result = |param: Value| call(&f.node, "kv_getTransactionResult", json!([param])).expect("a result");
    assert_eq!(result(json!(f.v[3])), json!("Commit"));
    assert_eq!(result(json!(f.v[3].to_string())), json!("Commit"));
    let denied = result(json!((f.v[3] + 1).to_string()));
    assert!(denied.as_str().expect("a string").starts_with("WritePermissionDenied"), "{denied}");
    assert_eq!(result(json!(f.v[3] + 2)), Value::Null);
    let e = call(&f.node, "kv_getTransactionResult", json!(["5x"])).unwrap_err();
    assert_eq!(e["code"], -32602);
}

#[test]
fn holding_stream_ids_are_sorted_and_params_may_be_absent() {
    let f = fixture();
    let r = response(&f.node, r#"{"jsonrpc":"2.0","id":7,"method":"kv_getHoldingStreamIds"}"#);
    assert_eq!(r["result"], json!([sid(S), sid(S3)]));
    let r = response(&f.node, r#"{"jsonrpc":"2.0","id":7,"method":"kv_getStatus","params":null}"#);
    assert_eq!(r["result"], json!(true));
}

#[test]
fn replay_progress_gives_the_position_and_0gs_next_seq() {
    let f = fixture();
    let r = call(&f.node, "kv_getReplayProgress", json!([])).expect("a result");
    assert_eq!(r["appliedPosition"], 4);
    assert_eq!(r["appliedSeq"], 5);
    assert_eq!(r["appliedVersion"], f.v[3] + 1);
}

#[test]
fn malformed_requests_and_unknown_methods_get_the_standard_codes() {
    let f = fixture();
    let code = |body: &str| response(&f.node, body)["error"]["code"].clone();
    assert_eq!(code("{"), json!(-32700));
    assert_eq!(response(&f.node, "{")["id"], Value::Null);
    assert_eq!(code("[]"), json!(-32600));
    assert_eq!(code("42"), json!(-32600));
    assert_eq!(code(r#"{"jsonrpc":"2.0","id":3}"#), json!(-32600));
    assert_eq!(code(r#"{"jsonrpc":"1.0","id":3,"method":"kv_getStatus"}"#), json!(-32600));
    assert_eq!(code(r#"{"jsonrpc":"2.0","id":3,"method":"kv_getStatus","params":{}}"#), json!(-32600));
    assert_eq!(code(r#"{"jsonrpc":"2.0","id":3,"method":"kv_nope","params":[]}"#), json!(-32601));
    let e = call(&f.node, "kv_getValue", json!([sid(S), "%%%", 0, 1])).unwrap_err();
    assert_eq!((e["code"].clone(), e["message"].clone()), (json!(-32602), json!("Invalid params: key")));
    let e = call(&f.node, "kv_getValue", json!(["0xabc", b64(b"a"), 0, 1])).unwrap_err();
    assert_eq!(e["message"], "Invalid params: stream_id");
    let e = call(&f.node, "kv_getStatus", json!([1])).unwrap_err();
    assert_eq!(e["code"], -32602);
}

#[test]
fn ids_are_echoed_exactly_even_above_2_pow_53() {
    let f = fixture();
    for id in ["17952394848786210", "123456789012345678901234567890", "\"abc\"", "null", "-1.5e300"] {
        let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"kv_getStatus"}}"#);
        let out = raw(&f.node, &body).expect("a response");
        assert!(out.contains(&format!(r#""id":{id}"#)), "{out}");
    }
}

#[test]
fn a_batch_is_answered_in_order_and_notifications_get_no_response() {
    let f = fixture();
    let body = r#"[{"jsonrpc":"2.0","id":1,"method":"kv_getStatus"},
        {"jsonrpc":"2.0","method":"kv_getStatus"},
        5,
        {"jsonrpc":"2.0","id":2,"method":"kv_nope"}]"#;
    let r = response(&f.node, body);
    assert_eq!(r.as_array().map(Vec::len), Some(3));
    assert_eq!((r[0]["id"].clone(), r[0]["result"].clone()), (json!(1), json!(true)));
    assert_eq!((r[1]["id"].clone(), r[1]["error"]["code"].clone()), (Value::Null, json!(-32600)));
    assert_eq!((r[2]["id"].clone(), r[2]["error"]["code"].clone()), (json!(2), json!(-32601)));
    assert_eq!(raw(&f.node, r#"{"jsonrpc":"2.0","method":"kv_getStatus"}"#), None);
    assert_eq!(raw(&f.node, r#"[{"jsonrpc":"2.0","method":"kv_getStatus"}]"#), None);
}

/// The read methods' answer to `body` on `node` alone, as the server's
/// `exec::handle` gives it minus the server: parse, dispatch, encode.
fn handle(node: &Node, body: &[u8]) -> Option<Vec<u8>> {
    let answer = |call: Call| match call {
        Call::Valid(request) => {
            let outcome = methods::dispatch(node, &request.method, &request.params);
            request.id.map(|id| Response::new(id, outcome))
        }
        Call::Invalid { id, error } => Some(Response::new(id, Err(error))),
    };
    match parse(body) {
        Err(error) => response::encode_one(&Response::new(response::null_id(), Err(error))),
        Ok(Incoming::Single(call)) => answer(call).and_then(|r| response::encode_one(&r)),
        Ok(Incoming::Batch(calls)) => {
            response::encode_batch(&calls.into_iter().filter_map(answer).collect::<Vec<_>>())
        }
    }
}

#[test]
fn a_wrong_parameter_is_named_with_what_was_expected_and_what_came() {
    let f = fixture();
    // Parameters shifted by one (the stream left out): the first one is
    // the one named, not a later `len`.
    let e = call(&f.node, "kv_getValue", json!([b64(b"a"), 0, 10])).unwrap_err();
    assert_eq!(e["message"], "Invalid params: stream_id", "{e}");
    let data = e["data"].as_str().unwrap();
    assert!(data.contains("expected 0x and 64 hex digits") && data.contains("got \"YQ==\""), "{e}");
    let e = call(&f.node, "kv_getValue", json!([sid(S), b64(b"a"), 0, "ten"])).unwrap_err();
    assert_eq!(e["message"], "Invalid params: len", "{e}");
    assert_eq!(e["data"], "expected an unsigned integer, got \"ten\"", "{e}");
    let e = call(&f.node, "kv_getValue", json!([sid(S), "%%%", 0, 1])).unwrap_err();
    assert!(e["data"].as_str().unwrap().ends_with("got \"%%%\""), "{e}");
    let e = call(&f.node, "kv_getValue", json!([sid(S), b64(b"a"), 0])).unwrap_err();
    assert_eq!(e["data"], "missing: it is parameter 4 and 3 were given", "{e}");
    // A long value is quoted in part.
    let long = "z".repeat(1000);
    let e = call(&f.node, "kv_getValue", json!([long, b64(b"a"), 0, 1])).unwrap_err();
    assert!(e["data"].as_str().unwrap().len() < 200, "{e}");
}
