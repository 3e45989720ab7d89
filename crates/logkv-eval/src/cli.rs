//! The harness's commands, shared by the `logkv-eval` binary and
//! `logkv bench`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::config::{Config, ConfigName};
use crate::engine::EngineKind;

/// A harness command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs a configuration and writes its run record (JSON).
    Run(RunArgs),
    /// Writes the report (README.md and charts/*.svg) from the run records.
    Report(ReportArgs),
    /// Runs one engine on one data set (a child of `run`).
    #[command(hide = true)]
    Cell(crate::cell::CellArgs),
    /// Times an engine's recovery (a child of `run`).
    #[command(hide = true)]
    Reopen(crate::cell::ReopenArgs),
    /// Writes and acknowledges until killed (a child of the failure trials).
    #[command(hide = true)]
    Writer(crate::failure::WriterArgs),
}

/// Arguments of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// `smoke` (seconds) or `full` (the evaluation).
    #[arg(long, value_enum, default_value = "smoke")]
    pub config: ConfigName,
    /// Engines to run, comma-separated (default: every engine this binary
    /// was built with).
    #[arg(long, value_delimiter = ',')]
    pub engines: Vec<EngineKind>,
    /// Directory of run records; the record is `<config>.json` there.
    #[arg(long, default_value = "docs/evaluation/runs")]
    pub runs: PathBuf,
    /// Where engines keep their data while they run.
    #[arg(long, default_value_os_t = std::env::temp_dir().join("logkv-eval"))]
    pub work_dir: PathBuf,
}

/// Arguments of `report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Directory of run records.
    #[arg(long, default_value = "docs/evaluation/runs")]
    pub runs: PathBuf,
    /// Where README.md and charts/ are written (conclusions.md is read there).
    #[arg(long, default_value = "docs/evaluation")]
    pub out: PathBuf,
}

/// Runs `command`.
pub fn main(command: Command) -> Result<(), String> {
    match command {
        Command::Run(args) => run(args),
        Command::Report(args) => {
            let summary = crate::report::write_report(&args.runs, &args.out)?;
            eprintln!("report: {} ({} charts)", summary.readme.display(), summary.charts.len());
            Ok(())
        }
        Command::Cell(args) => crate::cell::cell_main(args),
        Command::Reopen(args) => crate::cell::reopen_main(args),
        Command::Writer(args) => crate::failure::writer_main(args),
    }
}

fn run(args: RunArgs) -> Result<(), String> {
    let config = Config::named(args.config);
    let engines = if args.engines.is_empty() {
        EngineKind::ALL.into_iter().filter(|k| k.available()).collect()
    } else {
        args.engines
    };
    if let Some(k) = engines.iter().find(|k| !k.available()) {
        return Err(format!("{k} was not built: rebuild with `--features peers`"));
    }
    let options = crate::suite::Options { engines, work_dir: args.work_dir.clone() };
    let record = crate::suite::run(&config, &options)?;
    let _ = std::fs::remove_dir_all(&args.work_dir);
    std::fs::create_dir_all(&args.runs).map_err(|e| format!("{}: {e}", args.runs.display()))?;
    let path = args.runs.join(format!("{}.json", config.name));
    record.save(&path)?;
    eprintln!("run record: {} ({:.0} s)", path.display(), record.elapsed_secs);
    for target in crate::report::summarize_targets(&record) {
        eprintln!("{target}");
    }
    Ok(())
}
