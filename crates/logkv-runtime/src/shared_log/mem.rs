//! [`MemLog`]: a shared log in memory, for tests and for several nodes in
//! one process; the reference the other backends must behave like.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::{Batch, BoardReports, DigestBoard, Follower, LogEntry, SharedLog, SharedLogError};
use crate::apply::Watched;
use crate::divergence::DigestReport;

/// A shared log in memory. Clones are the same log (every node of a test
/// holds one). The log time of an entry is the wall clock when it was
/// appended, never below the entry before it.
#[derive(Debug, Clone)]
pub struct MemLog {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    name: String,
    state: Mutex<State>,
    /// Woken on every append, for followers waiting at the tail.
    appended: Notify,
    /// The nodes' digest reports.
    digests: DigestBoard,
}

#[derive(Debug)]
struct State {
    /// Position of `entries[0]`.
    first: u64,
    /// `(log time, bytes)` from `first` on.
    entries: VecDeque<(u64, Bytes)>,
    /// The newest entry's log time (kept across trims).
    last_time_ms: u64,
}

impl State {
    fn tail(&self) -> u64 {
        self.first + self.entries.len() as u64 - 1
    }
}

impl MemLog {
    /// An empty log, named in its identity (`mem:NAME`).
    pub fn new(name: &str) -> Self {
        let state = State { first: 1, entries: VecDeque::new(), last_time_ms: 0 };
        let inner = Inner {
            name: name.to_string(),
            state: Mutex::new(state),
            appended: Notify::new(),
            digests: DigestBoard::default(),
        };
        MemLog { inner: Arc::new(inner) }
    }
}

impl SharedLog for MemLog {
    type Follower = MemFollower;
    type Reports = BoardReports;

    async fn append(&self, entries: &[Bytes]) -> Result<Vec<u64>, SharedLogError> {
        let positions = {
            let mut s = self.inner.state.lock();
            let first = s.tail() + 1;
            for e in entries {
                s.last_time_ms = now_ms().max(s.last_time_ms);
                let time = s.last_time_ms;
                s.entries.push_back((time, e.clone()));
            }
            (first..first + entries.len() as u64).collect()
        };
        self.inner.appended.notify_waiters();
        Ok(positions)
    }

    fn follow(&self, from: u64, _watched: &Watched) -> MemFollower {
        MemFollower { log: self.clone(), next: from.max(1) }
    }

    async fn first_position(&self) -> Result<u64, SharedLogError> {
        Ok(self.inner.state.lock().first)
    }

    async fn tail(&self) -> Result<u64, SharedLogError> {
        Ok(self.inner.state.lock().tail())
    }

    async fn trim_below(&self, first_kept: u64) -> Result<u64, SharedLogError> {
        let mut s = self.inner.state.lock();
        let tail = s.tail();
        if first_kept > tail + 1 {
            let why = format!("cannot trim below position {first_kept}: the last position is {tail}");
            return Err(SharedLogError::Refused(why));
        }
        let drop = first_kept.saturating_sub(s.first);
        s.entries.drain(..drop as usize);
        s.first += drop;
        Ok(drop)
    }

    fn identity(&self) -> String {
        format!("mem:{}", self.inner.name)
    }

    async fn publish_digest(&self, report: &DigestReport) -> Result<(), SharedLogError> {
        self.inner.digests.publish(report);
        Ok(())
    }

    async fn digest_reports(&self) -> Result<BoardReports, SharedLogError> {
        Ok(self.inner.digests.reports())
    }
}

/// Follows a [`MemLog`].
#[derive(Debug)]
pub struct MemFollower {
    log: MemLog,
    next: u64,
}

impl Follower for MemFollower {
    async fn next(&mut self, max: usize) -> Result<Batch, SharedLogError> {
        loop {
            // Registered before looking, so an append in between wakes it.
            let appended = std::pin::pin!(self.log.inner.appended.notified());
            let mut appended = appended;
            appended.as_mut().enable();
            {
                let s = self.log.inner.state.lock();
                SharedLogError::check_trimmed(s.first, self.next)?;
                if self.next <= s.tail() {
                    let skip = (self.next - s.first) as usize;
                    let entries: Vec<LogEntry> = s
                        .entries
                        .iter()
                        .skip(skip)
                        .take(max.max(1))
                        .zip(self.next..)
                        .map(|((time_ms, bytes), position)| LogEntry {
                            position,
                            time_ms: *time_ms,
                            bytes: bytes.clone(),
                        })
                        .collect();
                    self.next += entries.len() as u64;
                    return Ok(Batch { entries, through: self.next - 1 });
                }
            }
            appended.await;
        }
    }
}

/// Unix milliseconds now.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
