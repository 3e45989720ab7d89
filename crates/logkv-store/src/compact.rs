//! Compaction on disk: every sealed segment, with the previous compacted
//! file, is rewritten into one new compacted file holding what retention
//! keeps, while reads and writes go on.
//!
//! 1. The log is synced and cut ([`logkv_log::FileLog::roll`]): the
//!    segments before the cut are the input; writes go on in the new one.
//! 2. For every key of an index snapshot, its chain is walked newest
//!    first; versions after the cut are passed over, versions inside it
//!    kept or dropped by [`Keep`], and the kept ones written oldest first,
//!    each pointing at the one before it. Values are copied out of the
//!    signed entries: a compacted file holds the node's own records only.
//! 3. The file is synced and renamed into place, the directory synced: from
//!    then on it replaces the input (a crash after this point is finished
//!    by the next open, one before it leaves only a temporary file).
//! 4. The input files are removed, the index repointed, a checkpoint taken.
//!
//! Locations into removed files (in records written before the install,
//! or in a checkpoint) stay valid: a read that meets one looks the key up
//! in the compacted file, where its versions sit together, newest last.
//! So nothing that points into the log ever has to be rewritten.

use std::time::{Duration, Instant};

use logkv_log::{Loc, RecordType};

use crate::applied::{parse_applied, STATE_LEN};
use crate::chain::ChainWalk;
use crate::coalesce::{is_pending, FIRST_PENDING_ID};
use crate::error::{Result, StoreError};
use crate::head::{self, Head, HeadWriter, RangeEnd, FIRST_HEAD_ID};
use crate::keyspaces::DELETED;
use crate::maintenance::{now_ms, Maintenance};
use crate::record::{OpHeader, OpKind};
use crate::retention::Keep;
use crate::rows::Row;
use crate::store::{Step, Store, LOOP};

/// What a compaction did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactionReport {
    /// The last log position the new compacted file replaces.
    pub compacted_through: u64,
    /// Bytes of the files it replaced (segments at capacity).
    pub input_bytes: u64,
    /// Bytes of the new compacted file.
    pub output_bytes: u64,
    /// Keys written.
    pub keys: u64,
    /// Versions written.
    pub versions_kept: u64,
    /// Keys whose older versions were dropped (their oldest kept version
    /// answers older reads with `Compacted`). Counted, not walked: the
    /// dropped versions are never read.
    pub histories_cut: u64,
    /// Deleted keys dropped whole.
    pub keys_dropped: u64,
    /// Reads as of a version below this are now "compacted" for every key.
    pub horizon: u64,
    /// How long it took.
    pub elapsed: Duration,
}

/// One kept version of a key, newest first while collected.
struct Kept {
    version: u64,
    value: Option<Vec<u8>>,
}

impl Store {
    /// Compacts the log now (see the module doc); `progress(keys done,
    /// keys)` as it goes.
    pub fn compact(&self, progress: &mut dyn FnMut(u64, u64)) -> Result<CompactionReport> {
        let mut job = self.maintenance.lock();
        self.compact_locked(&mut job, progress)
    }

    pub(crate) fn compact_locked(
        &self,
        job: &mut Maintenance,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<CompactionReport> {
        let started = Instant::now();
        self.sync()?;
        let cut = self.log.roll()?;
        // What was appended before the cut is the input: it must all be in
        // its files, and durable, before they are replaced.
        self.log.sync()?;
        let last_position = cut.first_position - 1;
        let last_version = cut.version_before;
        let old_head = self.head.read().clone();
        let inputs: Vec<_> = self.log.segment_info()?.into_iter().filter(|s| s.id < cut.segment).collect();
        let input_bytes = inputs.iter().map(|s| s.capacity).sum::<u64>()
            + old_head.as_ref().map_or(0, |h| h.info().table_end);
        let window_start = match self.retention.duration {
            Some(d) => Some(self.window_start(&inputs, old_head.as_deref(), d)?),
            None => None,
        };
        let keep = Keep::new(&self.retention, window_start, last_position);
        let id = old_head.as_ref().map_or(FIRST_HEAD_ID, |h| h.info().id + 1);
        if is_pending(id) {
            let got = u64::from(id - FIRST_HEAD_ID);
            let limit = u64::from(FIRST_PENDING_ID - FIRST_HEAD_ID);
            return Err(StoreError::LimitExceeded { what: "compactions of one data directory", limit, got });
        }
        let rate = job.options.compact_bytes_per_sec;
        let mut limiter = rate_limiter(rate);
        let path = self.dir.join(head::file_name(id));
        let mut writer = HeadWriter::create(self.fs.as_ref(), &path, id, now_ms(), &mut limiter)?;
        let mut report =
            CompactionReport { compacted_through: last_position, input_bytes, ..Default::default() };
        let written = self
            .write_kept(&mut writer, keep, last_version, &mut report, progress)
            .and_then(|()| self.write_rows(&mut writer, keep, old_head.as_deref(), last_position));
        let (last_time_ms, state) = match written {
            Ok(end) => end,
            Err(e) => {
                writer.abandon();
                return Err(e);
            }
        };
        // A read as of a version before a dropped delete could have found the
        // deleted value; from the delete on, the key is absent either way.
        report.horizon = report.horizon.max(old_head.as_ref().map_or(0, |h| h.info().horizon));
        let end = RangeEnd { last_position, last_version, horizon: report.horizon, last_time_ms, state };
        let head = writer.finish(end)?;
        report.output_bytes = head.info().table_end;
        self.install(head, cut.segment, old_head.as_deref())?;
        self.checkpoint_locked(job)?;
        report.elapsed = started.elapsed();
        Ok(report)
    }

    /// The oldest version that may have been written within `duration`:
    /// every record of the segment after the last one that started before
    /// the window is newer than that segment's first record (append times
    /// never decrease), so versions above its tag are kept.
    fn window_start(
        &self,
        inputs: &[logkv_log::SegmentInfo],
        head: Option<&Head>,
        d: Duration,
    ) -> Result<u64> {
        let cutoff = now_ms().saturating_sub(d.as_millis() as u64);
        let started_before =
            inputs.iter().take_while(|s| s.first_record.as_ref().is_some_and(|f| f.time_ms < cutoff)).last();
        let Some((segment, first)) = started_before.and_then(|s| Some((s, s.first_record.as_ref()?))) else {
            // Every input record is inside the window; the compacted file's
            // are too unless it was written before the window began.
            return Ok(head
                .filter(|h| h.info().created_ms < cutoff)
                .map_or(0, |h| h.info().last_version + 1));
        };
        let tag = match first.rtype {
            Some(RecordType::Batch) => segment.first_position,
            _ => self
                .read_at(first.payload, 8, |b| u64::from_le_bytes(b.try_into().expect("8 bytes")))?
                .unwrap_or(0),
        };
        Ok(tag + 1)
    }

    /// Walks every key of an index snapshot and writes what `keep` keeps
    /// of its versions up to `last_version`.
    fn write_kept(
        &self,
        writer: &mut HeadWriter<'_>,
        keep: Keep,
        last_version: u64,
        report: &mut CompactionReport,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<()> {
        let snapshot = self.index.read().snapshot();
        let total: u64 = snapshot.spaces.iter().map(|(_, s)| s.len() as u64).sum();
        progress(0, total);
        let mut done = 0u64;
        for (keyspace, index) in &snapshot.spaces {
            for (key, meta) in index.iter() {
                let (kept, truncated) =
                    self.kept_versions(*keyspace, key, meta, keep, last_version, report)?;
                let mut prev = None;
                for (i, k) in kept.iter().rev().enumerate() {
                    let loc = writer.push(
                        *keyspace,
                        key,
                        k.version,
                        k.value.as_deref(),
                        prev,
                        i == 0 && truncated,
                    )?;
                    prev = Some(loc);
                }
                report.keys += u64::from(!kept.is_empty());
                report.versions_kept += kept.len() as u64;
                done += 1;
                if done.is_multiple_of(65_536) {
                    progress(done, total);
                }
            }
        }
        progress(total, total);
        Ok(())
    }

    /// Writes the rows retention keeps of the applied records up to
    /// `last_position` (the previous compacted file's, then the segments'),
    /// always the newest one; returns the range's last log time and the
    /// state of its newest applied record.
    fn write_rows(
        &self,
        writer: &mut HeadWriter<'_>,
        keep: Keep,
        old: Option<&Head>,
        last_position: u64,
    ) -> Result<(u64, Option<[u8; STATE_LEN]>)> {
        let old_last = old.map_or(0, |h| h.info().last_position);
        let last_time_ms = match (last_position > old_last, old) {
            (true, _) => self.time_of_position(last_position)?.ok_or_else(|| {
                StoreError::Invalid(format!("record {last_position} is not in the log it was cut from"))
            })?,
            (false, Some(old)) => old.info().last_time_ms,
            (false, None) => 0,
        };
        let mut newest: Option<Row> = None;
        if keep.keeps_rows() {
            // Each row is written once a newer one shows it is not the last.
            let mut push = |row: Row, writer: &mut HeadWriter<'_>| -> Result<()> {
                match newest.replace(row) {
                    Some(older) if keep.keeps_row(older.version) => writer.push_row(&older),
                    _ => Ok(()),
                }
            };
            if let Some(old) = old {
                old.for_each_row(&mut |row| push(row, writer))?;
            }
            let mut reached = old_last;
            self.scan_records(&mut |r| {
                if r.position <= old_last {
                    return Ok(true);
                }
                if r.position > last_position {
                    return Ok(false);
                }
                reached = r.position;
                if r.rtype == Some(RecordType::Applied) {
                    push(applied_row(r.position, r.time_ms, r.payload)?, writer)?;
                }
                Ok(true)
            })?;
            if reached != last_position {
                let why = format!("the log's segments end at record {reached}, before {last_position}");
                return Err(StoreError::Invalid(why));
            }
        } else {
            newest = self.row_at(last_position)?;
        }
        if let Some(row) = &newest {
            writer.push_row(row)?;
        }
        Ok((last_time_ms, newest.map(|r| r.state)))
    }

    /// The versions of one key that stay, newest first, and whether older
    /// ones were dropped.
    fn kept_versions(
        &self,
        keyspace: u32,
        key: &[u8],
        meta: u64,
        keep: Keep,
        last_version: u64,
        report: &mut CompactionReport,
    ) -> Result<(Vec<Kept>, bool)> {
        let mut kept = Vec::new();
        let floor = self.floors.read().of(keyspace, key);
        // Versions of the compacted range met so far, and newer ones. Only
        // the former count for retention: a newer version may not be
        // durable yet, so the range's newest must stay whatever follows it.
        let (mut nth, mut newer) = (0u64, 0u64);
        let mut base_taken = false;
        let mut previous_version = None;
        let mut next = Some(Loc::from_u64(meta));
        let mut walk = ChainWalk::default();
        while let Some(loc) = next {
            let (here, h) = match self.version_record(keyspace, key, loc)? {
                Step::At(here, h) => (here, h),
                // Older versions were dropped by an earlier compaction.
                Step::Dropped => return Ok((kept, true)),
                // A pending batch written out meanwhile: its versions are
                // newer than the compacted range, so walk on from the key's
                // index entry now, with nothing kept yet.
                Step::Moved if kept.is_empty() => {
                    next = self.index.read().get(keyspace, key).map(Loc::from_u64);
                    (nth, newer, previous_version, walk) = (0, 0, None, ChainWalk::default());
                    continue;
                }
                Step::Moved => return Err(StoreError::Invalid("a compacted version moved".into())),
            };
            if !walk.step(here, h.version) {
                return Err(self.corrupt(here, LOOP));
            }
            next = h.prev;
            // A record that wrote the key twice: the newer op is the version.
            if previous_version == Some(h.version) {
                continue;
            }
            previous_version = Some(h.version);
            if h.version > last_version {
                newer += 1;
                continue;
            }
            nth += 1;
            // A newest version below the floor of its keyspace or of a
            // prefix of the key was removed at the floor, as if deleted there.
            let deleted_at = match floor {
                Some(f) if h.version < f => Some(f),
                _ => (h.kind == OpKind::Delete).then_some(h.version),
            };
            if let Some(at) =
                deleted_at.filter(|at| nth == 1 && newer == 0 && keep.drops_deleted(keyspace, *at))
            {
                report.keys_dropped += 1;
                report.horizon = report.horizon.max(at);
                return Ok((Vec::new(), false));
            }
            if !keep.keeps(nth, h.version, base_taken) {
                report.histories_cut += u64::from(!kept.is_empty());
                return Ok((kept, true));
            }
            base_taken |= h.version < keep.window_start;
            kept.push(Kept { version: h.version, value: self.value_of(keyspace, key, here, &h)? });
            if h.prev.is_none() {
                return Ok((kept, h.truncated));
            }
        }
        Ok((kept, false))
    }

    /// The value a version record wrote (`None` for a delete).
    pub(crate) fn value_of(
        &self,
        keyspace: u32,
        key: &[u8],
        loc: Loc,
        h: &OpHeader,
    ) -> Result<Option<Vec<u8>>> {
        if h.kind == OpKind::Delete {
            return Ok(None);
        }
        let value = self.op_value(loc, h, key)?.ok_or_else(|| {
            StoreError::Invalid(format!("a value of keyspace {keyspace} moved while it was copied"))
        })?;
        Ok(Some(value))
    }

    /// Makes `head` the log's compacted file: the segments before
    /// `first_kept` and the previous compacted file are removed, and the
    /// index stops pointing into them.
    fn install(&self, head: Head, first_kept: u32, old: Option<&Head>) -> Result<()> {
        *self.head.write() = Some(std::sync::Arc::new(head));
        self.log.retire_through(first_kept - 1)?;
        if let Some(old) = old {
            let io = |e| StoreError::from(logkv_log::LogError::io(old.path(), e));
            self.fs.remove_file(old.path()).map_err(io)?;
            self.fs.sync_dir(&self.dir).map_err(io)?;
        }
        self.repoint_to_head()?;
        self.index.write().superseded_bytes = 0;
        Ok(())
    }

    /// Points every key whose index entry is in a removed file at its
    /// newest version in the compacted file, and forgets keys the compacted
    /// file dropped. Keys written meanwhile point elsewhere and are left
    /// alone (the updates are conditional).
    pub(crate) fn repoint_to_head(&self) -> Result<()> {
        let Some(head) = self.head.read().clone() else { return Ok(()) };
        let mut batch: Vec<(u32, Vec<u8>, u64)> = Vec::with_capacity(REPOINT_BATCH);
        let mut pending: Option<(u32, Vec<u8>, u64)> = None;
        let apply = |batch: &mut Vec<(u32, Vec<u8>, u64)>| {
            let mut index = self.index.write();
            for (ks, key, meta) in batch.drain(..) {
                if let Some(old) = index.get(ks, &key).filter(|&m| self.is_stale(m)) {
                    index.replace_if(ks, &key, old, meta);
                }
            }
        };
        head.for_each(
            &mut |op| {
                let meta = op.loc.to_u64() | if op.header.kind == OpKind::Delete { DELETED } else { 0 };
                if let Some(p) = pending.take().filter(|p| (p.0, &p.1[..]) != (op.header.keyspace, op.key)) {
                    batch.push(p);
                    if batch.len() == REPOINT_BATCH {
                        apply(&mut batch);
                    }
                }
                pending = Some((op.header.keyspace, op.key.to_vec(), meta));
                Ok(())
            },
            &mut |_, _| {},
        )?;
        batch.extend(pending);
        apply(&mut batch);
        // The walk repointed every key the file holds, so what is still
        // stale was dropped whole: forgotten without looking it up (a block
        // read per dropped key made compacting a swept cache slow).
        let forget = |batch: &mut Vec<(u32, Vec<u8>, u64)>| {
            let mut index = self.index.write();
            for (ks, key, meta) in batch.drain(..) {
                index.remove_if(ks, &key, meta);
            }
        };
        let snapshot = self.index.read().snapshot();
        for (ks, index) in &snapshot.spaces {
            for (key, meta) in index.iter().filter(|&(_, m)| self.is_stale(m)) {
                batch.push((*ks, key.to_vec(), meta));
                if batch.len() == REPOINT_BATCH {
                    forget(&mut batch);
                }
            }
        }
        forget(&mut batch);
        Ok(())
    }

    /// Whether an index entry points into a file that is gone.
    fn is_stale(&self, meta: u64) -> bool {
        let segment = Loc::from_u64(meta).segment();
        if is_pending(segment) {
            // A write of the open window: newer than anything compacted.
            false
        } else if segment >= FIRST_HEAD_ID {
            self.head.read().as_ref().is_none_or(|h| h.info().id != segment)
        } else {
            self.log.is_retired(segment)
        }
    }
}

/// The row of the applied record at `position` with `payload`.
pub(crate) fn applied_row(position: u64, time_ms: u64, payload: &[u8]) -> Result<Row> {
    let parsed = parse_applied(payload).map_err(|detail| StoreError::BadRecord { position, detail })?;
    let annex = parsed.annex.to_vec();
    Ok(Row { position, version: parsed.version, time_ms, state: parsed.state, annex })
}

/// Index updates made under one write lock while repointing.
const REPOINT_BATCH: usize = 4096;

/// A limiter that sleeps so that, on average, at most `bytes_per_sec`
/// pass (0: no limit).
fn rate_limiter(bytes_per_sec: u64) -> impl FnMut(u64) {
    let started = Instant::now();
    let mut total = 0u64;
    move |bytes| {
        if bytes_per_sec == 0 {
            return;
        }
        total += bytes;
        let due = Duration::from_secs_f64(total as f64 / bytes_per_sec as f64);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;
    use std::time::Duration;

    use logkv_fs::SimFs;
    use logkv_log::{Durability, LogConfig};

    use crate::{Retention, Store, StoreOptions};

    /// `periodic` with a window that never ends on its own, keeping one
    /// version: writes coalesce until something writes the batch out.
    fn coalescing(fs: &SimFs) -> Store {
        let durability =
            Durability::Periodic { flush_interval: Duration::from_secs(3600), flush_size_bytes: 1 << 30 };
        let options = StoreOptions {
            fs: Arc::new(fs.clone()),
            log: LogConfig { segment_size_bytes: 4096, durability, ..LogConfig::default() },
            retention: Retention { versions: Some(1), duration: None, tombstone_horizon: None },
            ..StoreOptions::default()
        };
        Store::open(Path::new("/db"), options).unwrap()
    }

    /// Writes still in the open window when a compaction repoints the
    /// index are newer than anything compacted: they stay where they are.
    #[test]
    fn repointing_leaves_pending_writes_alone() {
        let fs = SimFs::new();
        let store = coalescing(&fs);
        store.put(b"a", b"1").unwrap();
        store.put(b"b", b"1").unwrap();
        store.compact(&mut |_, _| {}).unwrap();
        store.put(b"a", b"2").unwrap();
        store.put(b"c", b"new").unwrap();
        store.repoint_to_head().unwrap();
        assert_eq!(store.get(b"a").unwrap().unwrap().data, b"2");
        assert_eq!(store.get(b"c").unwrap().unwrap().data, b"new");
        store.checkpoint().unwrap();
        store.close().unwrap();
        let store = coalescing(&fs);
        assert_eq!(store.get(b"a").unwrap().unwrap().data, b"2");
        assert_eq!(store.get(b"c").unwrap().unwrap().data, b"new");
    }

    /// A version written after the compaction's cut may not be durable
    /// yet, so the newest version inside the cut stays whatever retention
    /// says: a crash right after the install loses at most the newer one.
    #[test]
    fn the_newest_version_inside_the_cut_stays_when_a_newer_one_follows() {
        let fs = SimFs::new();
        let store = coalescing(&fs);
        store.put(b"k", b"durable").unwrap();
        store.sync().unwrap();
        let cut = store.log.roll().unwrap();
        store.log.sync().unwrap();
        store.put(b"k", b"pending").unwrap();
        let meta = store.index.read().get(crate::DEFAULT_KEYSPACE, b"k").unwrap();
        let keep = crate::retention::Keep::new(&store.retention, None, cut.first_position - 1);
        let mut report = super::CompactionReport::default();
        let (kept, _) = store
            .kept_versions(crate::DEFAULT_KEYSPACE, b"k", meta, keep, cut.version_before, &mut report)
            .unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].value.as_deref(), Some(&b"durable"[..]));
    }
}
