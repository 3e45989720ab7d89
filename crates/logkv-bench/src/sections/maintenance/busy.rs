//! Part 3: writes while maintenance runs. Writer threads overwrite
//! uniformly chosen keys of a store built by the overwrite-heavy workload,
//! (a) alone for a fixed window, (b) while `Store::checkpoint` loops for
//! the same window, (c) while `Store::compact` runs, for as long as it
//! runs, (d) alone again. Throughput and latency of (b) and (c) are set
//! against (a) and (d) together, in `always` and in `periodic` mode.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use logkv_store::{CompactionReport, Durability, MaintenanceOptions, Store};

use super::{overwrite_heavy, retain_one, Failure, OVERWRITES, SEED};
use crate::ctx::{fresh, Ctx};
use crate::data::{key, value};
use crate::report::{dur, pct, per_sec, progress, rate, thousands, Row, Table, Target};
use logkv_eval::machine::{usage, Usage};

/// Concurrent writers.
const WRITERS: u64 = 4;
/// Share of idle throughput writers must keep while a compaction runs.
const TARGET_OF_IDLE: f64 = 0.7;

/// What runs next to the writers.
#[derive(Clone, Copy)]
enum Job {
    /// Nothing, for the window.
    Idle,
    /// `Store::checkpoint` back to back, until the window is over.
    Checkpoints,
    /// One `Store::compact`; the window is as long as it takes.
    Compaction,
}

/// What the writers did during one window.
struct Window {
    puts: u64,
    took: Duration,
    latency: Histogram<u64>,
    checkpoints: u32,
    compaction: Option<CompactionReport>,
    /// Process CPU time (writers, store threads and the job).
    usage: Usage,
    /// The log's fdatasync calls and their total time.
    syncs: u64,
    sync_nanos: u64,
}

impl Window {
    fn rate(&self) -> f64 {
        per_sec(self.puts as f64, self.took)
    }

    /// "p50 / p99 / max" of put latency.
    fn latencies(&self) -> String {
        let at = |q: f64| dur(Duration::from_nanos(self.latency.value_at_quantile(q)));
        format!("{} / {} / {}", at(0.5), at(0.99), dur(Duration::from_nanos(self.latency.max())))
    }

    /// Both windows as one (for a baseline measured twice).
    fn and(mut self, other: Window) -> Window {
        self.puts += other.puts;
        self.took += other.took;
        self.latency.add(&other.latency).expect("histograms share bounds");
        self.usage = Usage {
            cpu: self.usage.cpu + other.usage.cpu,
            switches: self.usage.switches + other.usage.switches,
        };
        self.syncs += other.syncs;
        self.sync_nanos += other.sync_nanos;
        self
    }

    /// "cores busy / mean fdatasync of the log".
    fn load(&self) -> String {
        let cores = self.usage.cpu.as_secs_f64() / self.took.as_secs_f64();
        format!("{cores:.2} / {}", dur(Duration::from_nanos(self.sync_nanos / self.syncs.max(1))))
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("constant bounds are valid")
}

/// Runs `job` while `WRITERS` threads put values under random keys of `0..keys`.
fn window(store: &Store, keys: u64, job: Job, run: Duration) -> Result<Window, Failure> {
    let stop = AtomicBool::new(false);
    let start = Barrier::new(WRITERS as usize + 1);
    let (usage_before, log_before) = (usage(), store.log().stats().snapshot());
    let (writers, took, done) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..WRITERS)
            .map(|t| {
                let (stop, start) = (&stop, &start);
                s.spawn(move || -> Result<(u64, Histogram<u64>), Failure> {
                    let mut rng = StdRng::seed_from_u64(SEED + 1 + t);
                    let mut latency = histogram();
                    let mut puts = 0u64;
                    start.wait();
                    while !stop.load(Ordering::Relaxed) {
                        let i = rng.random_range(0..keys);
                        let began = Instant::now();
                        store.put(&key(i), &value(rng.random()))?;
                        latency.saturating_record(began.elapsed().as_nanos() as u64);
                        puts += 1;
                    }
                    Ok((puts, latency))
                })
            })
            .collect();
        start.wait();
        let began = Instant::now();
        let done = run_job(store, job, run);
        // Stop the writers even if the job failed, or the scope never ends.
        stop.store(true, Ordering::Relaxed);
        let took = began.elapsed();
        let writers: Vec<_> =
            handles.into_iter().map(|h| h.join().expect("writer thread panicked")).collect();
        (writers, took, done)
    });
    let (usage, log) = (usage() - usage_before, store.log().stats().snapshot());
    let (checkpoints, compaction) = done?;
    let mut w = Window {
        puts: 0,
        took,
        latency: histogram(),
        checkpoints,
        compaction,
        usage,
        syncs: log.syncs - log_before.syncs,
        sync_nanos: log.sync_nanos - log_before.sync_nanos,
    };
    for r in writers {
        let (puts, latency) = r?;
        w.puts += puts;
        w.latency.add(&latency).expect("histograms share bounds");
    }
    Ok(w)
}

/// Runs `job` for `run` (a compaction: to its end); returns the
/// checkpoints taken and the compaction's report.
fn run_job(store: &Store, job: Job, run: Duration) -> Result<(u32, Option<CompactionReport>), Failure> {
    let began = Instant::now();
    match job {
        Job::Idle => {
            std::thread::sleep(run);
            Ok((0, None))
        }
        Job::Checkpoints => {
            let mut n = 0;
            while began.elapsed() < run {
                store.checkpoint()?;
                n += 1;
            }
            Ok((n, None))
        }
        Job::Compaction => Ok((0, Some(store.compact(&mut |_, _| {})?))),
    }
}

/// The windows measured on one store.
struct Windows {
    idle_before: Window,
    checkpoints: Window,
    compaction: Window,
    /// Idle again once the compaction is done: the baseline is both idle
    /// windows, so a drift of the shared machine shows as their difference.
    idle_after: Window,
    /// Whether the store coalesced writes in memory.
    coalesces: bool,
}

/// The windows on a fresh overwrite-heavy store in `durability`.
fn measure(ctx: &Ctx, name: &str, durability: Durability) -> Result<Windows, Failure> {
    let n = ctx.sizes.upkeep_keys;
    let dir = ctx.root.join(format!("maintenance-busy-{name}"));
    fresh(&dir)?;
    progress(format!("  busy, {name}: loading {} keys, {OVERWRITES}x overwritten", thousands(n as f64)));
    let store = Store::open(&dir, retain_one(Durability::periodic_default()))?;
    overwrite_heavy(&store, n, "puts")?;
    // A checkpoint makes the reopen in the mode measured quick.
    store.checkpoint()?;
    store.close()?;
    let store = Store::open(&dir, retain_one(durability))?;
    let run = |job: Job, what: &str| {
        progress(format!("  busy, {name}: {WRITERS} writers, {what}"));
        window(&store, n as u64, job, ctx.sizes.upkeep_run)
    };
    let windows = Windows {
        idle_before: run(Job::Idle, "idle")?,
        checkpoints: run(Job::Checkpoints, "checkpoints")?,
        compaction: run(Job::Compaction, "compaction")?,
        idle_after: run(Job::Idle, "idle again")?,
        coalesces: store.coalesces(),
    };
    store.close()?;
    fresh(&dir)?;
    Ok(windows)
}

/// Runs part 3 into `t`.
pub(super) fn run(ctx: &Ctx, t: &mut Table) -> Result<(), Failure> {
    for (name, durability) in [("always", Durability::Always), ("periodic", Durability::periodic_default())] {
        let Windows { idle_before, checkpoints, compaction, idle_after, coalesces } =
            measure(ctx, name, durability)?;
        if coalesces {
            t.note(format!("busy, {name}: writes coalesce in memory (periodic, one version kept)"));
        }
        let (before, after) = (idle_before.rate(), idle_after.rate());
        let idle = idle_before.and(idle_after);
        let ratio = |w: &Window| w.rate() / idle.rate();
        t.row(Row::new(format!("{name}, {WRITERS} writers, idle: puts/s"), rate(idle.rate())));
        t.row(Row::new("  idle before / after the rest", format!("{} / {}", rate(before), rate(after))));
        t.row(Row::new("  latency p50 / p99 / max", idle.latencies()));
        t.row(Row::new("  CPU cores busy / mean fdatasync", idle.load()));
        t.row(
            Row::new(format!("{name}, checkpoints looping: puts/s"), rate(checkpoints.rate()))
                .baseline(rate(idle.rate()))
                .ratio(pct(ratio(&checkpoints))),
        );
        t.row(Row::new("  latency p50 / p99 / max", checkpoints.latencies()).baseline(idle.latencies()));
        t.row(Row::new("  CPU cores busy / mean fdatasync", checkpoints.load()).baseline(idle.load()));
        t.row(Row::new(
            "  checkpoints taken / mean time",
            format!(
                "{} / {}",
                checkpoints.checkpoints,
                dur(checkpoints.took / checkpoints.checkpoints.max(1))
            ),
        ));
        t.row(
            Row::new(format!("{name}, compaction running: puts/s"), rate(compaction.rate()))
                .baseline(rate(idle.rate()))
                .ratio(pct(ratio(&compaction)))
                .target(">= 70% of idle", Target::AtLeast(TARGET_OF_IDLE), ratio(&compaction)),
        );
        t.row(Row::new("  latency p50 / p99 / max", compaction.latencies()).baseline(idle.latencies()));
        t.row(Row::new("  CPU cores busy / mean fdatasync", compaction.load()).baseline(idle.load()));
        if let Some(c) = &compaction.compaction {
            t.row(Row::new(
                "  compaction: time / MB in / MB out",
                format!(
                    "{} / {:.0} / {:.0}",
                    dur(c.elapsed),
                    c.input_bytes as f64 / 1e6,
                    c.output_bytes as f64 / 1e6
                ),
            ));
        }
    }
    t.note(format!(
        "busy: {WRITERS} threads put 100 B values under uniformly random keys of a store built like the space \
         part's ({} keys); idle and checkpoint windows last {}, the compaction window as long as the \
         compaction (default rate limit {} MiB/s); baseline = the same writers idle on the same store, \
         one window before the checkpoints and one after the compaction",
        thousands(ctx.sizes.upkeep_keys as f64),
        dur(ctx.sizes.upkeep_run),
        MaintenanceOptions::default().compact_bytes_per_sec >> 20
    ));
    Ok(())
}
