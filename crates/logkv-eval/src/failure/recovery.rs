//! Recovery time after `kill -9`: a child loads a data set and is killed
//! once it says it is done; a fresh child then opens what it left and reads
//! one key, and that time is the figure. Reopening in a child of its own
//! (not in the harness) gives every engine the same process state.
//!
//! The kill lands once the load is on stable storage, for engines that can
//! tell (`Engine::persisted_through`: logkv's `periodic` window, the naive
//! engine's next snapshot), and right after the last write returned for
//! the others, so the reopen recovers the whole data set unless an engine
//! still held part of it in its own memory; `keys_found` shows how much.

use std::path::Path;

use super::writer::ReopenReport;
use super::{disk_usage, kill_9, lines, spawn, WriterArgs, WriterMode};
use crate::engine::EngineKind;
use crate::progress::Progress;
use crate::record::{DataSet, RecoveryRow};

/// Seconds a loader waits to be killed, and a reopening child to finish,
/// before giving up.
const CHILD_MAX_SECS: u64 = 3600;

/// Loads `data` into `kind` in `dir` in a child, kills it with `kill -9`
/// once the load is done (see the module docs), and reopens in a fresh
/// child. `dir` must
/// be missing or empty; it is removed on success. `progress` counts keys
/// loaded.
///
/// `keys_found` is exact up to 100,000 keys; for larger data sets it is the
/// share found among 100,000 evenly spread keys, scaled to `data.keys`.
pub fn recovery(
    kind: EngineKind,
    data: DataSet,
    dir: &Path,
    progress: &Progress,
) -> Result<RecoveryRow, String> {
    if !kind.available() {
        return Err(format!("{kind} was not built: rebuild logkv-eval with `--features peers`"));
    }
    let at = |e: std::io::Error| format!("{}: {e}", dir.display());
    if dir.exists() && std::fs::read_dir(dir).map_err(at)?.next().is_some() {
        return Err(format!("{} is not empty", dir.display()));
    }
    std::fs::create_dir_all(dir).map_err(at)?;
    let threads = std::thread::available_parallelism().map_or(4, |n| n.get()).min(8) as u32;
    let load = WriterArgs {
        engine: kind,
        dir: dir.to_path_buf(),
        mode: WriterMode::Load,
        keys: data.keys,
        value_bytes: data.value_bytes as usize,
        seed: 0,
        threads,
        naive_snapshot_ms: None,
        max_secs: CHILD_MAX_SECS,
    };

    let mut child = spawn(&load)?;
    let out = child.stdout.take().ok_or("the loader's stdout was not piped")?;
    let (mut shown, mut loaded) = (0u64, false);
    let read = lines(out, |line| {
        let (word, n) = line.split_once(' ').unwrap_or((line, ""));
        let Ok(n) = n.parse::<u64>() else { return Ok(true) };
        match word {
            "progress" | "loaded" => {
                progress.inc(n.saturating_sub(shown));
                shown = shown.max(n);
                loaded = word == "loaded";
                Ok(!loaded)
            }
            _ => Ok(true),
        }
    });
    if !loaded {
        let _ = child.kill();
        let status = child.wait().map_err(|e| e.to_string())?;
        read?;
        return Err(format!("{kind}: the loader ended without loading {}: {status}", data.label()));
    }
    kill_9(&mut child).map_err(|e| format!("{kind} loader: {e}"))?;
    let disk_bytes = disk_usage(dir);

    let reopen = WriterArgs { mode: WriterMode::Reopen, ..load };
    let mut child = spawn(&reopen)?;
    let out = child.stdout.take().ok_or("the reopening child's stdout was not piped")?;
    let mut report = None;
    lines(out, |line| {
        if line.starts_with('{') {
            report = Some(serde_json::from_str::<ReopenReport>(line).map_err(|e| format!("{line:?}: {e}"))?);
        }
        Ok(true)
    })?;
    let status = child.wait().map_err(|e| e.to_string())?;
    let report = match report {
        Some(r) if status.success() => r,
        _ => return Err(format!("{kind}: reopening {} after kill -9 failed: {status}", dir.display())),
    };
    std::fs::remove_dir_all(dir).map_err(at)?;
    Ok(RecoveryRow {
        engine: kind,
        data,
        disk_bytes,
        open_secs: report.open_secs,
        keys_found: report.keys_found,
    })
}
