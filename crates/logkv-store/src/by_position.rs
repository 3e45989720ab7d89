//! Reading the log by position and by log time: an applied record's
//! state, annex and entry, and the mapping between positions and log
//! times. The segments answer through the log's sparse marks
//! ([`logkv_log::FileLog::locate`]); positions a compacted file replaced
//! are answered from the rows it kept of them.

use logkv_log::RecordType;

use crate::applied::{parse_applied, STATE_LEN};
use crate::compact::applied_row;
use crate::error::{Result, StoreError};
use crate::rows::Row;
use crate::store::Store;

/// An applied record, as [`Store::applied_at`] reads it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedRecord {
    /// Its position.
    pub position: u64,
    /// Its version tag.
    pub version: u64,
    /// Its log time (Unix milliseconds).
    pub time_ms: u64,
    /// The node's state after it.
    pub state: [u8; STATE_LEN],
    /// The node's annex.
    pub annex: Vec<u8>,
    /// The signed entry; `None` where compaction replaced the record and
    /// kept only its row.
    pub entry: Option<Vec<u8>>,
}

impl Store {
    /// The applied record at `position`: `Ok(None)` past the newest
    /// acknowledged position (or at 0); `Compacted` (whose fields are
    /// positions here: the one asked for and the oldest still readable)
    /// where compaction replaced the record and retention kept no row of
    /// it; `Invalid` if the record there is a batch of the plain API.
    pub fn applied_at(&self, position: u64) -> Result<Option<AppliedRecord>> {
        if position == 0 || position > self.visible_position() {
            return Ok(None);
        }
        let read = self.in_segments(
            position,
            self.log.read_record(position, |r| {
                let bad = |detail| StoreError::BadRecord { position, detail };
                if r.rtype != RecordType::Applied {
                    let why = format!("the record at position {position} is a batch, not an applied entry");
                    return Err(StoreError::Invalid(why));
                }
                let parsed = parse_applied(r.payload).map_err(bad)?;
                Ok(AppliedRecord {
                    position,
                    version: parsed.version,
                    time_ms: r.time_ms,
                    state: parsed.state,
                    annex: parsed.annex.to_vec(),
                    entry: Some(parsed.entry.to_vec()),
                })
            }),
        )?;
        if let Some(record) = read {
            return Ok(Some(record?));
        }
        match self.head_row(position)? {
            Some(row) => Ok(Some(AppliedRecord {
                position,
                version: row.version,
                time_ms: row.time_ms,
                state: row.state,
                annex: row.annex,
                entry: None,
            })),
            None => Err(self.replaced(position)),
        }
    }

    /// The state and version tag of the newest applied record sequenced
    /// (the log's, a checkpoint's or the compacted file's); `None` if the
    /// store holds no applied record.
    pub fn newest_state(&self) -> Option<([u8; STATE_LEN], u64)> {
        self.index.read().newest_state
    }

    /// The log time of the acknowledged record at `position`; `None` past
    /// the newest (or at 0), `Compacted` as for [`Store::applied_at`].
    pub fn time_of_position(&self, position: u64) -> Result<Option<u64>> {
        if position == 0 || position > self.visible_position() {
            return Ok(None);
        }
        if let Some(meta) = self.in_segments(position, self.log.locate(position))? {
            return Ok(Some(meta.time_ms));
        }
        let head = self.head.read().clone();
        match head.filter(|h| h.info().last_position == position) {
            Some(h) => Ok(Some(h.info().last_time_ms)),
            None => self.head_row(position)?.map(|r| Some(r.time_ms)).ok_or_else(|| self.replaced(position)),
        }
    }

    /// The newest acknowledged position whose log time is at most
    /// `time_ms`; `None` if every record still held is later. Inside the
    /// compacted part only its last position is answered (the rows kept
    /// there need not be consecutive, so a time between them has no exact
    /// answer).
    pub fn position_at_time(&self, time_ms: u64) -> Result<Option<u64>> {
        if let Some(p) = self.log.position_at_time(time_ms)? {
            return Ok(Some(p));
        }
        let head = self.head.read().clone();
        Ok(head.filter(|h| h.info().last_time_ms <= time_ms).map(|h| h.info().last_position))
    }

    /// The row of the applied record at `position`: from the segments, or
    /// the one the compacted file kept; `None` for a batch, or a replaced
    /// record without a row.
    pub(crate) fn row_at(&self, position: u64) -> Result<Option<Row>> {
        let read = self.in_segments(
            position,
            self.log.read_record(position, |r| match r.rtype {
                RecordType::Applied => applied_row(r.position, r.time_ms, r.payload).map(Some),
                _ => Ok(None),
            }),
        )?;
        match read {
            Some(row) => row,
            None => self.head_row(position),
        }
    }

    /// What a lookup in the segments found; `None` also when it failed
    /// because compaction retired the segment meanwhile (the compacted
    /// file, installed first, answers then).
    fn in_segments<R>(&self, position: u64, read: logkv_log::Result<Option<R>>) -> Result<Option<R>> {
        match read {
            Ok(found) => Ok(found),
            Err(_) if self.compacted().is_some_and(|h| position <= h.last_position) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The row the compacted file kept of the record at `position`.
    fn head_row(&self, position: u64) -> Result<Option<Row>> {
        let head = self.head.read().clone();
        match head.filter(|h| position <= h.info().last_position) {
            Some(h) => h.row(position),
            None => Ok(None),
        }
    }

    /// The error for a position no segment holds any more.
    fn replaced(&self, position: u64) -> StoreError {
        let oldest = self.compacted().map_or(1, |h| h.last_position + 1);
        StoreError::Compacted { version: position, oldest }
    }
}
