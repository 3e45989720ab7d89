//! Errors of the log layer.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in the file log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A checksum or sequence check failed before the tail of the log.
    #[error("corruption in {file} at offset {offset}: {detail}")]
    Corruption {
        /// The segment file.
        file: PathBuf,
        /// Byte offset of the damaged frame or header.
        offset: u64,
        /// What was wrong.
        detail: String,
    },
    /// A file was written by a newer logkv; we refuse to guess at it.
    #[error("{file} uses {what} {found}, but this logkv understands at most {supported}; upgrade logkv")]
    TooNew {
        /// The file.
        file: PathBuf,
        /// What is versioned ("format version", "record type").
        what: &'static str,
        /// The version or type found.
        found: u32,
        /// The newest this code reads.
        supported: u32,
    },
    /// A file was written by an older logkv in a format this one no longer
    /// reads.
    #[error("{file} uses format version {found}, which this logkv no longer reads (it reads {supported}); open it with the logkv that wrote it and export it")]
    TooOld {
        /// The file.
        file: PathBuf,
        /// The version found.
        found: u32,
        /// The version this code reads.
        supported: u32,
    },
    /// A data directory of the format before this one, which
    /// `logkv migrate` converts.
    #[error("{file}: this data directory was written by an older logkv (format {found}); migrate it with `logkv migrate --data-dir {dir} --out NEW_DIR`")]
    NeedsMigration {
        /// The segment file that told.
        file: PathBuf,
        /// Its data directory.
        dir: PathBuf,
        /// The format version found.
        found: u32,
    },
    /// An earlier write or fsync failed; the log refuses writes until reopened.
    #[error("the log is read-only after a failed {0}; reopen it to recover")]
    ReadOnly(String),
    /// A configured or format limit was exceeded; nothing was written.
    #[error("{what} is {got} bytes, over the limit of {limit}")]
    LimitExceeded {
        /// The limit's name.
        what: &'static str,
        /// The limit.
        limit: u64,
        /// The size given.
        got: u64,
    },
    /// The configuration cannot work.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A record's version tag is below the one before it (see
    /// `FileLog::append`): a caller's bug when appending, damage when
    /// replaying.
    #[error("record {position} has version {version}, below the {previous} of the record before it")]
    VersionOrder {
        /// The record's position.
        position: u64,
        /// Its version tag.
        version: u64,
        /// The tag of the record before it.
        previous: u64,
    },
    /// The log was closed.
    #[error("the log is closed")]
    Closed,
    /// An I/O error, with the file it concerns.
    #[error("I/O error on {file}: {source}")]
    Io {
        /// The file or directory.
        file: PathBuf,
        /// The error.
        source: io::Error,
    },
}

impl LogError {
    /// The error for a segment `file` of an older format `found`.
    pub(crate) fn too_old(file: &std::path::Path, found: u16) -> Self {
        if found == crate::format::MIGRATABLE_VERSION {
            let dir = file.parent().unwrap_or(std::path::Path::new(".")).to_path_buf();
            return Self::NeedsMigration { file: file.to_path_buf(), dir, found: found.into() };
        }
        Self::TooOld {
            file: file.to_path_buf(),
            found: found.into(),
            supported: crate::format::FORMAT_VERSION.into(),
        }
    }

    /// Wraps an I/O error with the file it happened on.
    pub fn io(file: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io { file: file.into(), source }
    }
}

/// Shorthand for results of this layer.
pub type Result<T, E = LogError> = std::result::Result<T, E>;
