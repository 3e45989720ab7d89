//! Backpressure: clients that pipeline large writes as fast as they can and
//! never read a reply cannot grow `logkv serve`'s memory past the commit
//! pipeline's bound (plus what each connection may hold: one request being
//! read). Measured from the process (its resident set in
//! `/proc/PID/status`), never by timing.

mod server;

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use server::{resp, Server};

/// The pipeline's bound in this test.
const QUEUE_BYTES: u64 = 4 << 20;
/// Writers, each on its own connection.
const CLIENTS: u64 = 8;
/// Each value.
const VALUE_BYTES: usize = 256 << 10;
/// Writes each client pipelines: 16 MiB each, 128 MiB in all.
const PER_CLIENT: u64 = 64;

/// The server's resident set in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc status");
    kib * 1024
}

#[test]
fn writers_that_never_read_cannot_grow_the_server_past_the_queue_bound() {
    let server = Server::builder()
        .args(["--durability", "none", "--write-queue-bytes", &QUEUE_BYTES.to_string()])
        .start();
    // Warm up: a few writes of this size, read back, so the baseline holds
    // the allocator's pools for values of this size.
    let value = vec![b'v'; VALUE_BYTES];
    let mut warm = server.connect();
    for k in 0..4 {
        let request = resp::request(&[b"SET", format!("warm{k}").as_bytes(), &value]);
        assert_eq!(server::roundtrip(&mut warm, &request, 1), b"+OK\r\n");
    }
    let baseline = rss(server.pid());

    let pushing = AtomicU64::new(CLIENTS);
    let peak = std::thread::scope(|s| {
        for c in 0..CLIENTS {
            let (server, value, pushing) = (&server, &value, &pushing);
            s.spawn(move || {
                let mut stream = server.connect();
                // Every request is sent before any reply is read: the
                // server is held back by TCP whenever it does not read.
                for i in 0..PER_CLIENT {
                    // Four keys per client: the index stays small.
                    let key = format!("c{c}-k{}", i % 4);
                    stream.write_all(&resp::request(&[b"SET", key.as_bytes(), value])).expect("write");
                }
                pushing.fetch_sub(1, Ordering::Relaxed);
                let replies = server::roundtrip(&mut stream, b"", PER_CLIENT as usize);
                assert_eq!(resp::count_replies(&replies), PER_CLIENT as usize);
                assert!(resp::split(&replies).iter().all(|r| r == b"+OK\r\n"), "every write acknowledged");
            });
        }
        let mut peak = 0;
        while pushing.load(Ordering::Relaxed) > 0 {
            peak = peak.max(rss(server.pid()));
            std::thread::sleep(Duration::from_millis(10));
        }
        peak.max(rss(server.pid()))
    });
    let sent = CLIENTS * PER_CLIENT * VALUE_BYTES as u64;
    let grew = peak.saturating_sub(baseline);
    // The queue holds its bound; each connection a batch of requests being
    // read, parsed and encoded (a few copies of one value each); the
    // allocator keeps some freed memory around.
    let allowed = QUEUE_BYTES + CLIENTS * 4 * (VALUE_BYTES as u64 + (16 << 10)) + (32 << 20);
    eprintln!(
        "sent {} MiB; server RSS {} -> {} MiB (allowed growth {} MiB)",
        sent >> 20,
        baseline >> 20,
        peak >> 20,
        allowed >> 20
    );
    assert!(sent > 2 * allowed, "a bound of {allowed} must be well under the {sent} bytes sent");
    assert!(grew <= allowed, "the server grew by {grew} bytes for {sent} sent; allowed {allowed}");
    server.stop_cleanly();
}
