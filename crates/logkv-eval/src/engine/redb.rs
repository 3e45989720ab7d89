//! redb (a copy-on-write B-tree in one file) with one table, every put its
//! own write transaction committed with the default durability,
//! `Durability::Immediate`: the commit returns once the data is synced.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use redb::{Database, ReadableDatabase, TableDefinition};

use super::{Engine, Result};

/// The settings, for the report.
pub const SETTINGS: &str = "redb 4.5, one table of byte-string keys and values in one file, defaults \
(4 KiB pages, exclusive writer, two-phase commit off) but a 512 MiB cache; every put is its own write \
transaction committed with the default Durability::Immediate; reads run in read transactions";

/// Cache capacity (the default is 1 GiB; 512 MiB matches the other peers).
const CACHE: usize = 512 << 20;
/// The database file inside the engine's directory.
const FILE: &str = "data.redb";
/// The one table.
const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");

/// A redb database.
pub struct Redb {
    db: Database,
    /// Writes acknowledged so far (the tickets).
    acked: AtomicU64,
}

impl Redb {
    /// Opens (or creates) the database file in `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let db = Database::builder().set_cache_size(CACHE).create(dir.join(FILE))?;
        // Create the table up front, so read transactions always find it.
        let tx = db.begin_write()?;
        tx.open_table(TABLE)?;
        tx.commit()?;
        Ok(Self { db, acked: AtomicU64::new(0) })
    }
}

impl Engine for Redb {
    fn put(&self, key: &[u8], value: &[u8]) -> Result<u64> {
        let tx = self.db.begin_write()?;
        tx.open_table(TABLE)?.insert(key, value)?;
        tx.commit()?;
        Ok(self.acked.fetch_add(1, Ordering::AcqRel) + 1)
    }

    fn put_many(&self, pairs: &[(Vec<u8>, Vec<u8>)]) -> Result<()> {
        let tx = self.db.begin_write()?;
        {
            let mut table = tx.open_table(TABLE)?;
            for (k, v) in pairs {
                table.insert(k.as_slice(), v.as_slice())?;
            }
        }
        tx.commit()?;
        self.acked.fetch_add(pairs.len() as u64, Ordering::AcqRel);
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(TABLE)?;
        Ok(table.get(key)?.map(|v| v.value().to_vec()))
    }

    fn scan(&self, start: &[u8], limit: usize) -> Result<Option<usize>> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(TABLE)?;
        let mut n = 0;
        for item in table.range(start..)?.take(limit) {
            item?;
            n += 1;
        }
        Ok(Some(n))
    }

    fn persisted_through(&self) -> Option<u64> {
        // A commit with immediate durability returns after its sync, and the
        // ticket is drawn after that, so every ticket handed out is durable.
        Some(self.acked.load(Ordering::Acquire))
    }

    fn close(self: Box<Self>) -> Result<()> {
        // Every commit was already synced; dropping the database releases
        // its file lock.
        drop(self);
        Ok(())
    }
}
