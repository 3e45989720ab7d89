//! Background upkeep: checkpoints every `checkpoint_interval_bytes` of log,
//! compaction when the share of superseded bytes passes
//! `compact_dead_ratio`. [`Store::maintain`] runs whichever is due; the
//! caller decides which thread calls it and how often (the server runs it
//! on a thread of its own). One job runs at a time.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::checkpoint;
use crate::compact::CompactionReport;
use crate::error::Result;
use crate::head::HeadInfo;
use crate::keyspaces::KeyspacesSnapshot;
use crate::store::Store;

/// When checkpoints and compactions run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MaintenanceOptions {
    /// Log bytes between automatic checkpoints (0: only on demand).
    pub checkpoint_interval_bytes: u64,
    /// Share of superseded bytes in the log that triggers compaction.
    pub compact_dead_ratio: f64,
    /// Logs smaller than this are not compacted automatically.
    pub compact_min_bytes: u64,
    /// Most bytes per second compaction writes (0: no limit), so that it
    /// leaves the disk, and the CPU its reads take, to foreground writes.
    pub compact_bytes_per_sec: u64,
}

impl Default for MaintenanceOptions {
    fn default() -> Self {
        Self {
            checkpoint_interval_bytes: 256 << 20,
            compact_dead_ratio: 0.5,
            compact_min_bytes: 128 << 20,
            compact_bytes_per_sec: 64 << 20,
        }
    }
}

/// What maintenance remembers between jobs.
#[derive(Debug)]
pub(crate) struct Maintenance {
    pub(crate) options: MaintenanceOptions,
    /// Log bytes written when the last checkpoint was taken, less those
    /// replayed at open (which no checkpoint covers yet).
    written_at_checkpoint: i128,
}

impl Maintenance {
    pub(crate) fn new(options: MaintenanceOptions, replayed_bytes: u64) -> Self {
        Self { options, written_at_checkpoint: -i128::from(replayed_bytes) }
    }
}

/// A checkpoint written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointReport {
    /// Its file.
    pub path: PathBuf,
    /// The last log position it includes.
    pub position: u64,
    /// That position's version tag.
    pub version: u64,
    /// Keys in it (deleted ones whose history is kept included).
    pub keys: u64,
    /// Its size.
    pub bytes: u64,
    /// How long it took.
    pub elapsed: Duration,
}

/// What [`Store::maintain`] did.
#[derive(Debug, Clone)]
pub enum MaintenanceDone {
    /// A checkpoint was written.
    Checkpoint(CheckpointReport),
    /// The log was compacted (and a checkpoint written after it).
    Compaction(CompactionReport),
}

impl Store {
    /// Writes a checkpoint of the index as of the newest record now, in
    /// the background of writers (they are never blocked: the index is
    /// copied on write), after syncing the log through that record.
    pub fn checkpoint(&self) -> Result<CheckpointReport> {
        let mut job = self.maintenance.lock();
        self.checkpoint_locked(&mut job)
    }

    pub(crate) fn checkpoint_locked(&self, job: &mut Maintenance) -> Result<CheckpointReport> {
        let started = Instant::now();
        let written = self.log.stats().snapshot().bytes_written;
        let snapshot = self.snapshot()?;
        // Everything the snapshot holds must be durable before a checkpoint
        // may stand in for it.
        self.log.sync()?;
        let head_id = self.head.read().as_ref().map_or(0, |h| h.info().id);
        let time_ms = self.time_of_position(snapshot.through.position)?.unwrap_or(0);
        let segments = self.log.sealed_extents(snapshot.through.position);
        let (path, bytes) =
            checkpoint::write(self.fs.as_ref(), &self.dir, &snapshot, head_id, now_ms(), time_ms, &segments)?;
        for (position, old) in
            checkpoint::list(self.fs.as_ref(), &self.dir)?.into_iter().skip(checkpoint::KEEP)
        {
            if position < snapshot.through.position {
                let _ = self.fs.remove_file(&old);
            }
        }
        let report = CheckpointReport {
            path,
            position: snapshot.through.position,
            version: snapshot.through.version,
            keys: snapshot.spaces.iter().map(|(_, s)| s.len() as u64).sum(),
            bytes,
            elapsed: started.elapsed(),
        };
        // Bytes written meanwhile belong to the next interval, except what
        // the snapshot already held: close enough for a trigger.
        job.written_at_checkpoint = written.into();
        *self.last_checkpoint.lock() = Some(report.clone());
        Ok(report)
    }

    /// A snapshot of the index holding logged records only (the pending
    /// batch is written out first and kept empty while it is taken).
    pub(crate) fn snapshot(&self) -> Result<KeyspacesSnapshot> {
        match &self.coalescer {
            Some(c) => c.sealed(|| self.index.read().snapshot()),
            None => Ok(self.index.read().snapshot()),
        }
    }

    /// Runs a checkpoint or a compaction if one is due; `None` if neither.
    pub fn maintain(&self) -> Result<Option<MaintenanceDone>> {
        self.maintain_with_progress(&mut |_, _| {})
    }

    /// [`Store::maintain`], reporting a compaction's progress as
    /// `(keys done, keys)`.
    pub fn maintain_with_progress(
        &self,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Option<MaintenanceDone>> {
        let mut job = self.maintenance.lock();
        let options = job.options;
        if self.retention.drops_history() {
            let (dead, total) = self.dead_bytes();
            if total >= options.compact_min_bytes && dead as f64 >= options.compact_dead_ratio * total as f64
            {
                return Ok(Some(MaintenanceDone::Compaction(self.compact_locked(&mut job, progress)?)));
            }
        }
        let written = i128::from(self.log.stats().snapshot().bytes_written);
        if options.checkpoint_interval_bytes > 0
            && written - job.written_at_checkpoint >= i128::from(options.checkpoint_interval_bytes)
        {
            return Ok(Some(MaintenanceDone::Checkpoint(self.checkpoint_locked(&mut job)?)));
        }
        Ok(None)
    }

    /// Bytes superseded since the last compaction, and the bytes of the
    /// log (the compacted file and every segment, counted at capacity).
    pub fn dead_bytes(&self) -> (u64, u64) {
        let head = self.head.read().as_ref().map_or(0, |h| h.info().table_end);
        let segments: u64 = self.log.segments().iter().map(|(_, capacity)| capacity).sum();
        (self.index.read().superseded_bytes, head + segments)
    }

    /// The compacted file, if the log has one.
    pub fn compacted(&self) -> Option<HeadInfo> {
        self.head.read().as_ref().map(|h| *h.info())
    }

    /// The newest checkpoint: written by this process, or loaded at open.
    pub fn last_checkpoint(&self) -> Option<CheckpointReport> {
        self.last_checkpoint.lock().clone()
    }
}

/// The wall clock in Unix milliseconds.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
