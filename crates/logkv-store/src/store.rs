//! The store: writes go into the log as records, the index points at
//! them, and reads resolve a key at a version by walking its chain on disk.
//!
//! Keys live in numbered keyspaces (the plain API uses keyspace 0), each
//! with an index of its own. Every record carries a *version tag* (a batch:
//! its position; an applied entry: the newest transaction version it
//! creates), and the log publishes the tag of the newest acknowledged
//! record as the visible version.
//!
//! Visibility: the index is updated when a record is sequenced (under the
//! log's sequencing lock, so in position order), but readers only see
//! versions up to the log's *visible* version. A reader that meets a newer
//! version walks back along the chain, which is the same mechanism "as of"
//! reads use. So `always` never shows a write before it is durable, and
//! nothing in memory has to be undone when a write fails. The one appender
//! of applied entries may read what it sequenced itself
//! ([`Store::newest_in`]).

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use logkv_fs::{DynFs, LockGuard, StdFs};
use logkv_log::{FileLog, Loc, LogConfig, LogError, RecoveryReport};
use parking_lot::{Mutex, RwLock};

use crate::chain::ChainWalk;
use crate::coalesce::{is_pending, Coalescer};
use crate::error::{Result, StoreError};
use crate::head::{self, Head, FIRST_HEAD_ID};
use crate::keyspaces::Keyspaces;
use crate::limits::Limits;
use crate::maintenance::{CheckpointReport, Maintenance, MaintenanceOptions};
use crate::open::OpenReport;
use crate::record::{value_crc, OpHeader, OpKind, OP_HEADER_LEN, VALUE_BACK_LEN};
use crate::retention::Retention;
use crate::scan::{Scan, ScanOptions};

/// The keyspace of the plain API (`put`, `get`, `scan`, ...).
pub const DEFAULT_KEYSPACE: u32 = 0;

/// How to open a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// The file system (the real one unless testing).
    pub fs: DynFs,
    /// Segment size, durability and recovery mode.
    pub log: LogConfig,
    /// What the store accepts.
    pub limits: Limits,
    /// How much history stays readable (what compaction may drop).
    pub retention: Retention,
    /// When checkpoints and compactions run.
    pub maintenance: MaintenanceOptions,
    /// Check every value read against its version record's checksum
    /// (default). Off only to measure what the checks cost.
    pub verify_checksums: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            fs: Arc::new(StdFs),
            log: LogConfig::default(),
            limits: Limits::default(),
            retention: Retention::default(),
            maintenance: MaintenanceOptions::default(),
            verify_checksums: true,
        }
    }
}

/// A value and the version that wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    /// The bytes.
    pub data: Vec<u8>,
    /// The version (for the plain API, the batch's log position).
    pub version: u64,
}

/// One version of a key, as `history` lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The version.
    pub version: u64,
    /// Whether this version deleted the key.
    pub deleted: bool,
    /// Value length (0 for deletes).
    pub value_len: u32,
}

/// The newest version record of a key, sequenced but perhaps not yet
/// acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Newest {
    /// Its version.
    pub version: u64,
    /// Its value; `None` if it deleted the key.
    pub value: Option<Vec<u8>>,
}

/// A key's newest version record as its header alone describes it (no
/// value is read): what the runtime's digest needs to retract a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewestMeta {
    /// Its version.
    pub version: u64,
    /// Whether it deleted the key.
    pub deleted: bool,
    /// Value length (0 for a delete).
    pub value_len: u32,
    /// CRC32C of the key followed by the value.
    pub crc: u32,
}

/// Where the bytes of a value live on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueLocation {
    /// The segment file.
    pub file: PathBuf,
    /// Byte offset of the value in it.
    pub offset: u64,
    /// Length of the value.
    pub len: usize,
    /// The version that wrote it.
    pub version: u64,
}

/// What following a key's chain to a version found.
pub(crate) enum Located {
    /// The value's bytes.
    Found(Found),
    /// No value at that version.
    Absent,
    /// A pending batch moved under the walk: start again from the index.
    Moved,
}

/// A value found at a version: its version record and where its bytes are.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Found {
    pub(crate) op: Loc,
    pub(crate) header: OpHeader,
    pub(crate) value: Loc,
}

/// An embedded key-value store whose values live in its log.
pub struct Store {
    pub(crate) log: FileLog,
    pub(crate) index: Arc<RwLock<Keyspaces>>,
    pub(crate) limits: Limits,
    /// The pending batch of `periodic` mode, when writes coalesce.
    pub(crate) coalescer: Option<Arc<Coalescer>>,
    /// The compacted file that replaced the oldest segments, if any.
    pub(crate) head: RwLock<Option<Arc<Head>>>,
    pub(crate) fs: DynFs,
    pub(crate) retention: Retention,
    /// Checkpoint and compaction state; one such job at a time.
    pub(crate) maintenance: Mutex<Maintenance>,
    /// The newest checkpoint (apart, so that asking for it never waits for
    /// a job).
    pub(crate) last_checkpoint: Mutex<Option<CheckpointReport>>,
    pub(crate) dir: PathBuf,
    pub(crate) report: OpenReport,
    /// Whether values are checked against their checksums.
    pub(crate) verify_checksums: bool,
    /// Values whose checksum did not match (each refused).
    pub(crate) checksum_failures: AtomicU64,
    /// Per keyspace and key prefix, the version below which a key's newest
    /// version counts as deleted at that version ([`Store::raise_floor`]).
    pub(crate) floors: RwLock<crate::floors::Floors>,
    pub(crate) _lock: Box<dyn LockGuard>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("dir", &self.dir).finish_non_exhaustive()
    }
}

/// Name of the lock file in a data directory.
pub const LOCK_FILE: &str = "LOCK";

/// What a walk down a version chain that loops back on itself reports.
pub(crate) const LOOP: &str = "the version chain of this key loops back on itself";

/// A version record found by following a location.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Step {
    /// The record, where it is now.
    At(Loc, OpHeader),
    /// The location was compacted away and the compacted file holds no
    /// version of the key: every version there was dropped.
    Dropped,
    /// The location is in a pending batch written to the log meanwhile:
    /// read the key's index entry again.
    Moved,
}

impl Store {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: impl AsRef<Path>, options: StoreOptions) -> Result<Self> {
        Self::open_with_progress(dir, options, &mut |_, _| {})
    }

    /// Opens the store, reporting replay progress as `(bytes scanned, total)`.
    /// Loads the newest usable checkpoint (or the compacted file) and
    /// replays the log after it; replay indexes the version records of every
    /// record and never looks inside applied entries.
    pub fn open_with_progress(
        dir: impl AsRef<Path>,
        options: StoreOptions,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Self> {
        crate::open::open(dir.as_ref(), options, progress)
    }

    /// The value of `key` now.
    pub fn get(&self, key: &[u8]) -> Result<Option<Value>> {
        self.get_at(key, u64::MAX)
    }

    /// The value of `key` as of `version`: the newest write at or below it.
    pub fn get_at(&self, key: &[u8], version: u64) -> Result<Option<Value>> {
        self.get_at_in(DEFAULT_KEYSPACE, key, version)
    }

    /// The value of `key` in `keyspace` as of `version` (at most the
    /// visible version).
    pub fn get_at_in(&self, keyspace: u32, key: &[u8], version: u64) -> Result<Option<Value>> {
        let at = self.readable(version)?;
        let Some(meta) = self.index.read().get(keyspace, key) else {
            return Ok(None);
        };
        self.resolve(keyspace, key, meta, at)
    }

    /// The version a read as of `version` sees (at most the visible one),
    /// or `Compacted` if it is below the compaction horizon.
    pub(crate) fn readable(&self, version: u64) -> Result<u64> {
        let at = version.min(self.version());
        let horizon = self.horizon();
        if at < horizon {
            return Err(StoreError::Compacted { version: at, oldest: horizon });
        }
        Ok(at)
    }

    /// Tells compaction that every key of `keyspace` under `prefix` (empty:
    /// the whole keyspace) whose newest version is below `version` was
    /// removed at `version` (the runtime's stream flush, and the system
    /// keys it voids): compaction treats such a key as one whose newest
    /// version is a delete at `version`, and drops it whole under the same
    /// rules (retention.rs). Reads are not changed: the caller hides such
    /// keys itself. Not persisted: the caller raises floors again after open.
    pub fn raise_floor(&self, keyspace: u32, prefix: &[u8], version: u64) {
        self.floors.write().raise(keyspace, prefix, version);
    }

    /// Reads as of a version below this are answered `Compacted` for every
    /// key (0 unless retention dropped deleted keys whole).
    pub fn horizon(&self) -> u64 {
        self.head.read().as_ref().map_or(0, |h| h.info().horizon)
    }

    /// The newest version record of `key` in `keyspace`, including one
    /// sequenced but not yet acknowledged: for the single appender that
    /// must see its own pending writes (a node applying entries in order).
    /// Other readers use [`Store::get_at_in`].
    pub fn newest_in(&self, keyspace: u32, key: &[u8]) -> Result<Option<Newest>> {
        self.read_settled(keyspace, key, &|| {
            let (loc, h) = match self.newest_record(keyspace, key)? {
                Some(Some(found)) => found,
                Some(None) => return Ok(Some(None)),
                None => return Ok(None),
            };
            let value = match h.kind {
                OpKind::Delete => None,
                _ => match self.op_value(loc, &h, key)? {
                    Some(v) => Some(v),
                    None => return Ok(None),
                },
            };
            Ok(Some(Some(Newest { version: h.version, value })))
        })
    }

    /// Up to `max` keys of `keyspace` in `start..end`, in order, whose
    /// newest version record (sequenced or not, as [`Store::newest_in`]
    /// reads it) holds a value, with their values: a range of the state
    /// the single appender has built so far, whatever has been
    /// acknowledged. Deleted keys still in the index are passed over.
    pub fn newest_range_in(
        &self,
        keyspace: u32,
        start: &[u8],
        end: &[u8],
        max: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        const PAGE: usize = 256;
        let mut out = Vec::new();
        let mut page = Vec::new();
        let mut after: Option<Vec<u8>> = None;
        while out.len() < max {
            page.clear();
            let lower = after.as_deref().map_or(Bound::Included(start), Bound::Excluded);
            self.index_page(keyspace, lower, Bound::Excluded(end), false, PAGE, &mut page);
            for (key, _) in &page {
                if let Some(Newest { value: Some(v), .. }) = self.newest_in(keyspace, key)? {
                    out.push((key.clone(), v));
                    if out.len() == max {
                        break;
                    }
                }
            }
            match page.pop() {
                Some((last, _)) if page.len() + 1 == PAGE => after = Some(last),
                _ => break,
            }
        }
        Ok(out)
    }

    /// What [`Store::newest_in`] would find, from the version record's
    /// header alone: no value is read (and so none checked).
    pub fn newest_meta_in(&self, keyspace: u32, key: &[u8]) -> Result<Option<NewestMeta>> {
        self.read_settled(keyspace, key, &|| {
            Ok(self.newest_record(keyspace, key)?.map(|found| {
                found.map(|(_, h)| NewestMeta {
                    version: h.version,
                    deleted: h.kind == OpKind::Delete,
                    value_len: h.value_len,
                    crc: h.crc,
                })
            }))
        })
    }

    /// The newest version record of a key, sequenced or not: `Some(None)`
    /// if there is none, `None` if it moved under the read.
    fn newest_record(&self, keyspace: u32, key: &[u8]) -> Result<Option<Option<(Loc, OpHeader)>>> {
        let Some(meta) = self.index.read().get(keyspace, key) else {
            return Ok(Some(None));
        };
        Ok(match self.version_record(keyspace, key, Loc::from_u64(meta))? {
            Step::At(loc, h) => Some(Some((loc, h))),
            Step::Dropped => Some(None),
            Step::Moved => None,
        })
    }

    /// Values refused because their checksum did not match, since open.
    pub fn checksum_failures(&self) -> u64 {
        self.checksum_failures.load(Ordering::Relaxed)
    }

    /// Runs `attempt` until it returns `Some`: `None` means the records it
    /// read moved (a pending batch written out, a file compacted away) and
    /// it must start again from the index. A busy writer can move a key's
    /// pending version again and again, so after a few tries the pending
    /// batch is written out and held still for one last attempt.
    fn read_settled<R>(
        &self,
        keyspace: u32,
        key: &[u8],
        attempt: &dyn Fn() -> Result<Option<R>>,
    ) -> Result<R> {
        for _ in 0..STALE_RETRIES {
            if let Some(r) = attempt()? {
                return Ok(r);
            }
        }
        let settled = match &self.coalescer {
            Some(c) => c.sealed(attempt)??,
            None => attempt()?,
        };
        settled.ok_or_else(|| self.moving(keyspace, key))
    }

    /// Where the value of `key` in `keyspace` as of `version` lives on disk.
    pub fn locate_in(&self, keyspace: u32, key: &[u8], version: u64) -> Result<Option<ValueLocation>> {
        let at = self.readable(version)?;
        let Some(meta) = self.index.read().get(keyspace, key) else {
            return Ok(None);
        };
        match self.locate(keyspace, key, meta, at)? {
            Located::Found(f) if !is_pending(f.value.segment()) => Ok(Some(ValueLocation {
                file: self.file_path(f.value.segment()),
                offset: f.value.offset(),
                len: f.header.value_len as usize,
                version: f.header.version,
            })),
            Located::Absent => Ok(None),
            // Not in a file yet, or moving into one: write it out and ask again.
            Located::Found(_) | Located::Moved => {
                self.sync()?;
                self.locate_in(keyspace, key, version)
            }
        }
    }

    /// Every retained version of `key`, newest first.
    pub fn history(&self, key: &[u8]) -> Result<Vec<HistoryEntry>> {
        self.history_in(DEFAULT_KEYSPACE, key)
    }

    /// Every retained version of `key` in `keyspace`, newest first (what
    /// compaction dropped is not listed).
    pub fn history_in(&self, keyspace: u32, key: &[u8]) -> Result<Vec<HistoryEntry>> {
        self.read_settled(keyspace, key, &|| self.try_history(keyspace, key))
    }

    /// The history, or `None` if a pending batch moved under the walk.
    fn try_history(&self, keyspace: u32, key: &[u8]) -> Result<Option<Vec<HistoryEntry>>> {
        let visible = self.version();
        let mut out = Vec::new();
        let mut next = self.index.read().get(keyspace, key).map(Loc::from_u64);
        let mut walk = ChainWalk::default();
        while let Some(loc) = next {
            let (here, h) = match self.version_record(keyspace, key, loc)? {
                Step::At(here, h) => (here, h),
                Step::Dropped => break,
                Step::Moved => return Ok(None),
            };
            if !walk.step(here, h.version) {
                return Err(self.corrupt(here, LOOP));
            }
            // A record that writes a key twice chains both ops under one
            // version; the newer one (met first) is that version.
            // Versions only decrease along a chain; one that does not (a
            // walk that a compaction sent to the newest version in its new
            // file) was listed already.
            if h.version <= visible && out.last().is_none_or(|e: &HistoryEntry| h.version < e.version) {
                // Listing a version vouches for its record: check it as a
                // read of that version would.
                if self.verify_checksums {
                    match h.kind {
                        OpKind::Delete => self.check(here, &h, key, &[])?,
                        _ if self.op_value(here, &h, key)?.is_none() => return Ok(None),
                        _ => {}
                    }
                }
                out.push(HistoryEntry {
                    version: h.version,
                    deleted: h.kind == OpKind::Delete,
                    value_len: h.value_len,
                });
            }
            next = h.prev;
        }
        Ok(Some(out))
    }

    /// Resolves an index entry at version `at` to a value. A value whose
    /// file compaction removed while it was being read is looked up again.
    pub(crate) fn resolve(&self, keyspace: u32, key: &[u8], meta: u64, at: u64) -> Result<Option<Value>> {
        let first = std::cell::Cell::new(Some(meta));
        self.read_settled(keyspace, key, &|| {
            // The entry the caller read first, then the index's.
            let Some(m) = first.take().or_else(|| self.index.read().get(keyspace, key)) else {
                return Ok(Some(None));
            };
            match self.locate(keyspace, key, m, at)? {
                Located::Found(f) => Ok(self
                    .read_checked(f.op, &f.header, key, f.value)?
                    .map(|data| Some(Value { data, version: f.header.version }))),
                Located::Absent => Ok(Some(None)),
                Located::Moved => Ok(None),
            }
        })
    }

    /// Finds the bytes of the value an index entry has at version `at`.
    fn locate(&self, keyspace: u32, key: &[u8], meta: u64, at: u64) -> Result<Located> {
        let mut loc = Loc::from_u64(meta);
        let mut newest_seen = None;
        let mut walk = ChainWalk::default();
        loop {
            let (here, h) = match self.version_record(keyspace, key, loc)? {
                Step::At(here, h) => (here, h),
                Step::Moved => return Ok(Located::Moved),
                // Every version the compacted file had of the key was
                // dropped: a deleted key whose history retention let go.
                Step::Dropped => {
                    return match newest_seen {
                        None => Ok(Located::Absent),
                        Some(oldest) => Err(StoreError::Compacted { version: at, oldest }),
                    }
                }
            };
            if !walk.step(here, h.version) {
                return Err(self.corrupt(here, LOOP));
            }
            if h.version <= at {
                if h.kind == OpKind::Delete {
                    return Ok(Located::Absent);
                }
                // A reference whose segment was compacted away reads from a
                // location no file has, so the caller looks the key up again.
                let value = self.value_loc(here, &h, key.len())?.unwrap_or_default();
                return Ok(Located::Found(Found { op: here, header: h, value }));
            }
            newest_seen = Some(h.version);
            match h.prev {
                Some(prev) => loc = prev,
                None if h.truncated => return Err(StoreError::Compacted { version: at, oldest: h.version }),
                None => return Ok(Located::Absent),
            }
        }
    }

    /// Where the value of the put op at `loc` starts: after its key, or
    /// for `put_ref`, `value_back` bytes before the op.
    /// `None` if the op's segment was compacted away meanwhile.
    fn value_loc(&self, loc: Loc, h: &OpHeader, key_len: usize) -> Result<Option<Loc>> {
        let body = loc.forward((OP_HEADER_LEN + key_len) as u64);
        if h.kind != OpKind::PutRef {
            return Ok(Some(body));
        }
        let back =
            self.read_at(body, VALUE_BACK_LEN, |b| u32::from_le_bytes(b.try_into().expect("4 bytes")))?;
        let Some(back) = back else { return Ok(None) };
        match loc.offset().checked_sub(back.into()) {
            Some(offset) => Ok(Some(Loc::new(loc.segment(), offset))),
            None => Err(self.corrupt(loc, "a value reference points before the segment")),
        }
    }

    /// The value the put op `h` at `op` wrote, checked; `None` if
    /// compaction removed its file meanwhile.
    pub(crate) fn op_value(&self, op: Loc, h: &OpHeader, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.value_loc(op, h, key.len())? {
            Some(at) => self.read_checked(op, h, key, at),
            None => Ok(None),
        }
    }

    /// The value bytes at `at` of the op `h` at `op`, checked against the
    /// op's checksum; `None` if compaction removed their file.
    fn read_checked(&self, op: Loc, h: &OpHeader, key: &[u8], at: Loc) -> Result<Option<Vec<u8>>> {
        let Some(value) = self.read_at(at, h.value_len as usize, <[u8]>::to_vec)? else {
            return Ok(None);
        };
        // A pending write lives in memory and its slot may be rewritten
        // between the header's read and the value's: read again.
        if is_pending(op.segment()) && value_crc(key, &value) != h.crc {
            return Ok(None);
        }
        self.check(op, h, key, &value)?;
        Ok(Some(value))
    }

    /// Checks `value`, read for the op `h` at `op`, against the op's
    /// checksum; a mismatch is counted, logged and refused.
    pub(crate) fn check(&self, op: Loc, h: &OpHeader, key: &[u8], value: &[u8]) -> Result<()> {
        if !self.verify_checksums {
            return Ok(());
        }
        let found = value_crc(key, value);
        if found == h.crc {
            return Ok(());
        }
        self.checksum_failures.fetch_add(1, Ordering::Relaxed);
        let file = self.file_path(op.segment());
        let detail = format!(
            "version {} of key {} in keyspace {}: CRC32C {found:08x}, the record says {:08x}",
            h.version,
            hex(key),
            h.keyspace,
            h.crc
        );
        tracing::error!(file = %file.display(), offset = op.offset(), "checksum mismatch: {detail}");
        Err(StoreError::Checksum { file, offset: op.offset(), detail })
    }

    /// Calls `f` with the `len` bytes at `loc`, in a log segment or the
    /// compacted file; `None` if the file is gone (compacted away).
    pub(crate) fn read_at<R>(&self, loc: Loc, len: usize, f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>> {
        let segment = loc.segment();
        if is_pending(segment) {
            return Ok(self.coalescer.as_ref().and_then(|c| c.read(loc, len, f)));
        }
        if segment >= FIRST_HEAD_ID {
            let head = self.head.read().clone();
            return match head.filter(|h| h.info().id == segment) {
                Some(head) => Ok(Some(head.with_bytes(loc.offset(), len, f)?)),
                None => Ok(None),
            };
        }
        if segment == 0 {
            return Ok(None);
        }
        match self.log.read(loc, len, f) {
            Ok(r) => Ok(Some(r)),
            Err(_) if self.log.is_retired(segment) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads the version record at `loc` and checks it belongs to `key`. A
    /// location in a file compaction removed is looked up by key in the
    /// compacted file that replaced it.
    pub(crate) fn version_record(&self, keyspace: u32, key: &[u8], loc: Loc) -> Result<Step> {
        let read = self.read_at(loc, OP_HEADER_LEN + key.len(), |b| {
            OpHeader::decode(b).filter(|h| {
                &b[OP_HEADER_LEN..] == key && h.key_len as usize == key.len() && h.keyspace == keyspace
            })
        })?;
        match read {
            Some(Some(h)) => Ok(Step::At(loc, h)),
            // A pending batch written out (or a location reused by a later
            // window, 1,024 windows on, holding another key): the index
            // has moved on.
            Some(None) | None if is_pending(loc.segment()) => Ok(Step::Moved),
            Some(None) => {
                Err(self.corrupt(loc, "index points at a record that is not a version of this key"))
            }
            None => {
                let head = self.head.read().clone();
                match head.map(|h| h.lookup(keyspace, key)).transpose()?.flatten() {
                    Some((loc, h)) => Ok(Step::At(loc, h)),
                    None => Ok(Step::Dropped),
                }
            }
        }
    }

    /// The file a location's segment number names.
    pub(crate) fn file_path(&self, segment: u32) -> PathBuf {
        if is_pending(segment) {
            PathBuf::from("(pending batch, not yet in a file)")
        } else if segment >= FIRST_HEAD_ID {
            self.dir.join(head::file_name(segment))
        } else {
            self.dir.join(format!("{segment:08}.log"))
        }
    }

    pub(crate) fn corrupt(&self, loc: Loc, detail: &str) -> StoreError {
        StoreError::Log(LogError::Corruption {
            file: self.file_path(loc.segment()),
            offset: loc.offset(),
            detail: detail.into(),
        })
    }

    /// A key whose records kept moving while it was read (compaction ran
    /// several times over one read): not expected in practice.
    fn moving(&self, keyspace: u32, key: &[u8]) -> StoreError {
        StoreError::Invalid(format!("key {} in keyspace {keyspace} moved while being read", hex(key)))
    }

    /// An ordered scan (see [`ScanOptions`]).
    pub fn scan(&self, options: ScanOptions) -> Scan<'_> {
        self.scan_in(DEFAULT_KEYSPACE, options)
    }

    /// An ordered scan of `keyspace`.
    pub fn scan_in(&self, keyspace: u32, options: ScanOptions) -> Scan<'_> {
        let at = options.at.unwrap_or(u64::MAX);
        Scan::new(self, keyspace, options, at)
    }

    /// Collects up to `max` index entries in range, for [`Scan`].
    pub(crate) fn index_page(
        &self,
        keyspace: u32,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        reverse: bool,
        max: usize,
        out: &mut Vec<(Vec<u8>, u64)>,
    ) {
        self.index.read().range_page(keyspace, start, end, reverse, max, out);
    }

    /// The smallest live key and its value.
    pub fn first(&self) -> Result<Option<(Vec<u8>, Value)>> {
        self.scan(ScanOptions::default().limit(1)).next().transpose()
    }

    /// The largest live key and its value.
    pub fn last(&self) -> Result<Option<(Vec<u8>, Value)>> {
        self.scan(ScanOptions::default().reverse().limit(1)).next().transpose()
    }

    /// The first live key after `key` (or at it, if `inclusive`).
    pub fn next(&self, key: &[u8], inclusive: bool) -> Result<Option<(Vec<u8>, Value)>> {
        let start = if inclusive { Bound::Included(key.to_vec()) } else { Bound::Excluded(key.to_vec()) };
        self.scan(ScanOptions { start, ..ScanOptions::default() }.limit(1)).next().transpose()
    }

    /// The last live key before `key` (or at it, if `inclusive`).
    pub fn prev(&self, key: &[u8], inclusive: bool) -> Result<Option<(Vec<u8>, Value)>> {
        let end = if inclusive { Bound::Included(key.to_vec()) } else { Bound::Excluded(key.to_vec()) };
        self.scan(ScanOptions { end, ..ScanOptions::default() }.reverse().limit(1)).next().transpose()
    }

    /// The newest acknowledged version; reads see nothing newer.
    pub fn version(&self) -> u64 {
        let pending = self.coalescer.as_ref().and_then(|c| c.pending_version());
        self.log.visible_version().max(pending.unwrap_or(0))
    }

    /// The version tag of the newest record sequenced, acknowledged or not.
    pub fn sequenced_version(&self) -> u64 {
        self.log.sequenced_version()
    }

    /// The newest version on stable storage (see [`FileLog::synced_version`]);
    /// writes coalescing in a pending batch are not there yet.
    pub fn synced_version(&self) -> u64 {
        self.log.synced_version()
    }

    /// The position of the newest acknowledged record.
    pub fn visible_position(&self) -> u64 {
        self.log.visible_position()
    }

    /// The position the next record will get.
    pub fn next_position(&self) -> u64 {
        self.log.next_position()
    }

    /// Live keys in every keyspace (counting writes sequenced but not yet
    /// acknowledged).
    pub fn len(&self) -> u64 {
        self.index.read().live()
    }

    /// Whether there are no live keys.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keys in the index, deleted ones included.
    pub fn index_entries(&self) -> usize {
        self.index.read().len()
    }

    /// Heap bytes of the index (what `max_index_bytes` limits).
    pub fn index_bytes(&self) -> usize {
        self.index.read().heap_bytes()
    }

    /// What log recovery found when the store was opened.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.report.log
    }

    /// What opening the store did: checkpoint used, checkpoints skipped,
    /// records replayed.
    pub fn open_report(&self) -> &OpenReport {
        &self.report
    }

    /// The log below, for statistics and segment listings.
    pub fn log(&self) -> &FileLog {
        &self.log
    }

    /// Whether writes coalesce in memory (`periodic` mode keeping one
    /// version per key and no time window; see `docs/compaction.md`).
    pub fn coalesces(&self) -> bool {
        self.coalescer.is_some()
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Writes and syncs everything acknowledged so far, whatever the mode.
    pub fn sync(&self) -> Result<()> {
        if let Some(c) = &self.coalescer {
            c.seal()?;
        }
        Ok(self.log.sync()?)
    }

    /// Syncs and closes; the data directory is unlocked afterwards.
    pub fn close(self) -> Result<()> {
        if let Some(c) = &self.coalescer {
            c.stop()?;
        }
        self.log.sync().map_err(StoreError::from)
    }
}

impl Drop for Store {
    /// Writes the pending batch out (the log then syncs it as it closes).
    fn drop(&mut self) {
        if let Some(c) = &self.coalescer {
            let _ = c.stop();
        }
    }
}

/// How often a read starts over when the record it was reading moved (a
/// pending batch written out, a file compacted away) before it holds the
/// pending batch still.
const STALE_RETRIES: usize = 4;

/// Bytes as lowercase hex, for messages.
fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
