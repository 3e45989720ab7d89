//! Bad input over raw TCP against a real `logkv serve`: malformed RESP
//! frames, unknown commands, wrong arity, keys and values over the limits,
//! too many connections and idle connections. Each case checks the exact
//! reply (Redis 7.0's text where Redis has one), whether the connection is
//! closed, and that afterwards a fresh connection works and data
//! acknowledged before is intact.

mod server;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use server::{Server, PATIENCE};

/// A server started with `extra` flags, holding `before` = `intact` so
/// each test can check that acknowledged data survives its bad input.
fn start(extra: &[&str]) -> Server {
    let server = Server::builder().args(extra).start();
    assert_eq!(ask(&server, b"SET before intact\r\n"), "+OK\r\n");
    server
}

/// Sends `bytes` on a new connection, ends the connection's sending side,
/// and returns everything the server wrote until it closed.
fn ask(server: &Server, bytes: &[u8]) -> String {
    let mut stream = server.connect();
    stream.write_all(bytes).unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    read_to_close(&mut stream)
}

/// Sends `bytes`, which the server must refuse with a protocol error
/// *without* the client closing its side: the server closes.
fn refused(server: &Server, bytes: &[u8]) -> String {
    let mut stream = server.connect();
    stream.write_all(bytes).unwrap();
    read_to_close(&mut stream)
}

/// After bad input: a fresh connection works, the data written before is
/// intact, and a new write is acknowledged and read back; then SIGTERM
/// stops the server with exit 0.
fn still_serves(server: Server) {
    assert_eq!(
        ask(&server, b"PING\r\nGET before\r\nSET after ok\r\nGET after\r\n"),
        "+PONG\r\n$6\r\nintact\r\n+OK\r\n$2\r\nok\r\n"
    );
    let stderr = server.stderr();
    let status = server.stop();
    assert!(status.success(), "SIGTERM must exit 0, got {status}:\n{stderr}");
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

#[test]
fn bad_multibulk_length_is_a_protocol_error_that_closes() {
    let server = start(&[]);
    for bad in [&b"*abc\r\n"[..], b"*3000000000\r\n", b"*1x\r\n"] {
        assert_eq!(
            refused(&server, bad),
            "-ERR Protocol error: invalid multibulk length\r\n",
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    // Requests before the bad frame are answered first; the error is last.
    assert_eq!(
        refused(&server, b"SET a 1\r\n*abc\r\nGET a\r\n"),
        "+OK\r\n-ERR Protocol error: invalid multibulk length\r\n"
    );
    // A negative count is an empty request, skipped as Redis does.
    assert_eq!(ask(&server, b"*-5\r\nPING\r\n"), "+PONG\r\n");
    still_serves(server);
}

#[test]
fn huge_bulk_header_is_refused_before_its_body() {
    let server = start(&[]);
    // Only the header is sent: the reply must come without the body.
    assert_eq!(
        refused(&server, b"*2\r\n$3\r\nSET\r\n$999999999\r\n"),
        "-ERR Protocol error: invalid bulk length\r\n"
    );
    assert_eq!(refused(&server, b"*1\r\n$999999999\r\n"), "-ERR Protocol error: invalid bulk length\r\n");
    assert_eq!(refused(&server, b"*1\r\n$-1\r\n"), "-ERR Protocol error: invalid bulk length\r\n");
    assert_eq!(refused(&server, b"*1\r\n$abc\r\n"), "-ERR Protocol error: invalid bulk length\r\n");
    still_serves(server);
}

#[test]
fn unbalanced_quotes_inline_are_a_protocol_error() {
    let server = start(&[]);
    assert_eq!(
        refused(&server, b"SET \"foo bar\r\n"),
        "-ERR Protocol error: unbalanced quotes in request\r\n"
    );
    assert_eq!(
        refused(&server, b"SET 'foo bar\r\n"),
        "-ERR Protocol error: unbalanced quotes in request\r\n"
    );
    // A closing quote must be followed by a space or the end of the line.
    assert_eq!(
        refused(&server, b"SET \"a\"b c\r\n"),
        "-ERR Protocol error: unbalanced quotes in request\r\n"
    );
    // Balanced quotes are fine.
    assert_eq!(ask(&server, b"SET \"a b\" 'c d'\r\nGET \"a b\"\r\n"), "+OK\r\n$3\r\nc d\r\n");
    still_serves(server);
}

#[test]
fn non_bulk_inside_multibulk_is_a_protocol_error() {
    let server = start(&[]);
    assert_eq!(refused(&server, b"*1\r\n:5\r\n"), "-ERR Protocol error: expected '$', got ':'\r\n");
    assert_eq!(
        refused(&server, b"*2\r\n$3\r\nGET\r\n+k\r\n"),
        "-ERR Protocol error: expected '$', got '+'\r\n"
    );
    still_serves(server);
}

#[test]
fn unknown_command_and_wrong_arity_keep_the_connection() {
    let server = start(&[]);
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
    still_serves(server);
}

#[test]
fn key_over_the_limit_is_refused_and_not_stored() {
    let server = start(&[]);
    let key1024 = "k".repeat(1024);
    let key1025 = "k".repeat(1025);
    let set = |key: &str| format!("*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n$1\r\nv\r\n", key.len());
    let get = |key: &str| format!("*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n", key.len());
    let mut stream = server.connect();
    stream.write_all(set(&key1025).as_bytes()).unwrap();
    let refusal = read_line(&mut stream);
    assert!(refusal.starts_with("-ERR ") && refusal.contains("1025"), "{refusal:?}");
    stream.write_all(get(&key1025).as_bytes()).unwrap();
    assert_eq!(read_line(&mut stream), "$-1\r\n", "a refused key is not stored");
    // The refusal in a pipeline of writes fails only its own write.
    stream.write_all(format!("{}{}{}", set("p1"), set(&key1025), set("p2")).as_bytes()).unwrap();
    assert_eq!(read_line(&mut stream), "+OK\r\n");
    assert_eq!(read_line(&mut stream), refusal);
    assert_eq!(read_line(&mut stream), "+OK\r\n");
    // 1 KiB is the limit, inclusive.
    stream.write_all(format!("{}{}", set(&key1024), get(&key1024)).as_bytes()).unwrap();
    assert_eq!(read_line(&mut stream), "+OK\r\n");
    assert_eq!(read_line(&mut stream), "$1\r\n");
    assert_eq!(read_line(&mut stream), "v\r\n");
    drop(stream);
    assert_eq!(ask(&server, b"GET p1\r\nGET p2\r\n"), "$1\r\nv\r\n$1\r\nv\r\n");
    still_serves(server);
}

#[test]
fn value_over_the_limit_is_refused_and_not_stored() {
    let server = start(&["--max-value-bytes", "1000"]);
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
    still_serves(server);
}

/// A connection the server serves (PING answered), once a slot is free:
/// the server frees a closed connection's slot when it sees the close.
fn served(server: &Server) -> TcpStream {
    let started = Instant::now();
    loop {
        let mut stream = server.connect();
        stream.write_all(b"PING\r\n").unwrap();
        let mut answer = Vec::new();
        let mut chunk = [0u8; 64];
        loop {
            match stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    answer.extend_from_slice(&chunk[..n]);
                    if answer.ends_with(b"\r\n") {
                        break;
                    }
                }
                // Refused with our PING unread: the close may be a reset.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                Err(e) => panic!("PING: {e}"),
            }
        }
        if answer == b"+PONG\r\n" {
            return stream;
        }
        assert!(
            answer.is_empty() || answer == b"-ERR max number of clients reached\r\n",
            "PING answered {:?}",
            String::from_utf8_lossy(&answer)
        );
        assert!(started.elapsed() < PATIENCE, "closed connections never released their slots");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn connection_over_the_limit_is_refused_and_closed() {
    let server = start(&["--max-connections", "2"]);
    let first = served(&server);
    let mut second = served(&server);
    // Both are served, so both are counted: a third is refused and closed.
    let mut third = server.connect();
    assert_eq!(read_to_close(&mut third), "-ERR max number of clients reached\r\n");
    // The two served ones still work.
    second.write_all(b"GET before\r\n").unwrap();
    assert_eq!(read_line(&mut second), "$6\r\n");
    assert_eq!(read_line(&mut second), "intact\r\n");
    // Once they close, new connections are served.
    drop((first, second));
    let mut stream = served(&server);
    stream.write_all(b"GET before\r\n").unwrap();
    assert_eq!(read_line(&mut stream), "$6\r\n");
    assert_eq!(read_line(&mut stream), "intact\r\n");
    drop(stream);
    still_serves(server);
}

#[test]
fn idle_connection_gets_an_error_and_is_closed() {
    let server = start(&["--idle-timeout-secs", "1"]);
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
    still_serves(server);
}
