//! The file log: appends in position order into an in-process buffer, and a
//! flush that writes the buffer to segment files and (by durability mode)
//! syncs it. Group commit lives in [`crate::commit`].

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use logkv_fs::DynFs;
use parking_lot::{Mutex, RwLock};

use crate::commit::Commit;
use crate::config::{Durability, LogConfig};
use crate::error::{LogError, Result};
use crate::format::{
    begin_frame, seal_frame, u64_at, Loc, RecordType, SegmentHeader, FRAME_HEADER_LEN, FRAME_OVERHEAD,
    MAX_LOG_SEGMENT_ID, MAX_PAYLOAD_LEN, MAX_SEGMENT_BYTES, SEGMENT_HEADER_LEN,
};
use crate::locate::RecordMeta;
use crate::recovery::{recover, RecordRef, RecoveryReport, ReplayStart, SegmentExtent};
use crate::segment::Segment;
use crate::stats::LogStats;
use crate::sync_failure;

/// Bytes appended but not yet written to a segment file. Readers find
/// unwritten records here, which is what makes `periodic` acknowledgements
/// readable at once.
#[derive(Debug)]
struct Chunk {
    segment: u32,
    start: u64,
    data: Vec<u8>,
}

impl Chunk {
    fn slice(&self, loc: Loc, len: usize) -> Option<&[u8]> {
        let from = loc.offset().checked_sub(self.start)? as usize;
        (loc.segment() == self.segment && from + len <= self.data.len()).then(|| &self.data[from..from + len])
    }
}

/// What flushes remember between them.
#[derive(Debug)]
struct FlushState {
    /// Segments written (or found by recovery) since their last sync: a sync
    /// must cover them, not only what this flush wrote, or `sync()` after
    /// unsynced (`none`) writes, or after reopening a killed process's log,
    /// would leave acknowledged bytes behind an unsynced gap.
    unsynced: Vec<u32>,
    /// End of the zeros written ahead of the data in the newest segment.
    zeroed: Loc,
    /// The newest record written by a flush.
    flushed: u64,
    /// Records and bytes written since the last sync: the next sync's
    /// group (for [`LogStats`]).
    group: (u64, u64),
}

/// Zeros written ahead of the data at a time. An allocated but never written
/// block costs a metadata update (an extent conversion) in the first sync
/// that covers it — measured here, a 5 KiB group's sync took 120 µs instead
/// of 90 µs. Writing zeros ahead converts many blocks in one sync.
const ZERO_AHEAD_BYTES: u64 = 256 << 10;

/// The newest record a flush covered.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Flushed {
    /// Its position.
    pub(crate) position: u64,
    /// Its version tag.
    pub(crate) version: u64,
}

/// The sequencer: everything an append touches, under one lock.
#[derive(Debug)]
struct SeqState {
    next_position: u64,
    /// Version tag of the newest record appended.
    last_version: u64,
    segment: u32,
    offset: u64,
    capacity: u64,
    open: Chunk,
    sealed: VecDeque<Arc<Chunk>>,
    closed: bool,
    /// Log time of the newest record: times never decrease along the log
    /// even if the clock steps back.
    last_time_ms: u64,
    /// Offset of the newest record's frame in the segment appends go to
    /// (0: none yet), for its extent once it is sealed.
    last_frame: u64,
}

impl SeqState {
    /// Moves the open chunk (if it holds anything) to the sealed queue.
    fn seal_open(&mut self) {
        if !self.open.data.is_empty() {
            let next = Chunk { segment: self.segment, start: self.offset, data: Vec::new() };
            self.sealed.push_back(Arc::new(std::mem::replace(&mut self.open, next)));
        }
    }
}

pub(crate) struct Inner {
    fs: DynFs,
    pub(crate) dir: PathBuf,
    pub(crate) config: LogConfig,
    seq: Mutex<SeqState>,
    pub(crate) segments: RwLock<BTreeMap<u32, Arc<Segment>>>,
    /// End of the bytes written to segment files, as a packed [`Loc`].
    written: AtomicU64,
    /// Newest acknowledged position: readers see nothing newer.
    pub(crate) visible: AtomicU64,
    /// Version tag of the record at `visible`.
    visible_version: AtomicU64,
    /// Version tag of the newest record appended (acknowledged or not).
    sequenced_version: AtomicU64,
    /// Version tag of the newest record fdatasync'd (at open: the newest
    /// record recovery found).
    synced_version: AtomicU64,
    /// One flush at a time, so files are written in order.
    flush_lock: Mutex<FlushState>,
    failed: OnceLock<String>,
    /// Bytes appended but not yet written to a segment file; an atomic so
    /// that `periodic` writers can watch it without the sequencer lock.
    buffered: AtomicUsize,
    pub(crate) commit: Commit,
    pub(crate) stats: LogStats,
}

/// An embedded, segmented, append-only log of CRC-framed records.
pub struct FileLog {
    inner: Arc<Inner>,
    flusher: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for FileLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileLog").field("dir", &self.inner.dir).finish_non_exhaustive()
    }
}

impl FileLog {
    /// Opens (or creates) the log in `dir`, replaying every record after
    /// `start` through `visit` in position order, with `progress(scanned,
    /// total)` updates. `visit` returns the record's version tag (see
    /// [`FileLog::append`]); the last one becomes the visible version
    /// (`start_version` when no record is visited).
    pub fn open<E: From<LogError>>(
        fs: DynFs,
        dir: &Path,
        config: LogConfig,
        start: ReplayStart,
        start_version: u64,
        visit: &mut dyn FnMut(RecordRef<'_>) -> Result<u64, E>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<(Self, RecoveryReport), E> {
        let min_segment_bytes = SEGMENT_HEADER_LEN + FRAME_OVERHEAD as u64;
        if config.segment_size_bytes < min_segment_bytes {
            let got = config.segment_size_bytes;
            let why = format!("segment_size_bytes is {got}, below the minimum of {min_segment_bytes}");
            return Err(LogError::Config(why).into());
        }
        if config.segment_size_bytes > MAX_SEGMENT_BYTES {
            return Err(LogError::LimitExceeded {
                what: "segment_size_bytes",
                limit: MAX_SEGMENT_BYTES,
                got: config.segment_size_bytes,
            }
            .into());
        }
        fs.create_dir_all(dir).map_err(|e| LogError::io(dir, e))?;
        let mut last_version = start_version;
        let mut tagged = |r: RecordRef<'_>| -> Result<(), E> {
            let version = visit(r)?;
            if version < last_version {
                return Err(
                    LogError::VersionOrder { position: r.position, version, previous: last_version }.into()
                );
            }
            last_version = version;
            Ok(())
        };
        let mut rec = recover(fs.as_ref(), dir, config.recovery, &start, &mut tagged, progress)?;
        rec.report.rewritten_segments =
            sync_failure::repair(fs.as_ref(), dir, &rec.segments, rec.tail_offset)?;
        // A killed process may have created the last segment without its
        // directory entry reaching the disk (it died between the two
        // syncs). Syncing a file later does not make its name durable, so
        // a write synced into that segment could vanish with it at a power
        // loss: make every recovered segment's name durable first.
        fs.sync_dir(dir).map_err(|e| LogError::io(dir, e))?;
        let (segment, capacity) = rec.segments.last().map_or((0, 0), |s| (s.id, s.capacity));
        let written = Loc::new(segment, rec.tail_offset).to_u64();
        let seq = SeqState {
            next_position: rec.next_position,
            last_version,
            segment,
            offset: rec.tail_offset,
            capacity,
            open: Chunk { segment, start: rec.tail_offset, data: Vec::new() },
            sealed: VecDeque::new(),
            closed: false,
            last_time_ms: rec.last_time_ms.max(start.time_ms),
            last_frame: rec.last_frame,
        };
        let unsynced = rec.segments.iter().map(|s| s.id).collect();
        let zeroed = Loc::new(segment, rec.tail_offset);
        let segments = rec.segments.into_iter().map(|s| (s.id, Arc::new(s))).collect();
        let inner = Arc::new(Inner {
            fs,
            dir: dir.to_path_buf(),
            commit: Commit::new(rec.next_position - 1),
            config,
            seq: Mutex::new(seq),
            segments: RwLock::new(segments),
            written: AtomicU64::new(written),
            visible: AtomicU64::new(rec.next_position - 1),
            visible_version: AtomicU64::new(last_version),
            sequenced_version: AtomicU64::new(last_version),
            synced_version: AtomicU64::new(last_version),
            flush_lock: Mutex::new(FlushState {
                unsynced,
                zeroed,
                flushed: rec.next_position - 1,
                group: (0, 0),
            }),
            failed: OnceLock::new(),
            buffered: AtomicUsize::new(0),
            stats: LogStats::default(),
        });
        let flusher = match inner.config.durability {
            Durability::Periodic { .. } => {
                let inner = inner.clone();
                Some(
                    std::thread::Builder::new()
                        .name("logkv-flusher".into())
                        .spawn(move || crate::commit::run_flusher(&inner))
                        .map_err(|e| LogError::io("flusher thread", e))?,
                )
            }
            _ => None,
        };
        Ok((Self { inner, flusher }, rec.report))
    }

    /// Appends one record of `payload_len` bytes, which `fill` writes in
    /// place. `fill` runs under the sequencing lock, so records (and whatever
    /// `fill` does, such as updating an index) happen in position order; it
    /// learns the record's position and where its payload will live, and
    /// returns the record's *version tag*: a number of the caller's choosing
    /// that never decreases from one record to the next (the store uses the
    /// position for its batches and transaction versions for applied
    /// entries). The log publishes the tag of the newest acknowledged record
    /// as [`FileLog::visible_version`]. `fill` must not return a tag below
    /// [`FileLog::sequenced_version`] (which it may read); such a record is
    /// refused with `VersionOrder`. If `fill` fails, nothing is appended.
    /// Returns the position; call [`FileLog::commit`] to wait until it is
    /// acknowledged.
    ///
    /// The record's *log time* is `log_time` (a time a shared log gave the
    /// record) or, if `None`, this machine's clock; either way raised to the
    /// previous record's, so log times never decrease and, for a copy of a
    /// shared log, are the same on every node.
    pub fn append<E: From<LogError>>(
        &self,
        rtype: RecordType,
        payload_len: usize,
        log_time: Option<u64>,
        fill: impl FnOnce(u64, Loc, &mut [u8]) -> Result<u64, E>,
    ) -> Result<u64, E> {
        self.inner.append(rtype, payload_len, log_time, fill)
    }

    /// A handle that appends and syncs from another thread (a store's
    /// background work), without owning the log: once the log is closed,
    /// its appends fail with `Closed`.
    pub fn handle(&self) -> LogHandle {
        LogHandle { inner: self.inner.clone() }
    }

    /// Waits until `position` is acknowledged under the durability mode.
    pub fn commit(&self, position: u64) -> Result<()> {
        crate::commit::wait(&self.inner, position)
    }

    /// Writes and syncs everything appended so far, whatever the mode.
    pub fn sync(&self) -> Result<()> {
        self.inner.sync()
    }

    /// The position the next record will get.
    pub fn next_position(&self) -> u64 {
        self.inner.seq.lock().next_position
    }

    /// Calls `f` with the `len` bytes at `loc`, wherever they are now.
    pub fn read<R>(&self, loc: Loc, len: usize, f: impl FnOnce(&[u8]) -> R) -> Result<R> {
        self.inner.read(loc, len, f)
    }

    /// The acknowledged record at `position`, from its frame header, found
    /// through the segment's sparse marks (one per [`crate::MARK_EVERY_BYTES`] of
    /// frames, built on first use); `None` if the log's segments hold no such record
    /// (a compacted file replaced it, or it is not acknowledged yet).
    pub fn locate(&self, position: u64) -> Result<Option<RecordMeta>> {
        self.inner.locate(position)
    }

    /// Calls `f` with the acknowledged record at `position`, its frame
    /// checksum checked; `None` as for [`FileLog::locate`].
    pub fn read_record<R>(&self, position: u64, f: impl FnOnce(RecordRef<'_>) -> R) -> Result<Option<R>> {
        self.inner.read_record(position, f)
    }

    /// The newest acknowledged position whose log time is at most
    /// `time_ms`; `None` if the oldest record in the segments is later.
    pub fn position_at_time(&self, time_ms: u64) -> Result<Option<u64>> {
        self.inner.position_at_time(time_ms)
    }

    /// The newest acknowledged position (0 when empty).
    pub fn visible_position(&self) -> u64 {
        self.inner.visible.load(Ordering::Acquire)
    }

    /// The version tag of the newest acknowledged record (0 when empty):
    /// readers see no version above it.
    pub fn visible_version(&self) -> u64 {
        self.inner.visible_version.load(Ordering::Acquire)
    }

    /// The version tag of the newest record on stable storage: what a power
    /// loss now would keep. In `none` mode it moves only at a clean close.
    pub fn synced_version(&self) -> u64 {
        self.inner.synced_version.load(Ordering::Acquire)
    }

    /// The version tag of the newest record appended, acknowledged or not.
    /// Cheap (an atomic load), so `fill` may read it.
    pub fn sequenced_version(&self) -> u64 {
        self.inner.sequenced_version.load(Ordering::Acquire)
    }

    /// Counters for metrics and benchmarks.
    pub fn stats(&self) -> &LogStats {
        &self.inner.stats
    }

    /// The reason the log turned read-only, if it did.
    pub fn failure(&self) -> Option<&str> {
        self.inner.failed.get().map(String::as_str)
    }

    /// The durability mode the log was opened with.
    pub fn durability(&self) -> Durability {
        self.inner.config.durability
    }

    /// Segment files with their capacities, oldest first.
    pub fn segments(&self) -> Vec<(PathBuf, u64)> {
        self.inner.segments.read().values().map(|s| (s.path.clone(), s.capacity)).collect()
    }

    /// Every segment with where it starts, oldest first; the last one is
    /// the segment appends go to.
    pub fn segment_info(&self) -> Result<Vec<SegmentInfo>> {
        let segments = self.inner.segments.read().clone();
        segments
            .values()
            .map(|seg| {
                let header =
                    seg.with_bytes(0, SEGMENT_HEADER_LEN as usize, |b| SegmentHeader::decode(b).ok())?;
                let first = seg.with_bytes(SEGMENT_HEADER_LEN, FRAME_HEADER_LEN, |b| {
                    (b.iter().any(|&x| x != 0)).then(|| (b[4], u64_at(b, 13)))
                })?;
                Ok(SegmentInfo {
                    id: seg.id,
                    path: seg.path.clone(),
                    capacity: seg.capacity,
                    first_position: header.map_or(0, |h| h.first_position),
                    first_record: first.map(|(rtype, time_ms)| FirstRecord {
                        rtype: RecordType::from_byte(rtype),
                        time_ms,
                        payload: Loc::new(seg.id, SEGMENT_HEADER_LEN + FRAME_HEADER_LEN as u64),
                    }),
                })
            })
            .collect()
    }

    /// The sealed segments whose records all lie at or before `through`:
    /// what a checkpoint through `through` records, so that an open can
    /// check them without reading them (see [`ReplayStart::covered`]).
    pub fn sealed_extents(&self, through: u64) -> Vec<SegmentExtent> {
        let segments = self.inner.segments.read();
        segments
            .values()
            .filter_map(|s| s.sealed.get().copied())
            .filter(|e| e.last_position <= through)
            .collect()
    }

    /// Starts a new segment now, so that everything appended so far lies in
    /// sealed segments (which compaction may rewrite).
    pub fn roll(&self) -> Result<RollPoint> {
        let mut s = self.inner.seq.lock();
        self.inner.check_writable()?;
        if s.closed {
            return Err(LogError::Closed);
        }
        self.inner.roll(&mut s, 0)?;
        Ok(RollPoint { segment: s.segment, first_position: s.next_position, version_before: s.last_version })
    }

    /// Removes the segments up to `last` (their records now live in a
    /// compacted file the caller installed): closes them, deletes their
    /// files and syncs the directory. Everything in them must have been
    /// synced, and `last` must be older than the segment appends go to.
    pub fn retire_through(&self, last: u32) -> Result<()> {
        if last >= self.inner.seq.lock().segment {
            return Err(LogError::Config(format!("segment {last} is still being appended to")));
        }
        let retired: Vec<Arc<Segment>> = {
            let mut segments = self.inner.segments.write();
            let keep = segments.split_off(&(last + 1));
            std::mem::replace(&mut *segments, keep).into_values().collect()
        };
        self.inner.flush_lock.lock().unsynced.retain(|&id| id > last);
        for seg in &retired {
            self.inner.fs.remove_file(&seg.path).map_err(|e| LogError::io(&seg.path, e))?;
        }
        if !retired.is_empty() {
            self.inner.fs.sync_dir(&self.inner.dir).map_err(|e| LogError::io(&self.inner.dir, e))?;
        }
        Ok(())
    }

    /// Whether `segment` is no longer part of the log (retired, or never
    /// written): locations in it are stale.
    pub fn is_retired(&self, segment: u32) -> bool {
        self.inner.segments.read().first_key_value().is_some_and(|(&first, _)| segment < first)
    }

    /// Flushes and syncs everything, stops the flusher and refuses new appends.
    pub fn close(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        self.inner.seq.lock().closed = true;
        self.inner.commit.shut_down();
        if let Some(t) = self.flusher.take() {
            let _ = t.join();
        }
        if self.inner.failed.get().is_some() {
            return Ok(());
        }
        self.sync()
    }
}

/// What [`FileLog::handle`] gives: appends and syncs for a thread that
/// does not own the log.
#[derive(Clone)]
pub struct LogHandle {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LogHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogHandle").field("dir", &self.inner.dir).finish_non_exhaustive()
    }
}

impl LogHandle {
    /// [`FileLog::append`].
    pub fn append<E: From<LogError>>(
        &self,
        rtype: RecordType,
        payload_len: usize,
        log_time: Option<u64>,
        fill: impl FnOnce(u64, Loc, &mut [u8]) -> Result<u64, E>,
    ) -> Result<u64, E> {
        self.inner.append(rtype, payload_len, log_time, fill)
    }

    /// [`FileLog::sync`].
    pub fn sync(&self) -> Result<()> {
        self.inner.sync()
    }

    /// [`FileLog::sequenced_version`].
    pub fn sequenced_version(&self) -> u64 {
        self.inner.sequenced_version.load(Ordering::Acquire)
    }

    /// [`FileLog::next_position`].
    pub fn next_position(&self) -> u64 {
        self.inner.seq.lock().next_position
    }
}

/// A segment of the log, as [`FileLog::segment_info`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Its number.
    pub id: u32,
    /// Its file.
    pub path: PathBuf,
    /// Bytes allocated.
    pub capacity: u64,
    /// Position of its first record (0 if its header is unreadable).
    pub first_position: u64,
    /// Its first record, if it has one.
    pub first_record: Option<FirstRecord>,
}

/// The first record of a segment, as [`SegmentInfo`] describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstRecord {
    /// Its type (`None`: unknown to this version).
    pub rtype: Option<RecordType>,
    /// Its append time (Unix milliseconds).
    pub time_ms: u64,
    /// Where its payload starts.
    pub payload: Loc,
}

/// Where [`FileLog::roll`] cut the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollPoint {
    /// The new segment appends go to.
    pub segment: u32,
    /// The position its first record will get.
    pub first_position: u64,
    /// The version tag of the last record before it.
    pub version_before: u64,
}

/// The wall clock in Unix milliseconds (0 if it is before 1970).
fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Drop for FileLog {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

impl Inner {
    fn append<E: From<LogError>>(
        &self,
        rtype: RecordType,
        payload_len: usize,
        log_time: Option<u64>,
        fill: impl FnOnce(u64, Loc, &mut [u8]) -> Result<u64, E>,
    ) -> Result<u64, E> {
        if payload_len > MAX_PAYLOAD_LEN {
            return Err(LogError::LimitExceeded {
                what: "record payload",
                limit: MAX_PAYLOAD_LEN as u64,
                got: payload_len as u64,
            }
            .into());
        }
        let inner = self;
        let frame_len = (FRAME_OVERHEAD + payload_len) as u64;
        let mut s = inner.seq.lock();
        inner.check_writable()?;
        if s.closed {
            return Err(LogError::Closed.into());
        }
        if s.offset + frame_len > s.capacity {
            inner.roll(&mut s, frame_len)?;
        }
        let position = s.next_position;
        let payload_loc = Loc::new(s.segment, s.offset + FRAME_HEADER_LEN as u64);
        let time_ms = s.last_time_ms.max(log_time.unwrap_or_else(now_ms));
        let start = begin_frame(&mut s.open.data, rtype, position, time_ms, payload_len);
        let version = match fill(position, payload_loc, &mut s.open.data[start + FRAME_HEADER_LEN..]) {
            Ok(v) if v >= s.last_version => v,
            Ok(v) => {
                s.open.data.truncate(start);
                return Err(LogError::VersionOrder { position, version: v, previous: s.last_version }.into());
            }
            Err(e) => {
                s.open.data.truncate(start);
                return Err(e);
            }
        };
        seal_frame(&mut s.open.data, start);
        s.last_time_ms = time_ms;
        s.next_position += 1;
        s.last_version = version;
        inner.sequenced_version.store(version, Ordering::Release);
        s.last_frame = s.offset;
        s.offset += frame_len;
        let buffered = inner.buffered.fetch_add(frame_len as usize, Ordering::AcqRel) + frame_len as usize;
        if let Durability::Periodic { flush_size_bytes, .. } = inner.config.durability {
            // Version first: a reader that sees the position sees its version.
            inner.visible_version.store(version, Ordering::Release);
            inner.visible.store(position, Ordering::Release);
            if buffered >= flush_size_bytes {
                inner.commit.request_flush();
            }
        }
        Ok(position)
    }

    fn check_writable(&self) -> Result<()> {
        match self.failed.get() {
            Some(why) => Err(LogError::ReadOnly(why.clone())),
            None => Ok(()),
        }
    }

    /// Marks the log read-only for good. Never retried: after a failed fsync
    /// the kernel may have dropped the dirty pages it could not write.
    pub(crate) fn fail(&self, what: String) -> LogError {
        if self.failed.get().is_none() {
            sync_failure::record(self.fs.as_ref(), &self.dir, &what);
        }
        let _ = self.failed.set(what);
        LogError::ReadOnly(self.failed.get().cloned().unwrap_or_default())
    }

    /// Makes everything up to `last` visible to readers.
    pub(crate) fn publish(&self, last: Flushed) {
        // Version first: a reader that sees the position sees its version.
        self.visible_version.fetch_max(last.version, Ordering::AcqRel);
        self.visible.fetch_max(last.position, Ordering::AcqRel);
    }

    /// Writes and syncs everything appended so far, then acknowledges it.
    pub(crate) fn sync(&self) -> Result<()> {
        let last = self.flush(true)?;
        self.acknowledge(last);
        Ok(())
    }

    /// Publishes `last` and wakes anyone waiting for it.
    pub(crate) fn acknowledge(&self, last: Flushed) {
        self.publish(last);
        self.commit.acknowledge(last.position);
    }

    pub(crate) fn failed(&self) -> Option<&str> {
        self.failed.get().map(String::as_str)
    }

    pub(crate) fn buffered_bytes(&self) -> usize {
        self.buffered.load(Ordering::Acquire)
    }

    /// Starts a new segment big enough for a frame of `frame_len` bytes. The
    /// file is created (allocated, header written, synced, directory synced)
    /// here, under the sequencer, so a full disk is an error for this append
    /// and nothing else.
    fn roll(&self, s: &mut SeqState, frame_len: u64) -> Result<()> {
        let id = s.segment + 1;
        if id > MAX_LOG_SEGMENT_ID {
            return Err(LogError::LimitExceeded {
                what: "segment count",
                limit: MAX_LOG_SEGMENT_ID.into(),
                got: id.into(),
            });
        }
        let capacity = self.config.segment_size_bytes.max(SEGMENT_HEADER_LEN + frame_len);
        let created =
            Segment::create(self.fs.as_ref(), &self.dir, id, s.next_position, capacity).and_then(|seg| {
                self.fs.sync_dir(&self.dir).map_err(|e| LogError::io(&self.dir, e))?;
                Ok(seg)
            });
        let seg = match created {
            Ok(seg) => seg,
            Err(e) => {
                let _ = self.fs.remove_file(&self.dir.join(Segment::file_name(id)));
                return Err(e);
            }
        };
        let mut segments = self.segments.write();
        if let Some(sealed) = segments.get(&s.segment) {
            let _ = sealed.sealed.set(SegmentExtent {
                id: sealed.id,
                first_position: sealed.first_position,
                last_position: s.next_position - 1,
                last_frame: if s.next_position > sealed.first_position { s.last_frame } else { 0 },
            });
        }
        segments.insert(id, Arc::new(seg));
        drop(segments);
        s.last_frame = 0;
        s.seal_open();
        s.segment = id;
        s.offset = SEGMENT_HEADER_LEN;
        s.capacity = capacity;
        s.open = Chunk { segment: id, start: SEGMENT_HEADER_LEN, data: Vec::new() };
        Ok(())
    }

    /// Writes every buffered chunk to its segment and, if `sync`, syncs every
    /// segment not synced since it was written. Returns the last record covered.
    pub(crate) fn flush(&self, sync: bool) -> Result<Flushed> {
        let mut state = self.flush_lock.lock();
        let FlushState { unsynced, zeroed, flushed, group } = &mut *state;
        self.check_writable()?;
        let (chunks, last) = {
            let mut s = self.seq.lock();
            s.seal_open();
            let last = Flushed { position: s.next_position - 1, version: s.last_version };
            (s.sealed.iter().cloned().collect::<Vec<_>>(), last)
        };
        let segments = self.segments.read().clone();
        let mut bytes = 0usize;
        for c in &chunks {
            let seg = &segments[&c.segment];
            let end = c.start + c.data.len() as u64;
            let written = self
                .zero_ahead(seg, zeroed, end, c.data.len() as u64)
                .and_then(|()| seg.file.write_at(&c.data, c.start));
            if let Err(e) = written {
                return Err(self.fail(format!("write to {} ({e})", seg.path.display())));
            }
            bytes += c.data.len();
            if unsynced.last() != Some(&seg.id) {
                unsynced.push(seg.id);
            }
        }
        if let Some(c) = chunks.last() {
            let end = Loc::new(c.segment, c.start + c.data.len() as u64);
            let mut s = self.seq.lock();
            self.written.store(end.to_u64(), Ordering::Release);
            s.sealed.drain(..chunks.len());
            self.buffered.fetch_sub(bytes, Ordering::AcqRel);
            drop(s);
            self.commit.wake_writers();
        }
        self.stats.record_write(bytes as u64, chunks.len() as u64);
        group.0 += last.position.saturating_sub(*flushed);
        group.1 += bytes as u64;
        *flushed = (*flushed).max(last.position);
        if sync {
            if group.0 > 0 {
                self.stats.record_group(group.0, group.1);
            }
            *group = (0, 0);
            for seg in unsynced.iter().filter_map(|id| segments.get(id)) {
                let started = std::time::Instant::now();
                if let Err(e) = seg.file.sync_data() {
                    return Err(self.fail(format!("fsync of {} ({e})", seg.path.display())));
                }
                self.stats.record_sync(started.elapsed());
            }
            unsynced.clear();
            self.synced_version.fetch_max(last.version, Ordering::AcqRel);
        }
        Ok(last)
    }

    /// Writes zeros past `end` in `seg` when the zeroed stretch runs short,
    /// before the data that will land in it. A large write (`len` at least
    /// half the stretch) converts its own blocks in one sync, and zeros
    /// ahead of it would double the bytes written, so it skips them.
    fn zero_ahead(&self, seg: &Segment, zeroed: &mut Loc, end: u64, len: u64) -> std::io::Result<()> {
        if zeroed.segment() != seg.id {
            *zeroed = Loc::new(seg.id, SEGMENT_HEADER_LEN);
        }
        if len >= ZERO_AHEAD_BYTES / 2 {
            *zeroed = Loc::new(seg.id, zeroed.offset().max(end));
            return Ok(());
        }
        if zeroed.offset() >= end + ZERO_AHEAD_BYTES / 2 || zeroed.offset() >= seg.capacity {
            return Ok(());
        }
        let from = zeroed.offset().max(end);
        let to = (end + ZERO_AHEAD_BYTES).min(seg.capacity);
        static ZEROS: [u8; ZERO_AHEAD_BYTES as usize] = [0; ZERO_AHEAD_BYTES as usize];
        seg.file.write_at(&ZEROS[..(to - from) as usize], from)?;
        *zeroed = Loc::new(seg.id, to);
        Ok(())
    }

    pub(crate) fn read<R>(&self, loc: Loc, len: usize, f: impl FnOnce(&[u8]) -> R) -> Result<R> {
        // The location may come from a file (an index entry, a version's
        // link to the one before): one running past any segment is damage.
        let Some(end) = loc.offset().checked_add(len as u64).filter(|&end| end < MAX_SEGMENT_BYTES) else {
            return Err(self.dangling(loc, len));
        };
        let end = Loc::new(loc.segment(), end).to_u64();
        if end > self.written.load(Ordering::Acquire) {
            let s = self.seq.lock();
            if end > self.written.load(Ordering::Acquire) {
                let found = s.sealed.iter().map(|c| &**c).chain([&s.open]).find_map(|c| c.slice(loc, len));
                return match found {
                    Some(bytes) => Ok(f(bytes)),
                    None => Err(self.dangling(loc, len)),
                };
            }
        }
        let seg = self.segments.read().get(&loc.segment()).cloned();
        match seg {
            Some(seg) => seg.with_bytes(loc.offset(), len, f),
            None => Err(self.dangling(loc, len)),
        }
    }

    fn dangling(&self, loc: Loc, len: usize) -> LogError {
        LogError::Corruption {
            file: self.dir.join(Segment::file_name(loc.segment())),
            offset: loc.offset(),
            detail: format!("no record holds the {len} bytes asked for"),
        }
    }
}
