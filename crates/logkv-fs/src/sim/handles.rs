//! Open files and locks of the simulated file system.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;

use super::inode::{DataOp, Inode};
use super::{check_range, FaultOp, Ino, State};
use crate::{File, LockGuard};

/// An open file: the shared state plus the inode it refers to, so it keeps
/// working after its name is removed or renamed.
pub(super) struct SimFile {
    pub(super) fs: Arc<Mutex<State>>,
    pub(super) ino: Ino,
    /// The name it was opened under, for fault matching once it has no name.
    pub(super) path: PathBuf,
}

impl fmt::Debug for SimFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimFile").field("path", &self.path).field("ino", &self.ino).finish_non_exhaustive()
    }
}

impl SimFile {
    /// Checks `fault` (if any), then applies `op` unless it is `None`.
    pub(super) fn update(
        &self,
        fault: Option<FaultOp>,
        op: impl FnOnce(&Inode) -> Option<DataOp>,
    ) -> io::Result<()> {
        let mut state = self.fs.lock();
        if let Some(fault) = fault {
            state.check_fault(fault, |s| s.paths_of(self.ino, &self.path))?;
        }
        let inode = state.inodes.get_mut(&self.ino).expect("open inode");
        if let Some(op) = op(inode) {
            inode.push(op);
        }
        if fault == Some(FaultOp::Write) {
            state.writes += 1;
        }
        Ok(())
    }
}

impl Drop for SimFile {
    fn drop(&mut self) {
        let mut state = self.fs.lock();
        if let Some(inode) = state.inodes.get_mut(&self.ino) {
            inode.handles -= 1;
        }
        state.gc();
    }
}

impl File for SimFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let state = self.fs.lock();
        let view = &state.inodes[&self.ino].view;
        let Ok(start) = usize::try_from(offset) else {
            return Ok(0);
        };
        if start >= view.len() {
            return Ok(0);
        }
        let n = buf.len().min(view.len() - start);
        buf[..n].copy_from_slice(&view[start..start + n]);
        Ok(n)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        check_range(offset, buf.len() as u64)?;
        self.update(Some(FaultOp::Write), |_| {
            (!buf.is_empty()).then(|| DataOp::Write { offset, data: buf.to_vec() })
        })
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut state = self.fs.lock();
        if let Err(e) = state.check_fault(FaultOp::Sync, |s| s.paths_of(self.ino, &self.path)) {
            state.inodes.get_mut(&self.ino).expect("open inode").fail_sync();
            return Err(e);
        }
        state.inodes.get_mut(&self.ino).expect("open inode").sync();
        state.syncs += 1;
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.fs.lock().inodes[&self.ino].view.len() as u64)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        check_range(0, len)?;
        self.update(None, |_| Some(DataOp::SetLen(len)))
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        check_range(0, len)?;
        self.update(Some(FaultOp::Allocate), |inode| {
            ((inode.view.len() as u64) < len).then_some(DataOp::Allocate(len))
        })
    }
}

/// Releases the in-memory lock when dropped.
pub(super) struct SimLock {
    pub(super) fs: Arc<Mutex<State>>,
    pub(super) path: PathBuf,
    pub(super) id: u64,
}

impl fmt::Debug for SimLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimLock").field("path", &self.path).finish_non_exhaustive()
    }
}

impl LockGuard for SimLock {}

impl Drop for SimLock {
    fn drop(&mut self) {
        let mut state = self.fs.lock();
        if state.locks.get(&self.path).is_some_and(|(id, _)| *id == self.id) {
            state.locks.remove(&self.path);
        }
    }
}
