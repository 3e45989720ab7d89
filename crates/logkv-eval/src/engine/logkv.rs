//! logkv's embedded store, run the way `logkv serve` runs it: defaults for
//! everything but durability, and a maintenance thread that takes
//! checkpoints and compactions when they are due.

use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use logkv_fs::{DynFs, StdFs};
use logkv_store::{Durability, ScanOptions, Store, StoreOptions, WriteBatch};

use super::{Engine, EngineKind, Result};

/// The settings, for the report.
pub const SETTINGS: &str = "defaults: 64 MiB segments, group commit, checkpoint every 256 MiB of log, \
compaction at 50% superseded bytes, all history retained; `periodic` = 1 s or 4 MiB window; \
a maintenance thread polls every second as `logkv serve` does";

/// How often the maintenance thread asks whether a checkpoint or a compaction is due.
const MAINTENANCE_TICK: Duration = Duration::from_secs(1);

/// A store and its maintenance thread, which holds only a weak reference
/// so that dropping the engine ends it.
pub struct Logkv {
    store: Arc<Store>,
    synced: bool,
    stop: Arc<AtomicBool>,
    maintenance: JoinHandle<()>,
}

impl Logkv {
    /// Opens the store in `dir` with the durability `kind` names.
    pub fn open(kind: EngineKind, dir: &Path) -> Result<Self> {
        Self::open_on(kind, Arc::new(StdFs), dir)
    }

    /// Opens the store in `dir` on `fs` (the fault-injecting file system in
    /// the power-loss trials), otherwise exactly as [`Logkv::open`].
    pub fn open_on(kind: EngineKind, fs: DynFs, dir: &Path) -> Result<Self> {
        let mut options = StoreOptions { fs, ..StoreOptions::default() };
        options.log.durability = match kind {
            EngineKind::LogkvAlways => Durability::Always,
            EngineKind::LogkvPeriodic => Durability::periodic_default(),
            _ => Durability::None,
        };
        let store = Arc::new(Store::open(dir, options)?);
        let stop = Arc::new(AtomicBool::new(false));
        let maintenance = {
            let (weak, stop) = (Arc::downgrade(&store), Arc::clone(&stop));
            std::thread::Builder::new().name("maintenance".into()).spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    std::thread::park_timeout(MAINTENANCE_TICK);
                    let Some(store) = weak.upgrade() else { break };
                    if let Err(e) = store.maintain() {
                        eprintln!("logkv maintenance: {e}");
                    }
                }
            })?
        };
        Ok(Self { store, synced: kind != EngineKind::LogkvNone, stop, maintenance })
    }
}

impl Engine for Logkv {
    fn put(&self, key: &[u8], value: &[u8]) -> Result<u64> {
        Ok(self.store.put(key, value)?)
    }

    fn put_many(&self, pairs: &[(Vec<u8>, Vec<u8>)]) -> Result<()> {
        let mut batch = WriteBatch::new();
        for (k, v) in pairs {
            batch.put(k.as_slice(), v.as_slice());
        }
        self.store.write(&batch)?;
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.store.get(key)?.map(|v| v.data))
    }

    fn scan(&self, start: &[u8], limit: usize) -> Result<Option<usize>> {
        let options =
            ScanOptions { start: Bound::Included(start.to_vec()), limit: Some(limit), ..Default::default() };
        let mut n = 0;
        for item in self.store.scan(options) {
            item?;
            n += 1;
        }
        Ok(Some(n))
    }

    fn persisted_through(&self) -> Option<u64> {
        self.synced.then(|| self.store.synced_version())
    }

    fn close(self: Box<Self>) -> Result<()> {
        let Logkv { store, stop, maintenance, .. } = *self;
        stop.store(true, Ordering::Release);
        maintenance.thread().unpark();
        maintenance.join().map_err(|_| "the maintenance thread panicked")?;
        let store = Arc::into_inner(store).ok_or("the store is still shared")?;
        Ok(store.close()?)
    }
}
