//! `logkv restore`, `logkv checkpoint export` and `logkv checkpoint
//! import`: a node's state moved into a new data directory, as of a point
//! in its past (restore) or as of now (export, then import elsewhere);
//! docs/compaction.md, "Point-in-time restore" and "Online backup".
//!
//! A directory imported for a node of a shared log is marked as the log's
//! copy here, as `logkv serve` would mark a new one: the marker holds the
//! log's identity (a stream's names its creation, which only the servers
//! know), and a directory holding a state without one is refused as an
//! embedded node's.

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::{ArgGroup, Args};
use logkv_fs::StdFs;
use logkv_nats::ConfigError;
use logkv_runtime::apply::Watched;
use logkv_runtime::shared_log::SharedLog;
use logkv_runtime::types::{version_position, StreamId};
use logkv_server::config::NatsSettings;
use logkv_server::replica::{self, ReplicaError};
use logkv_server::shared_log::{self, LogChoice, OpenError};
use logkv_store::{HeadInfo, Retention, Store};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::cli::GlobalArgs;
use crate::exit::{CliError, Outcome};
use crate::maintenance_cmds::{open_stopped, MaintenanceError, RemoteArgs, WhenRunning};

/// `logkv restore` flags.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("point").required(true).args(["to_version", "to_time"])))]
pub struct RestoreArgs {
    /// Restore as of this version (as `put` prints it): the last record
    /// kept is the newest at or below it.
    #[arg(long, value_name = "VERSION")]
    pub to_version: Option<u64>,
    /// Restore as of this time, RFC 3339 (e.g. 2025-05-01T12:00:00Z): the
    /// last record kept is the newest appended at or before it.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub to_time: Option<PointInTime>,
    /// The new data directory (absent or empty).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// An RFC 3339 time as given and in Unix milliseconds.
#[derive(Debug, Clone)]
pub struct PointInTime {
    text: String,
    unix_ms: u64,
}

/// `logkv checkpoint export` flags.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The file to write, which must not exist; with --remote, a path
    /// inside the node's backup_dir (a relative one is taken from there).
    pub file: PathBuf,
    #[command(flatten)]
    pub target: RemoteArgs,
}

/// `logkv checkpoint import` flags; the directory is `--data-dir`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The exported file.
    pub file: PathBuf,
    /// The shared log the node will follow, as `logkv serve --log` will
    /// get it: nats://HOST:PORT[,HOST:PORT...], tls://... or file:DIR (`file` or
    /// none: the node's own file log).
    #[arg(long, env = "LOGKV_LOG", value_name = "URL")]
    pub log: Option<String>,
    /// The JetStream stream's name.
    #[arg(long, env = "LOGKV_LOG_STREAM", value_name = "NAME", default_value = "logkv")]
    pub log_stream: String,
    /// The streams the node will apply, as `logkv serve --watch` will get
    /// them; the exporting node's must be the same [default: every stream].
    #[arg(long, env = "LOGKV_WATCH", value_name = "STREAM,...", value_delimiter = ',')]
    pub watch: Option<Vec<StreamId>>,
    /// The NATS connection's flags; `main` passes their values layered
    /// over the file and the environment (`config::load`).
    #[command(flatten)]
    pub nats: NatsSettings,
}

/// Why an export could not seed a node of a shared log.
#[derive(Debug)]
pub enum SharedLogError {
    /// `--log` or `--log-stream` cannot be used.
    Config(ConfigError),
    /// `--watch` without a shared log.
    WatchWithoutLog,
    /// The log cannot be reached or does not exist.
    Open(OpenError),
    /// The log's bounds cannot be read.
    Log(logkv_runtime::shared_log::SharedLogError),
    /// The async runtime cannot start.
    Runtime(io::Error),
    /// The log no longer holds the position after the export's.
    Trimmed { log: String, first_kept: u64, position: u64 },
    /// The export is past the log's end: it is not of this log.
    AheadOfStream { log: String, last: u64, position: u64 },
    /// The marker cannot be written.
    Marker(ReplicaError),
}

impl fmt::Display for SharedLogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SharedLogError::Config(e) => write!(f, "--log: {e}"),
            SharedLogError::WatchWithoutLog => f.write_str(
                "--watch needs a shared log (--log): a node on its own file log applies every stream",
            ),
            SharedLogError::Open(e) => e.fmt(f),
            SharedLogError::Log(e) => e.fmt(f),
            SharedLogError::Runtime(e) => write!(f, "runtime: {e}"),
            SharedLogError::Trimmed { log, first_kept, position } => write!(
                f,
                "{log} was trimmed past the export: it starts at position {first_kept}, but the \
                 export holds up to position {position} and a node started from it needs {} next; export \
                 again from a node that is caught up; nothing imported",
                position + 1
            ),
            SharedLogError::AheadOfStream { log, last, position } => write!(
                f,
                "the export holds up to position {position}, past the end of {log} (position {last}): it is \
                 not a copy of this log; nothing imported"
            ),
            SharedLogError::Marker(e) => e.fmt(f),
        }
    }
}

impl SharedLogError {
    /// Whether the flags are at fault.
    pub fn is_usage(&self) -> bool {
        matches!(self, SharedLogError::Config(_) | SharedLogError::WatchWithoutLog)
            || matches!(self, SharedLogError::Open(e) if e.is_usage())
    }
}

impl From<SharedLogError> for CliError {
    fn from(e: SharedLogError) -> Self {
        MaintenanceError::SharedLog(e).into()
    }
}

/// `logkv restore (--to-version V | --to-time T) --out DIR`.
pub fn restore(global: &GlobalArgs, args: RestoreArgs) -> Result<Outcome, CliError> {
    refuse_non_empty(&args.out, "restore")?;
    let store = open_stopped(global, Retention::default(), WhenRunning::StopIt)?;
    let (version, point) = match (args.to_version, args.to_time) {
        (Some(version), _) => {
            let newest = store.version();
            if version > newest {
                return Err(MaintenanceError::VersionAhead { asked: version, newest }.into());
            }
            (version, format!("version {version}"))
        }
        (None, Some(time)) => (store.version_at_time(time.unix_ms)?, time.text),
        (None, None) => unreachable!("clap requires --to-version or --to-time"),
    };
    let created = !args.out.exists();
    let restored = match store.restore(version, &args.out) {
        // Nothing was copied: an empty directory is no restored state.
        Ok(report) if report.version == 0 => Err(MaintenanceError::NothingBefore(point).into()),
        restored => restored.map_err(CliError::from),
    };
    if restored.is_err() && created {
        // Nothing in it is anyone's but this command's.
        let _ = std::fs::remove_dir_all(&args.out);
    }
    let report = restored?;
    store.close()?;
    writeln!(
        io::stdout().lock(),
        "restored version={} position={} bytes={} out={}",
        report.version,
        version_position(report.version),
        report.bytes,
        args.out.display()
    )
    .map_err(CliError::Output)?;
    Ok(Outcome::Ok)
}

/// `logkv checkpoint export FILE [--remote URL]`.
pub fn export(global: &GlobalArgs, args: ExportArgs) -> Result<Outcome, CliError> {
    let report = match args.target.node(global.server_ca.as_deref())? {
        // The node writes into its backup_dir; a relative path is taken
        // from there (docs/server.md, "HTTP access").
        Some(node) => node.block_on(node.client.export(&args.file))?,
        None => {
            // Absolute, so the store syncs the directory it is written in.
            let path = std::path::absolute(&args.file)
                .map_err(|e| CliError::BadInput(format!("export file {}: {e}", args.file.display())))?;
            if path.exists() {
                return Err(MaintenanceError::Exists(path).into());
            }
            let parent = path.parent().and_then(|p| p.canonicalize().ok());
            if parent
                .is_some_and(|p| global.store.data_dir.canonicalize().is_ok_and(|dir| p.starts_with(dir)))
            {
                return Err(MaintenanceError::InsideDataDir(path).into());
            }
            let store = open_stopped(global, Retention::default(), WhenRunning::UseRemote)?;
            let report = store.export(&path)?;
            store.close()?;
            report
        }
    };
    writeln!(
        io::stdout().lock(),
        "exported position={} version={} keys={} bytes={} path={}",
        version_position(report.version),
        report.version,
        report.keys,
        report.bytes,
        report.path.display()
    )
    .map_err(CliError::Output)?;
    Ok(Outcome::Ok)
}

/// `logkv checkpoint import FILE --data-dir DIR [--log URL --log-stream NAME
/// [--watch STREAM,...]]`, reaching a stream with `nats` (the loaded NATS
/// connection settings).
pub fn import(global: &GlobalArgs, args: ImportArgs, nats: &NatsSettings) -> Result<Outcome, CliError> {
    let dir = &global.store.data_dir;
    refuse_non_empty(dir, "import")?;
    let choice = match args.log.as_deref() {
        Some(log) => LogChoice::parse(log, &args.log_stream, 1, nats).map_err(SharedLogError::Config)?,
        None => None,
    };
    if choice.is_none() && args.watch.is_some() {
        return Err(SharedLogError::WatchWithoutLog.into());
    }
    let shared = match choice {
        Some(choice) => Some(choice.open_existing().map_err(SharedLogError::Open)?),
        None => None,
    };
    let created = !dir.exists();
    let info = Store::import(&StdFs, &args.file, dir)?;
    let mut out = io::stdout().lock();
    writeln!(
        out,
        "imported position={} version={} bytes={} data_dir={}",
        version_position(info.last_version),
        info.last_version,
        info.table_end,
        dir.display()
    )
    .map_err(CliError::Output)?;
    if let Some(log) = shared {
        let watched = match args.watch {
            Some(streams) => Watched::Only(streams.into_iter().collect()),
            None => Watched::All,
        };
        let marked = mark(&log, &info, dir, &watched);
        log.close();
        if let Err(e) = marked {
            undo_import(dir, created);
            return Err(e.into());
        }
        let next = version_position(info.last_version) + 1;
        writeln!(out, "follows log={} from_position={next}", log.identity()).map_err(CliError::Output)?;
    }
    Ok(Outcome::Ok)
}

/// Checks the log still holds what a node started from the export needs
/// next, then marks `dir` as the log's copy.
pub(crate) fn mark(
    log: &impl SharedLog,
    info: &HeadInfo,
    dir: &Path,
    watched: &Watched,
) -> Result<(), SharedLogError> {
    // The log position the node resumes after (its version's, as the
    // replica reads it), not the store's own log position.
    let position = version_position(info.last_version);
    let (first_kept, last) =
        shared_log::block_on(async { Ok((log.first_position().await?, log.tail().await?)) })
            .map_err(SharedLogError::Runtime)?
            .map_err(SharedLogError::Log)?;
    if position > last {
        return Err(SharedLogError::AheadOfStream { log: log.identity(), last, position });
    }
    if position + 1 < first_kept {
        return Err(SharedLogError::Trimmed { log: log.identity(), first_kept, position });
    }
    replica::mark_copy(dir, log, watched).map_err(SharedLogError::Marker)
}

/// Removes what the import wrote into `dir` (empty before it, but for
/// hidden files), and `dir` itself if the import created it.
fn undo_import(dir: &Path, created: bool) {
    if created {
        let _ = std::fs::remove_dir_all(dir);
        return;
    }
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if !entry.file_name().to_string_lossy().starts_with('.') {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Refuses a directory that holds anything but hidden files (what the
/// store would refuse too), before the source is opened and replayed.
pub fn refuse_non_empty(dir: &Path, what: &'static str) -> Result<(), MaintenanceError> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(()) };
    if entries.flatten().any(|e| !e.file_name().to_string_lossy().starts_with('.')) {
        return Err(MaintenanceError::NotEmpty { dir: dir.to_path_buf(), what });
    }
    Ok(())
}

/// An RFC 3339 time, at or after the Unix epoch.
fn parse_time(text: &str) -> Result<PointInTime, String> {
    let time = OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|e| format!("{text:?} is not an RFC 3339 time such as 2025-05-01T12:00:00Z: {e}"))?;
    let unix_ms = u64::try_from(time.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| format!("{text} is before 1970, when no log was written"))?;
    Ok(PointInTime { text: text.to_string(), unix_ms })
}
