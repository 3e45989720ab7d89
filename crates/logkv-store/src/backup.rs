//! Point-in-time restore and online backup.
//!
//! Restore copies the log up to the last record at or below the version
//! asked for (every record carries its append time, so a time maps to a
//! version), so the new directory holds exactly that state and the history
//! before it, with positions and locations unchanged. A version inside the
//! compacted part of the log has no records left to cut at: its state and
//! history are written as a compacted file instead, where retention kept
//! them ([`crate::restore_point`]).
//!
//! An export is a compacted file holding every key's newest version as of
//! one record, taken from a running store without stopping writers (the
//! index is copied on write, and no compaction runs meanwhile); an import
//! makes it the head of a new data directory, which opens at that record
//! and continues from there.

use std::path::{Path, PathBuf};

use logkv_fs::FileSystem;
use logkv_log::format::{read_frame, u64_at, FrameRead, RecordType, SEGMENT_HEADER_LEN};
use logkv_log::{Loc, LogError};

use crate::checkpoint::{self, CheckpointInfo};
use crate::error::{Result, StoreError};
use crate::head::{self, Head, HeadInfo, HeadWriter, RangeEnd, FIRST_HEAD_ID};
use crate::keyspaces::KeyspacesSnapshot;
use crate::maintenance::now_ms;
use crate::rows::Row;
use crate::store::{Step, Store};

/// What a restore wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreReport {
    /// The version the new directory is at (the newest record at or below
    /// the one asked for).
    pub version: u64,
    /// The position of that record.
    pub position: u64,
    /// Bytes written.
    pub bytes: u64,
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportReport {
    /// The file.
    pub path: PathBuf,
    /// The last record the snapshot includes.
    pub position: u64,
    /// That record's version tag.
    pub version: u64,
    /// Keys written.
    pub keys: u64,
    /// Bytes of the file.
    pub bytes: u64,
}

/// One record met while scanning the log's segments.
pub(crate) struct Record<'a> {
    /// Index of its segment among the log's.
    pub(crate) segment: usize,
    /// Where its frame starts in the segment.
    pub(crate) offset: u64,
    pub(crate) position: u64,
    pub(crate) tag: u64,
    pub(crate) time_ms: u64,
    /// Its type (`None`: unknown to this version).
    pub(crate) rtype: Option<RecordType>,
    pub(crate) payload: &'a [u8],
}

impl Store {
    /// Calls `f` for every intact, acknowledged record of the log's
    /// segments in order until it returns `false` (one segment in memory
    /// at a time).
    pub(crate) fn scan_records(&self, f: &mut dyn FnMut(&Record<'_>) -> Result<bool>) -> Result<()> {
        for (index, seg) in self.log.segment_info()?.iter().enumerate() {
            let file = self.fs.open(&seg.path).map_err(|e| LogError::io(&seg.path, e))?;
            let mut bytes = vec![0u8; seg.capacity as usize];
            file.read_exact_at(&mut bytes, 0).map_err(|e| LogError::io(&seg.path, e))?;
            let mut offset = SEGMENT_HEADER_LEN as usize;
            while let FrameRead::Intact(frame) = read_frame(&bytes[offset..]) {
                let rtype = RecordType::from_byte(frame.rtype);
                let tag = rtype.map_or(frame.position, |t| tag_of(t, frame.position, frame.payload));
                let record = Record {
                    segment: index,
                    offset: offset as u64,
                    position: frame.position,
                    tag,
                    time_ms: frame.time_ms,
                    rtype,
                    payload: frame.payload,
                };
                if record.position > self.visible_position() || !f(&record)? {
                    return Ok(());
                }
                offset += frame.len();
            }
        }
        Ok(())
    }

    /// The version of the newest record appended at or before `time_ms`
    /// (Unix milliseconds); 0 if there is none.
    pub fn version_at_time(&self, time_ms: u64) -> Result<u64> {
        let head = self.head.read().clone();
        let Some(position) = self.position_at_time(time_ms)? else {
            // Before the compacted part's last record: its rows tell.
            return match head {
                Some(h) => {
                    let point = self.compacted_point(&h, &|r| r.time_ms <= time_ms, None)?;
                    Ok(point.cut(&format!("Unix time {time_ms} ms"))?.map_or(0, |cut| cut.version))
                }
                None => Ok(0),
            };
        };
        match self.log.read_record(position, |r| tag_of(r.rtype, r.position, r.payload))? {
            Some(tag) => Ok(tag),
            // The compacted file's last record, whose time it keeps.
            None => Ok(head.map_or(0, |h| h.info().last_version)),
        }
    }

    /// Builds a new data directory `out` holding exactly this store's state
    /// as of `version` (see the module doc).
    pub fn restore(&self, version: u64, out: &Path) -> Result<RestoreReport> {
        let _job = self.maintenance.lock();
        self.sync()?;
        let fs = self.fs.as_ref();
        fs.create_dir_all(out).map_err(|e| LogError::io(out, e))?;
        if fs.list_dir(out).map_err(|e| LogError::io(out, e))?.iter().any(|n| !n.starts_with('.')) {
            return Err(StoreError::Config(format!("{} is not empty", out.display())));
        }
        let head = self.head.read().clone();
        if let Some(h) = head.as_ref().filter(|h| version < h.info().last_version) {
            let report = self.restore_compacted(h, version, out)?;
            fs.sync_dir(out).map_err(|e| LogError::io(out, e))?;
            return Ok(report);
        }
        let mut cut: Option<(usize, u64)> = None;
        let mut last = head.as_ref().map_or((0, 0), |h| (h.info().last_position, h.info().last_version));
        self.scan_records(&mut |r| {
            if r.tag > version {
                cut = Some((r.segment, r.offset));
                return Ok(false);
            }
            last = (r.position, r.tag);
            Ok(true)
        })?;
        let mut bytes = 0;
        if let Some(h) = &head {
            bytes += copy_file(fs, h.path(), &out.join(head::file_name(h.info().id)), None)?;
        }
        for (index, seg) in self.log.segment_info()?.iter().enumerate() {
            let keep = match cut {
                Some((s, _)) if index > s => break,
                Some((s, offset)) if index == s => {
                    if offset == SEGMENT_HEADER_LEN {
                        break;
                    }
                    Some(offset)
                }
                _ => None,
            };
            let name = seg.path.file_name().expect("segment files have names");
            bytes += copy_file(fs, &seg.path, &out.join(name), keep.map(|k| (k, seg.capacity)))?;
        }
        fs.sync_dir(out).map_err(|e| LogError::io(out, e))?;
        Ok(RestoreReport { version: last.1, position: last.0, bytes })
    }

    /// Writes every key's newest version as of the newest record into a
    /// compacted file at `path`, while writes go on. The file is a new
    /// store's head: see [`Store::import`].
    pub fn export(&self, path: &Path) -> Result<ExportReport> {
        let _job = self.maintenance.lock();
        let snapshot = self.snapshot()?;
        let (position, version) = (snapshot.through.position, snapshot.through.version);
        // The importing node continues from the record's log time and state.
        let end = RangeEnd {
            last_position: position,
            last_version: version,
            horizon: version,
            last_time_ms: self.time_of_position(position)?.unwrap_or(0),
            state: snapshot.newest_state.map(|(state, _)| state),
        };
        let row = self.row_at(position)?;
        let info = self.write_state(path, snapshot, end, row)?;
        let keys = Head::open(self.fs.as_ref(), path, FIRST_HEAD_ID)?.keys()?;
        Ok(ExportReport {
            path: path.to_path_buf(),
            position: info.last_position,
            version: info.last_version,
            keys,
            bytes: info.table_end,
        })
    }

    /// Writes `snapshot`, the state as of the record at `end.last_position`
    /// (whose `row` it keeps), to a compacted file.
    fn write_state(
        &self,
        path: &Path,
        snapshot: KeyspacesSnapshot,
        end: RangeEnd,
        row: Option<Row>,
    ) -> Result<HeadInfo> {
        let mut unlimited = |_| {};
        let mut writer = HeadWriter::create(self.fs.as_ref(), path, FIRST_HEAD_ID, now_ms(), &mut unlimited)?;
        let written = (|| -> Result<()> {
            for (keyspace, index) in &snapshot.spaces {
                for (key, meta) in index.iter() {
                    // Deletes stay where they are versions the runtime
                    // compares with (see `retention`).
                    let keep_deletes = *keyspace != crate::store::DEFAULT_KEYSPACE;
                    match self.newest_of(*keyspace, key, meta)? {
                        Some((v, Some(value))) => writer.push(*keyspace, key, v, Some(&value), None, true)?,
                        Some((v, None)) if keep_deletes => {
                            writer.push(*keyspace, key, v, None, None, true)?
                        }
                        _ => Loc::default(),
                    };
                }
            }
            row.as_ref().map_or(Ok(()), |row| writer.push_row(row))
        })();
        if let Err(e) = written {
            writer.abandon();
            return Err(e);
        }
        // Nothing older than the state is in the file: reads below it are
        // "compacted" for every key, deleted ones included.
        Ok(*writer.finish(end)?.info())
    }

    /// The newest version of a key an index snapshot points at: its version
    /// and value (`None`: deleted); `None` if compaction dropped it.
    fn newest_of(&self, keyspace: u32, key: &[u8], meta: u64) -> Result<Option<(u64, Option<Vec<u8>>)>> {
        let (loc, h) = match self.version_record(keyspace, key, Loc::from_u64(meta))? {
            Step::At(loc, h) => (loc, h),
            Step::Dropped => return Ok(None),
            Step::Moved => return Err(StoreError::Invalid("a snapshot pointed into a pending batch".into())),
        };
        if h.kind == crate::record::OpKind::Delete {
            return Ok(Some((h.version, None)));
        }
        let value = self
            .op_value(loc, &h, key)?
            .ok_or_else(|| StoreError::Invalid("a value moved during the export".into()))?;
        Ok(Some((h.version, Some(value))))
    }

    /// Makes the exported `file` the head of a new data directory `dir`,
    /// which then opens at the record the export was taken at.
    pub fn import(fs: &dyn FileSystem, file: &Path, dir: &Path) -> Result<HeadInfo> {
        let head = Head::open(fs, file, FIRST_HEAD_ID)?;
        head.keys()?; // every block checked before anything is written
        fs.create_dir_all(dir).map_err(|e| LogError::io(dir, e))?;
        if fs.list_dir(dir).map_err(|e| LogError::io(dir, e))?.iter().any(|n| !n.starts_with('.')) {
            return Err(StoreError::Config(format!("{} is not empty", dir.display())));
        }
        copy_file(fs, file, &dir.join(head::file_name(FIRST_HEAD_ID)), None)?;
        fs.sync_dir(dir).map_err(|e| LogError::io(dir, e))?;
        Ok(*head.info())
    }
}

/// A record's version tag: a batch's position, an applied record's
/// `version` field.
fn tag_of(rtype: RecordType, position: u64, payload: &[u8]) -> u64 {
    match rtype {
        RecordType::Applied if payload.len() >= 8 => u64_at(payload, 0),
        _ => position,
    }
}

/// The compacted file in `dir`, if any, with its key count, after reading
/// (and so checking) every block of it: for `logkv inspect`.
pub fn inspect_compacted(fs: &dyn FileSystem, dir: &Path) -> Result<Option<(HeadInfo, u64)>> {
    let names = fs.list_dir(dir).map_err(|e| LogError::io(dir, e))?;
    let Some(id) = names.iter().filter_map(|n| head::parse_name(n)).max() else { return Ok(None) };
    let head = Head::open(fs, &dir.join(head::file_name(id)), id)?;
    let keys = head.keys()?;
    Ok(Some((*head.info(), keys)))
}

/// Every checkpoint in `dir`, newest first, with what it says of itself
/// or why it cannot be used: for `logkv inspect`.
pub fn inspect_checkpoints(
    fs: &dyn FileSystem,
    dir: &Path,
) -> Result<Vec<(PathBuf, std::result::Result<CheckpointInfo, String>)>> {
    checkpoint::list(fs, dir)?
        .into_iter()
        .map(|(_, path)| {
            let loaded = checkpoint::load(fs, &path)?;
            Ok((path, loaded.map(|l| l.info).map_err(|d| d.0)))
        })
        .collect()
}

/// Copies `from` to `to` (only the first `keep.0` bytes, then zeros up to
/// `keep.1`, when given) and syncs the copy. Returns the bytes copied.
fn copy_file(fs: &dyn FileSystem, from: &Path, to: &Path, keep: Option<(u64, u64)>) -> Result<u64> {
    let src = fs.open(from).map_err(|e| LogError::io(from, e))?;
    let len = src.len().map_err(|e| LogError::io(from, e))?;
    let (copy, size) = keep.unwrap_or((len, len));
    let dst = fs.create(to).map_err(|e| LogError::io(to, e))?;
    let io = |e| StoreError::from(LogError::io(to, e));
    dst.allocate(size).map_err(io)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0;
    while at < copy {
        let n = (copy - at).min(buf.len() as u64) as usize;
        src.read_exact_at(&mut buf[..n], at).map_err(|e| LogError::io(from, e))?;
        dst.write_at(&buf[..n], at).map_err(io)?;
        at += n as u64;
    }
    dst.sync_data().map_err(io)?;
    Ok(copy)
}
