//! How a log is written and recovered, chosen by the user at open.

use std::fmt;
use std::time::Duration;

/// When a write counts as done (see the durability contract in `docs/durability.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Acknowledged once its bytes are fdatasync'd; concurrent writers share
    /// one write and one sync (group commit). Nothing acknowledged is lost.
    Always,
    /// Acknowledged once it is in the in-process buffer; the buffer is written
    /// and synced every `flush_interval` or as soon as it holds
    /// `flush_size_bytes`, whichever comes first. At most one window is lost.
    Periodic {
        /// Longest time a write waits in the buffer.
        flush_interval: Duration,
        /// Buffered bytes that trigger a flush before the interval ends.
        flush_size_bytes: usize,
    },
    /// Acknowledged once written to the OS page cache; never synced by logkv
    /// (except at a clean close). Survives `kill -9`, not power loss.
    None,
}

/// A durability mode as users name it (`always`, `periodic`, `none`), in
/// flags, configuration files and reports; [`Durability::new`] adds the
/// periodic settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DurabilityMode {
    /// Acknowledge after fdatasync; nothing acknowledged is ever lost.
    Always,
    /// Acknowledge from the buffer; sync every interval or size threshold.
    Periodic,
    /// Acknowledge once written to the OS; never sync.
    None,
}

impl fmt::Display for DurabilityMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DurabilityMode::Always => "always",
            DurabilityMode::Periodic => "periodic",
            DurabilityMode::None => "none",
        })
    }
}

impl Durability {
    /// The durability a mode names; `flush_interval` and `flush_size_bytes`
    /// matter only to `periodic`.
    pub fn new(mode: DurabilityMode, flush_interval: Duration, flush_size_bytes: usize) -> Self {
        match mode {
            DurabilityMode::Always => Durability::Always,
            DurabilityMode::Periodic => Durability::Periodic { flush_interval, flush_size_bytes },
            DurabilityMode::None => Durability::None,
        }
    }

    /// `periodic` with the defaults: 1,000 ms and 4 MiB.
    pub fn periodic_default() -> Self {
        Self::Periodic { flush_interval: Duration::from_millis(1000), flush_size_bytes: 4 << 20 }
    }

    /// The mode, without its settings.
    pub fn mode(&self) -> DurabilityMode {
        match self {
            Durability::Always => DurabilityMode::Always,
            Durability::Periodic { .. } => DurabilityMode::Periodic,
            Durability::None => DurabilityMode::None,
        }
    }
}

/// What recovery does with a damaged frame that is not a torn tail; users
/// name it `strict` or `truncate`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
pub enum RecoveryMode {
    /// Stop with a `Corruption` error naming file and offset (default).
    #[default]
    #[serde(rename = "strict")]
    Strict,
    /// Keep the log up to the first damage and drop everything after it,
    /// reporting what was dropped. Only on the user's explicit request.
    #[value(name = "truncate")]
    #[serde(rename = "truncate")]
    TruncateAtCorruption,
}

impl fmt::Display for RecoveryMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecoveryMode::Strict => "strict",
            RecoveryMode::TruncateAtCorruption => "truncate",
        })
    }
}

/// Options of a file log.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Capacity of a segment file; a record larger than this gets a segment of its own.
    pub segment_size_bytes: u64,
    /// The durability mode.
    pub durability: Durability,
    /// How recovery treats mid-log damage.
    pub recovery: RecoveryMode,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { segment_size_bytes: 64 << 20, durability: Durability::Always, recovery: RecoveryMode::Strict }
    }
}
