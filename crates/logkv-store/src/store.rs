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

use logkv_fs::{DynFs, LockError, LockGuard, StdFs};
use logkv_log::{FileLog, Loc, LogConfig, LogError, RecordRef, RecordType, RecoveryReport};
use parking_lot::RwLock;

use crate::applied::parse_applied;
use crate::error::{Result, StoreError};
use crate::keyspaces::{Deletes, Keyspaces};
use crate::limits::Limits;
use crate::record::{parse_batch, OpHeader, OpKind, OpRef, OP_HEADER_LEN, VALUE_BACK_LEN};
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
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self { fs: std::sync::Arc::new(StdFs), log: LogConfig::default(), limits: Limits::default() }
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

/// A value found at a version: where its bytes are.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Found {
    pub(crate) loc: Loc,
    pub(crate) len: usize,
    pub(crate) version: u64,
}

/// An embedded key-value store whose values live in its log.
pub struct Store {
    pub(crate) log: FileLog,
    pub(crate) index: RwLock<Keyspaces>,
    pub(crate) limits: Limits,
    dir: PathBuf,
    report: RecoveryReport,
    _lock: Box<dyn LockGuard>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("dir", &self.dir).finish_non_exhaustive()
    }
}

/// Name of the lock file in a data directory.
pub const LOCK_FILE: &str = "LOCK";

impl Store {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: impl AsRef<Path>, options: StoreOptions) -> Result<Self> {
        Self::open_with_progress(dir, options, &mut |_, _| {})
    }

    /// Opens the store, reporting replay progress as `(bytes scanned, total)`.
    /// Replay indexes the version records of every record; it never looks
    /// inside applied entries.
    pub fn open_with_progress(
        dir: impl AsRef<Path>,
        options: StoreOptions,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Self> {
        let dir = dir.as_ref();
        options.limits.validate()?;
        let fs = options.fs;
        fs.create_dir_all(dir).map_err(|e| LogError::io(dir, e))?;
        let lock = fs.lock(&dir.join(LOCK_FILE), &lock_holder()).map_err(|e| match e {
            LockError::Held { holder } => StoreError::Locked { dir: dir.to_path_buf(), holder },
            LockError::Io(e) => LogError::io(dir.join(LOCK_FILE), e).into(),
        })?;
        let mut index = Keyspaces::default();
        let max_index_bytes = options.limits.max_index_bytes;
        let mut last_version = 0u64;
        let mut visit = |r: RecordRef<'_>| -> Result<u64> {
            let bad = |detail| StoreError::BadRecord { position: r.position, detail };
            let (ops, version, deletes) = match r.rtype {
                RecordType::Batch => {
                    (parse_batch(r.payload, r.position).map_err(bad)?, r.position, Deletes::OfHeldKeys)
                }
                RecordType::Applied => {
                    let parsed = parse_applied(r.payload).map_err(bad)?;
                    (parsed.ops, parsed.version, Deletes::Versioned)
                }
            };
            // Checked here as on append: a record's versions exceed every
            // version before it, or "as of" reads would change the past.
            if let Some(first) = ops.first().map(|o| o.header.version).filter(|&v| v <= last_version) {
                return Err(bad(format!("version {first} does not exceed {last_version}, the one before")));
            }
            last_version = last_version.max(version);
            index.reserve(
                max_index_bytes,
                deletes,
                ops.iter().map(|o| (o.header.keyspace, o.header.kind, o.key)),
            )?;
            for OpRef { header, key, offset, .. } in ops {
                index.apply(header.keyspace, header.kind, key, r.payload_loc.forward(offset as u64), deletes);
            }
            Ok(version)
        };
        let (log, report) = FileLog::open(fs, dir, options.log, &mut visit, progress)?;
        Ok(Self {
            log,
            index: RwLock::new(index),
            limits: options.limits,
            dir: dir.to_path_buf(),
            report,
            _lock: lock,
        })
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
        let at = version.min(self.version());
        let Some(meta) = self.index.read().get(keyspace, key) else {
            return Ok(None);
        };
        self.resolve(keyspace, key, meta, at)
    }

    /// The newest version record of `key` in `keyspace`, including one
    /// sequenced but not yet acknowledged: for the single appender that
    /// must see its own pending writes (a node applying entries in order).
    /// Other readers use [`Store::get_at_in`].
    pub fn newest_in(&self, keyspace: u32, key: &[u8]) -> Result<Option<Newest>> {
        let Some(meta) = self.index.read().get(keyspace, key) else {
            return Ok(None);
        };
        let loc = Loc::from_u64(meta);
        let h = self.version_record(keyspace, key, loc)?;
        let value = match h.kind {
            OpKind::Delete => None,
            _ => Some(self.read_value(self.value_loc(loc, &h, key.len())?, h.value_len as usize)?),
        };
        Ok(Some(Newest { version: h.version, value }))
    }

    /// Where the value of `key` in `keyspace` as of `version` lives on disk.
    pub fn locate_in(&self, keyspace: u32, key: &[u8], version: u64) -> Result<Option<ValueLocation>> {
        let at = version.min(self.version());
        let Some(meta) = self.index.read().get(keyspace, key) else {
            return Ok(None);
        };
        Ok(self.locate(keyspace, key, meta, at)?.map(|f| ValueLocation {
            file: self.segment_path(f.loc.segment()),
            offset: f.loc.offset(),
            len: f.len,
            version: f.version,
        }))
    }

    /// Every retained version of `key`, newest first.
    pub fn history(&self, key: &[u8]) -> Result<Vec<HistoryEntry>> {
        self.history_in(DEFAULT_KEYSPACE, key)
    }

    /// Every retained version of `key` in `keyspace`, newest first.
    pub fn history_in(&self, keyspace: u32, key: &[u8]) -> Result<Vec<HistoryEntry>> {
        let visible = self.version();
        let mut out = Vec::new();
        let mut next = self.index.read().get(keyspace, key).map(Loc::from_u64);
        while let Some(loc) = next {
            let h = self.version_record(keyspace, key, loc)?;
            // A record that writes a key twice chains both ops under one
            // version; the newer one (met first) is that version.
            if h.version <= visible && out.last().is_none_or(|e: &HistoryEntry| e.version != h.version) {
                out.push(HistoryEntry {
                    version: h.version,
                    deleted: h.kind == OpKind::Delete,
                    value_len: h.value_len,
                });
            }
            next = h.prev;
        }
        Ok(out)
    }

    /// Resolves an index entry at version `at` to a value.
    pub(crate) fn resolve(&self, keyspace: u32, key: &[u8], meta: u64, at: u64) -> Result<Option<Value>> {
        match self.locate(keyspace, key, meta, at)? {
            Some(f) => Ok(Some(Value { data: self.read_value(f.loc, f.len)?, version: f.version })),
            None => Ok(None),
        }
    }

    /// Finds the bytes of the value an index entry has at version `at`.
    fn locate(&self, keyspace: u32, key: &[u8], meta: u64, at: u64) -> Result<Option<Found>> {
        let mut loc = Loc::from_u64(meta);
        loop {
            let h = self.version_record(keyspace, key, loc)?;
            if h.version <= at {
                if h.kind == OpKind::Delete {
                    return Ok(None);
                }
                let value = self.value_loc(loc, &h, key.len())?;
                return Ok(Some(Found { loc: value, len: h.value_len as usize, version: h.version }));
            }
            match h.prev {
                Some(prev) => loc = prev,
                None => return Ok(None),
            }
        }
    }

    /// Where the value of the put op at `loc` starts: after its key, or
    /// for `put_ref`, `value_back` bytes before the op.
    fn value_loc(&self, loc: Loc, h: &OpHeader, key_len: usize) -> Result<Loc> {
        let body = loc.forward((OP_HEADER_LEN + key_len) as u64);
        if h.kind != OpKind::PutRef {
            return Ok(body);
        }
        let back =
            self.log.read(body, VALUE_BACK_LEN, |b| u32::from_le_bytes(b.try_into().expect("4 bytes")))?;
        match loc.offset().checked_sub(back.into()) {
            Some(offset) => Ok(Loc::new(loc.segment(), offset)),
            None => Err(self.corrupt(loc, "a value reference points before the segment")),
        }
    }

    fn read_value(&self, loc: Loc, len: usize) -> Result<Vec<u8>> {
        Ok(self.log.read(loc, len, <[u8]>::to_vec)?)
    }

    /// Reads the version record at `loc` and checks it belongs to `key`.
    fn version_record(&self, keyspace: u32, key: &[u8], loc: Loc) -> Result<OpHeader> {
        let read = self.log.read(loc, OP_HEADER_LEN + key.len(), |b| {
            OpHeader::decode(b).filter(|h| {
                &b[OP_HEADER_LEN..] == key && h.key_len as usize == key.len() && h.keyspace == keyspace
            })
        })?;
        read.ok_or_else(|| self.corrupt(loc, "index points at a record that is not a version of this key"))
    }

    fn segment_path(&self, segment: u32) -> PathBuf {
        self.dir.join(format!("{segment:08}.log"))
    }

    fn corrupt(&self, loc: Loc, detail: &str) -> StoreError {
        StoreError::Log(LogError::Corruption {
            file: self.segment_path(loc.segment()),
            offset: loc.offset(),
            detail: detail.into(),
        })
    }

    /// An ordered scan (see [`ScanOptions`]).
    pub fn scan(&self, options: ScanOptions) -> Scan<'_> {
        self.scan_in(DEFAULT_KEYSPACE, options)
    }

    /// An ordered scan of `keyspace`.
    pub fn scan_in(&self, keyspace: u32, options: ScanOptions) -> Scan<'_> {
        let at = options.at.unwrap_or(u64::MAX).min(self.version());
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
        self.log.visible_version()
    }

    /// The version tag of the newest record sequenced, acknowledged or not.
    pub fn sequenced_version(&self) -> u64 {
        self.log.sequenced_version()
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

    /// What recovery found when the store was opened.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.report
    }

    /// The log below, for statistics and segment listings.
    pub fn log(&self) -> &FileLog {
        &self.log
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Writes and syncs everything acknowledged so far, whatever the mode.
    pub fn sync(&self) -> Result<()> {
        Ok(self.log.sync()?)
    }

    /// Syncs and closes; the data directory is unlocked afterwards.
    pub fn close(self) -> Result<()> {
        Ok(self.log.close()?)
    }
}

/// What the lock file says about this process: its pid and command line
/// (cut at 200 characters).
fn lock_holder() -> String {
    let cmd: String = std::env::args().collect::<Vec<_>>().join(" ").chars().take(200).collect();
    format!("pid {} ({cmd})", std::process::id())
}
