//! Checkpoints, compaction, retention and export on a running `logkv
//! serve`: the admin methods need the token and return their reports; a
//! read older than retention keeps is answered `-32021` (kv_getValue and
//! kv_watch alike) while the newest state stays readable over both
//! protocols; transaction results stay readable across restarts and
//! compaction as long as retention keeps their records; a watcher that is
//! live when the log is compacted goes on; a restart after a checkpoint
//! replays only what came after it; the maintenance task checkpoints and
//! compacts on its own once they are due and says so in the log and
//! /metrics; bad settings stop `serve` with a usage error naming them.
//! Waits are bounded only to detect hangs.

mod rpc_support;
mod server;

use std::time::Instant;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use logkv_runtime::codec::native::Op;
use logkv_runtime::signing::Signer;
use logkv_runtime::types::StreamId;
use rpc_support::{signer, Rpc, Ws};
use serde_json::{json, Value};
use server::{Server, PATIENCE};

const TOKEN: &str = "maintenance-test-token";
const S: StreamId = StreamId([5; 32]);

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// A server with the admin token and `args`.
fn start(args: &[&str]) -> Server {
    Server::builder().args(["--durability", "none", "--admin-token", TOKEN]).args(args).start()
}

/// `method(params)` with the token: the whole answer.
fn admin(rpc: &Rpc, method: &str, params: Value) -> Value {
    rpc.call_with(method, params, Some(TOKEN))
}

/// `method(params)` with the token, which must succeed: the result.
fn admin_ok(rpc: &Rpc, method: &str, params: Value) -> Value {
    let answer = admin(rpc, method, params);
    assert!(answer.get("error").is_none(), "{method} failed: {answer}");
    answer["result"].clone()
}

/// Puts `key = value` on S as one entry of `me`; its version.
fn put(rpc: &Rpc, me: &Signer, key: &str, value: &str) -> u64 {
    let submitted = rpc.submit(me, vec![(S, key.as_bytes(), Op::Put(value.as_bytes().to_vec().into()))]);
    submitted["version"].as_u64().expect("a version")
}

/// kv_getValue of `key` on S as of `version` (newest if `None`).
fn get(rpc: &Rpc, key: &str, version: Option<u64>) -> Value {
    rpc.call("kv_getValue", json!([S.to_string(), b64(key.as_bytes()), 0, 100, version]))
}

/// The value of the series `name` in /metrics.
fn metric(rpc: &Rpc, name: &str) -> f64 {
    let (status, text) = rpc.get("/metrics");
    assert_eq!(status, 200);
    let line = text.lines().find(|l| l.split(' ').next() == Some(name));
    let value = line.and_then(|l| l.split(' ').nth(1)).unwrap_or_else(|| panic!("no {name} in\n{text}"));
    value.parse().unwrap_or_else(|_| panic!("{name} is {value}"))
}

/// Waits until `done` holds, panicking with `what` if it never does.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "{what} did not happen within {PATIENCE:?}");
        std::thread::sleep(PATIENCE / 600);
    }
}

#[test]
fn admin_checkpoint_compact_and_export_need_the_token_and_return_their_reports() {
    let exports = tempfile::tempdir().unwrap();
    let server = start(&["--backup-dir", exports.path().to_str().unwrap()]);
    let rpc = Rpc::new(&server);
    let me = signer(1);
    for i in 0..5 {
        put(&rpc, &me, &format!("k{i}"), "value");
    }
    let file = exports.path().join("node.export");
    let path = file.to_str().unwrap();
    for (method, params) in
        [("admin_checkpoint", json!([])), ("admin_compact", json!([])), ("admin_export", json!([path]))]
    {
        for token in [None, Some("wrong")] {
            let refused = rpc.call_with(method, params.clone(), token);
            assert_eq!(refused["error"]["code"], json!(-32001), "{method} with {token:?}: {refused}");
        }
    }
    assert!(!file.exists(), "a refused export writes nothing");

    let applied = admin_ok(&rpc, "admin_nodeInfo", json!([]))["appliedPosition"].as_u64().unwrap();
    let checkpoint = admin_ok(&rpc, "admin_checkpoint", json!([]));
    assert_eq!(checkpoint["position"], json!(applied), "{checkpoint}");
    assert!(checkpoint["keys"].as_u64() >= Some(5), "{checkpoint}");
    let ckpt_file = checkpoint["path"].as_str().unwrap();
    assert!(ckpt_file.starts_with(server.dir().to_str().unwrap()), "{checkpoint}");
    assert_eq!(std::fs::metadata(ckpt_file).unwrap().len(), checkpoint["bytes"].as_u64().unwrap());

    let compaction = admin_ok(&rpc, "admin_compact", json!([]));
    assert_eq!(compaction["compactedThrough"], json!(applied), "{compaction}");
    assert_eq!(compaction["historiesCut"], json!(0), "no retention: nothing dropped ({compaction})");
    assert!(compaction["outputBytes"].as_u64() > Some(0), "{compaction}");
    let info = admin_ok(&rpc, "admin_nodeInfo", json!([]));
    assert_eq!(info["compacted"]["through"], json!(applied), "{info}");
    assert!(info["checkpoint"]["position"].as_u64() >= Some(applied), "{info}");

    let export = admin_ok(&rpc, "admin_export", json!([path]));
    assert_eq!((export["path"].as_str(), export["position"].as_u64()), (Some(path), Some(applied)));
    assert_eq!(std::fs::metadata(&file).unwrap().len(), export["bytes"].as_u64().unwrap());
    let data_dir_file = server.dir().join("inside.export");
    for (bad, says) in [
        (path.to_string(), "exists"),
        ("node.export".to_string(), "exists"),
        ("/no/such/dir/x.export".to_string(), "does not exist"),
        (data_dir_file.to_str().unwrap().to_string(), "outside the backup directory"),
    ] {
        let refused = admin(&rpc, "admin_export", json!([bad]));
        assert_eq!(refused["error"]["code"], json!(-32602), "{bad}: {refused}");
        assert!(refused["error"]["data"].as_str().unwrap().contains(says), "{bad}: {refused}");
    }
    assert!(!data_dir_file.exists());

    assert_eq!(metric(&rpc, "logkv_compactions_total"), 1.0);
    assert_eq!(metric(&rpc, "logkv_checkpoints_total"), 2.0, "the compaction ends with one");
    assert_eq!(metric(&rpc, "logkv_checkpoint_last_position"), applied as f64);
    assert_eq!(
        metric(&rpc, "logkv_compaction_last_output_bytes"),
        compaction["outputBytes"].as_f64().unwrap()
    );
    assert_eq!(metric(&rpc, "logkv_log_superseded_bytes"), 0.0, "just compacted");
    assert!(metric(&rpc, "logkv_log_total_bytes") > 0.0);
    let stderr = server.stderr();
    for says in ["checkpoint written", "log compacted", "export written"] {
        assert!(stderr.contains(says), "no {says:?} in the log:\n{stderr}");
    }
    server.stop_cleanly();
}

#[test]
fn a_read_older_than_retention_keeps_is_answered_compacted() {
    let server = start(&["--retain-versions", "1"]);
    let rpc = Rpc::new(&server);
    let me = signer(2);
    let v1 = put(&rpc, &me, "k", "one");
    let v2 = put(&rpc, &me, "k", "two");
    let v3 = put(&rpc, &me, "k", "three");
    let set = rpc.redis(&["SET", "resp-key", "a"]);
    assert_eq!(set, "+OK\r\n");
    assert_eq!(rpc.redis(&["SET", "resp-key", "b"]), "+OK\r\n");
    assert_eq!(get(&rpc, "k", Some(v1))["result"]["data"], json!(b64(b"one")), "before compaction");

    let compaction = admin_ok(&rpc, "admin_compact", json!([]));
    assert!(
        compaction["historiesCut"].as_u64() >= Some(2),
        "k and resp-key lost their older versions: {compaction}"
    );

    for old in [v1, v2] {
        let error = get(&rpc, "k", Some(old))["error"].clone();
        assert_eq!(error["code"], json!(-32021), "{error}");
        assert!(error["message"].as_str().unwrap().starts_with("compacted: "), "{error}");
        assert_eq!(error["data"], json!({ "version": old, "oldest": v3 }), "{error}");
    }
    assert_eq!(get(&rpc, "k", Some(v3))["result"]["data"], json!(b64(b"three")));
    assert_eq!(get(&rpc, "k", None)["result"]["data"], json!(b64(b"three")));
    // Retention keeps no time window: only the last compacted record keeps
    // its results; older ones are compacted too.
    for old in [v1, v2] {
        let error = result_of(&rpc, old)["error"].clone();
        assert_eq!(error["code"], json!(-32021), "{error}");
        assert_eq!(error["data"]["version"], json!(old), "{error}");
        assert!(error["data"]["oldest"].as_u64() > Some(v3), "{error}");
    }
    let history = rpc.result("kv_getHistory", json!([S.to_string(), b64(b"k")]));
    assert_eq!(history.as_array().unwrap().len(), 1, "{history}");
    // The newest state is whole over RESP too.
    assert_eq!(rpc.redis(&["GET", "resp-key"]), "$1\r\nb\r\n");
    assert_eq!(rpc.redis(&["INCR", "counter"]), ":1\r\n");

    // kv_watch cannot replay changes the compacted part no longer holds.
    let mut ws = Ws::connect(&server);
    ws.send(json!({ "jsonrpc": "2.0", "id": 1, "method": "kv_watch", "params": [S.to_string(), 0] }));
    let refused = ws.next();
    assert_eq!(refused["error"]["code"], json!(-32021), "{refused}");
    let oldest = refused["error"]["data"]["oldest"].as_u64().unwrap();
    assert!(oldest > v3, "{refused}");
    server.stop_cleanly();
}

/// `kv_getTransactionResult` of `version`: the whole answer.
fn result_of(rpc: &Rpc, version: u64) -> Value {
    rpc.call("kv_getTransactionResult", json!([version]))
}

#[test]
fn transaction_results_survive_restarts_and_compaction_that_keeps_their_records() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    let (me, stranger) = (signer(7), signer(8));
    let serve =
        || Server::builder().data_dir(&dir).args(["--durability", "none", "--admin-token", TOKEN]).start();
    let server = serve();
    let rpc = Rpc::new(&server);
    let v1 = put(&rpc, &me, "k", "one");
    let denied = rpc.submit(&stranger, vec![(S, b"k", Op::Put(b"theirs".to_vec().into()))]);
    assert_eq!(denied["results"], json!(["SenderNoWritePermission"]), "{denied}");
    let v2 = denied["version"].as_u64().unwrap();
    let v3 = put(&rpc, &me, "k", "two");
    let want = [(v1, json!("Commit")), (v2, json!("SenderNoWritePermission")), (v3, json!("Commit"))];
    let check = |rpc: &Rpc, when: &str| {
        for (version, result) in &want {
            assert_eq!(result_of(rpc, *version)["result"], *result, "{when}: version {version}");
        }
        assert_eq!(result_of(rpc, v3 + 1)["result"], Value::Null, "{when}: no such transaction");
    };
    check(&rpc, "before a restart");
    let digest = |rpc: &Rpc| admin_ok(rpc, "admin_nodeInfo", json!([]))["stateDigest"].clone();
    let before = digest(&rpc);
    server.stop_cleanly();

    let server = serve();
    let rpc = Rpc::new(&server);
    check(&rpc, "after a restart");
    assert_eq!(digest(&rpc), before, "the digest is the newest record's state");
    // No retention set: compaction keeps every record's results.
    admin_ok(&rpc, "admin_compact", json!([]));
    check(&rpc, "after compaction");
    assert_eq!(digest(&rpc), before);
    let v4 = put(&rpc, &me, "k", "three");
    server.stop_cleanly();

    let server = serve();
    let rpc = Rpc::new(&server);
    check(&rpc, "after compaction and a restart");
    assert_eq!(result_of(&rpc, v4)["result"], json!("Commit"));
    server.stop_cleanly();
}

#[test]
fn a_watcher_live_across_a_compaction_keeps_receiving_writes() {
    let server = start(&["--retain-versions", "1"]);
    let rpc = Rpc::new(&server);
    let me = signer(3);
    put(&rpc, &me, "a", "1");
    let v2 = put(&rpc, &me, "a", "2");
    let mut ws = Ws::connect(&server);
    let sub = ws.watch(S, v2);
    assert_eq!(ws.changes(&sub, 1)[0], (v2, b"a".to_vec(), Some(b"2".to_vec())));
    admin_ok(&rpc, "admin_compact", json!([]));
    let v3 = put(&rpc, &me, "b", "3");
    assert_eq!(ws.changes(&sub, 1)[0], (v3, b"b".to_vec(), Some(b"3".to_vec())));
    // A subscription from a version after the compacted part replays it.
    let mut late = Ws::connect(&server);
    let sub = late.watch(S, v3);
    assert_eq!(late.changes(&sub, 1)[0], (v3, b"b".to_vec(), Some(b"3".to_vec())));
    server.stop_cleanly();
}

#[test]
fn a_restart_after_a_checkpoint_replays_only_what_came_after_it() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    let me = signer(4);
    let checkpoint = {
        let server = Server::builder().data_dir(&dir).args(["--admin-token", TOKEN]).start();
        let rpc = Rpc::new(&server);
        for i in 0..20 {
            put(&rpc, &me, &format!("before{i}"), "x");
        }
        let checkpoint = admin_ok(&rpc, "admin_checkpoint", json!([]))["position"].as_u64().unwrap();
        for i in 0..3 {
            put(&rpc, &me, &format!("after{i}"), "y");
        }
        server.stop_cleanly();
        checkpoint
    };
    let server = Server::builder().data_dir(&dir).args(["--admin-token", TOKEN]).start();
    let rpc = Rpc::new(&server);
    let info = admin_ok(&rpc, "admin_nodeInfo", json!([]));
    let applied = info["appliedPosition"].as_u64().unwrap();
    assert_eq!(info["open"]["checkpoint"], json!(checkpoint), "{info}");
    assert_eq!(info["checkpoint"]["position"], json!(checkpoint), "the loaded one is the newest: {info}");
    assert_eq!(info["open"]["replayedRecords"], json!(applied - checkpoint), "{info}");
    assert_eq!(applied - checkpoint, 3, "{info}");
    for key in ["before0", "before19", "after2"] {
        assert!(get(&rpc, key, None)["result"]["size"].as_u64() == Some(1), "{key} survives the restart");
    }
    server.stop_cleanly();
}

#[test]
fn the_maintenance_task_checkpoints_and_compacts_once_they_are_due() {
    let server = start(&[
        "--checkpoint-interval-bytes",
        "1",
        "--retain-versions",
        "1",
        "--compact-min-bytes",
        "0",
        "--compact-dead-ratio",
        "0.01",
        "--segment-size-bytes",
        "65536",
    ]);
    let rpc = Rpc::new(&server);
    let me = signer(6);
    put(&rpc, &me, "k", "first");
    eventually("an automatic checkpoint", || {
        !admin_ok(&rpc, "admin_nodeInfo", json!([]))["checkpoint"].is_null()
    });
    assert!(metric(&rpc, "logkv_checkpoints_total") >= 1.0);
    for i in 0..50 {
        put(&rpc, &me, "k", &format!("overwritten {i}"));
    }
    eventually("an automatic compaction", || metric(&rpc, "logkv_compactions_total") >= 1.0);
    let info = admin_ok(&rpc, "admin_nodeInfo", json!([]));
    assert!(!info["compacted"].is_null(), "{info}");
    assert_eq!(get(&rpc, "k", None)["result"]["data"], json!(b64(b"overwritten 49")));
    let stderr = server.stderr();
    for says in ["checkpoint written", "log compacted"] {
        assert!(stderr.contains(says), "no {says:?} in the log:\n{stderr}");
    }
    server.stop_cleanly();
}

#[test]
fn bad_retention_and_maintenance_settings_stop_serve_with_a_usage_error() {
    let temp = tempfile::tempdir().unwrap();
    let file = temp.path().join("logkv.toml");
    let cases: [(&[&str], Option<&str>, &str); 5] = [
        (&["--retain-versions", "0"], None, "--retain-versions"),
        (&["--retain-duration", "soon"], None, "not a duration"),
        (&["--compact-dead-ratio", "1.5"], None, "bad setting compact_dead_ratio"),
        (&[], Some("retain_versions = 0"), "bad setting retain_versions"),
        (&[], Some("retain_duration = \"7 fortnights\""), "retain_duration"),
    ];
    for (args, toml, says) in cases {
        let mut builder = Server::builder().args(args);
        if let Some(toml) = toml {
            std::fs::write(&file, toml).unwrap();
            builder = builder.arg("--config").arg(&file);
        }
        let failed = builder.try_start().err().unwrap_or_else(|| panic!("{args:?} {toml:?} must be refused"));
        assert_eq!(failed.status.and_then(|s| s.code()), Some(2), "{args:?} {toml:?}: {failed}");
        assert!(failed.stderr.contains(says), "{args:?} {toml:?}: no {says:?} in {failed}");
    }
    // Good values, from the file and the environment.
    std::fs::write(&file, "retain_duration = \"7d\"\ncompact_bytes_per_sec = 0\n").unwrap();
    let server = Server::builder().arg("--config").arg(&file).env("LOGKV_RETAIN_VERSIONS", "3").start();
    server.stop_cleanly();
}
