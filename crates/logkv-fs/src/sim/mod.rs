//! An in-memory file system that models what Linux does and does not promise,
//! so tests can prove durability claims instead of assuming them.
//!
//! Every file keeps its *durable* bytes (what the disk holds) apart from the
//! operations issued since its last successful `sync_data`; reads see both.
//! Directory entries work the same way: `create`, `rename` and `remove_file`
//! change what the running process sees at once, but are on disk only after
//! [`FileSystem::sync_dir`] on the directory that holds them.
//!
//! [`SimFs::power_loss`] then builds the machine as it could look after the
//! power fails right now: any subset of the unsynced operations, one write
//! possibly torn at any byte. [`SimFs::inject`] makes chosen operations fail
//! with `EIO` or `ENOSPC`.
//!
//! One deliberate departure from "keep it pending": a failed `sync_data`
//! behaves like Linux after an `fsync` error ("fsyncgate"). The kernel marks
//! the pages clean although they never reached the disk, so a retried sync
//! succeeds without writing them. Here the operations of a failed sync stay
//! visible to reads but become *doubtful*: no later sync makes them durable,
//! `power_loss` keeps each with probability 1/2 and `power_loss_keep_nothing`
//! drops them. A store that retries `fsync` and carries on is caught by that.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::{File, FileSystem, LockError, LockGuard};

mod handles;
mod inode;
#[cfg(test)]
mod tests;

use handles::{SimFile, SimLock};
use inode::{DataOp, Inode};

/// The kind of operation a [`Fault`] applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultOp {
    /// [`File::write_at`]; a failed write changes nothing.
    Write,
    /// [`File::sync_data`]; see the module docs for what a failed sync leaves.
    Sync,
    /// [`FileSystem::sync_dir`]; a failed one leaves the entries unsynced.
    SyncDir,
    /// [`FileSystem::create`]; a failed create makes no file.
    Create,
    /// [`File::allocate`]; a failed allocation changes nothing.
    Allocate,
}

/// The error a [`Fault`] returns, as a raw OS error so callers see exactly
/// what the real file system would give them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// `EIO`: the device failed.
    Eio,
    /// `ENOSPC`: the device is full.
    Enospc,
}

impl FaultKind {
    fn error(self) -> io::Error {
        io::Error::from_raw_os_error(match self {
            FaultKind::Eio => libc::EIO,
            FaultKind::Enospc => libc::ENOSPC,
        })
    }
}

/// A planned failure: the `after + 1`-th matching operation from the moment
/// of [`SimFs::inject`] fails, and with `sticky` every later one too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// Which operation fails.
    pub op: FaultOp,
    /// The error it fails with.
    pub kind: FaultKind,
    /// How many matching operations succeed first.
    pub after: u64,
    /// Only operations on a path containing this substring match. For file
    /// operations that is any current name of the file (or the name it was
    /// opened under, once it has none); for `SyncDir` the directory.
    pub path_contains: Option<String>,
    /// Whether the fault keeps firing after the first time.
    pub sticky: bool,
}

impl Fault {
    /// A one-shot fault on the next matching operation on any path.
    pub fn new(op: FaultOp, kind: FaultKind) -> Self {
        Fault { op, kind, after: 0, path_contains: None, sticky: false }
    }
}

/// The simulated file system. Clones share one state (so a test can keep a
/// handle while the store owns another); [`SimFs::power_loss`] and friends
/// make independent copies.
#[derive(Clone, Default)]
pub struct SimFs {
    inner: Arc<Mutex<State>>,
}

type Ino = u64;

/// A change to the namespace.
#[derive(Clone, Debug)]
enum DirOp {
    Create { path: PathBuf, ino: Ino },
    Remove { path: PathBuf, ino: Ino },
    Rename { from: PathBuf, to: PathBuf, ino: Ino },
}

/// A namespace change with the directories whose `sync_dir` it still waits
/// for (two for a rename across directories).
#[derive(Clone, Debug)]
struct DirChange {
    op: DirOp,
    unsynced: Vec<PathBuf>,
}

impl DirChange {
    fn new(op: DirOp) -> Self {
        let mut unsynced = match &op {
            DirOp::Create { path, .. } | DirOp::Remove { path, .. } => vec![parent(path)],
            DirOp::Rename { from, to, .. } => vec![parent(from), parent(to)],
        };
        unsynced.dedup();
        DirChange { op, unsynced }
    }

    fn waits_for(&self, path: &Path) -> bool {
        self.unsynced.iter().any(|d| d == &parent(path))
    }

    /// Replays the still-unsynced part of the change onto a durable namespace.
    fn replay(&self, names: &mut BTreeMap<PathBuf, Ino>) {
        match &self.op {
            DirOp::Create { path, ino } => {
                names.insert(path.clone(), *ino);
            }
            DirOp::Remove { path, ino } => {
                if names.get(path) == Some(ino) {
                    names.remove(path);
                }
            }
            DirOp::Rename { from, to, ino } => {
                let has_from = names.get(from) == Some(ino);
                match (self.waits_for(from), self.waits_for(to)) {
                    // Both entries unsynced: the move happens whole, and only
                    // if the file durably had its old name.
                    (true, true) => {
                        if has_from {
                            names.remove(from);
                            names.insert(to.clone(), *ino);
                        }
                    }
                    // The old directory is synced already: only the new entry.
                    (false, true) => {
                        names.insert(to.clone(), *ino);
                    }
                    (true, false) => {
                        if has_from {
                            names.remove(from);
                        }
                    }
                    (false, false) => {}
                }
            }
        }
    }

    fn ino(&self) -> Ino {
        match &self.op {
            DirOp::Create { ino, .. } | DirOp::Remove { ino, .. } | DirOp::Rename { ino, .. } => *ino,
        }
    }
}

fn parent(path: &Path) -> PathBuf {
    path.parent().unwrap_or(Path::new("")).to_path_buf()
}

struct ArmedFault {
    fault: Fault,
    seen: u64,
}

#[derive(Default)]
struct State {
    inodes: BTreeMap<Ino, Inode>,
    next_ino: Ino,
    /// Directories; always durable (see [`FileSystem::create_dir_all`]).
    dirs: BTreeSet<PathBuf>,
    /// The namespace the running system sees.
    names: BTreeMap<PathBuf, Ino>,
    /// The namespace on disk.
    durable_names: BTreeMap<PathBuf, Ino>,
    /// Namespace changes not yet durable, in issue order.
    dir_log: Vec<DirChange>,
    locks: HashMap<PathBuf, (u64, String)>,
    next_lock: u64,
    faults: Vec<ArmedFault>,
    syncs: u64,
    dir_syncs: u64,
    writes: u64,
}

impl State {
    fn dir_exists(&self, path: &Path) -> bool {
        // "" is the working directory of a relative path; "/" always exists.
        path.as_os_str().is_empty() || path == Path::new("/") || self.dirs.contains(path)
    }

    fn check_parent(&self, path: &Path) -> io::Result<()> {
        let dir = parent(path);
        if self.dir_exists(&dir) {
            Ok(())
        } else if self.names.contains_key(&dir) {
            Err(io::Error::new(io::ErrorKind::NotADirectory, format!("{} is a file", dir.display())))
        } else {
            Err(not_found(&dir))
        }
    }

    /// Names of `ino` for matching faults, falling back to the handle's path.
    fn paths_of(&self, ino: Ino, fallback: &Path) -> Vec<String> {
        let mut paths: Vec<String> = self
            .names
            .iter()
            .filter(|(_, i)| **i == ino)
            .map(|(p, _)| p.to_string_lossy().into_owned())
            .collect();
        if paths.is_empty() {
            paths.push(fallback.to_string_lossy().into_owned());
        }
        paths
    }

    /// Counts a `op` against the armed faults and returns the error of the
    /// first one that fires. `paths` is only called if some fault filters on it.
    fn check_fault(&mut self, op: FaultOp, paths: impl FnOnce(&State) -> Vec<String>) -> io::Result<()> {
        if !self.faults.iter().any(|f| f.fault.op == op) {
            return Ok(());
        }
        let paths = if self.faults.iter().any(|f| f.fault.op == op && f.fault.path_contains.is_some()) {
            paths(self)
        } else {
            Vec::new()
        };
        let mut fired = None;
        let mut i = 0;
        while i < self.faults.len() {
            let armed = &mut self.faults[i];
            let matches = armed.fault.op == op
                && armed
                    .fault
                    .path_contains
                    .as_ref()
                    .is_none_or(|s| paths.iter().any(|p| p.contains(s.as_str())));
            if matches {
                if armed.seen < armed.fault.after {
                    armed.seen += 1;
                } else if fired.is_none() {
                    fired = Some(armed.fault.kind);
                    if !armed.fault.sticky {
                        self.faults.remove(i);
                        continue;
                    }
                }
            }
            i += 1;
        }
        match fired {
            Some(kind) => Err(kind.error()),
            None => Ok(()),
        }
    }

    fn new_inode(&mut self) -> Ino {
        self.next_ino += 1;
        self.inodes.insert(self.next_ino, Inode::default());
        self.next_ino
    }

    fn file(&self, path: &Path) -> io::Result<Ino> {
        match self.names.get(path) {
            Some(ino) => Ok(*ino),
            None if self.dir_exists(path) => Err(is_a_directory(path)),
            None => Err(not_found(path)),
        }
    }

    /// Drops inodes nothing can reach any more: no name now or on disk, no
    /// unsynced namespace change and no open handle.
    fn gc(&mut self) {
        let mut live: BTreeSet<Ino> = self.names.values().copied().collect();
        live.extend(self.durable_names.values().copied());
        live.extend(self.dir_log.iter().map(DirChange::ino));
        self.inodes.retain(|ino, inode| inode.handles > 0 || live.contains(ino));
    }

    /// The state a restarted machine sees: namespace and file contents as
    /// chosen by `contents`, no locks, handles, faults or counters.
    fn copy(
        &self,
        names: BTreeMap<PathBuf, Ino>,
        durable_names: BTreeMap<PathBuf, Ino>,
        dir_log: Vec<DirChange>,
        mut contents: impl FnMut(&Inode) -> Inode,
    ) -> State {
        let mut live: BTreeSet<Ino> = names.values().copied().collect();
        live.extend(durable_names.values().copied());
        live.extend(dir_log.iter().map(DirChange::ino));
        let inodes =
            live.into_iter().filter_map(|ino| self.inodes.get(&ino).map(|i| (ino, contents(i)))).collect();
        State {
            inodes,
            next_ino: self.next_ino,
            dirs: self.dirs.clone(),
            names,
            durable_names,
            dir_log,
            next_lock: self.next_lock,
            ..State::default()
        }
    }
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{}: no such file or directory", path.display()))
}

fn is_a_directory(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::IsADirectory, format!("{} is a directory", path.display()))
}

/// Rejects offsets and lengths that could not be held in memory (rather than
/// panicking on overflow later).
fn check_range(offset: u64, len: u64) -> io::Result<()> {
    offset
        .checked_add(len)
        .and_then(|end| usize::try_from(end).ok())
        .map(drop)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "offset too large"))
}

impl SimFs {
    /// An empty file system holding only the root directory.
    pub fn new() -> Self {
        Self::default()
    }

    fn from_state(state: State) -> Self {
        SimFs { inner: Arc::new(Mutex::new(state)) }
    }

    /// The machine after a power failure at this instant. Un-synced namespace
    /// changes and un-synced file operations each survive with probability
    /// 1/2 (any subset, replayed in issue order), and one surviving unsynced
    /// write per file may be torn at a random byte. Deterministic in `seed`;
    /// `self` is left as it was.
    pub fn power_loss(&self, seed: u64) -> SimFs {
        let mut rng = StdRng::seed_from_u64(seed);
        let state = self.inner.lock();
        let mut names = state.durable_names.clone();
        for change in &state.dir_log {
            if rng.random_bool(0.5) {
                change.replay(&mut names);
            }
        }
        let copy = state.copy(names.clone(), names, Vec::new(), |inode| {
            Inode::with_content(inode.after_power_loss(Some(&mut rng)))
        });
        SimFs::from_state(copy)
    }

    /// The machine after a power failure that lost everything it could: only
    /// synced data and `sync_dir`-ed entries remain.
    pub fn power_loss_keep_nothing(&self) -> SimFs {
        let state = self.inner.lock();
        let names = state.durable_names.clone();
        let copy = state.copy(names.clone(), names, Vec::new(), |inode| {
            Inode::with_content(inode.after_power_loss(None))
        });
        SimFs::from_state(copy)
    }

    /// The machine after the process was killed (`kill -9`): the kernel
    /// keeps everything, so the copy reads exactly what this one reads.
    ///
    /// Unlike a power loss this does *not* make anything durable: the page
    /// cache still holds the unsynced data, so a later `power_loss` on the
    /// copy can still lose it. A store that trusts what it finds after a
    /// crash without syncing it is caught by that.
    pub fn crash_process(&self) -> SimFs {
        let state = self.inner.lock();
        let copy =
            state.copy(state.names.clone(), state.durable_names.clone(), state.dir_log.clone(), |inode| {
                Inode { handles: 0, ..inode.clone() }
            });
        SimFs::from_state(copy)
    }

    /// Arms a fault; it counts matching operations from now on.
    pub fn inject(&self, fault: Fault) {
        self.inner.lock().faults.push(ArmedFault { fault, seen: 0 });
    }

    /// Disarms all faults.
    pub fn clear_faults(&self) {
        self.inner.lock().faults.clear();
    }

    /// Successful [`File::sync_data`] calls, over all files.
    pub fn sync_count(&self) -> u64 {
        self.inner.lock().syncs
    }

    /// Successful [`FileSystem::sync_dir`] calls.
    pub fn sync_dir_count(&self) -> u64 {
        self.inner.lock().dir_syncs
    }

    /// Successful [`File::write_at`] calls, over all files.
    pub fn write_count(&self) -> u64 {
        self.inner.lock().writes
    }

    /// The durable length of the file now at `path` (whether or not that name
    /// is itself durable), or `None` if there is no file there.
    pub fn durable_len(&self, path: &Path) -> Option<u64> {
        let state = self.inner.lock();
        let ino = state.names.get(path)?;
        Some(state.inodes[ino].durable_len())
    }

    /// How many operations on the file now at `path` are not durable: those
    /// since its last sync plus those whose sync failed. 0 if there is no file.
    pub fn unsynced_ops(&self, path: &Path) -> usize {
        let state = self.inner.lock();
        state.names.get(path).map_or(0, |ino| state.inodes[ino].unsynced())
    }
}

impl fmt::Debug for SimFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(state) = self.inner.try_lock() else {
            return f.write_str("SimFs { <locked> }");
        };
        f.debug_struct("SimFs")
            .field("files", &state.names.len())
            .field("dirs", &state.dirs.len())
            .field("unsynced_dir_changes", &state.dir_log.len())
            .field("faults", &state.faults.len())
            .field("syncs", &state.syncs)
            .field("dir_syncs", &state.dir_syncs)
            .field("writes", &state.writes)
            .finish()
    }
}

impl FileSystem for SimFs {
    /// Directories are durable at once: logkv creates its directory before it
    /// writes anything, so modelling their loss would only add noise.
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut state = self.inner.lock();
        let dirs: Vec<&Path> = path.ancestors().filter(|p| !p.as_os_str().is_empty()).collect();
        if let Some(file) = dirs.iter().find(|d| state.names.contains_key(**d)) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} is a file", file.display()),
            ));
        }
        for dir in dirs {
            state.dirs.insert(dir.to_path_buf());
        }
        Ok(())
    }

    fn open(&self, path: &Path) -> io::Result<Arc<dyn File>> {
        let mut state = self.inner.lock();
        let ino = state.file(path)?;
        state.inodes.get_mut(&ino).expect("named inode").handles += 1;
        Ok(Arc::new(SimFile { fs: self.inner.clone(), ino, path: path.to_path_buf() }))
    }

    fn create(&self, path: &Path) -> io::Result<Arc<dyn File>> {
        let mut state = self.inner.lock();
        state.check_fault(FaultOp::Create, |_| vec![path.to_string_lossy().into_owned()])?;
        if state.names.contains_key(path) || state.dir_exists(path) {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{} exists", path.display())));
        }
        state.check_parent(path)?;
        let ino = state.new_inode();
        state.inodes.get_mut(&ino).expect("new inode").handles += 1;
        state.names.insert(path.to_path_buf(), ino);
        state.dir_log.push(DirChange::new(DirOp::Create { path: path.to_path_buf(), ino }));
        Ok(Arc::new(SimFile { fs: self.inner.clone(), ino, path: path.to_path_buf() }))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut state = self.inner.lock();
        let ino = state.file(path)?;
        state.names.remove(path);
        state.dir_log.push(DirChange::new(DirOp::Remove { path: path.to_path_buf(), ino }));
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.inner.lock();
        let ino = match state.names.get(from) {
            Some(ino) => *ino,
            None if state.dir_exists(from) => {
                return Err(io::Error::new(io::ErrorKind::Unsupported, "SimFs renames files only"))
            }
            None => return Err(not_found(from)),
        };
        if state.dir_exists(to) {
            return Err(is_a_directory(to));
        }
        state.check_parent(to)?;
        if from == to {
            return Ok(());
        }
        state.names.remove(from);
        state.names.insert(to.to_path_buf(), ino);
        state.dir_log.push(DirChange::new(DirOp::Rename {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
            ino,
        }));
        Ok(())
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let state = self.inner.lock();
        if !state.dir_exists(path) {
            return Err(if state.names.contains_key(path) {
                io::Error::new(io::ErrorKind::NotADirectory, format!("{} is a file", path.display()))
            } else {
                not_found(path)
            });
        }
        let files = state.names.keys();
        let dirs = state.dirs.iter();
        let names: BTreeSet<String> = files
            .chain(dirs)
            .filter(|p| p.parent() == Some(path))
            .filter_map(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .collect();
        Ok(names.into_iter().collect())
    }

    fn exists(&self, path: &Path) -> bool {
        let state = self.inner.lock();
        state.names.contains_key(path) || (!path.as_os_str().is_empty() && state.dir_exists(path))
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut state = self.inner.lock();
        state.check_fault(FaultOp::SyncDir, |_| vec![path.to_string_lossy().into_owned()])?;
        if !state.dir_exists(path) {
            return Err(not_found(path));
        }
        let state = &mut *state;
        state.durable_names.retain(|p, _| p.parent() != Some(path));
        for (p, ino) in &state.names {
            if p.parent() == Some(path) {
                state.durable_names.insert(p.clone(), *ino);
            }
        }
        for change in &mut state.dir_log {
            change.unsynced.retain(|d| d != path);
        }
        state.dir_log.retain(|c| !c.unsynced.is_empty());
        state.dir_syncs += 1;
        state.gc();
        Ok(())
    }

    /// Like [`crate::StdFs`], creates the lock file if needed and writes the
    /// holder into it (unsynced); the lock itself lives only in memory, so
    /// copies made by `power_loss` and friends start unlocked.
    fn lock(&self, path: &Path, holder: &str) -> Result<Box<dyn LockGuard>, LockError> {
        let mut state = self.inner.lock();
        if let Some((_, holder)) = state.locks.get(path) {
            return Err(LockError::Held { holder: holder.clone() });
        }
        let ino = match state.names.get(path) {
            Some(ino) => *ino,
            None => {
                if state.dir_exists(path) {
                    return Err(is_a_directory(path).into());
                }
                state.check_parent(path)?;
                let ino = state.new_inode();
                state.names.insert(path.to_path_buf(), ino);
                state.dir_log.push(DirChange::new(DirOp::Create { path: path.to_path_buf(), ino }));
                ino
            }
        };
        let inode = state.inodes.get_mut(&ino).expect("named inode");
        inode.push(DataOp::SetLen(0));
        inode.push(DataOp::Write { offset: 0, data: holder.as_bytes().to_vec() });
        state.next_lock += 1;
        let id = state.next_lock;
        state.locks.insert(path.to_path_buf(), (id, holder.to_string()));
        Ok(Box::new(SimLock { fs: self.inner.clone(), path: path.to_path_buf(), id }))
    }
}
