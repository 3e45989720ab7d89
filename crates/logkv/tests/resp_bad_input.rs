//! Bad input over raw TCP against a real `logkv serve`: malformed RESP
//! frames, unknown commands, wrong arity, keys and values over the limits,
//! too many connections and idle connections. Each case checks the exact
//! reply (Redis 7.0's text where Redis has one), whether the connection is
//! closed, and that afterwards a fresh connection works and data
//! acknowledged before is intact.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Longest wait for a server to start or a reply to come: a hang detector,
/// not a measurement.
const PATIENCE: Duration = Duration::from_secs(60);

/// A running `logkv serve` on a fresh data directory.
struct Server {
    child: Child,
    resp: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts `logkv serve` with `extra` flags on OS-chosen loopback ports,
    /// waits until `/readyz` answers 200, and stores `before` = `intact`
    /// so each test can check acknowledged data survives its bad input.
    fn start(extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("serve.log");
        let child = Command::new(env!("CARGO_BIN_EXE_logkv"))
            .arg("serve")
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--resp", "127.0.0.1:0", "--http", "127.0.0.1:0"])
            .args(extra)
            .env("LOGKV_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn logkv serve");
        let mut server = Server { child, resp: String::new(), log, _dir: dir };
        let started = Instant::now();
        let (resp, http) = loop {
            if let Some(addrs) = listening(&server.log) {
                break addrs;
            }
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("logkv serve exited ({status}) before listening:\n{}", server.log_text());
            }
            assert!(started.elapsed() < PATIENCE, "logkv serve did not listen:\n{}", server.log_text());
            thread::sleep(Duration::from_millis(20));
        };
        while http_status(&http, "/readyz") != Some(200) {
            assert!(started.elapsed() < PATIENCE, "/readyz never answered 200:\n{}", server.log_text());
            thread::sleep(Duration::from_millis(20));
        }
        server.resp = resp;
        assert_eq!(server.ask(b"SET before intact\r\n"), "+OK\r\n");
        server
    }

    fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(&self.resp).expect("connect to RESP");
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        stream
    }

    /// Sends `bytes` on a new connection, ends the connection's sending
    /// side, and returns everything the server wrote until it closed.
    fn ask(&self, bytes: &[u8]) -> String {
        let mut stream = self.connect();
        stream.write_all(bytes).unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        read_to_close(&mut stream)
    }

    /// Sends `bytes`, which the server must refuse with a protocol error
    /// *without* the client closing its side: the server closes.
    fn refused(&self, bytes: &[u8]) -> String {
        let mut stream = self.connect();
        stream.write_all(bytes).unwrap();
        read_to_close(&mut stream)
    }

    /// After bad input: a fresh connection works, the data written before
    /// is intact, and a new write is acknowledged and read back.
    fn still_serves(&self) {
        assert_eq!(
            self.ask(b"PING\r\nGET before\r\nSET after ok\r\nGET after\r\n"),
            "+PONG\r\n$6\r\nintact\r\n+OK\r\n$2\r\nok\r\n"
        );
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Graceful stop; the server must exit 0.
        let pid = self.child.id() as libc::pid_t;
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let status = self.child.wait().expect("reap logkv serve");
        if !thread::panicking() {
            assert!(status.success(), "SIGTERM must exit 0, got {status}:\n{}", self.log_text());
        }
    }
}

/// Reads until the server closes the connection (a read timeout fails).
fn read_to_close(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            // The server may reset a connection it closed with unread input.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => {
                panic!("no close from the server (read so far {:?}): {e}", String::from_utf8_lossy(&got))
            }
        }
    }
    String::from_utf8(got).expect("replies are text here")
}

/// Reads exactly one reply line (through CRLF) and leaves the connection open.
fn read_line(stream: &mut TcpStream) -> String {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        let n = stream.read(&mut byte).expect("a reply line");
        assert_eq!(n, 1, "connection closed after {:?}", String::from_utf8_lossy(&line));
        line.push(byte[0]);
    }
    String::from_utf8(line).unwrap()
}

/// The RESP and HTTP addresses from the server's "listening" log line.
fn listening(log: &Path) -> Option<(String, String)> {
    let text = std::fs::read_to_string(log).ok()?;
    let line = text.lines().find(|l| l.contains("listening"))?;
    let field = |name: &str| {
        let start = line.find(&format!("{name}="))? + name.len() + 1;
        Some(line[start..].split_whitespace().next()?.trim_matches('"').to_string())
    };
    Some((field("resp")?, field("http")?))
}

/// The status code of `GET path` over HTTP/1.0, or `None`.
fn http_status(addr: &str, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(PATIENCE)).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    answer.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn bad_multibulk_length_is_a_protocol_error_that_closes() {
    let server = Server::start(&[]);
    for bad in [&b"*abc\r\n"[..], b"*3000000000\r\n", b"*1x\r\n"] {
        assert_eq!(
            server.refused(bad),
            "-ERR Protocol error: invalid multibulk length\r\n",
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    // Requests before the bad frame are answered first; the error is last.
    assert_eq!(
        server.refused(b"SET a 1\r\n*abc\r\nGET a\r\n"),
        "+OK\r\n-ERR Protocol error: invalid multibulk length\r\n"
    );
    // A negative count is an empty request, skipped as Redis does.
    assert_eq!(server.ask(b"*-5\r\nPING\r\n"), "+PONG\r\n");
    server.still_serves();
}

#[test]
fn huge_bulk_header_is_refused_before_its_body() {
    let server = Server::start(&[]);
    // Only the header is sent: the reply must come without the body.
    assert_eq!(
        server.refused(b"*2\r\n$3\r\nSET\r\n$999999999\r\n"),
        "-ERR Protocol error: invalid bulk length\r\n"
    );
    assert_eq!(server.refused(b"*1\r\n$999999999\r\n"), "-ERR Protocol error: invalid bulk length\r\n");
    assert_eq!(server.refused(b"*1\r\n$-1\r\n"), "-ERR Protocol error: invalid bulk length\r\n");
    assert_eq!(server.refused(b"*1\r\n$abc\r\n"), "-ERR Protocol error: invalid bulk length\r\n");
    server.still_serves();
}

#[test]
fn unbalanced_quotes_inline_are_a_protocol_error() {
    let server = Server::start(&[]);
    assert_eq!(server.refused(b"SET \"foo bar\r\n"), "-ERR Protocol error: unbalanced quotes in request\r\n");
    assert_eq!(server.refused(b"SET 'foo bar\r\n"), "-ERR Protocol error: unbalanced quotes in request\r\n");
    // A closing quote must be followed by a space or the end of the line.
    assert_eq!(server.refused(b"SET \"a\"b c\r\n"), "-ERR Protocol error: unbalanced quotes in request\r\n");
    // Balanced quotes are fine.
    assert_eq!(server.ask(b"SET \"a b\" 'c d'\r\nGET \"a b\"\r\n"), "+OK\r\n$3\r\nc d\r\n");
    server.still_serves();
}

#[test]
fn non_bulk_inside_multibulk_is_a_protocol_error() {
    let server = Server::start(&[]);
    assert_eq!(server.refused(b"*1\r\n:5\r\n"), "-ERR Protocol error: expected '$', got ':'\r\n");
    assert_eq!(
        server.refused(b"*2\r\n$3\r\nGET\r\n+k\r\n"),
        "-ERR Protocol error: expected '$', got '+'\r\n"
    );
    server.still_serves();
}

#[test]
fn unknown_command_and_wrong_arity_keep_the_connection() {
    let server = Server::start(&[]);
    let mut stream = server.connect();
    stream.write_all(b"FOO a b\r\n").unwrap();
    assert_eq!(read_line(&mut stream), "-ERR unknown command 'FOO', with args beginning with: 'a' 'b' \r\n");
    stream.write_all(b"*3\r\n$3\r\nfoo\r\n$1\r\na\r\n$1\r\nb\r\n").unwrap();
    assert_eq!(read_line(&mut stream), "-ERR unknown command 'foo', with args beginning with: 'a' 'b' \r\n");
    stream.write_all(b"GET\r\n").unwrap();
    assert_eq!(read_line(&mut stream), "-ERR wrong number of arguments for 'get' command\r\n");
    stream.write_all(b"*1\r\n$3\r\nSET\r\n").unwrap();
    assert_eq!(read_line(&mut stream), "-ERR wrong number of arguments for 'set' command\r\n");
    stream.write_all(b"*3\r\n$3\r\nGET\r\n$1\r\na\r\n$1\r\nb\r\n").unwrap();
    assert_eq!(read_line(&mut stream), "-ERR wrong number of arguments for 'get' command\r\n");
    // The same connection still serves.
    stream.write_all(b"GET before\r\n").unwrap();
    assert_eq!(read_line(&mut stream), "$6\r\n");
    assert_eq!(read_line(&mut stream), "intact\r\n");
    drop(stream);
    server.still_serves();
}

#[test]
fn key_over_the_limit_is_refused_and_not_stored() {
    let server = Server::start(&[]);
    let key64 = "k".repeat(64);
    let key65 = "k".repeat(65);
    let set = |key: &str| format!("*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n$1\r\nv\r\n", key.len());
    let get = |key: &str| format!("*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n", key.len());
    let mut stream = server.connect();
    stream.write_all(set(&key65).as_bytes()).unwrap();
    let refusal = read_line(&mut stream);
    assert!(refusal.starts_with("-ERR ") && refusal.contains("65"), "{refusal:?}");
    stream.write_all(get(&key65).as_bytes()).unwrap();
    assert_eq!(read_line(&mut stream), "$-1\r\n", "a refused key is not stored");
    // The refusal in a pipeline of writes fails only its own write.
    stream.write_all(format!("{}{}{}", set("p1"), set(&key65), set("p2")).as_bytes()).unwrap();
    assert_eq!(read_line(&mut stream), "+OK\r\n");
    assert_eq!(read_line(&mut stream), refusal);
    assert_eq!(read_line(&mut stream), "+OK\r\n");
    // 64 bytes is the limit, inclusive.
    stream.write_all(format!("{}{}", set(&key64), get(&key64)).as_bytes()).unwrap();
    assert_eq!(read_line(&mut stream), "+OK\r\n");
    assert_eq!(read_line(&mut stream), "$1\r\n");
    assert_eq!(read_line(&mut stream), "v\r\n");
    drop(stream);
    assert_eq!(server.ask(b"GET p1\r\nGET p2\r\n"), "$1\r\nv\r\n$1\r\nv\r\n");
    server.still_serves();
}

#[test]
fn value_over_the_limit_is_refused_and_not_stored() {
    let server = Server::start(&["--max-value-bytes", "1000"]);
    let set = |key: &str, len: usize| {
        let mut r = format!("*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${len}\r\n", key.len()).into_bytes();
        r.extend(std::iter::repeat_n(b'x', len));
        r.extend_from_slice(b"\r\n");
        r
    };
    let mut stream = server.connect();
    stream.write_all(&set("big", 2000)).unwrap();
    let refusal = read_line(&mut stream);
    assert!(refusal.starts_with("-ERR ") && refusal.contains("2000"), "{refusal:?}");
    stream.write_all(b"GET big\r\n").unwrap();
    assert_eq!(read_line(&mut stream), "$-1\r\n", "a refused value is not stored");
    stream.write_all(&set("fits", 1000)).unwrap();
    assert_eq!(read_line(&mut stream), "+OK\r\n");
    stream.write_all(b"STRLEN fits\r\n").unwrap();
    assert_eq!(read_line(&mut stream), ":1000\r\n");
    drop(stream);
    server.still_serves();
}

#[test]
fn connection_over_the_limit_is_refused_and_closed() {
    let server = Server::start(&["--max-connections", "2"]);
    let mut first = server.connect();
    let mut second = server.connect();
    // Both are served, so both are counted.
    for stream in [&mut first, &mut second] {
        stream.write_all(b"PING\r\n").unwrap();
        assert_eq!(read_line(stream), "+PONG\r\n");
    }
    let mut third = server.connect();
    assert_eq!(read_to_close(&mut third), "-ERR max number of clients reached\r\n");
    // The first two still work.
    second.write_all(b"GET before\r\n").unwrap();
    assert_eq!(read_line(&mut second), "$6\r\n");
    assert_eq!(read_line(&mut second), "intact\r\n");
    // Once one closes, a new connection is served (after the server has
    // seen the close).
    drop(first);
    drop(second);
    let started = Instant::now();
    loop {
        let answer = server.ask(b"GET before\r\n");
        if answer == "$6\r\nintact\r\n" {
            break;
        }
        assert_eq!(answer, "-ERR max number of clients reached\r\n");
        assert!(started.elapsed() < PATIENCE, "closed connections never released their slots");
        thread::sleep(Duration::from_millis(20));
    }
    server.still_serves();
}

#[test]
fn idle_connection_gets_an_error_and_is_closed() {
    let server = Server::start(&["--idle-timeout-secs", "1"]);
    let mut stream = server.connect();
    stream.write_all(b"PING\r\n").unwrap();
    assert_eq!(read_line(&mut stream), "+PONG\r\n");
    // Nothing more is sent: the server gives up on the connection.
    let rest = read_to_close(&mut stream);
    assert!(
        rest.starts_with("-ERR ") && rest.ends_with("\r\n") && rest.matches("\r\n").count() == 1,
        "{rest:?}"
    );
    assert!(rest.contains("idle"), "{rest:?}");
    // A connection that sent half a request is idle too.
    let mut half = server.connect();
    half.write_all(b"*2\r\n$3\r\nGET\r\n").unwrap();
    assert_eq!(read_to_close(&mut half), rest);
    server.still_serves();
}
