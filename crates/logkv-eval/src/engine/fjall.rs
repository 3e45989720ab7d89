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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use parking_lot::Mutex;

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

/// What the writers and the sync thread share.
#[derive(Debug, Default)]
struct Shared {
    /// Writes acknowledged so far (the tickets).
    acked: AtomicU64,
    /// The newest ticket known to be synced.
    persisted: AtomicU64,
    stop: AtomicBool,
    /// The sync thread's error, if a sync failed; writes fail after it.
    failed: Mutex<Option<String>>,
}

/// A fjall database, its keyspace and, when buffered, its sync thread.
pub struct Fjall {
    db: Database,
    kv: Keyspace,
    sync_each_write: bool,
    shared: Arc<Shared>,
    syncer: Option<JoinHandle<()>>,
}

impl Fjall {
    /// Opens (or creates) the database in `dir`; `kind` picks the durability.
    pub fn open(kind: EngineKind, dir: &Path) -> Result<Self> {
        let db = Database::builder(dir).cache_size(CACHE).open()?;
        let kv = db.keyspace(KEYSPACE, KeyspaceCreateOptions::default)?;
        let shared = Arc::new(Shared::default());
        let sync_each_write = kind == EngineKind::FjallSync;
        let syncer = if sync_each_write {
            None
        } else {
            let (db, shared) = (db.clone(), Arc::clone(&shared));
            Some(std::thread::Builder::new().name("fjall-sync".into()).spawn(move || {
                while !shared.stop.load(Ordering::Acquire) {
                    std::thread::park_timeout(SYNC_INTERVAL);
                    if shared.stop.load(Ordering::Acquire) {
                        break;
                    }
                    // Every ticket drawn so far belongs to an insert that has
                    // returned, so its journal bytes are already in the OS.
                    let reach = shared.acked.load(Ordering::Acquire);
                    match db.persist(PersistMode::SyncData) {
                        Ok(()) => {
                            shared.persisted.fetch_max(reach, Ordering::AcqRel);
                        }
                        Err(e) => {
                            *shared.failed.lock() = Some(format!("fjall background sync failed: {e}"));
                            break;
                        }
                    }
                }
            })?)
        };
        Ok(Self { db, kv, sync_each_write, shared, syncer })
    }

    fn check(&self) -> Result<()> {
        match &*self.shared.failed.lock() {
            Some(why) => Err(why.clone().into()),
            None => Ok(()),
        }
    }

    fn stop_syncer(&mut self) -> Result<()> {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(t) = self.syncer.take() {
            t.thread().unpark();
            t.join().map_err(|_| "the fjall sync thread panicked")?;
        }
        Ok(())
    }
}

impl Engine for Fjall {
    fn put(&self, key: &[u8], value: &[u8]) -> Result<u64> {
        self.check()?;
        self.kv.insert(key, value)?;
        if self.sync_each_write {
            self.db.persist(PersistMode::SyncData)?;
        }
        Ok(self.shared.acked.fetch_add(1, Ordering::AcqRel) + 1)
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
        self.shared.acked.fetch_add(pairs.len() as u64, Ordering::AcqRel);
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
        let shared = &self.shared;
        // Synced writes draw their ticket after their sync returned.
        Some(if self.sync_each_write { &shared.acked } else { &shared.persisted }.load(Ordering::Acquire))
    }

    fn close(mut self: Box<Self>) -> Result<()> {
        self.stop_syncer()?;
        self.check()?;
        self.db.persist(PersistMode::SyncAll)?;
        Ok(())
    }
}

impl Drop for Fjall {
    fn drop(&mut self) {
        let _ = self.stop_syncer();
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
