//! fjall (an LSM-tree in Rust) with one keyspace, in two durability modes:
//! every write followed by `Database::persist(PersistMode::SyncData)`, or
//! writes left in the OS page cache (fjall's default: each write reaches the
//! OS, none is synced) and synced once a second.
//!
//! fjall 2 synced the journal on a timer of its own (`fsync_ms`); fjall 3
//! dropped that option and leaves syncing to the application, so the
//! buffered mode runs the timer here: a thread that persists with
//! `SyncData` one second after the previous sync ended. Because this code
//! runs the syncs, it knows how far they reach and reports it.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};

use super::ticker::Ticker;
use super::{Engine, EngineKind, Result};

/// The settings, for the report.
pub const SETTINGS: &str = "fjall 3.1, one keyspace with default options (4 KiB blocks, bloom filters), \
built without LZ4 so nothing is compressed, 512 MiB block cache, default worker threads (min(cores, 4)) \
and journal limit (512 MiB); `sync` = persist(SyncData) after every insert; `buffered` = inserts reach \
the OS and a thread persists with SyncData 1 s after the previous sync ended (fjall 3 has no fsync_ms \
of its own); close persists with SyncAll";

/// Block cache capacity.
const CACHE: u64 = 512 << 20;
/// Time between the end of one background sync and the start of the next.
const SYNC_INTERVAL: Duration = Duration::from_millis(1000);
/// The keyspace's name.
const KEYSPACE: &str = "kv";

/// Tickets: writes acknowledged, and the newest known to be synced.
#[derive(Debug, Default)]
struct Tickets {
    acked: AtomicU64,
    persisted: AtomicU64,
}

/// A fjall database, its keyspace and, when buffered, its sync thread.
pub struct Fjall {
    db: Database,
    kv: Keyspace,
    sync_each_write: bool,
    tickets: Arc<Tickets>,
    syncer: Option<Ticker>,
}

impl Fjall {
    /// Opens (or creates) the database in `dir`; `kind` picks the durability.
    pub fn open(kind: EngineKind, dir: &Path) -> Result<Self> {
        let db = Database::builder(dir).cache_size(CACHE).open()?;
        let kv = db.keyspace(KEYSPACE, KeyspaceCreateOptions::default)?;
        let tickets = Arc::new(Tickets::default());
        let sync_each_write = kind == EngineKind::FjallSync;
        let syncer = if sync_each_write {
            None
        } else {
            let (db, tickets) = (db.clone(), Arc::clone(&tickets));
            Some(Ticker::start("fjall-sync", "fjall background sync", SYNC_INTERVAL, move || {
                // Every ticket drawn so far belongs to an insert that has
                // returned, so its journal bytes are already in the OS.
                let reach = tickets.acked.load(Ordering::Acquire);
                db.persist(PersistMode::SyncData)?;
                tickets.persisted.fetch_max(reach, Ordering::AcqRel);
                Ok(())
            })?)
        };
        Ok(Self { db, kv, sync_each_write, tickets, syncer })
    }

    fn check(&self) -> Result<()> {
        self.syncer.as_ref().map_or(Ok(()), Ticker::check)
    }
}

impl Engine for Fjall {
    fn put(&self, key: &[u8], value: &[u8]) -> Result<u64> {
        self.check()?;
        self.kv.insert(key, value)?;
        if self.sync_each_write {
            self.db.persist(PersistMode::SyncData)?;
        }
        Ok(self.tickets.acked.fetch_add(1, Ordering::AcqRel) + 1)
    }

    fn put_many(&self, pairs: &[(Vec<u8>, Vec<u8>)]) -> Result<()> {
        self.check()?;
        let mut batch = self.db.batch();
        for (k, v) in pairs {
            batch.insert(&self.kv, k.as_slice(), v.as_slice());
        }
        batch.commit()?;
        if self.sync_each_write {
            self.db.persist(PersistMode::SyncData)?;
        }
        self.tickets.acked.fetch_add(pairs.len() as u64, Ordering::AcqRel);
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.kv.get(key)?.map(|v| v.to_vec()))
    }

    fn scan(&self, start: &[u8], limit: usize) -> Result<Option<usize>> {
        let mut n = 0;
        for item in self.kv.range(start..).take(limit) {
            item.into_inner()?;
            n += 1;
        }
        Ok(Some(n))
    }

    fn persisted_through(&self) -> Option<u64> {
        let tickets = &self.tickets;
        // Synced writes draw their ticket after their sync returned.
        Some(if self.sync_each_write { &tickets.acked } else { &tickets.persisted }.load(Ordering::Acquire))
    }

    fn close(mut self: Box<Self>) -> Result<()> {
        if let Some(syncer) = &mut self.syncer {
            syncer.stop()?;
        }
        self.check()?;
        self.db.persist(PersistMode::SyncAll)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_buffered_mode_reports_its_background_syncs() {
        let dir = tempfile::tempdir().unwrap();
        let e = Box::new(Fjall::open(EngineKind::FjallBuffered, dir.path()).unwrap());
        let mut ticket = 0;
        for i in 0..10u32 {
            ticket = e.put(&i.to_be_bytes(), b"v").unwrap();
        }
        let deadline = std::time::Instant::now() + 5 * SYNC_INTERVAL;
        while e.persisted_through() < Some(ticket) {
            assert!(std::time::Instant::now() < deadline, "no background sync reached ticket {ticket}");
            std::thread::sleep(SYNC_INTERVAL / 10);
        }
        e.close().unwrap();
    }
}
