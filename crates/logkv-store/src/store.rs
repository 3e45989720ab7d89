//! The store: writes go into the log as batch records, the index points at
//! them, and reads resolve a key at a version by walking its chain on disk.
//!
//! Visibility: the index is updated when a batch is sequenced (under the
//! log's sequencing lock, so in position order), but readers only see
//! versions up to the log's *visible* position — the newest acknowledged
//! one. A reader that meets a newer version walks back along the chain, which
//! is the same mechanism "as of" reads use. So `always` never shows a write
//! before it is durable, and nothing in memory has to be undone when a write
//! fails.

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use logkv_fs::{DynFs, LockError, LockGuard, StdFs};
use logkv_log::{FileLog, Loc, LogConfig, LogError, RecordRef, RecordType, RecoveryReport};
use parking_lot::RwLock;

use crate::batch::{Op, WriteBatch};
use crate::error::{Result, StoreError};
use crate::index::{Index, CHUNK_BYTES, ENTRY_OVERHEAD};
use crate::limits::{check, Limits};
use crate::record::{parse_batch, OpHeader, OpKind, BATCH_HEADER_LEN, OP_HEADER_LEN};
use crate::scan::{Scan, ScanOptions};

/// The index's top bit: the newest version record of the key is a delete.
const DELETED: u64 = 1 << 63;

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
    /// The version (in this layer, the batch's log position).
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

/// An embedded key-value store whose values live in its log.
pub struct Store {
    log: FileLog,
    index: RwLock<Index>,
    live_keys: AtomicU64,
    limits: Limits,
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

/// A write as the store lays it out: borrowed key and value.
#[derive(Debug, Clone, Copy)]
struct Write<'a> {
    kind: OpKind,
    key: &'a [u8],
    value: &'a [u8],
}

impl<'a> From<&'a Op> for Write<'a> {
    fn from(op: &'a Op) -> Self {
        let kind = match op {
            Op::Put { .. } => OpKind::Put,
            Op::Delete { .. } => OpKind::Delete,
        };
        Write { kind, key: op.key(), value: op.value() }
    }
}

/// Why a sequenced write did not go ahead.
enum Refused {
    Store(StoreError),
    /// `delete` of a key that is not there: nothing to write.
    Absent,
}

impl From<LogError> for Refused {
    fn from(e: LogError) -> Self {
        Refused::Store(e.into())
    }
}

impl From<StoreError> for Refused {
    fn from(e: StoreError) -> Self {
        Refused::Store(e)
    }
}

impl Store {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: impl AsRef<Path>, options: StoreOptions) -> Result<Self> {
        Self::open_with_progress(dir, options, &mut |_, _| {})
    }

    /// Opens the store, reporting replay progress as `(bytes scanned, total)`.
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
        let mut index = Index::default();
        let mut live = 0u64;
        let max_index_bytes = options.limits.max_index_bytes;
        let mut visit = |r: RecordRef<'_>| -> Result<()> {
            let bad = |detail| StoreError::BadRecord { position: r.position, detail };
            let ops = parse_batch(r.payload, r.position).map_err(bad)?;
            reserve_index(&index, max_index_bytes, ops.iter().map(|o| (o.header.kind, o.key)))?;
            for op in ops {
                let loc = r.payload_loc.forward(op.offset as u64);
                apply(&mut index, &mut live, op.header.kind, op.key, loc);
            }
            Ok(())
        };
        let (log, report) = FileLog::open(fs, dir, options.log, &mut visit, progress)?;
        Ok(Self {
            log,
            index: RwLock::new(index),
            live_keys: AtomicU64::new(live),
            limits: options.limits,
            dir: dir.to_path_buf(),
            report,
            _lock: lock,
        })
    }

    /// Sets `key` to `value`; returns the version once acknowledged.
    pub fn put(&self, key: &[u8], value: &[u8]) -> Result<u64> {
        self.write_all(&[Write { kind: OpKind::Put, key, value }])
    }

    /// Deletes `key`; returns the version of the delete, or `None` (writing
    /// nothing) if the key did not exist.
    pub fn delete(&self, key: &[u8]) -> Result<Option<u64>> {
        let w = [Write { kind: OpKind::Delete, key, value: &[] }];
        match self.sequence(&w, true) {
            Ok(position) => {
                self.log.commit(position)?;
                Ok(Some(position))
            }
            Err(Refused::Absent) => Ok(None),
            Err(Refused::Store(e)) => Err(e),
        }
    }

    /// Applies every op of `batch` or none; returns the batch's version.
    /// An empty batch writes nothing and returns the current version.
    pub fn write(&self, batch: &WriteBatch) -> Result<u64> {
        let writes: Vec<Write<'_>> = batch.ops().iter().map(Write::from).collect();
        self.write_all(&writes)
    }

    fn write_all(&self, writes: &[Write<'_>]) -> Result<u64> {
        if writes.is_empty() {
            return Ok(self.version());
        }
        let position = self.sequence(writes, false).map_err(|e| match e {
            Refused::Store(e) => e,
            Refused::Absent => unreachable!("only deletes that require a live key refuse"),
        })?;
        self.log.commit(position)?;
        Ok(position)
    }

    /// Checks limits, then appends the batch record and updates the index in
    /// one step under the log's sequencing lock.
    fn sequence(&self, writes: &[Write<'_>], require_live: bool) -> Result<u64, Refused> {
        check("max_batch_ops", self.limits.max_batch_ops, writes.len())?;
        let mut data_bytes = 0usize;
        for w in writes {
            self.limits.check_key(w.key)?;
            self.limits.check_value(w.value)?;
            data_bytes += w.key.len() + w.value.len();
        }
        check("max_batch_bytes", self.limits.max_batch_bytes, data_bytes)?;
        let payload_len = BATCH_HEADER_LEN + writes.len() * OP_HEADER_LEN + data_bytes;
        self.log.append(RecordType::Batch, payload_len, |position, payload_loc, buf| {
            let mut index = self.index.write();
            if require_live && !writes.iter().all(|w| index.get(w.key).is_some_and(|m| m & DELETED == 0)) {
                return Err(Refused::Absent);
            }
            reserve_index(&index, self.limits.max_index_bytes, writes.iter().map(|w| (w.kind, w.key)))?;
            buf[..4].copy_from_slice(&(writes.len() as u32).to_le_bytes());
            let mut at = BATCH_HEADER_LEN;
            let mut live = self.live_keys.load(Ordering::Relaxed);
            for w in writes {
                // Indexing first finds the previous version with the same
                // search that updates the key; the header that points back
                // at it is encoded afterwards.
                let prev = apply(&mut index, &mut live, w.kind, w.key, payload_loc.forward(at as u64));
                let header = OpHeader {
                    kind: w.kind,
                    key_len: w.key.len() as u16,
                    value_len: w.value.len() as u32,
                    version: position,
                    prev: prev.map(Loc::from_u64),
                };
                header.encode(&mut buf[at..]);
                let key_at = at + OP_HEADER_LEN;
                buf[key_at..key_at + w.key.len()].copy_from_slice(w.key);
                buf[key_at + w.key.len()..at + header.op_len()].copy_from_slice(w.value);
                at += header.op_len();
            }
            debug_assert_eq!(at, buf.len());
            self.live_keys.store(live, Ordering::Relaxed);
            Ok(())
        })
    }

    /// The value of `key` now.
    pub fn get(&self, key: &[u8]) -> Result<Option<Value>> {
        self.get_at(key, u64::MAX)
    }

    /// The value of `key` as of `version`: the newest write at or below it.
    pub fn get_at(&self, key: &[u8], version: u64) -> Result<Option<Value>> {
        let at = version.min(self.version());
        let Some(meta) = self.index.read().get(key) else {
            return Ok(None);
        };
        self.resolve(key, meta, at)
    }

    /// Every retained version of `key`, newest first.
    pub fn history(&self, key: &[u8]) -> Result<Vec<HistoryEntry>> {
        let visible = self.version();
        let mut out = Vec::new();
        let mut next = self.index.read().get(key).map(Loc::from_u64);
        while let Some(loc) = next {
            let h = self.version_record(key, loc)?;
            // A batch that writes a key twice chains both records under one
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
    pub(crate) fn resolve(&self, key: &[u8], meta: u64, at: u64) -> Result<Option<Value>> {
        let mut loc = Loc::from_u64(meta);
        loop {
            let h = self.version_record(key, loc)?;
            if h.version <= at {
                if h.kind == OpKind::Delete {
                    return Ok(None);
                }
                let value_at = loc.forward((OP_HEADER_LEN + key.len()) as u64);
                let data = self.log.read(value_at, h.value_len as usize, <[u8]>::to_vec)?;
                return Ok(Some(Value { data, version: h.version }));
            }
            match h.prev {
                Some(prev) => loc = prev,
                None => return Ok(None),
            }
        }
    }

    /// Reads the version record at `loc` and checks it belongs to `key`.
    fn version_record(&self, key: &[u8], loc: Loc) -> Result<OpHeader> {
        let read = self.log.read(loc, OP_HEADER_LEN + key.len(), |b| {
            OpHeader::decode(b).filter(|h| &b[OP_HEADER_LEN..] == key && h.key_len as usize == key.len())
        })?;
        read.ok_or_else(|| {
            StoreError::Log(LogError::Corruption {
                file: self.dir.join(format!("{:08}.log", loc.segment())),
                offset: loc.offset(),
                detail: "index points at a record that is not a version of this key".into(),
            })
        })
    }

    /// An ordered scan (see [`ScanOptions`]).
    pub fn scan(&self, options: ScanOptions) -> Scan<'_> {
        let at = options.at.unwrap_or(u64::MAX).min(self.version());
        Scan::new(self, options, at)
    }

    /// Collects up to `max` index entries in range, for [`Scan`].
    pub(crate) fn index_page(
        &self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        reverse: bool,
        max: usize,
        out: &mut Vec<(Vec<u8>, u64)>,
    ) {
        self.index.read().range_page(start, end, reverse, max, out);
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
        self.log.visible_position()
    }

    /// Live keys (counting writes sequenced but not yet acknowledged).
    pub fn len(&self) -> u64 {
        self.live_keys.load(Ordering::Relaxed)
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

/// Applies one version record at `loc` to the index (shared by writes and
/// replay). Returns the key's previous metadata, which the record's `prev`
/// points at.
fn apply(index: &mut Index, live: &mut u64, kind: OpKind, key: &[u8], loc: Loc) -> Option<u64> {
    let is_live = |meta: u64| meta & DELETED == 0;
    match kind {
        OpKind::Put => {
            let old = index.upsert(key, loc.to_u64());
            if !old.is_some_and(is_live) {
                *live += 1;
            }
            old
        }
        OpKind::Delete => {
            // A delete of a key the index never held has nothing to hide,
            // so it adds no entry.
            let old = index.replace(key, loc.to_u64() | DELETED);
            if old.is_some_and(is_live) {
                *live -= 1;
            }
            old
        }
    }
}

/// Refuses a batch whose new keys could push the index past its ceiling.
/// The estimate is conservative: splits can at most double the entry bytes.
///
/// Knowing which keys are new takes a search per key, so that is done only
/// when it could change the answer: if the batch fits even with every put
/// adding a key, it is accepted without looking.
fn reserve_index<'a>(
    index: &Index,
    max_index_bytes: usize,
    writes: impl Iterator<Item = (OpKind, &'a [u8])> + Clone,
) -> Result<()> {
    let new_bytes = |is_new: &dyn Fn(&[u8]) -> bool| -> usize {
        writes
            .clone()
            .filter(|(kind, key)| *kind == OpKind::Put && is_new(key))
            .map(|(_, key)| 2 * (key.len() + ENTRY_OVERHEAD))
            .sum()
    };
    let room = max_index_bytes.saturating_sub(index.heap_bytes() + CHUNK_BYTES);
    if new_bytes(&|_| true) <= room {
        return Ok(());
    }
    let new_bytes = new_bytes(&|key| index.get(key).is_none());
    if new_bytes == 0 {
        return Ok(());
    }
    let projected = index.heap_bytes() + new_bytes + CHUNK_BYTES;
    check("max_index_bytes", max_index_bytes, projected)
}

/// What the lock file says about this process: its pid and command line
/// (cut at 200 characters).
fn lock_holder() -> String {
    let cmd: String = std::env::args().collect::<Vec<_>>().join(" ").chars().take(200).collect();
    format!("pid {} ({cmd})", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The verdict with a search for every key, as it was before the
    /// no-search shortcut.
    fn searching_verdict(index: &Index, max: usize, writes: &[(OpKind, Vec<u8>)]) -> Result<()> {
        let new_bytes: usize = writes
            .iter()
            .filter(|(kind, key)| *kind == OpKind::Put && index.get(key).is_none())
            .map(|(_, key)| 2 * (key.len() + ENTRY_OVERHEAD))
            .sum();
        if new_bytes == 0 {
            return Ok(());
        }
        check("max_index_bytes", max, index.heap_bytes() + new_bytes + CHUNK_BYTES)
    }

    proptest! {
        /// Skipping the searches when the batch fits anyway never changes
        /// whether a batch is accepted, nor the error it gets.
        #[test]
        fn reserve_index_gives_the_searching_verdict(
            indexed in prop::collection::vec(prop::collection::vec(0u8..3, 1..6), 0..100),
            batch in prop::collection::vec((any::<bool>(), prop::collection::vec(0u8..3, 1..6)), 0..40),
            // Around the boundary: the chunk allowance plus at most
            // 40 new keys of 5 bytes.
            slack in CHUNK_BYTES - 64..CHUNK_BYTES + 40 * 2 * (5 + ENTRY_OVERHEAD) + 64,
        ) {
            let mut index = Index::default();
            for (i, key) in indexed.iter().enumerate() {
                index.upsert(key, i as u64);
            }
            let writes: Vec<(OpKind, Vec<u8>)> = batch
                .into_iter()
                .map(|(put, key)| (if put { OpKind::Put } else { OpKind::Delete }, key))
                .collect();
            let max = index.heap_bytes() + slack;
            let got = reserve_index(&index, max, writes.iter().map(|(kind, key)| (*kind, &key[..])));
            let want = searching_verdict(&index, max, &writes);
            prop_assert_eq!(format!("{got:?}"), format!("{want:?}"));
        }
    }
}
