//! logkv's embedded log: segment files of CRC-framed records with strictly
//! increasing positions, written with group commit under a user-chosen
//! durability mode, and recovered with torn-tail truncation.
//!
//! The byte layout is in [`format`](mod@format) and `docs/format.md`.

mod commit;
mod config;
mod error;
pub mod format;
pub mod inspect;
mod locate;
mod log;
mod recovery;
mod segment;
mod stats;
mod sync_failure;

pub use config::{Durability, DurabilityMode, LogConfig, RecoveryMode};
pub use error::{LogError, Result};
pub use format::{Loc, RecordType};
pub use locate::{RecordMeta, MARK_EVERY_BYTES};
pub use log::{FileLog, FirstRecord, LogHandle, RollPoint, SegmentInfo};
pub use recovery::{Durable, RecordRef, RecoveryReport, ReplayStart, SegmentExtent, Truncation};
pub use segment::Segment;
pub use stats::{LogStats, LogStatsSnapshot};
pub use sync_failure::MARKER as SYNC_FAILED_MARKER;
