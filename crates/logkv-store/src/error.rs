//! Errors of the store layer.

use std::path::PathBuf;

use logkv_log::LogError;

/// Everything a store operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A limit was exceeded; nothing was written.
    #[error("{what} exceeded: got {got}, limit {limit}")]
    LimitExceeded {
        /// The limit's name, as in the configuration.
        what: &'static str,
        /// The limit.
        limit: u64,
        /// What was given.
        got: u64,
    },
    /// Keys must have at least one byte.
    #[error("keys must not be empty")]
    EmptyKey,
    /// Another process holds the data directory.
    #[error("data directory {dir} is in use: {holder}")]
    Locked {
        /// The data directory.
        dir: PathBuf,
        /// Who holds it (pid and command).
        holder: String,
    },
    /// A record that passed its checksum is not a valid batch.
    #[error("corrupt batch at position {position}: {detail}")]
    BadRecord {
        /// The record's position.
        position: u64,
        /// What was wrong.
        detail: String,
    },
    /// A version record's checksum (CRC32C of its key and value) does not
    /// match the bytes read: the value is not returned.
    #[error("checksum mismatch in {file} at offset {offset}: {detail}")]
    Checksum {
        /// The file holding the version record.
        file: PathBuf,
        /// Byte offset of the version record in it.
        offset: u64,
        /// What was read.
        detail: String,
    },
    /// Version records given to the store contradict each other or the log
    /// (a key outside the format, a reference outside the entry, versions
    /// out of order); nothing was written.
    #[error("invalid records: {0}")]
    Invalid(String),
    /// The write would break the order of versions or positions: its
    /// versions do not exceed every version already in the log, or it
    /// would not get the position the caller numbered it for. Nothing was
    /// written. (The plain API's batches, versioned by position, cannot
    /// follow applied entries, versioned `position << 16 | index`.)
    #[error("out of order: {0}")]
    OutOfOrder(String),
    /// The read asks for a version whose data compaction dropped under the
    /// retention settings (like etcd's "required revision has been
    /// compacted"): never answered with a wrong value.
    #[error("version {version} was compacted: history is kept from version {oldest} on")]
    Compacted {
        /// The version asked for.
        version: u64,
        /// The oldest version still readable for this read.
        oldest: u64,
    },
    /// What was asked for is older than what the store still holds.
    #[error("not retained: {0}")]
    NotRetained(String),
    /// The configuration is not usable.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// An error of the log below (corruption, I/O, read-only after a failed sync).
    #[error(transparent)]
    Log(#[from] LogError),
}

impl StoreError {
    /// Whether the data on disk is damaged (as opposed to bad input or I/O).
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            Self::BadRecord { .. } | Self::Checksum { .. } | Self::Log(LogError::Corruption { .. })
        )
    }
}

/// Shorthand for results of this layer.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
