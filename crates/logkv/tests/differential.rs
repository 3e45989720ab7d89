//! Differential test: the same command script (tests/data/redis_script.txt)
//! against `logkv serve` and Debian's `redis-server` 7.0, reply bytes
//! compared exactly over raw TCP (no client library to normalize them).
//!
//! Allowed differences, each marked in the script: `?shape` (replies whose
//! content is the server's own: CLIENT ID, HELLO, COMMAND COUNT — only the
//! reply type must match), `~set` (KEYS: the order is the server's, so the
//! arrays compare as sets) and `~scan` (SCAN: cursor values are the
//! server's; both must finish in one call, keys compared as sets) and
//! `?line` (CLIENT LIST / INFO: the same number of lines, and in each the
//! fields both servers print equal, except those that are the server's
//! own: id, addr, laddr, fd, age, idle, and the memory and buffer sizes,
//! which logkv prints as 0).
//! docs/server.md lists them under "Differences from Redis".

mod server;

use std::collections::BTreeSet;
use std::io::Write;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use server::{free_port, resp, roundtrip, Server, PATIENCE};

/// A `redis-server` on a free port, without persistence, killed on drop.
struct Redis {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Redis {
    fn start() -> Redis {
        let binary = find_redis_server().unwrap_or_else(|| {
            panic!(
                "redis-server is not installed, and the differential test needs it: run the README's \
                 test command (`bash scripts/test.sh`), which installs it, or `apt-get install redis-server`"
            )
        });
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = Command::new(binary)
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--databases",
                "16",
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
            ])
            .arg("--dir")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(mut s) = TcpStream::connect(&addr) {
                s.set_read_timeout(Some(PATIENCE)).unwrap();
                if roundtrip(&mut s, b"PING\r\n", 1) == b"+PONG\r\n" {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "redis-server did not start on {addr}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Redis { child, addr, _dir: dir }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_redis_server() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|d| d.join("redis-server"))
        .find(|p| p.is_file())
}

/// Splits a line as redis-cli does (`sdssplitargs`): `"..."` with `\n \r
/// \t \b \a \\ \" \xHH` escapes, `'...'` with `\'`.
fn split_args(line: &str) -> Vec<Vec<u8>> {
    let bytes = line.as_bytes();
    let mut args = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == bytes.len() {
            break;
        }
        let mut arg = Vec::new();
        match bytes[i] {
            b'"' => {
                i += 1;
                while bytes[i] != b'"' {
                    if bytes[i] == b'\\' {
                        i += 1;
                        match bytes[i] {
                            b'n' => arg.push(b'\n'),
                            b'r' => arg.push(b'\r'),
                            b't' => arg.push(b'\t'),
                            b'x' => {
                                arg.push(u8::from_str_radix(&line[i + 1..i + 3], 16).unwrap());
                                i += 2;
                            }
                            other => arg.push(other),
                        }
                    } else {
                        arg.push(bytes[i]);
                    }
                    i += 1;
                }
                i += 1;
            }
            b'\'' => {
                i += 1;
                while bytes[i] != b'\'' {
                    if bytes[i] == b'\\' && bytes.get(i + 1) == Some(&b'\'') {
                        i += 1;
                    }
                    arg.push(bytes[i]);
                    i += 1;
                }
                i += 1;
            }
            _ => {
                while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                    arg.push(bytes[i]);
                    i += 1;
                }
            }
        }
        args.push(arg);
    }
    args
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Compare {
    Exact,
    Shape,
    Set,
    Scan,
    Line,
}

struct Step {
    line_no: usize,
    text: String,
    second: bool,
    compare: Compare,
    args: Vec<Vec<u8>>,
}

fn script() -> Vec<Step> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/redis_script.txt");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut steps = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let mut line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut second = false;
        let mut compare = Compare::Exact;
        loop {
            if let Some(rest) = line.strip_prefix("@2 ") {
                second = true;
                line = rest;
            } else if let Some(rest) = line.strip_prefix("?shape ") {
                compare = Compare::Shape;
                line = rest;
            } else if let Some(rest) = line.strip_prefix("~set ") {
                compare = Compare::Set;
                line = rest;
            } else if let Some(rest) = line.strip_prefix("~scan ") {
                compare = Compare::Scan;
                line = rest;
            } else if let Some(rest) = line.strip_prefix("?line ") {
                compare = Compare::Line;
                line = rest;
            } else {
                break;
            }
        }
        steps.push(Step { line_no: i + 1, text: raw.to_string(), second, compare, args: split_args(line) });
    }
    steps
}

/// Runs the script on one server; one reply per step.
fn run(addr: &str, steps: &[Step]) -> Vec<Vec<u8>> {
    let open = || {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        s
    };
    let (mut first, mut second) = (open(), open());
    let mut replies = Vec::new();
    for step in steps {
        let stream = if step.second { &mut second } else { &mut first };
        let args: Vec<&[u8]> = step.args.iter().map(Vec::as_slice).collect();
        replies.push(roundtrip(stream, &resp::request(&args), 1));
    }
    let _ = first.flush();
    replies
}

/// The elements of an array reply, as a set of their encodings.
fn element_set(reply: &[u8]) -> Option<BTreeSet<Vec<u8>>> {
    let header_end = reply.windows(2).position(|w| w == b"\r\n")? + 2;
    if reply[0] != b'*' && reply[0] != b'~' {
        return None;
    }
    Some(resp::split(&reply[header_end..]).into_iter().collect())
}

/// A `CLIENT LIST` / `CLIENT INFO` bulk reply as its lines' fields.
fn client_lines(reply: &[u8]) -> Option<Vec<Vec<(String, String)>>> {
    let header_end = reply.windows(2).position(|w| w == b"\r\n")? + 2;
    if reply[0] != b'$' {
        return None;
    }
    let text = std::str::from_utf8(&reply[header_end..reply.len() - 2]).ok()?;
    let line = |l: &str| {
        l.split(' ').filter_map(|f| f.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
    };
    Some(text.lines().map(line).collect())
}

/// Whether two connection listings agree on the fields both print.
fn same_lines(logkv: &[u8], redis: &[u8]) -> bool {
    const OWN: [&str; 16] = [
        "id",
        "addr",
        "laddr",
        "fd",
        "age",
        "idle",
        "qbuf",
        "qbuf-free",
        "argv-mem",
        "multi-mem",
        "rbs",
        "rbp",
        "obl",
        "oll",
        "omem",
        "tot-mem",
    ];
    let (Some(ours), Some(theirs)) = (client_lines(logkv), client_lines(redis)) else { return false };
    ours.len() == theirs.len()
        && ours.iter().zip(&theirs).all(|(a, b)| {
            a.iter().all(|(k, v)| OWN.contains(&k.as_str()) || b.iter().all(|(k2, v2)| k2 != k || v2 == v))
                && a.iter().filter(|(k, _)| b.iter().any(|(k2, _)| k2 == k)).count() >= 13
        })
}

fn same(compare: Compare, logkv: &[u8], redis: &[u8]) -> bool {
    match compare {
        Compare::Exact => logkv == redis,
        Compare::Shape => logkv.first() == redis.first(),
        Compare::Line => same_lines(logkv, redis),
        Compare::Set => element_set(logkv).is_some() && element_set(logkv) == element_set(redis),
        Compare::Scan => {
            let parts = |r: &[u8]| {
                let items = element_set(r)?;
                let mut it = resp::split(&r[4..]).into_iter();
                let cursor = it.next()?;
                Some((cursor, element_set(&it.next()?)?, items.len()))
            };
            match (parts(logkv), parts(redis)) {
                (Some((c1, k1, _)), Some((c2, k2, _))) => c1 == b"$1\r\n0\r\n" && c1 == c2 && k1 == k2,
                _ => false,
            }
        }
    }
}

#[test]
fn the_script_gets_the_same_replies_from_logkv_and_redis() {
    let redis = Redis::start();
    let logkv = Server::builder().args(["--durability", "none", "--idle-timeout-secs", "0"]).start();
    let steps = script();
    assert!(steps.len() > 150, "the script is read");
    let from_redis = run(&redis.addr, &steps);
    let from_logkv = run(&logkv.resp, &steps);
    let mut mismatches = Vec::new();
    for ((step, l), r) in steps.iter().zip(&from_logkv).zip(&from_redis) {
        if !same(step.compare, l, r) {
            mismatches.push(format!(
                "line {}: {}\n  logkv: {:?}\n  redis: {:?}",
                step.line_no,
                step.text,
                String::from_utf8_lossy(l),
                String::from_utf8_lossy(r)
            ));
        }
    }
    assert!(mismatches.is_empty(), "{} replies differ:\n{}", mismatches.len(), mismatches.join("\n"));
}

#[test]
fn the_comparison_can_fail() {
    assert!(!same(Compare::Exact, b"+OK\r\n", b"+QUEUED\r\n"));
    assert!(!same(Compare::Set, b"*1\r\n$1\r\na\r\n", b"*1\r\n$1\r\nb\r\n"));
    assert!(same(Compare::Set, b"*2\r\n$1\r\na\r\n$1\r\nb\r\n", b"*2\r\n$1\r\nb\r\n$1\r\na\r\n"));
    assert!(!same(Compare::Scan, b"*2\r\n$1\r\n7\r\n*0\r\n", b"*2\r\n$1\r\n0\r\n*0\r\n"));
    assert!(same(
        Compare::Scan,
        b"*2\r\n$1\r\n0\r\n*1\r\n$1\r\na\r\n",
        b"*2\r\n$1\r\n0\r\n*1\r\n$1\r\na\r\n"
    ));
    assert!(!same(Compare::Shape, b":1\r\n", b"$1\r\n1\r\n"));
    let line = |text: &str| format!("${}\r\n{text}\r\n", text.len()).into_bytes();
    let fields =
        "name=a flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 cmd=get user=default redir=-1 resp=2 x=1 y=2";
    let ours = line(&format!("id=1 addr=a:1 {fields}\n"));
    assert!(same(Compare::Line, &ours, &line(&format!("id=9 addr=b:2 {fields} qbuf=0\n"))));
    assert!(!same(Compare::Line, &ours, &line(&format!("id=9 addr=b:2 {}\n", fields.replace("get", "set")))));
    assert!(!same(Compare::Line, &ours, &line(&format!("id=1 addr=a:1 {fields}\nid=2 {fields}\n"))));
    assert_eq!(split_args(r#"SET "a b" 'c\'d' "\x41\n""#), [&b"SET"[..], b"a b", b"c'd", b"A\n"]);
}

/// `CLIENT REPLY OFF` / `SKIP` drop replies, so they cannot be steps of
/// the one-reply-per-step script: one pipeline goes to each server, and
/// everything it answers is compared.
#[test]
fn client_reply_drops_the_same_replies_as_redis() {
    let redis = Redis::start();
    let logkv = Server::builder().args(["--durability", "none"]).start();
    let pipeline: Vec<&[&[u8]]> = vec![
        &[b"CLIENT", b"REPLY", b"SKIP"],
        &[b"SET", b"r1", b"1"],
        &[b"GET", b"r1"],
        &[b"CLIENT", b"REPLY", b"OFF"],
        &[b"SET", b"r2", b"2"],
        &[b"NOSUCH"],
        &[b"CLIENT", b"REPLY", b"SKIP"],
        &[b"CLIENT", b"REPLY", b"ON"],
        &[b"GET", b"r2"],
        &[b"DEL", b"r1", b"r2"],
    ];
    let request: Vec<u8> = pipeline.iter().flat_map(|args| resp::request(args)).collect();
    let answer = |addr: &str| {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        roundtrip(&mut stream, &request, 4)
    };
    let from_logkv = answer(&logkv.resp);
    assert_eq!(from_logkv, b"$1\r\n1\r\n+OK\r\n$1\r\n2\r\n:2\r\n");
    assert_eq!(from_logkv, answer(&redis.addr));
}
