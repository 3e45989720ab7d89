//! The report: `docs/evaluation/README.md` and its SVG charts, regenerated
//! from the run records in `docs/evaluation/runs/` alone.
//!
//! [`write_report`] reads every `*.json` record, shows the newest `full` run
//! (the newest run of any configuration when there is none), lists every
//! record it read, and writes the page: how to rerun, the machine and
//! versions, the engines with their promise, then throughput, latency,
//! memory and space, recovery, data lost and time to persist, each a table
//! with its chart, then the targets judged from those figures and the
//! hand-written conclusions (`conclusions.md` beside the page).

mod charts;
mod fmt;
mod plot;
mod tables;
mod targets;
mod view;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

pub use self::targets::{summarize_targets, Outcome, TargetRow, FSYNC_BOUND_SHARE};
use crate::record::RunRecord;

/// The configuration whose newest run the report shows when there is one.
pub const MAIN_CONFIG: &str = "full";

/// What [`write_report`] did.
#[derive(Debug, Clone)]
pub struct ReportSummary {
    /// The record the page shows.
    pub shown: PathBuf,
    /// Its configuration.
    pub config: String,
    /// Every record read, in file-name order, with what the page made of it.
    pub runs: Vec<RunFile>,
    /// `*.json` files that are not readable records, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
    /// The page written.
    pub readme: PathBuf,
    /// The charts written.
    pub charts: Vec<PathBuf>,
    /// The targets, judged from the record shown.
    pub targets: Vec<TargetRow>,
}

/// One record read.
#[derive(Debug, Clone)]
pub struct RunFile {
    /// File name within the runs directory.
    pub file: String,
    /// Its configuration.
    pub config: String,
    /// When it started (seconds since the Unix epoch).
    pub started_unix: u64,
    /// How long it ran, in seconds.
    pub elapsed_secs: f64,
    /// What the page made of it.
    pub role: RunRole,
}

/// What the page made of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunRole {
    /// Its figures are the page's.
    Shown,
    /// The newest run of another configuration, listed only.
    NewestOfConfig,
    /// A newer run of the same configuration exists: this file.
    Superseded {
        /// The newer record's file name.
        by: String,
    },
}

/// Reads the records in `runs_dir`, writes `out_dir/README.md` and
/// `out_dir/charts/*.svg` (removing SVG files there that it no longer
/// draws), and says what it did. Fails when no record can be read or a file
/// cannot be written.
pub fn write_report(runs_dir: &Path, out_dir: &Path) -> Result<ReportSummary, String> {
    let (records, skipped) = load_runs(runs_dir)?;
    let runs = roles(&records);
    let shown_index = runs.iter().position(|r| r.role == RunRole::Shown).expect("one record is shown");
    let (shown_path, record) = &records[shown_index];

    let drawn = draw_charts(record)?;
    let chart_dir = out_dir.join("charts");
    std::fs::create_dir_all(&chart_dir).map_err(|e| format!("{}: {e}", chart_dir.display()))?;
    let mut chart_paths = Vec::new();
    for chart in &drawn {
        let path = chart_dir.join(&chart.file);
        std::fs::write(&path, &chart.svg).map_err(|e| format!("{}: {e}", path.display()))?;
        chart_paths.push(path);
    }
    remove_stale_charts(&chart_dir, &drawn)?;

    let conclusions_path = out_dir.join("conclusions.md");
    let conclusions = std::fs::read_to_string(&conclusions_path).ok();
    let targets = summarize_targets(record);
    let skipped_names: Vec<(String, String)> =
        skipped.iter().map(|(p, why)| (file_name(p), why.clone())).collect();
    let page = readme(record, &runs, &skipped_names, &drawn, &targets, conclusions.as_deref());
    let readme_path = out_dir.join("README.md");
    std::fs::write(&readme_path, page).map_err(|e| format!("{}: {e}", readme_path.display()))?;

    Ok(ReportSummary {
        shown: shown_path.clone(),
        config: record.config.clone(),
        runs,
        skipped,
        readme: readme_path,
        charts: chart_paths,
        targets,
    })
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// Every `*.json` in `dir` in file-name order: the records, and the files
/// that are not records with the reason.
type Loaded = (Vec<(PathBuf, RunRecord)>, Vec<(PathBuf, String)>);

fn load_runs(dir: &Path) -> Result<Loaded, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    let (mut records, mut skipped) = (Vec::new(), Vec::new());
    for path in paths {
        match RunRecord::load(&path) {
            Ok(record) => records.push((path, record)),
            Err(e) => {
                let why = e.strip_prefix(&format!("{}: ", path.display())).map_or(e.clone(), str::to_string);
                skipped.push((path, why));
            }
        }
    }
    if records.is_empty() {
        let why = skipped.first().map_or(String::new(), |(_, e)| format!(" (first error: {e})"));
        return Err(format!("no run record in {}{why}", dir.display()));
    }
    Ok((records, skipped))
}

/// Newest per configuration (by start time, then file name); the shown one
/// is the newest `full` run, else the newest run of all.
fn roles(records: &[(PathBuf, RunRecord)]) -> Vec<RunFile> {
    let newer = |a: usize, b: usize| {
        let key = |i: usize| (records[i].1.started_unix, file_name(&records[i].0));
        if key(a) >= key(b) {
            a
        } else {
            b
        }
    };
    let newest_of = |config: &str| {
        (0..records.len())
            .filter(|&i| records[i].1.config == config)
            .reduce(newer)
            .expect("config has a record")
    };
    let shown = if records.iter().any(|(_, r)| r.config == MAIN_CONFIG) {
        newest_of(MAIN_CONFIG)
    } else {
        (0..records.len()).reduce(newer).expect("at least one record")
    };
    records
        .iter()
        .enumerate()
        .map(|(i, (path, r))| {
            let newest = newest_of(&r.config);
            let role = if i == shown {
                RunRole::Shown
            } else if i == newest {
                RunRole::NewestOfConfig
            } else {
                RunRole::Superseded { by: file_name(&records[newest].0) }
            };
            RunFile {
                file: file_name(path),
                config: r.config.clone(),
                started_unix: r.started_unix,
                elapsed_secs: r.elapsed_secs,
                role,
            }
        })
        .collect()
}

fn draw_charts(r: &RunRecord) -> Result<Vec<charts::Chart>, String> {
    let mut out = Vec::new();
    for data in view::throughput_datasets(r) {
        out.extend(charts::throughput(r, data)?);
    }
    out.extend(charts::latency(r)?);
    out.extend(charts::memory(r)?);
    out.extend(charts::recovery(r)?);
    out.extend(charts::loss(r)?);
    out.extend(charts::persist(r)?);
    Ok(out)
}

/// Removes `*.svg` files in the chart directory that this report did not draw.
fn remove_stale_charts(dir: &Path, drawn: &[charts::Chart]) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        let name = file_name(&path);
        if path.extension().is_some_and(|x| x == "svg") && !drawn.iter().any(|c| c.file == name) {
            std::fs::remove_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    Ok(())
}

const INTRO: &str = "\
This evaluation asks whether logkv's design pays for itself. logkv is a log-structured key-value \
store: every write is appended to a log of segment files and an index in memory says where each \
key's newest value lies, so a write is an append and a read is an index lookup plus a read from \
the log. The simplest alternative is a naive hash table kept in memory and made durable by \
writing a full snapshot periodically; the established alternatives are embedded engines \
(RocksDB, fjall, redb, sled) run in comparable durability modes. Each engine is labelled with \
its promise, what an acknowledged write survives, and engines are compared within a promise. \
The figures are throughput and latency under YCSB-style workloads, memory and disk space with \
write amplification, time to reopen after `kill -9`, acknowledged writes lost to `kill -9` and \
to power loss, and how long an acknowledged write waits before it is on stable storage.";

const RERUN: &str = "\
Each run writes one JSON record into `docs/evaluation/runs/`. This page and its charts are \
generated from those records alone: edit `conclusions.md`, not this file.

```sh
# smoke run: small data sets, short phases
cargo run --release -p logkv-eval -- run --config smoke
# full run, with the peer engines built in
cargo run --release -p logkv-eval --features peers -- run --config full
# regenerate this page and charts/ from the records
cargo run --release -p logkv --features bench -- bench report
# or
cargo run -p logkv-eval -- report
```
";

/// The whole page.
fn readme(
    r: &RunRecord,
    runs: &[RunFile],
    skipped: &[(String, String)],
    charts: &[charts::Chart],
    targets: &[TargetRow],
    conclusions: Option<&str>,
) -> String {
    let shown = runs.iter().find(|f| f.role == RunRole::Shown).map_or("", |f| f.file.as_str());
    let mut out = String::new();
    let _ = writeln!(out, "# logkv evaluation\n");
    let _ = writeln!(
        out,
        "_Generated by `logkv-eval report` from `runs/{shown}` (config `{}`, started {}, ran {})._\n",
        r.config,
        fmt::utc(r.started_unix),
        fmt::wall(r.elapsed_secs)
    );
    let _ = writeln!(out, "{INTRO}\n");
    let sections: [(&str, String); 12] = [
        ("How to rerun", RERUN.to_string()),
        ("Runs", tables::runs(runs, skipped)),
        ("Machine and versions", tables::machine(r)),
        ("Engines", tables::engines(r)),
        ("Throughput", tables::throughput(r, charts)),
        ("Latency", tables::latency(r, charts)),
        ("Memory and space", tables::memory(r, charts)),
        ("Recovery", tables::recovery(r, charts)),
        ("Data lost", tables::loss(r, charts)),
        ("Time to persist", tables::persist(r, charts)),
        ("Targets", tables::targets(targets)),
        ("Conclusions", tables::conclusions(conclusions)),
    ];
    for (title, body) in sections {
        let _ = writeln!(out, "## {title}\n\n{}", body.trim_end());
        out.push('\n');
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}
