//! Inconsistency detection between replicas (real `nats-server`s, real
//! `logkv serve` nodes): three nodes on a 3-replica stream, reporting
//! their state digests every 10 positions, agree while they apply the same
//! entries. Then node C is stopped, one value is rewritten in its data
//! directory with every checksum fixed up (so it opens cleanly: damage no
//! check at open can see), and C is started again. Once that key is
//! overwritten through the log, C's state digest differs from the others',
//! and every node raises the alarm naming C and a healthy node at a common
//! position — in `admin_nodeInfo`, `/metrics` (promtool-clean) and an
//! error line — while A and B go on agreeing.
//!
//! Named `nats_*` so scripts/test.sh runs it against every NATS release it
//! installs. Waits are bounded only to detect hangs.

mod nats;
mod rpc_support;
mod server;

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use nats::Cluster;
use rpc_support::Rpc;
use serde_json::{json, Value};
use server::{promtool_check, Server, PATIENCE};

const TOKEN: &str = "nats-digest-alarm-test-token";
const STREAM: &str = "digests";
const EVERY: u64 = 10;

/// The value altered on C's disk, and what it becomes (same length).
const CANARY: &[u8] = b"canary value, written once, altered later";
const ALTERED: &[u8] = b"canary value, written once, ALTERED later";

fn node(cluster: &Cluster, data_dir: Option<&Path>) -> Server {
    let urls = cluster.urls();
    let every = EVERY.to_string();
    let args = ["--log", &urls, "--log-stream", STREAM, "--replicas", "3", "--admin-token", TOKEN];
    let builder = Server::builder().args(args).args(["--digest-every", &every]);
    match data_dir {
        Some(dir) => builder.data_dir(dir).start(),
        None => builder.start(),
    }
}

fn info(node: &Server) -> Value {
    let answer = Rpc::new(node).call_with("admin_nodeInfo", json!([]), Some(TOKEN));
    assert!(answer.get("error").is_none(), "admin_nodeInfo failed: {answer}");
    answer["result"].clone()
}

/// `node`'s view of `peer` (by node key account) in admin_nodeInfo.
fn peer_view(info: &Value, peer: &str) -> Option<Value> {
    let peers = info["sharedLog"]["digests"]["peers"].as_array()?;
    peers.iter().find(|p| p["node"] == peer).cloned()
}

/// SETs over RESP through `node`.
fn set(node: &Server, key: &str, value: &[u8]) {
    let client = redis::Client::open(node.redis_url()).expect("a redis URL");
    let mut con = client.get_connection_with_timeout(PATIENCE).expect("connect over RESP");
    let reply: String = redis::cmd("SET").arg(key).arg(value).query(&mut con).expect("SET");
    assert_eq!(reply, "OK", "SET {key}");
}

/// Waits until `done` holds of every node's admin_nodeInfo, in order.
fn wait_until(nodes: &[&Server], what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let infos: Vec<Value> = nodes.iter().map(|n| info(n)).collect();
        if done(&infos) {
            return infos;
        }
        let digests: Vec<&Value> = infos.iter().map(|i| &i["sharedLog"]["digests"]).collect();
        assert!(Instant::now() < deadline, "{what}: {digests:#?}");
        thread::sleep(Duration::from_millis(100));
    }
}

/// Rewrites `CANARY` as `ALTERED` in the data directory's segments and
/// fixes the checksums that cover it — the CRC32C of the version record
/// pointing at it (key then value) and the frame's (docs/format.md) — so
/// the node opens and reads it as if it had been written so.
fn alter_behind_its_back(dir: &Path) {
    let mut hits = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "log") {
            let bytes = std::fs::read(&path).unwrap();
            if let Some(at) = bytes.windows(CANARY.len()).position(|w| w == CANARY) {
                hits.push((path, bytes, at));
            }
        }
    }
    assert_eq!(hits.len(), 1, "the value is stored once in {}", dir.display());
    let (path, mut bytes, at) = hits.pop().unwrap();
    let u32_at = |b: &[u8], i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap()) as usize;
    // The frame holding it: frames follow the 32-byte segment header.
    let mut frame = 32;
    let len = loop {
        let len = u32_at(&bytes, frame);
        assert!(bytes[frame..frame + 21].iter().any(|b| *b != 0), "no frame holds offset {at}");
        if at < frame + 26 + len {
            break len;
        }
        frame += 26 + len;
    };
    let payload = frame + 21;
    let value_at = at - payload;
    // The put_ref op whose value is those bytes: kind 3, value_len, and
    // value_back leading back to them.
    let ops: Vec<usize> = (0..len - 35)
        .filter(|&q| {
            let p = &bytes[payload..payload + len];
            let key_len = u16::from_le_bytes([p[q + 1], p[q + 2]]) as usize;
            p[q] == 3
                && u32_at(p, q + 3) == CANARY.len()
                && q + 35 + key_len <= len
                && q.checked_sub(u32_at(p, q + 31 + key_len)) == Some(value_at)
        })
        .collect();
    assert_eq!(ops.len(), 1, "one version record points at the value: {ops:?}");
    let op = payload + ops[0];
    let key_len = u16::from_le_bytes([bytes[op + 1], bytes[op + 2]]) as usize;
    let key = bytes[op + 31..op + 31 + key_len].to_vec();
    let crc = |value: &[u8]| crc32c::crc32c_append(crc32c::crc32c(&key), value);
    assert_eq!(u32_at(&bytes, op + 27) as u32, crc(CANARY), "the record's checksum covers the value");
    bytes[at..at + CANARY.len()].copy_from_slice(ALTERED);
    bytes[op + 27..op + 31].copy_from_slice(&crc(ALTERED).to_le_bytes());
    let frame_crc = crc32c::crc32c(&bytes[frame..payload + len]);
    bytes[payload + len..payload + len + 4].copy_from_slice(&frame_crc.to_le_bytes());
    std::fs::write(&path, bytes).unwrap();
}

#[test]
fn a_node_whose_state_was_altered_is_named_by_every_node() {
    let cluster = Cluster::start(3);
    let c_dir = tempfile::tempdir().unwrap();
    let c_data = c_dir.path().join("data");
    let (a, b, c) = (node(&cluster, None), node(&cluster, None), node(&cluster, Some(&c_data)));
    let ids: Vec<String> =
        [&a, &b, &c].iter().map(|n| info(n)["address"].as_str().unwrap().to_string()).collect();
    let (id_a, id_b, id_c) = (&ids[0], &ids[1], &ids[2]);

    set(&a, "canary", CANARY);
    for i in 0..25 {
        set(&a, &format!("k{i}"), format!("v{i}").as_bytes());
    }
    // All agree at the last reporting position of the stream.
    let tail = cluster.last_seq(1, STREAM).expect("the stream's tail");
    let last = tail / EVERY * EVERY;
    assert!(last >= 2 * EVERY, "{tail}");
    wait_until(&[&a, &b, &c], "all agreeing", |infos| {
        infos.iter().zip(&ids).all(|(info, me)| {
            ids.iter().filter(|id| *id != me).all(|peer| {
                peer_view(info, peer).is_some_and(|p| {
                    p["agreedPosition"] == last && p["mismatch"].is_null() && p["diverged"] == false
                })
            })
        })
    });

    c.stop_cleanly();
    alter_behind_its_back(&c_data);
    let c = node(&cluster, Some(&c_data));
    // Overwriting the key takes its old value's fact out of the digest:
    // C takes out the altered one, so from here on its digest differs.
    set(&a, "canary", b"rewritten");
    for i in 0..(2 * EVERY) {
        set(&a, &format!("after{i}"), b"x");
    }

    // Every node names C and a healthy node at one common position (the
    // newest each compared, once all three have reported it).
    let mismatch = |info: &Value, peer: &str| {
        peer_view(info, peer).filter(|p| p["diverged"] == true).map(|p| p["mismatch"].clone())
    };
    let position = |m: &Option<Value>| m.as_ref().and_then(|m| m["position"].as_u64());
    let infos = wait_until(&[&a, &b, &c], "the alarm on every node at one position", |i| {
        let seen =
            [mismatch(&i[0], id_c), mismatch(&i[1], id_c), mismatch(&i[2], id_a), mismatch(&i[2], id_b)];
        seen.iter().all(|m| m.is_some() && position(m) == position(&seen[0]))
    });
    let (a_sees, c_sees) = (mismatch(&infos[0], id_c).unwrap(), mismatch(&infos[2], id_a).unwrap());
    let position = a_sees["position"].as_u64().unwrap();
    assert!(position > last && position.is_multiple_of(EVERY), "{a_sees}");
    let http = |n: &Server| n.http_url().trim_start_matches("http://").trim_end_matches('/').to_string();
    assert_eq!(
        a_sees["nodes"][0],
        json!({ "node": id_a, "address": http(&a), "digest": a_sees["nodes"][0]["digest"] })
    );
    assert_eq!(
        a_sees["nodes"][1],
        json!({ "node": id_c, "address": http(&c), "digest": c_sees["nodes"][0]["digest"] })
    );
    assert_eq!(c_sees["nodes"][1]["digest"], a_sees["nodes"][0]["digest"], "A's digest, as C saw it");
    assert_ne!(a_sees["nodes"][0]["digest"], a_sees["nodes"][1]["digest"]);
    assert_eq!(mismatch(&infos[1], id_c).unwrap()["nodes"][1]["digest"], c_sees["nodes"][0]["digest"]);
    // The healthy pair still agrees, past the divergence.
    let healthy = wait_until(&[&a, &b], "A and B agreeing past the divergence", |i| {
        [(&i[0], id_b), (&i[1], id_a)].iter().all(|(info, peer)| {
            peer_view(info, peer)
                .is_some_and(|p| p["diverged"] == false && p["agreedPosition"].as_u64() >= Some(position))
        })
    });
    assert_eq!(
        healthy[0]["sharedLog"]["digests"]["mismatches"].as_u64(),
        peer_view(&healthy[0], id_c).unwrap()["mismatches"].as_u64()
    );

    // /metrics says so, promtool-clean.
    let (status, text) = Rpc::new(&a).get("/metrics");
    assert_eq!(status, 200);
    promtool_check(&text);
    let sample = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
    };
    assert!(sample("logkv_replica_digest_mismatches_total ") >= 1.0);
    assert_eq!(sample(&format!("logkv_replica_digest_diverged{{peer=\"{id_c}\"")), 1.0);
    assert_eq!(sample(&format!("logkv_replica_digest_diverged{{peer=\"{id_b}\"")), 0.0);
    assert!(sample(&format!("logkv_replica_digest_agreed_position{{peer=\"{id_b}\"")) >= position as f64);

    // And an error line on each side names both nodes.
    for (server, me, peer) in [(&a, id_a, id_c), (&c, id_c, id_a)] {
        let log = server.stderr();
        let line = log
            .lines()
            .find(|l| l.contains("ERROR") && l.contains("replicas diverged") && l.contains(peer.as_str()));
        let line = line.unwrap_or_else(|| panic!("no error line naming {peer} in\n{log}"));
        assert!(line.contains(me.as_str()), "{line}");
    }
}
