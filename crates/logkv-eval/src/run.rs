//! Running workloads on an engine: the untimed preload of a data set, and
//! timed phases (one workload, key choice and thread count each) that give
//! operations/s and a latency histogram.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::engine::{Engine, EngineKind, Result};
use crate::progress::Progress;
use crate::record::{DataSet, Latency, ThroughputRow};
use crate::workload::{self, Distribution, KeyChooser, Shuffle, Zipf};

/// The YCSB-style workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// Inserts of new keys in key order.
    LoadSeq,
    /// Inserts of new keys in random order.
    LoadRandom,
    /// Gets of existing keys.
    ReadRandom,
    /// Half gets, half puts (YCSB A).
    Update50,
    /// 95% gets, 5% puts (YCSB B).
    Read95,
    /// Get a key, then put it (YCSB F); one operation is both.
    Rmw,
    /// Ordered reads of 1 to 100 pairs from a chosen key (YCSB E).
    Scan,
}

impl Workload {
    /// Name in tables and records.
    pub fn name(self) -> &'static str {
        match self {
            Workload::LoadSeq => "load-seq",
            Workload::LoadRandom => "load-random",
            Workload::ReadRandom => "read-random",
            Workload::Update50 => "update-50",
            Workload::Read95 => "read-95",
            Workload::Rmw => "rmw",
            Workload::Scan => "scan",
        }
    }

    fn inserts(self) -> bool {
        matches!(self, Workload::LoadSeq | Workload::LoadRandom)
    }
}

/// One timed phase.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Phase {
    /// What the clients do.
    pub workload: Workload,
    /// How they choose keys (ignored by the loads).
    pub distribution: Distribution,
    /// Client threads.
    pub threads: u32,
}

/// Most bytes one preload batch carries.
const PRELOAD_BATCH_BYTES: usize = 4 << 20;
/// Most pairs one preload batch carries.
const PRELOAD_BATCH_PAIRS: usize = 1000;
/// Threads that preload (the machine's cores do the work).
const PRELOAD_THREADS: usize = 2;
/// Longest single operation the histograms record (1 minute, in ns).
const MAX_LATENCY_NS: u64 = 60_000_000_000;

/// A value buffer a client thread rewrites in place: the tag (key index,
/// write number) changes per write, the rest stays, so making a value costs
/// nothing next to writing it.
struct ValueBuf(Vec<u8>);

impl ValueBuf {
    fn new(len: usize, seed: u64) -> Self {
        Self(workload::value(seed, 0, len))
    }

    fn stamp(&mut self, i: u64, write: u64) -> &[u8] {
        self.0[..8].copy_from_slice(&i.to_le_bytes());
        self.0[8..16].copy_from_slice(&write.to_le_bytes());
        &self.0
    }
}

/// Loads every key of `data` in a shuffled order, in batches, untimed but
/// with progress; returns the seconds it took.
pub fn preload(engine: &dyn Engine, data: DataSet, seed: u64, progress: &Progress) -> Result<f64> {
    let started = Instant::now();
    let shuffle = Shuffle::new(data.keys, seed);
    let len = data.value_bytes as usize;
    let per_batch = (PRELOAD_BATCH_BYTES / (len + workload::KEY_BYTES)).clamp(1, PRELOAD_BATCH_PAIRS) as u64;
    let next = AtomicU64::new(0);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..PRELOAD_THREADS)
            .map(|t| {
                let (next, shuffle) = (&next, &shuffle);
                s.spawn(move || -> Result<()> {
                    let mut buf = ValueBuf::new(len, seed ^ t as u64);
                    loop {
                        let from = next.fetch_add(per_batch, Ordering::Relaxed);
                        if from >= data.keys {
                            return Ok(());
                        }
                        let to = (from + per_batch).min(data.keys);
                        let pairs: Vec<_> = (from..to)
                            .map(|j| {
                                let i = shuffle.at(j);
                                (workload::key(i).to_vec(), buf.stamp(i, 0).to_vec())
                            })
                            .collect();
                        engine.put_many(&pairs)?;
                        progress.inc(to - from);
                    }
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| w.join().map_err(|_| "a preload thread panicked")?)
    })?;
    Ok(started.elapsed().as_secs_f64())
}

/// State shared by the phases of one engine: where inserts continue.
#[derive(Debug)]
pub struct Inserts {
    /// Next index of a sequential insert (after the preloaded keys).
    seq: AtomicU64,
    /// Counter of random inserts (scattered by [`workload::mix`]).
    random: AtomicU64,
    /// Write numbers, so every value written is distinct.
    writes: AtomicU64,
    /// Puts made by the phases.
    puts: AtomicU64,
}

impl Inserts {
    /// Inserts after a preload of `data`.
    pub fn after(data: DataSet) -> Self {
        Self {
            seq: AtomicU64::new(data.keys),
            random: AtomicU64::new(0),
            writes: AtomicU64::new(1),
            puts: AtomicU64::new(0),
        }
    }

    /// Puts the phases made so far.
    pub fn puts(&self) -> u64 {
        self.puts.load(Ordering::Relaxed)
    }

    /// Keys inserted by the load phases so far.
    pub fn inserted(&self, data: DataSet) -> u64 {
        self.seq.load(Ordering::Relaxed) - data.keys + self.random.load(Ordering::Relaxed)
    }
}

/// Runs one phase for `secs`; `None` if the engine cannot run the
/// workload (scans on an engine without key order).
pub fn phase(
    engine: &dyn Engine,
    kind: EngineKind,
    data: DataSet,
    phase: Phase,
    secs: f64,
    inserts: &Inserts,
    seed: u64,
) -> Result<Option<ThroughputRow>> {
    if phase.workload == Workload::Scan && engine.scan(&workload::key(0), 1)?.is_none() {
        return Ok(None);
    }
    let zipf = (phase.distribution == Distribution::Zipfian && !phase.workload.inserts())
        .then(|| Zipf::new(data.keys));
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(secs);
    let results: Vec<Result<(u64, Histogram<u64>, Instant)>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..phase.threads)
            .map(|t| {
                let chooser = KeyChooser::new(data.keys, zipf, seed.wrapping_add(t as u64 * 7919));
                s.spawn(move || {
                    client(engine, data, phase.workload, chooser, deadline, inserts, seed ^ t as u64)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|_| Err("a client thread panicked".into())))
            .collect()
    });
    let mut ops = 0;
    let mut hist = histogram();
    let mut ended = started;
    for r in results {
        let (n, h, end) = r?;
        ops += n;
        hist.add(&h).map_err(|e| e.to_string())?;
        ended = ended.max(end);
    }
    let took = (ended - started).as_secs_f64();
    Ok(Some(ThroughputRow {
        engine: kind,
        data,
        workload: phase.workload.name().into(),
        distribution: match phase.workload {
            Workload::LoadSeq => "sequential".into(),
            Workload::LoadRandom => "random".into(),
            _ => phase.distribution.name().into(),
        },
        threads: phase.threads,
        ops,
        secs: took,
        ops_per_sec: ops as f64 / took,
        latency: latency(&hist),
    }))
}

/// One client thread: operations until the deadline; returns how many, their
/// latencies in nanoseconds and when the last one ended.
fn client(
    engine: &dyn Engine,
    data: DataSet,
    workload: Workload,
    mut chooser: KeyChooser,
    deadline: Instant,
    inserts: &Inserts,
    seed: u64,
) -> Result<(u64, Histogram<u64>, Instant)> {
    let mut hist = histogram();
    let mut buf = ValueBuf::new(data.value_bytes as usize, seed);
    let (mut ops, mut puts) = (0u64, 0u64);
    let mut now = Instant::now();
    while now < deadline {
        let write = inserts.writes.fetch_add(1, Ordering::Relaxed);
        let mut put = |i: u64| {
            puts += 1;
            engine.put(&workload::key(i), buf.stamp(i, write))
        };
        match workload {
            Workload::LoadSeq => {
                put(inserts.seq.fetch_add(1, Ordering::Relaxed))?;
            }
            Workload::LoadRandom => {
                put(workload::mix(inserts.random.fetch_add(1, Ordering::Relaxed)) | 1 << 63)?;
            }
            Workload::ReadRandom => {
                engine.get(&workload::key(chooser.pick()))?;
            }
            Workload::Update50 | Workload::Read95 => {
                let i = chooser.pick();
                let update_percent = if workload == Workload::Update50 { 50 } else { 5 };
                if chooser.percent() < update_percent {
                    put(i)?;
                } else {
                    engine.get(&workload::key(i))?;
                }
            }
            Workload::Rmw => {
                let i = chooser.pick();
                engine.get(&workload::key(i))?;
                put(i)?;
            }
            Workload::Scan => {
                let len = 1 + chooser.percent() as usize;
                engine.scan(&workload::key(chooser.pick()), len)?;
            }
        }
        let end = Instant::now();
        hist.saturating_record((end - now).as_nanos() as u64);
        ops += 1;
        now = end;
    }
    inserts.puts.fetch_add(puts, Ordering::Relaxed);
    Ok((ops, hist, now))
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3).expect("constant bounds are valid")
}

/// The percentiles the records keep for latency charts.
const CURVE: [f64; 10] = [0.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9, 99.99, 100.0];

/// Summary of a histogram of nanoseconds, in microseconds.
pub fn latency(h: &Histogram<u64>) -> Latency {
    let us = |q: f64| h.value_at_quantile(q / 100.0) as f64 / 1000.0;
    Latency {
        p50: us(50.0),
        p99: us(99.0),
        p999: us(99.9),
        max: h.max() as f64 / 1000.0,
        curve: CURVE.iter().map(|&p| (p, if p >= 100.0 { h.max() as f64 / 1000.0 } else { us(p) })).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_run_on_the_baseline_and_on_logkv() {
        let data = DataSet { keys: 2_000, value_bytes: 100 };
        for kind in [EngineKind::LogkvPeriodic, EngineKind::Naive] {
            let dir = tempfile::tempdir().unwrap();
            let engine = kind.open(dir.path()).unwrap();
            preload(engine.as_ref(), data, 1, &Progress::new("preload", data.keys)).unwrap();
            let found = (0..data.keys).filter(|&i| engine.get(&workload::key(i)).unwrap().is_some()).count();
            assert_eq!(found as u64, data.keys, "{kind}: every preloaded key is there");
            let inserts = Inserts::after(data);
            for workload in [Workload::LoadSeq, Workload::Update50, Workload::Scan] {
                let p = Phase { workload, distribution: Distribution::Zipfian, threads: 2 };
                let row = phase(engine.as_ref(), kind, data, p, 0.05, &inserts, 3).unwrap();
                match (kind, workload) {
                    (EngineKind::Naive, Workload::Scan) => assert!(row.is_none()),
                    _ => {
                        let row = row.unwrap();
                        assert!(row.ops > 0 && row.latency.p50 > 0.0, "{kind} {workload:?}: {row:?}");
                    }
                }
            }
            let next = inserts.seq.load(Ordering::Relaxed);
            assert!(
                engine.get(&workload::key(next - 1)).unwrap().is_some(),
                "{kind}: sequential inserts landed"
            );
            engine.close().unwrap();
        }
    }
}
