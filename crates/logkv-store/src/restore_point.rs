//! Restore points inside the compacted part of the log: which record a
//! version or a time names there, whether retention kept the state as of
//! it, and that state written as a new directory's compacted file.
//!
//! A restore cuts the log after one record. Inside the compacted part the
//! records are gone; what a cut needs of one (its position, version tag,
//! log time and, for a node, the state after it) is in the row the
//! compacted file kept of it ([`crate::rows`]). Retention keeps rows in one
//! unbroken run that ends with the compacted part's last record, as far
//! back as it keeps history (all of them when it keeps everything); before
//! the run a record may have left no row, so a point there cannot be told
//! from its neighbours. A plain store's versions are its positions: any
//! version names its record, but its batches leave no rows, so their log
//! times are gone.
//!
//! The state as of a record is every key's newest version at or below its
//! tag. A key whose older versions were dropped (its oldest kept version
//! marked so) has no known state before that version, and below the
//! horizon no key has: those bound the oldest restorable record from below.
//! The copy keeps every version and row up to the record, so the restored
//! directory has the same history before it too.

use std::path::Path;

use logkv_log::Loc;

use crate::applied::STATE_LEN;
use crate::backup::RestoreReport;
use crate::error::{Result, StoreError};
use crate::head::{self, Head, HeadWriter, RangeEnd, FIRST_HEAD_ID};
use crate::maintenance::now_ms;
use crate::rows::Row;
use crate::store::Store;

/// The record a restore inside the compacted part ends at.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cut {
    position: u64,
    /// Its version tag.
    pub(crate) version: u64,
    time_ms: u64,
    state: Option<[u8; STATE_LEN]>,
}

/// What a version or a time names inside the compacted part.
#[derive(Debug)]
pub(crate) enum Point {
    /// This record, whose state retention kept.
    At(Cut),
    /// No record was appended at or before it.
    Nothing,
    /// Retention dropped what the state as of it needs; the oldest record
    /// it kept the state of has this version tag (and log time, if kept).
    NotKept { oldest_version: u64, oldest_time_ms: Option<u64> },
}

impl Point {
    /// The record, if retention kept its state (`None`: nothing was
    /// appended by then); refused naming `asked` (a version or a time, as
    /// given) and the oldest point it can reach otherwise.
    pub(crate) fn cut(self, asked: &str) -> Result<Option<Cut>> {
        match self {
            Point::At(cut) => Ok(Some(cut)),
            Point::Nothing => Ok(None),
            Point::NotKept { oldest_version, oldest_time_ms } => {
                let since =
                    oldest_time_ms.map_or(String::new(), |t| format!(", appended at Unix time {t} ms"));
                Err(StoreError::NotRetained(format!(
                    "the state as of {asked} is gone: compaction kept the log's history from version \
                     {oldest_version}{since} on (retention dropped older versions or records); the \
                     oldest point a restore can reach is version {oldest_version}"
                )))
            }
        }
    }
}

/// What the rows say of the newest record at or before a point.
struct RowScan {
    /// The newest row at or before it.
    found: Option<Row>,
    /// The position of the first row of the run ending with the file's
    /// last row (1 when rows start at the log's first record).
    run_start: u64,
    /// The first row of that run whose version is at least the floor asked for.
    first_from: Option<Row>,
}

impl Store {
    /// The record of the compacted part (`head`, whose last version is
    /// above the point) a point names: the newest whose row `at_or_before`
    /// accepts (tags and log times never decrease, so matches come first);
    /// `by_version` is the version for a plain store, which keeps no rows.
    pub(crate) fn compacted_point(
        &self,
        head: &Head,
        at_or_before: &dyn Fn(&Row) -> bool,
        by_version: Option<u64>,
    ) -> Result<Point> {
        let info = head.info();
        let floor = state_floor(head)?;
        if info.last_version == info.last_position {
            // A plain store: versions are positions, times are gone.
            return Ok(match by_version {
                Some(0) => Point::Nothing,
                Some(v) if v >= floor => Point::At(Cut { position: v, version: v, time_ms: 0, state: None }),
                _ => Point::NotKept { oldest_version: floor.max(1), oldest_time_ms: None },
            });
        }
        let rows = scan_rows(head, at_or_before, floor)?;
        Ok(match &rows.found {
            None if rows.run_start == 1 => Point::Nothing,
            Some(r) if r.position >= rows.run_start && r.version >= floor => Point::At(Cut {
                position: r.position,
                version: r.version,
                time_ms: r.time_ms,
                state: Some(r.state),
            }),
            _ => {
                // The run reaches the file's last row, at or above the floor.
                let (v, t) = rows
                    .first_from
                    .map_or((info.last_version, info.last_time_ms), |r| (r.version, r.time_ms));
                Point::NotKept { oldest_version: v, oldest_time_ms: Some(t) }
            }
        })
    }

    /// Writes into the empty directory `out` the state and history of the
    /// compacted part (`head`) as of `version`, below its last version.
    pub(crate) fn restore_compacted(&self, head: &Head, version: u64, out: &Path) -> Result<RestoreReport> {
        let point = self.compacted_point(head, &|r| r.version <= version, Some(version))?;
        let Some(cut) = point.cut(&format!("version {version}"))? else {
            return Ok(RestoreReport { version: 0, position: 0, bytes: 0 });
        };
        let path = out.join(head::file_name(FIRST_HEAD_ID));
        let mut unlimited = |_| {};
        let mut writer =
            HeadWriter::create(self.fs.as_ref(), &path, FIRST_HEAD_ID, now_ms(), &mut unlimited)?;
        let written = self.copy_through(head, &cut, &mut writer);
        if let Err(e) = written {
            writer.abandon();
            return Err(e);
        }
        let end = RangeEnd {
            last_position: cut.position,
            last_version: cut.version,
            horizon: head.info().horizon,
            last_time_ms: cut.time_ms,
            state: cut.state,
        };
        let bytes = writer.finish(end)?.info().table_end;
        Ok(RestoreReport { version: cut.version, position: cut.position, bytes })
    }

    /// Copies every version (each checked against its checksum) and row of
    /// `head` up to `cut` into `writer`, versions chained anew.
    fn copy_through(&self, head: &Head, cut: &Cut, writer: &mut HeadWriter<'_>) -> Result<()> {
        let mut previous: Option<(u32, Vec<u8>, Loc)> = None;
        head.for_each(
            &mut |op| {
                let h = op.header;
                if h.version > cut.version {
                    return Ok(());
                }
                let value = self.value_of(h.keyspace, op.key, op.loc, &h)?;
                let same =
                    previous.as_ref().is_some_and(|(ks, key, _)| (*ks, &key[..]) == (h.keyspace, op.key));
                let prev = previous.as_ref().filter(|_| same).map(|p| p.2);
                let loc = writer.push(h.keyspace, op.key, h.version, value.as_deref(), prev, h.truncated)?;
                match previous.as_mut().filter(|_| same) {
                    Some(p) => p.2 = loc,
                    None => previous = Some((h.keyspace, op.key.to_vec(), loc)),
                }
                Ok(())
            },
            &mut |_, _| {},
        )?;
        head.for_each_row(&mut |row| {
            if row.position <= cut.position {
                writer.push_row(&row)
            } else {
                Ok(())
            }
        })
    }
}

/// The oldest version whose state `head` holds whole: no key lost
/// versions at or after it (a key's oldest kept version is marked when
/// older ones were dropped), and it is not below the horizon.
fn state_floor(head: &Head) -> Result<u64> {
    let mut floor = head.info().horizon;
    head.for_each(
        &mut |op| {
            if op.header.truncated {
                floor = floor.max(op.header.version);
            }
            Ok(())
        },
        &mut |_, _| {},
    )?;
    Ok(floor)
}

/// Walks `head`'s rows once: see [`RowScan`].
fn scan_rows(head: &Head, at_or_before: &dyn Fn(&Row) -> bool, floor: u64) -> Result<RowScan> {
    let mut scan = RowScan { found: None, run_start: 1, first_from: None };
    let mut last_position = 0;
    head.for_each_row(&mut |row| {
        if row.position != last_position + 1 {
            scan.run_start = row.position;
            scan.first_from = None;
        }
        last_position = row.position;
        if scan.first_from.is_none() && row.version >= floor {
            scan.first_from = Some(row.clone());
        }
        if at_or_before(&row) {
            scan.found = Some(row);
        }
        Ok(())
    })?;
    Ok(scan)
}
