//! `logkv repair`: a stopped shared-log node's damaged local log repaired
//! from the stream it follows, byte for byte at the same offsets
//! (`logkv_runtime::repair`); or, with `--from-export FILE` where that
//! cannot be done, its copy rebuilt from another node's export, which
//! `logkv serve` then brings up to date from the stream. The damaged
//! directory is set aside under a new name, never deleted
//! (docs/distributed.md, "Repair").

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use logkv_fs::{FileSystem, LockError, StdFs};
use logkv_nats::ConfigError;
use logkv_runtime::repair::{RepairError, RepairReport};
use logkv_runtime::shared_log::SharedLog;
use logkv_runtime::types::version_position;
use logkv_server::config::Loaded;
use logkv_server::shared_log::{OpenError, ServerLog};
use logkv_server::ServeConfig;
use logkv_store::{Store, StoreError, LOCK_FILE};

use crate::exit::{CliError, Outcome};

/// `logkv repair`'s flags: the node's settings as `logkv serve` gets them,
/// and the fallback.
#[derive(Debug, Args)]
pub struct RepairArgs {
    /// The node's settings (data directory, --log, --log-stream, --watch,
    /// the store's); `main` layers them over the file and the environment.
    #[command(flatten)]
    pub settings: ServeConfig,
    /// Where the damage cannot be reproduced from the stream (trimmed
    /// below it, a segment header or a whole segment lost), rebuild the
    /// node's copy from this export of another node of the same log
    /// (`logkv checkpoint export`): the damaged directory is renamed to
    /// DIR.damaged-SECONDS and a new one imported in its place.
    #[arg(long, value_name = "FILE")]
    pub from_export: Option<PathBuf>,
}

/// Why `logkv repair` did not repair.
#[derive(Debug)]
pub enum RepairCmdError {
    /// `--log` or `--log-stream` cannot be used.
    Config(ConfigError),
    /// The node is on its own file log: there is no stream to repair from.
    NotShared,
    /// The shared log cannot be reached.
    Open(OpenError),
    /// The damage cannot be reproduced, and no export was given.
    InPlace(RepairError),
    /// The damaged directory could not be set aside, or the new one built.
    Rebuild(String),
}

impl fmt::Display for RepairCmdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RepairCmdError::Config(e) => write!(f, "--log: {e}"),
            RepairCmdError::NotShared => f.write_str(
                "repair needs the shared log the node follows (--log nats://... or file:DIR): a node on its \
                 own file log has no other copy to repair from; restore it from a backup",
            ),
            RepairCmdError::Open(e) => e.fmt(f),
            RepairCmdError::InPlace(e) => write!(
                f,
                "{e}; rebuild the node from another node's export instead: `logkv checkpoint export FILE` on \
                 a healthy node, then `logkv repair --from-export FILE`"
            ),
            RepairCmdError::Rebuild(why) => write!(f, "cannot rebuild the node: {why}"),
        }
    }
}

impl RepairCmdError {
    /// Whether the flags are at fault.
    pub fn is_usage(&self) -> bool {
        matches!(self, RepairCmdError::Config(_) | RepairCmdError::NotShared)
            || matches!(self, RepairCmdError::Open(e) if e.is_usage())
    }
}

impl From<RepairCmdError> for CliError {
    fn from(e: RepairCmdError) -> Self {
        CliError::Repair(e)
    }
}

/// Runs `logkv repair` on `loaded`. Prints `repaired file=F offset=N
/// bytes=N positions=A..=B stream_positions=A..=B` per stretch written
/// again, `rebuilt ...` after a rebuild, or `no damage`.
pub fn run(loaded: Loaded, args: &RepairArgs) -> Result<Outcome, CliError> {
    let config = loaded.config;
    let choice = config.shared_log().map_err(RepairCmdError::Config)?.ok_or(RepairCmdError::NotShared)?;
    let log = choice.open_existing().map_err(RepairCmdError::Open)?;
    let result = repair_or_rebuild(&config, &log, args.from_export.as_deref());
    log.close();
    result
}

fn repair_or_rebuild(
    config: &ServeConfig,
    log: &ServerLog,
    export: Option<&Path>,
) -> Result<Outcome, CliError> {
    let mut out = std::io::stdout().lock();
    let in_place = logkv_server::repair::repair_from(config, log);
    let why = match (in_place, export) {
        (Ok(report), _) => {
            print_report(&mut out, &report)?;
            return Ok(Outcome::Ok);
        }
        (Err(e @ RepairError::Store(StoreError::Locked { .. })), _) => {
            return Err(RepairCmdError::InPlace(e).into())
        }
        (Err(e), None) => return Err(RepairCmdError::InPlace(e).into()),
        (Err(e), Some(_)) => e,
    };
    let export = export.expect("matched above");
    writeln!(out, "cannot repair in place: {why}").map_err(CliError::Output)?;
    let (aside, position) = rebuild(config, log, export)?;
    writeln!(
        out,
        "rebuilt data_dir={} from_export={} damaged_dir={} follows log={} from_position={}",
        config.store.data_dir.display(),
        export.display(),
        aside.display(),
        log.identity(),
        position + 1
    )
    .map_err(CliError::Output)?;
    Ok(Outcome::Ok)
}

fn print_report(out: &mut impl Write, report: &RepairReport) -> Result<(), CliError> {
    if report.repaired.is_empty() {
        writeln!(out, "no damage").map_err(CliError::Output)?;
    }
    for r in &report.repaired {
        writeln!(
            out,
            "repaired file={} offset={} bytes={} positions={:?} stream_positions={:?}",
            r.file.display(),
            r.offset,
            r.bytes,
            r.positions,
            r.stream_positions
        )
        .map_err(CliError::Output)?;
    }
    Ok(())
}

/// Sets the damaged directory aside (renamed, under its lock) and imports
/// `export` in its place, marked as `log`'s copy, with the node's key
/// copied over so the node keeps its identity. Returns where the old
/// directory went and the stream position the export holds up to.
fn rebuild(config: &ServeConfig, log: &ServerLog, export: &Path) -> Result<(PathBuf, u64), CliError> {
    let dir = &config.store.data_dir;
    let fail = |what: &str, e: &dyn fmt::Display| RepairCmdError::Rebuild(format!("{what}: {e}"));
    let lock = StdFs.lock(&dir.join(LOCK_FILE), &format!("pid {} (logkv repair)", std::process::id()));
    let _lock = lock.map_err(|e| match e {
        LockError::Held { holder } => CliError::Store(StoreError::Locked { dir: dir.clone(), holder }),
        LockError::Io(e) => fail("lock", &e).into(),
    })?;
    let seconds =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut name = dir.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".damaged-{seconds}"));
    let aside = dir.with_file_name(name);
    std::fs::rename(dir, &aside).map_err(|e| fail(&format!("renaming to {}", aside.display()), &e))?;
    let imported = Store::import(&StdFs, export, dir)
        .map_err(|e| fail(&format!("importing {}", export.display()), &e))
        .and_then(|info| {
            crate::backup_cmds::mark(log, &info, dir, &config.watched())
                .map_err(|e| fail("marking the copy", &e))?;
            Ok(info)
        });
    let info = match imported {
        Ok(info) => info,
        Err(e) => {
            // Put the damaged directory back where it was: nothing else
            // holds what it held.
            let _ = std::fs::remove_dir_all(dir);
            let _ = std::fs::rename(&aside, dir);
            return Err(e.into());
        }
    };
    let key = aside.join("node.key");
    if config.node_key.is_none() && key.exists() {
        std::fs::copy(&key, dir.join("node.key")).map_err(|e| fail("copying node.key", &e))?;
    }
    Ok((aside, version_position(info.last_version)))
}
