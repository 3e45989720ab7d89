//! An experiment on the file system seam: the real file system, except that
//! `allocate` writes zeros instead of calling `fallocate`. On ext4 (and xfs)
//! `fallocate` leaves *unwritten* extents; the first write into each block
//! converts the extent, a metadata change the next `fdatasync` must also
//! make durable (a journal commit, or without a journal a synchronous write
//! of the extent block). With written zeros the log's appends overwrite
//! existing blocks and `fdatasync` flushes only data. Comparing the two
//! shows what pre-zeroed (or recycled) segments would buy.

use std::io;
use std::path::Path;
use std::sync::Arc;

use logkv_fs::{File, FileSystem, LockError, LockGuard, StdFs};

/// [`StdFs`] with `allocate` writing zeros.
#[derive(Debug, Default, Clone, Copy)]
pub struct ZeroFillFs;

#[derive(Debug)]
struct ZeroFillFile(Arc<dyn File>);

/// Bytes of zeros written per call while filling.
const FILL_CHUNK_BYTES: usize = 1 << 20;

impl FileSystem for ZeroFillFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        StdFs.create_dir_all(path)
    }
    fn open(&self, path: &Path) -> io::Result<Arc<dyn File>> {
        Ok(Arc::new(ZeroFillFile(StdFs.open(path)?)))
    }
    fn create(&self, path: &Path) -> io::Result<Arc<dyn File>> {
        Ok(Arc::new(ZeroFillFile(StdFs.create(path)?)))
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        StdFs.remove_file(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        StdFs.rename(from, to)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        StdFs.list_dir(path)
    }
    fn exists(&self, path: &Path) -> bool {
        StdFs.exists(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        StdFs.sync_dir(path)
    }
    fn lock(&self, path: &Path, holder: &str) -> Result<Box<dyn LockGuard>, LockError> {
        StdFs.lock(path, holder)
    }
}

impl File for ZeroFillFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.0.read_at(buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn len(&self) -> io::Result<u64> {
        self.0.len()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn allocate(&self, len: u64) -> io::Result<()> {
        let zeros = vec![0u8; FILL_CHUNK_BYTES];
        let mut at = self.0.len()?;
        while at < len {
            let n = (len - at).min(zeros.len() as u64) as usize;
            self.0.write_at(&zeros[..n], at)?;
            at += n as u64;
        }
        Ok(())
    }
    fn map(&self, len: u64) -> io::Result<Option<memmap2::Mmap>> {
        self.0.map(len)
    }
}
