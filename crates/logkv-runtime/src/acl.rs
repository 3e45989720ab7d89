//! Access control of streams, by 0G's rules (`docs/semantics.md`, "Applying a
//! transaction"): the newest state, which apply checks against.
//!
//! Roles: admins; stream writers; special keys, which only their special
//! writers (and admins) may write. A stream with no access-control history
//! is *new*: anyone may write it, and its first committed transaction makes
//! the sender admin. Everything here is ordered (`BTree*`) so iteration is
//! deterministic.

use std::collections::{BTreeMap, BTreeSet};

use crate::codec::ControlOp;
use crate::quota::ACL_FACT_BYTES;
use crate::types::{Address, StreamId};

/// One access-control change as a committed transaction makes it, after
/// merging: renounce ops name the sender, key ops without an account name
/// the zero address, ops without a key have an empty key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AclChange {
    /// The op.
    pub op: ControlOp,
    /// Its stream.
    pub stream: StreamId,
    /// The key (empty for ops without one).
    pub key: Vec<u8>,
    /// The account (the sender for renounce ops, zero for key ops without one).
    pub account: Address,
}

/// The access-control state of one stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamAcl {
    admins: BTreeSet<Address>,
    writers: BTreeSet<Address>,
    special_keys: BTreeSet<Vec<u8>>,
    special_writers: BTreeSet<(Vec<u8>, Address)>,
    /// Keys each account is a special writer of (the "special writer of some
    /// key" right of the sender check).
    special_counts: BTreeMap<Address, u32>,
    /// What its roles and special keys count against [`Quotas::acl_bytes`](crate::quota::Quotas::acl_bytes).
    bytes: u64,
}

/// Access control of every stream the node has seen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acl {
    streams: BTreeMap<StreamId, StreamAcl>,
    /// The sum of the streams' bytes.
    bytes: u64,
}

/// What one role or special key counts against [`Quotas::acl_bytes`](crate::quota::Quotas::acl_bytes).
fn fact_bytes(key: &[u8]) -> u64 {
    ACL_FACT_BYTES + key.len() as u64
}

/// The key of the fact a change touches: only special keys and special
/// writers have one.
fn fact_key(c: &AclChange) -> &[u8] {
    match c.op {
        ControlOp::SetKeyToSpecial
        | ControlOp::SetKeyToNormal
        | ControlOp::GrantSpecialWriteRole
        | ControlOp::RevokeSpecialWriteRole
        | ControlOp::RenounceSpecialWriteRole => &c.key,
        _ => &[],
    }
}

impl Acl {
    /// Whether the stream has no access-control history.
    pub fn is_new(&self, stream: &StreamId) -> bool {
        !self.streams.contains_key(stream)
    }

    fn get(&self, stream: &StreamId) -> Option<&StreamAcl> {
        self.streams.get(stream)
    }

    /// Whether `account` is an admin of `stream`.
    pub fn is_admin(&self, account: &Address, stream: &StreamId) -> bool {
        self.get(stream).is_some_and(|s| s.admins.contains(account))
    }

    /// Whether `account` is a (stream-wide) writer of `stream`.
    pub fn is_writer_of_stream(&self, account: &Address, stream: &StreamId) -> bool {
        self.get(stream).is_some_and(|s| s.writers.contains(account))
    }

    /// Whether `key` of `stream` is special.
    pub fn is_special_key(&self, stream: &StreamId, key: &[u8]) -> bool {
        self.get(stream).is_some_and(|s| s.special_keys.contains(key))
    }

    /// Whether `account` is a special writer of `key` (special or not).
    pub fn is_writer_of_key(&self, account: &Address, stream: &StreamId, key: &[u8]) -> bool {
        self.get(stream).is_some_and(|s| s.special_writers.contains(&(key.to_vec(), *account)))
    }

    /// The sender check of step 1: the stream is new, or `account` is an
    /// admin, a writer, or a special writer of some key.
    pub fn can_write_stream(&self, account: &Address, stream: &StreamId) -> bool {
        match self.get(stream) {
            None => true,
            Some(s) => {
                s.admins.contains(account)
                    || s.writers.contains(account)
                    || s.special_counts.get(account).is_some_and(|&n| n > 0)
            }
        }
    }

    /// Whether `account` may write `key` of `stream`: new stream or admin;
    /// else a special key needs a special writer of it, a normal key a
    /// stream writer (a stream writer cannot write special keys).
    pub fn has_write_permission(&self, account: &Address, stream: &StreamId, key: &[u8]) -> bool {
        if self.is_new(stream) || self.is_admin(account, stream) {
            return true;
        }
        if self.is_special_key(stream, key) {
            self.is_writer_of_key(account, stream, key)
        } else {
            self.is_writer_of_stream(account, stream)
        }
    }

    /// Whether `account` may flush `stream` (remove every key of it at
    /// once): a flush writes every key, so it needs the right to write any
    /// key there may be — the stream is new or the account an admin, or
    /// it is a stream writer and a special writer of every special key.
    /// Special keys count against the quota, so the walk is bounded.
    pub fn may_flush(&self, account: &Address, stream: &StreamId) -> bool {
        if self.is_new(stream) || self.is_admin(account, stream) {
            return true;
        }
        self.get(stream).is_some_and(|s| {
            s.writers.contains(account)
                && s.special_keys.iter().all(|k| s.special_writers.contains(&(k.clone(), *account)))
        })
    }

    /// The access-control state of `stream`, if it has any history.
    pub fn stream(&self, stream: &StreamId) -> Option<&StreamAcl> {
        self.streams.get(stream)
    }

    /// Puts back what [`Acl::stream`] returned (`None`: the stream is new
    /// again): to undo changes whose effects could not be stored.
    pub fn restore_stream(&mut self, stream: StreamId, state: Option<StreamAcl>) {
        let added = state.as_ref().map_or(0, |s| s.bytes);
        let old = match state {
            Some(s) => self.streams.insert(stream, s),
            None => self.streams.remove(&stream),
        };
        self.bytes = self.bytes - old.map_or(0, |s| s.bytes) + added;
    }

    /// Streams with access-control history (claimed streams).
    pub fn stream_count(&self) -> u64 {
        self.streams.len() as u64
    }

    /// Bytes of roles and special keys, as [`Quotas::acl_bytes`](crate::quota::Quotas::acl_bytes) counts them.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// How much applying `c` would change [`Acl::bytes`]: the changes a
    /// transaction makes (merged, so each touches another fact) add up.
    pub fn bytes_change(&self, c: &AclChange) -> i64 {
        let s = self.get(&c.stream);
        let holds = match c.op {
            ControlOp::GrantAdminRole | ControlOp::RenounceAdminRole => {
                s.is_some_and(|s| s.admins.contains(&c.account))
            }
            ControlOp::SetKeyToSpecial | ControlOp::SetKeyToNormal => {
                s.is_some_and(|s| s.special_keys.contains(&c.key))
            }
            ControlOp::GrantWriteRole | ControlOp::RevokeWriteRole | ControlOp::RenounceWriteRole => {
                s.is_some_and(|s| s.writers.contains(&c.account))
            }
            ControlOp::GrantSpecialWriteRole
            | ControlOp::RevokeSpecialWriteRole
            | ControlOp::RenounceSpecialWriteRole => {
                s.is_some_and(|s| s.special_writers.contains(&(c.key.clone(), c.account)))
            }
        };
        let grants = matches!(
            c.op,
            ControlOp::GrantAdminRole
                | ControlOp::SetKeyToSpecial
                | ControlOp::GrantWriteRole
                | ControlOp::GrantSpecialWriteRole
        );
        let bytes = fact_bytes(fact_key(c)) as i64;
        match (grants, holds) {
            (true, false) => bytes,
            (false, true) => -bytes,
            _ => 0,
        }
    }

    /// Claims `stream` with no roles (the `Claimed` fact alone), as when
    /// rebuilding the state from its facts.
    pub fn claim(&mut self, stream: StreamId) {
        self.streams.entry(stream).or_default();
    }

    /// Applies a committed change. Any change claims a new stream.
    pub fn apply(&mut self, c: &AclChange) {
        let delta = self.bytes_change(c);
        let s = self.streams.entry(c.stream).or_default();
        use ControlOp::*;
        match c.op {
            GrantAdminRole => {
                s.admins.insert(c.account);
            }
            RenounceAdminRole => {
                s.admins.remove(&c.account);
            }
            SetKeyToSpecial => {
                s.special_keys.insert(c.key.clone());
            }
            SetKeyToNormal => {
                s.special_keys.remove(&c.key);
            }
            GrantWriteRole => {
                s.writers.insert(c.account);
            }
            RevokeWriteRole | RenounceWriteRole => {
                s.writers.remove(&c.account);
            }
            GrantSpecialWriteRole => {
                if s.special_writers.insert((c.key.clone(), c.account)) {
                    *s.special_counts.entry(c.account).or_default() += 1;
                }
            }
            RevokeSpecialWriteRole | RenounceSpecialWriteRole => {
                if s.special_writers.remove(&(c.key.clone(), c.account)) {
                    let n = s.special_counts.entry(c.account).or_default();
                    *n -= 1;
                    if *n == 0 {
                        s.special_counts.remove(&c.account);
                    }
                }
            }
        }
        s.bytes = s.bytes.wrapping_add_signed(delta);
        self.bytes = self.bytes.wrapping_add_signed(delta);
    }

    /// Streams with access-control history, in order.
    pub fn streams(&self) -> impl Iterator<Item = StreamId> + '_ {
        self.streams.keys().copied()
    }

    /// Every fact that holds about `stream`, in a fixed order (for digests).
    pub fn facts_of<'a>(&'a self, stream: &'a StreamId) -> impl Iterator<Item = AclFact<'a>> + 'a {
        self.streams.get_key_value(stream).into_iter().flat_map(|(stream, s)| {
            std::iter::once(AclFact::Claimed(stream))
                .chain(s.admins.iter().map(move |a| AclFact::Admin(stream, a)))
                .chain(s.writers.iter().map(move |a| AclFact::Writer(stream, a)))
                .chain(s.special_keys.iter().map(move |k| AclFact::SpecialKey(stream, k)))
                .chain(s.special_writers.iter().map(move |(k, a)| AclFact::SpecialWriter(stream, k, a)))
        })
    }
}

/// One fact of the access-control state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclFact<'a> {
    /// The stream has access-control history.
    Claimed(&'a StreamId),
    /// An admin.
    Admin(&'a StreamId, &'a Address),
    /// A stream writer.
    Writer(&'a StreamId, &'a Address),
    /// A special key.
    SpecialKey(&'a StreamId, &'a [u8]),
    /// A special writer of a key.
    SpecialWriter(&'a StreamId, &'a [u8], &'a Address),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(op: ControlOp, key: &[u8], account: u8) -> AclChange {
        AclChange { op, stream: StreamId([1; 32]), key: key.to_vec(), account: Address([account; 20]) }
    }

    #[test]
    fn a_stream_writer_cannot_write_a_special_key_but_its_special_writer_can() {
        let mut acl = Acl::default();
        let s = StreamId([1; 32]);
        acl.apply(&change(ControlOp::GrantAdminRole, b"", 1));
        acl.apply(&change(ControlOp::GrantWriteRole, b"", 2));
        acl.apply(&change(ControlOp::SetKeyToSpecial, b"k", 0));
        acl.apply(&change(ControlOp::GrantSpecialWriteRole, b"k", 3));
        assert!(acl.has_write_permission(&Address([2; 20]), &s, b"other"));
        assert!(!acl.has_write_permission(&Address([2; 20]), &s, b"k"));
        assert!(acl.has_write_permission(&Address([3; 20]), &s, b"k"));
        assert!(!acl.has_write_permission(&Address([3; 20]), &s, b"other"));
        assert!(acl.can_write_stream(&Address([3; 20]), &s));
        acl.apply(&change(ControlOp::RenounceSpecialWriteRole, b"k", 3));
        assert!(!acl.can_write_stream(&Address([3; 20]), &s));
        assert!(acl.has_write_permission(&Address([9; 20]), &StreamId([2; 32]), b"k"), "new stream");
    }
}
