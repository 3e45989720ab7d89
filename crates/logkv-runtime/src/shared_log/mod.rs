//! The shared log a node follows: the [`SharedLog`] trait of the log layer
//! (`docs/architecture.md`) and its in-process implementations,
//! [`MemLog`] (memory) and [`FileEntryLog`] (a directory on one machine).
//! JetStream implements it in `logkv-nats`.
//!
//! It lives in the runtime crate, not in `logkv-log`, because what it
//! carries is the runtime's: opaque signed entries, numbered by the
//! positions the runtime versions them with ([`crate::types::tx_version`]).
//! Everything that follows a log ([`crate::node::Node::follow`]), appends
//! to it, trims it or marks a data directory as its copy is generic over
//! the trait, so a backend plugs in without changing the runtime or the
//! server. On the embedded default no implementation is needed: the node's
//! own file log is the log.
//!
//! The trait is async because the backends that matter wait on a network;
//! it uses `impl Future + Send` in trait methods (no boxing, no macro
//! crate), so callers are generic over the log rather than `dyn`.

mod board;
mod file;
mod mem;

use std::future::Future;

use bytes::Bytes;

use crate::apply::Watched;
use crate::divergence::DigestReport;

pub use board::{BoardReports, DigestBoard};
pub use file::{FileEntryLog, FileFollower};
pub use mem::{MemFollower, MemLog};

/// What a shared log can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SharedLogError {
    /// The backend failed (I/O, the network, a server refusing): retrying
    /// may help.
    #[error("shared log unavailable: {0}")]
    Unavailable(String),
    /// The log will never take this request (an entry larger than its
    /// limit, a trim past its end): retrying cannot help.
    #[error("shared log refused the request: {0}")]
    Refused(String),
    /// The log no longer holds a position its reader needs: it was
    /// trimmed. Reading on would skip entries.
    #[error("the log was trimmed: its first position is {first_kept}, but position {needed} is needed")]
    Trimmed {
        /// The log's first position: every one below it is gone.
        first_kept: u64,
        /// The position the reader needed.
        needed: u64,
    },
    /// The log answered what its contract rules out: positions that go
    /// back, or entries past the position a batch says it reached.
    #[error("shared log broke its contract: {0}")]
    Inconsistent(String),
}

impl SharedLogError {
    /// [`SharedLogError::Trimmed`] if `needed` is below `first_kept`.
    pub fn check_trimmed(first_kept: u64, needed: u64) -> Result<(), SharedLogError> {
        if needed < first_kept {
            return Err(SharedLogError::Trimmed { first_kept, needed });
        }
        Ok(())
    }
}

/// One entry as a follower hands it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Its position.
    pub position: u64,
    /// Its log time (Unix milliseconds): what the log itself recorded, so
    /// every node reading the entry reads the same time — unlike each
    /// node's own clock. The in-process logs never decrease it; a stream
    /// may after a leader change, which the store absorbs by raising a
    /// time to the previous record's.
    pub time_ms: u64,
    /// The entry's bytes, opaque to the log.
    pub bytes: Bytes,
}

/// What a follower hands over at once.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Batch {
    /// Entries in increasing positions; gaps only where the log passed
    /// over entries no watched stream needs.
    pub entries: Vec<LogEntry>,
    /// Every position up to this one is in this batch or an earlier one,
    /// or not for this follower: how far the log is read.
    pub through: u64,
}

/// A shared log of entries (opaque bytes). Positions start at 1 and grow
/// by one per entry; an entry never moves or changes once its position is
/// returned. Several writers may append at once: their entries interleave.
/// Trimming removes a prefix; positions are never reused.
pub trait SharedLog: Send + Sync + 'static {
    /// What [`SharedLog::follow`] returns.
    type Follower: Follower;

    /// What [`SharedLog::digest_reports`] returns.
    type Reports: DigestReports;

    /// Appends `entries`, returning their positions (as many as entries,
    /// each after every entry appended before the call) once the log holds
    /// them durably by its own standard.
    fn append(&self, entries: &[Bytes]) -> impl Future<Output = Result<Vec<u64>, SharedLogError>> + Send;

    /// Reads the log from position `from` on (1 at least). `watched` lets
    /// a log leave out entries no watched stream needs; a log may hand
    /// them over anyway (apply skips them).
    fn follow(&self, from: u64, watched: &Watched) -> Self::Follower;

    /// The oldest position the log still holds: 1 if never trimmed; the
    /// tail + 1 if every entry was trimmed.
    fn first_position(&self) -> impl Future<Output = Result<u64, SharedLogError>> + Send;

    /// The newest position, 0 when nothing was ever appended.
    fn tail(&self) -> impl Future<Output = Result<u64, SharedLogError>> + Send;

    /// Removes entries below `first_kept` (a log may keep some of them, by
    /// whole files) and returns how many it removed. `first_kept` past the
    /// tail + 1 is refused: positions would leave a hole.
    fn trim_below(&self, first_kept: u64) -> impl Future<Output = Result<u64, SharedLogError>> + Send;

    /// Names this log for a data directory's marker (`mem:NAME`,
    /// `file:/abs/dir`, `nats:STREAM@CREATED`): two logs with the same
    /// identity hold the same entries at the same positions, so a node's
    /// copy of one is a copy of the other.
    fn identity(&self) -> String;

    /// Publishes a node's digest report to every node of this log
    /// ([`crate::divergence`]), beside the entries, never among them:
    /// positions and digests stay the entries'. At most once: a report
    /// lost only delays a comparison to the next one.
    fn publish_digest(
        &self,
        report: &DigestReport,
    ) -> impl Future<Output = Result<(), SharedLogError>> + Send;

    /// The digest reports published from now on, by every node (this
    /// one's included).
    fn digest_reports(&self) -> impl Future<Output = Result<Self::Reports, SharedLogError>> + Send;
}

/// The digest reports the nodes of a log publish, as they come.
pub trait DigestReports: Send + 'static {
    /// The next report; `None` once the log is closed. Reports are
    /// dropped rather than queued without bound when the reader lags.
    fn next(&mut self) -> impl Future<Output = Option<DigestReport>> + Send;
}

/// Hands over a log's entries in order, in bounded batches. Owns what it
/// reads from (`'static`), so it can read ahead on a task of its own
/// ([`crate::node::follow::Following::read_ahead`]).
pub trait Follower: Send + 'static {
    /// The next batch of at most `max` entries (at least one), waiting
    /// until there are entries or `through` moves. Cancel-safe: dropping
    /// the future while it waits loses nothing. Fails with
    /// [`SharedLogError::Trimmed`] if the log no longer holds a position
    /// this follower needs.
    fn next(&mut self, max: usize) -> impl Future<Output = Result<Batch, SharedLogError>> + Send;
}
