//! The evaluation's targets, judged from one record's figures: each target
//! names the rows it compares, the goal, what was measured, whether it was
//! met and by how much. A target whose rows the run lacks is "not measured".

use std::fmt as stdfmt;

use super::fmt;
use super::view::{self, FSYNC_BOUND};
use crate::engine::EngineKind;
use crate::record::{DataSet, RunRecord, ThroughputRow};

/// Share of the fsync bound that `logkv-always` is held to at 32 writers
/// (the bound assumes every sync carries every writer and costs what one
/// small append's sync costs).
pub const FSYNC_BOUND_SHARE: f64 = 0.8;
/// 1 MiB in bytes: the large-value data sets.
const MIB: u64 = 1 << 20;
/// Writers of the durable-write targets.
const DURABLE_THREADS: u32 = 32;

/// Whether a target was met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Met.
    Pass,
    /// Not met.
    Miss,
    /// The run lacks a row the target needs.
    NotMeasured,
}

impl Outcome {
    /// "pass", "MISS" or "not measured".
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Miss => "MISS",
            Outcome::NotMeasured => "not measured",
        }
    }
}

/// One target, judged.
#[derive(Debug, Clone)]
pub struct TargetRow {
    /// Short id: "a1", "b2", ...
    pub id: String,
    /// What is compared, in words.
    pub target: String,
    /// The goal, in words ("≥ 2x").
    pub goal: String,
    /// The figures and their ratio, or why there are none.
    pub measured: String,
    /// Met, missed or not measured.
    pub outcome: Outcome,
    /// By how much it was met or missed ("35% above the goal").
    pub margin: String,
}

impl stdfmt::Display for TargetRow {
    fn fmt(&self, f: &mut stdfmt::Formatter<'_>) -> stdfmt::Result {
        write!(
            f,
            "{:<3} {:<12} {}: {} (goal {}",
            self.id,
            self.outcome.label(),
            self.target,
            self.measured,
            self.goal
        )?;
        if !self.margin.is_empty() {
            write!(f, "; {}", self.margin)?;
        }
        f.write_str(")")
    }
}

/// How a figure is judged.
#[derive(Debug, Clone, Copy)]
enum Goal {
    AtLeast(f64),
    AtMost(f64),
    Below(f64),
    Zero,
}

fn share(x: f64) -> String {
    let p = x * 100.0;
    if p < 9.95 {
        format!("{p:.1}%")
    } else {
        format!("{p:.0}%")
    }
}

fn judge(goal: Goal, v: f64) -> (Outcome, String) {
    match goal {
        Goal::AtLeast(g) if v >= g => (Outcome::Pass, format!("{} above the goal", share(v / g - 1.0))),
        Goal::AtLeast(g) => (Outcome::Miss, format!("{} short of the goal", share(1.0 - v / g))),
        Goal::AtMost(g) if v <= g => (Outcome::Pass, format!("{} under the limit", share(1.0 - v / g))),
        Goal::Below(g) if v < g => (Outcome::Pass, format!("{} under the limit", share(1.0 - v / g))),
        Goal::AtMost(g) | Goal::Below(g) => (Outcome::Miss, format!("{} over the limit", share(v / g - 1.0))),
        Goal::Zero if v == 0.0 => (Outcome::Pass, "none".into()),
        Goal::Zero => (Outcome::Miss, format!("{} too many", fmt::grouped(v as u64))),
    }
}

fn row(id: &str, target: &str, goal_text: &str, measured: String, judged: Option<(Goal, f64)>) -> TargetRow {
    let (outcome, margin) = match judged {
        Some((goal, v)) if v.is_finite() => judge(goal, v),
        _ => (Outcome::NotMeasured, String::new()),
    };
    TargetRow { id: id.into(), target: target.into(), goal: goal_text.into(), measured, outcome, margin }
}

fn missing(id: &str, target: &str, goal_text: &str, what: &str) -> TargetRow {
    row(id, target, goal_text, format!("not measured in this run ({what})"), None)
}

/// Which thread count a comparison uses.
#[derive(Debug, Clone, Copy)]
enum Threads {
    Exactly(u32),
    /// The highest both engines ran.
    Highest,
    /// One thread if both ran it, else the lowest both ran.
    Lowest,
}

/// Data sets whose values are `value_bytes`, most keys first.
fn sets_of(r: &RunRecord, value_bytes: u64) -> Vec<DataSet> {
    let mut sets: Vec<DataSet> =
        view::throughput_datasets(r).into_iter().filter(|d| d.value_bytes == value_bytes).collect();
    sets.sort_by_key(|d| std::cmp::Reverse(d.keys));
    sets
}

/// The rows of engines `a` and `b` for `workload` on the largest data set
/// with `value_bytes` values where both ran it at the chosen thread count.
fn pair<'a>(
    r: &'a RunRecord,
    value_bytes: u64,
    workload: &str,
    threads: Threads,
    a: EngineKind,
    b: EngineKind,
) -> Option<(&'a ThroughputRow, &'a ThroughputRow)> {
    sets_of(r, value_bytes).into_iter().find_map(|data| {
        let of = |k: EngineKind| {
            view::thread_counts(
                r.throughput.iter().filter(|t| t.engine == k && t.data == data && t.workload == workload),
            )
        };
        let (ta, tb) = (of(a), of(b));
        let both: Vec<u32> = ta.into_iter().filter(|t| tb.contains(t)).collect();
        let n = match threads {
            Threads::Exactly(n) => both.contains(&n).then_some(n)?,
            Threads::Highest => *both.last()?,
            Threads::Lowest if both.contains(&1) => 1,
            Threads::Lowest => *both.first()?,
        };
        Some((view::find(r, a, data, workload, n)?, view::find(r, b, data, workload, n)?))
    })
}

fn threads_n(n: u32) -> String {
    if n == 1 {
        "1 thread".into()
    } else {
        format!("{n} threads")
    }
}

fn threads_words(threads: Threads) -> String {
    match threads {
        Threads::Exactly(n) => threads_n(n),
        Threads::Highest => "the most threads both ran".into(),
        Threads::Lowest => "1 thread (or the fewest both ran)".into(),
    }
}

/// `a` / `b` ops/s on `workload`, held to at least `factor`.
#[allow(clippy::too_many_arguments)]
fn ratio_target(
    r: &RunRecord,
    id: &str,
    target: &str,
    value_bytes: u64,
    workload: &str,
    threads: Threads,
    a: EngineKind,
    b: EngineKind,
    factor: f64,
) -> TargetRow {
    let goal_text = format!("≥ {factor}x");
    match pair(r, value_bytes, workload, threads, a, b) {
        None => missing(
            id,
            target,
            &goal_text,
            &format!(
                "{workload} rows of {a} and {b} with {} values at {}",
                crate::record::bytes(value_bytes),
                threads_words(threads)
            ),
        ),
        Some((ra, rb)) => {
            let ratio = ra.ops_per_sec / rb.ops_per_sec;
            let measured = format!(
                "{a} {} / {b} {} = {} ({}, {})",
                fmt::rate(ra.ops_per_sec),
                fmt::rate(rb.ops_per_sec),
                fmt::ratio(ratio),
                ra.data.label(),
                threads_n(ra.threads)
            );
            row(id, target, &goal_text, measured, Some((Goal::AtLeast(factor), ratio)))
        }
    }
}

/// logkv-always against the fsync bound at 32 writers, 100 B values.
fn fsync_bound_target(r: &RunRecord) -> TargetRow {
    let (id, target) =
        ("a1", "Durable writes, 100 B values, 32 threads: logkv-always against the fsync bound");
    let goal_text = format!("≥ {} of the bound", share(FSYNC_BOUND_SHARE));
    let logkv = sets_of(r, 100)
        .into_iter()
        .find_map(|d| view::find(r, EngineKind::LogkvAlways, d, "load-random", DURABLE_THREADS));
    let Some(logkv) = logkv else {
        return missing(
            id,
            target,
            &goal_text,
            "no logkv-always load-random row at 32 threads with 100 B values",
        );
    };
    let bounds = || r.throughput.iter().filter(|t| t.workload == FSYNC_BOUND && t.threads == DURABLE_THREADS);
    let bound =
        bounds().find(|t| t.data == logkv.data).or_else(|| bounds().find(|t| t.data.value_bytes == 100));
    let Some(bound) = bound else {
        let measured = format!(
            "logkv-always {}; fsync bound not measured in this run ({}, 32 threads)",
            fmt::rate(logkv.ops_per_sec),
            logkv.data.label()
        );
        return row(id, target, &goal_text, measured, None);
    };
    let share_of = logkv.ops_per_sec / bound.ops_per_sec;
    let measured = format!(
        "logkv-always {} / bound {} = {} of the bound ({}, 32 threads)",
        fmt::rate(logkv.ops_per_sec),
        fmt::rate(bound.ops_per_sec),
        share(share_of),
        logkv.data.label()
    );
    row(id, target, &goal_text, measured, Some((Goal::AtLeast(FSYNC_BOUND_SHARE), share_of)))
}

const LOGKV_MODES: [EngineKind; 3] =
    [EngineKind::LogkvAlways, EngineKind::LogkvPeriodic, EngineKind::LogkvNone];

/// logkv's resident memory against the naive table's at the largest 100 B data set.
fn memory_targets(r: &RunRecord) -> Vec<TargetRow> {
    let goal_text = "≤ 0.3x naive";
    let naive = r
        .footprint
        .iter()
        .filter(|f| f.engine == EngineKind::Naive && f.data.value_bytes == 100)
        .max_by_key(|f| f.data.keys);
    let Some(naive) = naive else {
        return vec![missing(
            "e",
            "Memory at the largest 100 B data set: logkv RSS against naive",
            goal_text,
            "no naive footprint row with 100 B values",
        )];
    };
    let rows: Vec<TargetRow> = LOGKV_MODES
        .iter()
        .filter_map(|&k| r.footprint.iter().find(|f| f.engine == k && f.data == naive.data))
        .enumerate()
        .map(|(i, f)| {
            let ratio = f.rss_bytes as f64 / naive.rss_bytes as f64;
            let measured = format!(
                "{} {} / naive {} = {} ({})",
                f.engine,
                fmt::size(f.rss_bytes as f64),
                fmt::size(naive.rss_bytes as f64),
                fmt::ratio(ratio),
                f.data.label()
            );
            let target = format!("Memory at the largest 100 B data set: {} RSS against naive", f.engine);
            row(&format!("e{}", i + 1), &target, goal_text, measured, Some((Goal::AtMost(0.3), ratio)))
        })
        .collect();
    if rows.is_empty() {
        let what = format!("no logkv footprint row for {}", naive.data.label());
        return vec![missing(
            "e",
            "Memory at the largest 100 B data set: logkv RSS against naive",
            goal_text,
            &what,
        )];
    }
    rows
}

/// logkv's reopen time against the naive table's at the largest data set.
fn recovery_targets(r: &RunRecord) -> Vec<TargetRow> {
    let goal_text = "< naive's";
    let naive = r
        .recovery
        .iter()
        .filter(|f| f.engine == EngineKind::Naive)
        .max_by_key(|f| (f.data.keys, f.data.value_bytes));
    let target = "Recovery at the data set with the most keys: logkv time to reopen against naive";
    let Some(naive) = naive else {
        return vec![missing("f", target, goal_text, "no naive recovery row")];
    };
    let rows: Vec<TargetRow> = LOGKV_MODES
        .iter()
        .filter_map(|&k| r.recovery.iter().find(|f| f.engine == k && f.data == naive.data))
        .enumerate()
        .map(|(i, f)| {
            let ratio = f.open_secs / naive.open_secs;
            let measured = format!(
                "{} {} / naive {} = {} ({})",
                f.engine,
                fmt::secs(f.open_secs),
                fmt::secs(naive.open_secs),
                fmt::ratio(ratio),
                f.data.label()
            );
            let target = format!(
                "Recovery at the data set with the most keys: {} time to reopen against naive",
                f.engine
            );
            row(&format!("f{}", i + 1), &target, goal_text, measured, Some((Goal::Below(1.0), ratio)))
        })
        .collect();
    if rows.is_empty() {
        return vec![missing(
            "f",
            target,
            goal_text,
            &format!("no logkv recovery row for {}", naive.data.label()),
        )];
    }
    rows
}

/// logkv-always loses no acknowledged write to either failure.
fn loss_targets(r: &RunRecord) -> Vec<TargetRow> {
    ["kill-9", "power-loss"]
        .iter()
        .enumerate()
        .map(|(i, failure)| {
            let id = format!("g{}", i + 1);
            let target = format!("No acknowledged write lost by logkv-always to {failure}");
            let goal_text = "0 lost, 0 wrong";
            match r.loss.iter().find(|l| l.engine == EngineKind::LogkvAlways && l.failure == *failure) {
                None => missing(&id, &target, goal_text, &format!("no logkv-always {failure} row")),
                Some(l) => {
                    let measured = format!(
                        "{} lost, {} wrong of {} acknowledged over {} trials",
                        fmt::grouped(l.lost),
                        fmt::grouped(l.wrong),
                        fmt::grouped(l.acked),
                        l.trials
                    );
                    row(&id, &target, goal_text, measured, Some((Goal::Zero, (l.lost + l.wrong) as f64)))
                }
            }
        })
        .collect()
}

/// Every target, judged from `record`'s figures, in order a to g.
pub fn summarize_targets(record: &RunRecord) -> Vec<TargetRow> {
    use EngineKind::*;
    let r = record;
    let mut out = vec![
        fsync_bound_target(r),
        ratio_target(
            r,
            "a2",
            "Durable writes, load-random, 100 B, 32 threads: logkv-always against rocksdb-sync",
            100,
            "load-random",
            Threads::Exactly(DURABLE_THREADS),
            LogkvAlways,
            RocksdbSync,
            1.0,
        ),
        ratio_target(
            r,
            "a3",
            "Durable writes, load-random, 100 B, 32 threads: logkv-always against fjall-sync",
            100,
            "load-random",
            Threads::Exactly(DURABLE_THREADS),
            LogkvAlways,
            FjallSync,
            1.0,
        ),
        ratio_target(
            r,
            "b1",
            "Buffered writes, load-random, 100 B, 1 thread: logkv-periodic against rocksdb-wal",
            100,
            "load-random",
            Threads::Exactly(1),
            LogkvPeriodic,
            RocksdbWal,
            2.0,
        ),
        ratio_target(
            r,
            "b2",
            "Buffered writes, load-random, 100 B, 1 thread: logkv-none against rocksdb-wal",
            100,
            "load-random",
            Threads::Exactly(1),
            LogkvNone,
            RocksdbWal,
            2.0,
        ),
        ratio_target(
            r,
            "c1",
            "Random reads, page-cached, 100 B, most threads: logkv-periodic against rocksdb-wal",
            100,
            "read-random",
            Threads::Highest,
            LogkvPeriodic,
            RocksdbWal,
            1.5,
        ),
        ratio_target(
            r,
            "c2",
            "Random reads, page-cached, 100 B, most threads: logkv-periodic against naive",
            100,
            "read-random",
            Threads::Highest,
            LogkvPeriodic,
            Naive,
            0.5,
        ),
        ratio_target(
            r,
            "d",
            "1 MiB values, load-random: logkv-periodic against rocksdb-wal",
            MIB,
            "load-random",
            Threads::Lowest,
            LogkvPeriodic,
            RocksdbWal,
            3.0,
        ),
    ];
    out.extend(memory_targets(r));
    out.extend(recovery_targets(r));
    out.extend(loss_targets(r));
    out
}
