//! Opening a store: finish or undo what a crash interrupted, load the
//! newest usable checkpoint (else the compacted file, else nothing) and
//! replay the log after it.
//!
//! A checkpoint is usable when its checksums hold, it is not older than
//! the compacted file (whose records it would need to replay), and the log
//! reaches its position. A damaged one is reported and the next older one
//! tried, then the compacted file, then a full replay.
//!
//! The log must reach the newest checkpoint's position (and the compacted
//! file's), since one is written only once the log is durable through it:
//! a log ending before it lost acknowledged records, which a strict open
//! refuses (see `logkv_log::ReplayStart::durable`) and a truncating one
//! reports and warns about.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use logkv_fs::{FileSystem, LockError};
use logkv_log::{Durable, FileLog, LogConfig, LogError, RecordRef, RecordType, RecoveryReport, ReplayStart};
use parking_lot::{Mutex, RwLock};

use crate::applied::parse_applied;
use crate::checkpoint;
use crate::coalesce::{self, Coalescer};
use crate::error::{Result, StoreError};
use crate::head::{self, Head};
use crate::keyspaces::{Deletes, Keyspaces, KeyspacesBuilder, Through, DELETED};
use crate::maintenance::{CheckpointReport, Maintenance};
use crate::record::{parse_batch, OpKind, OpRef};
use crate::store::{Store, StoreOptions, LOCK_FILE};

/// What opening a store did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// What log recovery found (torn tails cut, segments rewritten).
    pub log: RecoveryReport,
    /// The checkpoint loaded: its position.
    pub checkpoint: Option<u64>,
    /// Checkpoints that could not be used, and why.
    pub skipped_checkpoints: Vec<(PathBuf, String)>,
    /// The position the compacted file covers up to (0: none).
    pub compacted_through: u64,
    /// Log records replayed after the checkpoint or compacted file.
    pub replayed_records: u64,
}

pub(crate) fn open(dir: &Path, options: StoreOptions, progress: &mut dyn FnMut(u64, u64)) -> Result<Store> {
    options.limits.validate()?;
    options.retention.validate().map_err(StoreError::Config)?;
    let fs = options.fs.clone();
    fs.create_dir_all(dir).map_err(|e| LogError::io(dir, e))?;
    let lock = fs.lock(&dir.join(LOCK_FILE), &lock_holder()).map_err(|e| match e {
        LockError::Held { holder } => StoreError::Locked { dir: dir.to_path_buf(), holder },
        LockError::Io(e) => LogError::io(dir.join(LOCK_FILE), e).into(),
    })?;
    remove_leftovers(fs.as_ref(), dir)?;
    let head = open_head(fs.as_ref(), dir)?;
    let (head_through, head_version, head_id) =
        head.as_ref().map_or((0, 0, 0), |h| (h.info().last_position, h.info().last_version, h.info().id));
    let first_position = head_through + 1;
    let max_index_bytes = options.limits.max_index_bytes;
    let mut report = OpenReport { compacted_through: head_through, ..OpenReport::default() };

    let checkpoints = checkpoint::list(fs.as_ref(), dir)?;
    let durable = durable_floor(&checkpoints, head.as_ref());
    let mut opened = None;
    let mut loaded_checkpoint = None;
    for (position, path) in checkpoints {
        if position < head_through {
            report.skipped_checkpoints.push((path, "older than the compacted file".into()));
            continue;
        }
        let loaded = match checkpoint::load(fs.as_ref(), &path)? {
            Ok(loaded) => loaded,
            Err(checkpoint::Damaged(why)) => {
                report.skipped_checkpoints.push((path, why));
                continue;
            }
        };
        let start = ReplayStart {
            first_position,
            known_through: loaded.info.position,
            time_ms: loaded.info.time_ms,
            covered: loaded.segments,
            durable: durable.clone(),
        };
        let (log, index, replayed) =
            replay(&fs, dir, options.log.clone(), start, loaded.index, max_index_bytes, progress)?;
        if log.next_position() <= loaded.info.position {
            // Only a truncating open gets here (a strict one refused): the
            // records it covers are gone for good, and so goes the
            // checkpoint, or every later strict open would refuse.
            fs.remove_file(&path).map_err(|e| LogError::io(&path, e))?;
            fs.sync_dir(dir).map_err(|e| LogError::io(dir, e))?;
            report.skipped_checkpoints.push((path, "the log ends before it: removed".into()));
            drop(log);
            continue;
        }
        report.checkpoint = Some(loaded.info.position);
        let bytes = fs.open(&path).and_then(|f| f.len()).unwrap_or(0);
        loaded_checkpoint = Some(CheckpointReport {
            path,
            position: loaded.info.position,
            version: loaded.info.version,
            keys: loaded.keys,
            bytes,
            elapsed: std::time::Duration::ZERO,
        });
        opened = Some((log, index, replayed, loaded.info.head_id != head_id));
        break;
    }
    let (log, index, replayed, stale_checkpoint) = match opened {
        Some(o) => o,
        None => {
            let through = Through { position: head_through, version: head_version };
            let index = match &head {
                Some(h) => index_of(h, through, progress)?,
                None => Keyspaces::default(),
            };
            let head_time = head.as_ref().map_or(0, |h| h.info().last_time_ms);
            let start = ReplayStart {
                first_position,
                known_through: head_through,
                time_ms: head_time,
                covered: Vec::new(),
                durable,
            };
            let (log, index, replayed) =
                replay(&fs, dir, options.log.clone(), start, index, max_index_bytes, progress)?;
            (log, index, replayed, false)
        }
    };
    report.replayed_records = replayed.records;
    let since_checkpoint_bytes = replayed.frame_bytes;
    report.log = replayed.report;
    if let Some((first, last)) = report.log.lost_durable {
        tracing::warn!(
            dir = %dir.display(),
            first,
            last,
            "recovery dropped durable positions {first}..={last} (a checkpoint or compacted file covered them)"
        );
    }
    let index = Arc::new(RwLock::new(index));
    let coalescer = match coalesce::applies(options.log.durability, &options.retention) {
        Some((window, flush_size_bytes)) => {
            Some(Coalescer::start(log.handle(), index.clone(), window, flush_size_bytes)?)
        }
        None => None,
    };
    let store = Store {
        log,
        index,
        coalescer,
        limits: options.limits,
        head: RwLock::new(head.map(Arc::new)),
        fs,
        retention: options.retention,
        maintenance: Mutex::new(Maintenance::new(options.maintenance, since_checkpoint_bytes)),
        last_checkpoint: Mutex::new(loaded_checkpoint),
        dir: dir.to_path_buf(),
        report,
        verify_checksums: options.verify_checksums,
        checksum_failures: 0.into(),
        floors: RwLock::default(),
        _lock: lock,
    };
    if stale_checkpoint {
        // The checkpoint predates the compacted file: point its keys there.
        store.repoint_to_head()?;
    }
    Ok(store)
}

/// The newest position a checkpoint or the compacted file says the log was
/// durable through: a checkpoint's name is enough (one damaged since still
/// was written only after the log was synced through its position).
fn durable_floor(checkpoints: &[(u64, PathBuf)], head: Option<&Head>) -> Option<Durable> {
    let newest = checkpoints.first().map(|(position, path)| (*position, path.clone()));
    let compacted = head.map(|h| (h.info().last_position, h.path().to_path_buf()));
    let (through, source) = newest.into_iter().chain(compacted).max_by_key(|(position, _)| *position)?;
    (through > 0).then_some(Durable { through, source })
}

/// Removes what an interrupted write left: temporary files, and compacted
/// files older than the newest (whose install finished).
fn remove_leftovers(fs: &dyn FileSystem, dir: &Path) -> Result<()> {
    let names = fs.list_dir(dir).map_err(|e| LogError::io(dir, e))?;
    let newest_head = names.iter().filter_map(|n| head::parse_name(n)).max();
    let mut removed = false;
    for name in &names {
        let stale_head = head::parse_name(name).is_some_and(|id| Some(id) != newest_head);
        if name.ends_with(".tmp") || stale_head {
            let path = dir.join(name);
            fs.remove_file(&path).map_err(|e| LogError::io(&path, e))?;
            removed = true;
        }
    }
    if removed {
        fs.sync_dir(dir).map_err(|e| LogError::io(dir, e))?;
    }
    Ok(())
}

fn open_head(fs: &dyn FileSystem, dir: &Path) -> Result<Option<Head>> {
    let names = fs.list_dir(dir).map_err(|e| LogError::io(dir, e))?;
    match names.iter().filter_map(|n| head::parse_name(n)).max() {
        Some(id) => Ok(Some(Head::open(fs, &dir.join(head::file_name(id)), id)?)),
        None => Ok(None),
    }
}

/// The index of a compacted file alone: each key's newest version.
pub(crate) fn index_of(
    head: &Head,
    through: Through,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Keyspaces> {
    let mut builder = KeyspacesBuilder::new();
    let mut pending: Option<(u32, Vec<u8>, u64, bool)> = None;
    head.for_each(
        &mut |op| {
            if let Some((ks, key, meta, live)) = pending.take() {
                if (ks, &key[..]) != (op.header.keyspace, op.key) {
                    builder.push(ks, &key, meta, live)?;
                }
            }
            let live = op.header.kind != OpKind::Delete;
            let meta = op.loc.to_u64() | if live { 0 } else { DELETED };
            pending = Some((op.header.keyspace, op.key.to_vec(), meta, live));
            Ok(())
        },
        progress,
    )?;
    if let Some((ks, key, meta, live)) = pending {
        builder.push(ks, &key, meta, live)?;
    }
    let mut index = builder.finish(through);
    index.newest_state = head.info().state.map(|s| (s, head.info().last_version));
    Ok(index)
}

/// What a replay read.
#[derive(Default)]
struct Replayed {
    records: u64,
    frame_bytes: u64,
    report: RecoveryReport,
}

/// Opens the log from `start`, indexing every record after it into `index`.
fn replay(
    fs: &logkv_fs::DynFs,
    dir: &Path,
    config: LogConfig,
    start: ReplayStart,
    mut index: Keyspaces,
    max_index_bytes: usize,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(FileLog, Keyspaces, Replayed)> {
    let mut last_version = index.through.version;
    let start_version = last_version;
    let mut replayed = Replayed::default();
    let mut visit = |r: RecordRef<'_>| -> Result<u64> {
        let version = index_record(&mut index, max_index_bytes, &mut last_version, r)?;
        replayed.records += 1;
        replayed.frame_bytes += (logkv_log::format::FRAME_OVERHEAD + r.payload.len()) as u64;
        Ok(version)
    };
    let (log, report) = FileLog::open(fs.clone(), dir, config, start, start_version, &mut visit, progress)?;
    replayed.report = report;
    Ok((log, index, replayed))
}

/// Indexes one log record, checking its versions exceed every version
/// before it; returns its version tag.
fn index_record(
    index: &mut Keyspaces,
    max_index_bytes: usize,
    last_version: &mut u64,
    r: RecordRef<'_>,
) -> Result<u64> {
    let bad = |detail| StoreError::BadRecord { position: r.position, detail };
    let (ops, version, deletes) = match r.rtype {
        RecordType::Batch => {
            (parse_batch(r.payload, r.position).map_err(bad)?, r.position, Deletes::OfHeldKeys)
        }
        RecordType::Applied => {
            let parsed = parse_applied(r.payload).map_err(bad)?;
            index.newest_state = Some((parsed.state, parsed.version));
            (parsed.ops, parsed.version, Deletes::Versioned)
        }
        RecordType::Compacted => return Err(bad("a compacted block in a log segment".into())),
        RecordType::Entry => return Err(bad("a shared log's entry in a store's log".into())),
    };
    // Checked here as on append: a record's versions exceed every
    // version before it, or "as of" reads would change the past.
    if let Some(first) = ops.first().map(|o| o.header.version).filter(|&v| v <= *last_version) {
        return Err(bad(format!("version {first} does not exceed {last_version}, the one before")));
    }
    *last_version = (*last_version).max(version);
    index.reserve(max_index_bytes, deletes, ops.iter().map(|o| (o.header.keyspace, o.header.kind, o.key)))?;
    for OpRef { header, key, offset, .. } in ops {
        let old =
            index.apply(header.keyspace, header.kind, key, r.payload_loc.forward(offset as u64), deletes);
        if old.is_some() {
            index.superseded_bytes += header.op_len() as u64;
        }
    }
    index.through = Through { position: r.position, version };
    Ok(version)
}

/// What the lock file says about this process: its pid and command line
/// (cut at 200 characters).
fn lock_holder() -> String {
    let cmd: String = std::env::args().collect::<Vec<_>>().join(" ").chars().take(200).collect();
    format!("pid {} ({cmd})", std::process::id())
}
