//! `kill -9` loses nothing acknowledged in `always` mode.
//!
//! A writer process (this test binary, re-executed to run only
//! [`kill9_child_writer`]) puts from four threads and prints one line per
//! acknowledged write. The parent kills it with SIGKILL after a random number
//! of acknowledgements, reopens the store and checks every acknowledged write,
//! for many rounds on the same data directory, so each round also recovers
//! from the previous kill.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};

use logkv_store::{LogConfig, Store, StoreOptions, Value};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Set (to the data directory) only in the re-executed writer process.
const CHILD_DIR_ENV: &str = "LOGKV_KILL9_CHILD_DIR";
/// The round number, which keeps every round's keys apart.
const CHILD_ROUND_ENV: &str = "LOGKV_KILL9_ROUND";
const ROUNDS: u64 = 20;
const THREADS: u64 = 4;
/// Each thread cycles through this many keys, so keys get overwritten and
/// reads as of an acknowledged version walk version chains.
const KEYS_PER_THREAD: u64 = 50;
/// Small segments, so kills also land around segment creation.
const SEGMENT_SIZE_BYTES: u64 = 128 << 10;
const SEED: u64 = 0x6b69_6c6c_392d_6c6f;

fn options() -> StoreOptions {
    StoreOptions {
        log: LogConfig { segment_size_bytes: SEGMENT_SIZE_BYTES, ..LogConfig::default() },
        ..StoreOptions::default()
    }
}

fn key(round: u64, thread: u64, i: u64) -> String {
    format!("r{round}-t{thread}-k{}", i % KEYS_PER_THREAD)
}

/// A value that says which write it is, of varying length.
fn value(round: u64, thread: u64, i: u64) -> Vec<u8> {
    format!("round {round} thread {thread} write {i};").repeat(1 + (i % 5) as usize).into_bytes()
}

/// One acknowledged write, as the writer reported it.
#[derive(Debug, Clone, Copy)]
struct Ack {
    round: u64,
    thread: u64,
    i: u64,
    version: u64,
}

/// Parses `ack THREAD I VERSION`. The test harness may print its own text
/// before the first line (`test kill9_child_writer ... `), so the marker is
/// looked for anywhere in the line.
fn parse_ack(round: u64, line: &str) -> Option<Ack> {
    let (_, rest) = line.split_once("ack ")?;
    let mut fields = rest.split_whitespace().map(|f| f.parse::<u64>().expect("numeric ack field"));
    let (thread, i, version) = (fields.next()?, fields.next()?, fields.next()?);
    Some(Ack { round, thread, i, version })
}

/// The writer. It does nothing in a normal test run — the environment
/// variable is absent and it passes at once, by design; it writes only when
/// [`acknowledged_writes_survive_kill_9`] re-executes this binary to run it.
#[test]
fn kill9_child_writer() {
    let Some(dir) = std::env::var_os(CHILD_DIR_ENV) else {
        return;
    };
    let round: u64 = std::env::var(CHILD_ROUND_ENV).expect("round set").parse().expect("numeric round");
    let store = Store::open(&dir, options()).expect("open the store");
    let stdout = std::io::stdout();
    std::thread::scope(|s| {
        for thread in 0..THREADS {
            let (store, stdout) = (&store, &stdout);
            s.spawn(move || {
                // Runs until killed (or until stdout closes, if the parent died).
                for i in 0u64.. {
                    let version =
                        store.put(key(round, thread, i).as_bytes(), &value(round, thread, i)).expect("put");
                    let mut out = stdout.lock();
                    writeln!(out, "ack {thread} {i} {version}").and_then(|()| out.flush()).expect("stdout");
                }
            });
        }
    });
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("data");
    let exe = std::env::current_exe().expect("test binary path");
    let mut rng = StdRng::seed_from_u64(SEED);
    let mut acks: Vec<Ack> = Vec::new();
    for round in 0..ROUNDS {
        let kill_after = rng.random_range(50..2000);
        let round_acks = run_and_kill(&exe, &dir, round, kill_after);
        assert!(round_acks.len() >= kill_after, "round {round}: {} acks", round_acks.len());
        acks.extend(round_acks);
        check(&dir, &acks, round);
    }
}

/// Runs the writer until it has acknowledged `kill_after` writes, kills it
/// and returns every write it acknowledged, including those reported after
/// the kill was sent.
fn run_and_kill(exe: &Path, dir: &Path, round: u64, kill_after: usize) -> Vec<Ack> {
    let mut child = Command::new(exe)
        .args(["--exact", "kill9_child_writer", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR_ENV, dir)
        .env(CHILD_ROUND_ENV, round.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the writer");
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
    let mut reader = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut acks = Vec::new();
    let mut line = String::new();
    let mut killed = false;
    // A line without its newline was cut short by the kill: not acknowledged.
    while reader.read_line(&mut line).expect("read the writer's stdout") > 0 && line.ends_with('\n') {
        acks.extend(parse_ack(round, &line));
        line.clear();
        if !killed && acks.len() >= kill_after {
            // SAFETY: kill only sends a signal; `pid` is our child, not yet waited for.
            let rc = unsafe { libc::kill(pid, libc::SIGKILL) };
            assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
            killed = true;
        }
    }
    let status = child.wait().expect("wait for the writer");
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "round {round}: the writer ended on its own: {status:?}"
    );
    acks
}

/// Reopens the store and checks every write acknowledged so far.
fn check(dir: &Path, acks: &[Ack], round: u64) {
    let store = Store::open(dir, options()).expect("reopen after kill -9");
    let records = store.recovery_report().records;
    assert!(records >= acks.len() as u64, "round {round}: {records} records replayed, {} acked", acks.len());
    for a in acks {
        let got = store.get_at(key(a.round, a.thread, a.i).as_bytes(), a.version).expect("read");
        let want = Value { data: value(a.round, a.thread, a.i), version: a.version };
        assert_eq!(got.as_ref(), Some(&want), "round {round}: lost {a:?}");
    }
    store.close().expect("close");
}
