//! Applying one transaction: `docs/semantics.md`'s check order with 0G's result
//! strings. Pure and deterministic — it reads the state through
//! [`StateView`] and returns the effects for the caller to commit, so the
//! same logic runs on the embedded store, on a shared-log follower and in
//! tests. Lists are walked in body order (0G walks hash maps, which lets two
//! nodes report different failures; body order removes that).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::acl::{Acl, AclChange};
use crate::codec::{Codec, ControlOp, ExpireCond, NewExpiry, ParseError, PutCond, ValueRef, WriteOp};
use crate::envelope::Protocol;
use crate::quota::{Quota, Quotas};
use crate::types::{version_position, Address, StreamId};

/// What apply needs to know about the state before a transaction.
pub trait StateView {
    /// Version of the newest write (a delete counts) to the key; 0 if none.
    fn latest_version(&self, stream: &StreamId, key: &[u8]) -> u64;
    /// The live value of the key (`None` if absent or deleted). Apply asks
    /// only where an op computes from the bytes, so a store-backed state
    /// need not read values that a plain put replaces.
    fn live_value(&self, stream: &StreamId, key: &[u8]) -> Option<Cow<'_, [u8]>>;
    /// Whether the key has a live value: what conditional ops ask, which
    /// a store-backed state answers from the key's newest op header.
    fn is_live(&self, stream: &StreamId, key: &[u8]) -> bool {
        self.live_value(stream, key).is_some()
    }
    /// The expiry (Unix milliseconds) of the key's value, if it has one.
    /// "Live" above ignores it: apply judges it against the log time.
    fn expires_at(&self, _stream: &StreamId, _key: &[u8]) -> Option<u64> {
        None
    }
    /// The log time of the record holding `version`, if known: when a
    /// reader at that version read. `None` makes an expiry since then count
    /// as a change (the safe answer).
    fn log_time_of(&self, _version: u64) -> Option<u64> {
        None
    }
    /// The version of the stream's newest flush (0: never flushed). The
    /// other methods already answer by it: a key whose newest write is
    /// older than the flush is not live and has no expiry, and its
    /// version is the flush's.
    fn flush_version(&self, _stream: &StreamId) -> u64 {
        0
    }
    /// Access control as of now.
    fn acl(&self) -> &Acl;
}

/// The streams a node applies: all, or a set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Watched {
    /// Every stream.
    #[default]
    All,
    /// Only these.
    Only(BTreeSet<StreamId>),
}

impl Watched {
    /// Whether `stream` is watched.
    pub fn contains(&self, stream: &StreamId) -> bool {
        match self {
            Watched::All => true,
            Watched::Only(set) => set.contains(stream),
        }
    }
}

/// How many log positions back a transaction's read version may lie, by
/// default (see [`apply_tx`]): about a million entries.
pub const DEFAULT_VERSION_CHECK_HORIZON: u64 = 1 << 20;

/// One transaction to apply.
#[derive(Clone, Copy)]
pub struct TxInput<'a> {
    /// The transaction's own version, `(position << 16) | index`.
    pub version: u64,
    /// The entry's log time in milliseconds: the same on every node that
    /// applies the entry, so rules that depend on time stay deterministic.
    pub log_time_ms: u64,
    /// Who signed the entry.
    pub sender: Address,
    /// The entry's protocol: an op newer than it (a native `Get` before
    /// [`Protocol::V3`], an expiry op before [`Protocol::V4`]) is a parse
    /// error, as it was to the nodes that knew no such op.
    pub protocol: Protocol,
    /// The streams the transaction writes or controls.
    pub tags: &'a [StreamId],
    /// How to read the body.
    pub codec: &'a dyn Codec,
    /// The body.
    pub body: &'a [u8],
}

/// The outcome of a transaction, as stored per version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxResult {
    /// Applied.
    Commit,
    /// The body could not be parsed.
    DataParseError(ParseError),
    /// A key read or written changed after the transaction's version.
    VersionConfliction,
    /// The transaction's version lies further back than the version-check
    /// horizon: the deletes it would be checked against may be forgotten.
    VersionTooOld,
    /// A stream read is not watched, or one written or controlled is not tagged.
    TagsMismatch,
    /// The sender has no write right on any tagged stream.
    SenderNoWritePermission,
    /// The sender may not write this key.
    WritePermissionDenied {
        /// The stream.
        stream: StreamId,
        /// The key.
        key: Vec<u8>,
    },
    /// The sender may not perform this access-control op.
    AccessControlPermissionDenied {
        /// The op.
        op: ControlOp,
        /// Its stream.
        stream: StreamId,
        /// Its key (empty if none).
        key: Vec<u8>,
        /// Its account.
        account: Address,
    },
    /// A read-modify-write op could not be carried out (native codec).
    OperationFailed(&'static str),
    /// The entry's signature does not recover to its sender.
    BadSignature,
    /// The entry's nonce was already used (anti-replay).
    Replayed,
    /// Applying the transaction would grow the node's state past a quota
    /// ([`crate::quota`]).
    QuotaExceeded(Quota),
}

impl fmt::Display for TxResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TxResult::Commit => f.write_str("Commit"),
            TxResult::DataParseError(e) => write!(f, "DataParseError: {e}"),
            TxResult::VersionConfliction => f.write_str("VersionConfliction"),
            TxResult::VersionTooOld => f.write_str("VersionTooOld"),
            TxResult::TagsMismatch => f.write_str("TagsMismatch"),
            TxResult::SenderNoWritePermission => f.write_str("SenderNoWritePermission"),
            TxResult::WritePermissionDenied { stream, key } => {
                write!(f, "WritePermissionDenied: stream: {stream}, key: {}", truncated_key(key))
            }
            TxResult::AccessControlPermissionDenied { op, stream, key, account } => write!(
                f,
                "AccessControlPermissionDenied: operation: {}, stream: {stream}, key: {}, account: {account}",
                op.zerog_name(),
                truncated_key(key)
            ),
            TxResult::OperationFailed(why) => write!(f, "OperationFailed: {why}"),
            TxResult::BadSignature => f.write_str("BadSignature"),
            TxResult::Replayed => f.write_str("Replayed"),
            TxResult::QuotaExceeded(quota) => write!(f, "QuotaExceeded: {quota}"),
        }
    }
}

/// A key as 0G prints it in results: `NONE` if empty, its first 32
/// characters if it is UTF-8, else `UNKNOWN`.
pub fn truncated_key(key: &[u8]) -> Cow<'_, str> {
    if key.is_empty() {
        return Cow::Borrowed("NONE");
    }
    match std::str::from_utf8(key) {
        Ok(s) => match s.char_indices().nth(32) {
            Some((cut, _)) => Cow::Borrowed(&s[..cut]),
            None => Cow::Borrowed(s),
        },
        Err(_) => Cow::Borrowed("UNKNOWN"),
    }
}

/// The new value a committed write leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewValue {
    /// Bytes of the body (the index points into the log entry).
    Body(ValueRef),
    /// Bytes the runtime computed (increment, append).
    Computed(Vec<u8>),
    /// The key is deleted.
    Deleted,
}

/// One key a committed transaction changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectWrite {
    /// The stream.
    pub stream: StreamId,
    /// The key.
    pub key: Vec<u8>,
    /// What it becomes.
    pub value: NewValue,
    /// When the new value expires (Unix milliseconds); `None` for a
    /// delete or a value without expiry.
    pub expires_at: Option<u64>,
}

/// What one op of a committed transaction found and did: what a reply to
/// the command that planned it is built from, so no server simulates an op
/// a second time. Not stored in the log; a node hands it to the local
/// writer waiting for the transaction. New ops add variants here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpAnswer {
    /// A put or delete, plain or conditional: whether the key held a live
    /// value just before the op, and whether the op changed the key.
    Wrote {
        /// The key held a live value.
        existed: bool,
        /// The op wrote (a conditional op whose condition failed did not).
        changed: bool,
    },
    /// An increment: the new value.
    Integer(i64),
    /// An append: the value's new length.
    Length(usize),
    /// A get: the value as the transaction saw it at that point.
    Value(Option<Vec<u8>>),
    /// A flush: the stream's keys are gone.
    Flushed,
    /// A collection op that counts: fields or members added or removed,
    /// or whether it set (`HSETNX`).
    Count(i64),
    /// A collection op that removes members: the ones it removed.
    Members(Vec<Vec<u8>>),
    /// A sorted-set op that removes members: the ones it removed, with
    /// their scores as Redis prints them.
    Scored(Vec<(Vec<u8>, Vec<u8>)>),
    /// A collection op refused without changing anything: Redis's error
    /// text (`WRONGTYPE …`, `ERR hash value is not an integer`).
    Refused(&'static str),
}

/// What applying a transaction does: its result and, if it committed, its
/// changes (empty otherwise: all or nothing) and the answer of each of its
/// write-set ops, in body order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxEffects {
    /// The result string's source.
    pub result: TxResult,
    /// Streams flushed, each once, in body order: they apply before
    /// `writes`, which hold only what the transaction wrote after a flush
    /// of the key's stream.
    pub flushes: Vec<StreamId>,
    /// Keys changed, one per key, in the order of each key's last write.
    pub writes: Vec<EffectWrite>,
    /// Access-control changes, merged, in order of first appearance.
    pub acl: Vec<AclChange>,
    /// One answer per op of the write set, in body order (empty unless
    /// committed).
    pub answers: Vec<OpAnswer>,
}

impl TxEffects {
    /// A failed transaction: its result and no changes.
    pub fn failed(result: TxResult) -> Self {
        Self { result, flushes: Vec::new(), writes: Vec::new(), acl: Vec::new(), answers: Vec::new() }
    }
}

/// Applies one transaction against `state`. `None`: skipped, because a tag
/// is a stream this node does not watch (no result is recorded).
///
/// `horizon` is the version-check horizon, in log positions: a transaction
/// that checks versions and read at a position more than `horizon` before
/// its own is `VersionTooOld`, before its read set is looked at. Nodes
/// forget deleted keys once they are that old, so a check against them
/// could not be answered the same way everywhere; the horizon makes the
/// answer depend on positions alone. Every node of a log must use the same
/// value, and the same `quotas`: a transaction that would claim more
/// streams or access-control bytes than they allow is `QuotaExceeded`,
/// after its controls are checked.
pub fn apply_tx(
    state: &dyn StateView,
    watched: &Watched,
    horizon: u64,
    quotas: &Quotas,
    tx: TxInput<'_>,
) -> Option<TxEffects> {
    if tx.tags.is_empty() || tx.tags.iter().any(|t| !watched.contains(t)) {
        return None;
    }
    Some(checked(state, watched, horizon, quotas, tx).unwrap_or_else(TxEffects::failed))
}

fn checked(
    state: &dyn StateView,
    watched: &Watched,
    horizon: u64,
    quotas: &Quotas,
    tx: TxInput<'_>,
) -> Result<TxEffects, TxResult> {
    let acl = state.acl();
    // 1. A write right on some tagged stream, decided without the body.
    if !tx.tags.iter().any(|t| acl.can_write_stream(&tx.sender, t)) {
        return Err(TxResult::SenderNoWritePermission);
    }
    let decoded = tx.codec.decode(tx.body, tx.tags).map_err(TxResult::DataParseError)?;
    let check_versions = decoded.version != u64::MAX;
    if check_versions
        && version_position(decoded.version).saturating_add(horizon) < version_position(tx.version)
    {
        return Err(TxResult::VersionTooOld);
    }
    let newer = |stream: &StreamId, key: &[u8]| {
        state.latest_version(stream, key) > decoded.version
            || expired_since(state, stream, key, decoded.version, tx.log_time_ms)
    };
    // 2. The read set.
    for read in decoded.reads.map_err(TxResult::DataParseError)? {
        if !watched.contains(&read.stream) {
            return Err(TxResult::TagsMismatch);
        }
        if check_versions && newer(&read.stream, &read.key) {
            return Err(TxResult::VersionConfliction);
        }
    }
    // 3. The write set, one check per key at the place of its last write
    // (a `Get` writes nothing: it needs a tag like any op, no permission).
    let writes = decoded.writes.map_err(TxResult::DataParseError)?;
    if let Some(w) = writes.iter().find(|w| w.op.protocol() > tx.protocol) {
        let why = format!("write op {:?} needs protocol {:?}", w.op, w.op.protocol());
        return Err(TxResult::DataParseError(ParseError::invalid(why)));
    }
    let tagged = |s: &StreamId| tx.tags.contains(s);
    let mut last_at = BTreeMap::new();
    let keyed = |w: &&crate::codec::Write| !matches!(w.op, WriteOp::Get | WriteOp::Flush);
    for (i, w) in writes.iter().enumerate().filter(|(_, w)| keyed(w)) {
        last_at.insert((w.stream, w.key.as_slice()), i);
    }
    let mut order: Vec<usize> = last_at.values().copied().collect();
    order.sort_unstable();
    for &i in &order {
        let w = &writes[i];
        if !tagged(&w.stream) {
            return Err(TxResult::TagsMismatch);
        }
        if check_versions && !decoded.check_reads_only && newer(&w.stream, &w.key) {
            return Err(TxResult::VersionConfliction);
        }
        if !acl.has_write_permission(&tx.sender, &w.stream, &w.key) {
            return Err(TxResult::WritePermissionDenied { stream: w.stream, key: w.key.clone() });
        }
    }
    // A collection op that writes a second key (`SMOVE`) is checked for it too.
    for w in &writes {
        let WriteOp::Collection { op, args } = w.op else { continue };
        let Some(other) = crate::collection::other_key(op, args.get(tx.body)) else { continue };
        if other.is_empty() || other.len() > crate::codec::MAX_KEY_BYTES {
            let why = format!("{}: a destination key of {} bytes", op.name(), other.len());
            return Err(TxResult::DataParseError(ParseError::invalid(why)));
        }
        if check_versions && !decoded.check_reads_only && newer(&w.stream, &other) {
            return Err(TxResult::VersionConfliction);
        }
        if !acl.has_write_permission(&tx.sender, &w.stream, &other) {
            return Err(TxResult::WritePermissionDenied { stream: w.stream, key: other });
        }
    }
    if writes.iter().any(|w| w.op == WriteOp::Get && !tagged(&w.stream)) {
        return Err(TxResult::TagsMismatch);
    }
    // A flush writes every key of its stream: its version check is against
    // the stream's last flush (a check of every key would not be O(1)), its
    // permission that of writing any key there ([`Acl::may_flush`]).
    for w in writes.iter().filter(|w| w.op == WriteOp::Flush) {
        if !tagged(&w.stream) {
            return Err(TxResult::TagsMismatch);
        }
        if check_versions && !decoded.check_reads_only && state.flush_version(&w.stream) > decoded.version {
            return Err(TxResult::VersionConfliction);
        }
        if !acl.may_flush(&tx.sender, &w.stream) {
            return Err(TxResult::WritePermissionDenied { stream: w.stream, key: w.key.clone() });
        }
    }
    // 4. Access control.
    let changes = merge_controls(acl, &tx, decoded.controls.map_err(TxResult::DataParseError)?);
    for c in &changes {
        if !tagged(&c.stream) {
            return Err(TxResult::TagsMismatch);
        }
        if !control_allowed(acl, &tx, c) {
            return Err(TxResult::AccessControlPermissionDenied {
                op: c.op,
                stream: c.stream,
                key: c.key.clone(),
                account: c.account,
            });
        }
    }
    // 5. Quotas: the streams the transaction would claim (each new tagged
    // stream gets a change above) and the access-control bytes it adds.
    let claimed: BTreeSet<StreamId> = changes.iter().map(|c| c.stream).filter(|s| acl.is_new(s)).collect();
    let acl_delta = changes.iter().map(|c| acl.bytes_change(c)).sum();
    quotas
        .admit_claims(acl.stream_count(), claimed.len() as u64, acl.bytes(), acl_delta)
        .map_err(TxResult::QuotaExceeded)?;
    // 6. Commit: evaluate the writes in body order, each seeing the ones
    // before; the state's bytes are read only by ops that compute from them.
    // A flush drops what earlier writes of the transaction left in its
    // stream, and later ones see the stream empty.
    let mut pending = Pending {
        state,
        body: tx.body,
        now: tx.log_time_ms,
        version: tx.version,
        values: BTreeMap::new(),
        written: 0,
        flushes: Vec::new(),
    };
    let mut answers = Vec::with_capacity(writes.len());
    for w in &writes {
        let answer = match w.op {
            // A flush takes the stream's type records with its keys, so no
            // key it emptied still reads as a collection.
            WriteOp::Flush => {
                pending.flush(w.stream);
                pending.flush(crate::collection::types(&w.stream));
                OpAnswer::Flushed
            }
            WriteOp::Collection { op, args } => {
                crate::collection::evaluate(op, &w.stream, &w.key, args.get(tx.body), &mut pending)?
            }
            // A string op that reads the value refuses a collection's metadata.
            WriteOp::Get | WriteOp::Append(_) | WriteOp::Increment(_)
                if crate::collection::is_collection(&pending, &w.stream, &w.key) =>
            {
                OpAnswer::Refused(crate::collection::WRONGTYPE)
            }
            op => {
                let (value, answer) = evaluate(op, &pending.before(&w.stream, &w.key), tx.body)?;
                if let Some(value) = value {
                    // A string write over a collection removes it (an expiry
                    // change keeps it: the key holds the same metadata).
                    if !matches!(op, WriteOp::Expire { .. }) {
                        if let Some(meta) = crate::collection::stale(&pending, &w.stream, &w.key) {
                            crate::collection::clean_up(&mut pending, &w.stream, &w.key, &meta);
                        }
                    }
                    pending.set(w.stream, w.key.clone(), value);
                }
                answer
            }
        };
        answers.push(answer);
    }
    let flushes = std::mem::take(&mut pending.flushes);
    let writes = pending.into_writes();
    Ok(TxEffects { result: TxResult::Commit, flushes, writes, acl: changes, answers })
}

/// What a key holds after a write of the transaction: its value and the
/// value's expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Slot {
    pub(crate) value: NewValue,
    pub(crate) expires_at: Option<u64>,
}

impl Slot {
    pub(crate) fn lasting(value: NewValue) -> Self {
        Slot { value, expires_at: None }
    }
}

/// What the transaction wrote so far, over the state: the keys it changed
/// (its own and those its collection ops derive) and the streams it
/// flushed. A flush drops what earlier writes left in its stream, and
/// later ones see the stream empty.
pub(crate) struct Pending<'a> {
    state: &'a dyn StateView,
    body: &'a [u8],
    now: u64,
    version: u64,
    /// Each key's slot, with the place of its last write.
    values: BTreeMap<(StreamId, Vec<u8>), (usize, Slot)>,
    written: usize,
    flushes: Vec<StreamId>,
}

impl<'a> Pending<'a> {
    /// The transaction's version.
    pub(crate) fn version(&self) -> u64 {
        self.version
    }

    /// The key as the transaction sees it now.
    pub(crate) fn before<'b>(&'b self, stream: &'b StreamId, key: &'b [u8]) -> Before<'b> {
        Before {
            earlier: self.values.get(&(*stream, key.to_vec())).map(|(_, slot)| slot),
            flushed: self.flushes.contains(stream),
            state: self.state,
            stream,
            key,
            body: self.body,
            now: self.now,
        }
    }

    /// Whether the key holds a value, expired or not.
    pub(crate) fn held(&self, stream: &StreamId, key: &[u8]) -> bool {
        let b = self.before(stream, key);
        match b.earlier {
            Some(slot) => slot.value != NewValue::Deleted,
            None => !b.flushed && self.state.is_live(stream, key),
        }
    }

    /// The bytes the key holds, expired or not.
    pub(crate) fn held_bytes(&self, stream: &StreamId, key: &[u8]) -> Option<Vec<u8>> {
        let b = self.before(stream, key);
        match b.earlier.map(|slot| &slot.value) {
            Some(NewValue::Body(v)) => Some(v.get(self.body).to_vec()),
            Some(NewValue::Computed(c)) => Some(c.clone()),
            Some(NewValue::Deleted) => None,
            None if b.flushed => None,
            None => self.state.live_value(stream, key).map(Cow::into_owned),
        }
    }

    /// Writes the key.
    pub(crate) fn set(&mut self, stream: StreamId, key: Vec<u8>, slot: Slot) {
        self.written += 1;
        self.values.insert((stream, key), (self.written, slot));
    }

    /// Flushes the stream.
    pub(crate) fn flush(&mut self, stream: StreamId) {
        self.values.retain(|(s, _), _| *s != stream);
        if !self.flushes.contains(&stream) {
            self.flushes.push(stream);
        }
    }

    /// The keys changed, in the order of each one's last write.
    fn into_writes(self) -> Vec<EffectWrite> {
        let mut out: Vec<_> = self.values.into_iter().collect();
        out.sort_unstable_by_key(|(_, (at, _))| *at);
        out.into_iter()
            .map(|((stream, key), (_, Slot { value, expires_at }))| EffectWrite {
                stream,
                key,
                value,
                expires_at,
            })
            .collect()
    }
}

/// Whether a value expiring `at` is gone at log time `now`. A key lives
/// through its expiry's millisecond, as in Redis (`now > at` expires it).
pub fn expired(at: Option<u64>, now: u64) -> bool {
    at.is_some_and(|at| at < now)
}

/// Whether the key's value expired after a read at `version` and by `now`:
/// an expiry counts as a write at its time for version checks, so a lock
/// extended after it had expired (and maybe been taken by another) does
/// not commit. A reader whose record's log time was already past the
/// expiry saw the key gone, and is not refused for it.
fn expired_since(state: &dyn StateView, stream: &StreamId, key: &[u8], version: u64, now: u64) -> bool {
    let at = state.expires_at(stream, key);
    if !expired(at, now) || !state.is_live(stream, key) {
        return false;
    }
    state.log_time_of(version).is_none_or(|read_at| !expired(at, read_at))
}

/// The live value a write op sees: what an earlier write of the same
/// transaction left, else the state's, whose bytes are read only if asked.
/// A value whose expiry lies before the transaction's log time is not live.
pub(crate) struct Before<'a> {
    earlier: Option<&'a Slot>,
    /// The transaction flushed the key's stream before this op: without an
    /// earlier write, the key is absent.
    flushed: bool,
    state: &'a dyn StateView,
    stream: &'a StreamId,
    key: &'a [u8],
    body: &'a [u8],
    /// The transaction's log time.
    now: u64,
}

impl Before<'_> {
    /// The expiry of the value the key holds, live or not.
    fn expires_at(&self) -> Option<u64> {
        match self.earlier {
            Some(slot) => slot.expires_at,
            None if self.flushed => None,
            None => self.state.expires_at(self.stream, self.key),
        }
    }

    pub(crate) fn is_live(&self) -> bool {
        let held = match self.earlier {
            Some(slot) => slot.value != NewValue::Deleted,
            None => !self.flushed && self.state.is_live(self.stream, self.key),
        };
        held && !expired(self.expires_at(), self.now)
    }

    /// The expiry a value computed from the live one keeps.
    pub(crate) fn kept_expiry(&self) -> Option<u64> {
        self.expires_at().filter(|_| self.is_live())
    }

    pub(crate) fn bytes(&self) -> Option<Cow<'_, [u8]>> {
        if !self.is_live() {
            return None;
        }
        match self.earlier.map(|slot| &slot.value) {
            Some(NewValue::Body(v)) => Some(Cow::Borrowed(v.get(self.body))),
            Some(NewValue::Computed(b)) => Some(Cow::Borrowed(b)),
            Some(NewValue::Deleted) => None,
            None => self.state.live_value(self.stream, self.key),
        }
    }

    /// The live value as a new value to write again (an expiry change
    /// writes the key anew, so the key's version moves and `WATCH` sees it).
    fn value_again(&self) -> NewValue {
        match self.earlier.map(|slot| &slot.value) {
            Some(v) => v.clone(),
            None => self.bytes().map_or(NewValue::Deleted, |b| NewValue::Computed(b.into_owned())),
        }
    }
}

/// One write op on the live value `before`: what the key holds after it
/// (`None` when the op changes nothing) and the op's answer.
fn evaluate(op: WriteOp, before: &Before<'_>, body: &[u8]) -> Result<(Option<Slot>, OpAnswer), TxResult> {
    let wrote = |existed: bool, slot: Option<Slot>| {
        let changed = slot.is_some();
        Ok((slot, OpAnswer::Wrote { existed, changed }))
    };
    let lasting = |value| Some(Slot::lasting(value));
    match op {
        WriteOp::Put(v) => wrote(before.is_live(), lasting(NewValue::Body(v))),
        WriteOp::Delete => wrote(before.is_live(), lasting(NewValue::Deleted)),
        WriteOp::PutIfAbsent(v) => {
            let live = before.is_live();
            wrote(live, if live { None } else { lasting(NewValue::Body(v)) })
        }
        WriteOp::PutIfPresent(v) => {
            let live = before.is_live();
            wrote(live, if live { lasting(NewValue::Body(v)) } else { None })
        }
        WriteOp::DeleteIfPresent => {
            let live = before.is_live();
            wrote(live, if live { lasting(NewValue::Deleted) } else { None })
        }
        WriteOp::Get => Ok((None, OpAnswer::Value(before.bytes().map(Cow::into_owned)))),
        // Applied by the caller, to the whole stream or through the collection.
        WriteOp::Flush | WriteOp::Collection { .. } => unreachable!("evaluated by the caller"),
        WriteOp::Append(v) => {
            let mut bytes = before.bytes().map(Cow::into_owned).unwrap_or_default();
            bytes.extend_from_slice(v.get(body));
            let len = bytes.len();
            let slot = Slot { value: NewValue::Computed(bytes), expires_at: before.kept_expiry() };
            Ok((Some(slot), OpAnswer::Length(len)))
        }
        WriteOp::Increment(by) => {
            let old = match before.bytes() {
                None => 0,
                Some(b) => parse_i64(&b)
                    .ok_or(TxResult::OperationFailed("value is not an integer or out of range"))?,
            };
            let new = old
                .checked_add(by)
                .ok_or(TxResult::OperationFailed("increment or decrement would overflow"))?;
            let slot = Slot {
                value: NewValue::Computed(new.to_string().into_bytes()),
                expires_at: before.kept_expiry(),
            };
            Ok((Some(slot), OpAnswer::Integer(new)))
        }
        WriteOp::PutExpiring { value, cond, expiry } => {
            let live = before.is_live();
            let allowed = match cond {
                PutCond::Always => true,
                PutCond::IfAbsent => !live,
                PutCond::IfPresent => live,
            };
            let slot = allowed.then(|| match expiry {
                NewExpiry::Never => Slot::lasting(NewValue::Body(value)),
                NewExpiry::Keep => Slot { value: NewValue::Body(value), expires_at: before.kept_expiry() },
                // Already past: the value would never be seen (Redis deletes it too).
                NewExpiry::At(at) if at <= before.now => Slot::lasting(NewValue::Deleted),
                NewExpiry::At(at) => Slot { value: NewValue::Body(value), expires_at: Some(at) },
            });
            wrote(live, slot)
        }
        WriteOp::Expire { cond, at } => {
            let live = before.is_live();
            let current = before.expires_at().filter(|_| live);
            let allowed = live
                && match (cond, at, current) {
                    (_, None, current) => current.is_some(),
                    (ExpireCond::Always, ..) => true,
                    (ExpireCond::IfNone, _, current) => current.is_none(),
                    (ExpireCond::IfSome, _, current) => current.is_some(),
                    (ExpireCond::IfLater, Some(new), current) => current.is_some_and(|c| new > c),
                    (ExpireCond::IfEarlier, Some(new), current) => current.is_none_or(|c| new < c),
                    (ExpireCond::IfSomeAndEarlier, Some(new), current) => current.is_some_and(|c| new < c),
                };
            let slot = allowed.then(|| match at {
                // An expiry already past deletes the key (Redis `EXPIRE` with a past time).
                Some(at) if at <= before.now => Slot::lasting(NewValue::Deleted),
                at => Slot { value: before.value_again(), expires_at: at },
            });
            wrote(live, slot)
        }
    }
}

/// A decimal `i64` as Redis accepts it (`string2ll`): optional `-`,
/// digits, no leading zeros, `+` or spaces. What `Increment` reads, so a
/// server predicting its outcome must read values the same way.
pub fn parse_i64(b: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(b).ok()?;
    let digits = s.strip_prefix('-').unwrap_or(s);
    let canonical = !digits.is_empty()
        && digits.bytes().all(|c| c.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    if !canonical || s == "-0" {
        return None;
    }
    s.parse().ok()
}

/// Merges the controls: implicit admin grants for new tagged streams first,
/// then the body's ops; ops on the same `(op & 0xF0, stream, key, account)`
/// merge (the last wins, at the place of the first); an explicit
/// `GrantAdminRole` is kept only the first time and never for the sender.
fn merge_controls(acl: &Acl, tx: &TxInput<'_>, controls: Vec<crate::codec::Control>) -> Vec<AclChange> {
    type MergeKey = (u8, StreamId, Vec<u8>, Address);
    let mut slots: Vec<AclChange> = Vec::new();
    let mut index: BTreeMap<MergeKey, usize> = BTreeMap::new();
    let mut put = |c: AclChange, keep_existing: bool| {
        let k = (c.op as u8 & 0xF0, c.stream, c.key.clone(), c.account);
        match index.get(&k) {
            Some(_) if keep_existing => {}
            Some(&i) => slots[i] = c,
            None => {
                index.insert(k, slots.len());
                slots.push(c);
            }
        }
    };
    let mut seen = BTreeSet::new();
    for t in tx.tags {
        if acl.is_new(t) && seen.insert(*t) {
            put(
                AclChange { op: ControlOp::GrantAdminRole, stream: *t, key: Vec::new(), account: tx.sender },
                false,
            );
        }
    }
    for c in controls {
        let renounce = matches!(
            c.op,
            ControlOp::RenounceAdminRole | ControlOp::RenounceWriteRole | ControlOp::RenounceSpecialWriteRole
        );
        let account = if renounce { tx.sender } else { c.account.unwrap_or_default() };
        let change = AclChange { op: c.op, stream: c.stream, key: c.key.unwrap_or_default(), account };
        if change.op == ControlOp::GrantAdminRole {
            if change.account != tx.sender {
                put(change, true);
            }
        } else {
            put(change, false);
        }
    }
    slots
}

/// The permission check of one merged op, against the state before the
/// transaction (the sender counts as admin of new tagged streams).
fn control_allowed(acl: &Acl, tx: &TxInput<'_>, c: &AclChange) -> bool {
    let admin = acl.is_admin(&tx.sender, &c.stream) || (acl.is_new(&c.stream) && tx.tags.contains(&c.stream));
    use ControlOp::*;
    match c.op {
        GrantAdminRole | SetKeyToSpecial | SetKeyToNormal | RevokeWriteRole | RevokeSpecialWriteRole => admin,
        GrantWriteRole => admin || acl.is_writer_of_stream(&tx.sender, &c.stream),
        GrantSpecialWriteRole => admin || acl.is_writer_of_key(&tx.sender, &c.stream, &c.key),
        RenounceAdminRole | RenounceWriteRole | RenounceSpecialWriteRole => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_print_like_0g() {
        assert_eq!(truncated_key(b""), "NONE");
        assert_eq!(truncated_key(&[0xff, 0xfe]), "UNKNOWN");
        assert_eq!(truncated_key("é".repeat(40).as_bytes()), "é".repeat(32));
        assert_eq!(truncated_key(b"short"), "short");
    }

    #[test]
    fn integers_parse_as_redis_does() {
        for (s, want) in [("0", Some(0)), ("-12", Some(-12)), ("9223372036854775807", Some(i64::MAX))] {
            assert_eq!(parse_i64(s.as_bytes()), want, "{s}");
        }
        for s in ["", "-", "-0", "01", " 1", "1 ", "+1", "1.5", "9223372036854775808"] {
            assert_eq!(parse_i64(s.as_bytes()), None, "{s}");
        }
    }
}
