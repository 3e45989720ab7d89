//! The file-system seam of logkv.
//!
//! Every byte logkv reads or writes goes through [`FileSystem`] and [`File`], so
//! that tests can swap the real file system ([`StdFs`]) for one that loses
//! unsynced data, tears writes and fails with EIO or ENOSPC ([`SimFs`]). The
//! trait is deliberately small: it holds only what a log-structured store
//! needs (positional reads and writes — no memory maps, see [`read_with`] —, `fdatasync`, preallocation, directory
//! sync, rename and a process lock).

mod sim;
mod std_fs;

use std::fmt::Debug;
use std::io;
use std::path::Path;
use std::sync::Arc;

pub use sim::{Fault, FaultKind, FaultOp, SimFs};
pub use std_fs::StdFs;

/// A shared, thread-safe handle to a file system.
pub type DynFs = Arc<dyn FileSystem>;

/// Operations on paths. Directory-entry changes (create, rename, remove) are
/// durable only after [`FileSystem::sync_dir`] on the parent directory.
pub trait FileSystem: Send + Sync + Debug {
    /// Creates a directory and its parents; existing ones are fine.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Opens an existing file for reading and writing.
    fn open(&self, path: &Path) -> io::Result<Arc<dyn File>>;
    /// Creates a new, empty file for reading and writing; fails if it exists.
    fn create(&self, path: &Path) -> io::Result<Arc<dyn File>>;
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Atomically replaces `to` with `from`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// The names of the entries of a directory, sorted.
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>>;
    /// Whether a file or directory exists at `path`.
    fn exists(&self, path: &Path) -> bool;
    /// Makes the directory's entries durable (fsync of the directory).
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// Takes the exclusive lock file at `path` for as long as the guard lives,
    /// writing `holder` into it so a second opener can say who holds it.
    fn lock(&self, path: &Path, holder: &str) -> Result<Box<dyn LockGuard>, LockError>;
}

/// Positional I/O on one open file. All methods take `&self`: callers
/// coordinate who writes where, so reads never wait for a file-level lock.
#[allow(clippy::len_without_is_empty)] // a file of length 0 is not a special case here
pub trait File: Send + Sync + Debug {
    /// Reads up to `buf.len()` bytes at `offset`; fewer only at end of file.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Writes all of `buf` at `offset`, growing the file if needed.
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// `fdatasync`: makes written data (and the size needed to read it) durable.
    fn sync_data(&self) -> io::Result<()>;
    /// The current length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// Truncates or extends (with zeros) to `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Reserves space so that the file is at least `len` bytes, zero-filled,
    /// and later writes below `len` need neither growth nor new blocks.
    fn allocate(&self, len: u64) -> io::Result<()>;
    /// Tells the kernel the `len` bytes at `offset` will not be read again
    /// soon (`posix_fadvise(POSIX_FADV_DONTNEED)`), so a pass over every
    /// file (the scrubber's) does not push the working set out of the page
    /// cache. Only a hint: file systems without a cache ignore it.
    fn drop_cache(&self, _offset: u64, _len: u64) -> io::Result<()> {
        Ok(())
    }

    /// Reads exactly `buf.len()` bytes at `offset`, or fails with `UnexpectedEof`.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let mut done = 0;
        while done < buf.len() {
            let n = self.read_at(&mut buf[done..], offset + done as u64)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("short read at offset {}", offset + done as u64),
                ));
            }
            done += n;
        }
        Ok(())
    }
}

/// Buffers [`read_with`] keeps for its thread's next read, up to this size.
const KEPT_READ_BUFFER_BYTES: usize = 1 << 20;

thread_local! {
    static READ_BUFFER: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Calls `f` with exactly the `len` bytes at `offset` of `file`, read with
/// `pread`. Files are never memory-mapped: a file cut short or failing
/// under a map kills the process with SIGBUS, while a read reports it as
/// an error (`UnexpectedEof` for a file that now ends before the bytes).
/// The buffer is reused by the thread's next read, so a small read costs
/// no allocation; a nested read (from `f`) gets a buffer of its own.
pub fn read_with<R>(file: &dyn File, offset: u64, len: usize, f: impl FnOnce(&[u8]) -> R) -> io::Result<R> {
    let mut buf = READ_BUFFER.take();
    buf.clear();
    buf.resize(len, 0);
    let read = file.read_exact_at(&mut buf, offset).map(|()| f(&buf));
    if buf.capacity() <= KEPT_READ_BUFFER_BYTES {
        READ_BUFFER.set(buf);
    }
    read
}

/// Held while a data directory is open; dropping it releases the lock.
pub trait LockGuard: Send + Sync + Debug {}

/// Why a lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process (or another open store in this process) holds it.
    #[error("locked by {holder}")]
    Held {
        /// What the holder wrote into the lock file (pid and command).
        holder: String,
    },
    /// The lock file could not be opened or read.
    #[error(transparent)]
    Io(#[from] io::Error),
}
