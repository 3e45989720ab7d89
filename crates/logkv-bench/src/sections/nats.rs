//! Section 9, nats: the shared log on NATS JetStream, on a 3-node
//! loopback cluster started for the section (`scripts/nats-cluster.sh`),
//! with streams of 1 and of 3 replicas.
//!
//! (a) writes: C concurrent RESP clients doing `SET` against a real
//! `logkv serve --log nats://...` child process, next to C concurrent
//! tasks publishing messages of the same size (one single-write entry)
//! to a stream of the same replicas and awaiting each ack (async-nats,
//! one connection); (b) catch-up: a fresh node (empty data directory) on
//! a stream of N entries of about 1 KiB, written through a logkv node,
//! timed from spawn to `/readyz` = 200, next to two bounds measured on
//! the same stream in the same run: a raw ordered consumer reading it
//! from the start, and `verify_entries` of the entries it read.
//!
//! The server binary is `$LOGKV_NATS_SERVER`, else `nats-server` on PATH,
//! else `/usr/sbin/nats-server`; without one the section is skipped. The
//! node is `logkv` next to this binary, built first with `cargo build
//! --release -p logkv` when cargo is at hand; if it has no `--log` yet
//! only the baselines are measured.

use std::collections::HashMap;
use std::error::Error;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::push::OrderedConfig;
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::stream::{Config, StorageType};
use async_nats::jetstream::{self, Context};
use bytes::Bytes;
use futures::StreamExt;
use logkv_nats::{JetStreamLog, NatsConfig};
use logkv_runtime::apply::Watched;
use logkv_runtime::codec::native::{self, BodyWrite, Op};
use logkv_runtime::codec::NATIVE;
use logkv_runtime::envelope::{Entry, TxPart};
use logkv_runtime::node::verify::{threads, verify_entries};
use logkv_runtime::shared_log::{Follower, SharedLog};
use logkv_runtime::signing::Signer;
use logkv_runtime::types::StreamId;
use tokio::runtime::Runtime;

use crate::ctx::{fresh, Ctx};
use crate::report::{dur, mb_per_sec, per_sec, progress, rate, thousands, times, Row, Runs, Table, Target};

type Res<T> = Result<T, Box<dyn Error>>;

/// Size of one single-write entry, and of each raw message.
const ENTRY_BYTES: usize = 1024;
/// Keys of the RESP writes: `w` + writer (3 digits) + `-` + counter (11).
const KEY_BYTES: usize = 16;
/// Replication factors measured, on a cluster of [`NODES`].
const REPLICAS: [usize; 2] = [1, 3];
/// Servers of the loopback cluster.
const NODES: usize = 3;
/// Share of the baseline (raw writes, the slower catch-up bound) logkv
/// should reach.
const TARGET_SHARE: f64 = 0.8;
/// A single writer's median latency may exceed a raw publish's by this much
/// (the node signs, applies and answers on top of the publish).
const LATENCY_ALLOWANCE: Duration = Duration::from_micros(150);
/// The stream RESP commands use by default (`0x` and 64 zeros).
const RESP_STREAM: StreamId = StreamId([0; 32]);
/// Bounds on waits: hang detectors, not measurements.
const READY_PATIENCE: Duration = Duration::from_secs(300);
const STOP_PATIENCE: Duration = Duration::from_secs(30);
/// `/readyz` polling interval while timing a catch-up.
const POLL: Duration = Duration::from_millis(5);
/// Entries published at once when the catch-up stream is written without
/// a node (the server has no `--log`).
const DIRECT_BATCH: usize = 64;

/// Runs the section.
pub fn run(ctx: &mut Ctx) -> Res<Table> {
    let mut t = Table::default();
    let Some(server) = nats_server() else {
        progress("  no nats-server (set LOGKV_NATS_SERVER, or install it); section skipped");
        t.note(
            "skipped: no nats-server binary ($LOGKV_NATS_SERVER, nats-server on PATH, /usr/sbin/nats-server)",
        );
        return Ok(t);
    };
    let logkv = logkv_binary();
    if let Err(why) = &logkv {
        progress(format!("  logkv node not measured: {why}"));
    }
    let load_before = load_average();
    let dir = ctx.root.join("nats");
    fresh(&dir)?;
    std::fs::create_dir_all(&dir)?;

    progress(format!("  starting a {NODES}-node JetStream cluster ({})", server.display()));
    let cluster = Cluster::start(&dir.join("cluster"), &server)?;
    progress(format!("  cluster up: {}", cluster.urls));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(threads()).enable_all().build()?;
    let servers: Vec<&str> = cluster.urls.split(',').collect();
    let js = rt.block_on(async {
        let client =
            async_nats::ConnectOptions::new().name("logkv-bench").connect(servers.as_slice()).await?;
        // The context spawns its acker on the runtime it is made in.
        Ok::<_, async_nats::ConnectError>(jetstream::new(client))
    })?;

    let sizes = Sizes::compute();
    let run = ctx.sizes.nats_run;
    let warmup = run / 5;
    let n = ctx.sizes.nats_entries;
    let runs = ctx.sizes.runs;
    let mut catchup_bytes = 0.0;

    for replicas in REPLICAS {
        // (a) writes.
        let logkv_node = match &logkv {
            Ok(bin) => {
                let stream = format!("BENCH_W_R{replicas}");
                delete_stream(&rt, &js, &stream)?;
                progress(format!("  R{replicas}: starting a logkv node on stream {stream}"));
                let mut node = Node::spawn(bin, &cluster.urls, &stream, replicas, &dir, "writes")?;
                node.wait_ready()?;
                Some((node, stream))
            }
            Err(_) => None,
        };
        for &writers in ctx.sizes.nats_writers {
            progress(format!(
                "  R{replicas}: raw JetStream publishes, {writers} tasks, {}",
                dur(warmup + run)
            ));
            cluster.settle();
            let raw = rt.block_on(raw_writes(&js, replicas, writers, sizes.raw_message, warmup, run))?;
            let raw_rate = raw.rate();
            let figure = format!("R{replicas}, {writers} writers: writes/s");
            let Some((node, stream)) = &logkv_node else {
                t.row(
                    Row::new(figure, "-")
                        .baseline(format!("{} (raw)", rate(raw_rate)))
                        .note("logkv not measured (see below)"),
                );
                continue;
            };
            progress(format!("  R{replicas}: logkv SET, {writers} clients, {}", dur(warmup + run)));
            cluster.settle();
            let w =
                logkv_writes(node, writers, sizes.value, warmup, run, || last_sequence(&rt, &js, stream))?;
            let wps = w.rate();
            t.row(
                Row::new(figure, rate(wps))
                    .baseline(format!("{} (raw)", rate(raw_rate)))
                    .ratio(times(wps / raw_rate))
                    .target(">= 0.80x raw", Target::AtLeast(TARGET_SHARE * raw_rate), wps),
            );
            let per_write = w.entries as f64 / w.writes.max(1) as f64;
            let published =
                Row::new("  entries published per write", format!("{per_write:.3}")).baseline("1.000 (raw)");
            t.row(match w.entries_signed_per_write {
                Some(per) => published.note(format!("/metrics: {per:.3} signed per write")),
                None => published,
            });
            let latency = Row::new(format!("  R{replicas}, {writers} writers: p50 latency"), dur(w.p50))
                .baseline(format!("{} (raw)", dur(raw.p50)));
            t.row(if writers == 1 {
                let allowed = raw.p50 + LATENCY_ALLOWANCE;
                latency.target(
                    format!("<= raw + {}", dur(LATENCY_ALLOWANCE)),
                    Target::AtMost(allowed.as_secs_f64()),
                    w.p50.as_secs_f64(),
                )
            } else {
                latency
            });
        }
        if let Some((node, stream)) = logkv_node {
            node.stop()?;
            delete_stream(&rt, &js, &stream)?;
        }

        // (b) catch-up.
        let stream = format!("BENCH_C_R{replicas}");
        delete_stream(&rt, &js, &stream)?;
        let written = match &logkv {
            Ok(bin) => write_through_node(bin, &cluster.urls, &stream, replicas, &dir, n, sizes.value)?,
            Err(_) => write_directly(&cluster.urls, &stream, replicas, n, sizes.value)?,
        };
        let last = last_sequence(&rt, &js, &stream)?;

        // Rounds of read bound, verify bound and catch-up, so each figure
        // is taken next to the others (the cores may be shared).
        let (mut consumed, mut verified, mut caught, mut late) =
            (Runs::default(), Runs::default(), Runs::default(), Runs::default());
        let (mut count, mut bytes, mut received) = (0.0, 0.0, None);
        for i in 1..=runs {
            progress(format!(
                "  R{replicas}: round {i} of {runs}: raw ordered consumer over {} entries, verify_entries{}",
                thousands(last as f64),
                if logkv.is_ok() { ", catch-up of a fresh node" } else { "" }
            ));
            cluster.settle();
            let (took, entries) = rt.block_on(read_all(&js, &stream))?;
            consumed.push(took);
            count = entries.len() as f64;
            bytes = entries.iter().map(Bytes::len).sum::<usize>() as f64;
            cluster.settle();
            let began = Instant::now();
            let verdicts = verify_entries(&entries);
            verified.push(began.elapsed());
            let bad = verdicts.iter().filter(|v| **v != Some(true)).count();
            if bad > 0 {
                return Err(format!("{bad} of the stream's entries do not verify").into());
            }
            drop(entries);
            if let Ok(bin) = &logkv {
                cluster.settle();
                let c = catch_up(bin, &cluster.urls, &stream, replicas, &dir, last)?;
                caught.push(c.ready);
                if let Some(applied) = c.applied {
                    late.push(applied);
                }
                received = c.received;
            }
        }
        catchup_bytes = bytes / count.max(1.0);
        progress(format!("  R{replicas}: logkv-nats Follower over the stream"));
        cluster.settle();
        let follower = follow_all(&cluster.urls, &stream, replicas, last)?;

        let read_rate = per_sec(count, consumed.median());
        let verify_rate = per_sec(count, verified.median());
        let (slower, slower_name) =
            if read_rate <= verify_rate { (read_rate, "read") } else { (verify_rate, "verify") };

        match &logkv {
            Ok(_) => {
                let took = caught.median();
                let eps = per_sec(count, took);
                t.row(
                    Row::new(
                        format!("R{replicas}, catch-up of {} entries: entries/s", thousands(count)),
                        rate(eps),
                    )
                    .baseline(format!("{} ({slower_name} bound)", rate(slower)))
                    .ratio(times(eps / slower))
                    .target(
                        ">= 80% of the slower bound",
                        Target::AtLeast(TARGET_SHARE * slower),
                        eps,
                    ),
                );
                t.row(
                    Row::new("  MB/s", format!("{:.1} MB/s", mb_per_sec(bytes, took)))
                        .baseline(format!("{:.1} MB/s (read bound)", mb_per_sec(bytes, consumed.median()))),
                );
                t.row(Row::new("  spawn to /readyz = 200", dur(took)));
                if let Some(r) = received {
                    t.row(
                        Row::new("  received from NATS", format!("{:.1} MB", r / 1e6))
                            .baseline(format!("{:.1} MB (entries)", bytes / 1e6))
                            .ratio(times(r / bytes)),
                    );
                }
                if runs > 1 {
                    t.row(Row::new("  range over runs (entries/s)", caught.rate_range(count)));
                }
                if late.len() > 0 {
                    t.row(
                        Row::new("  spawn to applied = stream tail", dur(late.median()))
                            .note("/readyz came before the node had applied the stream"),
                    );
                }
            }
            Err(_) => t.row(
                Row::new(format!("R{replicas}, catch-up of {} entries: entries/s", thousands(count)), "-")
                    .baseline(format!("{} ({slower_name} bound)", rate(slower)))
                    .note("logkv not measured (see below)"),
            ),
        }
        t.row(Row::new("  bound: raw ordered consumer, entries/s", rate(read_rate)));
        if runs > 1 {
            t.row(Row::new("    range over runs", consumed.rate_range(count)));
        }
        t.row(Row::new(
            format!("  bound: verify_entries on {} cores, entries/s", threads()),
            rate(verify_rate),
        ));
        if runs > 1 {
            t.row(Row::new("    range over runs", verified.rate_range(count)));
        }
        t.row(Row::new("  logkv-nats Follower (all subjects), entries/s", rate(per_sec(count, follower))));
        if written != last {
            t.note(format!(
                "R{replicas}: the catch-up stream holds {} entries for {} writes",
                thousands(last as f64),
                thousands(written as f64)
            ));
        }
        delete_stream(&rt, &js, &stream)?;
    }
    drop(js);
    drop(rt);
    let version = server_version(&cluster.server);
    cluster.stop()?;

    t.note(format!(
        "cluster: {NODES} nats-server {} on loopback (scripts/nats-cluster.sh, file storage, default sync), R1 and \
         R3 streams; one client connection each for the raw runs",
        version
    ));
    t.note(format!(
        "writes: raw = C tasks each publishing a {} B message and awaiting its ack, in a loop; logkv = C RESP \
         clients each sending SET ({KEY_BYTES} B key, {} B value: a {} B single-write entry) and awaiting +OK; \
         {} timed after a {} warm-up",
        sizes.raw_message,
        sizes.value,
        sizes.entry,
        dur(run),
        dur(warmup)
    ));
    t.note(
        "entries published per write: the stream's sequence over the timed window / the writes (logkv batches \
         concurrent writes into one entry)",
    );
    t.note(format!(
        "catch-up: a node on an empty data dir (--durability none) timed from spawn to /readyz = 200; stream of \
         single-SET entries of {catchup_bytes:.0} B on average; bounds: an ordered push consumer from sequence 1 \
         counting messages until pending = 0, and verify_entries of what it read; median of {runs} run(s)"
    ));
    t.note(format!(
        "1-minute load average at the start and the end of the section: {load_before} and {} on {} cores (other \
         work on the machine shares the cores with the cluster, the nodes and the bounds)",
        load_average(),
        threads()
    ));
    if let Err(why) = &logkv {
        t.note(format!(
            "logkv not measured: {why}; the catch-up stream was written with logkv-nats (JetStreamLog) instead"
        ));
    }
    Ok(t)
}

/// The 1-minute load average, as the kernel prints it.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// The sizes of a write: the raw message matches one single-`SET` entry.
struct Sizes {
    value: usize,
    entry: usize,
    raw_message: usize,
}

impl Sizes {
    fn compute() -> Sizes {
        let overhead = set_entry(&the_signer(), 1, &key(0, 0), &[]).len();
        let value = ENTRY_BYTES.saturating_sub(overhead);
        let entry = set_entry(&the_signer(), 1, &key(0, 0), &vec![0; value]).len();
        Sizes { value, entry, raw_message: entry }
    }
}

fn the_signer() -> Signer {
    Signer::from_secret_bytes([9; 32]).expect("a valid secret")
}

/// The key writer `w` uses for its `i`th write ([`KEY_BYTES`] long).
fn key(w: usize, i: u64) -> Vec<u8> {
    let k = format!("w{:03}-{:011}", w % 1000, i % 100_000_000_000);
    debug_assert_eq!(k.len(), KEY_BYTES);
    k.into_bytes()
}

/// The entry a node makes of one `SET key value` on the RESP stream
/// (`logkv_server::session::writes::transaction` with one put).
fn set_entry(signer: &Signer, nonce: u64, key: &[u8], value: &[u8]) -> Vec<u8> {
    let body = native::Body {
        version: u64::MAX,
        check_reads_only: true,
        reads: Vec::new(),
        writes: vec![BodyWrite {
            stream: RESP_STREAM,
            key: key.to_vec(),
            op: Op::Put(value.to_vec().into()),
        }],
        controls: Vec::new(),
    };
    let tx = TxPart { codec: NATIVE, tags: vec![RESP_STREAM], body: native::encode(&body) };
    Entry { sender: signer.address(), nonce, txs: vec![tx] }.encode_signed(signer).expect("encodes")
}

/// A value of `len` bytes that differs per write.
fn value_of(len: usize, i: u64) -> Vec<u8> {
    let mut v = vec![b'v'; len];
    let tag = i.to_string();
    let n = tag.len().min(len);
    v[..n].copy_from_slice(&tag.as_bytes()[..n]);
    v
}

// ---------------------------------------------------------------- binaries

/// `$LOGKV_NATS_SERVER`, else `nats-server` on PATH, else Debian's.
fn nats_server() -> Option<PathBuf> {
    if let Some(s) = std::env::var_os("LOGKV_NATS_SERVER").filter(|s| !s.is_empty()) {
        return Some(PathBuf::from(s));
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("nats-server"))
        .find(|p| p.is_file());
    on_path.or_else(|| Some(PathBuf::from("/usr/sbin/nats-server")).filter(|p| p.is_file()))
}

fn server_version(server: &Path) -> String {
    Command::new(server)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.split_whitespace().last().map(str::to_string))
        .unwrap_or_else(|| "(version unknown)".into())
}

/// The workspace this bench was built from.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The release `logkv` binary with shared-log support, built first when
/// cargo is at hand; `Err` says why there is none.
fn logkv_binary() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("no current exe: {e}"))?;
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    // target/<profile>/ -> target/release/
    let release = dir.parent().map_or_else(|| dir.clone(), |t| t.join("release"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    progress("  building the logkv binary (cargo build --release -p logkv)");
    let built = Command::new(&cargo)
        .args(["build", "--release", "--quiet", "-p", "logkv"])
        .current_dir(workspace())
        .status();
    match built {
        Ok(s) if s.success() => {}
        Ok(s) => progress(format!("  cargo build -p logkv failed ({s}); using the binary there is, if any")),
        Err(e) => progress(format!("  cannot run cargo ({e}); using the binary there is, if any")),
    }
    let bin = [dir.join("logkv"), release.join("logkv")]
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| format!("no logkv binary in {} or {}", dir.display(), release.display()))?;
    let help = Command::new(&bin)
        .args(["serve", "--help"])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    let help = String::from_utf8_lossy(&help.stdout);
    if !help.contains("--log-stream") {
        return Err(format!("{} serve has no --log/--log-stream (the shared-log mode)", bin.display()));
    }
    Ok(bin)
}

// ----------------------------------------------------------------- cluster

/// A loopback JetStream cluster run by `scripts/nats-cluster.sh`; stopped
/// when dropped.
struct Cluster {
    dir: PathBuf,
    server: PathBuf,
    urls: String,
    running: bool,
}

fn script() -> PathBuf {
    workspace().join("scripts/nats-cluster.sh")
}

impl Cluster {
    fn start(dir: &Path, server: &Path) -> Res<Cluster> {
        let mut last_error = String::new();
        for _attempt in 0..5 {
            let base = free_port_base()?;
            let out = Command::new("bash")
                .arg(script())
                .args(["start"])
                .arg(dir)
                .args(["--nodes", &NODES.to_string(), "--port", &base.to_string()])
                .env("NATS_SERVER", server)
                .stdin(Stdio::null())
                .output()?;
            if out.status.success() {
                let stdout = String::from_utf8_lossy(&out.stdout);
                let urls = stdout.lines().last().unwrap_or_default().trim().to_string();
                return Ok(Cluster {
                    dir: dir.to_path_buf(),
                    server: server.to_path_buf(),
                    urls,
                    running: true,
                });
            }
            // Another process may have taken a port since it was probed.
            last_error = String::from_utf8_lossy(&out.stderr).into_owned();
        }
        Err(format!("nats-cluster.sh start failed:\n{last_error}").into())
    }

    fn stop(mut self) -> Res<()> {
        self.running = false;
        let out =
            Command::new("bash").arg(script()).arg("stop").arg(&self.dir).stdin(Stdio::null()).output()?;
        if !out.status.success() {
            return Err(format!("nats-cluster.sh stop: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.running {
            let _ =
                Command::new("bash").arg(script()).arg("stop").arg(&self.dir).stdin(Stdio::null()).status();
        }
    }
}

/// Quiet: the servers use less than this share of one core.
const QUIET_SHARE: f64 = 0.05;
/// Window over which the servers' CPU use is sampled.
const QUIET_WINDOW: Duration = Duration::from_millis(250);
/// Longest wait for the servers to go quiet.
const QUIET_PATIENCE: Duration = Duration::from_secs(30);

impl Cluster {
    /// CPU time the servers have used so far.
    fn cpu_time(&self) -> Duration {
        // SAFETY: sysconf has no preconditions.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        let total: u64 = (1..=NODES)
            .filter_map(|i| std::fs::read_to_string(self.dir.join(format!("n{i}.pid"))).ok())
            .filter_map(|pid| std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).ok())
            .filter_map(|stat| {
                // Fields after the command's closing parenthesis: state is
                // field 3, utime 14 and stime 15.
                let rest = stat.rsplit_once(')')?.1;
                let f: Vec<&str> = rest.split_whitespace().collect();
                Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
            })
            .sum();
        Duration::from_secs_f64(total as f64 / ticks)
    }

    /// Waits until the servers are idle (background work after a load:
    /// Raft snapshots, stream deletions), so a timed run does not share
    /// the cores with it. Says so when that took a while.
    fn settle(&self) {
        let began = Instant::now();
        loop {
            let (cpu, t) = (self.cpu_time(), Instant::now());
            std::thread::sleep(QUIET_WINDOW);
            let share = (self.cpu_time() - cpu).as_secs_f64() / t.elapsed().as_secs_f64();
            if share < QUIET_SHARE {
                break;
            }
            if began.elapsed() > QUIET_PATIENCE {
                progress(format!(
                    "    the servers still use {:.0}% of a core; measuring anyway",
                    share * 100.0
                ));
                break;
            }
        }
        if began.elapsed() > Duration::from_secs(1) {
            progress(format!("    waited {} for the servers to go idle", dur(began.elapsed())));
        }
    }
}

/// A base port B with B.., B+100.. and B+200.. free for [`NODES`] servers.
fn free_port_base() -> Res<u16> {
    let seed = std::process::id() as u64 ^ Instant::now().elapsed().as_nanos() as u64;
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for _ in 0..200 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let base = 20_000 + (x % 30_000) as u16;
        let ports = (0..NODES as u16).flat_map(|i| [base + i, base + 100 + i, base + 200 + i]);
        let held: Result<Vec<_>, _> = ports.map(|p| TcpListener::bind(("127.0.0.1", p))).collect();
        if held.is_ok() {
            return Ok(base);
        }
    }
    Err("no free port range for the NATS cluster".into())
}

/// `nats://H:P,H:P,...` as `--log` takes it, from the script's list
/// (`nats://H:P,nats://H:P,...`).
fn log_url(urls: &str) -> String {
    let hosts: Vec<&str> = urls.split(',').map(|u| u.trim().trim_start_matches("nats://")).collect();
    format!("nats://{}", hosts.join(","))
}

fn free_port() -> Res<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

// ------------------------------------------------------------- JetStream

async fn delete_stream_async(js: &Context, name: &str) {
    let _ = js.delete_stream(name).await;
}

fn delete_stream(rt: &Runtime, js: &Context, name: &str) -> Res<()> {
    rt.block_on(delete_stream_async(js, name));
    Ok(())
}

fn last_sequence(rt: &Runtime, js: &Context, name: &str) -> Res<u64> {
    rt.block_on(async {
        let mut stream = js.get_stream(name).await?;
        Ok(stream.info().await?.state.last_sequence)
    })
}

/// Writes done in a timed window.
struct Window {
    writes: u64,
    took: Duration,
    /// Stream entries published in the window.
    entries: u64,
    /// `logkv_entries_signed_total` over the window, per write.
    entries_signed_per_write: Option<f64>,
    /// Median time from sending a write to its acknowledgement, over the
    /// writes that finished in the window.
    p50: Duration,
}

impl Window {
    fn rate(&self) -> f64 {
        per_sec(self.writes as f64, self.took)
    }
}

/// `writers` tasks each publishing `bytes`-byte messages and awaiting each
/// ack, on a fresh stream of `replicas`; counted over `run` after `warmup`.
async fn raw_writes(
    js: &Context,
    replicas: usize,
    writers: usize,
    bytes: usize,
    warmup: Duration,
    run: Duration,
) -> Res<Window> {
    let name = format!("BENCH_RAW_R{replicas}");
    delete_stream_async(js, &name).await;
    js.create_stream(Config {
        name: name.clone(),
        subjects: vec![format!("{name}.>")],
        storage: StorageType::File,
        num_replicas: replicas,
        ..Default::default()
    })
    .await?;
    let count = Arc::new(AtomicU64::new(0));
    let (timing, stop) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let payload = Bytes::from(vec![b'x'; bytes]);
    let tasks: Vec<_> = (0..writers)
        .map(|_| {
            let (js, count, payload) = (js.clone(), count.clone(), payload.clone());
            let (timing, stop) = (timing.clone(), stop.clone());
            let subject = format!("{name}.m");
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let began = Instant::now();
                    js.publish(subject.clone(), payload.clone()).await?.await?;
                    if timing.load(Ordering::Relaxed) {
                        latencies.push(began.elapsed());
                    }
                    count.fetch_add(1, Ordering::Relaxed);
                }
                Ok::<_, Box<dyn Error + Send + Sync>>(latencies)
            })
        })
        .collect();
    tokio::time::sleep(warmup).await;
    timing.store(true, Ordering::Relaxed);
    let (c0, t0) = (count.load(Ordering::Relaxed), Instant::now());
    tokio::time::sleep(run).await;
    let (c1, took) = (count.load(Ordering::Relaxed), t0.elapsed());
    timing.store(false, Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await?.map_err(|e| e.to_string())?);
    }
    delete_stream_async(js, &name).await;
    let p50 = median(latencies);
    Ok(Window { writes: c1 - c0, took, entries: c1 - c0, entries_signed_per_write: None, p50 })
}

/// The median of `latencies` (zero if there are none).
fn median(mut latencies: Vec<Duration>) -> Duration {
    latencies.sort_unstable();
    latencies.get(latencies.len() / 2).copied().unwrap_or_default()
}

/// Reads the whole stream through an ordered push consumer, counting
/// messages until the server says none is pending; returns the time and
/// the entries.
async fn read_all(js: &Context, name: &str) -> Res<(Duration, Vec<Bytes>)> {
    let stream = js.get_stream(name).await?;
    let began = Instant::now();
    let consumer = stream
        .create_consumer(OrderedConfig {
            // Without one the server takes it for a pull consumer.
            deliver_subject: js.client().new_inbox(),
            filter_subject: format!("{name}.>"),
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    let mut entries = Vec::new();
    while let Some(m) = tokio::time::timeout(Duration::from_secs(30), messages.next()).await? {
        let m = m?;
        let pending = m.info().map_err(|e| e.to_string())?.pending;
        entries.push(m.message.payload);
        if pending == 0 {
            break;
        }
    }
    Ok((began.elapsed(), entries))
}

/// The time logkv-nats's [`logkv_nats::Follower`] takes to hand over every
/// entry up to `last`, reading the whole stream.
fn follow_all(urls: &str, stream: &str, replicas: usize, last: u64) -> Res<Duration> {
    let log = JetStreamLog::open(&NatsConfig::new(&log_url(urls), stream, replicas)?)?;
    let began = Instant::now();
    let mut follower = log.follow(1, &Watched::All);
    let mut through = 0;
    while through < last {
        let next = async { tokio::time::timeout(Duration::from_secs(30), follower.next(usize::MAX)).await };
        let batch = log.handle().block_on(next).map_err(|_| "the follower stalled for 30 s")??;
        through = batch.through;
    }
    Ok(began.elapsed())
}

/// Writes `n` entries of one `SET` each without a node (logkv-nats
/// appends of entries shaped as a node makes them), when no node can run.
fn write_directly(urls: &str, stream: &str, replicas: usize, n: usize, value: usize) -> Res<u64> {
    let log = JetStreamLog::open(&NatsConfig::new(&log_url(urls), stream, replicas)?)?;
    let signer = the_signer();
    let began = Instant::now();
    let mut shown = Instant::now();
    let mut i = 0u64;
    while (i as usize) < n {
        let batch: Vec<bytes::Bytes> = (i..(i + DIRECT_BATCH as u64).min(n as u64))
            .map(|j| set_entry(&signer, j + 1, &key(0, j), &value_of(value, j)).into())
            .collect();
        log.handle().block_on(log.append(&batch))?;
        i += batch.len() as u64;
        if shown.elapsed() > Duration::from_secs(5) {
            shown = Instant::now();
            progress(format!("    written {} of {}", thousands(i as f64), thousands(n as f64)));
        }
    }
    progress(format!("    {} entries written (logkv-nats) in {}", thousands(n as f64), dur(began.elapsed())));
    Ok(n as u64)
}

// ------------------------------------------------------------ logkv node

/// A `logkv serve --log nats://...` child process; stopped when dropped.
struct Node {
    child: Option<Child>,
    resp: SocketAddr,
    http: SocketAddr,
    output: PathBuf,
    spawned: Instant,
}

impl Node {
    /// Spawns a node on an empty data directory `parent/label-N`.
    fn spawn(bin: &Path, urls: &str, stream: &str, replicas: usize, parent: &Path, label: &str) -> Res<Node> {
        let mut data = parent.join(label);
        let mut k = 0;
        while data.exists() {
            k += 1;
            data = parent.join(format!("{label}-{k}"));
        }
        std::fs::create_dir_all(&data)?;
        let output = data.with_extension("log");
        let resp = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let http = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let log = File::create(&output)?;
        let spawned = Instant::now();
        let child = Command::new(bin)
            .arg("serve")
            .arg("--log")
            .arg(log_url(urls))
            .args(["--log-stream", stream, "--replicas", &replicas.to_string(), "--durability", "none"])
            .arg("--data-dir")
            .arg(&data)
            .args(["--resp", &resp.to_string(), "--http", &http.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        Ok(Node { child: Some(child), resp, http, output, spawned })
    }

    /// Waits for `/readyz` = 200 and returns the time since spawn.
    fn wait_ready(&mut self) -> Res<Duration> {
        loop {
            if let Ok((200, _)) = http_get(self.http, "/readyz") {
                return Ok(self.spawned.elapsed());
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().transpose()) {
                self.child = None;
                return Err(format!("logkv exited ({}) before ready:\n{}", status?, self.tail()).into());
            }
            if self.spawned.elapsed() > READY_PATIENCE {
                return Err(format!("logkv not ready after {}:\n{}", dur(READY_PATIENCE), self.tail()).into());
            }
            std::thread::sleep(POLL);
        }
    }

    /// The node's `/metrics`, as name -> value (labelled series included
    /// under their full name).
    fn metrics(&self) -> Res<HashMap<String, f64>> {
        let (status, body) = http_get(self.http, "/metrics")?;
        if status != 200 {
            return Err(format!("/metrics answered {status}").into());
        }
        Ok(body
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.rsplit_once(' '))
            .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
            .collect())
    }

    fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.output).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// SIGTERM, then waits for the exit (SIGKILL after a while).
    fn stop(mut self) -> Res<()> {
        self.terminate()
    }

    fn terminate(&mut self) -> Res<()> {
        let Some(mut child) = self.child.take() else { return Ok(()) };
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + STOP_PATIENCE;
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait()? {
                return if status.success() || status.code().is_none() {
                    Ok(())
                } else {
                    Err(format!("logkv exited with {status} on SIGTERM:\n{}", self.tail()).into())
                };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        progress(format!("  logkv ignored SIGTERM for {}; SIGKILL", dur(STOP_PATIENCE)));
        child.kill()?;
        child.wait()?;
        Ok(())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.terminate();
    }
}

/// `GET path` over HTTP/1.0 (the server closes after the answer).
fn http_get(addr: SocketAddr, path: &str) -> Res<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).ok_or("not an HTTP answer")?;
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_string();
    Ok((status, body))
}

/// A RESP connection sending `SET` and awaiting `+OK`.
struct Resp {
    conn: BufReader<TcpStream>,
    request: Vec<u8>,
    line: String,
}

impl Resp {
    fn connect(addr: SocketAddr) -> std::io::Result<Resp> {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(120)))?;
        Ok(Resp { conn: BufReader::new(s), request: Vec::new(), line: String::new() })
    }

    fn set(&mut self, key: &[u8], value: &[u8]) -> Res<()> {
        self.request.clear();
        write!(self.request, "*3\r\n$3\r\nSET\r\n${}\r\n", key.len())?;
        self.request.extend_from_slice(key);
        write!(self.request, "\r\n${}\r\n", value.len())?;
        self.request.extend_from_slice(value);
        self.request.extend_from_slice(b"\r\n");
        self.conn.get_mut().write_all(&self.request)?;
        self.line.clear();
        self.conn.read_line(&mut self.line)?;
        if self.line != "+OK\r\n" {
            return Err(format!("SET answered {:?}", self.line.trim_end()).into());
        }
        Ok(())
    }
}

/// `logkv_entries_signed_total`, if the node exports it.
fn entries_signed(node: &Node) -> Option<f64> {
    node.metrics().ok()?.get("logkv_entries_signed_total").copied()
}

/// `writers` RESP clients each doing `SET` (a `value`-byte value) in a
/// loop; counted over `run` after `warmup`, with the stream's entries over
/// the same window (`sequence` reads the stream's last sequence).
fn logkv_writes(
    node: &Node,
    writers: usize,
    value: usize,
    warmup: Duration,
    run: Duration,
    sequence: impl Fn() -> Res<u64>,
) -> Res<Window> {
    let count = AtomicU64::new(0);
    let (timing, stop) = (AtomicBool::new(false), AtomicBool::new(false));
    std::thread::scope(|s| -> Res<Window> {
        let handles: Vec<_> = (0..writers)
            .map(|w| {
                let (count, timing, stop, addr) = (&count, &timing, &stop, node.resp);
                s.spawn(move || -> Result<Vec<Duration>, String> {
                    let mut conn = Resp::connect(addr).map_err(|e| e.to_string())?;
                    let v = value_of(value, w as u64);
                    let (mut i, mut latencies) = (0u64, Vec::new());
                    while !stop.load(Ordering::Relaxed) {
                        let began = Instant::now();
                        conn.set(&key(w, i), &v).map_err(|e| e.to_string())?;
                        if timing.load(Ordering::Relaxed) {
                            latencies.push(began.elapsed());
                        }
                        count.fetch_add(1, Ordering::Relaxed);
                        i += 1;
                    }
                    Ok(latencies)
                })
            })
            .collect();
        std::thread::sleep(warmup);
        timing.store(true, Ordering::Relaxed);
        let (c0, s0, e0, t0) =
            (count.load(Ordering::Relaxed), sequence()?, entries_signed(node), Instant::now());
        std::thread::sleep(run);
        let (c1, took) = (count.load(Ordering::Relaxed), t0.elapsed());
        timing.store(false, Ordering::Relaxed);
        let (s1, e1) = (sequence()?, entries_signed(node));
        stop.store(true, Ordering::Relaxed);
        let mut latencies = Vec::new();
        for h in handles {
            latencies.extend(h.join().expect("a writer panicked")?);
        }
        let writes = c1 - c0;
        let signed = e0.zip(e1).map(|(a, b)| (b - a) / writes.max(1) as f64);
        Ok(Window {
            writes,
            took,
            entries: s1 - s0,
            entries_signed_per_write: signed,
            p50: median(latencies),
        })
    })
}

/// Writes `n` single-`SET` entries through a fresh node, one client, one
/// write at a time (so each is its own entry).
fn write_through_node(
    bin: &Path,
    urls: &str,
    stream: &str,
    replicas: usize,
    parent: &Path,
    n: usize,
    value: usize,
) -> Res<u64> {
    progress(format!("  R{replicas}: writing {} entries through a logkv node", thousands(n as f64)));
    let mut node = Node::spawn(bin, urls, stream, replicas, parent, "catchup-writer")?;
    node.wait_ready()?;
    let mut conn = Resp::connect(node.resp)?;
    let began = Instant::now();
    let mut shown = Instant::now();
    for i in 0..n as u64 {
        conn.set(&key(0, i), &value_of(value, i))?;
        if shown.elapsed() > Duration::from_secs(5) {
            shown = Instant::now();
            progress(format!("    written {} of {}", thousands(i as f64 + 1.0), thousands(n as f64)));
        }
    }
    progress(format!("    {} writes in {}", thousands(n as f64), dur(began.elapsed())));
    drop(conn);
    node.stop()?;
    Ok(n as u64)
}

/// One catch-up: time from spawn to `/readyz` = 200, and to the applied
/// position reaching `last` if that came later.
struct CatchUp {
    ready: Duration,
    applied: Option<Duration>,
    /// `logkv_shared_log_received_bytes_total` once ready.
    received: Option<f64>,
}

fn catch_up(bin: &Path, urls: &str, stream: &str, replicas: usize, parent: &Path, last: u64) -> Res<CatchUp> {
    let mut node = Node::spawn(bin, urls, stream, replicas, parent, "catchup")?;
    let ready = node.wait_ready()?;
    let applied = |node: &Node| {
        let m = node.metrics().ok()?;
        m.get("logkv_shared_log_through").or_else(|| m.get("logkv_applied_position")).copied()
    };
    let mut late = None;
    if applied(&node).is_some_and(|p| (p as u64) < last) {
        while applied(&node).is_some_and(|p| (p as u64) < last) {
            if node.spawned.elapsed() > READY_PATIENCE {
                return Err(format!("the node applied {:?} of {last} entries", applied(&node)).into());
            }
            std::thread::sleep(POLL);
        }
        late = Some(node.spawned.elapsed());
    }
    let received = node.metrics().ok().and_then(|m| m.get("logkv_shared_log_received_bytes_total").copied());
    node.stop()?;
    Ok(CatchUp { ready, applied: late, received })
}
