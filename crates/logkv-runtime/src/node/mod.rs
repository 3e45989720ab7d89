//! A node on the embedded store: it applies signed entries and keeps the
//! state they build in its file log, queryable as of any version.
//!
//! Each entry becomes one `Applied` record: the entry verbatim, the
//! digest of the state after it, its transactions' results (the annex,
//! [`crate::annex`]), its log time, then the version records derived from
//! it (see `docs/runtime.md`): data in the stream's keyspace (values
//! written by the entry point into it; computed ones are stored), and in
//! the system keyspace the access-control facts that changed, new stream
//! keyspaces and the anti-replay windows that moved. Opening a node
//! replays the log by indexing those records — never re-applying or
//! re-verifying an entry — and rebuilds the little apply keeps in memory
//! (access control, windows, stream map) from the system keyspace, and
//! the digest and log time from the newest record.
//!
//! Applying: the signature is checked outside any lock; then, under the
//! apply lock, the effects are computed against the newest sequenced state,
//! the record is appended (and indexed) and the lock released; the caller
//! then waits for the group commit that acknowledges it. Reads are in
//! `query`.
//!
//! Local writes are batched into signed entries by the commit pipeline
//! ([`crate::pipeline`]), which signs ([`Node::sign_entry`]) and commits
//! ([`Node::commit_own`]) here. The node remembers the hashes of the
//! entries it verified or signed and wrote (`remembered`), so the same
//! bytes coming back (its own entries from a shared log) are not verified
//! again; entries from another log are verified on all cores
//! ([`Node::apply_replicated_batch`], [`verify`]). A shared log's entries
//! come in through [`Node::follow`] ([`follow`]).

pub mod follow;
mod query;
mod remembered;
pub mod verify;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use logkv_store::{ScanOptions, Store, StoreError, StoreOptions};
use parking_lot::{Mutex, RwLock};

use crate::acl::Acl;
use crate::annex;
use crate::apply::{OpAnswer, Watched, DEFAULT_VERSION_CHECK_HORIZON};
use crate::digest::StateDigest;
use crate::entry::{Applier, EntryOutcome};
use crate::envelope::{Entry, EntryView, EnvelopeError, Protocol, TxPart, TxWrite};
use crate::nonce::NonceWindow;
use crate::quota::{QuotaUsage, Quotas};
use crate::shared_log::LogEntry;
use crate::signing::{keccak256, Signer};
use crate::store_state::{
    drop_replaced, Derived, DerivedOp, EntryState, FlushMap, Flushes, QueueChanges, Queues, StreamMap,
    ValueSums,
};
use crate::system::{
    expiry_count_key, flush_voided_prefixes, keyspace_of_value_sum_key, nonce_key, nonce_key_parts,
    stream_of_count_key, stream_of_flush_key, stream_of_key, u64_of, FactOf, EXPIRY_COUNT_PREFIX,
    EXPIRY_PREFIX, FACT_PREFIX, FIRST_STREAM_KEYSPACE, FLUSH_PREFIX, NONCE_PREFIX, STREAM_PREFIX,
    SYSTEM_KEYSPACE, VALUE_SUM_PREFIX,
};
use crate::types::{tx_version, version_position, Address, StreamId};

/// Entries verified per chunk while earlier chunks are applied.
const PIPELINE_CHUNK: usize = 256;

/// The verdict on an entry's signature ([`Node::check`]) and its keccak256.
type Check = (Option<bool>, [u8; 32]);

/// Everything a node operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The store below failed (I/O, corruption, a limit, read-only).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The entry was written by a newer protocol: this node does not log
    /// what it could not apply.
    #[error("entry needs a newer logkv: {0}")]
    UpgradeNeeded(EnvelopeError),
    /// An entry of the node's own could not be built.
    #[error("cannot build the entry: {0}")]
    Envelope(EnvelopeError),
    /// The results stored with the record at `position` cannot be read back.
    #[error("bad results in the record at position {position}: {source}")]
    BadAnnex {
        /// The record's position in the node's log.
        position: u64,
        /// What is wrong.
        source: annex::AnnexError,
    },
    /// A record of the system keyspace cannot be read back.
    #[error("bad system record {key}: {detail}")]
    BadSystemRecord {
        /// The key, in hex.
        key: String,
        /// What is wrong.
        detail: String,
    },
    /// The batch of local writes holding this caller's transactions failed
    /// (every caller of the batch gets the same error).
    #[error("the batch holding these writes failed: {0}")]
    Batch(Arc<NodeError>),
    /// The shared log the node follows failed ([`Node::follow`]).
    #[error(transparent)]
    SharedLog(#[from] crate::shared_log::SharedLogError),
}

/// Shorthand for results of this module.
pub type Result<T, E = NodeError> = std::result::Result<T, E>;

/// How to open a node.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// The store (file system, log configuration, limits).
    pub store: StoreOptions,
    /// The streams this node applies.
    pub watched: Watched,
    /// The version-check horizon in log positions
    /// ([`apply_tx`](crate::apply::apply_tx)): a protocol parameter, the
    /// same on every node of a log. The node gives it to the store as
    /// compaction's tombstone horizon: a deleted key whose delete lies
    /// more positions than this before the cut leaves the index.
    pub version_check_horizon: u64,
    /// The quotas on state a stranger can grow ([`crate::quota`]): a
    /// protocol parameter, the same on every node of a log.
    pub quotas: Quotas,
}

impl Default for NodeOptions {
    fn default() -> Self {
        Self {
            store: StoreOptions::default(),
            watched: Watched::default(),
            version_check_horizon: DEFAULT_VERSION_CHECK_HORIZON,
            quotas: Quotas::default(),
        }
    }
}

/// An entry the node logged and applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The entry's position in the log.
    pub position: u64,
    /// The newest version it created (the version readers see once it is
    /// acknowledged).
    pub version: u64,
    /// What happened to it.
    pub outcome: EntryOutcome,
    /// The op answers of each transaction (empty where it did not commit):
    /// what replies are built from.
    pub answers: Vec<Vec<OpAnswer>>,
    /// The state digest right after the entry (what its record keeps):
    /// nodes compare it at given positions ([`crate::divergence`]).
    pub digest: [u8; 32],
}

impl Applied {
    /// The part of an entry's outcome that belongs to the writer whose `n`
    /// transactions start at index `start`: their results and answers, and
    /// the version of the last of them.
    pub fn share(&self, start: usize, n: usize) -> Applied {
        let outcome = match &self.outcome {
            EntryOutcome::Applied(r) => EntryOutcome::Applied(r[start..start + n].to_vec()),
            other => other.clone(),
        };
        let answers = self.answers.get(start..start + n).map_or_else(Vec::new, <[_]>::to_vec);
        let last = (start + n).saturating_sub(1);
        let version = tx_version(version_position(self.version), last as u16);
        Applied { position: self.position, version, outcome, answers, digest: self.digest }
    }
}

/// A key, its value and the version that wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key.
    pub key: Vec<u8>,
    /// The value.
    pub value: Vec<u8>,
    /// The version that wrote it.
    pub version: u64,
}

/// How far the node has applied the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayProgress {
    /// Position of the newest entry applied and acknowledged.
    pub applied_position: u64,
    /// The newest version readers see.
    pub applied_version: u64,
}

/// What apply keeps in memory, under the apply lock.
struct Core {
    applier: Applier,
    acl: Acl,
    digest: StateDigest,
    next_keyspace: u32,
    /// The log time of the newest record: log times never decrease.
    log_time_ms: u64,
    /// Each stream's sum of value facts, which a flush takes out of the
    /// digest at once.
    value_sums: ValueSums,
}

/// A node: the runtime on the embedded store.
pub struct Node {
    store: Store,
    core: Mutex<Core>,
    streams: StreamMap,
    /// The version of each flushed stream's newest flush: reads of the
    /// newest state judge keys by it.
    flushes: FlushMap,
    /// Next nonce of each local signer.
    local_nonces: Mutex<BTreeMap<Address, u64>>,
    verified: AtomicU64,
    applied: AtomicU64,
    /// The log time of the newest applied record (`Core::log_time_ms`,
    /// readable without the apply lock): reads judge expiry by it.
    applied_time_ms: AtomicU64,
    /// Whether any key has (or had, since open) an expiry: until one does,
    /// reads and apply skip looking expiries up, so a node whose clients
    /// never use expiry pays nothing for it.
    expiries: AtomicBool,
    /// The streams' expiry queues: written under the apply lock, read by
    /// apply and by whoever asks how many keys expire.
    queues: RwLock<Queues>,
    counters: Counters,
    remembered: Mutex<remembered::Remembered>,
}

#[derive(Default)]
struct Counters {
    signed: AtomicU64,
    local_txs: AtomicU64,
    skipped: AtomicU64,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").field("store", &self.store).finish_non_exhaustive()
    }
}

/// The highest nonce of `sender` the node applied, on any stream (0: none).
fn highest_nonce(core: &Core, sender: &Address) -> u64 {
    core.applier
        .nonce_windows()
        .filter(|(a, _, _)| a == sender)
        .map(|(_, _, w)| w.highest())
        .max()
        .unwrap_or(0)
}

/// The new count of keys with an expiry of each stream an entry changed.
fn counts_after(queues: &Queues, changes: &QueueChanges) -> Vec<(StreamId, u64)> {
    changes
        .counts
        .iter()
        .filter(|(_, change)| **change != 0)
        .map(|(stream, change)| {
            let before = queues.counts.get(stream).copied().unwrap_or(0);
            (*stream, before.saturating_add_signed(*change))
        })
        .collect()
}

/// Tells the store what `stream`'s flush at `version` removed, so that
/// compaction drops it (compaction.md): the keys of its keyspace, if it has
/// one, and the system keys the flush voids.
fn raise_flush_floors(store: &Store, keyspace: Option<u32>, stream: &StreamId, version: u64) {
    if let Some(ks) = keyspace {
        store.raise_floor(ks, &[], version);
    }
    for prefix in flush_voided_prefixes(stream) {
        store.raise_floor(SYSTEM_KEYSPACE, &prefix, version);
    }
}

/// The wall clock in Unix milliseconds: the log time of an entry this node
/// appends first.
fn now_ms() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map_or(0, |d| d.as_millis() as u64)
}

fn bad(key: &[u8], detail: impl Into<String>) -> NodeError {
    NodeError::BadSystemRecord { key: hex::encode(key), detail: detail.into() }
}

impl Node {
    /// Opens (or creates) a node in `dir`. Replay indexes the log's records
    /// and reads back the system keyspace; no entry is applied or verified.
    pub fn open(dir: impl AsRef<Path>, options: NodeOptions) -> Result<Self> {
        Self::open_with_progress(dir, options, &mut |_, _| {})
    }

    /// [`Node::open`], reporting replay progress as `(bytes scanned, total)`.
    pub fn open_with_progress(
        dir: impl AsRef<Path>,
        options: NodeOptions,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Self> {
        let mut store_options = options.store;
        store_options.retention.tombstone_horizon = Some(options.version_check_horizon);
        let store = Store::open_with_progress(dir, store_options, progress)?;
        let mut applier = Applier::new(options.watched)
            .with_version_check_horizon(options.version_check_horizon)
            .with_quotas(options.quotas);
        let system = |prefix: u8| store.scan_in(SYSTEM_KEYSPACE, ScanOptions::prefix(&[prefix]));
        let mut acl = Acl::default();
        for kv in system(FACT_PREFIX) {
            let (key, value) = kv?;
            FactOf::parse(&key, &value.data)
                .ok_or_else(|| bad(&key, "not an access-control fact"))?
                .restore(&mut acl);
        }
        let mut streams = BTreeMap::new();
        let mut next_keyspace = FIRST_STREAM_KEYSPACE;
        for kv in system(STREAM_PREFIX) {
            let (key, value) = kv?;
            let stream = stream_of_key(&key).ok_or_else(|| bad(&key, "not a stream key"))?;
            let ks =
                <[u8; 4]>::try_from(&value.data[..]).map_err(|_| bad(&key, "keyspace is not 4 bytes"))?;
            let ks = u32::from_be_bytes(ks);
            next_keyspace = next_keyspace.max(ks.saturating_add(1));
            streams.insert(stream, ks);
        }
        for kv in system(NONCE_PREFIX) {
            let (key, value) = kv?;
            let (sender, stream) = nonce_key_parts(&key).ok_or_else(|| bad(&key, "not a nonce key"))?;
            let window = NonceWindow::decode(&value.data).map_err(|e| bad(&key, e.to_string()))?;
            applier.set_nonce_window(sender, stream, Some(window));
        }
        let mut flushes = BTreeMap::new();
        for kv in system(FLUSH_PREFIX) {
            let (key, value) = kv?;
            let stream = stream_of_flush_key(&key).ok_or_else(|| bad(&key, "not a flush key"))?;
            let version = u64_of(&value.data).ok_or_else(|| bad(&key, "flush version is not 8 bytes"))?;
            flushes.insert(stream, version);
        }
        // Compaction drops what a flush removed (compaction.md).
        for (stream, version) in &flushes {
            raise_flush_floors(&store, streams.get(stream).copied(), stream, *version);
        }
        let by_keyspace: BTreeMap<u32, StreamId> = streams.iter().map(|(s, ks)| (*ks, *s)).collect();
        let mut value_sums = BTreeMap::new();
        for kv in system(VALUE_SUM_PREFIX) {
            let (key, value) = kv?;
            let ks = keyspace_of_value_sum_key(&key).ok_or_else(|| bad(&key, "not a value-sum key"))?;
            let stream =
                *by_keyspace.get(&ks).ok_or_else(|| bad(&key, "a value sum of a keyspace no stream has"))?;
            let sum =
                <[u8; 32]>::try_from(&value.data[..]).map_err(|_| bad(&key, "value sum is not 32 bytes"))?;
            value_sums.insert(stream, StateDigest::from_bytes(sum));
        }
        let digest = store
            .newest_state()
            .map_or_else(StateDigest::default, |(state, _)| StateDigest::from_bytes(state));
        let log_time_ms = store.time_of_position(store.visible_position())?.unwrap_or(0);
        let expiries = system(EXPIRY_PREFIX).next().is_some();
        let mut queues = Queues::default();
        for kv in system(EXPIRY_COUNT_PREFIX) {
            let (key, value) = kv?;
            let stream = stream_of_count_key(&key).ok_or_else(|| bad(&key, "not an expiry count key"))?;
            let count =
                <[u8; 8]>::try_from(&value.data[..]).map_err(|_| bad(&key, "expiry count is not 8 bytes"))?;
            queues.counts.insert(stream, u64::from_be_bytes(count));
        }
        // Every expiring key is counted since the sweep exists (a flush
        // voids the keys and their expiries, counts and all); expiries
        // without counts and flushes were written by a build from before it, whose
        // keys this one could never sweep as a node replaying the log would.
        if expiries && queues.counts.is_empty() && flushes.is_empty() {
            return Err(bad(
                &[EXPIRY_PREFIX],
                "expiry keys without expiry counts: this directory was written by a development build \
                 from before the expiry sweep (protocol 5); rebuild it by replaying its log (a node of a \
                 shared log: move the directory away and start the node)",
            ));
        }
        Ok(Self {
            store,
            core: Mutex::new(Core { applier, acl, digest, next_keyspace, log_time_ms, value_sums }),
            streams: RwLock::new(streams),
            flushes: RwLock::new(flushes),
            local_nonces: Mutex::new(BTreeMap::new()),
            verified: AtomicU64::new(0),
            applied: AtomicU64::new(0),
            applied_time_ms: AtomicU64::new(log_time_ms),
            expiries: AtomicBool::new(expiries),
            queues: RwLock::new(queues),
            counters: Counters::default(),
            remembered: Mutex::new(remembered::Remembered::default()),
        })
    }

    /// Logs and applies an entry from a client: verifies its signature
    /// (outside any lock), applies it at the next position, and returns
    /// once it is acknowledged. Malformed and forged entries are logged too
    /// (they record what every node records for them); an entry of a newer
    /// protocol is refused.
    pub fn submit(&self, entry: &[u8]) -> Result<Applied> {
        if let Err(e) = EntryView::parse(entry) {
            if e.needs_upgrade() {
                return Err(NodeError::UpgradeNeeded(e));
            }
        }
        let (verified, hash) = self.check(entry);
        self.apply_remembering(None, None, entry, verified, hash)
    }

    /// The verdict on `entry`'s signature, checked here (outside any lock)
    /// unless these exact bytes — by their keccak256, never by their
    /// sender — are an entry this node verified or signed and wrote.
    /// `None` for bytes that are not a well-formed entry.
    fn check(&self, entry: &[u8]) -> Check {
        let hash = keccak256(entry);
        if self.remembered.lock().contains(&hash) {
            self.counters.skipped.fetch_add(1, Ordering::Relaxed);
            return (Some(true), hash);
        }
        let view = match EntryView::parse(entry) {
            Ok(v) => v,
            Err(_) => return (None, hash),
        };
        self.verified.fetch_add(1, Ordering::Relaxed);
        (Some(view.verify().is_ok()), hash)
    }

    /// [`Node::apply`], then remembers `hash` if the node found the entry
    /// genuine itself.
    fn apply_remembering(
        &self,
        position: Option<u64>,
        log_time_ms: Option<u64>,
        entry: &[u8],
        verified: Option<bool>,
        hash: [u8; 32],
    ) -> Result<Applied> {
        let applied = self.apply(position, log_time_ms, entry, verified)?;
        if verified == Some(true) {
            self.remembered.lock().insert(hash);
        }
        Ok(applied)
    }

    /// Applies an entry that holds `position` in another log (a shared log
    /// this node follows), keeping a local copy: versions come from
    /// `position`, which must increase from one call to the next; the
    /// local record gets the next local position and the entry's log time
    /// there, `log_time_ms` (raised to the previous record's, so every
    /// copy of the log stores the same times). `verified` as in [`Applier::apply_entry`]; with `None`
    /// the signature is checked here, outside any lock, unless these exact
    /// bytes are an entry this node verified or signed and wrote.
    pub fn apply_replicated(
        &self,
        position: u64,
        log_time_ms: u64,
        entry: &[u8],
        verified: Option<bool>,
    ) -> Result<Applied> {
        if let Err(e) = EntryView::parse(entry).map(|_| ()) {
            if e.needs_upgrade() {
                return Err(NodeError::UpgradeNeeded(e));
            }
        }
        match verified {
            Some(v) => self.apply(Some(position), Some(log_time_ms), entry, Some(v)),
            None => {
                let (verified, hash) = self.check(entry);
                self.apply_remembering(Some(position), Some(log_time_ms), entry, verified, hash)
            }
        }
    }

    /// [`Node::apply_replicated`] of many entries from another log (as a
    /// [`Follower`](crate::shared_log::Follower) hands them over): their signatures are checked on all cores (skipping
    /// entries this node verified or signed and wrote) while this thread
    /// applies the entries already checked, in order, under one hold of
    /// the apply lock; the call returns once the last is acknowledged. It
    /// stops at the first entry that fails (an entry of a newer protocol, a
    /// store error): the entries before it are applied.
    pub fn apply_replicated_batch(&self, entries: &[LogEntry]) -> Result<Vec<Applied>> {
        let mut out = Vec::with_capacity(entries.len());
        let mut genuine = Vec::new();
        let applied = {
            let mut core = self.core.lock();
            let mut apply = |chunk: &[LogEntry], checks: Vec<Check>| {
                self.apply_in_order(&mut core, chunk, checks, &mut out, &mut genuine)
            };
            if entries.len() < 2 * PIPELINE_CHUNK {
                apply(entries, self.checks(entries))
            } else {
                verify::pipeline(entries, PIPELINE_CHUNK, |e| self.check(&e.bytes), apply)
            }
        };
        if let Some(last) = out.last() {
            self.store.commit(last.position)?;
        }
        self.remember(genuine);
        applied.map(|()| out)
    }

    /// [`Node::check`] of every entry, on all cores.
    fn checks(&self, entries: &[LogEntry]) -> Vec<Check> {
        verify::par_map(entries, verify::threads(), |e| self.check(&e.bytes))
    }

    /// Applies `entries`, checked by [`Node::checks`], in order under one
    /// hold of the apply lock, without waiting for the acknowledgement
    /// (the caller overlaps that wait with the next batch). Stops at the
    /// first entry that fails: returns what it applied before it, and the
    /// error.
    fn apply_checked(&self, entries: &[LogEntry], checks: Vec<Check>) -> (Vec<Applied>, Option<NodeError>) {
        let mut out = Vec::with_capacity(entries.len());
        let mut genuine = Vec::new();
        let applied = self.apply_in_order(&mut self.core.lock(), entries, checks, &mut out, &mut genuine);
        self.remember(genuine);
        (out, applied.err())
    }

    /// Applies `entries` with their checks under the apply lock, pushing
    /// each result to `out` and the hashes of the genuine ones to
    /// `genuine`; stops at the first that fails.
    fn apply_in_order(
        &self,
        core: &mut Core,
        entries: &[LogEntry],
        checks: Vec<Check>,
        out: &mut Vec<Applied>,
        genuine: &mut Vec<[u8; 32]>,
    ) -> Result<()> {
        for (e, (verified, hash)) in entries.iter().zip(checks) {
            out.push(self.apply_locked(core, (Some(e.position), Some(e.time_ms)), &e.bytes, verified)?);
            if verified == Some(true) {
                genuine.push(hash);
            }
        }
        Ok(())
    }

    /// Remembers the hashes of entries the node verified and wrote, so the
    /// same bytes are not verified again.
    fn remember(&self, genuine: Vec<[u8; 32]>) {
        if !genuine.is_empty() {
            let mut remembered = self.remembered.lock();
            genuine.into_iter().for_each(|h| remembered.insert(h));
        }
    }

    /// The next nonce `sender`'s local entries use: above every nonce the
    /// node has applied from it and every nonce it handed out before.
    fn next_local_nonce(&self, sender: &Address) -> u64 {
        if let Some(next) = self.local_nonces.lock().get_mut(sender) {
            let nonce = *next;
            *next = next.saturating_add(1);
            return nonce;
        }
        // The apply lock first, as apply takes them: no entry of `sender`
        // lands between reading its windows and caching the counter.
        let core = self.core.lock();
        let mut nonces = self.local_nonces.lock();
        let next = nonces.entry(*sender).or_insert_with(|| highest_nonce(&core, sender).saturating_add(1));
        let nonce = *next;
        *next = next.saturating_add(1);
        nonce
    }

    /// Reserves the nonce `sender` should sign its next entry with: above
    /// every nonce the node has applied from it and every nonce it handed
    /// out before — for local writes or to earlier callers — so a client
    /// signing elsewhere with the node's key (or two clients sharing a key)
    /// never collides with the node's own entries.
    pub fn reserve_nonce(&self, sender: &Address) -> u64 {
        self.next_local_nonce(sender)
    }

    /// Applies `bytes` at `position` (the next local one if `None`) of
    /// log time `log_time_ms` (the node's own log's if `None`), appends
    /// the record and waits for its acknowledgement.
    fn apply(
        &self,
        position: Option<u64>,
        log_time_ms: Option<u64>,
        bytes: &[u8],
        verified: Option<bool>,
    ) -> Result<Applied> {
        let applied = {
            let mut core = self.core.lock();
            self.apply_locked(&mut core, (position, log_time_ms), bytes, verified)?
        };
        self.store.commit(applied.position)?;
        Ok(applied)
    }

    /// Applies `bytes` at `(position, log time)` under the apply lock.
    fn apply_locked(
        &self,
        core: &mut Core,
        (position, log_time_ms): (Option<u64>, Option<u64>),
        bytes: &[u8],
        verified: Option<bool>,
    ) -> Result<Applied> {
        let local = self.store.next_position();
        let at = position.unwrap_or(local);
        let view = EntryView::parse(bytes).ok();
        let tx_count = view.as_ref().map_or(0, |v| v.txs().len());
        let last_version = tx_version(at, tx_count.saturating_sub(1) as u16);
        // What an entry may change besides the stores' records, to undo it
        // if the record cannot be stored.
        let windows_before: Vec<(Address, StreamId, Option<NonceWindow>)> = view
            .iter()
            .flat_map(|v| v.tags().iter().map(move |t| (v.sender(), t)))
            .map(|(a, t)| (a, t, core.applier.nonce_window(&a, &t)))
            .collect();
        let digest_before = core.digest;
        let log_time_ms = log_time_ms.unwrap_or_else(now_ms).max(core.log_time_ms);
        let Core { applier, acl, digest, next_keyspace, value_sums, .. } = core;
        let queues = self.queues.read();
        let flushes = Flushes { map: &self.flushes, sums: value_sums, queues: &queues };
        let mut state =
            EntryState::new(&self.store, bytes, &self.streams, *next_keyspace, acl, digest, flushes)
                .with_expiries(self.expiries.load(Ordering::Relaxed));
        let (outcome, answers) = applier.apply_entry_answered(&mut state, at, log_time_ms, bytes, verified);
        let sum_ops = state.sum_ops(last_version);
        let EntryState {
            new_streams,
            new_flushes,
            sums_before,
            acl_before,
            error,
            mut ops,
            queue_changes,
            ..
        } = state;
        ops.extend(sum_ops);
        if ops.iter().any(|op| op.keyspace == SYSTEM_KEYSPACE && op.key.first() == Some(&EXPIRY_PREFIX)) {
            self.expiries.store(true, Ordering::Relaxed);
        }
        if queue_changes.swept > 0 {
            drop_replaced(&mut ops);
        }
        let counts = counts_after(&queues, &queue_changes);
        drop(queues);
        for (stream, count) in &counts {
            let value =
                if *count == 0 { Derived::Delete } else { Derived::Bytes(count.to_be_bytes().to_vec()) };
            ops.push(DerivedOp::system(&expiry_count_key(stream), last_version, value));
        }
        for (sender, stream, before) in &windows_before {
            let after = core.applier.nonce_window(sender, stream);
            if let Some(w) = after.filter(|w| Some(*w) != *before) {
                ops.push(DerivedOp::system(
                    &nonce_key(sender, stream),
                    last_version,
                    Derived::Bytes(w.encode()),
                ));
            }
        }
        let undo = |core: &mut Core| {
            for (sender, stream, before) in windows_before.iter() {
                core.applier.set_nonce_window(*sender, *stream, *before);
            }
            for (stream, before) in acl_before {
                core.acl.restore_stream(stream, before);
            }
            core.digest = digest_before;
            for (stream, before) in sums_before {
                match before {
                    Some(sum) => core.value_sums.insert(stream, sum),
                    None => core.value_sums.remove(&stream),
                };
            }
            let mut streams = self.streams.write();
            new_streams.iter().for_each(|(s, _)| {
                streams.remove(s);
            });
        };
        if let EntryOutcome::UpgradeNeeded(e) = outcome {
            undo(core);
            return Err(NodeError::UpgradeNeeded(e));
        }
        if let Some(e) = error.into_inner() {
            undo(core);
            return Err(e.into());
        }
        // Readers may learn the new keyspaces before the record is visible:
        // they find nothing there until it is.
        self.streams.write().extend(new_streams.iter().copied());
        let applied_ops: Vec<_> = ops.iter().map(DerivedOp::as_applied).collect();
        let expect = position.is_none().then_some(local);
        let annex = match &outcome {
            EntryOutcome::Applied(results) => annex::encode(results),
            _ => Vec::new(),
        };
        let state = core.digest.to_bytes();
        match self.store.append_applied(
            expect,
            last_version,
            bytes,
            &applied_ops,
            &state,
            &annex,
            Some(log_time_ms),
        ) {
            Ok(p) => {
                // An entry of a local signer from elsewhere (a client
                // holding the same key) moves its counter past the nonces
                // the entry's windows now hold.
                if let Some((sender, ..)) = windows_before.first() {
                    if let Some(next) = self.local_nonces.lock().get_mut(sender) {
                        let seen = windows_before
                            .iter()
                            .filter_map(|(a, t, _)| core.applier.nonce_window(a, t))
                            .map(|w| w.highest())
                            .max()
                            .unwrap_or(0);
                        *next = (*next).max(seen.saturating_add(1));
                    }
                }
                core.next_keyspace =
                    new_streams.iter().map(|(_, ks)| ks + 1).max().unwrap_or(core.next_keyspace);
                core.log_time_ms = log_time_ms;
                let mut queues = self.queues.write();
                queues.swept_to.extend(queue_changes.swept_to);
                for (stream, count) in counts {
                    if count == 0 {
                        queues.counts.remove(&stream);
                    } else {
                        queues.counts.insert(stream, count);
                    }
                }
                for (stream, version) in &new_flushes {
                    let keyspace = self.streams.read().get(stream).copied();
                    raise_flush_floors(&self.store, keyspace, stream, *version);
                }
                self.flushes.write().extend(new_flushes);
                self.applied_time_ms.fetch_max(log_time_ms, Ordering::Relaxed);
                self.applied.fetch_add(1, Ordering::Relaxed);
                Ok(Applied { position: p, version: last_version, outcome, answers, digest: state })
            }
            Err(e) => {
                undo(core);
                Err(e.into())
            }
        }
    }

    /// Signs `txs` into one entry of `signer`'s at its next nonce, applies
    /// it and waits for its acknowledgement: the version is the entry's
    /// last transaction's; `outcome` and `answers` hold every
    /// transaction's. Writers that share entries go through the commit
    /// [`pipeline`](crate::pipeline) instead.
    pub fn append_entry(&self, signer: &Signer, txs: Vec<TxPart>) -> Result<Applied> {
        let (bytes, hash) = self.sign_entry(signer, txs, Protocol::V2)?;
        self.commit_own(&bytes, hash)
    }

    /// Signs `txs` into one entry in `protocol` at `signer`'s next nonce
    /// and remembers its hash, so the entry needs no verification when it
    /// is applied (here or coming back from a shared log). The node's own
    /// entries are protocol 2 or later: its clients' small writes then pay
    /// for a stream ID once per entry, not once per transaction.
    pub fn sign_entry<T: TxWrite>(
        &self,
        signer: &Signer,
        txs: Vec<T>,
        protocol: Protocol,
    ) -> Result<(Vec<u8>, [u8; 32])> {
        let count = txs.len() as u64;
        let nonce = self.next_local_nonce(&signer.address());
        let entry = Entry { sender: signer.address(), nonce, txs };
        let bytes = entry.encode_signed_as(protocol, signer).map_err(NodeError::Envelope)?;
        self.counters.signed.fetch_add(1, Ordering::Relaxed);
        self.counters.local_txs.fetch_add(count, Ordering::Relaxed);
        let hash = keccak256(&bytes);
        self.remembered.lock().insert(hash);
        Ok((bytes, hash))
    }

    /// Applies an entry this node signed ([`Node::sign_entry`]) at the
    /// next position of its own log and waits for its acknowledgement.
    pub fn commit_own(&self, entry: &[u8], hash: [u8; 32]) -> Result<Applied> {
        let applied = self.apply(None, None, entry, Some(true))?;
        self.remembered.lock().insert(hash);
        Ok(applied)
    }

    /// How far the node has applied the log.
    pub fn replay_progress(&self) -> ReplayProgress {
        let version = self.store.version();
        ReplayProgress { applied_position: version_position(version), applied_version: version }
    }

    /// The state digest and the applied version it is the digest of, read
    /// together (nodes that applied the same entries, watching the same
    /// streams, hold the same pair).
    pub fn state_digest(&self) -> ([u8; 32], u64) {
        let core = self.core.lock();
        (core.digest.to_bytes(), self.store.version())
    }

    /// What the node holds of each node-wide quota.
    pub fn quota_usage(&self) -> QuotaUsage {
        let core = self.core.lock();
        QuotaUsage {
            windows: core.applier.window_count(),
            streams: core.acl.stream_count(),
            acl_bytes: core.acl.bytes(),
        }
    }

    /// Signatures this process checked (replay checks none).
    pub fn signatures_verified(&self) -> u64 {
        self.verified.load(Ordering::Relaxed)
    }

    /// Entries this process applied (replay applies none).
    pub fn entries_applied(&self) -> u64 {
        self.applied.load(Ordering::Relaxed)
    }

    /// Entries this process signed for local writes (one per batch).
    pub fn entries_signed(&self) -> u64 {
        self.counters.signed.load(Ordering::Relaxed)
    }

    /// Transactions this process signed for local writes, over all the
    /// entries it signed.
    pub fn local_txs(&self) -> u64 {
        self.counters.local_txs.load(Ordering::Relaxed)
    }

    /// Signature checks skipped because the bytes were an entry this node
    /// had verified or signed and written.
    pub fn verifications_skipped(&self) -> u64 {
        self.counters.skipped.load(Ordering::Relaxed)
    }

    /// The store below.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Syncs and closes the node.
    pub fn close(self) -> Result<()> {
        Ok(self.store.close()?)
    }
}
