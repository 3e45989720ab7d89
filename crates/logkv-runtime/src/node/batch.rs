//! Local writes batched into one signed entry per group commit.
//!
//! Each [`Node::append_local`] caller queues its transactions. The first
//! caller to find no batch under way becomes the leader: it takes the
//! transactions queued meanwhile (one signer's, at most
//! [`MAX_TXS_PER_ENTRY`] transactions and about [`MAX_BATCH_BYTES`]),
//! signs one entry, applies it and waits for its acknowledgement, then
//! hands every caller its own transactions' results and steps down, waking
//! the caller at the front of the queue (if any) to lead the next batch.
//! While it works, new callers queue up for the next batch, so under load
//! one signature and one record carry many transactions. A caller's
//! transactions stay together and in order inside the entry. Each caller
//! waits on its own slot: a batch wakes exactly its callers and the next
//! leader, never every waiter.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use super::{Applied, Node, NodeError, Result};
use crate::entry::EntryOutcome;
use crate::envelope::{Entry, Protocol, TxPart};
use crate::signing::{keccak256, Signer};
use crate::types::{tx_version, version_position, StreamId, MAX_TXS_PER_ENTRY};

/// About how many bytes of transactions one batch takes (a single caller's
/// transactions always go, whatever their size).
pub const MAX_BATCH_BYTES: usize = 4 << 20;

/// How many entry hashes a node remembers as verified (or signed) and
/// written by itself.
pub const REMEMBERED_ENTRIES: usize = 1 << 16;

/// Where a queued caller waits.
#[derive(Default)]
struct Slot {
    state: Mutex<SlotState>,
    changed: Condvar,
}

#[derive(Default)]
enum SlotState {
    /// Queued (or in the batch under way).
    #[default]
    Waiting,
    /// Chosen to lead the next batch.
    Lead,
    /// Its transactions were applied (or failed).
    Done(Result<Applied>),
}

impl Slot {
    fn set(&self, state: SlotState) {
        *self.state.lock() = state;
        self.changed.notify_one();
    }

    /// Waits until the slot is no longer `Waiting`; takes what it became.
    fn wait(&self) -> SlotState {
        let mut s = self.state.lock();
        while matches!(*s, SlotState::Waiting) {
            self.changed.wait(&mut s);
        }
        std::mem::take(&mut *s)
    }
}

struct Pending {
    slot: Arc<Slot>,
    signer: Signer,
    txs: Vec<TxPart>,
    bytes: usize,
}

#[derive(Default)]
struct Queue {
    pending: VecDeque<Pending>,
    leading: bool,
}

/// The queue of local writes and whether a batch is under way.
#[derive(Default)]
pub(super) struct Batcher {
    queue: Mutex<Queue>,
}

/// Hashes of entries this node verified (or signed) and wrote, the newest
/// [`REMEMBERED_ENTRIES`] of them: the same bytes coming back need no
/// second verification.
#[derive(Default)]
pub(super) struct Remembered {
    set: HashSet<[u8; 32]>,
    order: VecDeque<[u8; 32]>,
}

impl Remembered {
    pub(super) fn contains(&self, hash: &[u8; 32]) -> bool {
        self.set.contains(hash)
    }

    pub(super) fn insert(&mut self, hash: [u8; 32]) {
        if self.set.insert(hash) {
            self.order.push_back(hash);
            if self.order.len() > REMEMBERED_ENTRIES {
                let old = self.order.pop_front().expect("not empty");
                self.set.remove(&old);
            }
        }
    }
}

/// Bytes a transaction adds to an entry.
pub fn tx_bytes(tx: &TxPart) -> usize {
    1 + 4 + tx.tags.len() * StreamId::LEN + 4 + tx.body.len()
}

/// Takes the next batch off the queue: the front caller's signer, then
/// every queued caller of the same signer while the bounds allow.
fn take_batch(queue: &mut VecDeque<Pending>) -> Vec<Pending> {
    let Some(first) = queue.pop_front() else { return Vec::new() };
    let signer = first.signer.address();
    let (mut txs, mut bytes) = (first.txs.len(), first.bytes);
    let mut batch = vec![first];
    let mut rest = VecDeque::with_capacity(queue.len());
    while let Some(p) = queue.pop_front() {
        if p.signer.address() == signer
            && txs + p.txs.len() <= MAX_TXS_PER_ENTRY
            && bytes + p.bytes <= MAX_BATCH_BYTES
        {
            txs += p.txs.len();
            bytes += p.bytes;
            batch.push(p);
        } else {
            rest.push_back(p);
        }
    }
    *queue = rest;
    batch
}

impl Applied {
    /// The part of a batched entry's outcome that belongs to the caller
    /// whose `n` transactions start at index `start`: their results, and
    /// the version of the last of them.
    pub fn share(&self, start: usize, n: usize) -> Applied {
        let outcome = match &self.outcome {
            EntryOutcome::Applied(r) => EntryOutcome::Applied(r[start..start + n].to_vec()),
            other => other.clone(),
        };
        let version = tx_version(version_position(self.version), (start + n - 1) as u16);
        Applied { position: self.position, version, outcome }
    }
}

impl Node {
    /// Applies `txs` of the node's own, signed by `signer`, in an entry it
    /// may share with other concurrent callers (one signature, one record
    /// per batch; see [`batch`](self)). Returns once the entry is
    /// acknowledged (durable per the durability mode, and applied), with
    /// the entry's position, the version of the caller's *last*
    /// transaction (its transactions hold consecutive versions) and only
    /// the caller's results in `outcome`. Not verified again: this node
    /// signed it. `signer`'s nonces start above every nonce it used on any
    /// stream.
    pub fn append_local(&self, signer: &Signer, txs: Vec<TxPart>) -> Result<Applied> {
        if txs.is_empty() || txs.len() > MAX_TXS_PER_ENTRY {
            // Nothing to share, or too much for any entry (encoding says so).
            return self.append_batch(signer, txs.len(), txs).map(|(a, _)| a);
        }
        let bytes = txs.iter().map(tx_bytes).sum();
        let slot = Arc::new(Slot::default());
        let lead = {
            let mut q = self.batcher.queue.lock();
            q.pending.push_back(Pending { slot: slot.clone(), signer: signer.clone(), txs, bytes });
            !std::mem::replace(&mut q.leading, true)
        };
        let mut state = if lead { SlotState::Lead } else { slot.wait() };
        loop {
            match state {
                SlotState::Done(r) => return r,
                SlotState::Lead => {
                    let batch = take_batch(&mut self.batcher.queue.lock().pending);
                    for (slot, r) in self.run_batch(batch) {
                        slot.set(SlotState::Done(r));
                    }
                    // Hand over to the first caller queued meanwhile.
                    let mut q = self.batcher.queue.lock();
                    match q.pending.front() {
                        Some(next) => next.slot.set(SlotState::Lead),
                        None => q.leading = false,
                    }
                }
                SlotState::Waiting => unreachable!("wait returns once the slot changed"),
            }
            state = slot.wait();
        }
    }

    /// Signs one entry holding every transaction of `batch`, applies it,
    /// waits for it, and splits the outcome among the callers.
    fn run_batch(&self, batch: Vec<Pending>) -> Vec<(Arc<Slot>, Result<Applied>)> {
        let signer = batch[0].signer.clone();
        let mut spans = Vec::with_capacity(batch.len());
        let mut txs = Vec::with_capacity(batch.iter().map(|p| p.txs.len()).sum());
        for p in batch {
            spans.push((p.slot, txs.len(), p.txs.len()));
            txs.extend(p.txs);
        }
        let count = txs.len();
        match self.append_batch(&signer, count, txs) {
            Ok((applied, _)) => {
                spans.into_iter().map(|(ticket, start, n)| (ticket, Ok(applied.share(start, n)))).collect()
            }
            Err(e) if spans.len() == 1 => {
                let (slot, ..) = spans.into_iter().next().expect("one caller");
                vec![(slot, Err(e))]
            }
            Err(e) => {
                let e = Arc::new(e);
                spans.into_iter().map(|(t, ..)| (t, Err(NodeError::Batch(e.clone())))).collect()
            }
        }
    }

    /// Signs `txs` into one entry of their own — not shared with other
    /// callers: the caller batched them — applies it and waits for its
    /// acknowledgement. Concurrent calls apply one after another but wait
    /// for the log's group commit together, so one caller's signing and
    /// applying overlaps another's sync. The version is the entry's last
    /// transaction's; `outcome` holds every transaction's result.
    pub fn append_entry(&self, signer: &Signer, txs: Vec<TxPart>) -> Result<Applied> {
        let count = txs.len();
        self.append_batch(signer, count, txs).map(|(applied, _)| applied)
    }

    /// Signs `txs` into one entry at `signer`'s next nonce, applies it and
    /// waits for its acknowledgement; remembers its hash.
    fn append_batch(&self, signer: &Signer, count: usize, txs: Vec<TxPart>) -> Result<(Applied, [u8; 32])> {
        let (bytes, hash) = self.sign(signer, count, txs)?;
        let applied = self.apply(None, None, &bytes, Some(true))?;
        self.remembered.lock().insert(hash);
        Ok((applied, hash))
    }

    /// Signs `txs` into one entry at `signer`'s next nonce, for a shared
    /// log: the node applies it when the log delivers it back, and
    /// remembers its hash now so that needs no verification.
    pub fn sign_entry(&self, signer: &Signer, txs: Vec<TxPart>) -> Result<(Vec<u8>, [u8; 32])> {
        let (bytes, hash) = self.sign(signer, txs.len(), txs)?;
        self.remembered.lock().insert(hash);
        Ok((bytes, hash))
    }

    /// The node's own entries are protocol 2: its clients' small writes
    /// then pay for a stream ID once per entry, not once per transaction.
    fn sign(&self, signer: &Signer, count: usize, txs: Vec<TxPart>) -> Result<(Vec<u8>, [u8; 32])> {
        let nonce = self.next_local_nonce(&signer.address());
        let entry = Entry { sender: signer.address(), nonce, txs };
        let bytes = entry.encode_signed_as(Protocol::V2, signer).map_err(NodeError::Envelope)?;
        self.counters.signed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.counters.local_txs.fetch_add(count as u64, std::sync::atomic::Ordering::Relaxed);
        let hash = keccak256(&bytes);
        Ok((bytes, hash))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_hashes_are_bounded_and_forget_the_oldest() {
        let mut r = Remembered::default();
        let h = |i: u32| keccak256(&i.to_be_bytes());
        for i in 0..(REMEMBERED_ENTRIES as u32 + 10) {
            r.insert(h(i));
        }
        assert_eq!(r.set.len(), REMEMBERED_ENTRIES);
        assert!(!r.contains(&h(0)) && !r.contains(&h(9)));
        assert!(r.contains(&h(10)) && r.contains(&h(REMEMBERED_ENTRIES as u32 + 9)));
    }
}
