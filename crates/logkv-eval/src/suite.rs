//! A whole run: every engine on every data set (one child process per
//! cell, killed with `kill -9` and recovered after), the failure trials,
//! and the run record written beside the report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::cell::{self, CellSpec};
use crate::config::Config;
use crate::engine::EngineKind;
use crate::failure::{self, KillOptions};
use crate::progress::Progress;
use crate::record::{DataSet, EngineInfo, Latency, RunRecord, ThroughputRow};

/// What to run, beyond the configuration.
#[derive(Debug, Clone)]
pub struct Options {
    /// The engines, in table order.
    pub engines: Vec<EngineKind>,
    /// Where engines keep their data while they run (emptied after each cell).
    pub work_dir: PathBuf,
}

/// Runs `config` and returns its record.
pub fn run(config: &Config, options: &Options) -> Result<RunRecord, String> {
    let started = Instant::now();
    std::fs::create_dir_all(&options.work_dir).map_err(|e| format!("{}: {e}", options.work_dir.display()))?;
    let mut record = RunRecord {
        config: config.name.clone(),
        started_unix: SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        machine: crate::machine::describe(&options.work_dir),
        versions: versions(),
        params: serde_json::to_value(config).map_err(|e| e.to_string())?,
        engines: options
            .engines
            .iter()
            .map(|&engine| EngineInfo {
                engine,
                promise: engine.promise(),
                settings: engine.settings().into(),
            })
            .collect(),
        ..RunRecord::default()
    };
    record.throughput.extend(fsync_bound(&options.work_dir)?);
    let cells = config.plans.len() * options.engines.len();
    let mut done = 0;
    for plan in &config.plans {
        for &engine in &options.engines {
            done += 1;
            eprintln!(
                "[{done}/{cells}] {engine} on {} ({:.0} s into the run)",
                plan.data.label(),
                started.elapsed().as_secs_f64()
            );
            let dir = options.work_dir.join(format!("{engine}-{}", plan.data.keys));
            let _ = std::fs::remove_dir_all(&dir);
            let spec = CellSpec {
                engine,
                data: plan.data,
                dir: dir.clone(),
                phases: plan.phases.clone(),
                phase_secs: config.phase_secs,
                persist_secs: plan.persist_secs,
                seed: config.seed,
            };
            let result = cell::run_and_kill(&spec)?;
            record.recovery.push(cell::recover(&spec)?);
            record.throughput.extend(result.throughput);
            record.footprint.push(result.footprint);
            record.persist.extend(result.persist);
            std::fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
    }
    for &engine in &options.engines {
        eprintln!("{engine}: kill -9 trials ({:.0} s into the run)", started.elapsed().as_secs_f64());
        let kill = KillOptions {
            seed: config.seed,
            ..KillOptions::new(config.kill_trials, options.work_dir.join("kill"))
        };
        let progress = Progress::new(format!("{engine}: kill -9"), u64::from(config.kill_trials));
        record.loss.push(failure::kill_trials(engine, &kill, &progress)?);
        progress.finish();
        if engine.is_logkv() || engine == EngineKind::Naive {
            let progress = Progress::new(format!("{engine}: power loss"), u64::from(config.power_trials));
            record.loss.push(failure::power_trials(engine, config.power_trials, config.seed, &progress)?);
            progress.finish();
        }
    }
    record.elapsed_secs = started.elapsed().as_secs_f64();
    Ok(record)
}

/// Bytes of the append each probe sync covers: one 100 B put as logkv frames it.
const PROBE_APPEND_BYTES: usize = 173;
/// How long the fsync probe runs.
const PROBE_TIME: Duration = Duration::from_secs(2);
/// Writer counts the bound is given for.
const BOUND_THREADS: [u32; 2] = [1, 32];

/// The fsync bound: N writers sharing each sync can at best be acknowledged
/// N per median `fdatasync` of a small append. Rows with workload
/// `fsync-bound`, attributed to `logkv-always` (the mode it bounds).
fn fsync_bound(dir: &Path) -> Result<Vec<ThroughputRow>, String> {
    use std::os::unix::fs::FileExt;
    let path = dir.join("fsync-probe");
    let file = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    file.set_len(64 << 20).map_err(|e| e.to_string())?;
    file.sync_all().map_err(|e| e.to_string())?;
    let buf = vec![7u8; PROBE_APPEND_BYTES];
    let mut took = Vec::new();
    let started = Instant::now();
    let mut offset = 0u64;
    while started.elapsed() < PROBE_TIME {
        let t = Instant::now();
        file.write_all_at(&buf, offset).and_then(|()| file.sync_data()).map_err(|e| e.to_string())?;
        took.push(t.elapsed());
        offset += buf.len() as u64;
    }
    drop(file);
    let _ = std::fs::remove_file(&path);
    took.sort_unstable();
    let median = took[took.len() / 2].as_secs_f64();
    let data = DataSet { keys: 0, value_bytes: 100 };
    Ok(BOUND_THREADS
        .iter()
        .map(|&threads| ThroughputRow {
            engine: EngineKind::LogkvAlways,
            data,
            workload: "fsync-bound".into(),
            distribution: "-".into(),
            threads,
            ops: took.len() as u64,
            secs: PROBE_TIME.as_secs_f64(),
            ops_per_sec: threads as f64 / median,
            latency: Latency { p50: median * 1e6, ..Latency::default() },
        })
        .collect())
}

/// The crates whose versions a record names, as `Cargo.lock` pins them.
const NAMED_CRATES: [&str; 6] = ["logkv-store", "rocksdb", "fjall", "redb", "sled", "hdrhistogram"];

/// logkv's and the peers' versions (from the workspace's `Cargo.lock`, as
/// built) and the compiler's.
fn versions() -> BTreeMap<String, String> {
    let lock = include_str!("../../../Cargo.lock");
    let mut out = BTreeMap::new();
    for block in lock.split("[[package]]") {
        let field = |name: &str| {
            block.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(" = \"")?.strip_suffix('"'))
        };
        if let (Some(name), Some(version)) = (field("name"), field("version")) {
            if NAMED_CRATES.contains(&name) {
                out.insert(name.to_string(), version.to_string());
            }
        }
    }
    let rustc = std::process::Command::new("rustc").arg("--version").output();
    let rustc = rustc.ok().and_then(|o| String::from_utf8(o.stdout).ok()).map(|s| s.trim().to_string());
    out.insert("rustc".into(), rustc.unwrap_or_else(|| "unknown".into()));
    out
}
