//! Compaction in memory: in `periodic` mode, when retention keeps one
//! version per key and no time window, the plain API's writes of one
//! flush window go into a pending batch where a later write of a key
//! replaces the earlier one, and the batch reaches the log as one record.
//! A hot key written a thousand times in a window costs the disk one
//! version record.
//!
//! Pending writes are indexed like any other, at locations in a
//! pseudo-file: numbers at the top of the file-number space name the
//! pending batch of one generation, and the offset says which write and
//! where in its encoded op. So gets, scans, history and liveness work
//! unchanged; a read that meets a location of a batch already written to
//! the log finds the index moved on and reads again. Every write of the
//! window gets the batch's version (its future position): the window is
//! one atomic batch, and the intermediate versions are what retention
//! would drop anyway.
//!
//! The batch is written when the window ends (a thread of its own, which
//! also syncs, so at most one window is lost, as `periodic` promises), when
//! it holds `flush_size_bytes`, and before anything that needs the log
//! complete (sync, checkpoint, compaction, export, close).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use logkv_log::format::MAX_SEGMENT_ID;
use logkv_log::{Loc, LogError, LogHandle, RecordType};
use parking_lot::{Condvar, Mutex, RwLock};

use crate::applied::{AppliedOp, AppliedValue};
use crate::error::{Result, StoreError};
use crate::keyspaces::{Deletes, Keyspaces, Through};
use crate::limits::{check, FORMAT_MAX_BATCH_OPS};
use crate::record::{OpKind, BATCH_HEADER_LEN, OP_HEADER_LEN};
use crate::store::DEFAULT_KEYSPACE;

/// File numbers naming pending batches, one per generation (mod their
/// count); below them are compacted files.
pub(crate) const FIRST_PENDING_ID: u32 = MAX_SEGMENT_ID - 1023;
const PENDING_IDS: u32 = 1024;
/// Bits of a pending location's offset that say where in its op.
const INNER_BITS: u32 = 26;
/// Writes a batch holds before it is written out: the rest of the offset.
const MAX_SLOTS: usize = 1 << (40 - INNER_BITS);

/// One key's pending write: its encoded op (version and previous version
/// filled in), as a log segment would hold it.
struct Slot {
    op: Vec<u8>,
    kind: OpKind,
    prev: Option<Loc>,
}

/// The writes of the current window.
struct Pending {
    generation: u64,
    /// The position (and version) the batch will have.
    position: u64,
    slots: Vec<Slot>,
    by_key: BTreeMap<Vec<u8>, usize>,
    bytes: usize,
    started: Instant,
}

/// The pending batch and its thread.
pub(crate) struct Coalescer {
    state: Mutex<Option<Pending>>,
    generation: Mutex<u64>,
    log: LogHandle,
    index: Arc<RwLock<Keyspaces>>,
    window: Duration,
    flush_size_bytes: usize,
    stop: Mutex<bool>,
    wake: Condvar,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Writes absorbed by a later write of the same key in its window.
    pub(crate) coalesced_writes: std::sync::atomic::AtomicU64,
    /// Bytes those writes would have added to the log.
    pub(crate) coalesced_bytes: std::sync::atomic::AtomicU64,
}

thread_local! {
    /// Whether this thread runs inside [`Coalescer::sealed`].
    static HOLDING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn pending_loc(generation: u64, slot: usize) -> Loc {
    Loc::new(FIRST_PENDING_ID + (generation % u64::from(PENDING_IDS)) as u32, (slot as u64) << INNER_BITS)
}

/// Whether a file number names a pending batch.
pub(crate) fn is_pending(segment: u32) -> bool {
    segment >= FIRST_PENDING_ID
}

impl Coalescer {
    /// Starts the coalescer and its window thread.
    pub(crate) fn start(
        log: LogHandle,
        index: Arc<RwLock<Keyspaces>>,
        window: Duration,
        flush_size_bytes: usize,
    ) -> Result<Arc<Self>> {
        let c = Arc::new(Self {
            state: Mutex::new(None),
            generation: Mutex::new(0),
            log,
            index,
            window,
            flush_size_bytes,
            stop: Mutex::new(false),
            wake: Condvar::new(),
            thread: Mutex::new(None),
            coalesced_writes: 0.into(),
            coalesced_bytes: 0.into(),
        });
        let weak = Arc::downgrade(&c);
        let thread = std::thread::Builder::new()
            .name("logkv-coalesce".into())
            .spawn(move || window_loop(&weak))
            .map_err(|e| LogError::io("coalescing thread", e))?;
        *c.thread.lock() = Some(thread);
        Ok(c)
    }

    /// The version the pending batch will have, if it holds anything.
    pub(crate) fn pending_version(&self) -> Option<u64> {
        self.state.lock().as_ref().map(|p| p.position)
    }

    /// Adds `ops` (keyspace 0) to the pending batch as one atomic step;
    /// returns the batch's version. With `require_live`, writes nothing
    /// and returns `None` unless every key has a live value.
    pub(crate) fn write(
        &self,
        ops: &[AppliedOp<'_>],
        require_live: bool,
        max_index_bytes: usize,
    ) -> Result<Option<u64>> {
        let mut state = self.state.lock();
        let op_bytes: usize = ops.iter().map(AppliedOp::op_len).sum();
        let full = state.as_ref().is_some_and(|p| {
            p.slots.len() + ops.len() > MAX_SLOTS.min(FORMAT_MAX_BATCH_OPS)
                || p.bytes + op_bytes >= self.flush_size_bytes
        });
        if full {
            self.seal_locked(&mut state)?;
        }
        // Read before the index lock: appends take the log's lock, then
        // the index's.
        let next_position = state.is_none().then(|| self.log.next_position());
        let mut index = self.index.write();
        if require_live && !ops.iter().all(|o| index.is_live(DEFAULT_KEYSPACE, o.key)) {
            return Ok(None);
        }
        index.reserve(
            max_index_bytes,
            Deletes::OfHeldKeys,
            ops.iter().map(|o| (DEFAULT_KEYSPACE, o.kind(), o.key)),
        )?;
        let pending = state.get_or_insert_with(|| {
            let mut generation = self.generation.lock();
            *generation += 1;
            Pending {
                generation: *generation,
                position: next_position.expect("read above when no batch was open"),
                slots: Vec::new(),
                by_key: BTreeMap::new(),
                bytes: 0,
                started: Instant::now(),
            }
        });
        for op in ops {
            let (slot, fresh) = match pending.by_key.get(op.key) {
                Some(&slot) => (slot, false),
                None => (pending.slots.len(), true),
            };
            let loc = pending_loc(pending.generation, slot);
            let old = index.apply(DEFAULT_KEYSPACE, op.kind(), op.key, loc, Deletes::OfHeldKeys);
            if fresh && old.is_none() && op.kind() == OpKind::Delete {
                continue; // a delete of a key never held hides nothing
            }
            let prev = if fresh { old.map(Loc::from_u64) } else { pending.slots[slot].prev };
            let mut encoded = vec![0u8; op.op_len()];
            op.encode(&mut encoded, 0, pending.position, prev, 0);
            if fresh {
                pending.by_key.insert(op.key.to_vec(), slot);
                pending.slots.push(Slot { op: encoded, kind: op.kind(), prev });
                pending.bytes += op.op_len();
            } else {
                let replaced =
                    std::mem::replace(&mut pending.slots[slot], Slot { op: encoded, kind: op.kind(), prev });
                pending.bytes = pending.bytes + op.op_len() - replaced.op.len();
                self.coalesced_writes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.coalesced_bytes
                    .fetch_add(replaced.op.len() as u64, std::sync::atomic::Ordering::Relaxed);
            }
        }
        Ok(Some(pending.position))
    }

    /// Calls `f` with `len` bytes at a pending location; `None` if that
    /// batch was written to the log meanwhile (or the location is not one
    /// of the current batch's).
    pub(crate) fn read<R>(&self, loc: Loc, len: usize, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        if HOLDING.get() {
            // This thread holds the batch still, written out: nothing is
            // pending (and taking the lock again would deadlock).
            return None;
        }
        let state = self.state.lock();
        let pending = state.as_ref()?;
        if pending_loc(pending.generation, 0).segment() != loc.segment() {
            return None;
        }
        let slot = pending.slots.get((loc.offset() >> INNER_BITS) as usize)?;
        let at = (loc.offset() & ((1 << INNER_BITS) - 1)) as usize;
        slot.op.get(at..at + len).map(f)
    }

    /// Writes the pending batch to the log (now).
    pub(crate) fn seal(&self) -> Result<()> {
        let mut state = self.state.lock();
        self.seal_locked(&mut state)
    }

    /// Runs `f` with no write able to enter the pending batch, after
    /// writing it out: for a snapshot that must hold only logged records.
    pub(crate) fn sealed<R>(&self, f: impl FnOnce() -> R) -> Result<R> {
        let mut state = self.state.lock();
        self.seal_locked(&mut state)?;
        HOLDING.set(true);
        let r = f();
        HOLDING.set(false);
        Ok(r)
    }

    fn seal_locked(&self, state: &mut Option<Pending>) -> Result<()> {
        let Some(pending) = state.take() else { return Ok(()) };
        let mut slots: Vec<(&[u8], usize)> = pending.by_key.iter().map(|(k, &s)| (&k[..], s)).collect();
        slots.sort_unstable_by_key(|&(k, _)| k);
        let len = BATCH_HEADER_LEN + slots.iter().map(|&(_, s)| pending.slots[s].op.len()).sum::<usize>();
        let index = &self.index;
        let written = self.log.append(RecordType::Batch, len, None, |position, payload_loc, buf| {
            if position != pending.position {
                let why =
                    format!("the pending batch was numbered {} but would get {position}", pending.position);
                return Err(StoreError::OutOfOrder(why));
            }
            let mut index = index.write();
            buf[..4].copy_from_slice(&(slots.len() as u32).to_le_bytes());
            let mut at = BATCH_HEADER_LEN;
            for &(key, s) in &slots {
                let slot = &pending.slots[s];
                buf[at..at + slot.op.len()].copy_from_slice(&slot.op);
                let meta = |loc: Loc| {
                    loc.to_u64() | if slot.kind == OpKind::Delete { crate::keyspaces::DELETED } else { 0 }
                };
                let logged = payload_loc.forward(at as u64);
                index.replace_if(
                    DEFAULT_KEYSPACE,
                    key,
                    meta(pending_loc(pending.generation, s)),
                    meta(logged),
                );
                if slot.prev.is_some() {
                    index.superseded_bytes += slot.op.len() as u64;
                }
                at += slot.op.len();
            }
            index.through = Through { position, version: position };
            Ok(position)
        });
        match written {
            Ok(_) => Ok(()),
            Err(e) => {
                // The batch was acknowledged; losing it is what a crash in
                // the window would do. The index must not keep pointing at
                // it: put the writes back so reads stay right, and fail.
                *state = Some(pending);
                Err(e)
            }
        }
    }

    /// Stops the window thread (after writing the batch out).
    pub(crate) fn stop(&self) -> Result<()> {
        *self.stop.lock() = true;
        self.wake.notify_all();
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
        self.seal()
    }
}

/// Ends windows: writes the batch out and syncs once it is a window old.
fn window_loop(coalescer: &std::sync::Weak<Coalescer>) {
    loop {
        let Some(c) = coalescer.upgrade() else { return };
        let due = c.state.lock().as_ref().map(|p| p.started + c.window);
        let mut stop = c.stop.lock();
        if *stop {
            return;
        }
        let wait = due.map_or(c.window, |d| d.saturating_duration_since(Instant::now()));
        if !wait.is_zero() {
            c.wake.wait_for(&mut stop, wait);
            continue;
        }
        drop(stop);
        if c.seal().and_then(|()| Ok(c.log.sync()?)).is_err() {
            // The log turned read-only; writes report it from now on.
            return;
        }
    }
}

/// Whether the store coalesces: `periodic` with one version kept per key
/// and no time window (see the module doc).
pub(crate) fn applies(
    durability: logkv_log::Durability,
    retention: &crate::Retention,
) -> Option<(Duration, usize)> {
    match durability {
        logkv_log::Durability::Periodic { flush_interval, flush_size_bytes }
            if retention.versions == Some(1) && retention.duration.is_none() =>
        {
            Some((flush_interval, flush_size_bytes))
        }
        _ => None,
    }
}

/// Checks a write fits what one pending batch can hold.
pub(crate) fn check_fits(ops: &[AppliedOp<'_>]) -> Result<()> {
    check("op count", MAX_SLOTS.min(FORMAT_MAX_BATCH_OPS), ops.len())?;
    for op in ops {
        if let AppliedValue::Put(v) = op.value {
            check("value length", (1 << INNER_BITS) - OP_HEADER_LEN - op.key.len(), v.len())?;
        }
    }
    Ok(())
}
