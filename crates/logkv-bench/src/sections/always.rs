//! Section 2, `always` mode: throughput of concurrent `put`s that each wait
//! for their fdatasync, against the bound group commit could reach.

use std::error::Error;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use logkv_store::{Durability, Store};

use crate::ctx::{fresh, options, Ctx};
use crate::data::{key, value, SMALL_PUT_FRAME_BYTES};
use crate::report::{dur, pct, per_sec, progress, rate, thousands, times, Row, Table, Target};
use crate::sections::{fsync, group_commit};
use logkv_eval::machine::{usage, Usage};

/// Writer counts measured.
pub const WRITERS: [usize; 3] = [1, 4, 32];
/// Share of the bound required with 4 and 32 writers.
const TARGET_OF_BOUND: f64 = 0.8;
/// fdatasync calls timed just before each run, for its bound.
const PROBE_SYNCS: usize = 100;
/// Key indices of this section start here, far from the data sets' keys.
const KEY_BASE: u64 = 1 << 48;

struct RunResult {
    puts: u64,
    took: Duration,
    /// Process CPU time and context switches during the run.
    usage: Usage,
    /// Median fdatasync on a fresh segment-like file, measured just before
    /// and just after the run (the lower of the two).
    probe: Duration,
    syncs: u64,
    sync_nanos: u64,
    bytes: u64,
    latency: Histogram<u64>,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("constant bounds are valid")
}

type Failure = Box<dyn Error + Send + Sync>;

/// `n` threads put distinct keys into a fresh `always` store for `run`.
fn run_writers(ctx: &Ctx, n: usize, run: Duration) -> Result<RunResult, Failure> {
    let dir = ctx.root.join(format!("always-{n}"));
    fresh(&dir)?;
    let store = Store::open(&dir, options(Durability::Always))?;
    // The first append creates the first segment; keep that out of the run.
    store.put(&key(KEY_BASE - 1), &value(0))?;
    let probe = fsync::probe(&ctx.root, PROBE_SYNCS)?;
    let before = store.log().stats().snapshot();
    let usage_before = usage();
    let stop = AtomicBool::new(false);
    let start = Barrier::new(n + 1);
    let (per_thread, took) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n as u64)
            .map(|t| {
                let (store, stop, start) = (&store, &stop, &start);
                s.spawn(move || -> Result<(u64, Histogram<u64>), Failure> {
                    let mut latency = histogram();
                    let mut puts = 0u64;
                    start.wait();
                    while !stop.load(Ordering::Relaxed) {
                        let i = KEY_BASE + (t << 32) + puts;
                        let began = Instant::now();
                        store.put(&key(i), &value(i))?;
                        latency.saturating_record(began.elapsed().as_nanos() as u64);
                        puts += 1;
                    }
                    Ok((puts, latency))
                })
            })
            .collect();
        start.wait();
        let began = Instant::now();
        std::thread::sleep(run);
        stop.store(true, Ordering::Relaxed);
        let results: Vec<_> =
            handles.into_iter().map(|h| h.join().expect("writer thread panicked")).collect();
        (results, began.elapsed())
    });
    let usage = usage() - usage_before;
    let probe = probe.min(fsync::probe(&ctx.root, PROBE_SYNCS)?);
    let after = store.log().stats().snapshot();
    store.close()?;
    fresh(&dir)?;
    let mut latency = histogram();
    let mut puts = 0;
    for r in per_thread {
        let (p, h) = r?;
        puts += p;
        latency.add(&h).expect("histograms share bounds");
    }
    Ok(RunResult {
        puts,
        took,
        usage,
        probe,
        syncs: after.syncs - before.syncs,
        sync_nanos: after.sync_nanos - before.sync_nanos,
        bytes: after.bytes_written - before.bytes_written,
        latency,
    })
}

/// Runs the section.
pub fn run(ctx: &mut Ctx) -> Result<Table, Failure> {
    let bound = |n: usize, r: &RunResult| n as f64 / r.probe.as_secs_f64();
    let mut t = Table::default();
    let mut frame_mismatch = None;
    let mut runs = Vec::new();
    for n in WRITERS {
        progress(format!("  always: {n} writer(s) for {}", dur(ctx.sizes.always_run)));
        let r = run_writers(ctx, n, ctx.sizes.always_run)?;
        let ops = per_sec(r.puts as f64, r.took);
        let ratio = ops / bound(n, &r);
        let row = Row::new(format!("puts/s, {n} writer(s)"), rate(ops))
            .baseline(rate(bound(n, &r)))
            .ratio(pct(ratio));
        t.row(if n >= 4 {
            row.target(
                format!(">= {} of bound", pct(TARGET_OF_BOUND)),
                Target::AtLeast(TARGET_OF_BOUND),
                ratio,
            )
        } else {
            row.note("(no target)")
        });
        detail_rows(&mut t, n, &r);
        let before = usage();
        let raw = group_commit::run(&ctx.root, n, ctx.sizes.always_run)?;
        let raw_usage = usage() - before;
        let raw_ops = per_sec(raw.puts as f64, raw.took);
        t.row(
            Row::new("  textbook group commit, raw file: puts/s", "")
                .baseline(rate(raw_ops))
                .ratio(format!("logkv {}", times(ops / raw_ops))),
        );
        t.row(
            Row::new("  textbook group commit: records per sync", "")
                .baseline(format!("{:.1}", raw.puts as f64 / raw.syncs.max(1) as f64)),
        );
        t.row(
            Row::new("  textbook group commit: context switches per put", "")
                .baseline(format!("{:.1}", raw_usage.switches as f64 / raw.puts.max(1) as f64)),
        );
        if r.puts > 0 && r.bytes != r.puts * SMALL_PUT_FRAME_BYTES as u64 {
            frame_mismatch = Some(r.bytes as f64 / r.puts as f64);
        }
        runs.push((n, r));
    }
    for (n, r) in &runs {
        t.note(format!(
            "{n} writer(s): {} puts in {}, {} syncs",
            thousands(r.puts as f64),
            dur(r.took),
            thousands(r.syncs as f64)
        ));
    }
    t.note(format!(
        "baseline = bound(N) = N / median fdatasync, measured as in the fsync section ({PROBE_SYNCS} syncs) \
         just before and just after each run (the lower median), so bound and run see the same disk; \
         every sync would carry all N writers"
    ));
    t.note(
        "textbook group commit: the same records appended by N threads to a fallocated raw file; the first \
         writer finding no flush under way writes and syncs the buffer for all (std Mutex + Condvar, no index)",
    );
    t.note("CPU = process user + system time during the run, per put and in cores busy (this machine has 2)");
    if let Some(per_put) = frame_mismatch {
        t.note(format!(
            "WARNING: the log grew {per_put:.1} B per put, not {SMALL_PUT_FRAME_BYTES}: the format changed, update data.rs"
        ));
    }
    Ok(t)
}

/// Records per sync, sync time, CPU and put latency of one run.
fn detail_rows(t: &mut Table, n: usize, r: &RunResult) {
    let syncs = r.syncs.max(1);
    let per_sync = r.puts as f64 / syncs as f64;
    t.row(Row::new("  records per sync", format!("{per_sync:.1}")).baseline(format!("{n}")));
    let sync_avg = Duration::from_nanos(r.sync_nanos / syncs);
    t.row(Row::new("  mean fdatasync in run", dur(sync_avg)).baseline(dur(r.probe)));
    t.row(Row::new("  time per sync cycle", dur(r.took / syncs as u32)).baseline(dur(r.probe)));
    let puts = r.puts.max(1);
    let cores = r.usage.cpu.as_secs_f64() / r.took.as_secs_f64();
    t.row(Row::new("  CPU per put / cores busy", format!("{} / {cores:.2}", dur(r.usage.cpu / puts as u32))));
    t.row(Row::new("  context switches per put", format!("{:.1}", r.usage.switches as f64 / puts as f64)));
    let p = |q: f64| dur(Duration::from_nanos(r.latency.value_at_quantile(q)));
    t.row(Row::new("  put latency p50 / p99", format!("{} / {}", p(0.5), p(0.99))));
}
