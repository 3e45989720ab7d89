//! WATCH / MULTI / EXEC / DISCARD / UNWATCH through the `redis` crate:
//! a block is one transaction, a watched key written after WATCH (by
//! anyone) makes EXEC answer nil, and what does not change a key does not.

mod server;

use redis::{Commands, Value};
use server::{resp, roundtrip, Server};

fn connect(server: &Server) -> redis::Connection {
    redis::Client::open(server.redis_url()).unwrap().get_connection().unwrap()
}

fn cmd(con: &mut redis::Connection, args: &[&str]) -> redis::RedisResult<Value> {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query(con)
}

#[test]
fn a_block_applies_in_order_and_reads_see_earlier_queued_writes() {
    let server = Server::start();
    let mut con = connect(&server);
    let (a, n, got): (String, i64, Vec<Option<String>>) = redis::pipe()
        .atomic()
        .set("a", "1")
        .ignore()
        .append("a", "2")
        .ignore()
        .get("a")
        .incr("n", 5)
        .mget(&["a", "missing"])
        .query(&mut con)
        .unwrap();
    assert_eq!((a.as_str(), n), ("12", 5));
    assert_eq!(got, [Some("12".to_string()), None]);
    assert_eq!(cmd(&mut con, &["DISCARD"]).unwrap_err().detail(), Some("DISCARD without MULTI"));
    assert_eq!(cmd(&mut con, &["EXEC"]).unwrap_err().detail(), Some("EXEC without MULTI"));
}

#[test]
fn exec_fails_exactly_when_a_watched_key_changed() {
    let server = Server::start();
    let mut con = connect(&server);
    let mut other = connect(&server);
    let _: () = con.set("w", "0").unwrap();

    // Another client writes the watched key: nil, nothing applied.
    let _: () = redis::cmd("WATCH").arg("w").query(&mut con).unwrap();
    let _: () = other.set("w", "1").unwrap();
    let r: Option<(i64,)> = redis::pipe().atomic().incr("x", 1).query(&mut con).unwrap();
    assert_eq!(r, None);
    assert_eq!(con.get::<_, Option<i64>>("x").unwrap(), None);

    // This connection's own write after WATCH counts too.
    let _: () = redis::cmd("WATCH").arg("w").query(&mut con).unwrap();
    let _: () = con.set("w", "2").unwrap();
    let r: Option<(i64,)> = redis::pipe().atomic().incr("x", 1).query(&mut con).unwrap();
    assert_eq!(r, None);

    // A DEL of a missing key and a SET NX that did not set change nothing.
    let _: () = redis::cmd("WATCH").arg("w").arg("gone").query(&mut con).unwrap();
    let _: i64 = other.del("gone").unwrap();
    let set: bool = other.set_nx("w", "3").unwrap();
    assert!(!set);
    let r: Option<(i64,)> = redis::pipe().atomic().incr("x", 1).query(&mut con).unwrap();
    assert_eq!(r, Some((1,)));

    // A deleted watched key fails a read-only block too.
    let _: () = redis::cmd("WATCH").arg("w").query(&mut con).unwrap();
    let _: i64 = other.del("w").unwrap();
    let r: Option<(Option<String>,)> = redis::pipe().atomic().get("x").query(&mut con).unwrap();
    assert_eq!(r, None);

    // UNWATCH forgets.
    let _: () = redis::cmd("WATCH").arg("x").query(&mut con).unwrap();
    let _: () = other.set("x", "10").unwrap();
    let _: () = redis::cmd("UNWATCH").query(&mut con).unwrap();
    let r: Option<(i64,)> = redis::pipe().atomic().incr("x", 1).query(&mut con).unwrap();
    assert_eq!(r, Some((11,)));
}

#[test]
fn a_check_and_set_loop_under_contention_loses_no_update() {
    let server = Server::start();
    let url = server.redis_url();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
                let mut done = 0;
                while done < 25 {
                    let _: () = redis::cmd("WATCH").arg("cas").query(&mut con).unwrap();
                    let v: Option<i64> = con.get("cas").unwrap();
                    let r: Option<()> = redis::pipe()
                        .atomic()
                        .set("cas", v.unwrap_or(0) + 1)
                        .ignore()
                        .query(&mut con)
                        .unwrap();
                    if r.is_some() {
                        done += 1;
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut con = connect(&server);
    assert_eq!(con.get::<_, i64>("cas").unwrap(), 200);
}

#[test]
fn queue_errors_abort_and_apply_errors_fail_the_whole_block() {
    let server = Server::start();
    let mut con = connect(&server);
    assert_eq!(cmd(&mut con, &["MULTI"]).unwrap(), Value::Okay);
    assert_eq!(cmd(&mut con, &["MULTI"]).unwrap_err().detail(), Some("MULTI calls can not be nested"));
    assert_eq!(
        cmd(&mut con, &["WATCH", "k"]).unwrap_err().detail(),
        Some("WATCH inside MULTI is not allowed")
    );
    assert_eq!(cmd(&mut con, &["SET", "k", "v"]).unwrap(), Value::SimpleString("QUEUED".into()));
    assert!(cmd(&mut con, &["GET"]).is_err());
    let e = cmd(&mut con, &["EXEC"]).unwrap_err();
    assert_eq!(e.code(), Some("EXECABORT"));
    assert_eq!(con.get::<_, Option<String>>("k").unwrap(), None);

    // logkv's difference: a failing INCR makes the whole block fail.
    let _: () = con.set("text", "abc").unwrap();
    assert_eq!(cmd(&mut con, &["MULTI"]).unwrap(), Value::Okay);
    cmd(&mut con, &["SET", "k", "v"]).unwrap();
    cmd(&mut con, &["INCR", "text"]).unwrap();
    let e = cmd(&mut con, &["EXEC"]).unwrap_err();
    assert_eq!(e.detail(), Some("value is not an integer or out of range"));
    assert_eq!(con.get::<_, Option<String>>("k").unwrap(), None);
}

#[test]
fn a_queued_write_over_the_limits_fails_alone_and_reads_of_impossible_keys_find_nothing() {
    let server = Server::start();
    let mut stream = server.connect();
    let long = "k".repeat(1025);
    let block: [&[&str]; 7] = [
        &["MULTI"],
        &["SET", "a", "1"],
        &["SET", &long, "v"],
        &["GET", &long],
        &["GET", ""],
        &["GET", "a"],
        &["EXEC"],
    ];
    let mut request = Vec::new();
    for args in block {
        request.extend(resp::request(&args.iter().map(|a| a.as_bytes()).collect::<Vec<_>>()));
    }
    let replies = resp::split(&roundtrip(&mut stream, &request, block.len()));
    assert_eq!(
        replies[..6],
        [&b"+OK\r\n"[..], b"+QUEUED\r\n", b"+QUEUED\r\n", b"+QUEUED\r\n", b"+QUEUED\r\n", b"+QUEUED\r\n"]
    );
    let exec = String::from_utf8(replies[6].clone()).unwrap();
    assert_eq!(
        exec,
        "*5\r\n+OK\r\n-ERR key of 1025 bytes: logkv keys are 1 to 1024 bytes\r\n$-1\r\n$-1\r\n$1\r\n1\r\n",
        "the other commands of the block ran"
    );
    // Outside a block, the same reads find nothing too.
    let outside = [resp::request(&[b"GET", long.as_bytes()]), resp::request(&[b"GET", b""])].concat();
    assert_eq!(roundtrip(&mut stream, &outside, 2), b"$-1\r\n$-1\r\n");
}

/// A lock held while its key lives: the holder watches it and extends it
/// in a block. Once it expired — nobody wrote the key since — the
/// extension must not commit (another client may have seen it gone and
/// taken it); while it lives, the same block commits.
#[test]
fn a_lock_extended_after_it_expired_does_not_commit() {
    let server = Server::start();
    let mut con = connect(&server);
    let extend = |con: &mut redis::Connection| -> Option<(i64,)> {
        let _: () = redis::cmd("WATCH").arg("lock").query(con).unwrap();
        redis::pipe().atomic().cmd("PEXPIRE").arg("lock").arg(60_000).query(con).unwrap()
    };
    let _: () = redis::cmd("SET").arg("lock").arg("me").arg("PX").arg(60_000).query(&mut con).unwrap();
    assert_eq!(extend(&mut con), Some((1,)), "a live lock is extended");

    let _: () = redis::cmd("SET").arg("lock").arg("me").arg("PX").arg(100).query(&mut con).unwrap();
    let _: () = redis::cmd("WATCH").arg("lock").query(&mut con).unwrap();
    // Wait (without a bound on how long it takes) until the lock is gone.
    while con.exists::<_, bool>("lock").unwrap() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let r: Option<(i64,)> =
        redis::pipe().atomic().cmd("PEXPIRE").arg("lock").arg(60_000).query(&mut con).unwrap();
    assert_eq!(r, None, "the watched lock expired since WATCH: EXEC answers nil");
    assert!(!con.exists::<_, bool>("lock").unwrap());

    // The same for a block that only reads (checked without the log).
    let _: () = redis::cmd("SET").arg("lock").arg("me").arg("PX").arg(100).query(&mut con).unwrap();
    let _: () = redis::cmd("WATCH").arg("lock").query(&mut con).unwrap();
    while con.exists::<_, bool>("lock").unwrap() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let r: Option<(Option<String>,)> = redis::pipe().atomic().get("lock").query(&mut con).unwrap();
    assert_eq!(r, None);
    // Watched once it was gone: the block runs.
    let _: () = redis::cmd("WATCH").arg("lock").query(&mut con).unwrap();
    let r: Option<(Option<String>,)> = redis::pipe().atomic().get("lock").query(&mut con).unwrap();
    assert_eq!(r, Some((None,)));
}
