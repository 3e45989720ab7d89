//! The write path: batches of the plain API and applied entries, each
//! appended as one record whose ops are indexed under the log's
//! sequencing lock.

use logkv_log::{Loc, LogError, RecordType};

use crate::applied::{encode_head, payload_len, AppliedOp, AppliedValue, APPLIED_HEADER_LEN, STATE_LEN};
use crate::batch::{Op, WriteBatch};
use crate::coalesce::check_fits;
use crate::error::{Result, StoreError};
use crate::keyspaces::{Deletes, Through};
use crate::limits::{check, FORMAT_MAX_KEY_BYTES, FORMAT_MAX_VALUE_BYTES};
use crate::record::BATCH_HEADER_LEN;
use crate::store::{Store, DEFAULT_KEYSPACE};

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

/// The record being appended.
#[derive(Clone, Copy)]
enum Record<'a> {
    /// A batch of the plain API: versioned by its position.
    Batch { require_live: bool },
    /// An applied entry with its derived ops.
    Applied(Applied<'a>),
}

/// What an applied record carries besides its ops.
#[derive(Clone, Copy)]
struct Applied<'a> {
    version: u64,
    state: &'a [u8; STATE_LEN],
    entry: &'a [u8],
    annex: &'a [u8],
    position: Option<u64>,
    log_time: Option<u64>,
}

fn plain(op: &Op) -> AppliedOp<'_> {
    let value = match op {
        Op::Put { value, .. } => AppliedValue::Put(value),
        Op::Delete { .. } => AppliedValue::Delete,
    };
    AppliedOp { keyspace: DEFAULT_KEYSPACE, key: op.key(), version: 0, value }
}

impl Store {
    /// Sets `key` to `value`; returns the version once acknowledged.
    pub fn put(&self, key: &[u8], value: &[u8]) -> Result<u64> {
        let op = AppliedOp { keyspace: DEFAULT_KEYSPACE, key, version: 0, value: AppliedValue::Put(value) };
        self.write_all(&[op])
    }

    /// Deletes `key`; returns the version of the delete, or `None` (writing
    /// nothing) if the key did not exist.
    pub fn delete(&self, key: &[u8]) -> Result<Option<u64>> {
        let op = AppliedOp { keyspace: DEFAULT_KEYSPACE, key, version: 0, value: AppliedValue::Delete };
        if let Some(c) = &self.coalescer {
            self.check_batch(&[op])?;
            return c.write(&[op], true, self.limits.max_index_bytes);
        }
        match self.sequence(Record::Batch { require_live: true }, &[op]) {
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
        let ops: Vec<AppliedOp<'_>> = batch.ops().iter().map(plain).collect();
        self.write_all(&ops)
    }

    fn write_all(&self, ops: &[AppliedOp<'_>]) -> Result<u64> {
        if ops.is_empty() {
            return Ok(self.version());
        }
        if let Some(c) = &self.coalescer {
            self.check_batch(ops)?;
            let version = c.write(ops, false, self.limits.max_index_bytes)?;
            return Ok(version.expect("only writes that require a live key are refused"));
        }
        let position = self.sequence(Record::Batch { require_live: false }, ops).map_err(|e| match e {
            Refused::Store(e) => e,
            Refused::Absent => unreachable!("only deletes that require a live key refuse"),
        })?;
        self.log.commit(position)?;
        Ok(position)
    }

    /// Appends an applied entry: `entry` verbatim, the node's `state`
    /// after it and its `annex` (both opaque to the store, read back by
    /// [`Store::applied_at`]), then `ops`, the version records derived from
    /// it, indexed at once (readers see them once the record is
    /// acknowledged: [`Store::commit`]). A value of the entry is written as
    /// [`AppliedValue::InEntry`] and never copied. `log_time` is the time a
    /// shared log gave the entry (`None`: this machine's clock; see
    /// [`logkv_log::FileLog::append`]).
    ///
    /// `version` is the record's version tag, at least every op's version;
    /// op versions must not decrease and must exceed every version already
    /// in the log. With `position`, the record must get exactly that
    /// position (the caller numbered the versions after it). Checks only
    /// the format's limits (keys of 1..=65,535 bytes, values of at most
    /// 16 MiB) and `max_index_bytes`: what an entry may hold was decided
    /// before it was logged. Returns the record's position without waiting.
    #[allow(clippy::too_many_arguments)] // the record's parts, as the format lists them
    pub fn append_applied(
        &self,
        position: Option<u64>,
        version: u64,
        entry: &[u8],
        ops: &[AppliedOp<'_>],
        state: &[u8; STATE_LEN],
        annex: &[u8],
        log_time: Option<u64>,
    ) -> Result<u64> {
        let invalid = |what: String| Err(StoreError::Invalid(what));
        let mut last = 0;
        for (i, op) in ops.iter().enumerate() {
            if op.key.is_empty() {
                return Err(StoreError::EmptyKey);
            }
            check("key length", FORMAT_MAX_KEY_BYTES, op.key.len())?;
            check("value length", FORMAT_MAX_VALUE_BYTES, op.value_len())?;
            if let AppliedValue::InEntry { offset, len } = op.value {
                if offset.checked_add(len).is_none_or(|end| end > entry.len()) {
                    return invalid(format!(
                        "op {i} refers to {len} bytes at {offset}, past the entry's end"
                    ));
                }
            }
            if op.version < last || op.version > version {
                return invalid(format!("op {i} has version {}, outside {last}..={version}", op.version));
            }
            last = op.version;
        }
        check("op count", u32::MAX as usize, ops.len())?;
        check("entry length", u32::MAX as usize, entry.len())?;
        check("annex length", u32::MAX as usize, annex.len())?;
        if let Some(c) = &self.coalescer {
            c.seal()?;
        }
        let record = Applied { version, state, entry, annex, position, log_time };
        self.sequence(Record::Applied(record), ops).map_err(|e| match e {
            Refused::Store(e) => e,
            Refused::Absent => unreachable!("applied records never require a live key"),
        })
    }

    /// Waits until the record at `position` is acknowledged under the
    /// durability mode (then its versions are visible).
    pub fn commit(&self, position: u64) -> Result<()> {
        Ok(self.log.commit(position)?)
    }

    /// Checks a plain batch against the limits.
    fn check_batch(&self, ops: &[AppliedOp<'_>]) -> Result<()> {
        check("max_batch_ops", self.limits.max_batch_ops, ops.len())?;
        let mut data_bytes = 0usize;
        for op in ops {
            self.limits.check_key(op.key)?;
            check("max_value_bytes", self.limits.max_value_bytes, op.value_len())?;
            data_bytes += op.key.len() + op.value_len();
        }
        check("max_batch_bytes", self.limits.max_batch_bytes, data_bytes)?;
        if self.coalescer.is_some() {
            check_fits(ops)?;
        }
        Ok(())
    }

    /// Checks limits, then appends the record and updates the index in one
    /// step under the log's sequencing lock.
    fn sequence(&self, record: Record<'_>, ops: &[AppliedOp<'_>]) -> Result<u64, Refused> {
        let (rtype, len, log_time) = match record {
            Record::Batch { .. } => {
                self.check_batch(ops)?;
                let len = BATCH_HEADER_LEN + ops.iter().map(AppliedOp::op_len).sum::<usize>();
                (RecordType::Batch, len, None)
            }
            Record::Applied(a) => {
                (RecordType::Applied, payload_len(a.entry.len(), a.annex.len(), ops), a.log_time)
            }
        };
        self.log.append(rtype, len, log_time, |position, payload_loc, buf| {
            let previous = self.log.sequenced_version();
            let first = match record {
                Record::Batch { .. } => position,
                Record::Applied(a) => ops.first().map_or(a.version, |o| o.version),
            };
            if first <= previous && !ops.is_empty() {
                let why = format!("version {first} does not exceed {previous}, the newest in the log");
                return Err(StoreError::OutOfOrder(why).into());
            }
            if let Record::Applied(Applied { version, .. }) = record {
                if version < previous {
                    let why = format!("version tag {version} is below {previous}, the newest in the log");
                    return Err(StoreError::OutOfOrder(why).into());
                }
            }
            if let Record::Applied(Applied { position: Some(want), .. }) = record {
                if want != position {
                    let why = format!("the entry was numbered for position {want} but would get {position}");
                    return Err(StoreError::OutOfOrder(why).into());
                }
            }
            let mut index = self.index.write();
            if let Record::Batch { require_live: true } = record {
                if !ops.iter().all(|o| index.is_live(o.keyspace, o.key)) {
                    return Err(Refused::Absent);
                }
            }
            let deletes = match record {
                Record::Batch { .. } => Deletes::OfHeldKeys,
                Record::Applied(_) => Deletes::Versioned,
            };
            index.reserve(
                self.limits.max_index_bytes,
                deletes,
                ops.iter().map(|o| (o.keyspace, o.kind(), o.key)),
            )?;
            let (tag, mut at) = match record {
                Record::Batch { .. } => {
                    buf[..4].copy_from_slice(&(ops.len() as u32).to_le_bytes());
                    (position, BATCH_HEADER_LEN)
                }
                Record::Applied(a) => {
                    index.newest_state = Some((*a.state, a.version));
                    (a.version, encode_head(buf, a.version, a.state, a.entry, a.annex, ops.len()))
                }
            };
            for op in ops {
                // Indexing first finds the previous version with the same
                // search that updates the key; the header that points back
                // at it is encoded afterwards.
                let prev =
                    index.apply(op.keyspace, op.kind(), op.key, payload_loc.forward(at as u64), deletes);
                if prev.is_some() {
                    index.superseded_bytes += op.op_len() as u64;
                }
                let version = match record {
                    Record::Batch { .. } => position,
                    Record::Applied(_) => op.version,
                };
                at += op.encode(buf, at, version, prev.map(Loc::from_u64), APPLIED_HEADER_LEN);
            }
            debug_assert_eq!(at, buf.len());
            index.through = Through { position, version: tag };
            Ok(tag)
        })
    }
}
