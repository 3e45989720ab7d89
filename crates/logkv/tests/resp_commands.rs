//! Every Redis command logkv serves, through the `redis` crate against a
//! real `logkv serve`: replies, error replies, pipelines, SCAN's
//! guarantee, INFO/HELLO/COMMAND/CONFIG shapes.

mod server;

use std::collections::BTreeSet;

use redis::{Commands, Value};
use server::{resp, roundtrip, Server};

fn connect(server: &Server) -> redis::Connection {
    redis::Client::open(server.redis_url()).unwrap().get_connection().unwrap()
}

fn error_text(e: redis::RedisError) -> String {
    let code = e.code().unwrap_or("").to_string();
    let detail = e.detail().unwrap_or("").to_string();
    format!("{code} {detail}")
}

fn raw(con: &mut redis::Connection, args: &[&str]) -> redis::RedisResult<Value> {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(con)
}

#[test]
fn string_commands_reply_as_redis() {
    let server = Server::start();
    let mut con = connect(&server);
    let _: () = con.set("k", "v").unwrap();
    assert_eq!(con.get::<_, Option<String>>("k").unwrap().as_deref(), Some("v"));
    assert_eq!(con.get::<_, Option<String>>("missing").unwrap(), None);
    assert_eq!(raw(&mut con, &["SET", "k", "w", "NX"]).unwrap(), Value::Nil);
    assert_eq!(raw(&mut con, &["SET", "k", "w", "XX", "GET"]).unwrap(), Value::BulkString(b"v".to_vec()));
    assert_eq!(raw(&mut con, &["SET", "new", "x", "XX"]).unwrap(), Value::Nil);
    assert_eq!(raw(&mut con, &["SET", "new", "x", "NX", "GET"]).unwrap(), Value::Nil);
    assert_eq!(con.get::<_, String>("new").unwrap(), "x");
    assert_eq!(raw(&mut con, &["SETNX", "new", "y"]).unwrap(), Value::Int(0));
    assert_eq!(raw(&mut con, &["SETNX", "fresh", "y"]).unwrap(), Value::Int(1));
    assert_eq!(raw(&mut con, &["GETSET", "fresh", "z"]).unwrap(), Value::BulkString(b"y".to_vec()));
    assert_eq!(raw(&mut con, &["APPEND", "fresh", "zz"]).unwrap(), Value::Int(3));
    assert_eq!(raw(&mut con, &["APPEND", "app", "abc"]).unwrap(), Value::Int(3));
    assert_eq!(raw(&mut con, &["STRLEN", "fresh"]).unwrap(), Value::Int(3));
    assert_eq!(raw(&mut con, &["STRLEN", "nothing"]).unwrap(), Value::Int(0));
    assert_eq!(raw(&mut con, &["TYPE", "fresh"]).unwrap(), Value::SimpleString("string".into()));
    assert_eq!(raw(&mut con, &["TYPE", "nothing"]).unwrap(), Value::SimpleString("none".into()));
    assert_eq!(raw(&mut con, &["INCR", "n"]).unwrap(), Value::Int(1));
    assert_eq!(raw(&mut con, &["INCRBY", "n", "41"]).unwrap(), Value::Int(42));
    assert_eq!(raw(&mut con, &["DECR", "n"]).unwrap(), Value::Int(41));
    assert_eq!(raw(&mut con, &["DECRBY", "n", "50"]).unwrap(), Value::Int(-9));
    let e = raw(&mut con, &["INCR", "fresh"]).unwrap_err();
    assert_eq!(error_text(e), "ERR value is not an integer or out of range");
    let _: () = con.set("big", i64::MAX).unwrap();
    let e = raw(&mut con, &["INCR", "big"]).unwrap_err();
    assert_eq!(error_text(e), "ERR increment or decrement would overflow");
    assert_eq!(raw(&mut con, &["MSET", "a", "1", "b", "2"]).unwrap(), Value::Okay);
    assert_eq!(
        raw(&mut con, &["MGET", "a", "nope", "b"]).unwrap(),
        Value::Array(vec![Value::BulkString(b"1".to_vec()), Value::Nil, Value::BulkString(b"2".to_vec())])
    );
    assert_eq!(raw(&mut con, &["EXISTS", "a", "a", "nope"]).unwrap(), Value::Int(2));
    assert_eq!(raw(&mut con, &["DEL", "a", "a", "nope"]).unwrap(), Value::Int(1));
    assert_eq!(raw(&mut con, &["UNLINK", "b"]).unwrap(), Value::Int(1));
    assert_eq!(raw(&mut con, &["EXISTS", "a", "b"]).unwrap(), Value::Int(0));
    assert_eq!(raw(&mut con, &["SET", "k", "v", "EXAT", "32503680000"]).unwrap(), Value::Okay);
    assert_eq!(raw(&mut con, &["EXPIRETIME", "k"]).unwrap(), Value::Int(32_503_680_000));
    assert_eq!(raw(&mut con, &["PEXPIREAT", "k", "1"]).unwrap(), Value::Int(1), "a past time deletes");
    assert_eq!(raw(&mut con, &["EXISTS", "k"]).unwrap(), Value::Int(0));
    let e = raw(&mut con, &["SELECT", "16"]).unwrap_err();
    assert_eq!(error_text(e), "ERR DB index is out of range");
    assert_eq!(raw(&mut con, &["SELECT", "0"]).unwrap(), Value::Okay);
    let e = raw(&mut con, &["GET"]).unwrap_err();
    assert_eq!(error_text(e), "ERR wrong number of arguments for 'get' command");
    let e = raw(&mut con, &["NOSUCH", "x"]).unwrap_err();
    assert_eq!(error_text(e), "ERR unknown command 'NOSUCH', with args beginning with: 'x' ");
    assert_eq!(raw(&mut con, &["PING"]).unwrap(), Value::SimpleString("PONG".into()));
    assert_eq!(raw(&mut con, &["ECHO", "hi"]).unwrap(), Value::BulkString(b"hi".to_vec()));
    assert_eq!(raw(&mut con, &["CLIENT", "SETNAME", "me"]).unwrap(), Value::Okay);
    assert_eq!(raw(&mut con, &["CLIENT", "GETNAME"]).unwrap(), Value::BulkString(b"me".to_vec()));
    assert!(matches!(raw(&mut con, &["CLIENT", "ID"]).unwrap(), Value::Int(id) if id > 0));
}

#[test]
fn a_pipeline_reads_its_own_writes_in_order() {
    let server = Server::start();
    let mut con = connect(&server);
    let mut pipe = redis::pipe();
    for i in 0..100 {
        pipe.set(format!("p{i}"), i).ignore();
        pipe.incr("counter", 1);
        pipe.get(format!("p{i}"));
    }
    let got: Vec<i64> = pipe.query(&mut con).unwrap();
    let want: Vec<i64> = (0..100).flat_map(|i| [i + 1, i]).collect();
    assert_eq!(got, want);
}

#[test]
fn scan_returns_every_key_present_throughout_and_keys_dbsize_match() {
    let server = Server::start();
    let mut con = connect(&server);
    for i in 0..250 {
        let _: () = con.set(format!("user:{i:03}"), i).unwrap();
    }
    for i in 0..30 {
        let _: () = con.set(format!("other:{i}"), i).unwrap();
    }
    assert_eq!(raw(&mut con, &["DBSIZE"]).unwrap(), Value::Int(280));
    // Iterate with a small COUNT while another connection adds and
    // deletes keys: every key present throughout is returned.
    let mut writer = connect(&server);
    let mut seen = BTreeSet::new();
    let mut cursor = "0".to_string();
    let mut calls = 0;
    loop {
        let (next, keys): (String, Vec<String>) = redis::cmd("SCAN")
            .arg(&cursor)
            .arg("MATCH")
            .arg("user:*")
            .arg("COUNT")
            .arg(7)
            .query(&mut con)
            .unwrap();
        seen.extend(keys);
        let _: () = writer.set(format!("user:new{calls}"), 1).unwrap();
        let _: i64 = writer.del(format!("user:{:03}", 200 + calls % 50)).unwrap();
        calls += 1;
        if next == "0" {
            break;
        }
        cursor = next;
    }
    for i in 0..200 {
        assert!(seen.contains(&format!("user:{i:03}")), "user:{i:03} missing");
    }
    assert!(seen.iter().all(|k| k.starts_with("user:")));
    let keys: Vec<String> = con.keys("other:?").unwrap();
    assert_eq!(keys.len(), 10);
    let keys: Vec<String> = con.keys("other:[12]?").unwrap();
    assert_eq!(keys.len(), 20);
    let e = raw(&mut con, &["SCAN", "123456789"]).unwrap_err();
    assert_eq!(error_text(e), "ERR invalid cursor");
    let e = raw(&mut con, &["SCAN", "abc"]).unwrap_err();
    assert_eq!(error_text(e), "ERR invalid cursor");
}

#[test]
fn concurrent_incr_from_many_clients_sums_exactly() {
    let server = Server::start();
    let url = server.redis_url();
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
                for _ in 0..200 {
                    let _: i64 = con.incr("hits", 1).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut con = connect(&server);
    assert_eq!(con.get::<_, i64>("hits").unwrap(), 3200);
}

#[test]
fn hello_info_command_and_config_have_redis_shapes() {
    let server = Server::builder().args(["--durability", "periodic", "--idle-timeout-secs", "0"]).start();
    let mut stream = server.connect();
    let got = roundtrip(&mut stream, &resp::request(&[b"HELLO", b"3"]), 1);
    assert!(got.starts_with(
        b"%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:3\r\n"
    ));
    assert!(got.ends_with(
        b"$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n"
    ));
    let got = roundtrip(&mut stream, &resp::request(&[b"GET", b"nope"]), 1);
    assert_eq!(got, b"_\r\n");
    let got = roundtrip(&mut stream, &resp::request(&[b"HELLO", b"4"]), 1);
    assert_eq!(got, b"-NOPROTO unsupported protocol version\r\n");
    let got = roundtrip(&mut stream, &resp::request(&[b"INFO", b"keyspace"]), 1);
    assert_eq!(got, b"=16\r\ntxt:# Keyspace\r\n\r\n");

    let mut con = connect(&server);
    let _: () = con.set("x", 1).unwrap();
    let info: String = redis::cmd("INFO").query(&mut con).unwrap();
    for section in [
        "# Server",
        "# Clients",
        "# Memory",
        "# Persistence",
        "# Stats",
        "# Replication",
        "# Cluster",
        "# Keyspace",
    ] {
        assert!(info.contains(section), "{section} in {info}");
    }
    assert!(info.contains("redis_version:7.0.15\r\n"));
    assert!(info.contains("db0:keys=1,expires=0,avg_ttl=0\r\n"));
    assert!(info.contains("logkv_durability:periodic\r\n"));
    let only: String = redis::cmd("INFO").arg("replication").query(&mut con).unwrap();
    assert!(only.starts_with("# Replication\r\nrole:master\r\nconnected_slaves:0\r\nmaster_repl_offset:"));
    assert_eq!(only.matches("\r\n").count(), 4, "one section: {only}");
    let count: i64 = redis::cmd("COMMAND").arg("COUNT").query(&mut con).unwrap();
    let all: Vec<Value> = redis::cmd("COMMAND").query(&mut con).unwrap();
    assert_eq!(all.len() as i64, count);
    let Value::Array(get) = all
        .iter()
        .find(|c| matches!(c, Value::Array(v) if v[0] == Value::BulkString(b"get".to_vec())))
        .unwrap()
    else {
        unreachable!()
    };
    assert_eq!(&get[1..6], &[Value::Int(2), get[2].clone(), Value::Int(1), Value::Int(1), Value::Int(1)]);
    let docs: Value = redis::cmd("COMMAND").arg("DOCS").arg("set").query(&mut con).unwrap();
    let text = format!("{docs:?}");
    assert!(text.contains("Set the string value of a key"), "{text}");
    let config: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("append*").query(&mut con).unwrap();
    assert_eq!(config, ["appendonly", "yes", "appendfsync", "everysec"]);
    let config: Vec<String> =
        redis::cmd("CONFIG").arg("GET").arg("timeout").arg("save").query(&mut con).unwrap();
    assert_eq!(config, ["timeout", "0", "save", ""]);
}

#[test]
fn auth_without_a_users_file_behaves_like_redis_without_a_password() {
    let server = Server::start();
    let mut con = connect(&server);
    let e = raw(&mut con, &["AUTH", "pw"]).unwrap_err();
    assert_eq!(
        error_text(e),
        "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
    );
    assert_eq!(raw(&mut con, &["AUTH", "default", "anything"]).unwrap(), Value::Okay);
    let e = raw(&mut con, &["AUTH", "alice", "pw"]).unwrap_err();
    assert_eq!(error_text(e), "WRONGPASS invalid username-password pair or user is disabled.");
}
