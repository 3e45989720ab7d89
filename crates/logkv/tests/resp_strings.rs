//! The string, bit and HyperLogLog commands through a real `logkv serve`
//! where the differential script cannot show them: `DUMP`/`RESTORE` of
//! logkv's own payloads, read-modify-writes racing on one key, the key
//! limit, and read-modify-writes inside `MULTI`.

mod server;

use std::thread;

use redis::Value;
use server::{resp, roundtrip, Server};

fn connect(server: &Server) -> redis::Connection {
    redis::Client::open(server.redis_url()).unwrap().get_connection().unwrap()
}

fn run(con: &mut redis::Connection, args: &[&[u8]]) -> redis::RedisResult<Value> {
    let mut cmd = redis::cmd(std::str::from_utf8(args[0]).unwrap());
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(con)
}

fn error_text(result: redis::RedisResult<Value>) -> String {
    let e = result.expect_err("an error reply");
    format!("{} {}", e.code().unwrap_or(""), e.detail().unwrap_or(""))
}

fn bulk(v: &str) -> Value {
    Value::BulkString(v.as_bytes().to_vec())
}

fn quiet_server() -> Server {
    Server::builder().args(["--durability", "none", "--idle-timeout-secs", "0"]).start()
}

#[test]
fn dump_payloads_restore_with_their_ttl_and_refuse_damage() {
    let server = quiet_server();
    let mut con = connect(&server);
    assert_eq!(run(&mut con, &[b"SET", b"k", b"hello"]).unwrap(), Value::Okay);
    let Value::BulkString(payload) = run(&mut con, &[b"DUMP", b"k"]).unwrap() else { panic!("a payload") };
    assert_eq!(run(&mut con, &[b"RESTORE", b"copy", b"0", &payload]).unwrap(), Value::Okay);
    assert_eq!(run(&mut con, &[b"GET", b"copy"]).unwrap(), bulk("hello"));
    assert_eq!(run(&mut con, &[b"TTL", b"copy"]).unwrap(), Value::Int(-1));
    assert_eq!(
        error_text(run(&mut con, &[b"RESTORE", b"copy", b"0", &payload])),
        "BUSYKEY Target key name already exists."
    );
    assert_eq!(run(&mut con, &[b"SET", b"k", b"other"]).unwrap(), Value::Okay);
    assert_eq!(run(&mut con, &[b"RESTORE", b"k", b"100000", &payload, b"REPLACE"]).unwrap(), Value::Okay);
    assert_eq!(run(&mut con, &[b"GET", b"k"]).unwrap(), bulk("hello"));
    assert_eq!(run(&mut con, &[b"TTL", b"k"]).unwrap(), Value::Int(100));
    // An absolute time in the past: answered OK, and the key is gone.
    assert_eq!(
        run(&mut con, &[b"RESTORE", b"k", b"1000", &payload, b"REPLACE", b"ABSTTL"]).unwrap(),
        Value::Okay
    );
    assert_eq!(run(&mut con, &[b"EXISTS", b"k"]).unwrap(), Value::Int(0));
    assert_eq!(
        run(&mut con, &[b"RESTORE", b"at", b"32503680000000", &payload, b"ABSTTL"]).unwrap(),
        Value::Okay
    );
    assert_eq!(run(&mut con, &[b"PEXPIRETIME", b"at"]).unwrap(), Value::Int(32_503_680_000_000));
    let mut damaged = payload.clone();
    damaged[9] ^= 0x20;
    assert_eq!(
        error_text(run(&mut con, &[b"RESTORE", b"bad", b"0", &damaged])),
        "ERR DUMP payload version or checksum are wrong"
    );
    assert_eq!(run(&mut con, &[b"EXISTS", b"bad"]).unwrap(), Value::Int(0));
}

#[test]
fn concurrent_read_modify_writes_of_one_key_lose_no_update() {
    const CONNECTIONS: usize = 8;
    const EACH: usize = 40;
    let server = quiet_server();
    let url = server.redis_url();
    let workers: Vec<_> = (0..CONNECTIONS)
        .map(|c| {
            let url = url.clone();
            thread::spawn(move || {
                let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
                for i in 0..EACH {
                    let bit = (c * EACH + i).to_string();
                    assert_eq!(
                        run(&mut con, &[b"SETBIT", b"bitmap", bit.as_bytes(), b"1"]).unwrap(),
                        Value::Int(0)
                    );
                    run(&mut con, &[b"INCRBYFLOAT", b"counter", b"0.5"]).unwrap();
                    let element = format!("e{c}-{i}");
                    run(&mut con, &[b"PFADD", b"visitors", element.as_bytes()]).unwrap();
                    run(&mut con, &[b"SETRANGE", b"bytes", bit.as_bytes(), b"x"]).unwrap();
                }
            })
        })
        .collect();
    workers.into_iter().for_each(|w| w.join().unwrap());
    let mut con = connect(&server);
    let total = (CONNECTIONS * EACH) as i64;
    assert_eq!(run(&mut con, &[b"BITCOUNT", b"bitmap"]).unwrap(), Value::Int(total));
    assert_eq!(run(&mut con, &[b"GET", b"counter"]).unwrap(), bulk(&(total / 2).to_string()));
    let Value::BulkString(bytes) = run(&mut con, &[b"GET", b"bytes"]).unwrap() else { panic!("a value") };
    assert_eq!(bytes.iter().filter(|b| **b == b'x').count() as i64, total);
    // A HyperLogLog of 320 elements: exact to within its standard error.
    let Value::Int(count) = run(&mut con, &[b"PFCOUNT", b"visitors"]).unwrap() else { panic!("a count") };
    assert!((count - total).abs() <= total * 3 / 100, "{count}");
}

#[test]
fn keys_up_to_one_kib_are_served_and_longer_ones_refused() {
    let server = quiet_server();
    let mut con = connect(&server);
    let longest = vec![b'k'; 1024];
    assert_eq!(run(&mut con, &[b"SET", &longest, b"v"]).unwrap(), Value::Okay);
    assert_eq!(run(&mut con, &[b"GET", &longest]).unwrap(), bulk("v"));
    assert_eq!(run(&mut con, &[b"RENAME", &longest, b"short"]).unwrap(), Value::Okay);
    let over = vec![b'k'; 1025];
    let refused = "ERR key of 1025 bytes: logkv keys are 1 to 1024 bytes";
    assert_eq!(error_text(run(&mut con, &[b"SET", &over, b"v"])), refused);
    assert_eq!(error_text(run(&mut con, &[b"RENAME", b"short", &over])), refused);
    assert_eq!(run(&mut con, &[b"GET", &over]).unwrap(), Value::Nil);
    assert_eq!(run(&mut con, &[b"EXISTS", b"short"]).unwrap(), Value::Int(1));
}

#[test]
fn multi_runs_read_modify_writes_but_not_after_a_write_of_their_keys() {
    let server = quiet_server();
    let mut stream = server.connect();
    let block: [&[&[u8]]; 8] = [
        &[b"MULTI"],
        &[b"SET", b"a", b"1"],
        &[b"SETBIT", b"b", b"7", b"1"],
        &[b"SETRANGE", b"a", b"0", b"2"],
        &[b"INCRBYFLOAT", b"c", b"1.5"],
        &[b"GET", b"c"],
        &[b"GETRANGE", b"a", b"0", b"-1"],
        &[b"EXEC"],
    ];
    let request: Vec<u8> = block.iter().flat_map(|args| resp::request(args)).collect();
    let replies = resp::split(&roundtrip(&mut stream, &request, block.len()));
    assert_eq!(
        String::from_utf8(replies[7].clone()).unwrap(),
        "*6\r\n+OK\r\n:0\r\n-ERR logkv does not run 'setrange' inside MULTI after a write of its keys yet\r\n\
         $3\r\n1.5\r\n$3\r\n1.5\r\n$1\r\n1\r\n"
    );
    let after = [resp::request(&[b"GET", b"b"]), resp::request(&[b"GET", b"a"])].concat();
    assert_eq!(roundtrip(&mut stream, &after, 2), b"$1\r\n\x01\r\n$1\r\n1\r\n");
}

#[test]
fn exec_retries_a_block_of_read_modify_writes_until_it_commits() {
    const CONNECTIONS: usize = 6;
    const EACH: usize = 30;
    let server = quiet_server();
    let url = server.redis_url();
    let workers: Vec<_> = (0..CONNECTIONS)
        .map(|c| {
            let url = url.clone();
            thread::spawn(move || {
                let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
                for i in 0..EACH {
                    let bit = (c * EACH + i).to_string();
                    let _: () = redis::pipe()
                        .atomic()
                        .cmd("SETBIT")
                        .arg("bitmap")
                        .arg(&bit)
                        .arg(1)
                        .ignore()
                        .cmd("INCRBYFLOAT")
                        .arg("counter")
                        .arg("0.25")
                        .ignore()
                        .query(&mut con)
                        .unwrap();
                }
            })
        })
        .collect();
    workers.into_iter().for_each(|w| w.join().unwrap());
    let mut con = connect(&server);
    let total = (CONNECTIONS * EACH) as i64;
    assert_eq!(run(&mut con, &[b"BITCOUNT", b"bitmap"]).unwrap(), Value::Int(total));
    assert_eq!(run(&mut con, &[b"GET", b"counter"]).unwrap(), bulk(&(total / 4).to_string()));
}

#[test]
fn randomkey_and_object_answer_from_the_live_keys() {
    let server = quiet_server();
    let mut con = connect(&server);
    assert_eq!(run(&mut con, &[b"RANDOMKEY"]).unwrap(), Value::Nil);
    let keys = ["user:1", "user:20", "user:300", "zebra", "apple"];
    for k in keys {
        run(&mut con, &[b"SET", k.as_bytes(), b"v"]).unwrap();
    }
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..200 {
        let Value::BulkString(k) = run(&mut con, &[b"RANDOMKEY"]).unwrap() else { panic!("a key") };
        assert!(keys.contains(&std::str::from_utf8(&k).unwrap()));
        seen.insert(k);
    }
    assert!(seen.len() >= 2, "{seen:?}");
    run(&mut con, &[b"DEL", b"user:1", b"user:20", b"user:300", b"zebra"]).unwrap();
    assert_eq!(run(&mut con, &[b"RANDOMKEY"]).unwrap(), bulk("apple"));
    // Idle time counts from the key's last write (its log time): at least
    // the pause since.
    thread::sleep(std::time::Duration::from_millis(1100));
    let Value::Int(idle) = run(&mut con, &[b"OBJECT", b"IDLETIME", b"apple"]).unwrap() else {
        panic!("seconds")
    };
    assert!(idle >= 1, "{idle}");
    assert_eq!(run(&mut con, &[b"OBJECT", b"REFCOUNT", b"apple"]).unwrap(), Value::Int(1));
}

/// A collection's metadata is never copied as a string value: moving one
/// is refused until its elements can move with it, and the collection is
/// left as it was.
#[test]
fn rename_copy_move_and_dump_of_a_collection_are_refused() {
    let server = quiet_server();
    let mut con = connect(&server);
    run(&mut con, &[b"HSET", b"h", b"f", b"v"]).unwrap();
    for args in [
        &[&b"RENAME"[..], b"h", b"h2"][..],
        &[b"RENAMENX", b"h", b"h2"],
        &[b"COPY", b"h", b"h2"],
        &[b"COPY", b"h", b"h2", b"DB", b"1"],
        &[b"MOVE", b"h", b"1"],
    ] {
        let error = error_text(run(&mut con, args));
        assert!(error.contains("hash") && error.contains("not supported yet"), "{args:?}: {error}");
    }
    assert!(error_text(run(&mut con, &[b"DUMP", b"h"])).contains("not supported yet"));
    assert_eq!(run(&mut con, &[b"EXISTS", b"h2"]).unwrap(), Value::Int(0));
    assert_eq!(run(&mut con, &[b"HGET", b"h", b"f"]).unwrap(), bulk("v"));
    run(&mut con, &[b"SELECT", b"1"]).unwrap();
    assert_eq!(run(&mut con, &[b"EXISTS", b"h"]).unwrap(), Value::Int(0));
    // A string over a collection destination replaces it, as in Redis.
    run(&mut con, &[b"SELECT", b"0"]).unwrap();
    run(&mut con, &[b"SET", b"s", b"text"]).unwrap();
    assert_eq!(run(&mut con, &[b"RENAME", b"s", b"h"]).unwrap(), Value::Okay);
    assert_eq!(run(&mut con, &[b"GET", b"h"]).unwrap(), bulk("text"));
    assert_eq!(run(&mut con, &[b"TYPE", b"h"]).unwrap(), Value::SimpleString("string".into()));
}
