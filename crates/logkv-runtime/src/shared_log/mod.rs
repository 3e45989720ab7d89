//! The shared log of entries a node can follow: the `Log` trait of the
//! design's log layer (`../shared/DESIGN.md`: append, batched, returning
//! positions; read from a position; tail), and [`MemLog`], an in-memory
//! implementation.
//!
//! It lives in the runtime crate, not in `logkv-log`, because what it
//! carries is the runtime's: opaque signed entries, numbered by the
//! positions the runtime versions them with ([`crate::types::tx_version`]).
//! The runtime runs from any `Log` ([`crate::node::Node::catch_up`]), so a
//! shared-log backend (JetStream) plugs in by implementing this trait,
//! without changing the runtime. On the embedded default no implementation
//! is needed: the node's own file log is the log.
//!
//! [`MemLog`] serves tests and is the reference a backend must behave like.

use parking_lot::Mutex;

/// What a shared log can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SharedLogError {
    /// The backend failed (I/O, the network, a server refusing).
    #[error("shared log unavailable: {0}")]
    Unavailable(String),
    /// The log will never take this entry (it is larger than the log's
    /// limit): retrying cannot help.
    #[error("shared log refused the entry: {0}")]
    Refused(String),
    /// The log answered what its contract rules out: a read that skips or
    /// repeats positions, or stops short of the tail it reported.
    #[error("shared log broke its contract: {0}")]
    Inconsistent(String),
}

/// A shared log of entries (opaque bytes). Positions start at 1 and
/// increase by one per entry; an entry never moves or changes once its
/// position is returned. Several writers may append at once (JetStream):
/// their entries interleave.
pub trait Log: Send + Sync {
    /// Appends `entries` and returns their positions (as many as entries,
    /// each after every entry appended before the call; consecutive only
    /// when nobody else appends meanwhile).
    fn append(&self, entries: &[Vec<u8>]) -> Result<Vec<u64>, SharedLogError>;

    /// The entries at positions `from` and after, in order, at most `max`
    /// of them (none past the tail). Position 0 reads from the first.
    fn read(&self, from: u64, max: usize) -> Result<Vec<(u64, Vec<u8>)>, SharedLogError>;

    /// The newest position, 0 when the log is empty.
    fn tail(&self) -> Result<u64, SharedLogError>;
}

/// A shared log in memory: entry `p` is at index `p - 1`.
#[derive(Debug, Default)]
pub struct MemLog {
    entries: Mutex<Vec<Vec<u8>>>,
}

impl MemLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Log for MemLog {
    fn append(&self, entries: &[Vec<u8>]) -> Result<Vec<u64>, SharedLogError> {
        let mut log = self.entries.lock();
        let first = log.len() as u64 + 1;
        log.extend(entries.iter().cloned());
        Ok((first..first + entries.len() as u64).collect())
    }

    fn read(&self, from: u64, max: usize) -> Result<Vec<(u64, Vec<u8>)>, SharedLogError> {
        let log = self.entries.lock();
        let start = from.max(1);
        let skip = usize::try_from(start - 1).unwrap_or(usize::MAX);
        Ok(log.iter().skip(skip).take(max).zip(start..).map(|(e, p)| (p, e.clone())).collect())
    }

    fn tail(&self) -> Result<u64, SharedLogError> {
        Ok(self.entries.lock().len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_start_at_one_and_reads_are_bounded() {
        let log = MemLog::new();
        assert_eq!(log.tail().unwrap(), 0);
        assert!(log.read(1, 10).unwrap().is_empty());
        assert_eq!(log.append(&[b"a".to_vec(), b"b".to_vec()]).unwrap(), vec![1, 2]);
        assert_eq!(log.append(&[]).unwrap(), Vec::<u64>::new());
        assert_eq!(log.append(&[b"c".to_vec()]).unwrap(), vec![3]);
        assert_eq!(log.tail().unwrap(), 3);
        let all = vec![(1, b"a".to_vec()), (2, b"b".to_vec()), (3, b"c".to_vec())];
        assert_eq!(log.read(0, 10).unwrap(), all);
        assert_eq!(log.read(1, 10).unwrap(), all);
        assert_eq!(log.read(2, 1).unwrap(), vec![(2, b"b".to_vec())]);
        assert!(log.read(2, 0).unwrap().is_empty());
        assert!(log.read(4, 10).unwrap().is_empty());
        assert!(log.read(u64::MAX, 10).unwrap().is_empty());
    }
}
