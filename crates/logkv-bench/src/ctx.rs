//! What the sections share: sizes, the data directory, the data sets built
//! so far (later sections reuse what earlier ones loaded) and the summary.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use logkv_fs::StdFs;
use logkv_store::{Durability, Limits, LogConfig, Store, StoreOptions};

use crate::data::KEY_BYTES;
use crate::report::Row;

/// How big each data set is and how long each timed run lasts.
#[derive(Debug, Clone)]
pub struct Sizes {
    /// Keys of the small-value data set.
    pub keys: usize,
    /// Values of the 1 MiB data set.
    pub large_values: usize,
    /// How long each `always` run lasts.
    pub always_run: Duration,
    /// Timed `fdatasync` calls.
    pub syncs: usize,
    /// Timed repetitions of the periodic load, the random reads and each
    /// replay (the median is reported, with the range).
    pub runs: usize,
    /// How long each timed write run of the NATS section lasts (after a
    /// warm-up of a fifth of it).
    pub nats_run: Duration,
    /// Concurrent writers of the NATS section's write runs.
    pub nats_writers: &'static [usize],
    /// Entries of the NATS section's catch-up stream.
    pub nats_entries: usize,
    /// Keys of the maintenance section's restart store.
    pub restart_keys: usize,
    /// Log sizes the restart part measures, in records per key.
    pub restart_passes: usize,
    /// Keys of the maintenance section's space and write-during-upkeep
    /// stores (each written once, then overwritten 4 times over).
    pub upkeep_keys: usize,
    /// How long the maintenance section's idle and checkpoint write windows last.
    pub upkeep_run: Duration,
    /// SETs of each footprint run through `logkv serve` (the overwrite run
    /// makes ten times as many over this many keys).
    pub footprint_writes: u64,
}

impl Sizes {
    /// The full run.
    pub fn full() -> Self {
        Self {
            keys: 1_000_000,
            large_values: 2_000,
            always_run: Duration::from_secs(3),
            syncs: 300,
            runs: 3,
            nats_run: Duration::from_secs(3),
            nats_writers: &[1, 16, 64],
            nats_entries: 50_000,
            restart_keys: 10_000_000,
            restart_passes: 3,
            upkeep_keys: 2_000_000,
            upkeep_run: Duration::from_secs(5),
            footprint_writes: 1_000_000,
        }
    }

    /// A smoke run that finishes in a few seconds.
    pub fn quick() -> Self {
        Self {
            keys: 20_000,
            large_values: 50,
            always_run: Duration::from_millis(200),
            syncs: 40,
            runs: 1,
            nats_run: Duration::from_secs(1),
            nats_writers: &[16],
            nats_entries: 5_000,
            restart_keys: 50_000,
            restart_passes: 3,
            upkeep_keys: 50_000,
            upkeep_run: Duration::from_millis(300),
            footprint_writes: 20_000,
        }
    }
}

/// What building the 1 MiB data set measured (reported by `large-write`).
#[derive(Debug, Clone)]
pub struct LargeWrite {
    /// Store directory holding the data set (closed).
    pub dir: PathBuf,
    /// Value bytes written.
    pub value_bytes: u64,
    /// Until the last `put` returned.
    pub acknowledged: Duration,
    /// Until the final sync returned.
    pub durable: Duration,
    /// The same bytes written to preallocated files with plain writes,
    /// synced every `flush_size_bytes`.
    pub raw: Duration,
    /// `fdatasync` calls the store made.
    pub syncs: u64,
}

/// Shared state of one run.
pub struct Ctx {
    /// The directory every data set lives under.
    pub root: PathBuf,
    /// Data set sizes.
    pub sizes: Sizes,
    /// Keys of the small-value data set, in insertion order.
    pub keys: Vec<[u8; KEY_BYTES]>,
    /// The small-value store as loaded by `periodic`, still open.
    pub store: Option<Store>,
    /// The `HashMap` baseline loaded by `periodic`.
    pub map: Option<HashMap<Vec<u8>, Vec<u8>>>,
    /// Set once the 1 MiB data set was written.
    pub large: Option<LargeWrite>,
    /// Every figure that has a target, for the closing summary.
    pub summary: Vec<(String, Row)>,
}

impl Ctx {
    /// Where the small-value store lives.
    pub fn keys_dir(&self) -> PathBuf {
        self.root.join("keys")
    }

    /// Closes the small-value store and drops the `HashMap`, so later
    /// sections can reopen the store and measure memory.
    pub fn close_loaded(&mut self) -> logkv_store::Result<()> {
        self.map = None;
        match self.store.take() {
            Some(s) => s.close(),
            None => Ok(()),
        }
    }
}

/// Store options: the real file system, 64 MiB segments, default limits.
pub fn options(durability: Durability) -> StoreOptions {
    StoreOptions {
        fs: Arc::new(StdFs),
        log: LogConfig { durability, ..LogConfig::default() },
        limits: Limits::default(),
        ..StoreOptions::default()
    }
}

/// Removes `dir` if it exists.
pub fn fresh(dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
