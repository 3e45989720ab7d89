//! The reference model of `docs/semantics.md` (and of the choices
//! `docs/runtime.md` records where 0G's model is silent), and the random
//! logs it is compared on: shared by `reference_model.rs` (the in-memory
//! runtime) and `store_nodes_model.rs` (two nodes on the embedded store).
//!
//! The model shares no code with the runtime: it has its own data, ACL,
//! check order, merge, result formatting and layout arithmetic. The runtime
//! is used only to *build* the inputs (body encoders, signing).
// Each test binary uses only part of this module.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use logkv_runtime::codec::{native, zerog, Control, ControlOp, Read, NATIVE, NATIVE_COMPACT, ZEROG};
use logkv_runtime::envelope::{Entry, Protocol, TxPart};
use logkv_runtime::quota::Quotas;
use logkv_runtime::signing::Signer;

use crate::support::{forged, signer};
use logkv_runtime::types::{Address, StreamId};
use proptest::prelude::*;

// ============================================================ the model

pub type S = [u8; 32];
pub type A = [u8; 20];
pub type K = Vec<u8>;
/// Versions of a key, oldest first; `None` is a delete.
pub type History = Vec<(u64, Option<Vec<u8>>)>;

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::from("0x"), |s, b| s + &format!("{b:02x}"))
}

/// A key as 0G prints it: `NONE` if empty, else its first 32 characters if
/// UTF-8, else `UNKNOWN`.
pub fn printed_key(key: &[u8]) -> String {
    match (key.is_empty(), std::str::from_utf8(key)) {
        (true, _) => "NONE".into(),
        (false, Ok(s)) => s.chars().take(32).collect(),
        (false, Err(_)) => "UNKNOWN".into(),
    }
}

pub const PARSE_ERROR: &str = "DataParseError: Invalid stream data";

/// The version-check horizon the model and the runtimes compared with it
/// use: small, so that generated logs of a few dozen entries cross it.
pub const HORIZON: u64 = 2;

// Control op bytes (`docs/semantics.md`, "Access-control ops").
pub const GRANT_ADMIN: u8 = 0x00;
pub const RENOUNCE_ADMIN: u8 = 0x01;
pub const SET_SPECIAL: u8 = 0x10;
pub const SET_NORMAL: u8 = 0x11;
pub const GRANT_WRITER: u8 = 0x20;
pub const REVOKE_WRITER: u8 = 0x21;
pub const RENOUNCE_WRITER: u8 = 0x22;
pub const GRANT_SPECIAL: u8 = 0x30;
pub const REVOKE_SPECIAL: u8 = 0x31;
pub const RENOUNCE_SPECIAL: u8 = 0x32;
pub const OPS: [u8; 10] = [
    GRANT_ADMIN,
    RENOUNCE_ADMIN,
    SET_SPECIAL,
    SET_NORMAL,
    GRANT_WRITER,
    REVOKE_WRITER,
    RENOUNCE_WRITER,
    GRANT_SPECIAL,
    REVOKE_SPECIAL,
    RENOUNCE_SPECIAL,
];

pub fn op_has_key(op: u8) -> bool {
    matches!(op, SET_SPECIAL | SET_NORMAL | GRANT_SPECIAL | REVOKE_SPECIAL | RENOUNCE_SPECIAL)
}

pub fn op_has_account(op: u8) -> bool {
    matches!(op, GRANT_ADMIN | GRANT_WRITER | REVOKE_WRITER | GRANT_SPECIAL | REVOKE_SPECIAL)
}

pub fn op_is_renounce(op: u8) -> bool {
    matches!(op, RENOUNCE_ADMIN | RENOUNCE_WRITER | RENOUNCE_SPECIAL)
}

pub fn op_name(op: u8) -> &'static str {
    match op {
        GRANT_ADMIN => "GRANT_ADMIN_ROLE",
        RENOUNCE_ADMIN => "RENOUNCE_ADMIN_ROLE",
        SET_SPECIAL => "SET_KEY_TO_SPECIAL",
        SET_NORMAL => "SET_KEY_TO_NORMAL",
        GRANT_WRITER => "GRANT_WRITER_ROLE",
        REVOKE_WRITER => "REVOKE_WRITER_ROLE",
        RENOUNCE_WRITER => "RENOUNCE_WRITER_ROLE",
        GRANT_SPECIAL => "GRANT_SPECIAL_WRITER_ROLE",
        REVOKE_SPECIAL => "REVOKE_SPECIAL_WRITER_ROLE",
        RENOUNCE_SPECIAL => "RENOUNCE_SPECIAL_WRITER_ROLE",
        _ => unreachable!("only the table's ops are generated"),
    }
}

/// Access control of one claimed stream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelStreamAcl {
    pub admins: BTreeSet<A>,
    pub writers: BTreeSet<A>,
    pub special_keys: BTreeSet<K>,
    pub special_writers: BTreeSet<(K, A)>,
}

/// Access control: a stream is claimed once it has an entry here.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelAcl {
    pub streams: BTreeMap<S, ModelStreamAcl>,
}

impl ModelAcl {
    pub fn is_new(&self, s: &S) -> bool {
        !self.streams.contains_key(s)
    }
    pub fn admin(&self, a: &A, s: &S) -> bool {
        self.streams.get(s).is_some_and(|x| x.admins.contains(a))
    }
    pub fn writer(&self, a: &A, s: &S) -> bool {
        self.streams.get(s).is_some_and(|x| x.writers.contains(a))
    }
    pub fn special(&self, s: &S, k: &[u8]) -> bool {
        self.streams.get(s).is_some_and(|x| x.special_keys.contains(k))
    }
    pub fn special_writer(&self, a: &A, s: &S, k: &[u8]) -> bool {
        self.streams.get(s).is_some_and(|x| x.special_writers.contains(&(k.to_vec(), *a)))
    }
    /// Step 1's "a write right on the stream".
    pub fn has_right(&self, a: &A, s: &S) -> bool {
        self.is_new(s)
            || self.admin(a, s)
            || self.writer(a, s)
            || self.streams[s].special_writers.iter().any(|(_, w)| w == a)
    }
    /// A flush's permission: the right to write every key the stream may
    /// hold (docs/semantics.md, "Flushing a stream").
    pub fn may_flush(&self, a: &A, s: &S) -> bool {
        if self.is_new(s) || self.admin(a, s) {
            return true;
        }
        let x = &self.streams[s];
        x.writers.contains(a) && x.special_keys.iter().all(|k| x.special_writers.contains(&(k.clone(), *a)))
    }
    /// Step 3's write permission.
    pub fn may_write(&self, a: &A, s: &S, k: &[u8]) -> bool {
        if self.is_new(s) || self.admin(a, s) {
            true
        } else if self.special(s, k) {
            self.special_writer(a, s, k)
        } else {
            self.writer(a, s)
        }
    }
    /// The access-control bytes a quota counts: 128 per role or special
    /// key, plus the key's length for special keys and special writers.
    pub fn bytes(&self) -> u64 {
        let keyed = |k: &K| 128 + k.len() as u64;
        self.streams
            .values()
            .map(|x| {
                128 * (x.admins.len() + x.writers.len()) as u64
                    + x.special_keys.iter().map(keyed).sum::<u64>()
                    + x.special_writers.iter().map(|(k, _)| keyed(k)).sum::<u64>()
            })
            .sum()
    }
    pub fn apply(&mut self, op: u8, s: S, key: &[u8], account: A) {
        let x = self.streams.entry(s).or_default();
        // Granting a role held, or revoking one not held, changes nothing.
        match op {
            GRANT_ADMIN => {
                x.admins.insert(account);
            }
            RENOUNCE_ADMIN => {
                x.admins.remove(&account);
            }
            SET_SPECIAL => {
                x.special_keys.insert(key.to_vec());
            }
            SET_NORMAL => {
                x.special_keys.remove(key);
            }
            GRANT_WRITER => {
                x.writers.insert(account);
            }
            REVOKE_WRITER | RENOUNCE_WRITER => {
                x.writers.remove(&account);
            }
            GRANT_SPECIAL => {
                x.special_writers.insert((key.to_vec(), account));
            }
            REVOKE_SPECIAL | RENOUNCE_SPECIAL => {
                x.special_writers.remove(&(key.to_vec(), account));
            }
            _ => unreachable!("only the table's ops are generated"),
        }
    }
}

/// A write as the model understands it.
#[derive(Debug, Clone)]
pub enum MOp {
    Put(Vec<u8>),
    Delete,
    Incr(i64),
    Append(Vec<u8>),
    IfAbsent(Vec<u8>),
    IfPresent(Vec<u8>),
    DeleteIfPresent,
    /// Every key of the write's stream (its key is `*`).
    Flush,
}

#[derive(Debug, Clone)]
pub struct MControl {
    pub op: u8,
    pub stream: S,
    pub key: Option<K>,
    pub account: Option<A>,
}

/// A transaction as the model sees it. `parse_fails_in`: the stage whose
/// bytes are broken (0 header, 1 reads, 2 writes, 3 controls or trailing).
#[derive(Debug, Clone)]
pub struct MTx {
    pub tags: BTreeSet<S>,
    pub version: u64,
    pub check_reads_only: bool,
    pub reads: Vec<(S, K)>,
    pub writes: Vec<(S, K, MOp)>,
    pub controls: Vec<MControl>,
    pub parse_fails_in: Option<u8>,
    /// The entry's protocol is older than 6, so a flush op is a parse
    /// error (set by the entry, which picks the protocol).
    pub before_flushes: bool,
}

#[derive(Debug, Clone)]
pub struct MEntry {
    pub sender: A,
    pub nonce: u64,
    pub genuine: bool,
    pub malformed: bool,
    pub txs: Vec<MTx>,
}

/// A decimal i64 as Redis `INCRBY` reads it: optional `-`, digits, no
/// leading zeros, no `-0`, in range.
pub fn redis_int(b: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(b).ok()?;
    let digits = s.strip_prefix('-').unwrap_or(s);
    let ok = !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit())
        && !(digits.len() > 1 && digits.starts_with('0'))
        && s != "-0";
    if ok {
        s.parse().ok()
    } else {
        None
    }
}

/// Quotas on what a stranger can grow (runtime.md, "Quotas").
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelQuotas {
    /// Distinct (sender, stream) pairs that used a nonce.
    pub windows: u64,
    /// Such pairs of one sender.
    pub windows_per_sender: u64,
    /// Claimed streams.
    pub streams: u64,
    /// `ModelAcl::bytes`.
    pub acl_bytes: u64,
}

impl ModelQuotas {
    pub const NONE: ModelQuotas = ModelQuotas {
        windows: u64::MAX,
        windows_per_sender: u64::MAX,
        streams: u64::MAX,
        acl_bytes: u64::MAX,
    };

    /// The same quotas as the runtime takes them (an input, like the bytes).
    pub fn runtime(&self) -> Quotas {
        Quotas {
            windows: self.windows,
            windows_per_sender: self.windows_per_sender,
            streams: self.streams,
            acl_bytes: self.acl_bytes,
        }
    }
}

impl Default for ModelQuotas {
    fn default() -> Self {
        Self::NONE
    }
}

#[derive(Debug, Default)]
pub struct Model {
    /// `None`: every stream.
    pub watched: Option<BTreeSet<S>>,
    pub quotas: ModelQuotas,
    pub data: BTreeMap<(S, K), History>,
    /// The versions each stream was flushed at, in order.
    pub flushes: BTreeMap<S, Vec<u64>>,
    pub acl: ModelAcl,
    pub acl_history: Vec<(u64, ModelAcl)>,
    pub results: BTreeMap<u64, String>,
    /// (sender, stream, nonce) used by a genuine applied transaction.
    pub used: BTreeSet<(A, S, u64)>,
}

impl Model {
    pub fn watches(&self, s: &S) -> bool {
        self.watched.as_ref().is_none_or(|w| w.contains(s))
    }

    /// The version of the stream's newest flush at or below `v` (0: none).
    pub fn flush_at(&self, s: &S, v: u64) -> u64 {
        self.flushes.get(s).and_then(|f| f.iter().rev().find(|f| **f <= v)).copied().unwrap_or(0)
    }

    pub fn latest_version(&self, s: &S, k: &[u8]) -> u64 {
        self.version_at(s, k, u64::MAX)
    }

    pub fn live(&self, s: &S, k: &[u8]) -> Option<Vec<u8>> {
        self.get_at(s, k, u64::MAX).map(|(_, v)| v)
    }

    /// The key's newest write at or below `v`, unless the flush in force
    /// then is newer.
    pub fn at(&self, s: &S, k: &[u8], v: u64) -> Option<&(u64, Option<Vec<u8>>)> {
        let flushed = self.flush_at(s, v);
        self.data.get(&(*s, k.to_vec()))?.iter().rev().find(|e| e.0 <= v).filter(|e| e.0 >= flushed)
    }

    pub fn get_at(&self, s: &S, k: &[u8], v: u64) -> Option<(u64, Vec<u8>)> {
        self.at(s, k, v).and_then(|(ver, val)| val.clone().map(|val| (*ver, val)))
    }

    /// A key covered by a flush reports the flush's version.
    pub fn version_at(&self, s: &S, k: &[u8], v: u64) -> u64 {
        self.at(s, k, v).map_or(0, |e| e.0).max(self.flush_at(s, v))
    }

    pub fn acl_at(&self, v: u64) -> ModelAcl {
        self.acl_history.iter().rev().find(|(ver, _)| *ver <= v).map(|(_, a)| a.clone()).unwrap_or_default()
    }

    pub fn iter(&self, s: &S, v: u64, start: Option<(&[u8], bool)>, rev: bool) -> Vec<(K, u64, Vec<u8>)> {
        let mut out: Vec<(K, u64, Vec<u8>)> = self
            .data
            .keys()
            .filter(|(st, _)| st == s)
            .filter_map(|(_, k)| self.get_at(s, k, v).map(|(ver, val)| (k.clone(), ver, val)))
            .filter(|(k, _, _)| match (start, rev) {
                (None, _) => true,
                (Some((from, true)), false) => k.as_slice() >= from,
                (Some((from, false)), false) => k.as_slice() > from,
                (Some((from, true)), true) => k.as_slice() <= from,
                (Some((from, false)), true) => k.as_slice() < from,
            })
            .collect();
        out.sort();
        if rev {
            out.reverse();
        }
        out
    }

    /// An entry: `Err` when it is malformed (nothing recorded).
    pub fn apply_entry(&mut self, position: u64, e: &MEntry) -> Result<Vec<Option<String>>, &'static str> {
        if e.malformed {
            return Err("malformed");
        }
        let applied: Vec<bool> =
            e.txs.iter().map(|tx| !tx.tags.is_empty() && tx.tags.iter().all(|t| self.watches(t))).collect();
        let replayed: Vec<bool> = e
            .txs
            .iter()
            .map(|tx| tx.tags.iter().any(|t| self.used.contains(&(e.sender, *t, e.nonce))))
            .collect();
        // Nonces are recorded transaction by transaction, unless the
        // (sender, stream) pairs new to the node would pass a quota.
        let mut over_quota: Vec<Option<&str>> = vec![None; e.txs.len()];
        if e.genuine {
            for (i, tx) in e.txs.iter().enumerate().filter(|(i, _)| applied[*i]) {
                let pairs: BTreeSet<(A, S)> = self.used.iter().map(|(a, s, _)| (*a, *s)).collect();
                let new = tx.tags.iter().filter(|t| !pairs.contains(&(e.sender, **t))).count() as u64;
                let of_sender = pairs.iter().filter(|(a, _)| *a == e.sender).count() as u64;
                if new > 0 && pairs.len() as u64 + new > self.quotas.windows {
                    over_quota[i] = Some("QuotaExceeded: anti-replay windows");
                } else if new > 0 && of_sender + new > self.quotas.windows_per_sender {
                    over_quota[i] = Some("QuotaExceeded: anti-replay windows of the sender");
                } else {
                    self.used.extend(tx.tags.iter().map(|t| (e.sender, *t, e.nonce)));
                }
            }
        }
        let mut out = Vec::new();
        for (i, tx) in e.txs.iter().enumerate() {
            if !applied[i] {
                out.push(None);
                continue;
            }
            let version = (position << 16) | i as u64;
            let result = if !e.genuine {
                "BadSignature".to_string()
            } else if replayed[i] {
                "Replayed".to_string()
            } else if let Some(quota) = over_quota[i] {
                quota.to_string()
            } else {
                self.apply_tx(version, e.sender, tx).unwrap_or_else(|failure| failure)
            };
            self.results.insert(version, result.clone());
            out.push(Some(result));
        }
        Ok(out)
    }

    /// One transaction, steps 1-5 of `docs/semantics.md`, "Applying a transaction". `Err`: the failure.
    pub fn apply_tx(&mut self, version: u64, sender: A, tx: &MTx) -> Result<String, String> {
        // 1. A right on some tagged stream.
        if !tx.tags.iter().any(|t| self.acl.has_right(&sender, t)) {
            return Err("SenderNoWritePermission".into());
        }
        let broken = |stage: u8| tx.parse_fails_in == Some(stage);
        if broken(0) {
            return Err(PARSE_ERROR.into());
        }
        let check = tx.version != u64::MAX;
        // The version-check horizon, before the read set is parsed.
        if check && (tx.version >> 16) + HORIZON < version >> 16 {
            return Err("VersionTooOld".into());
        }
        if broken(1) {
            return Err(PARSE_ERROR.into());
        }
        // 2. Reads, in body order.
        for (s, k) in &tx.reads {
            if !self.watches(s) {
                return Err("TagsMismatch".into());
            }
            if check && self.latest_version(s, k) > tx.version {
                return Err("VersionConfliction".into());
            }
        }
        let is_flush = |op: &MOp| matches!(op, MOp::Flush);
        if broken(2) || (tx.before_flushes && tx.writes.iter().any(|w| is_flush(&w.2))) {
            return Err(PARSE_ERROR.into());
        }
        // 3. Writes: the last per key, at the place of that last write;
        // flushes after them.
        let mut last: BTreeMap<(S, K), usize> = BTreeMap::new();
        for (i, (s, k, _)) in tx.writes.iter().enumerate().filter(|(_, w)| !is_flush(&w.2)) {
            last.insert((*s, k.clone()), i);
        }
        let mut order: Vec<usize> = last.into_values().collect();
        order.sort();
        for i in order {
            let (s, k, _) = &tx.writes[i];
            if !tx.tags.contains(s) {
                return Err("TagsMismatch".into());
            }
            if check && !tx.check_reads_only && self.latest_version(s, k) > tx.version {
                return Err("VersionConfliction".into());
            }
            if !self.acl.may_write(&sender, s, k) {
                return Err(format!("WritePermissionDenied: stream: {}, key: {}", hex(s), printed_key(k)));
            }
        }
        for (s, k, _) in tx.writes.iter().filter(|w| is_flush(&w.2)) {
            if !tx.tags.contains(s) {
                return Err("TagsMismatch".into());
            }
            if check && !tx.check_reads_only && self.flush_at(s, u64::MAX) > tx.version {
                return Err("VersionConfliction".into());
            }
            if !self.acl.may_flush(&sender, s) {
                return Err(format!("WritePermissionDenied: stream: {}, key: {}", hex(s), printed_key(k)));
            }
        }
        if broken(3) {
            return Err(PARSE_ERROR.into());
        }
        // 4. Controls: implicit grants, then the body's ops, merged on
        // (op & 0xF0, stream, key, account), the last winning at the place
        // of the first; an explicit grant of admin only once, never to the sender.
        let mut slots: Vec<(u8, S, K, A)> = Vec::new();
        for t in &tx.tags {
            if self.acl.is_new(t) {
                slots.push((GRANT_ADMIN, *t, vec![], sender));
            }
        }
        for c in &tx.controls {
            let account = if op_is_renounce(c.op) { sender } else { c.account.unwrap_or([0; 20]) };
            let key = c.key.clone().unwrap_or_default();
            let same = slots
                .iter()
                .position(|x| x.0 & 0xF0 == c.op & 0xF0 && x.1 == c.stream && x.2 == key && x.3 == account);
            let slot = (c.op, c.stream, key, account);
            match (c.op, same) {
                (GRANT_ADMIN, _) if account == sender => {}
                (GRANT_ADMIN, Some(_)) => {}
                (_, Some(at)) => slots[at] = slot,
                (_, None) => slots.push(slot),
            }
        }
        for (op, s, key, account) in &slots {
            if !tx.tags.contains(s) {
                return Err("TagsMismatch".into());
            }
            let admin = self.acl.admin(&sender, s) || self.acl.is_new(s);
            let allowed = match *op {
                GRANT_ADMIN | SET_SPECIAL | SET_NORMAL | REVOKE_WRITER | REVOKE_SPECIAL => admin,
                GRANT_WRITER => admin || self.acl.writer(&sender, s),
                GRANT_SPECIAL => admin || self.acl.special_writer(&sender, s, key),
                _ => true,
            };
            if !allowed {
                return Err(format!(
                    "AccessControlPermissionDenied: operation: {}, stream: {}, key: {}, account: {}",
                    op_name(*op),
                    hex(s),
                    printed_key(key),
                    hex(account)
                ));
            }
        }
        // 5. Quotas: streams the transaction would claim, then the
        // access-control bytes it would leave, if it adds any.
        let new_streams: BTreeSet<S> = slots.iter().map(|x| x.1).filter(|s| self.acl.is_new(s)).collect();
        if !new_streams.is_empty()
            && self.acl.streams.len() as u64 + new_streams.len() as u64 > self.quotas.streams
        {
            return Err("QuotaExceeded: streams".into());
        }
        let mut after = self.acl.clone();
        for (op, s, key, account) in &slots {
            after.apply(*op, *s, key, *account);
        }
        if after.bytes() > self.acl.bytes() && after.bytes() > self.quotas.acl_bytes {
            return Err("QuotaExceeded: access-control bytes".into());
        }
        // 6. Commit: writes in body order, each seeing the ones before; an
        // op that changes nothing writes nothing.
        let mut changed: BTreeMap<(S, K), Option<Vec<u8>>> = BTreeMap::new();
        let mut flushed: BTreeSet<S> = BTreeSet::new();
        for (s, k, op) in &tx.writes {
            if is_flush(op) {
                changed.retain(|(cs, _), _| cs != s);
                flushed.insert(*s);
                continue;
            }
            let id = (*s, k.clone());
            let before = match changed.get(&id) {
                Some(v) => v.clone(),
                None if flushed.contains(s) => None,
                None => self.live(s, k),
            };
            let after = match op {
                MOp::Flush => unreachable!("handled above"),
                MOp::Put(v) => Some(Some(v.clone())),
                MOp::Delete => Some(None),
                MOp::IfAbsent(v) => before.is_none().then(|| Some(v.clone())),
                MOp::IfPresent(v) => before.is_some().then(|| Some(v.clone())),
                MOp::DeleteIfPresent => before.is_some().then_some(None),
                MOp::Append(v) => Some(Some([before.unwrap_or_default(), v.clone()].concat())),
                MOp::Incr(n) => {
                    let old = match before {
                        None => 0,
                        Some(b) => redis_int(&b)
                            .ok_or("OperationFailed: value is not an integer or out of range".to_string())?,
                    };
                    let new = old
                        .checked_add(*n)
                        .ok_or("OperationFailed: increment or decrement would overflow")?;
                    Some(Some(new.to_string().into_bytes()))
                }
            };
            if let Some(after) = after {
                changed.insert(id, after);
            }
        }
        for s in flushed {
            self.flushes.entry(s).or_default().push(version);
        }
        for (id, value) in changed {
            self.data.entry(id).or_default().push((version, value));
        }
        if !slots.is_empty() {
            for (op, s, key, account) in &slots {
                self.acl.apply(*op, *s, key, *account);
            }
            self.acl_history.push((version, self.acl.clone()));
        }
        Ok("Commit".into())
    }
}

// ============================================================ generated logs

pub const STREAMS: [S; 3] = [[0x10; 32], [0x20; 32], [0x30; 32]];
pub const LONG_KEY: &str = "ключ-ключ-ключ-ключ-ключ-ключ-ключ-ключ"; // 39 characters
pub const KEYS: [&[u8]; 5] = [b"a", b"b", b"c", LONG_KEY.as_bytes(), &[0xff, 0x00]];
pub const VALUES: [&[u8]; 5] = [b"", b"1", b"-7", b"xyz", b"9223372036854775807"];
pub const OUTSIDER: A = [0x99; 20];
pub const SENDERS: usize = 4;

#[derive(Debug, Clone)]
pub enum VersionGen {
    Max,
    Zero,
    /// Transaction `index` of the entry `back` positions before this one.
    Back(u8, u8),
}

#[derive(Debug, Clone)]
pub enum WriteGen {
    Put(usize),
    Delete,
    Incr(i64),
    Append(usize),
    IfAbsent(usize),
    IfPresent(usize),
    DeleteIfPresent,
    Flush,
}

#[derive(Debug, Clone)]
pub enum TagTweak {
    Exact,
    Drop(usize),
    Add(usize),
}

#[derive(Debug, Clone)]
pub enum Garble {
    None,
    /// Cut the body to `permille` of its length.
    Cut(u16),
    Trailing,
    /// A codec byte no node knows.
    UnknownCodec,
}

#[derive(Debug, Clone)]
pub struct TxGen {
    pub native: bool,
    pub check_reads_only: bool,
    pub version: VersionGen,
    pub reads: Vec<(usize, usize)>,
    pub writes: Vec<(usize, usize, WriteGen)>,
    /// (op index, stream, key, account: 0..4 a sender, 4 an outsider)
    pub controls: Vec<(usize, usize, usize, usize)>,
    pub tags: TagTweak,
    pub garble: Garble,
}

#[derive(Debug, Clone)]
pub enum NonceGen {
    Fresh,
    /// One this sender used before, if any.
    Reuse(usize),
}

#[derive(Debug, Clone)]
pub enum Action {
    Entry {
        sender: usize,
        nonce: NonceGen,
        forged: bool,
        truncated: bool,
        txs: Vec<TxGen>,
    },
    /// Append again the bytes of an earlier entry.
    Replay(usize),
}

pub fn write_gen() -> impl Strategy<Value = WriteGen> {
    let value = 0..VALUES.len();
    prop_oneof![
        5 => value.clone().prop_map(WriteGen::Put),
        1 => Just(WriteGen::Delete),
        2 => prop_oneof![-3i64..=3, Just(i64::MAX), Just(i64::MIN)].prop_map(WriteGen::Incr),
        1 => value.clone().prop_map(WriteGen::Append),
        1 => value.clone().prop_map(WriteGen::IfAbsent),
        1 => value.prop_map(WriteGen::IfPresent),
        1 => Just(WriteGen::DeleteIfPresent),
        1 => Just(WriteGen::Flush),
    ]
}

pub fn tx_gen() -> impl Strategy<Value = TxGen> {
    let stream = 0..STREAMS.len();
    let key = 0..KEYS.len();
    let version = prop_oneof![
        2 => Just(VersionGen::Max),
        1 => Just(VersionGen::Zero),
        5 => (0u8..4, 0u8..3).prop_map(|(b, i)| VersionGen::Back(b, i)),
    ];
    let tags = prop_oneof![
        12 => Just(TagTweak::Exact),
        1 => any::<usize>().prop_map(TagTweak::Drop),
        1 => stream.clone().prop_map(TagTweak::Add),
    ];
    let garble = prop_oneof![
        14 => Just(Garble::None),
        1 => (0u16..1000).prop_map(Garble::Cut),
        1 => Just(Garble::Trailing),
        1 => Just(Garble::UnknownCodec),
    ];
    (
        prop::bool::weighted(0.3),
        prop::bool::weighted(0.3),
        version,
        prop::collection::vec((stream.clone(), key.clone()), 0..3),
        prop::collection::vec((stream.clone(), key.clone(), write_gen()), 0..4),
        prop::collection::vec((0..OPS.len(), stream, key, 0..SENDERS + 1), 0..4),
        tags,
        garble,
    )
        .prop_map(|(native, check_reads_only, version, reads, writes, controls, tags, garble)| TxGen {
            native,
            check_reads_only,
            version,
            reads,
            writes,
            controls,
            tags,
            garble,
        })
}

pub fn action_gen() -> impl Strategy<Value = Action> {
    let sender = prop_oneof![3 => Just(0usize), 2 => Just(1usize), 2 => Just(2usize), 1 => Just(3usize)];
    let nonce = prop_oneof![10 => Just(NonceGen::Fresh), 1 => any::<usize>().prop_map(NonceGen::Reuse)];
    prop_oneof![
        10 => (sender, nonce, prop::bool::weighted(0.06), prop::bool::weighted(0.03),
               prop::collection::vec(tx_gen(), 1..4))
            .prop_map(|(sender, nonce, forged, truncated, txs)| Action::Entry { sender, nonce, forged, truncated, txs }),
        1 => any::<usize>().prop_map(Action::Replay),
    ]
}

/// No quota, or small ones that generated logs reach.
pub fn quotas_gen() -> impl Strategy<Value = ModelQuotas> {
    prop_oneof![
        1 => Just(ModelQuotas::NONE),
        2 => (3u64..10, 1u64..4, 1u64..3, 2u64..8).prop_map(|(windows, windows_per_sender, streams, roles)| {
            ModelQuotas { windows, windows_per_sender, streams, acl_bytes: roles * 128 + 40 }
        }),
    ]
}

/// Whether every stream is watched, the quotas, and the log.
pub fn case_gen() -> impl Strategy<Value = (bool, ModelQuotas, Vec<Action>)> {
    (prop::bool::weighted(0.75), quotas_gen(), prop::collection::vec(action_gen(), 1..24))
}

/// How generated logs are spelled: the same transactions either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    /// Protocol 1 entries; native bodies in codec 1.
    #[default]
    Fixed,
    /// Protocol 2 entries; native bodies in codec 2, as a node writes its own.
    Compact,
}

/// Builds the bytes of a transaction with the runtime's encoders, and the
/// model's view of it, with the layout arithmetic done by the model.
pub fn build_tx(g: &TxGen, position: u64, accounts: &[A], encoding: Encoding) -> (TxPart, MTx) {
    let version = match g.version {
        VersionGen::Max => u64::MAX,
        VersionGen::Zero => 0,
        VersionGen::Back(back, index) => (position.saturating_sub(back.into()) << 16) | u64::from(index),
    };
    let reads: Vec<(S, K)> = g.reads.iter().map(|&(s, k)| (STREAMS[s], KEYS[k].to_vec())).collect();
    let controls: Vec<MControl> = g
        .controls
        .iter()
        .map(|&(op, s, k, a)| {
            let op = OPS[op];
            MControl {
                op,
                stream: STREAMS[s],
                key: op_has_key(op).then(|| KEYS[k].to_vec()),
                account: op_has_account(op).then_some(accounts[a]),
            }
        })
        .collect();
    let writes: Vec<(S, K, MOp)> = g
        .writes
        .iter()
        .map(|(s, k, w)| {
            let value = |i: &usize| VALUES[*i].to_vec();
            let op = if g.native {
                match w {
                    WriteGen::Put(v) => MOp::Put(value(v)),
                    WriteGen::Delete => MOp::Delete,
                    WriteGen::Incr(n) => MOp::Incr(*n),
                    WriteGen::Append(v) => MOp::Append(value(v)),
                    WriteGen::IfAbsent(v) => MOp::IfAbsent(value(v)),
                    WriteGen::IfPresent(v) => MOp::IfPresent(value(v)),
                    WriteGen::DeleteIfPresent => MOp::DeleteIfPresent,
                    WriteGen::Flush => MOp::Flush,
                }
            } else {
                // 0G has puts only, and an empty put deletes.
                let bytes = match w {
                    WriteGen::Put(v)
                    | WriteGen::Append(v)
                    | WriteGen::IfAbsent(v)
                    | WriteGen::IfPresent(v) => value(v),
                    WriteGen::Delete | WriteGen::DeleteIfPresent | WriteGen::Flush => vec![],
                    WriteGen::Incr(n) => n.to_string().into_bytes(),
                };
                if bytes.is_empty() {
                    MOp::Delete
                } else {
                    MOp::Put(bytes)
                }
            };
            let key = match op {
                MOp::Flush => logkv_runtime::codec::FLUSH_KEY.to_vec(),
                _ => KEYS[*k].to_vec(),
            };
            (STREAMS[*s], key, op)
        })
        .collect();

    let mut tags: BTreeSet<S> = writes.iter().map(|w| w.0).chain(controls.iter().map(|c| c.stream)).collect();
    match g.tags {
        TagTweak::Exact => {}
        TagTweak::Drop(i) => {
            if let Some(t) = tags.iter().nth(i % tags.len().max(1)).copied() {
                tags.remove(&t);
            }
        }
        TagTweak::Add(s) => {
            tags.insert(STREAMS[s]);
        }
    }
    let compact = g.native && encoding == Encoding::Compact;

    // The layout, from docs/format.md: codec 0 and 1 in
    // fixed widths, codec 2 in varints with streams as tag indexes.
    let varint_len = |n: u64| (1..10).find(|&i| n < 1u64 << (7 * i)).unwrap_or(10);
    let count = |n: usize| if compact { varint_len(n as u64) } else { 4 };
    let stream_field = |s: &S| match tags.iter().position(|t| t == s) {
        _ if !compact => 32,
        Some(i) => varint_len(i as u64),
        None => varint_len(tags.len() as u64) + 32,
    };
    let key_field = |k: &K| if compact { varint_len(k.len() as u64) } else { 3 } + k.len();
    let header = match (g.native, compact) {
        (false, _) => 8,
        (true, false) => 9,
        (true, true) => varint_len(version.wrapping_add(1)) + 1,
    };
    let reads_end = header
        + count(reads.len())
        + reads.iter().map(|(s, k)| stream_field(s) + key_field(k)).sum::<usize>();
    let write_bytes = |op: &MOp| match op {
        MOp::Put(v) | MOp::Append(v) | MOp::IfAbsent(v) | MOp::IfPresent(v) => v.len(),
        MOp::Delete | MOp::DeleteIfPresent | MOp::Incr(_) | MOp::Flush => 0,
    };
    let write_header = |op: &MOp| {
        if !g.native {
            8
        } else {
            1 + match op {
                MOp::Delete | MOp::DeleteIfPresent | MOp::Flush => 0,
                MOp::Incr(_) => 8,
                _ if compact => varint_len(write_bytes(op) as u64),
                _ => 4,
            }
        }
    };
    let writes_end = reads_end
        + count(writes.len())
        + writes
            .iter()
            .map(|(s, k, op)| stream_field(s) + key_field(k) + write_header(op) + write_bytes(op))
            .sum::<usize>();
    let body_len = writes_end
        + count(controls.len())
        + controls
            .iter()
            .map(|c| {
                1 + stream_field(&c.stream)
                    + c.key.as_ref().map_or(0, key_field)
                    + if c.account.is_some() { 20 } else { 0 }
            })
            .sum::<usize>();

    let to_read = |(s, k): &(S, K)| Read { stream: StreamId(*s), key: k.clone() };
    let to_control = |c: &MControl| Control {
        op: ControlOp::from_byte(c.op).expect("a table op"),
        stream: StreamId(c.stream),
        key: c.key.clone(),
        account: c.account.map(Address),
    };
    let tag_ids: Vec<StreamId> = tags.iter().map(|t| StreamId(*t)).collect();
    let (mut codec, mut body) = if g.native {
        let body = native::Body {
            version,
            check_reads_only: g.check_reads_only,
            reads: reads.iter().map(to_read).collect(),
            writes: writes
                .iter()
                .map(|(s, k, op)| native::BodyWrite {
                    stream: StreamId(*s),
                    key: k.clone(),
                    op: match op {
                        MOp::Put(v) => native::Op::Put(v.clone().into()),
                        MOp::Delete => native::Op::Delete,
                        MOp::Incr(n) => native::Op::Increment(*n),
                        MOp::Append(v) => native::Op::Append(v.clone().into()),
                        MOp::IfAbsent(v) => native::Op::PutIfAbsent(v.clone().into()),
                        MOp::IfPresent(v) => native::Op::PutIfPresent(v.clone().into()),
                        MOp::DeleteIfPresent => native::Op::DeleteIfPresent,
                        MOp::Flush => native::Op::Flush,
                    },
                })
                .collect(),
            controls: controls.iter().map(to_control).collect(),
        };
        if compact {
            (NATIVE_COMPACT, native::encode_compact(&body, &tag_ids))
        } else {
            (NATIVE, native::encode(&body))
        }
    } else {
        let body = zerog::Body {
            version,
            reads: reads.iter().map(to_read).collect(),
            writes: writes
                .iter()
                .map(|(s, k, op)| zerog::BodyWrite {
                    stream: StreamId(*s),
                    key: k.clone(),
                    value: match op {
                        MOp::Put(v) => v.clone(),
                        _ => vec![],
                    },
                })
                .collect(),
            controls: controls.iter().map(to_control).collect(),
        };
        (ZEROG, zerog::encode(&body))
    };
    assert_eq!(body.len(), body_len, "the encoder follows the documented layout");
    let parse_fails_in = match g.garble {
        Garble::None => None,
        Garble::Trailing => {
            body.push(0);
            Some(3)
        }
        Garble::UnknownCodec => {
            codec = 0x7f;
            Some(0)
        }
        Garble::Cut(permille) => {
            let cut = body.len() * usize::from(permille) / 1000;
            body.truncate(cut);
            Some(match cut {
                c if c < header => 0,
                c if c < reads_end => 1,
                c if c < writes_end => 2,
                _ => 3,
            })
        }
    };

    let check_reads_only = g.native && g.check_reads_only;
    let part = TxPart { codec, tags: tag_ids, body };
    let before_flushes = false;
    (part, MTx { tags, version, check_reads_only, reads, writes, controls, parse_fails_in, before_flushes })
}

/// The senders of generated logs, their accounts (then an outsider's) and a
/// forger who signs entries in their name.
pub struct Cast {
    /// One signer per sender.
    pub signers: Vec<Signer>,
    /// Signs forged entries.
    pub forger: Signer,
    /// The senders' accounts, then [`OUTSIDER`].
    pub accounts: Vec<A>,
}

impl Cast {
    /// The fixed cast every generated log uses.
    pub fn new() -> Self {
        let signers: Vec<Signer> = (1..=SENDERS as u8).map(signer).collect();
        let accounts = signers.iter().map(|s| s.address().0).chain([OUTSIDER]).collect();
        Self { signers, forger: signer(9), accounts }
    }
}

/// Turns generated actions into entry bytes, remembering every entry logged
/// (for replays) and each sender's nonces (for reuse).
#[derive(Default)]
pub struct EntryLog {
    encoding: Encoding,
    log: Vec<(Vec<u8>, MEntry)>,
    nonces: BTreeMap<usize, Vec<u64>>,
}

impl EntryLog {
    /// A log spelled as `encoding` says.
    pub fn new(encoding: Encoding) -> Self {
        Self { encoding, ..Self::default() }
    }

    /// The bytes of `action` as applied at `position`, and what the model
    /// makes of them; `None` for a replay before anything was logged.
    pub fn next(&mut self, cast: &Cast, action: &Action, position: u64) -> Option<(Vec<u8>, MEntry)> {
        let Action::Entry { sender, nonce, forged: forge, truncated, txs } = action else {
            let Action::Replay(i) = action else { unreachable!("two kinds of action") };
            return (!self.log.is_empty()).then(|| self.log[i % self.log.len()].clone());
        };
        let used = self.nonces.entry(*sender).or_default();
        let nonce = match nonce {
            NonceGen::Reuse(i) if !used.is_empty() => used[i % used.len()],
            _ => used.last().map_or(1, |n| n + 1),
        };
        used.push(nonce);
        let (parts, mut mtxs): (Vec<TxPart>, Vec<MTx>) =
            txs.iter().map(|g| build_tx(g, position, &cast.accounts, self.encoding)).unzip();
        let signer = &cast.signers[*sender];
        // As a node's pipeline signs: the oldest protocol its ops allow
        // (protocol 1 entries, as external clients sign, hold no flush).
        let flushes = mtxs.iter().any(|t| t.writes.iter().any(|w| matches!(w.2, MOp::Flush)));
        let protocol = match self.encoding {
            Encoding::Fixed => Protocol::V1,
            Encoding::Compact if flushes => Protocol::V6,
            Encoding::Compact => Protocol::V2,
        };
        for t in &mut mtxs {
            t.before_flushes = protocol < Protocol::V6;
        }
        let mut bytes = Entry { sender: signer.address(), nonce, txs: parts }
            .encode_signed_as(protocol, signer)
            .expect("small entries encode");
        if *forge {
            bytes = forged(&bytes, &cast.forger);
        }
        if *truncated {
            bytes.pop();
        }
        let entry = MEntry {
            sender: cast.accounts[*sender],
            nonce,
            genuine: !forge,
            malformed: *truncated,
            txs: mtxs,
        };
        self.log.push((bytes.clone(), entry.clone()));
        Some((bytes, entry))
    }
}
