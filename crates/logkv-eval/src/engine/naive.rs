//! The naive baseline: a `std::collections::HashMap` behind a lock, made
//! durable by a background thread that writes a full snapshot every
//! interval (temporary file, sync, rename, directory sync) and recovered by
//! loading the newest snapshot.
//!
//! A snapshot copies the whole map into one buffer under the read lock (so
//! writers stall for a memory copy, not for the disk), then writes and
//! syncs the buffer with the lock released. Peak memory is therefore about
//! twice the data while a snapshot is being written; that is the naive
//! design's price, not an accident of this code.
//!
//! It runs on a [`logkv_fs::FileSystem`], so the fault-injecting file system
//! can drop what was not synced and show what a power loss costs it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use logkv_fs::{DynFs, StdFs};
use parking_lot::RwLock;

use super::ticker::Ticker;
use super::{Engine, Result};

/// Time between the end of one snapshot and the start of the next.
pub const SNAPSHOT_INTERVAL: Duration = Duration::from_millis(1000);

/// The settings, for the report.
pub const SETTINGS: &str = "std HashMap (SipHash) behind a parking_lot RwLock; a full snapshot 1 s after \
the previous one ended (copy under the read lock, then write, fdatasync, rename, directory fsync); \
recovery loads the newest snapshot";

const SNAPSHOT: &str = "snapshot.bin";
const TEMPORARY: &str = "snapshot.tmp";
const MAGIC: &[u8; 8] = b"NAIVEKV1";
/// Bytes written per call when storing a snapshot.
const WRITE_CHUNK: usize = 8 << 20;

/// The data, and the ticket of the newest write to it.
type Map = (HashMap<Vec<u8>, Vec<u8>>, u64);

/// The map and what the snapshot thread shares with writers.
#[derive(Debug, Default)]
struct Shared {
    /// The data; the second field counts writes (the tickets).
    map: RwLock<Map>,
    /// Ticket of the newest write inside the newest durable snapshot.
    persisted: AtomicU64,
}

/// The baseline engine.
#[derive(Debug)]
pub struct Naive {
    shared: Arc<Shared>,
    fs: DynFs,
    dir: PathBuf,
    snapshots: Ticker,
}

impl Naive {
    /// Opens the baseline in `dir` on the real file system.
    pub fn open_std(dir: &Path, interval: Duration) -> Result<Self> {
        Self::open(Arc::new(StdFs), dir, interval)
    }

    /// Opens the baseline in `dir` on `fs`, loading the newest snapshot.
    pub fn open(fs: DynFs, dir: &Path, interval: Duration) -> Result<Self> {
        fs.create_dir_all(dir)?;
        let map =
            if fs.exists(&dir.join(SNAPSHOT)) { load(&fs, &dir.join(SNAPSHOT))? } else { HashMap::new() };
        let shared = Arc::new(Shared { map: RwLock::new((map, 0)), ..Shared::default() });
        let snapshots = {
            let (shared, fs, dir) = (Arc::clone(&shared), Arc::clone(&fs), dir.to_path_buf());
            Ticker::start("snapshots", "snapshot", interval, move || snapshot(&shared, &fs, &dir))?
        };
        Ok(Self { shared, fs, dir: dir.to_path_buf(), snapshots })
    }
}

/// Writes a snapshot if anything was written since the newest durable one.
fn snapshot(shared: &Shared, fs: &DynFs, dir: &Path) -> Result<()> {
    let (buf, ticket) = {
        let guard = shared.map.read();
        let (map, ticket) = &*guard;
        if *ticket == shared.persisted.load(Ordering::Acquire) {
            return Ok(());
        }
        (encode(map), *ticket)
    };
    let (tmp, path) = (dir.join(TEMPORARY), dir.join(SNAPSHOT));
    if fs.exists(&tmp) {
        fs.remove_file(&tmp)?;
    }
    let file = fs.create(&tmp)?;
    for (i, chunk) in buf.chunks(WRITE_CHUNK).enumerate() {
        file.write_at(chunk, (i * WRITE_CHUNK) as u64)?;
    }
    file.sync_data()?;
    drop(file);
    fs.rename(&tmp, &path)?;
    fs.sync_dir(dir)?;
    shared.persisted.fetch_max(ticket, Ordering::AcqRel);
    Ok(())
}

/// `MAGIC`, entry count, then (key length u32, value length u32, key,
/// value) per entry, then a CRC32C of everything before it; little endian.
fn encode(map: &HashMap<Vec<u8>, Vec<u8>>) -> Vec<u8> {
    let size: usize = map.iter().map(|(k, v)| 8 + k.len() + v.len()).sum();
    let mut buf = Vec::with_capacity(MAGIC.len() + 8 + size + 4);
    buf.extend_from_slice(MAGIC);
    buf.extend_from_slice(&(map.len() as u64).to_le_bytes());
    for (k, v) in map {
        buf.extend_from_slice(&(k.len() as u32).to_le_bytes());
        buf.extend_from_slice(&(v.len() as u32).to_le_bytes());
        buf.extend_from_slice(k);
        buf.extend_from_slice(v);
    }
    let crc = crc32c::crc32c(&buf);
    buf.extend_from_slice(&crc.to_le_bytes());
    buf
}

fn load(fs: &DynFs, path: &Path) -> Result<HashMap<Vec<u8>, Vec<u8>>> {
    let file = fs.open(path)?;
    let mut buf = vec![0u8; file.len()? as usize];
    file.read_exact_at(&mut buf, 0)?;
    let bad = |why: &str| format!("{}: {why}", path.display());
    let body_len = buf.len().checked_sub(4).ok_or_else(|| bad("shorter than its checksum"))?;
    let (body, crc) = buf.split_at(body_len);
    if crc32c::crc32c(body).to_le_bytes() != crc {
        return Err(bad("checksum mismatch").into());
    }
    if body.len() < 16 || &body[..8] != MAGIC {
        return Err(bad("not a snapshot").into());
    }
    let count = u64::from_le_bytes(body[8..16].try_into()?) as usize;
    let mut map = HashMap::with_capacity(count);
    let mut at = 16;
    let mut take = |n: usize| -> Result<&[u8]> {
        let s = body.get(at..at + n).ok_or_else(|| bad("truncated entry"))?;
        at += n;
        Ok(s)
    };
    for _ in 0..count {
        let klen = u32::from_le_bytes(take(4)?.try_into()?) as usize;
        let vlen = u32::from_le_bytes(take(4)?.try_into()?) as usize;
        let k = take(klen)?.to_vec();
        map.insert(k, take(vlen)?.to_vec());
    }
    Ok(map)
}

/// Overwrites in place when the key exists, so an update allocates nothing.
fn set(map: &mut HashMap<Vec<u8>, Vec<u8>>, key: &[u8], value: &[u8]) {
    match map.get_mut(key) {
        Some(v) => {
            v.clear();
            v.extend_from_slice(value);
        }
        None => {
            map.insert(key.to_vec(), value.to_vec());
        }
    }
}

impl Engine for Naive {
    fn put(&self, key: &[u8], value: &[u8]) -> Result<u64> {
        self.snapshots.check()?;
        let mut guard = self.shared.map.write();
        let (map, ticket) = &mut *guard;
        set(map, key, value);
        *ticket += 1;
        Ok(*ticket)
    }

    fn put_many(&self, pairs: &[(Vec<u8>, Vec<u8>)]) -> Result<()> {
        self.snapshots.check()?;
        let mut guard = self.shared.map.write();
        let (map, ticket) = &mut *guard;
        for (k, v) in pairs {
            set(map, k, v);
        }
        *ticket += pairs.len() as u64;
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.shared.map.read().0.get(key).cloned())
    }

    fn scan(&self, _start: &[u8], _limit: usize) -> Result<Option<usize>> {
        Ok(None)
    }

    fn persisted_through(&self) -> Option<u64> {
        Some(self.shared.persisted.load(Ordering::Acquire))
    }

    fn close(mut self: Box<Self>) -> Result<()> {
        self.snapshots.stop()?;
        self.snapshots.check()?;
        snapshot(&self.shared, &self.fs, &self.dir)
    }
}

#[cfg(test)]
mod tests {
    use logkv_fs::SimFs;

    use super::*;

    #[test]
    fn a_closed_baseline_reopens_with_every_write() {
        let fs = Arc::new(SimFs::new());
        let dir = Path::new("/naive");
        let e = Box::new(Naive::open(fs.clone(), dir, Duration::from_secs(3600)).unwrap());
        for i in 0..100u32 {
            e.put(&i.to_le_bytes(), &[i as u8; 10]).unwrap();
        }
        e.close().unwrap();
        let e = Naive::open(Arc::new(fs.power_loss_keep_nothing()), dir, Duration::from_secs(3600)).unwrap();
        for i in 0..100u32 {
            assert_eq!(e.get(&i.to_le_bytes()).unwrap(), Some(vec![i as u8; 10]));
        }
    }

    #[test]
    fn a_damaged_snapshot_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = Box::new(Naive::open_std(dir.path(), Duration::from_secs(3600)).unwrap());
        e.put(b"k", b"v").unwrap();
        e.close().unwrap();
        let path = dir.path().join(SNAPSHOT);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[20] ^= 0xff;
        std::fs::write(&path, bytes).unwrap();
        let err = Naive::open_std(dir.path(), Duration::from_secs(3600)).unwrap_err();
        assert!(err.to_string().contains("checksum mismatch"), "{err}");
    }
}
