//! `logkv checkpoint` and `logkv compact`: the store's upkeep on demand,
//! on the data directory of a stopped node or, with `--remote`, by a
//! running node (`admin_checkpoint`, `admin_compact`), which holds its
//! directory locked. docs/compaction.md says what each does.
//!
//! Local and remote runs print the same line, from the store's report or
//! from the node's answer, so scripts read one format. Positions printed
//! are the node's, of its version (`admin_nodeInfo`'s `appliedPosition`):
//! its own log's position, or on a shared log the stream's, which is the
//! one `logkv log trim` takes (the store's own log may number its records
//! differently there). Compaction's report has no version: it names the
//! store's own log position, as `through_log_position`.

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand};
use logkv_runtime::types::version_position;
use logkv_store::{Retention, Store, StoreError};

use crate::cli::GlobalArgs;
use crate::exit::{serve_url, CliError, Outcome};
use crate::progress::{Compaction, Replay};
use crate::remote::Remote;

/// `--remote URL` and the token its administrative calls present.
#[derive(Debug, Args)]
pub struct RemoteArgs {
    /// Have the running node whose JSON-RPC is at URL do it, instead of
    /// opening --data-dir (which a running node holds locked).
    #[arg(long, value_name = "URL")]
    pub remote: Option<String>,
    /// The node's admin token (with --remote).
    #[arg(long, env = "LOGKV_ADMIN_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
}

impl RemoteArgs {
    /// The node of `--remote`, if given, trusting `ca_cert` too.
    pub fn node(&self, ca_cert: Option<&Path>) -> Result<Option<Remote>, CliError> {
        let Some(url) = self.remote.as_deref() else { return Ok(None) };
        Remote::connect(url, ca_cert, self.admin_token.as_deref()).map(Some)
    }
}

/// `logkv checkpoint`: a checkpoint now, or one of its subcommands.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct CheckpointArgs {
    #[command(subcommand)]
    pub command: Option<CheckpointCommand>,
    #[command(flatten)]
    pub target: RemoteArgs,
}

/// `logkv checkpoint export|import`.
#[derive(Debug, Subcommand)]
pub enum CheckpointCommand {
    /// Writes FILE: every key's newest version, taken while writes go on.
    ///
    /// The state is the one as of the newest record when the export
    /// starts; `checkpoint import` seeds a new data directory with it.
    /// Prints `exported position=P version=V keys=N bytes=N path=FILE`.
    Export(crate::backup_cmds::ExportArgs),
    /// Makes an exported FILE the start of a new data directory.
    ///
    /// The directory (--data-dir) must be absent or empty; it opens at the
    /// record the export was taken at. Prints `imported position=P
    /// version=V bytes=N data_dir=DIR`.
    ///
    /// For a node of a shared log, give the stream it follows (--log,
    /// --log-stream and --watch as `logkv serve` will get them): the
    /// directory is marked as that stream's copy, and the node resumes
    /// tailing the stream after the export's position (printed as
    /// `follows stream=S from_position=P`). The stream must still hold
    /// that position.
    ///
    /// The node key is not in the export: the new node signs with a key of
    /// its own, made on its first write (it must not sign as the exporting
    /// node's account while that one runs).
    Import(Box<crate::backup_cmds::ImportArgs>),
}

/// `logkv compact` flags.
#[derive(Debug, Args)]
pub struct CompactArgs {
    /// Keep each key's newest N versions (at least 1; the newest always
    /// stays). Without --retain-*, nothing is dropped: the log is only
    /// rewritten.
    #[arg(
        long,
        value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..),
        conflicts_with = "remote"
    )]
    pub retain_versions: Option<u32>,
    /// Keep every version written within this long (e.g. `7d`, `12h`,
    /// `30m`, `90s`), plus each key's version just before it.
    #[arg(
        long,
        value_name = "DURATION",
        value_parser = logkv_server::config::parse_duration,
        conflicts_with = "remote"
    )]
    pub retain_duration: Option<Duration>,
    #[command(flatten)]
    pub target: RemoteArgs,
}

/// Why a maintenance command did not run.
#[derive(Debug)]
pub enum MaintenanceError {
    /// A running node holds the data directory; `hint` says what to do.
    Running { dir: PathBuf, holder: String, hint: String },
    /// The directory to build is not empty.
    NotEmpty { dir: PathBuf, what: &'static str },
    /// The export would replace an existing file.
    Exists(PathBuf),
    /// The export would be written inside the data directory.
    InsideDataDir(PathBuf),
    /// The version asked for is past the newest one.
    VersionAhead { asked: u64, newest: u64 },
    /// Nothing was written by the point asked for.
    NothingBefore(String),
    /// A node of a shared log could not be started from the export.
    SharedLog(crate::backup_cmds::SharedLogError),
    /// An old directory's records could not be written again as they were.
    Migration(String),
    /// A file could not be read or written.
    Io(PathBuf, std::io::Error),
}

impl fmt::Display for MaintenanceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MaintenanceError::Running { dir, holder, hint } => {
                write!(f, "data directory {} is in use: {holder}; {hint}", dir.display())
            }
            MaintenanceError::NotEmpty { dir, what } => {
                write!(f, "{} is not empty: {what} builds a new data directory", dir.display())
            }
            MaintenanceError::Exists(path) => {
                write!(f, "{} exists: export to a new file (an export never replaces one)", path.display())
            }
            MaintenanceError::InsideDataDir(path) => write!(
                f,
                "{} is inside the data directory, where it could be taken for the node's own file; export \
                 elsewhere",
                path.display()
            ),
            MaintenanceError::VersionAhead { asked, newest } => {
                write!(f, "version {asked} is newer than the log, whose newest version is {newest}")
            }
            MaintenanceError::NothingBefore(point) => {
                write!(f, "nothing was written at or before {point}: there is no state to restore")
            }
            MaintenanceError::SharedLog(e) => e.fmt(f),
            MaintenanceError::Migration(why) => write!(f, "cannot migrate: {why}"),
            MaintenanceError::Io(path, e) => write!(f, "{}: {e}", path.display()),
        }
    }
}

impl MaintenanceError {
    /// Whether the command asked for something that cannot be (exit 2),
    /// not something the data or the machine refused (exit 3).
    pub fn is_usage(&self) -> bool {
        match self {
            MaintenanceError::Running { .. } | MaintenanceError::Migration(_) | MaintenanceError::Io(..) => {
                false
            }
            MaintenanceError::SharedLog(e) => e.is_usage(),
            _ => true,
        }
    }
}

impl From<MaintenanceError> for CliError {
    fn from(e: MaintenanceError) -> Self {
        CliError::Maintenance(e)
    }
}

/// What to tell the user whose data directory a running node holds.
pub enum WhenRunning {
    /// The command takes `--remote`.
    UseRemote,
    /// The command needs the directory itself.
    StopIt,
}

/// Opens the store in a stopped node's data directory (a replay bar on a
/// terminal, a warning for a cut-off tail) with `retention` for what
/// compaction may drop.
pub fn open_stopped(global: &GlobalArgs, retention: Retention, when: WhenRunning) -> Result<Store, CliError> {
    let options = logkv_store::StoreOptions { retention, ..global.store.store_options() };
    let mut replay = Replay::default();
    let opened = Store::open_with_progress(&global.store.data_dir, options, &mut |done, total| {
        replay.update(done, total)
    });
    drop(replay);
    let store = match opened {
        Ok(store) => store,
        Err(StoreError::Locked { dir, holder }) => {
            let hint = match (when, serve_url(&holder)) {
                (WhenRunning::UseRemote, Some(url)) => {
                    format!("it is held by a running logkv server: ask it with --remote {url} (and --admin-token)")
                }
                (WhenRunning::UseRemote, None) => {
                    "if that is a running logkv server, ask it with --remote URL (and --admin-token)".into()
                }
                (WhenRunning::StopIt, _) => {
                    "this command reads a stopped node's directory: stop it first".into()
                }
            };
            return Err(MaintenanceError::Running { dir, holder, hint }.into());
        }
        Err(e) => return Err(e.into()),
    };
    crate::commands::warn_recovery(store.recovery_report());
    for (path, why) in &store.open_report().skipped_checkpoints {
        eprintln!("logkv: warning: checkpoint {} not used: {why}", path.display());
    }
    Ok(store)
}

/// `logkv checkpoint [--remote URL]`.
pub fn checkpoint(global: &GlobalArgs, target: RemoteArgs) -> Result<Outcome, CliError> {
    let mut out = io::stdout().lock();
    let report = match target.node(global.server_ca.as_deref())? {
        Some(node) => node.block_on(node.client.checkpoint())?,
        None => {
            let store = open_stopped(global, Retention::default(), WhenRunning::UseRemote)?;
            // What this open started from and replayed: the next one, from
            // the checkpoint, replays only what is written after it.
            let opened = store.open_report();
            let from = match (opened.checkpoint, opened.compacted_through) {
                (Some(_), _) => "checkpoint",
                (None, 0) => "log",
                (None, _) => "compacted",
            };
            writeln!(out, "opened from={from} replayed_records={}", opened.replayed_records)
                .map_err(CliError::Output)?;
            let report = store.checkpoint()?;
            store.close()?;
            report
        }
    };
    writeln!(
        out,
        "checkpoint position={} version={} keys={} bytes={} elapsed_ms={} path={}",
        version_position(report.version),
        report.version,
        report.keys,
        report.bytes,
        report.elapsed.as_millis(),
        report.path.display()
    )
    .map_err(CliError::Output)?;
    Ok(Outcome::Ok)
}

/// `logkv compact [--retain-versions N] [--retain-duration D] [--remote URL]`.
pub fn compact(global: &GlobalArgs, args: CompactArgs) -> Result<Outcome, CliError> {
    let report = match args.target.node(global.server_ca.as_deref())? {
        Some(node) => node.block_on(node.client.compact())?,
        None => {
            let retention = Retention {
                versions: args.retain_versions,
                duration: args.retain_duration,
                tombstone_horizon: None,
            };
            let store = open_stopped(global, retention, WhenRunning::UseRemote)?;
            let mut bar = Compaction::default();
            let report = store.compact(&mut |done, total| bar.update(done, total));
            drop(bar);
            let report = report?;
            store.close()?;
            report
        }
    };
    writeln!(
        io::stdout().lock(),
        "compacted through_log_position={} keys={} versions_kept={} histories_cut={} keys_dropped={} \
         horizon={} input_bytes={} output_bytes={} elapsed_ms={}",
        report.compacted_through,
        report.keys,
        report.versions_kept,
        report.histories_cut,
        report.keys_dropped,
        report.horizon,
        report.input_bytes,
        report.output_bytes,
        report.elapsed.as_millis()
    )
    .map_err(CliError::Output)?;
    Ok(Outcome::Ok)
}
