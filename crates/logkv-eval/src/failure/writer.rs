//! The child side of the failure trials: `logkv-eval writer ...` writes
//! until it is killed, loads a data set and waits to be killed, or reopens
//! what a killed child left and times it.
//!
//! Everything the parent reads comes on stdout as lines, each written with
//! one `write` and flushed, so a `kill -9` can cut the stream only between
//! lines; lines the parent does not know are ignored.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::open_engine;
use crate::engine::EngineKind;
use crate::workload;

/// What the writer child does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WriterMode {
    /// Overwrite random keys of `0..keys` until killed, printing
    /// `ack <key> <write>` after every acknowledged write.
    Write,
    /// Write keys `0..keys` once (write number 0), printing `progress <n>`
    /// now and then and `loaded <n>` once every write is on stable storage
    /// (for engines that can tell, see `Engine::persisted_through`), then
    /// wait to be killed.
    Load,
    /// Open what a killed loader left, read key 0, print the open time and
    /// the keys found as one JSON line ([`ReopenReport`]) and exit.
    Reopen,
}

/// Arguments of the `writer` subcommand (the child of the failure trials).
#[derive(Debug, Clone, clap::Args)]
pub struct WriterArgs {
    /// Engine (and mode) to open.
    #[arg(long)]
    pub engine: EngineKind,
    /// Its data directory.
    #[arg(long)]
    pub dir: PathBuf,
    /// What to do.
    #[arg(long, value_enum, default_value_t = WriterMode::Write)]
    pub mode: WriterMode,
    /// The key space written (`write`) or the keys loaded (`load`, `reopen`).
    #[arg(long, default_value_t = 10_000)]
    pub keys: u64,
    /// Bytes per value.
    #[arg(long, default_value_t = 100)]
    pub value_bytes: usize,
    /// Seed of the key choice.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Writer threads; in `write` mode thread `t` writes only the keys
    /// `i` with `i % threads == t`.
    #[arg(long, default_value_t = 4)]
    pub threads: u32,
    /// Snapshot interval of the naive engine in milliseconds, instead of
    /// its default.
    #[arg(long)]
    pub naive_snapshot_ms: Option<u64>,
    /// Give up after this many seconds of writing or waiting, in case the
    /// parent never kills the child.
    #[arg(long, default_value_t = 120)]
    pub max_secs: u64,
}

impl WriterArgs {
    /// The arguments as a command line after the `writer` subcommand.
    pub fn to_args(&self) -> Vec<String> {
        let mode = match self.mode {
            WriterMode::Write => "write",
            WriterMode::Load => "load",
            WriterMode::Reopen => "reopen",
        };
        let mut a = vec![
            "--engine".to_string(),
            self.engine.name().to_string(),
            "--dir".to_string(),
            self.dir.display().to_string(),
            "--mode".to_string(),
            mode.to_string(),
            "--keys".to_string(),
            self.keys.to_string(),
            "--value-bytes".to_string(),
            self.value_bytes.to_string(),
            "--seed".to_string(),
            self.seed.to_string(),
            "--threads".to_string(),
            self.threads.to_string(),
            "--max-secs".to_string(),
            self.max_secs.to_string(),
        ];
        if let Some(ms) = self.naive_snapshot_ms {
            a.extend(["--naive-snapshot-ms".to_string(), ms.to_string()]);
        }
        a
    }
}

/// What a `reopen` child prints.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub(super) struct ReopenReport {
    /// Seconds from starting the open to the answer of the first read.
    pub open_secs: f64,
    /// Keys found among those checked, scaled to all `keys`.
    pub keys_found: u64,
    /// Keys checked (all of them up to [`REOPEN_CHECKED`]).
    pub checked: u64,
}

/// Most keys a `reopen` child reads back; beyond this many it checks this
/// many evenly spread keys and scales the count.
pub(super) const REOPEN_CHECKED: u64 = 100_000;

/// How often a loader reports progress.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// The `writer` subcommand.
pub fn writer_main(args: WriterArgs) -> Result<(), String> {
    if args.value_bytes < workload::VALUE_TAG_BYTES {
        return Err(format!("--value-bytes must be at least {}", workload::VALUE_TAG_BYTES));
    }
    if args.keys == 0 || args.threads == 0 {
        return Err("--keys and --threads must be positive".into());
    }
    match args.mode {
        WriterMode::Write => write(&args),
        WriterMode::Load => load(&args),
        WriterMode::Reopen => reopen(&args),
    }
}

/// Prints one line with a single write and flushes it.
fn say(line: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    out.write_all(line.as_bytes()).and_then(|()| out.flush()).map_err(|e| format!("stdout: {e}"))
}

/// Whether the process that started this one is gone (so nobody will kill
/// this one).
fn orphaned(parent: u32) -> bool {
    std::os::unix::process::parent_id() != parent
}

fn write(args: &WriterArgs) -> Result<(), String> {
    let parent = std::os::unix::process::parent_id();
    let engine = open_engine(args.engine, &args.dir, args.naive_snapshot_ms.map(Duration::from_millis))
        .map_err(|e| format!("opening {} in {}: {e}", args.engine, args.dir.display()))?;
    let deadline = Instant::now() + Duration::from_secs(args.max_secs);
    let next_write = AtomicU64::new(1);
    let threads = u64::from(args.threads).min(args.keys);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (engine, next_write) = (&engine, &next_write);
                s.spawn(move || -> Result<(), String> {
                    let mine = (args.keys - t).div_ceil(threads);
                    let mut rng = SmallRng::seed_from_u64(workload::mix(args.seed ^ (t << 32)));
                    let mut n = 0u64;
                    loop {
                        let i = t + threads * rng.random_range(0..mine);
                        let w = next_write.fetch_add(1, Ordering::Relaxed);
                        engine
                            .put(&workload::key(i), &workload::value(i, w, args.value_bytes))
                            .map_err(|e| format!("put of key {i}: {e}"))?;
                        say(&format!("ack {i} {w}\n"))?;
                        n += 1;
                        if n.is_multiple_of(256) && (Instant::now() >= deadline || orphaned(parent)) {
                            return Err(format!("not killed within {} s", args.max_secs));
                        }
                    }
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| w.join().map_err(|_| "a writer thread panicked".to_string())?)
    })
}

fn load(args: &WriterArgs) -> Result<(), String> {
    let parent = std::os::unix::process::parent_id();
    let engine = open_engine(args.engine, &args.dir, args.naive_snapshot_ms.map(Duration::from_millis))
        .map_err(|e| format!("opening {} in {}: {e}", args.engine, args.dir.display()))?;
    let threads = u64::from(args.threads).min(args.keys);
    let done = AtomicU64::new(0);
    let newest = std::thread::scope(|s| -> Result<u64, String> {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (engine, done) = (&engine, &done);
                s.spawn(move || -> Result<u64, String> {
                    let (from, to) = (args.keys * t / threads, args.keys * (t + 1) / threads);
                    let mut newest = 0;
                    for i in from..to {
                        let ticket = engine
                            .put(&workload::key(i), &workload::value(i, 0, args.value_bytes))
                            .map_err(|e| format!("put of key {i}: {e}"))?;
                        newest = newest.max(ticket);
                        if (i - from) % 1024 == 1023 {
                            done.fetch_add(1024, Ordering::Relaxed);
                        }
                    }
                    done.fetch_add((to - from) % 1024, Ordering::Relaxed);
                    Ok(newest)
                })
            })
            .collect();
        let mut said = Instant::now();
        while !workers.iter().all(|w| w.is_finished()) {
            std::thread::sleep(Duration::from_millis(20));
            if said.elapsed() >= PROGRESS_EVERY {
                said = Instant::now();
                say(&format!("progress {}\n", done.load(Ordering::Relaxed)))?;
            }
        }
        workers.into_iter().try_fold(0, |newest, w| {
            Ok(newest.max(w.join().map_err(|_| "a loader thread panicked".to_string())??))
        })
    })?;
    // An engine that can tell when writes are on stable storage is given
    // the time to get the whole load there (the naive engine's next
    // snapshot, logkv `periodic`'s window), so the reopen finds the data
    // set rather than what one window held.
    let deadline = Instant::now() + Duration::from_secs(args.max_secs);
    while engine.persisted_through().is_some_and(|p| p < newest) {
        if Instant::now() >= deadline || orphaned(parent) {
            return Err(format!("the load was not persisted within {} s", args.max_secs));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    say(&format!("loaded {}\n", done.load(Ordering::Relaxed)))?;
    let deadline = Instant::now() + Duration::from_secs(args.max_secs);
    while Instant::now() < deadline && !orphaned(parent) {
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("not killed within {} s of loading", args.max_secs))
}

fn reopen(args: &WriterArgs) -> Result<(), String> {
    let start = Instant::now();
    let engine = open_engine(args.engine, &args.dir, args.naive_snapshot_ms.map(Duration::from_millis))
        .map_err(|e| format!("reopening {} in {}: {e}", args.engine, args.dir.display()))?;
    let first = engine.get(&workload::key(0)).map_err(|e| format!("first read: {e}"))?;
    let open_secs = start.elapsed().as_secs_f64();
    let checked = args.keys.min(REOPEN_CHECKED);
    let mut found = 0u64;
    for j in 0..checked {
        let i = (u128::from(j) * u128::from(args.keys) / u128::from(checked)) as u64;
        let v =
            if i == 0 { first.clone() } else { engine.get(&workload::key(i)).map_err(|e| e.to_string())? };
        if v.is_some_and(|v| v.len() == args.value_bytes && workload::value_tag(&v) == Some((i, 0))) {
            found += 1;
        }
    }
    let keys_found = (u128::from(found) * u128::from(args.keys) / u128::from(checked)) as u64;
    let report = ReopenReport { open_secs, keys_found, checked };
    say(&(serde_json::to_string(&report).map_err(|e| e.to_string())? + "\n"))
}
