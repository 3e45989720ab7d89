//! A cell: one engine on one data set, in a child process of its own. The
//! child preloads the data set, runs the timed phases (and, if asked, the
//! time-to-persist measure), prints its figures as one JSON line and
//! `READY`, and waits; the parent then kills it with `kill -9`, so the
//! recovery that follows is from a real crash of the process that wrote
//! the data.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::Stdio;

use serde::{Deserialize, Serialize};

use crate::engine::EngineKind;
use crate::progress::Progress;
use crate::record::{DataSet, FootprintRow, PersistRow, RecoveryRow, ThroughputRow};
use crate::run::{self, Inserts, Phase};
use crate::{measure, workload};

/// What a cell runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CellSpec {
    /// The engine and mode.
    pub engine: EngineKind,
    /// The data set to preload.
    pub data: DataSet,
    /// The engine's directory (created fresh by the parent).
    pub dir: PathBuf,
    /// Timed phases, in order.
    pub phases: Vec<Phase>,
    /// Seconds per phase.
    pub phase_secs: f64,
    /// Seconds of the time-to-persist measure, if any.
    pub persist_secs: Option<f64>,
    /// Seed of every random choice.
    pub seed: u64,
}

/// What a cell measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CellResult {
    /// One row per phase the engine could run.
    pub throughput: Vec<ThroughputRow>,
    /// Memory, space and bytes written by the preload.
    pub footprint: FootprintRow,
    /// Time to persist, if asked.
    pub persist: Option<PersistRow>,
    /// Seconds the untimed preload took.
    pub preload_secs: f64,
}

/// Arguments of the `cell` subcommand (the child side).
#[derive(Debug, clap::Args)]
pub struct CellArgs {
    /// The [`CellSpec`] as JSON.
    #[arg(long)]
    pub spec: String,
}

/// The line a cell prints once its figures are out.
const READY: &str = "READY";

/// The child side: runs the cell, prints the result and `READY`, then waits
/// to be killed (or for its standard input to close).
pub fn cell_main(args: CellArgs) -> Result<(), String> {
    let spec: CellSpec = serde_json::from_str(&args.spec).map_err(|e| format!("bad cell spec: {e}"))?;
    let result = run_cell(&spec).map_err(|e| format!("{} on {}: {e}", spec.engine, spec.data.label()))?;
    let mut out = std::io::stdout().lock();
    let line = serde_json::to_string(&result).map_err(|e| e.to_string())?;
    writeln!(out, "{line}\n{READY}").and_then(|()| out.flush()).map_err(|e| e.to_string())?;
    drop(out);
    // Hold the engine's files as they are until the parent kills us.
    let mut sink = String::new();
    let _ = std::io::stdin().read_line(&mut sink);
    Ok(())
}

fn run_cell(spec: &CellSpec) -> crate::engine::Result<CellResult> {
    let label = format!("{} {}", spec.engine, spec.data.label());
    let engine = spec.engine.open(&spec.dir)?;
    let written_before = measure::written_bytes();
    let progress = Progress::new(format!("{label}: preload"), spec.data.keys);
    let preload_secs = run::preload(engine.as_ref(), spec.data, spec.seed, &progress)?;
    progress.finish();
    let rss_bytes = measure::rss();
    let inserts = Inserts::after(spec.data);
    let mut throughput = Vec::new();
    let progress = Progress::new(format!("{label}: phases"), spec.phases.len() as u64);
    for (n, &phase) in spec.phases.iter().enumerate() {
        let seed = spec.seed.wrapping_add(n as u64);
        throughput.extend(run::phase(
            engine.as_ref(),
            spec.engine,
            spec.data,
            phase,
            spec.phase_secs,
            &inserts,
            seed,
        )?);
        progress.inc(1);
    }
    progress.finish();
    let pair_bytes = workload::KEY_BYTES as u64 + spec.data.value_bytes;
    let footprint = FootprintRow {
        engine: spec.engine,
        data: spec.data,
        peak_rss_bytes: measure::peak_rss(), // before the persist measure's writes
        rss_bytes,
        disk_bytes: measure::disk_usage(&spec.dir),
        live_bytes: (spec.data.keys + inserts.inserted(spec.data)) * pair_bytes,
        written_bytes: measure::written_bytes() - written_before,
        user_bytes_written: spec.data.user_bytes() + inserts.puts() * pair_bytes,
    };
    let persist = match spec.persist_secs {
        Some(secs) => Some(crate::persist::measure(engine.as_ref(), spec.engine, spec.data, secs)?),
        None => None,
    };
    // Leak the engine: the parent kills this process with it open.
    std::mem::forget(engine);
    Ok(CellResult { throughput, footprint, persist, preload_secs })
}

/// The parent side: runs `spec` in a child, reads its figures, then kills
/// the child with SIGKILL and reaps it, leaving the engine's files as a
/// crash left them.
pub fn run_and_kill(spec: &CellSpec) -> Result<CellResult, String> {
    let json = serde_json::to_string(spec).map_err(|e| e.to_string())?;
    let mut child = crate::child::command("cell")
        .map_err(|e| e.to_string())?
        .args(["--spec", &json])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start a cell: {e}"))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut result = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| e.to_string())?;
        if line == READY {
            break;
        }
        result =
            Some(serde_json::from_str::<CellResult>(&line).map_err(|e| format!("bad cell output: {e}"))?);
    }
    // SAFETY: kill(2) on our own child's pid, which has not been reaped yet.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
    let status = child.wait().map_err(|e| e.to_string())?;
    result.ok_or_else(|| format!("{} on {}: the cell failed ({status})", spec.engine, spec.data.label()))
}

/// Arguments of the `reopen` subcommand: time an engine's recovery.
#[derive(Debug, clap::Args)]
pub struct ReopenArgs {
    /// The engine and mode.
    #[arg(long)]
    pub engine: EngineKind,
    /// Its directory, as a crash left it.
    #[arg(long)]
    pub dir: PathBuf,
    /// Keys preloaded before the crash.
    #[arg(long)]
    pub keys: u64,
    /// Bytes per value.
    #[arg(long)]
    pub value_bytes: u64,
}

/// Keys looked up after a reopen to count how many survived: every key of
/// a data set up to this size, this many spread evenly over a larger one.
const RECOVERY_SAMPLE: u64 = 100_000;

/// The child side of a recovery: opens the engine, answers one read, and
/// prints a [`RecoveryRow`] as JSON; `keys_found` is exact up to
/// `RECOVERY_SAMPLE` keys and scaled from that many above.
pub fn reopen_main(args: ReopenArgs) -> Result<(), String> {
    let data = DataSet { keys: args.keys, value_bytes: args.value_bytes };
    let disk_bytes = measure::disk_usage(&args.dir);
    let started = std::time::Instant::now();
    let engine = args.engine.open(&args.dir).map_err(|e| format!("{}: reopen failed: {e}", args.engine))?;
    engine.get(&crate::workload::key(0)).map_err(|e| e.to_string())?;
    let open_secs = started.elapsed().as_secs_f64();
    let sample = RECOVERY_SAMPLE.min(data.keys.max(1));
    let mut found = 0;
    for n in 0..sample {
        let i = n * data.keys / sample;
        found += u64::from(engine.get(&crate::workload::key(i)).map_err(|e| e.to_string())?.is_some());
    }
    let row = RecoveryRow {
        engine: args.engine,
        data,
        disk_bytes,
        open_secs,
        keys_found: found * data.keys / sample,
    };
    engine.close().map_err(|e| e.to_string())?;
    println!("{}", serde_json::to_string(&row).map_err(|e| e.to_string())?);
    Ok(())
}

/// The parent side: times the recovery of `spec`'s engine in a fresh child.
pub fn recover(spec: &CellSpec) -> Result<RecoveryRow, String> {
    let out = crate::child::command("reopen")
        .map_err(|e| e.to_string())?
        .args(["--engine", spec.engine.name(), "--keys", &spec.data.keys.to_string()])
        .args(["--value-bytes", &spec.data.value_bytes.to_string()])
        .arg("--dir")
        .arg(&spec.dir)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot start a reopen: {e}"))?;
    if !out.status.success() {
        return Err(format!("{} on {}: reopen failed ({})", spec.engine, spec.data.label(), out.status));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("bad reopen output: {e}"))
}
