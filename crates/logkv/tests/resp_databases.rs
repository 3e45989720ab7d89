//! Redis databases through the `redis` crate on a real server: each
//! database is its own keyspace (`SELECT`, `redis://host/N`), `FLUSHDB`
//! empties one and `FLUSHALL` all, `MOVE` moves a key with its expiry,
//! `DBSIZE` and `INFO keyspace` count per database, `SWAPDB` is refused
//! plainly, and a flush aborts a `WATCH`ing transaction.

mod server;

use redis::{Commands, Value};
use server::{resp, roundtrip, Server};

fn connect_to(server: &Server, db: u32) -> redis::Connection {
    let url = format!("{}{db}", server.redis_url());
    redis::Client::open(url).unwrap().get_connection().unwrap()
}

fn cmd(con: &mut redis::Connection, args: &[&str]) -> redis::RedisResult<Value> {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query(con)
}

fn dbsize(con: &mut redis::Connection) -> i64 {
    redis::cmd("DBSIZE").query(con).unwrap()
}

/// The `dbN:…` lines of `INFO keyspace`.
fn keyspace_lines(con: &mut redis::Connection) -> Vec<String> {
    let info: String = redis::cmd("INFO").arg("keyspace").query(con).unwrap();
    info.lines().filter(|l| l.starts_with("db")).map(str::to_string).collect()
}

#[test]
fn each_database_is_its_own_keyspace() {
    let server = Server::start();
    let mut zero = connect_to(&server, 0);
    let mut one = connect_to(&server, 1);
    let _: () = zero.set("k", "in 0").unwrap();
    let _: () = one.set("k", "in 1").unwrap();
    let _: () = one.set("only1", "x").unwrap();
    assert_eq!(zero.get::<_, String>("k").unwrap(), "in 0");
    assert_eq!(one.get::<_, String>("k").unwrap(), "in 1");
    assert_eq!(zero.get::<_, Option<String>>("only1").unwrap(), None);
    assert_eq!((dbsize(&mut zero), dbsize(&mut one)), (1, 2));
    let keys: Vec<String> = one.keys("*").unwrap();
    assert_eq!(keys, ["k", "only1"]);

    // SELECT switches an open connection; out of range is refused.
    assert_eq!(cmd(&mut zero, &["SELECT", "1"]).unwrap(), Value::Okay);
    assert_eq!(zero.get::<_, String>("k").unwrap(), "in 1");
    let err = cmd(&mut zero, &["SELECT", "16"]).unwrap_err();
    assert_eq!(err.detail(), Some("DB index is out of range"));
    assert_eq!(cmd(&mut zero, &["SELECT", "-1"]).unwrap_err().detail(), Some("DB index is out of range"));
    let client: String = redis::cmd("CLIENT").arg("INFO").query(&mut zero).unwrap();
    assert!(client.contains(" db=1 "), "{client}");

    assert_eq!(
        keyspace_lines(&mut one),
        ["db0:keys=1,expires=0,avg_ttl=0", "db1:keys=2,expires=0,avg_ttl=0"]
    );
    let databases: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("databases").query(&mut one).unwrap();
    assert_eq!(databases, ["databases", "16"]);
}

#[test]
fn flushdb_empties_one_database_and_flushall_every_one() {
    let server = Server::start();
    let mut zero = connect_to(&server, 0);
    let mut two = connect_to(&server, 2);
    for i in 0..50 {
        let _: () = zero.set(format!("a{i}"), i).unwrap();
        let _: () = two.set(format!("b{i}"), i).unwrap();
    }
    assert_eq!(cmd(&mut two, &["FLUSHDB"]).unwrap(), Value::Okay);
    assert_eq!(dbsize(&mut two), 0);
    assert_eq!(two.get::<_, Option<String>>("b1").unwrap(), None);
    assert_eq!(dbsize(&mut zero), 50, "another database keeps its keys");
    assert_eq!(keyspace_lines(&mut zero), ["db0:keys=50,expires=0,avg_ttl=0"]);

    // Writes after the flush live; an INCR starts from nothing.
    let n: i64 = two.incr("b1", 1).unwrap();
    assert_eq!(n, 1);
    assert_eq!(cmd(&mut two, &["FLUSHDB", "ASYNC"]).unwrap(), Value::Okay);
    assert_eq!(cmd(&mut two, &["FLUSHDB", "SYNC"]).unwrap(), Value::Okay);
    assert_eq!(cmd(&mut two, &["FLUSHDB", "LATER"]).unwrap_err().detail(), Some("syntax error"));

    let _: () = two.set("again", "1").unwrap();
    assert_eq!(cmd(&mut zero, &["FLUSHALL"]).unwrap(), Value::Okay);
    assert_eq!((dbsize(&mut zero), dbsize(&mut two)), (0, 0));
    assert!(keyspace_lines(&mut zero).is_empty());
}

#[test]
fn move_copies_value_and_expiry_then_deletes_the_source() {
    let server = Server::start();
    let mut zero = connect_to(&server, 0);
    let mut three = connect_to(&server, 3);
    let _: () = redis::cmd("SET").arg("k").arg("v").arg("EX").arg(1000).query(&mut zero).unwrap();
    let moved: i64 = redis::cmd("MOVE").arg("k").arg(3).query(&mut zero).unwrap();
    assert_eq!(moved, 1);
    assert_eq!(zero.get::<_, Option<String>>("k").unwrap(), None);
    assert_eq!(three.get::<_, String>("k").unwrap(), "v");
    let ttl: i64 = three.ttl("k").unwrap();
    assert!((990..=1000).contains(&ttl), "the expiry moved with it: {ttl}");

    // Nothing to move, or the target has the key: 0 and nothing changes.
    let missing: i64 = redis::cmd("MOVE").arg("k").arg(3).query(&mut zero).unwrap();
    assert_eq!(missing, 0);
    let _: () = zero.set("k", "other").unwrap();
    let taken: i64 = redis::cmd("MOVE").arg("k").arg(3).query(&mut zero).unwrap();
    assert_eq!(taken, 0);
    assert_eq!(zero.get::<_, String>("k").unwrap(), "other");
    assert_eq!(three.get::<_, String>("k").unwrap(), "v");

    let same = cmd(&mut zero, &["MOVE", "k", "0"]).unwrap_err();
    assert_eq!(same.detail(), Some("source and destination objects are the same"));
    assert_eq!(cmd(&mut zero, &["MOVE", "k", "99"]).unwrap_err().detail(), Some("DB index is out of range"));
    // COPY … DB n copies within the selected database or into another,
    // with the expiry; the target's key is kept unless REPLACE.
    assert_eq!(cmd(&mut zero, &["COPY", "k", "k2", "DB", "0"]).unwrap(), Value::Int(1));
    let _: () = redis::cmd("SET").arg("k").arg("w").arg("EX").arg(500).query(&mut zero).unwrap();
    assert_eq!(cmd(&mut zero, &["COPY", "k", "k", "DB", "3"]).unwrap(), Value::Int(0), "db 3 holds k");
    assert_eq!(cmd(&mut zero, &["COPY", "k", "k", "DB", "3", "REPLACE"]).unwrap(), Value::Int(1));
    assert_eq!(three.get::<_, String>("k").unwrap(), "w");
    let ttl: i64 = three.ttl("k").unwrap();
    assert!((490..=500).contains(&ttl), "the expiry came along: {ttl}");
    assert_eq!(zero.get::<_, String>("k").unwrap(), "w", "a copy leaves the source");
    let range = cmd(&mut zero, &["COPY", "k", "k3", "DB", "16"]).unwrap_err();
    assert_eq!(range.detail(), Some("DB index is out of range"));
    let swap = cmd(&mut zero, &["SWAPDB", "0", "1"]).unwrap_err();
    assert!(swap.to_string().contains("SWAPDB is not supported"), "{swap}");
}

#[test]
fn a_flush_aborts_a_transaction_watching_its_database() {
    let server = Server::start();
    let mut con = connect_to(&server, 1);
    let mut other = connect_to(&server, 1);
    let mut elsewhere = connect_to(&server, 0);
    let _: () = con.set("w", "0").unwrap();

    // A flush of another database changes nothing watched here.
    let _: () = redis::cmd("WATCH").arg("w").query(&mut con).unwrap();
    let _: () = redis::cmd("FLUSHDB").query(&mut elsewhere).unwrap();
    let r: Option<(i64,)> = redis::pipe().atomic().incr("x", 1).query(&mut con).unwrap();
    assert_eq!(r, Some((1,)));

    // A flush of this one aborts, for a block that writes and one that reads.
    let _: () = redis::cmd("WATCH").arg("w").query(&mut con).unwrap();
    let _: () = redis::cmd("FLUSHDB").query(&mut other).unwrap();
    let r: Option<(i64,)> = redis::pipe().atomic().incr("x", 1).query(&mut con).unwrap();
    assert_eq!(r, None);
    let _: () = redis::cmd("WATCH").arg("never").query(&mut con).unwrap();
    let _: () = redis::cmd("FLUSHALL").query(&mut other).unwrap();
    let r: Option<(Option<String>,)> = redis::pipe().atomic().get("x").query(&mut con).unwrap();
    assert_eq!(r, None);

    // FLUSHDB inside a block applies in order with the block's writes.
    let _: () = con.set("before", "1").unwrap();
    let (n,): (i64,) = redis::pipe()
        .atomic()
        .set("gone", "1")
        .ignore()
        .cmd("FLUSHDB")
        .ignore()
        .incr("n", 2)
        .query(&mut con)
        .unwrap();
    assert_eq!(n, 2);
    let keys: Vec<String> = con.keys("*").unwrap();
    assert_eq!(keys, ["n"]);

    // FLUSHALL and MOVE are transactions of their own: queued in a block,
    // they answer an error in EXEC's array and the rest of the block runs.
    let mut raw = server.connect();
    let block: [&[&[u8]]; 6] = [
        &[b"SELECT", b"1"],
        &[b"MULTI"],
        &[b"FLUSHALL"],
        &[b"MOVE", b"n", b"2"],
        &[b"INCR", b"n"],
        &[b"EXEC"],
    ];
    let request: Vec<u8> = block.iter().flat_map(|args| resp::request(args)).collect();
    let replies = resp::split(&roundtrip(&mut raw, &request, block.len()));
    assert_eq!(
        String::from_utf8(replies[5].clone()).unwrap(),
        "*3\r\n-ERR FLUSHALL inside MULTI is not supported: it is a transaction of its own\r\n\
         -ERR MOVE inside MULTI is not supported: it is a transaction of its own\r\n:3\r\n"
    );
}

/// A watched key belongs to the database selected when it was watched, as
/// in Redis: a `SELECT` between `WATCH` and `EXEC` changes where the block
/// writes, not which key is checked.
#[test]
fn a_watched_key_stays_in_its_database_across_select() {
    let server = Server::start();
    let mut con = connect_to(&server, 0);
    let mut zero = connect_to(&server, 0);
    let mut one = connect_to(&server, 1);
    for aborted in [false, true] {
        let _: () = redis::cmd("WATCH").arg("w").query(&mut con).unwrap();
        let _: () = redis::cmd("SELECT").arg(1).query(&mut con).unwrap();
        // The same name in database 1 is another key; in database 0 it is the watched one.
        let writer = if aborted { &mut zero } else { &mut one };
        let _: () = writer.set("w", "changed").unwrap();
        let r: Option<(i64,)> = redis::pipe().atomic().incr("x", 1).query(&mut con).unwrap();
        assert_eq!(r.is_none(), aborted);
        let _: () = redis::cmd("SELECT").arg(0).query(&mut con).unwrap();
    }
    assert_eq!(one.get::<_, i64>("x").unwrap(), 1, "the block wrote database 1");
}
