//! `kill -9` of a real `logkv serve` loses no write whose `+OK` a client
//! read, in `always` mode.
//!
//! Several client threads pipeline `SET` over raw RESP (batches of 16 in one
//! write) and record every write whose `+OK` came back. The server is
//! killed with SIGKILL after a random number of acknowledgements, while the
//! clients are still writing, and restarted on the same data directory;
//! every acknowledged write must then read back (`GET`) with its value.
//! Several rounds run on one directory, so each restart also recovers from
//! the previous kill; the last start is stopped with SIGTERM and must exit 0.

mod server;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use server::resp::request;
use server::{Server, PATIENCE};

const ROUNDS: usize = 5;
const THREADS: usize = 4;
const BATCH: usize = 16;
const SEED: u64 = 0x7365_7276_652d_6b39;

/// Writes whose `+OK` a client read: key and value.
type Acked = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// `logkv serve` in `always` mode on `data` (kept across restarts).
fn start(data: &Path) -> Server {
    Server::builder().data_dir(data).args(["--durability", "always"]).start()
}

/// One reply line (without CRLF); `None` at end of stream or on error.
fn read_line(reader: &mut impl BufRead) -> Option<String> {
    let mut line = String::new();
    match reader.read_line(&mut line) {
        Ok(0) | Err(_) => None,
        // A line cut off by the server's death is no reply.
        Ok(_) if !line.ends_with("\r\n") => None,
        Ok(_) => {
            line.truncate(line.len() - 2);
            Some(line)
        }
    }
}

/// A bulk reply's value, `None` for nil.
fn read_bulk(reader: &mut impl BufRead) -> Option<Vec<u8>> {
    let header = read_line(reader).expect("a reply to GET");
    let len: i64 = header
        .strip_prefix('$')
        .unwrap_or_else(|| panic!("GET answered {header:?}"))
        .parse()
        .expect("bulk length");
    if len < 0 {
        return None;
    }
    let mut value = vec![0; len as usize + 2];
    reader.read_exact(&mut value).expect("bulk body");
    assert_eq!(&value[len as usize..], b"\r\n", "bulk terminator");
    value.truncate(len as usize);
    Some(value)
}

/// A value of 1 to 300 bytes, unique to its key.
fn value_for(key: &str, rng: &mut StdRng) -> Vec<u8> {
    let len = rng.random_range(1..=300usize);
    let mut value = format!("{key}=").into_bytes();
    value.extend((0..len).map(|_| rng.random_range(b'a'..=b'z')));
    value
}

/// One client: writes batches of `BATCH` SETs until the connection dies,
/// recording each write whose `+OK` it read.
fn writer(server_addr: String, round: usize, thread: usize, acked: Acked, count: Arc<AtomicUsize>) {
    let mut rng = StdRng::seed_from_u64(SEED ^ ((round as u64) << 32) ^ thread as u64);
    let Ok(stream) = TcpStream::connect(&server_addr) else { return };
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut out = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let mut i = 0usize;
    loop {
        let batch: Vec<(String, Vec<u8>)> = (0..BATCH)
            .map(|j| {
                let key = format!("key_{round}_{thread}_{}", i + j);
                let value = value_for(&key, &mut rng);
                (key, value)
            })
            .collect();
        i += BATCH;
        let mut bytes = Vec::new();
        for (key, value) in &batch {
            bytes.extend(request(&[b"SET", key.as_bytes(), value]));
        }
        if out.write_all(&bytes).is_err() {
            return;
        }
        for write in batch {
            match read_line(&mut reader) {
                Some(line) if line == "+OK" => {
                    acked.lock().unwrap().push(write);
                    count.fetch_add(1, Ordering::Relaxed);
                }
                Some(line) => panic!("SET {} answered {line:?}", write.0),
                // Killed: the rest of the batch is unacknowledged.
                None => return,
            }
        }
    }
}

/// Every acknowledged write reads back with its value (pipelined GETs).
fn check(server: &Server, acked: &[(String, Vec<u8>)]) {
    let stream = server.connect();
    let mut out = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    for chunk in acked.chunks(256) {
        let mut bytes = Vec::new();
        for (key, _) in chunk {
            bytes.extend(request(&[b"GET", key.as_bytes()]));
        }
        out.write_all(&bytes).unwrap();
        for (key, value) in chunk {
            let got = read_bulk(&mut reader);
            assert_eq!(
                got.as_deref(),
                Some(&value[..]),
                "acknowledged SET {key} lost or changed after kill -9"
            );
        }
    }
}

#[test]
fn acknowledged_sets_survive_kill9_of_serve() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut rng = StdRng::seed_from_u64(SEED);
    let acked: Acked = Arc::default();
    for round in 0..ROUNDS {
        let server = start(&data);
        check(&server, &acked.lock().unwrap());
        let before = acked.lock().unwrap().len();
        let count = Arc::new(AtomicUsize::new(0));
        let writers: Vec<_> = (0..THREADS)
            .map(|t| {
                let (addr, acked, count) = (server.resp.clone(), acked.clone(), count.clone());
                thread::spawn(move || writer(addr, round, t, acked, count))
            })
            .collect();
        let kill_after = rng.random_range(100..3000);
        let started = Instant::now();
        while count.load(Ordering::Relaxed) < kill_after {
            assert!(
                started.elapsed() < PATIENCE,
                "writers stalled at {}:\n{}",
                count.load(Ordering::Relaxed),
                server.stderr()
            );
            assert!(!writers.iter().all(|w| w.is_finished()), "every writer stopped:\n{}", server.stderr());
            thread::sleep(Duration::from_millis(1));
        }
        let status = server.kill9();
        assert!(!status.success(), "a killed server cannot exit 0: {status}");
        for w in writers {
            w.join().expect("writer thread");
        }
        let now = acked.lock().unwrap().len();
        assert!(now - before >= kill_after, "round {round}: {} acknowledged", now - before);
    }
    let server = start(&data);
    let acked = acked.lock().unwrap();
    check(&server, &acked);
    // A key nobody wrote is nil, so `check` is not vacuous.
    let stream = server.connect();
    let mut out = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    out.write_all(&request(&[b"GET", b"key_never_written"])).unwrap();
    assert_eq!(read_bulk(&mut reader), None);
    drop((out, reader));
    let stderr = server.stderr();
    let status = server.stop();
    assert!(status.success(), "SIGTERM must exit 0, got {status}:\n{stderr}");
}
