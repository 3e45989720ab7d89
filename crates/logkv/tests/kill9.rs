//! `kill -9` loses nothing acknowledged in `always` mode, on the node the
//! CLI runs.
//!
//! A writer process (this test binary, re-executed to run only
//! [`kill9_child_writer`]) opens the node in the data directory and, from
//! four threads, appends native Put transactions signed by the node's key
//! (`node.key`, as the CLI does), printing one line per acknowledged
//! (committed) write. The parent kills it with SIGKILL after a random number
//! of acknowledgements, reopens the node and checks every acknowledged write
//! as of its version, for many rounds on the same data directory, so each
//! round also recovers from the previous kill; at the end the `logkv` binary
//! reads a sample of them back too.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use logkv_runtime::apply::{TxResult, Watched};
use logkv_runtime::codec::native;
use logkv_runtime::entry::EntryOutcome;
use logkv_runtime::keyfile;
use logkv_runtime::node::{Node, NodeOptions};
use logkv_runtime::pipeline::{self, Pipeline, PipelineOptions};
use logkv_runtime::signing::Signer;
use logkv_runtime::types::StreamId;
use logkv_store::{LogConfig, StoreOptions};
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

/// The CLI's default stream.
const STREAM: StreamId = StreamId([0; 32]);

fn options() -> NodeOptions {
    let store = StoreOptions {
        log: LogConfig { segment_size_bytes: SEGMENT_SIZE_BYTES, ..LogConfig::default() },
        ..StoreOptions::default()
    };
    NodeOptions { store, watched: Watched::All, ..NodeOptions::default() }
}

/// The node's key, created on first use, as the CLI does.
fn node_key(dir: &Path) -> Signer {
    let path = dir.join("node.key");
    if !path.exists() {
        keyfile::create(&path).expect("create the node key");
    }
    keyfile::load(&path).expect("load the node key")
}

/// One native Put, signed by the node and acknowledged; its version.
fn put(pipeline: &Pipeline, signer: &Signer, key: &[u8], value: &[u8]) -> u64 {
    let body = native::Body {
        version: u64::MAX,
        check_reads_only: false,
        reads: Vec::new(),
        writes: vec![native::BodyWrite {
            stream: STREAM,
            key: key.to_vec(),
            op: native::Op::Put(value.to_vec().into()),
        }],
        controls: Vec::new(),
    };
    let applied = pipeline
        .write_blocking(pipeline::Write::Local { signer: signer.clone(), txs: vec![body] })
        .expect("append");
    assert_eq!(applied.outcome, EntryOutcome::Applied(vec![Some(TxResult::Commit)]), "committed");
    applied.version
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
    let node = Node::open(&dir, options()).expect("open the node");
    let pipeline = Pipeline::start(Arc::new(node), None, PipelineOptions::default());
    let signer = node_key(Path::new(&dir));
    let stdout = std::io::stdout();
    std::thread::scope(|s| {
        for thread in 0..THREADS {
            let (pipeline, signer, stdout) = (&pipeline, &signer, &stdout);
            s.spawn(move || {
                // Runs until killed (or until stdout closes, if the parent died).
                for i in 0u64.. {
                    let version =
                        put(pipeline, signer, key(round, thread, i).as_bytes(), &value(round, thread, i));
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
    check_with_the_cli(&dir, &acks);
}

/// The `logkv` binary reads acknowledged writes back as of their versions.
fn check_with_the_cli(dir: &Path, acks: &[Ack]) {
    for a in acks.iter().step_by(acks.len() / 10 + 1) {
        let out = Command::new(env!("CARGO_BIN_EXE_logkv"))
            .env_remove("LOGKV_DATA_DIR")
            .args(["get", &key(a.round, a.thread, a.i), "--at", &a.version.to_string(), "--data-dir"])
            .arg(dir)
            .output()
            .expect("run logkv");
        assert!(out.status.success(), "{a:?}: {out:?}");
        assert_eq!(out.stdout, value(a.round, a.thread, a.i), "{a:?}");
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

/// Reopens the node and checks every write acknowledged so far.
fn check(dir: &Path, acks: &[Ack], round: u64) {
    let node = Node::open(dir, options()).expect("reopen after kill -9");
    let newest = acks.iter().map(|a| a.version).max().unwrap_or(0);
    let visible = node.replay_progress().applied_version;
    assert!(visible >= newest, "round {round}: version {visible} visible, {newest} acknowledged");
    for a in acks {
        let got = node.get(&STREAM, key(a.round, a.thread, a.i).as_bytes(), Some(a.version)).expect("read");
        let want = (value(a.round, a.thread, a.i), a.version);
        assert_eq!(got, Some(want), "round {round}: lost {a:?}");
    }
    node.close().expect("close");
}
