//! Hostile clients cannot grow `logkv serve` without bound: a batch asking
//! for far more than `max_response_bytes`, WebSocket watchers that never
//! read, a client trickling a request a byte at a time, running out of
//! file descriptors, a full disk. Memory is measured from the process
//! (`RssAnon` in `/proc/PID/status`) and log lines are counted, never
//! timed.

mod rpc_support;
mod server;

use std::io::{Read, Write};
use std::net::TcpStream;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use logkv_runtime::codec::native::Op;
use logkv_runtime::types::StreamId;
use rpc_support::{signer, Rpc};
use serde_json::{json, Value};
use server::{Server, PATIENCE};

const S: StreamId = StreamId([1; 32]);

/// What every case must stay under: growth of the anonymous resident set
/// over the server's idle size.
const GROWTH_BOUND: u64 = 256 << 20;

/// The server's anonymous resident memory in bytes.
fn rss_anon(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("RssAnon in /proc status");
    kib * 1024
}

/// Sends a raw HTTP request on a new connection; the stream, unread.
fn post(server: &Server, body: &str) -> TcpStream {
    let mut stream = TcpStream::connect(&server.http).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(
        stream,
        "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    stream
}

/// The body of an HTTP response read to its end.
fn body_of(mut stream: TcpStream) -> String {
    let mut all = Vec::new();
    stream.read_to_end(&mut all).expect("read the answer");
    let text = String::from_utf8(all).expect("UTF-8");
    text.split_once("\r\n\r\n").expect("a head and a body").1.to_string()
}

#[test]
fn a_batch_asking_for_gigabytes_is_cut_at_max_response_bytes() {
    let server = Server::start();
    let rpc = Rpc::new(&server);
    let value: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
    rpc.submit(&signer(1), vec![(S, b"big", Op::Put(value.into()))]);
    let one = json!({ "jsonrpc": "2.0", "id": 0, "method": "kv_getValue",
        "params": [S.to_string(), STANDARD.encode(b"big"), 0, 262_144] });
    assert_eq!(rpc.call("kv_getValue", one["params"].clone())["result"]["size"], json!(1 << 20));
    let idle = rss_anon(server.pid());

    // 1,024 reads of 256 KiB each: about 358 MB of response per batch.
    let batch: Vec<Value> = (0..1024)
        .map(|i| {
            let mut call = one.clone();
            call["id"] = json!(i);
            call
        })
        .collect();
    let batch = Value::Array(batch).to_string();
    // Four at once, none read: every answer is built and waiting once its
    // first byte is there.
    let clients: Vec<TcpStream> = (0..4).map(|_| post(&server, &batch)).collect();
    for c in &clients {
        let mut first = [0u8; 1];
        assert_eq!(c.peek(&mut first).expect("an answer starts"), 1);
    }
    let grew = rss_anon(server.pid()).saturating_sub(idle);
    assert!(grew < GROWTH_BOUND, "RssAnon grew {} MiB over idle", grew >> 20);

    for c in clients {
        let answers: Vec<Value> = serde_json::from_str(&body_of(c)).expect("a JSON array");
        assert_eq!(answers.len(), 1024, "every call is answered");
        let full = answers.iter().take_while(|a| a.get("result").is_some()).count();
        assert!(full > 0 && full < 1024, "{full} results fit");
        for (i, a) in answers.iter().enumerate() {
            assert_eq!(a["id"], json!(i));
        }
        let cut = &answers[full]["error"];
        assert_eq!(cut["code"], json!(-32013), "{cut}");
        assert!(cut["data"].as_str().unwrap().contains("max_response_bytes (16777216 bytes)"), "{cut}");
        assert!(answers[full + 1..].iter().all(|a| a["error"]["code"] == json!(-32013)));
    }
    drop(rpc);
    server.stop_cleanly();
}

#[test]
fn a_single_result_past_max_response_bytes_is_an_error_for_its_id() {
    let server = Server::builder().args(["--durability", "none", "--max-response-bytes", "65536"]).start();
    let rpc = Rpc::new(&server);
    rpc.submit(&signer(1), vec![(S, b"big", Op::Put(vec![7u8; 100_000].into()))]);
    let error = rpc.error("kv_getValue", json!([S.to_string(), STANDARD.encode(b"big"), 0, 262_144]));
    assert_eq!(error["code"], json!(-32013), "{error}");
    assert_eq!(error["message"], json!("Response too large"), "{error}");
    // What fits is answered.
    let page = rpc.result("kv_getValue", json!([S.to_string(), STANDARD.encode(b"big"), 0, 1000]));
    assert_eq!(page["size"], json!(100_000));
    drop(rpc);
    server.stop_cleanly();
}

/// Sends `at_once`, then `request` a byte at a time, a byte each 100 ms,
/// reading between bytes; what the server answered and how many bytes of
/// `request` went out before it closed the connection (or
/// `request.len()` if it never did).
fn trickle(addr: &str, at_once: &[u8], request: &[u8]) -> (String, usize) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.write_all(at_once).unwrap();
    stream.set_read_timeout(Some(std::time::Duration::from_millis(100))).unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    for (sent, byte) in request.iter().enumerate() {
        match stream.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&answer).into_owned(), sent),
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return (String::from_utf8_lossy(&answer).into_owned(), sent),
        }
        if stream.write_all(std::slice::from_ref(byte)).is_err() {
            return (String::from_utf8_lossy(&answer).into_owned(), sent);
        }
    }
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let _ = stream.read_to_end(&mut answer);
    (String::from_utf8_lossy(&answer).into_owned(), request.len())
}

#[test]
fn a_client_trickling_a_request_is_closed_at_the_request_timeout() {
    let server = Server::builder().args(["--durability", "none", "--request-timeout-secs", "1"]).start();
    // 300 bytes at 10 a second: half a minute, against a 1 s timeout.
    let value = "v".repeat(260);
    let set = server::resp::request(&[b"SET", b"k", value.as_bytes()]);
    let (answer, sent) = trickle(&server.resp, b"", &set);
    assert!(sent < set.len(), "the whole request was taken: {answer:?}");
    assert!(answer.starts_with("-ERR request not complete within request_timeout_secs (1s)"), "{answer:?}");

    // An HTTP request's head, then its body.
    let head = format!(
        "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nX-Pad: {value}\r\n\r\n"
    );
    let (answer, sent) = trickle(&server.http, b"", head.as_bytes());
    assert!(sent < head.len(), "the whole head was taken: {answer:?}");
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "kv_getStatus", "pad": value }).to_string();
    let head = format!(
        "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let (answer, sent) = trickle(&server.http, head.as_bytes(), body.as_bytes());
    assert!(sent < body.len(), "the whole body was taken: {answer:?}");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert!(answer.contains("request_timeout_secs (1s)"), "{answer:?}");
    // Requests that arrive at once are served.
    let rpc = Rpc::new(&server);
    assert_eq!(rpc.result("kv_getStatus", json!([])), json!(true));
    assert!(rpc.get("/metrics").1.contains("logkv_requests_timed_out_total 2"));
    drop(rpc);
    server.stop_cleanly();
}

/// The server's open file descriptors.
fn open_fds(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).expect("list /proc fds").count() as u64
}

/// Lowers the soft open-file limit of process `pid`.
fn limit_open_files(pid: u32, soft: u64) {
    let mut old = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: prlimit reads and writes the structs it is given.
    assert_eq!(
        unsafe { libc::prlimit(pid as libc::pid_t, libc::RLIMIT_NOFILE, std::ptr::null(), &mut old) },
        0
    );
    let new = libc::rlimit { rlim_cur: soft, rlim_max: old.rlim_max };
    // SAFETY: as above.
    let set = unsafe { libc::prlimit(pid as libc::pid_t, libc::RLIMIT_NOFILE, &new, std::ptr::null_mut()) };
    assert_eq!(set, 0, "prlimit: {}", std::io::Error::last_os_error());
}

/// PING on a new RESP connection: the reply, or `None` if the connection
/// was closed without one.
fn ping(server: &Server) -> (TcpStream, Option<String>) {
    let mut stream = server.connect();
    stream.write_all(b"PING\r\n").unwrap();
    let mut buf = [0u8; 256];
    let reply = match stream.read(&mut buf) {
        Ok(n) if n > 0 => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
        Ok(_) => None,
        Err(e) => panic!("no answer from the server (a hang): {e}"),
    };
    (stream, reply)
}

#[test]
fn out_of_file_descriptors_new_clients_are_refused_and_logged_once() {
    let server = Server::start();
    let pid = server.pid();
    // Room for a few more connections than are open now.
    limit_open_files(pid, open_fds(pid) + 8);
    let mut held = Vec::new();
    let refused = loop {
        let (stream, reply) = ping(&server);
        match reply.as_deref() {
            Some("+PONG\r\n") => held.push(stream),
            other => break other.map(str::to_string),
        }
        assert!(held.len() < 100, "never ran out of descriptors");
    };
    assert_eq!(refused.as_deref(), Some("-ERR server out of file descriptors\r\n"));
    // Many more clients while it lasts: each answered, none left hanging
    // (one may be served when a refused one's descriptor was just freed).
    let mut refusals = 0;
    for _ in 0..50 {
        let (stream, reply) = ping(&server);
        match reply.as_deref() {
            Some("+PONG\r\n") => held.push(stream),
            Some("-ERR server out of file descriptors\r\n") => refusals += 1,
            other => panic!("{other:?}"),
        }
    }
    assert!(refusals > 0);
    for _ in 0..10 {
        let status = server::http_status(&server.http, "/healthz");
        assert!(matches!(status, Some(503 | 200)), "{status:?}");
    }
    // Connections close: it serves again, and says so once accepting has
    // worked for a while (the wait is a hang detector).
    drop(held);
    let deadline = std::time::Instant::now() + PATIENCE;
    let mut served = false;
    while !(served && server.stderr().contains("accepting connections again")) {
        // Refused until the server has closed its side of those.
        served |= ping(&server).1.as_deref() == Some("+PONG\r\n");
        assert!(std::time::Instant::now() < deadline, "not serving again (served: {served})");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let log = server.stderr();
    let warnings = log.lines().filter(|l| l.contains("cannot accept connections")).count();
    assert!((1..=2).contains(&warnings), "one warning per listener and episode, got {warnings}:\n{log}");
    limit_open_files(pid, 1024);
    server.stop_cleanly();
}

/// The value of an unlabelled series in `/metrics`.
fn metric(rpc: &Rpc, name: &str) -> f64 {
    let (_, text) = rpc.get("/metrics");
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} in /metrics"))
}

#[test]
fn watchers_that_never_read_hold_bounded_memory_returned_when_they_leave() {
    const CONNECTIONS: usize = 50;
    const WATCHES: usize = 64;
    const BATCHES: usize = 40;
    const PER_BATCH: usize = 500;
    let server = Server::builder().args(["--durability", "none", "--max-request-bytes", "8000000"]).start();
    let rpc = Rpc::new(&server);
    let me = signer(1);
    let value = vec![b'v'; 2048];
    let keys: Vec<Vec<u8>> = (0..PER_BATCH).map(|i| format!("k{i:04}").into_bytes()).collect();
    let write_batch = || {
        let writes = keys.iter().map(|k| (S, &k[..], Op::Put(value.clone().into()))).collect();
        rpc.submit(&me, writes);
    };
    write_batch();
    let idle = rss_anon(server.pid());

    // Subscribers that never read: 64 watches each, from version 0.
    let mut sockets = Vec::new();
    for _ in 0..CONNECTIONS {
        let mut ws = rpc_support::Ws::connect(&server);
        for w in 0..WATCHES {
            ws.send(json!({ "jsonrpc": "2.0", "id": w, "method": "kv_watch", "params": [S.to_string(), 0] }));
        }
        sockets.push(ws);
    }
    let mut peak = 0;
    for _ in 1..BATCHES {
        write_batch();
        peak = peak.max(rss_anon(server.pid()));
    }
    // The subscriptions go on reading what was written.
    for _ in 0..100 {
        peak = peak.max(rss_anon(server.pid()));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let grew = peak.saturating_sub(idle);
    assert!(grew < GROWTH_BOUND, "RssAnon grew {} MiB over idle with watchers", grew >> 20);

    drop(sockets);
    // The request asking is a connection too.
    while metric(&rpc, "logkv_connections") > 1.0 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Given back to the system shortly after (a hang detector, no timing).
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let left = rss_anon(server.pid()).saturating_sub(idle);
        if left < GROWTH_BOUND / 4 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "RssAnon still {} MiB over idle once the watchers left",
            left >> 20
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    drop(rpc);
    server.stop_cleanly();
}

/// A tmpfs of `size` mounted on `dir`, unmounted when dropped. Mounting
/// needs root, which the test command runs as (scripts/test.sh): without
/// it the test fails rather than check nothing.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &std::path::Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "a full disk is simulated with a small tmpfs, which needs root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(dir.to_path_buf())
    }

    fn resize(&self, size: &str) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_is_logged_once_per_episode() {
    let temp = tempfile::tempdir().unwrap();
    let disk = Tmpfs::mount(temp.path(), "4m");
    let data = temp.path().join("data");
    let server = Server::builder().data_dir(&data).args(["--segment-size-bytes", "1048576"]).start();
    let mut stream = server.connect();
    let value = vec![b'v'; 64 << 10];
    let mut failed = 0;
    for i in 0..200 {
        let reply = server::roundtrip(
            &mut stream,
            &server::resp::request(&[b"SET", format!("k{i}").as_bytes(), &value]),
            1,
        );
        if reply != b"+OK\r\n" {
            failed += 1;
            assert!(
                String::from_utf8_lossy(&reply).starts_with("-ERR"),
                "{:?}",
                String::from_utf8_lossy(&reply)
            );
        }
    }
    assert!(failed > 10, "the disk filled up ({failed} writes failed)");
    let log = server.stderr();
    let lines = log.lines().filter(|l| l.contains("a write failed on I/O")).collect::<Vec<_>>();
    assert_eq!(lines.len(), 1, "one line for the episode:\n{log}");
    assert!(lines[0].contains("No space left on device"), "{}", lines[0]);
    // Room again: writes succeed, and the log says how many failed.
    disk.resize("64m");
    let reply = server::roundtrip(&mut stream, &server::resp::request(&[b"SET", b"after", b"v"]), 1);
    assert_eq!(reply, b"+OK\r\n", "writes work once there is room");
    let log = server.stderr();
    assert!(log.contains("writes succeed again after I/O failures"), "{log}");
    assert!(log.contains(&format!("failed_writes={failed}")), "{log}");
    drop(stream);
    server.stop_cleanly();
}
