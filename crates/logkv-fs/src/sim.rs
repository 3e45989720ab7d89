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

/// One change to a file's content or length, kept until it is durable.
#[derive(Clone)]
enum DataOp {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
    Allocate(u64),
}

impl DataOp {
    /// Applies the op; `keep` cuts a write down to its first `keep` bytes
    /// (a torn write).
    fn apply(&self, buf: &mut Vec<u8>, keep: Option<usize>) {
        match self {
            DataOp::Write { offset, data } => {
                let data = &data[..keep.unwrap_or(data.len()).min(data.len())];
                if data.is_empty() {
                    // pwrite of nothing does not extend the file.
                    return;
                }
                let start = *offset as usize;
                let end = start + data.len();
                if buf.len() < end {
                    buf.resize(end, 0);
                }
                buf[start..end].copy_from_slice(data);
            }
            DataOp::SetLen(len) => buf.resize(*len as usize, 0),
            DataOp::Allocate(len) => {
                if buf.len() < *len as usize {
                    buf.resize(*len as usize, 0);
                }
            }
        }
    }

    /// The length after applying the op to a file of `len` bytes.
    fn len_after(&self, len: u64) -> u64 {
        match self {
            DataOp::Write { data, .. } if data.is_empty() => len,
            DataOp::Write { offset, data } => len.max(offset + data.len() as u64),
            DataOp::SetLen(l) => *l,
            DataOp::Allocate(l) => len.max(*l),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Durability {
    /// Synced, but waiting behind a doubtful op to be folded into `base`.
    Durable,
    /// Not yet synced.
    Pending,
    /// Its sync failed: it may or may not be on disk, and never will be for sure.
    Doubtful,
}

/// A file's data: `base` is on disk; `log` holds the ops not folded into it,
/// in issue order; `view` is `base` with all of `log` applied (what reads see).
#[derive(Clone, Default)]
struct Inode {
    base: Vec<u8>,
    log: Vec<(DataOp, Durability)>,
    view: Vec<u8>,
    /// Open handles; an unnamed inode lives as long as one exists (POSIX).
    handles: usize,
}

impl Inode {
    fn with_content(content: Vec<u8>) -> Self {
        Inode { view: content.clone(), base: content, log: Vec::new(), handles: 0 }
    }

    fn push(&mut self, op: DataOp) {
        op.apply(&mut self.view, None);
        self.log.push((op, Durability::Pending));
    }

    fn sync(&mut self) {
        for (_, d) in &mut self.log {
            if *d == Durability::Pending {
                *d = Durability::Durable;
            }
        }
        let folded = self.log.iter().take_while(|(_, d)| *d == Durability::Durable).count();
        for (op, _) in self.log.drain(..folded) {
            op.apply(&mut self.base, None);
        }
    }

    fn fail_sync(&mut self) {
        for (_, d) in &mut self.log {
            if *d == Durability::Pending {
                *d = Durability::Doubtful;
            }
        }
    }

    fn durable_len(&self) -> u64 {
        self.log
            .iter()
            .filter(|(_, d)| *d == Durability::Durable)
            .fold(self.base.len() as u64, |len, (op, _)| op.len_after(len))
    }

    fn unsynced(&self) -> usize {
        self.log.iter().filter(|(_, d)| *d != Durability::Durable).count()
    }

    /// The content after a power loss: durable ops always, each other op with
    /// probability 1/2 (any subset, not a prefix), and with probability 1/2
    /// one kept unsynced write torn to a random prefix. Without `rng` only
    /// the durable ops.
    fn after_power_loss(&self, rng: Option<&mut StdRng>) -> Vec<u8> {
        let mut kept = vec![false; self.log.len()];
        let mut torn = None;
        if let Some(rng) = rng {
            for (i, (_, d)) in self.log.iter().enumerate() {
                kept[i] = *d == Durability::Durable || rng.random_bool(0.5);
            }
            let tearable: Vec<usize> = (0..self.log.len())
                .filter(|&i| {
                    kept[i]
                        && self.log[i].1 != Durability::Durable
                        && matches!(&self.log[i].0, DataOp::Write { data, .. } if !data.is_empty())
                })
                .collect();
            if !tearable.is_empty() && rng.random_bool(0.5) {
                let i = tearable[rng.random_range(0..tearable.len())];
                if let DataOp::Write { data, .. } = &self.log[i].0 {
                    torn = Some((i, rng.random_range(0..data.len())));
                }
            }
        } else {
            for (i, (_, d)) in self.log.iter().enumerate() {
                kept[i] = *d == Durability::Durable;
            }
        }
        let mut content = self.base.clone();
        for (i, (op, _)) in self.log.iter().enumerate() {
            if kept[i] {
                let keep = torn.filter(|(t, _)| *t == i).map(|(_, n)| n);
                op.apply(&mut content, keep);
            }
        }
        content
    }
}

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

/// An open file: the shared state plus the inode it refers to, so it keeps
/// working after its name is removed or renamed.
struct SimFile {
    fs: Arc<Mutex<State>>,
    ino: Ino,
    /// The name it was opened under, for fault matching once it has no name.
    path: PathBuf,
}

impl fmt::Debug for SimFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimFile").field("path", &self.path).field("ino", &self.ino).finish_non_exhaustive()
    }
}

impl SimFile {
    /// Checks `fault` (if any), then applies `op` unless it is `None`.
    fn update(&self, fault: Option<FaultOp>, op: impl FnOnce(&Inode) -> Option<DataOp>) -> io::Result<()> {
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

    /// Maps would bypass the volatile/durable split, so there are none.
    fn map(&self, _len: u64) -> io::Result<Option<memmap2::Mmap>> {
        Ok(None)
    }
}

/// Releases the in-memory lock when dropped.
struct SimLock {
    fs: Arc<Mutex<State>>,
    path: PathBuf,
    id: u64,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> &Path {
        Path::new(s)
    }

    /// A file system with `/db` and a durable, empty `/db/f`.
    fn with_durable_file() -> (SimFs, Arc<dyn File>) {
        let fs = SimFs::new();
        fs.create_dir_all(p("/db")).unwrap();
        let f = fs.create(p("/db/f")).unwrap();
        fs.sync_dir(p("/db")).unwrap();
        (fs, f)
    }

    fn read_all(fs: &SimFs, path: &str) -> Option<Vec<u8>> {
        let f = fs.open(p(path)).ok()?;
        let mut buf = vec![0; f.len().unwrap() as usize];
        f.read_exact_at(&mut buf, 0).unwrap();
        Some(buf)
    }

    fn os_error(e: &io::Error) -> Option<i32> {
        e.raw_os_error()
    }

    #[test]
    fn synced_data_survives_every_power_loss() {
        let (fs, f) = with_durable_file();
        f.write_at(b"durable!", 0).unwrap();
        f.sync_data().unwrap();
        f.write_at(b"maybe", 8).unwrap();
        f.write_at(b"perhaps", 13).unwrap();
        f.allocate(64).unwrap();
        for seed in 0..200 {
            let after = fs.power_loss(seed);
            let data = read_all(&after, "/db/f").expect("synced entry survives");
            assert_eq!(&data[..8], b"durable!", "seed {seed}");
        }
        // The original is untouched.
        assert_eq!(read_all(&fs, "/db/f").unwrap().len(), 64);
        assert_eq!(fs.unsynced_ops(p("/db/f")), 3);
        assert_eq!(fs.durable_len(p("/db/f")), Some(8));
    }

    #[test]
    fn unsynced_write_lost_on_power_loss_kept_on_process_crash() {
        let (fs, f) = with_durable_file();
        f.write_at(b"hello", 0).unwrap();
        assert_eq!(read_all(&fs.power_loss_keep_nothing(), "/db/f").unwrap(), b"");
        let crashed = fs.crash_process();
        assert_eq!(read_all(&crashed, "/db/f").unwrap(), b"hello");
        // The kernel kept it, but it is still not on disk.
        assert_eq!(read_all(&crashed.power_loss_keep_nothing(), "/db/f").unwrap(), b"");
        crashed.open(p("/db/f")).unwrap().sync_data().unwrap();
        assert_eq!(read_all(&crashed.power_loss_keep_nothing(), "/db/f").unwrap(), b"hello");
    }

    #[test]
    fn power_loss_keeps_any_subset_and_tears_writes() {
        let (fs, f) = with_durable_file();
        f.write_at(b"AAAA", 0).unwrap();
        f.write_at(b"BBBB", 4).unwrap();
        let (mut subset, mut torn, mut all, mut none) = (false, false, false, false);
        for seed in 0..200 {
            let data = read_all(&fs.power_loss(seed), "/db/f").unwrap();
            match data.as_slice() {
                b"\0\0\0\0BBBB" => subset = true,
                b"AAAABBBB" => all = true,
                b"" => none = true,
                d if d.len() % 4 != 0 => torn = true,
                _ => {}
            }
        }
        assert!(subset, "a later write kept while an earlier one was lost");
        assert!(torn, "a write torn mid-way");
        assert!(all && none);
        // Deterministic in the seed.
        assert_eq!(read_all(&fs.power_loss(7), "/db/f"), read_all(&fs.power_loss(7), "/db/f"));
    }

    #[test]
    fn created_file_needs_dir_sync() {
        let fs = SimFs::new();
        fs.create_dir_all(p("/db")).unwrap();
        let f = fs.create(p("/db/new")).unwrap();
        f.write_at(b"x", 0).unwrap();
        f.sync_data().unwrap();
        assert!(!fs.power_loss_keep_nothing().exists(p("/db/new")));
        let outcomes: BTreeSet<bool> = (0..50).map(|s| fs.power_loss(s).exists(p("/db/new"))).collect();
        assert_eq!(outcomes.len(), 2, "an unsynced create may or may not survive");
        fs.sync_dir(p("/db")).unwrap();
        let after = fs.power_loss_keep_nothing();
        assert_eq!(read_all(&after, "/db/new").unwrap(), b"x");
        assert_eq!(after.list_dir(p("/db")).unwrap(), vec!["new"]);
        assert_eq!(fs.sync_dir_count(), 1);
    }

    #[test]
    fn rename_needs_dir_sync_and_is_atomic() {
        let fs = SimFs::new();
        fs.create_dir_all(p("/db")).unwrap();
        let old = fs.create(p("/db/CURRENT")).unwrap();
        old.write_at(b"old", 0).unwrap();
        old.sync_data().unwrap();
        let new = fs.create(p("/db/CURRENT.tmp")).unwrap();
        new.write_at(b"new", 0).unwrap();
        new.sync_data().unwrap();
        fs.sync_dir(p("/db")).unwrap();

        fs.rename(p("/db/CURRENT.tmp"), p("/db/CURRENT")).unwrap();
        assert_eq!(read_all(&fs, "/db/CURRENT").unwrap(), b"new");
        assert!(!fs.exists(p("/db/CURRENT.tmp")));

        let lost = fs.power_loss_keep_nothing();
        assert_eq!(read_all(&lost, "/db/CURRENT").unwrap(), b"old");
        assert!(lost.exists(p("/db/CURRENT.tmp")));
        for seed in 0..100 {
            let after = fs.power_loss(seed);
            let current = read_all(&after, "/db/CURRENT").unwrap();
            assert!(current == b"old" || current == b"new", "seed {seed}");
            assert_eq!(after.exists(p("/db/CURRENT.tmp")), current == b"old");
        }

        fs.sync_dir(p("/db")).unwrap();
        let kept = fs.power_loss_keep_nothing();
        assert_eq!(read_all(&kept, "/db/CURRENT").unwrap(), b"new");
        assert_eq!(kept.list_dir(p("/db")).unwrap(), vec!["CURRENT"]);
    }

    #[test]
    fn unsynced_remove_comes_back_and_open_handle_survives_remove() {
        let (fs, f) = with_durable_file();
        f.write_at(b"data", 0).unwrap();
        f.sync_data().unwrap();
        fs.remove_file(p("/db/f")).unwrap();
        assert!(!fs.exists(p("/db/f")));
        assert!(fs.open(p("/db/f")).is_err());
        // POSIX: the handle keeps the inode alive.
        f.write_at(b"more", 4).unwrap();
        let mut buf = [0; 8];
        f.read_exact_at(&mut buf, 0).unwrap();
        assert_eq!(&buf, b"datamore");
        assert_eq!(read_all(&fs.power_loss_keep_nothing(), "/db/f").unwrap(), b"data");
        fs.sync_dir(p("/db")).unwrap();
        assert!(!fs.power_loss_keep_nothing().exists(p("/db/f")));
        drop(f);
        assert!(fs.inner.lock().inodes.is_empty(), "unreachable inode freed");
    }

    #[test]
    fn sync_eio_fires_once_and_sticky_fires_forever() {
        let (fs, f) = with_durable_file();
        fs.inject(Fault { after: 1, ..Fault::new(FaultOp::Sync, FaultKind::Eio) });
        f.sync_data().unwrap();
        let err = f.sync_data().unwrap_err();
        assert_eq!(os_error(&err), Some(libc::EIO));
        f.sync_data().unwrap();
        assert_eq!(fs.sync_count(), 2);

        fs.inject(Fault { sticky: true, ..Fault::new(FaultOp::Sync, FaultKind::Eio) });
        for _ in 0..5 {
            assert_eq!(os_error(&f.sync_data().unwrap_err()), Some(libc::EIO));
        }
        fs.clear_faults();
        f.sync_data().unwrap();
        assert_eq!(fs.sync_count(), 3);
    }

    #[test]
    fn failed_sync_is_not_repaired_by_a_retry() {
        let (fs, f) = with_durable_file();
        f.write_at(b"lost?", 0).unwrap();
        fs.inject(Fault::new(FaultOp::Sync, FaultKind::Eio));
        assert!(f.sync_data().is_err());
        f.sync_data().unwrap();
        f.write_at(b"!", 5).unwrap();
        f.sync_data().unwrap();
        // Reads still see it, but the disk may not have it: fsyncgate.
        assert_eq!(read_all(&fs, "/db/f").unwrap(), b"lost?!");
        assert_eq!(fs.unsynced_ops(p("/db/f")), 1);
        assert_eq!(fs.durable_len(p("/db/f")), Some(6));
        assert_eq!(read_all(&fs.power_loss_keep_nothing(), "/db/f").unwrap(), b"\0\0\0\0\0!");
    }

    #[test]
    fn enospc_on_write_applies_nothing_and_respects_path_filter() {
        let fs = SimFs::new();
        fs.create_dir_all(p("/db")).unwrap();
        let a = fs.create(p("/db/a.log")).unwrap();
        let b = fs.create(p("/db/b.log")).unwrap();
        fs.inject(Fault {
            path_contains: Some("b.log".into()),
            ..Fault::new(FaultOp::Write, FaultKind::Enospc)
        });
        a.write_at(b"fine", 0).unwrap();
        let err = b.write_at(b"full", 0).unwrap_err();
        assert_eq!(os_error(&err), Some(libc::ENOSPC));
        assert_eq!(b.len().unwrap(), 0);
        b.write_at(b"ok", 0).unwrap();
        assert_eq!(fs.write_count(), 2);

        fs.inject(Fault::new(FaultOp::Allocate, FaultKind::Enospc));
        assert!(a.allocate(100).is_err());
        assert_eq!(a.len().unwrap(), 4);
        fs.inject(Fault::new(FaultOp::Create, FaultKind::Eio));
        assert!(fs.create(p("/db/c.log")).is_err());
        assert!(!fs.exists(p("/db/c.log")));
        fs.inject(Fault::new(FaultOp::SyncDir, FaultKind::Eio));
        assert!(fs.sync_dir(p("/db")).is_err());
        assert!(!fs.power_loss_keep_nothing().exists(p("/db/a.log")));
    }

    #[test]
    fn lock_conflict_names_holder_and_drop_releases() {
        let fs = SimFs::new();
        fs.create_dir_all(p("/db")).unwrap();
        let guard = fs.lock(p("/db/LOCK"), "pid 1 logkv").unwrap();
        match fs.clone().lock(p("/db/LOCK"), "pid 2") {
            Err(LockError::Held { holder }) => assert_eq!(holder, "pid 1 logkv"),
            other => panic!("expected Held, got {other:?}"),
        }
        assert_eq!(read_all(&fs, "/db/LOCK").unwrap(), b"pid 1 logkv");
        // A crash releases it.
        drop(fs.crash_process().lock(p("/db/LOCK"), "pid 3").unwrap());
        drop(guard);
        let again = fs.lock(p("/db/LOCK"), "pid 2").unwrap();
        assert_eq!(read_all(&fs, "/db/LOCK").unwrap(), b"pid 2");
        assert!(format!("{again:?}").contains("LOCK"));
        assert!(matches!(
            fs.lock(p("/nowhere/LOCK"), "x"),
            Err(LockError::Io(e)) if e.kind() == io::ErrorKind::NotFound
        ));
    }

    #[test]
    fn namespace_and_io_basics() {
        let fs = SimFs::new();
        assert_eq!(fs.create(p("/db/x")).unwrap_err().kind(), io::ErrorKind::NotFound);
        fs.create_dir_all(p("/db/sub")).unwrap();
        assert_eq!(fs.open(p("/db/missing")).unwrap_err().kind(), io::ErrorKind::NotFound);
        let f = fs.create(p("/db/b")).unwrap();
        fs.create(p("/db/a")).unwrap();
        assert_eq!(fs.create(p("/db/a")).unwrap_err().kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs.list_dir(p("/db")).unwrap(), vec!["a", "b", "sub"]);
        assert_eq!(fs.list_dir(p("/")).unwrap(), vec!["db"]);
        assert!(fs.exists(p("/db/sub")) && fs.exists(p("/db/a")));

        f.write_at(b"xy", 3).unwrap();
        let mut buf = [9; 8];
        assert_eq!(f.read_at(&mut buf, 0).unwrap(), 5);
        assert_eq!(&buf[..5], b"\0\0\0xy");
        assert_eq!(f.read_at(&mut buf, 5).unwrap(), 0);
        assert_eq!(f.read_at(&mut buf, 50).unwrap(), 0);
        f.allocate(10).unwrap();
        f.allocate(4).unwrap();
        assert_eq!(f.len().unwrap(), 10);
        f.set_len(4).unwrap();
        assert_eq!(f.len().unwrap(), 4);
        f.set_len(6).unwrap();
        assert_eq!(read_all(&fs, "/db/b").unwrap(), b"\0\0\0x\0\0");
        assert!(f.map(4).unwrap().is_none());
        assert!(format!("{fs:?} {f:?}").contains("SimFs"));
    }

    #[test]
    fn concurrent_writers_share_one_file() {
        let (fs, f) = with_durable_file();
        let threads: Vec<_> = (0..4u8)
            .map(|t| {
                let f = f.clone();
                std::thread::spawn(move || {
                    for i in 0..100u64 {
                        f.write_at(&[t; 4], (i * 4 + u64::from(t)) * 4).unwrap();
                        if i % 10 == 0 {
                            f.sync_data().unwrap();
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        f.sync_data().unwrap();
        assert_eq!(fs.write_count(), 400);
        assert_eq!(fs.durable_len(p("/db/f")), Some(1600));
        assert_eq!(fs.unsynced_ops(p("/db/f")), 0);
    }
}
