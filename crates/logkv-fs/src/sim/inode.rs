//! One simulated file's data: what is on disk, the operations issued since,
//! and how sure each of them is.

use rand::rngs::StdRng;
use rand::Rng;

/// One change to a file's content or length, kept until it is durable.
#[derive(Clone)]
pub(super) enum DataOp {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
    Allocate(u64),
}

impl DataOp {
    /// Applies the op; `keep` cuts a write down to its first `keep` bytes
    /// (a torn write).
    pub(super) fn apply(&self, buf: &mut Vec<u8>, keep: Option<usize>) {
        match self {
            DataOp::Write { offset, data } => {
                let data = &data[..keep.unwrap_or(data.len()).min(data.len())];
                if data.is_empty() {
                    // pwrite of nothing does not extend the file.
                    return;
                }
                let start = *offset as usize;
                let end = start + data.len();
                if buf.len() < end {
                    buf.resize(end, 0);
                }
                buf[start..end].copy_from_slice(data);
            }
            DataOp::SetLen(len) => buf.resize(*len as usize, 0),
            DataOp::Allocate(len) => {
                if buf.len() < *len as usize {
                    buf.resize(*len as usize, 0);
                }
            }
        }
    }

    /// The length after applying the op to a file of `len` bytes.
    pub(super) fn len_after(&self, len: u64) -> u64 {
        match self {
            DataOp::Write { data, .. } if data.is_empty() => len,
            DataOp::Write { offset, data } => len.max(offset + data.len() as u64),
            DataOp::SetLen(l) => *l,
            DataOp::Allocate(l) => len.max(*l),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Durability {
    /// Synced, but waiting behind a doubtful op to be folded into `base`.
    Durable,
    /// Not yet synced.
    Pending,
    /// Its sync failed: it may or may not be on disk, and never will be for sure.
    Doubtful,
}

/// A file's data: `base` is on disk; `log` holds the ops not folded into it,
/// in issue order; `view` is `base` with all of `log` applied (what reads see).
#[derive(Clone, Default)]
pub(super) struct Inode {
    pub(super) base: Vec<u8>,
    pub(super) log: Vec<(DataOp, Durability)>,
    pub(super) view: Vec<u8>,
    /// Open handles; an unnamed inode lives as long as one exists (POSIX).
    pub(super) handles: usize,
}

impl Inode {
    pub(super) fn with_content(content: Vec<u8>) -> Self {
        Inode { view: content.clone(), base: content, log: Vec::new(), handles: 0 }
    }

    pub(super) fn push(&mut self, op: DataOp) {
        op.apply(&mut self.view, None);
        self.log.push((op, Durability::Pending));
    }

    pub(super) fn sync(&mut self) {
        for (_, d) in &mut self.log {
            if *d == Durability::Pending {
                *d = Durability::Durable;
            }
        }
        let folded = self.log.iter().take_while(|(_, d)| *d == Durability::Durable).count();
        for (op, _) in self.log.drain(..folded) {
            op.apply(&mut self.base, None);
        }
    }

    pub(super) fn fail_sync(&mut self) {
        for (_, d) in &mut self.log {
            if *d == Durability::Pending {
                *d = Durability::Doubtful;
            }
        }
    }

    pub(super) fn durable_len(&self) -> u64 {
        self.log
            .iter()
            .filter(|(_, d)| *d == Durability::Durable)
            .fold(self.base.len() as u64, |len, (op, _)| op.len_after(len))
    }

    pub(super) fn unsynced(&self) -> usize {
        self.log.iter().filter(|(_, d)| *d != Durability::Durable).count()
    }

    /// The content after a power loss: durable ops always, each other op with
    /// probability 1/2 (any subset, not a prefix), and with probability 1/2
    /// one kept unsynced write torn to a random prefix. Without `rng` only
    /// the durable ops.
    pub(super) fn after_power_loss(&self, rng: Option<&mut StdRng>) -> Vec<u8> {
        let mut kept = vec![false; self.log.len()];
        let mut torn = None;
        if let Some(rng) = rng {
            for (i, (_, d)) in self.log.iter().enumerate() {
                kept[i] = *d == Durability::Durable || rng.random_bool(0.5);
            }
            let tearable: Vec<usize> = (0..self.log.len())
                .filter(|&i| {
                    kept[i]
                        && self.log[i].1 != Durability::Durable
                        && matches!(&self.log[i].0, DataOp::Write { data, .. } if !data.is_empty())
                })
                .collect();
            if !tearable.is_empty() && rng.random_bool(0.5) {
                let i = tearable[rng.random_range(0..tearable.len())];
                if let DataOp::Write { data, .. } = &self.log[i].0 {
                    torn = Some((i, rng.random_range(0..data.len())));
                }
            }
        } else {
            for (i, (_, d)) in self.log.iter().enumerate() {
                kept[i] = *d == Durability::Durable;
            }
        }
        let mut content = self.base.clone();
        for (i, (op, _)) in self.log.iter().enumerate() {
            if kept[i] {
                let keep = torn.filter(|(t, _)| *t == i).map(|(_, n)| n);
                op.apply(&mut content, keep);
            }
        }
        content
    }
}
