//! RocksDB through the `rocksdb` crate, set up the way the RocksDB wiki's
//! "Setup Options and Basic Tuning" page suggests for a single column
//! family, in two durability modes: every write synced before it returns
//! (`WriteOptions::set_sync(true)`), or written to the write-ahead log in
//! the OS page cache and never synced by the write itself.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use rocksdb::{
    BlockBasedOptions, Cache, CompactionPri, DBCompressionType, Direction, IteratorMode, Options,
    WriteOptions, DB,
};

use super::{Engine, EngineKind, Result};

/// The settings, for the report.
pub const SETTINGS: &str =
    "RocksDB 11.8 (rust-rocksdb 0.25), one column family, per the wiki's basic tuning: \
increase_parallelism(cores), bytes_per_sync 1 MiB, level_compaction_dynamic_level_bytes, \
compaction_pri MinOverlappingRatio, default memtables (64 MiB write buffer), no compression; \
block-based table with 16 KiB blocks, a 512 MiB LRU block cache, full 10-bit bloom filters, \
index and filter blocks in the cache with L0's pinned; `sync` = WriteOptions::set_sync(true) per put, \
`wal` = WAL on, sync off; close syncs the WAL and flushes the memtable";

/// Block cache capacity.
const BLOCK_CACHE: usize = 512 << 20;
/// Data block size (the wiki's suggestion over the 4 KiB default).
const BLOCK_SIZE: usize = 16 << 10;
/// Bloom filter bits per key.
const BLOOM_BITS: f64 = 10.0;
/// Background writes of SST files and the WAL are synced every this many bytes.
const BYTES_PER_SYNC: u64 = 1 << 20;

/// A RocksDB database and the durability of its writes.
pub struct Rocks {
    db: DB,
    sync: bool,
    /// Writes acknowledged so far (the tickets).
    acked: AtomicU64,
}

impl Rocks {
    /// Opens (or creates) the database in `dir`; `kind` picks the write options.
    pub fn open(kind: EngineKind, dir: &Path) -> Result<Self> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut options = Options::default();
        options.create_if_missing(true);
        options.increase_parallelism(i32::try_from(cores).unwrap_or(2));
        options.set_bytes_per_sync(BYTES_PER_SYNC);
        options.set_level_compaction_dynamic_level_bytes(true);
        options.set_compaction_pri(CompactionPri::MinOverlappingRatio);
        options.set_compression_type(DBCompressionType::None);

        let mut table = BlockBasedOptions::default();
        table.set_block_size(BLOCK_SIZE);
        table.set_block_cache(&Cache::new_lru_cache(BLOCK_CACHE));
        table.set_bloom_filter(BLOOM_BITS, false);
        table.set_cache_index_and_filter_blocks(true);
        table.set_pin_l0_filter_and_index_blocks_in_cache(true);
        options.set_block_based_table_factory(&table);

        // RocksDB makes only the last component of a missing path.
        std::fs::create_dir_all(dir)?;
        let db = DB::open(&options, dir)?;
        Ok(Self { db, sync: kind == EngineKind::RocksdbSync, acked: AtomicU64::new(0) })
    }
}

impl Engine for Rocks {
    fn put(&self, key: &[u8], value: &[u8]) -> Result<u64> {
        // `WriteOptions` is not `Sync`, so each put builds its own; that is
        // one small allocation next to a write-ahead log append.
        let mut write = WriteOptions::default();
        write.set_sync(self.sync);
        self.db.put_opt(key, value, &write)?;
        Ok(self.acked.fetch_add(1, Ordering::AcqRel) + 1)
    }

    fn put_many(&self, pairs: &[(Vec<u8>, Vec<u8>)]) -> Result<()> {
        let mut batch = rocksdb::WriteBatch::default();
        for (k, v) in pairs {
            batch.put(k, v);
        }
        let mut write = WriteOptions::default();
        write.set_sync(self.sync);
        self.db.write_opt(batch, &write)?;
        self.acked.fetch_add(pairs.len() as u64, Ordering::AcqRel);
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get(key)?)
    }

    fn scan(&self, start: &[u8], limit: usize) -> Result<Option<usize>> {
        let mut n = 0;
        for item in self.db.iterator(IteratorMode::From(start, Direction::Forward)).take(limit) {
            item?;
            n += 1;
        }
        Ok(Some(n))
    }

    fn persisted_through(&self) -> Option<u64> {
        // A synced put returns only after its WAL record is on disk, and its
        // ticket is drawn after that, so every ticket handed out is durable.
        self.sync.then(|| self.acked.load(Ordering::Acquire))
    }

    fn close(self: Box<Self>) -> Result<()> {
        self.db.flush_wal(true)?;
        self.db.flush()?;
        drop(self);
        Ok(())
    }
}
