//! The real file system: `std::fs` plus `fdatasync`, `fallocate` and `flock`.

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::sync::Arc;

use crate::{File, FileSystem, LockError, LockGuard};

/// The operating system's file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct StdFs;

#[derive(Debug)]
struct StdFile(fs::File);

#[derive(Debug)]
struct StdLock(#[allow(dead_code)] fs::File);

impl LockGuard for StdLock {}

impl FileSystem for StdFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(path)
    }

    fn open(&self, path: &Path) -> io::Result<Arc<dyn File>> {
        let f = OpenOptions::new().read(true).write(true).open(path)?;
        Ok(Arc::new(StdFile(f)))
    }

    fn create(&self, path: &Path) -> io::Result<Arc<dyn File>> {
        let f = OpenOptions::new().read(true).write(true).create_new(true).open(path)?;
        Ok(Arc::new(StdFile(f)))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(path)? {
            names.push(entry?.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        fs::File::open(path)?.sync_all()
    }

    fn lock(&self, path: &Path, holder: &str) -> Result<Box<dyn LockGuard>, LockError> {
        let mut f = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
        match f.try_lock() {
            Ok(()) => {
                f.set_len(0)?;
                f.rewind()?;
                f.write_all(holder.as_bytes())?;
                Ok(Box::new(StdLock(f)))
            }
            Err(fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                f.read_to_string(&mut text)?;
                let holder = if text.trim().is_empty() {
                    "another process".to_string()
                } else {
                    text.trim().to_string()
                };
                Err(LockError::Held { holder })
            }
            Err(fs::TryLockError::Error(e)) => Err(LockError::Io(e)),
        }
    }
}

impl File for StdFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        loop {
            match self.0.read_at(buf, offset) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(buf, offset)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        let current = self.len()?;
        if len <= current {
            return Ok(());
        }
        // SAFETY: posix_fallocate only reads the descriptor and two integers.
        let rc = unsafe {
            libc::posix_fallocate(self.0.as_raw_fd(), current as libc::off_t, (len - current) as libc::off_t)
        };
        match rc {
            0 => Ok(()),
            // File systems without fallocate: fall back to a sparse extension.
            libc::EOPNOTSUPP | libc::EINVAL => self.0.set_len(len),
            errno => Err(io::Error::from_raw_os_error(errno)),
        }
    }

    fn drop_cache(&self, offset: u64, len: u64) -> io::Result<()> {
        // SAFETY: posix_fadvise only reads the descriptor and three integers.
        let rc = unsafe {
            libc::posix_fadvise(
                self.0.as_raw_fd(),
                offset as libc::off_t,
                len as libc::off_t,
                libc::POSIX_FADV_DONTNEED,
            )
        };
        match rc {
            0 => Ok(()),
            errno => Err(io::Error::from_raw_os_error(errno)),
        }
    }
}
