//! The child side of the kill -9 trials: `logkv-eval writer ...` writes
//! until it is killed.
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

/// Arguments of the `writer` subcommand (the child of the failure trials).
#[derive(Debug, Clone, clap::Args)]
pub struct WriterArgs {
    /// Engine (and mode) to open.
    #[arg(long)]
    pub engine: EngineKind,
    /// Its data directory.
    #[arg(long)]
    pub dir: PathBuf,
    /// The key space written.
    #[arg(long, default_value_t = 10_000)]
    pub keys: u64,
    /// Bytes per value.
    #[arg(long, default_value_t = 100)]
    pub value_bytes: usize,
    /// Seed of the key choice.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Writer threads; thread `t` writes only the keys
    /// `i` with `i % threads == t`.
    #[arg(long, default_value_t = 4)]
    pub threads: u32,
    /// Snapshot interval of the naive engine in milliseconds, instead of
    /// its default.
    #[arg(long)]
    pub naive_snapshot_ms: Option<u64>,
    /// Give up after this many seconds of writing, in case the
    /// parent never kills the child.
    #[arg(long, default_value_t = 120)]
    pub max_secs: u64,
}

impl WriterArgs {
    /// The arguments as a command line after the `writer` subcommand.
    pub fn to_args(&self) -> Vec<String> {
        let mut a = vec![
            "--engine".to_string(),
            self.engine.name().to_string(),
            "--dir".to_string(),
            self.dir.display().to_string(),
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

/// The `writer` subcommand.
pub fn writer_main(args: WriterArgs) -> Result<(), String> {
    if args.value_bytes < workload::VALUE_TAG_BYTES {
        return Err(format!("--value-bytes must be at least {}", workload::VALUE_TAG_BYTES));
    }
    if args.keys == 0 || args.threads == 0 {
        return Err("--keys and --threads must be positive".into());
    }
    write(&args)
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
