//! Run records: everything one run measured, with the machine, versions and
//! parameters, as a JSON file. The report and its charts are regenerated
//! from these files alone, so a figure can always be traced to its run.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::engine::{EngineKind, Promise};

/// One run of the harness.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunRecord {
    /// The configuration's name (`smoke`, `full`, ...).
    pub config: String,
    /// Seconds since the Unix epoch when the run started.
    pub started_unix: u64,
    /// Wall time of the whole run, in seconds.
    pub elapsed_secs: f64,
    /// What the figures were measured on (cpus, model, memory, kernel, file system).
    pub machine: Vec<(String, String)>,
    /// logkv's version, the compiler's and every peer crate's.
    pub versions: BTreeMap<String, String>,
    /// The configuration as run (data sets, threads, durations, seed).
    pub params: serde_json::Value,
    /// The engines run, with their promise and settings.
    pub engines: Vec<EngineInfo>,
    /// Operations/s and latency per engine, data set, workload and threads.
    pub throughput: Vec<ThroughputRow>,
    /// Memory, disk space and bytes written after loading a data set.
    pub footprint: Vec<FootprintRow>,
    /// Time to reopen after `kill -9`, by data size.
    pub recovery: Vec<RecoveryRow>,
    /// Acknowledged writes lost or wrong after failures.
    pub loss: Vec<LossRow>,
    /// Time from a write's acknowledgement to its being on stable storage.
    pub persist: Vec<PersistRow>,
}

/// An engine as run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EngineInfo {
    /// Which engine and mode.
    pub engine: EngineKind,
    /// What an acknowledged write survives.
    pub promise: Promise,
    /// Its settings, in words.
    pub settings: String,
}

/// The shape of a data set: fixed-size keys and values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DataSet {
    /// Number of keys.
    pub keys: u64,
    /// Bytes per value (keys are 16 bytes).
    pub value_bytes: u64,
}

impl DataSet {
    /// "10M x 100 B", "2k x 1 MiB".
    pub fn label(self) -> String {
        format!("{} x {}", count(self.keys), bytes(self.value_bytes))
    }

    /// Bytes of user data: keys plus values.
    pub fn user_bytes(self) -> u64 {
        self.keys * (crate::workload::KEY_BYTES as u64 + self.value_bytes)
    }
}

/// Latency figures in microseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Slowest operation.
    pub max: f64,
    /// The distribution as (percentile, µs) points, for charts.
    pub curve: Vec<(f64, f64)>,
}

/// One workload on one engine at one thread count.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThroughputRow {
    /// Which engine and mode.
    pub engine: EngineKind,
    /// The data set the workload ran on.
    pub data: DataSet,
    /// Workload name (`load-seq`, `load-random`, `read-random`, `update-50`,
    /// `read-95`, `rmw`, `scan`).
    pub workload: String,
    /// Key choice: `uniform`, `zipfian` or `sequential`.
    pub distribution: String,
    /// Client threads.
    pub threads: u32,
    /// Operations completed.
    pub ops: u64,
    /// Seconds they took.
    pub secs: f64,
    /// Operations per second.
    pub ops_per_sec: f64,
    /// Latency of one operation.
    pub latency: Latency,
}

/// What a data set costs in memory and on disk, after its preload and the
/// timed phases that followed (which wrote more).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FootprintRow {
    /// Which engine and mode.
    pub engine: EngineKind,
    /// The data set loaded.
    pub data: DataSet,
    /// Peak resident set size of the process that loaded it (VmHWM).
    pub peak_rss_bytes: u64,
    /// Resident set size once loaded (VmRSS).
    pub rss_bytes: u64,
    /// Space the engine's directory takes on disk at the end.
    pub disk_bytes: u64,
    /// Bytes of the live keys and values at the end (what `disk_bytes`
    /// is compared with: space amplification).
    pub live_bytes: u64,
    /// Bytes the process wrote to storage over the preload and the phases
    /// (`/proc/self/io`).
    pub written_bytes: u64,
    /// Bytes of keys and values the clients wrote meanwhile (what
    /// `written_bytes` is compared with: write amplification).
    pub user_bytes_written: u64,
}

/// Reopening after `kill -9`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecoveryRow {
    /// Which engine and mode.
    pub engine: EngineKind,
    /// The data set that was loaded before the kill.
    pub data: DataSet,
    /// Space the directory took when reopened.
    pub disk_bytes: u64,
    /// Seconds from starting the open to the first answered read.
    pub open_secs: f64,
    /// Keys found after the reopen.
    pub keys_found: u64,
}

/// Acknowledged writes lost over repeated failures of one kind.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LossRow {
    /// Which engine and mode.
    pub engine: EngineKind,
    /// `kill-9` (process killed, OS survives) or `power-loss` (unsynced
    /// data dropped by the fault-injecting file system).
    pub failure: String,
    /// Failures injected.
    pub trials: u32,
    /// Writes acknowledged before the failures, summed.
    pub acked: u64,
    /// Acknowledged writes missing after reopening, summed.
    pub lost: u64,
    /// Keys whose value after reopening is neither the acknowledged one nor
    /// a later unacknowledged one, summed.
    pub wrong: u64,
    /// The most acknowledged writes one failure lost.
    pub max_lost: u64,
    /// Trials that lost at least one acknowledged write.
    pub trials_with_loss: u32,
}

/// Time to persist: from a write's return to its being on stable storage.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PersistRow {
    /// Which engine and mode.
    pub engine: EngineKind,
    /// Writes sampled (0 when the engine cannot tell).
    pub samples: u64,
    /// Median, in milliseconds.
    pub p50_ms: f64,
    /// 99th percentile, in milliseconds.
    pub p99_ms: f64,
    /// Longest, in milliseconds.
    pub max_ms: f64,
    /// Why there is no figure, or what bounds it.
    pub note: String,
}

impl RunRecord {
    /// Reads a record written by [`RunRecord::save`].
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Writes the record as pretty JSON.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let text = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// "10M", "50k", "2,000" style counts for labels.
pub fn count(n: u64) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

/// "100 B", "4 KiB", "1 MiB" style sizes for labels.
pub fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{} KiB", n >> 10),
        n => format!("{n} B"),
    }
}
