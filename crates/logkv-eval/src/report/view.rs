//! What the report reads out of a record: engines in table order with their
//! promise, data sets, workloads in a fixed order, and the rows a table,
//! chart or target needs.

use crate::engine::{EngineKind, Promise};
use crate::record::{DataSet, RunRecord, ThroughputRow};

/// The workload name of the fsync bound: not an engine's run but the rate
/// the disk's `fdatasync` allows, recorded under `logkv-always`.
pub const FSYNC_BOUND: &str = "fsync-bound";

/// Workloads in the order tables and charts show them; others follow by name.
const WORKLOAD_ORDER: [&str; 8] =
    [FSYNC_BOUND, "load-seq", "load-random", "read-random", "update-50", "read-95", "rmw", "scan"];

/// Sort key of a workload name.
pub fn workload_rank(name: &str) -> (usize, String) {
    let rank = WORKLOAD_ORDER.iter().position(|w| *w == name).unwrap_or(WORKLOAD_ORDER.len());
    (rank, name.to_string())
}

/// Every engine that appears in the record, in table order.
pub fn engines(r: &RunRecord) -> Vec<EngineKind> {
    let mut all: Vec<EngineKind> = r
        .engines
        .iter()
        .map(|e| e.engine)
        .chain(r.throughput.iter().map(|t| t.engine))
        .chain(r.footprint.iter().map(|t| t.engine))
        .chain(r.recovery.iter().map(|t| t.engine))
        .chain(r.loss.iter().map(|t| t.engine))
        .chain(r.persist.iter().map(|t| t.engine))
        .collect();
    all.sort();
    all.dedup();
    all
}

/// The engine's promise as recorded (the built-in one if the record lacks it).
pub fn promise(r: &RunRecord, kind: EngineKind) -> Promise {
    r.engines.iter().find(|e| e.engine == kind).map_or_else(|| kind.promise(), |e| e.promise)
}

/// The engine's settings as recorded.
pub fn settings(r: &RunRecord, kind: EngineKind) -> String {
    r.engines
        .iter()
        .find(|e| e.engine == kind)
        .map_or_else(|| "(not recorded)".into(), |e| e.settings.clone())
}

/// "logkv-always (synced before ack)": how charts name an engine.
pub fn legend(r: &RunRecord, kind: EngineKind) -> String {
    format!("{} ({})", kind.name(), promise(r, kind).label())
}

/// Whether a row is the fsync bound rather than an engine's run.
pub fn is_bound(t: &ThroughputRow) -> bool {
    t.workload == FSYNC_BOUND
}

/// The fsync bound's rows for values of `value_bytes`, by writer count.
pub fn bound_rows(r: &RunRecord, value_bytes: u64) -> Vec<&ThroughputRow> {
    let mut rows: Vec<&ThroughputRow> =
        r.throughput.iter().filter(|t| is_bound(t) && t.data.value_bytes == value_bytes).collect();
    rows.sort_by_key(|t| t.threads);
    rows.dedup_by_key(|t| t.threads);
    rows
}

/// A key distribution worth naming ("-" and "" are not).
pub fn distribution(d: &str) -> Option<&str> {
    (!d.is_empty() && d != "-").then_some(d)
}

/// Data sets with engine throughput rows, smallest values first, then
/// fewest keys.
pub fn throughput_datasets(r: &RunRecord) -> Vec<DataSet> {
    let mut sets: Vec<DataSet> = r.throughput.iter().filter(|t| !is_bound(t)).map(|t| t.data).collect();
    sets.sort_by_key(|d| (d.value_bytes, d.keys));
    sets.dedup();
    sets
}

/// The data set most workloads ran on: 100 B values if there are any, then
/// the one with the most rows, then the most keys.
pub fn primary_dataset(r: &RunRecord) -> Option<DataSet> {
    throughput_datasets(r).into_iter().max_by_key(|d| {
        let rows = r.throughput.iter().filter(|t| t.data == *d && !is_bound(t)).count();
        (d.value_bytes == 100, rows, d.keys)
    })
}

/// The (workload, distribution) pairs engines ran on `data`, in table order.
pub fn workloads(r: &RunRecord, data: DataSet) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = r
        .throughput
        .iter()
        .filter(|t| t.data == data && !is_bound(t))
        .map(|t| (t.workload.clone(), t.distribution.clone()))
        .collect();
    pairs.sort_by_key(|(w, d)| (workload_rank(w), d.clone()));
    pairs.dedup();
    pairs
}

/// Thread counts used in `rows`, ascending.
pub fn thread_counts<'a>(rows: impl Iterator<Item = &'a ThroughputRow>) -> Vec<u32> {
    let mut threads: Vec<u32> = rows.map(|t| t.threads).collect();
    threads.sort_unstable();
    threads.dedup();
    threads
}

/// The throughput row of one engine, data set, workload and thread count,
/// with uniformly chosen keys when the workload also ran with others.
pub fn find<'a>(
    r: &'a RunRecord,
    engine: EngineKind,
    data: DataSet,
    workload: &str,
    threads: u32,
) -> Option<&'a ThroughputRow> {
    r.throughput
        .iter()
        .filter(|t| t.engine == engine && t.data == data && t.workload == workload && t.threads == threads)
        .min_by_key(|t| t.distribution != "uniform")
}

/// One workload's latency as the latency section shows it.
pub struct LatencyPick<'a> {
    /// Workload name.
    pub workload: String,
    /// Its key distribution.
    pub distribution: String,
    /// The data set.
    pub data: DataSet,
    /// The thread count shown.
    pub threads: u32,
    /// One row per engine at that thread count, in table order.
    pub rows: Vec<&'a ThroughputRow>,
}

/// For every workload on the primary data set, once (with uniformly chosen
/// keys if it ran so): the highest thread count that every engine which ran
/// the workload ran, or the highest of any engine when they share none.
pub fn latency_picks(r: &RunRecord) -> Vec<LatencyPick<'_>> {
    let Some(data) = primary_dataset(r) else { return Vec::new() };
    let mut pairs = workloads(r, data);
    pairs.sort_by_key(|(w, d)| (workload_rank(w), d != "uniform"));
    pairs.dedup_by(|later, first| later.0 == first.0);
    pairs
        .into_iter()
        .filter_map(|(workload, distribution)| {
            let rows: Vec<&ThroughputRow> = r
                .throughput
                .iter()
                .filter(|t| t.data == data && t.workload == workload && t.distribution == distribution)
                .collect();
            let mut kinds: Vec<EngineKind> = rows.iter().map(|t| t.engine).collect();
            kinds.sort();
            kinds.dedup();
            let all = thread_counts(rows.iter().copied());
            let shared = all
                .iter()
                .copied()
                .filter(|&n| kinds.iter().all(|k| rows.iter().any(|t| t.engine == *k && t.threads == n)))
                .max();
            let threads = shared.or_else(|| all.last().copied())?;
            let mut picked: Vec<&ThroughputRow> = rows.into_iter().filter(|t| t.threads == threads).collect();
            picked.sort_by_key(|t| t.engine);
            picked.dedup_by_key(|t| t.engine);
            Some(LatencyPick { workload, distribution, data, threads, rows: picked })
        })
        .collect()
}
