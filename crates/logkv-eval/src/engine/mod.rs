//! The engines under test, behind one trait, and what each promises when it
//! acknowledges a write.
//!
//! Every engine is opened from an [`EngineKind`] and a directory, so the
//! harness can run it in a child process of its own (for clean memory and
//! I/O counters, and so it can be killed with `kill -9`) and reopen it after.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

#[cfg(feature = "fjall")]
mod fjall;
mod logkv;
mod naive;
#[cfg(feature = "redb")]
mod redb;
#[cfg(feature = "rocksdb")]
mod rocksdb;
#[cfg(feature = "sled")]
mod sled;
mod ticker;

pub use self::logkv::Logkv;
pub use self::naive::{Naive, SNAPSHOT_INTERVAL as NAIVE_SNAPSHOT_INTERVAL};

/// Errors of any engine, as text plus source: the harness only reports them.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
/// Result of an engine call.
pub type Result<T> = std::result::Result<T, Error>;

/// A key-value engine as the workloads see it. Implementations are shared by
/// all client threads of a run.
pub trait Engine: Send + Sync {
    /// Sets `key` to `value`; returns once the engine acknowledges the write
    /// under its [`Promise`], with a ticket for [`Engine::persisted_through`].
    fn put(&self, key: &[u8], value: &[u8]) -> Result<u64>;
    /// Writes many pairs, for untimed preloading: engines with a batch write
    /// use it (atomicity is not needed, speed is); returns once acknowledged.
    fn put_many(&self, pairs: &[(Vec<u8>, Vec<u8>)]) -> Result<()> {
        pairs.iter().try_for_each(|(k, v)| self.put(k, v).map(drop))
    }
    /// The value of `key`, if any.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Reads up to `limit` pairs in key order from `start` (inclusive) and
    /// returns how many it read; `None` if the engine keeps no key order.
    fn scan(&self, start: &[u8], limit: usize) -> Result<Option<usize>>;
    /// The newest ticket known to be on stable storage: every write with a
    /// ticket at most this survives a power loss now. `None` when the engine
    /// cannot tell (it leaves syncing to the OS or to a thread it does not
    /// report on).
    fn persisted_through(&self) -> Option<u64>;
    /// Clean shutdown: makes everything durable and releases the directory.
    fn close(self: Box<Self>) -> Result<()>;
}

/// What an acknowledged write is guaranteed to survive: rows are compared
/// only within a class, and every row is labelled with its promise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Promise {
    /// On stable storage before the write returns: survives power loss.
    Synced,
    /// Synced within a bounded window after it returns (time or size).
    Window,
    /// Written to the OS before it returns, never synced by the engine
    /// itself: survives `kill -9`, not power loss.
    OsCache,
}

impl Promise {
    /// Short label for tables.
    pub fn label(self) -> &'static str {
        match self {
            Promise::Synced => "synced before ack",
            Promise::Window => "synced within a window",
            Promise::OsCache => "OS page cache",
        }
    }
}

/// Every engine (and mode) the harness knows; peers only when their feature
/// is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum EngineKind {
    /// logkv, `always`: acknowledged after fdatasync, group commit.
    LogkvAlways,
    /// logkv, `periodic`: 1 s or 4 MiB window.
    LogkvPeriodic,
    /// logkv, `none`: written to the OS, never synced.
    LogkvNone,
    /// `HashMap` behind a lock, a full snapshot every [`naive::SNAPSHOT_INTERVAL`].
    Naive,
    /// RocksDB, `WriteOptions::set_sync(true)`.
    RocksdbSync,
    /// RocksDB, write-ahead log on, no sync.
    RocksdbWal,
    /// fjall, `PersistMode::SyncData` after every write.
    FjallSync,
    /// fjall, journal buffered, synced 1 s after the previous sync by the
    /// adapter's thread (fjall 3 has no background fsync of its own).
    FjallBuffered,
    /// redb, every write its own transaction with `Durability::Immediate`.
    RedbImmediate,
    /// sled, defaults (flushes every 500 ms; see its durability caveat).
    Sled,
}

impl EngineKind {
    /// Every kind, in table order.
    pub const ALL: [EngineKind; 10] = [
        EngineKind::LogkvAlways,
        EngineKind::LogkvPeriodic,
        EngineKind::LogkvNone,
        EngineKind::Naive,
        EngineKind::RocksdbSync,
        EngineKind::RocksdbWal,
        EngineKind::FjallSync,
        EngineKind::FjallBuffered,
        EngineKind::RedbImmediate,
        EngineKind::Sled,
    ];

    /// The name used on the command line and in run records.
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::LogkvAlways => "logkv-always",
            EngineKind::LogkvPeriodic => "logkv-periodic",
            EngineKind::LogkvNone => "logkv-none",
            EngineKind::Naive => "naive",
            EngineKind::RocksdbSync => "rocksdb-sync",
            EngineKind::RocksdbWal => "rocksdb-wal",
            EngineKind::FjallSync => "fjall-sync",
            EngineKind::FjallBuffered => "fjall-buffered",
            EngineKind::RedbImmediate => "redb-immediate",
            EngineKind::Sled => "sled",
        }
    }

    /// What an acknowledged write survives.
    pub fn promise(self) -> Promise {
        match self {
            EngineKind::LogkvAlways
            | EngineKind::RocksdbSync
            | EngineKind::FjallSync
            | EngineKind::RedbImmediate => Promise::Synced,
            EngineKind::LogkvPeriodic | EngineKind::Naive | EngineKind::FjallBuffered | EngineKind::Sled => {
                Promise::Window
            }
            EngineKind::LogkvNone | EngineKind::RocksdbWal => Promise::OsCache,
        }
    }

    /// The settings the engine runs with, for the report.
    pub fn settings(self) -> &'static str {
        match self {
            EngineKind::LogkvAlways | EngineKind::LogkvPeriodic | EngineKind::LogkvNone => logkv::SETTINGS,
            EngineKind::Naive => naive::SETTINGS,
            #[cfg(feature = "rocksdb")]
            EngineKind::RocksdbSync | EngineKind::RocksdbWal => rocksdb::SETTINGS,
            #[cfg(feature = "fjall")]
            EngineKind::FjallSync | EngineKind::FjallBuffered => fjall::SETTINGS,
            #[cfg(feature = "redb")]
            EngineKind::RedbImmediate => redb::SETTINGS,
            #[cfg(feature = "sled")]
            EngineKind::Sled => sled::SETTINGS,
            #[allow(unreachable_patterns)]
            _ => "(not built: enable the engine's feature)",
        }
    }

    /// Whether this binary was built with the engine.
    pub fn available(self) -> bool {
        match self {
            EngineKind::LogkvAlways
            | EngineKind::LogkvPeriodic
            | EngineKind::LogkvNone
            | EngineKind::Naive => true,
            EngineKind::RocksdbSync | EngineKind::RocksdbWal => cfg!(feature = "rocksdb"),
            EngineKind::FjallSync | EngineKind::FjallBuffered => cfg!(feature = "fjall"),
            EngineKind::RedbImmediate => cfg!(feature = "redb"),
            EngineKind::Sled => cfg!(feature = "sled"),
        }
    }

    /// Whether the engine is logkv itself.
    pub fn is_logkv(self) -> bool {
        matches!(self, EngineKind::LogkvAlways | EngineKind::LogkvPeriodic | EngineKind::LogkvNone)
    }

    /// Opens (or creates) the engine's data in `dir`, recovering what a
    /// previous process left there.
    pub fn open(self, dir: &Path) -> Result<Box<dyn Engine>> {
        match self {
            EngineKind::LogkvAlways | EngineKind::LogkvPeriodic | EngineKind::LogkvNone => {
                Ok(Box::new(logkv::Logkv::open(self, dir)?))
            }
            EngineKind::Naive => Ok(Box::new(Naive::open_std(dir, naive::SNAPSHOT_INTERVAL)?)),
            #[cfg(feature = "rocksdb")]
            EngineKind::RocksdbSync | EngineKind::RocksdbWal => {
                Ok(Box::new(rocksdb::Rocks::open(self, dir)?))
            }
            #[cfg(feature = "fjall")]
            EngineKind::FjallSync | EngineKind::FjallBuffered => Ok(Box::new(fjall::Fjall::open(self, dir)?)),
            #[cfg(feature = "redb")]
            EngineKind::RedbImmediate => Ok(Box::new(redb::Redb::open(dir)?)),
            #[cfg(feature = "sled")]
            EngineKind::Sled => Ok(Box::new(sled::Sled::open(dir)?)),
            #[allow(unreachable_patterns)]
            _ => Err(format!("{self} was not built: rebuild logkv-eval with `--features peers`").into()),
        }
    }
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for EngineKind {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Self::ALL.into_iter().find(|k| k.name() == s).ok_or_else(|| {
            let names: Vec<_> = Self::ALL.iter().map(|k| k.name()).collect();
            format!("unknown engine {s:?}; one of: {}", names.join(", "))
        })
    }
}
