//! [`FileEntryLog`]: a shared log kept in a directory on one machine, so
//! several nodes can share a log without NATS.
//!
//! The directory holds a `logkv-log` [`FileLog`] whose records are the
//! entries (type [`RecordType::Entry`], payload = the entry's bytes,
//! record position = entry position), synced before an append returns. A
//! record's frame time is the entry's log time: the appending process's
//! clock, never decreasing along the log.
//!
//! One process holds the directory (a lock file refuses a second one);
//! inside it every [`FileEntryLog::open`] of the same directory shares one
//! log, so the nodes of one process (threads, tests) share it. A follower
//! finds its first entry with the log's own position lookup
//! ([`FileLog::locate`]: sparse marks, no memory per entry), then walks
//! the frames after it, each one's checksum checked.
//!
//! Trimming removes whole segments below the point and records the new
//! first position in [`FIRST_FILE`] first, so a crash in between leaves
//! the removal to finish at the next open.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex, Weak};

use bytes::Bytes;
use logkv_fs::{DynFs, LockGuard, StdFs};
use logkv_log::format::{read_frame, u32_at, u64_at, FrameRead, FRAME_HEADER_LEN, FRAME_OVERHEAD};
use logkv_log::{FileLog, Loc, LogConfig, LogError, RecordType, ReplayStart};
use tokio::sync::Notify;

use super::{Batch, BoardReports, DigestBoard, Follower, LogEntry, SharedLog, SharedLogError};
use crate::apply::Watched;
use crate::divergence::DigestReport;

/// The file holding the first position after a trim.
pub const FIRST_FILE: &str = "first-position";

/// The lock file that keeps a second process out.
const LOCK_FILE: &str = "LOCK";

/// Segment capacity: small enough for trims to free space in steps.
const SEGMENT_BYTES: u64 = 16 << 20;

/// The directories open in this process, so every open of one shares it.
static OPEN: StdMutex<BTreeMap<PathBuf, Weak<Inner>>> = StdMutex::new(BTreeMap::new());

/// A shared log in a directory; clones (and other opens of the same
/// directory in this process) are the same log. Its futures run on a
/// tokio runtime: file work goes to the runtime's blocking pool.
#[derive(Debug, Clone)]
pub struct FileEntryLog {
    inner: Arc<Inner>,
}

struct Inner {
    fs: DynFs,
    dir: PathBuf,
    log: FileLog,
    /// The first position the log holds (moved by trims).
    first: AtomicU64,
    /// Woken after every append, for followers waiting at the tail.
    appended: Notify,
    /// The nodes' digest reports (all in this process).
    digests: DigestBoard,
    _lock: Box<dyn LockGuard>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileEntryLog").field("dir", &self.dir).finish_non_exhaustive()
    }
}

fn unavailable(dir: &Path, e: impl std::fmt::Display) -> SharedLogError {
    SharedLogError::Unavailable(format!("file log {}: {e}", dir.display()))
}

impl FileEntryLog {
    /// Opens (or creates) the log in `dir`, or joins it if this process
    /// has it open already. Fails if another process holds it.
    pub fn open(dir: &Path) -> Result<FileEntryLog, SharedLogError> {
        let fs: DynFs = Arc::new(StdFs);
        fs.create_dir_all(dir).map_err(|e| unavailable(dir, e))?;
        let dir = dir.canonicalize().map_err(|e| unavailable(dir, e))?;
        let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(inner) = open.get(&dir).and_then(Weak::upgrade) {
            return Ok(FileEntryLog { inner });
        }
        let holder = format!("pid {}", std::process::id());
        let lock = fs.lock(&dir.join(LOCK_FILE), &holder).map_err(|e| unavailable(&dir, e))?;
        let first = read_first(&fs, &dir)?;
        let mut visit = |r: logkv_log::RecordRef<'_>| -> Result<u64, LogError> {
            if r.rtype != RecordType::Entry {
                let detail = format!("record {} is a {:?}, not an entry", r.position, r.rtype);
                return Err(LogError::Corruption { file: dir.clone(), offset: 0, detail });
            }
            Ok(r.position)
        };
        let config = LogConfig { segment_size_bytes: SEGMENT_BYTES, ..LogConfig::default() };
        let start = ReplayStart { first_position: first, ..ReplayStart::default() };
        let (log, _) = FileLog::open(fs.clone(), &dir, config, start, 0, &mut visit, &mut |_, _| {})
            .map_err(|e| unavailable(&dir, e))?;
        let first = AtomicU64::new(first);
        let inner = Arc::new(Inner {
            fs,
            dir: dir.clone(),
            log,
            first,
            appended: Notify::new(),
            digests: DigestBoard::default(),
            _lock: lock,
        });
        open.retain(|_, w| w.strong_count() > 0);
        open.insert(dir, Arc::downgrade(&inner));
        Ok(FileEntryLog { inner })
    }

    /// Runs `f` on a blocking thread: appends sync and reads touch files.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T, SharedLogError> + Send + 'static,
    ) -> Result<T, SharedLogError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner)).await.map_err(|e| unavailable(&self.inner.dir, e))?
    }
}

/// The first position recorded by the last trim (1 if never trimmed).
fn read_first(fs: &DynFs, dir: &Path) -> Result<u64, SharedLogError> {
    let path = dir.join(FIRST_FILE);
    if !fs.exists(&path) {
        return Ok(1);
    }
    let file = fs.open(&path).map_err(|e| unavailable(&path, e))?;
    let mut b = [0u8; 8];
    file.read_exact_at(&mut b, 0).map_err(|e| unavailable(&path, e))?;
    Ok(u64::from_le_bytes(b).max(1))
}

impl Inner {
    fn append(&self, entries: &[Bytes]) -> Result<Vec<u64>, SharedLogError> {
        let mut positions = Vec::with_capacity(entries.len());
        for e in entries {
            // The log's own clock, raised to the previous record's time, is
            // the entry's log time.
            let p = self
                .log
                .append::<LogError>(RecordType::Entry, e.len(), None, |position, _, buf| {
                    buf.copy_from_slice(e);
                    Ok(position)
                })
                .map_err(|e| unavailable(&self.dir, e))?;
            positions.push(p);
        }
        if let Some(last) = positions.last() {
            self.log.commit(*last).map_err(|e| unavailable(&self.dir, e))?;
            self.appended.notify_waiters();
        }
        Ok(positions)
    }

    /// The entries from `from` on, at most `max`, up to the newest
    /// acknowledged, and where the frame after the last one starts;
    /// `cursor` is where `from`'s frame is, if known.
    fn read(
        &self,
        from: u64,
        max: usize,
        cursor: Option<Loc>,
    ) -> Result<(Vec<LogEntry>, Loc), SharedLogError> {
        SharedLogError::check_trimmed(self.first.load(Ordering::Acquire), from)?;
        let last = self.log.visible_position().min(from.saturating_add(max.max(1) as u64 - 1));
        let mut out = Vec::new();
        let mut frame = cursor;
        for position in from..=last {
            // The frame after the previous one, unless its segment ended
            // there: then the log finds it.
            let (at, len) = match frame.and_then(|f| self.payload_len(f, position).map(|len| (f, len))) {
                Some(found) => found,
                None => {
                    let meta = self.log.locate(position).map_err(|e| self.read_error(position, e))?;
                    let missing =
                        || SharedLogError::Inconsistent(format!("position {position} is not in the log"));
                    let meta = meta.ok_or_else(|| self.gone(position, missing()))?;
                    (meta.frame, meta.payload_len)
                }
            };
            let entry = self
                .log
                .read(at, FRAME_OVERHEAD + len, |b| match read_frame(b) {
                    FrameRead::Intact(f) if f.position == position => Ok(LogEntry {
                        position,
                        time_ms: f.time_ms,
                        bytes: Bytes::copy_from_slice(f.payload),
                    }),
                    _ => Err(SharedLogError::Inconsistent(format!(
                        "the frame of position {position} is damaged"
                    ))),
                })
                .map_err(|e| self.read_error(position, e))??;
            out.push(entry);
            frame = Some(at.forward((FRAME_OVERHEAD + len) as u64));
        }
        Ok((out, frame.unwrap_or_default()))
    }

    /// The payload length of the frame at `frame`, if that is `position`'s.
    fn payload_len(&self, frame: Loc, position: u64) -> Option<usize> {
        let (len, at) =
            self.log.read(frame, FRAME_HEADER_LEN, |h| (u32_at(h, 0) as usize, u64_at(h, 5))).ok()?;
        (at == position).then_some(len)
    }

    /// A read failed: the segment was trimmed away meanwhile, or the disk
    /// failed.
    fn read_error(&self, needed: u64, e: LogError) -> SharedLogError {
        self.gone(needed, unavailable(&self.dir, e))
    }

    /// [`SharedLogError::Trimmed`] if a trim passed `needed` meanwhile,
    /// else `why`.
    fn gone(&self, needed: u64, why: SharedLogError) -> SharedLogError {
        SharedLogError::check_trimmed(self.first.load(Ordering::Acquire), needed).err().unwrap_or(why)
    }

    fn trim_below(&self, first_kept: u64) -> Result<u64, SharedLogError> {
        let tail = self.log.visible_position();
        if first_kept > tail + 1 {
            let why = format!("cannot trim below position {first_kept}: the last position is {tail}");
            return Err(SharedLogError::Refused(why));
        }
        let segments = self.log.segment_info().map_err(|e| unavailable(&self.dir, e))?;
        // A segment goes when the next one starts at or below the point:
        // every position in it is below. The newest one always stays.
        let Some(keep) = segments.iter().skip(1).rposition(|s| s.first_position <= first_kept) else {
            return Ok(0);
        };
        let (retired, kept) = (&segments[keep], &segments[keep + 1]);
        let old_first = self.first.load(Ordering::Acquire);
        self.write_first(kept.first_position)?;
        self.first.store(kept.first_position, Ordering::Release);
        self.log.retire_through(retired.id).map_err(|e| unavailable(&self.dir, e))?;
        Ok(kept.first_position - old_first)
    }

    /// Records `first` durably as the log's first position.
    fn write_first(&self, first: u64) -> Result<(), SharedLogError> {
        let (path, tmp) = (self.dir.join(FIRST_FILE), self.dir.join(format!("{FIRST_FILE}.tmp")));
        let io = |e| unavailable(&path, e);
        if self.fs.exists(&tmp) {
            self.fs.remove_file(&tmp).map_err(io)?;
        }
        let file = self.fs.create(&tmp).map_err(io)?;
        file.write_at(&first.to_le_bytes(), 0).map_err(io)?;
        file.sync_data().map_err(io)?;
        self.fs.rename(&tmp, &path).map_err(io)?;
        self.fs.sync_dir(&self.dir).map_err(io)
    }
}

impl SharedLog for FileEntryLog {
    type Follower = FileFollower;
    type Reports = BoardReports;

    async fn append(&self, entries: &[Bytes]) -> Result<Vec<u64>, SharedLogError> {
        let entries = entries.to_vec();
        self.blocking(move |inner| inner.append(&entries)).await
    }

    fn follow(&self, from: u64, _watched: &Watched) -> FileFollower {
        FileFollower { log: self.clone(), next: from.max(1), cursor: None }
    }

    async fn first_position(&self) -> Result<u64, SharedLogError> {
        Ok(self.inner.first.load(Ordering::Acquire))
    }

    async fn tail(&self) -> Result<u64, SharedLogError> {
        Ok(self.inner.log.visible_position())
    }

    async fn trim_below(&self, first_kept: u64) -> Result<u64, SharedLogError> {
        self.blocking(move |inner| inner.trim_below(first_kept)).await
    }

    fn identity(&self) -> String {
        format!("file:{}", self.inner.dir.display())
    }

    async fn publish_digest(&self, report: &DigestReport) -> Result<(), SharedLogError> {
        self.inner.digests.publish(report);
        Ok(())
    }

    async fn digest_reports(&self) -> Result<BoardReports, SharedLogError> {
        Ok(self.inner.digests.reports())
    }
}

/// Follows a [`FileEntryLog`].
#[derive(Debug)]
pub struct FileFollower {
    log: FileEntryLog,
    next: u64,
    /// Where `next`'s frame is, once a read got that far.
    cursor: Option<Loc>,
}

impl Follower for FileFollower {
    async fn next(&mut self, max: usize) -> Result<Batch, SharedLogError> {
        loop {
            // Registered before looking, so an append in between wakes it.
            let mut appended = std::pin::pin!(self.log.inner.appended.notified());
            appended.as_mut().enable();
            let (from, cursor) = (self.next, self.cursor);
            let (entries, cursor) = self.log.blocking(move |inner| inner.read(from, max, cursor)).await?;
            if let Some(last) = entries.last() {
                self.next = last.position + 1;
                self.cursor = Some(cursor);
                return Ok(Batch { through: last.position, entries });
            }
            appended.await;
        }
    }
}
