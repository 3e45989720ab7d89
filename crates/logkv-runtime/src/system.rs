//! The keys a node derives from the entries it applies, in the store's
//! system keyspace (1). Data of a stream lives in a keyspace of its own
//! (numbered from 2 in order of first appearance, recorded here).
//!
//! | key | value |
//! |---|---|
//! | `"a"` kind u8, stream 32, \[keccak256(key) 32\], \[account 20\] | `1`, then the key (empty for facts without one): the access-control fact holds |
//! | `"s"` stream 32 | the stream's keyspace, u32 BE |
//! | `"n"` sender 20, stream 32 | the sender's anti-replay window on the stream (`NonceWindow::encode`) |
//! | `"e"` stream 32, keccak256(key) 32 | the expiry of the key's newest value, Unix ms, u64 BE (absent: none); void if older than the stream's flush |
//! | `"q"` stream 32, flush u64 BE, expiry u64 BE, keccak256(key) 32 | the key: the stream's expiry queue, earliest first (`crate::sweep`); `flush` is the version of the stream's flush in force when it was queued, so a flush leaves the old queue behind whole and the sweep never reads it |
//! | `"c"` stream 32 | how many keys of the stream have an expiry (its `"e"` keys written since its newest flush), u64 BE |
//! | `"f"` stream 32 | the version of the stream's newest flush, u64 BE: keys whose newest version is older are absent |
//! | `"v"` keyspace u32 BE | the sum of the value facts of the stream stored in that keyspace (`digest::StateDigest::to_bytes`), so a flush takes them out of the digest at once; keyed by keyspace, not stream, to keep the op an entry writes short |
//!
//! Every key here is per stream, account or fact, never per write: what
//! each entry derives besides (its results, the digest after it) lives in
//! its applied record ([`crate::annex`], the record's state).
//!
//! Fact kinds are those of the digest: 0 claimed (no key, no account),
//! 1 admin, 2 stream writer (account), 3 special key (key), 4 special
//! writer (key and account). Keys are hashed so fact keys stay short
//! whatever the protocol key's length; the value keeps the key itself, to
//! rebuild the access-control state and to rule out hash collisions.

use crate::acl::{Acl, AclChange, AclFact};
use crate::codec::ControlOp;
use crate::signing::keccak256;
use crate::types::{Address, StreamId};

/// The keyspace of the node's derived keys.
pub const SYSTEM_KEYSPACE: u32 = 1;
/// The keyspace of the first stream; later streams count up from it.
pub const FIRST_STREAM_KEYSPACE: u32 = 2;
/// Prefix of access-control fact keys.
pub const FACT_PREFIX: u8 = b'a';
/// Prefix of stream keys.
pub const STREAM_PREFIX: u8 = b's';
/// Prefix of anti-replay window keys.
pub const NONCE_PREFIX: u8 = b'n';
/// Prefix of expiry keys.
pub const EXPIRY_PREFIX: u8 = b'e';
/// Prefix of stream flush keys.
pub const FLUSH_PREFIX: u8 = b'f';
/// Prefix of the keys holding each stream's sum of value facts.
pub const VALUE_SUM_PREFIX: u8 = b'v';

/// A key of `prefix` then `stream`: one per stream.
fn per_stream(prefix: u8, stream: &StreamId) -> [u8; 33] {
    let mut k = [prefix; 33];
    k[1..].copy_from_slice(&stream.0);
    k
}

/// The stream a key of [`per_stream`]'s form names, if it has `prefix`.
fn stream_of(prefix: u8, key: &[u8]) -> Option<StreamId> {
    StreamId::from_slice(key.strip_prefix(&[prefix])?)
}

/// The key that holds the version of `stream`'s newest flush.
pub fn flush_key(stream: &StreamId) -> [u8; 33] {
    per_stream(FLUSH_PREFIX, stream)
}

/// The stream a flush key names.
pub fn stream_of_flush_key(key: &[u8]) -> Option<StreamId> {
    stream_of(FLUSH_PREFIX, key)
}

/// The key that holds the sum of value facts of the stream stored in
/// `keyspace` (rewritten by every entry that changes a value, so short).
pub fn value_sum_key(keyspace: u32) -> [u8; 5] {
    let mut k = [VALUE_SUM_PREFIX; 5];
    k[1..].copy_from_slice(&keyspace.to_be_bytes());
    k
}

/// The keyspace a value-sum key names.
pub fn keyspace_of_value_sum_key(key: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(key.strip_prefix(&[VALUE_SUM_PREFIX])?.try_into().ok()?))
}

/// Prefix of expiry queue keys.
pub const QUEUE_PREFIX: u8 = b'q';
/// Prefix of expiry count keys.
pub const EXPIRY_COUNT_PREFIX: u8 = b'c';

/// The key that holds the expiry of `key`'s value in `stream`.
pub fn expiry_key(stream: &StreamId, key: &[u8]) -> [u8; 65] {
    let mut k = [EXPIRY_PREFIX; 65];
    k[1..33].copy_from_slice(&stream.0);
    k[33..].copy_from_slice(&keccak256(key));
    k
}

/// The prefixes of `stream`'s system keys that its flush voids when older
/// than it: its expiry keys and its expiry queue.
pub fn flush_voided_prefixes(stream: &StreamId) -> [[u8; 33]; 2] {
    [per_stream(EXPIRY_PREFIX, stream), per_stream(QUEUE_PREFIX, stream)]
}

/// The expiry an expiry key's value holds; `None` if it is not 8 bytes.
pub fn expiry_of(value: &[u8]) -> Option<u64> {
    u64_of(value)
}

/// The `u64` an 8-byte big-endian value holds (an expiry, a flush version).
pub fn u64_of(value: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(value.try_into().ok()?))
}

/// The key of `key` in `stream`'s expiry queue, for a value expiring `at`
/// queued while the stream's flush in force was `flush`.
pub fn queue_key(stream: &StreamId, flush: u64, at: u64, key: &[u8]) -> [u8; 81] {
    let mut k = [QUEUE_PREFIX; 81];
    k[..49].copy_from_slice(&queue_bound(stream, flush, at));
    k[49..].copy_from_slice(&keccak256(key));
    k
}

/// Where `stream`'s queued expiries at `at` or later begin, among those
/// queued since its flush at `flush`.
pub fn queue_bound(stream: &StreamId, flush: u64, at: u64) -> [u8; 49] {
    let mut k = [QUEUE_PREFIX; 49];
    k[1..33].copy_from_slice(&stream.0);
    k[33..41].copy_from_slice(&flush.to_be_bytes());
    k[41..].copy_from_slice(&at.to_be_bytes());
    k
}

/// The expiry time a queue key holds.
pub fn queued_at(queue_key: &[u8]) -> Option<u64> {
    u64_of(queue_key.get(41..49)?)
}

/// The key that counts `stream`'s keys with an expiry.
pub fn expiry_count_key(stream: &StreamId) -> [u8; 33] {
    let mut k = [EXPIRY_COUNT_PREFIX; 33];
    k[1..].copy_from_slice(&stream.0);
    k
}

/// The stream an expiry count key names.
pub fn stream_of_count_key(key: &[u8]) -> Option<StreamId> {
    StreamId::from_slice(key.strip_prefix(&[EXPIRY_COUNT_PREFIX])?)
}

/// The key that maps `stream` to its keyspace.
pub fn stream_key(stream: &StreamId) -> [u8; 33] {
    per_stream(STREAM_PREFIX, stream)
}

/// The stream a stream key names.
pub fn stream_of_key(key: &[u8]) -> Option<StreamId> {
    stream_of(STREAM_PREFIX, key)
}

/// The key of `sender`'s anti-replay window on `stream`.
pub fn nonce_key(sender: &Address, stream: &StreamId) -> [u8; 53] {
    let mut k = [NONCE_PREFIX; 53];
    k[1..21].copy_from_slice(&sender.0);
    k[21..].copy_from_slice(&stream.0);
    k
}

/// The sender and stream a nonce key names.
pub fn nonce_key_parts(key: &[u8]) -> Option<(Address, StreamId)> {
    let rest = key.strip_prefix(&[NONCE_PREFIX])?;
    if rest.len() != 52 {
        return None;
    }
    Some((Address::from_slice(&rest[..20])?, StreamId::from_slice(&rest[20..])?))
}

/// An access-control fact, owned (the form stored and queried).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum FactOf {
    /// The stream has access-control history.
    Claimed(StreamId),
    /// An admin.
    Admin(StreamId, Address),
    /// A stream writer.
    Writer(StreamId, Address),
    /// A special key.
    SpecialKey(StreamId, Vec<u8>),
    /// A special writer of a key.
    SpecialWriter(StreamId, Vec<u8>, Address),
}

impl From<AclFact<'_>> for FactOf {
    fn from(f: AclFact<'_>) -> Self {
        match f {
            AclFact::Claimed(s) => FactOf::Claimed(*s),
            AclFact::Admin(s, a) => FactOf::Admin(*s, *a),
            AclFact::Writer(s, a) => FactOf::Writer(*s, *a),
            AclFact::SpecialKey(s, k) => FactOf::SpecialKey(*s, k.to_vec()),
            AclFact::SpecialWriter(s, k, a) => FactOf::SpecialWriter(*s, k.to_vec(), *a),
        }
    }
}

impl FactOf {
    /// The fact's key in the system keyspace.
    pub fn key(&self) -> Vec<u8> {
        let (kind, stream, key, account): (u8, _, Option<&[u8]>, Option<&Address>) = match self {
            FactOf::Claimed(s) => (0, s, None, None),
            FactOf::Admin(s, a) => (1, s, None, Some(a)),
            FactOf::Writer(s, a) => (2, s, None, Some(a)),
            FactOf::SpecialKey(s, k) => (3, s, Some(k), None),
            FactOf::SpecialWriter(s, k, a) => (4, s, Some(k), Some(a)),
        };
        let mut out = Vec::with_capacity(86);
        out.push(FACT_PREFIX);
        out.push(kind);
        out.extend_from_slice(&stream.0);
        if let Some(k) = key {
            out.extend_from_slice(&keccak256(k));
        }
        if let Some(a) = account {
            out.extend_from_slice(&a.0);
        }
        out
    }

    /// The fact's value: `1`, then its key (empty if it has none).
    pub fn value(&self) -> Vec<u8> {
        let mut out = vec![1];
        if let FactOf::SpecialKey(_, k) | FactOf::SpecialWriter(_, k, _) = self {
            out.extend_from_slice(k);
        }
        out
    }

    /// Whether a stored value is this fact's (its key, not a colliding one).
    pub fn matches(&self, value: &[u8]) -> bool {
        value == self.value()
    }

    /// Reads a fact back from its key and value.
    pub fn parse(key: &[u8], value: &[u8]) -> Option<Self> {
        let rest = key.strip_prefix(&[FACT_PREFIX])?;
        let (&kind, rest) = rest.split_first()?;
        let stream = StreamId::from_slice(rest.get(..32)?)?;
        let rest = &rest[32..];
        let (&one, protocol_key) = value.split_first()?;
        if one != 1 {
            return None;
        }
        let hashed = |rest: &[u8]| rest.get(..32) == Some(&keccak256(protocol_key)[..]);
        let fact = match (kind, rest.len()) {
            (0, 0) if protocol_key.is_empty() => FactOf::Claimed(stream),
            (1, 20) if protocol_key.is_empty() => FactOf::Admin(stream, Address::from_slice(rest)?),
            (2, 20) if protocol_key.is_empty() => FactOf::Writer(stream, Address::from_slice(rest)?),
            (3, 32) if hashed(rest) => FactOf::SpecialKey(stream, protocol_key.to_vec()),
            (4, 52) if hashed(rest) => {
                FactOf::SpecialWriter(stream, protocol_key.to_vec(), Address::from_slice(&rest[32..])?)
            }
            _ => return None,
        };
        Some(fact)
    }

    /// Makes the fact hold in `acl` (rebuilding it from stored facts).
    pub fn restore(&self, acl: &mut Acl) {
        let change = |op, stream: &StreamId, key: &[u8], account: &Address| AclChange {
            op,
            stream: *stream,
            key: key.to_vec(),
            account: *account,
        };
        match self {
            FactOf::Claimed(s) => acl.claim(*s),
            FactOf::Admin(s, a) => acl.apply(&change(ControlOp::GrantAdminRole, s, &[], a)),
            FactOf::Writer(s, a) => acl.apply(&change(ControlOp::GrantWriteRole, s, &[], a)),
            FactOf::SpecialKey(s, k) => {
                acl.apply(&change(ControlOp::SetKeyToSpecial, s, k, &Address::default()))
            }
            FactOf::SpecialWriter(s, k, a) => acl.apply(&change(ControlOp::GrantSpecialWriteRole, s, k, a)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_round_trip_through_key_and_value() {
        let (s, a) = (StreamId([3; 32]), Address([9; 20]));
        let facts = [
            FactOf::Claimed(s),
            FactOf::Admin(s, a),
            FactOf::Writer(s, a),
            FactOf::SpecialKey(s, b"k".to_vec()),
            FactOf::SpecialWriter(s, vec![0xff; 300], a),
        ];
        for f in &facts {
            assert!(f.key().len() <= 86);
            assert_eq!(FactOf::parse(&f.key(), &f.value()).as_ref(), Some(f));
            assert!(f.matches(&f.value()));
        }
        let other = FactOf::SpecialKey(s, b"j".to_vec());
        assert_eq!(
            FactOf::parse(&facts[3].key(), &other.value()),
            None,
            "a key that does not hash to the key's hash"
        );
        assert_eq!(nonce_key_parts(&nonce_key(&a, &s)), Some((a, s)));
        assert_eq!(stream_of_key(&stream_key(&s)), Some(s));
        assert_eq!(stream_of_flush_key(&flush_key(&s)), Some(s));
        assert_eq!(keyspace_of_value_sum_key(&value_sum_key(7)), Some(7));
        assert_eq!(stream_of_key(&flush_key(&s)), None);
    }
}
