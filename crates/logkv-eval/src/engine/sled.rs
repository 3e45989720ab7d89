//! sled 0.34 with its defaults: a write is acknowledged once it is in
//! sled's memory, and a background thread flushes to disk every 500 ms
//! (`flush_every_ms`). sled's README calls it beta and warns that its
//! on-disk format will change before 1.0; it gives no durable watermark, so
//! this adapter cannot say how far a flush reached.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{Engine, Result};

/// The settings, for the report.
pub const SETTINGS: &str = "sled 0.34.7, default tree and Config (LowSpace mode, no compression, \
flush_every_ms 500: writes are not durable until the background flush or an explicit flush) but a \
512 MiB cache; beta per its README, on-disk format unstable before 1.0; close flushes";

/// Page cache capacity (the default is 1 GiB; 512 MiB matches the other peers).
const CACHE: u64 = 512 << 20;

/// How long opening waits for a previous instance in this process to let go
/// of the directory's lock.
const LOCK_WAIT: Duration = Duration::from_secs(5);

/// A sled database.
pub struct Sled {
    db: sled::Db,
    /// Writes acknowledged so far (the tickets).
    acked: AtomicU64,
}

impl Sled {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        let config = sled::Config::new().path(dir).cache_capacity(CACHE);
        // Dropping a sled database returns before its flusher thread has
        // exited and released the directory's lock (sled issues 1234 and
        // 1289), so a reopen in the same process can find the lock still
        // held for a moment. sled reports that only in the error's text.
        let deadline = Instant::now() + LOCK_WAIT;
        loop {
            match config.open() {
                Ok(db) => return Ok(Self { db, acked: AtomicU64::new(0) }),
                Err(sled::Error::Io(e))
                    if e.to_string().contains("could not acquire lock") && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl Engine for Sled {
    fn put(&self, key: &[u8], value: &[u8]) -> Result<u64> {
        self.db.insert(key, value)?;
        Ok(self.acked.fetch_add(1, Ordering::AcqRel) + 1)
    }

    fn put_many(&self, pairs: &[(Vec<u8>, Vec<u8>)]) -> Result<()> {
        let mut batch = sled::Batch::default();
        for (k, v) in pairs {
            batch.insert(k.as_slice(), v.as_slice());
        }
        self.db.apply_batch(batch)?;
        self.acked.fetch_add(pairs.len() as u64, Ordering::AcqRel);
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get(key)?.map(|v| v.to_vec()))
    }

    fn scan(&self, start: &[u8], limit: usize) -> Result<Option<usize>> {
        let mut n = 0;
        for item in self.db.range(start..).take(limit) {
            item?;
            n += 1;
        }
        Ok(Some(n))
    }

    fn persisted_through(&self) -> Option<u64> {
        None
    }

    fn close(self: Box<Self>) -> Result<()> {
        self.db.flush()?;
        drop(self);
        Ok(())
    }
}
