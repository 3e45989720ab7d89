//! The state digest: one hash of the logical state (values, access control,
//! results), kept up to date as facts come and go.
//!
//! It is the sum, modulo 2^256, of a keccak-256 hash per fact. Addition
//! commutes and can be undone, so two different logs that reach the same
//! state reach the same digest (a hash chain of the log could not), and an
//! update costs one hash per changed fact. Versions are not part of a fact:
//! the same values written at other positions are the same state.
//!
//! A value's fact holds its length and CRC32C (of key, then value) — what
//! the store keeps in each op's header — instead of its bytes, so an
//! overwrite takes the old value's fact out without reading the old value.
//! Two different values of one key then count as the same fact only when
//! they have the same length and CRC: a chance of 2^-32 per differing
//! value, acceptable for comparing honest replicas.

use std::fmt;

pub use logkv_store::record::value_crc;

use sha3::{Digest, Keccak256};

use crate::acl::AclFact;
use crate::types::StreamId;

/// A fact of the logical state.
#[derive(Debug, Clone, Copy)]
pub enum Fact<'a> {
    /// A live value, by its length and CRC ([`Fact::value`]).
    Value {
        /// Its stream.
        stream: &'a StreamId,
        /// Its key.
        key: &'a [u8],
        /// The value.
        value: ValueSum,
        /// Its expiry, Unix milliseconds: part of the fact, so nodes that
        /// agree on values but not on expiries do not agree on the state.
        expires_at: Option<u64>,
    },
    /// An access-control fact.
    Acl(AclFact<'a>),
    /// The result recorded for a version.
    Result {
        /// The version.
        version: u64,
        /// The result string.
        text: &'a str,
    },
}

/// What a value's fact holds of it: what the store keeps in the header of
/// each version record, so it is known without reading the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValueSum {
    /// The value's length in bytes.
    pub len: u32,
    /// CRC32C of the key followed by the value ([`value_crc`]).
    pub crc: u32,
}

impl ValueSum {
    /// The sum of `value` as the value of `key`.
    pub fn of(key: &[u8], value: &[u8]) -> Self {
        // Values are at most 16 MiB (the protocol's limit, which the store enforces).
        Self { len: value.len() as u32, crc: value_crc(key, value) }
    }
}

impl<'a> Fact<'a> {
    /// The fact of `value` being the live value of `key`.
    pub fn value(stream: &'a StreamId, key: &'a [u8], value: &[u8], expires_at: Option<u64>) -> Self {
        Fact::Value { stream, key, value: ValueSum::of(key, value), expires_at }
    }

    /// The fact's hash: keccak-256 of a tag byte and its length-prefixed
    /// fields, fed to the hasher piece by piece (a few facts change per
    /// write, so a buffer per fact would be an allocation per fact).
    fn hash(&self) -> [u8; 32] {
        let mut h = Keccak256::new();
        let field = |h: &mut Keccak256, bytes: &[u8]| {
            h.update((bytes.len() as u32).to_be_bytes());
            h.update(bytes);
        };
        match *self {
            Fact::Value { stream, key, value, expires_at } => {
                h.update([1]);
                h.update(stream.0);
                field(&mut h, key);
                h.update(value.len.to_be_bytes());
                h.update(value.crc.to_be_bytes());
                // Only an expiring value's fact says so, so the facts of
                // every value without one are what they were before expiry.
                if let Some(at) = expires_at {
                    h.update(at.to_be_bytes());
                }
            }
            Fact::Acl(f) => {
                let (kind, stream, key, account): (u8, _, &[u8], _) = match f {
                    AclFact::Claimed(s) => (0, s, &[], None),
                    AclFact::Admin(s, a) => (1, s, &[], Some(a)),
                    AclFact::Writer(s, a) => (2, s, &[], Some(a)),
                    AclFact::SpecialKey(s, k) => (3, s, k, None),
                    AclFact::SpecialWriter(s, k, a) => (4, s, k, Some(a)),
                };
                h.update([2, kind]);
                h.update(stream.0);
                field(&mut h, key);
                h.update(account.map_or([0; 20], |a| a.0));
            }
            Fact::Result { version, text } => {
                h.update([3]);
                h.update(version.to_be_bytes());
                field(&mut h, text.as_bytes());
            }
        }
        h.finalize().into()
    }
}

/// The digest: a 256-bit sum of fact hashes.
#[derive(Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct StateDigest([u64; 4]);

impl StateDigest {
    /// The digest of one fact: a sub-sum to add to several sums.
    pub fn of(fact: Fact<'_>) -> Self {
        StateDigest(limbs(&fact.hash()))
    }

    /// Adds a fact that now holds.
    pub fn add(&mut self, fact: Fact<'_>) {
        self.add_sum(&Self::of(fact));
    }

    /// Removes a fact that no longer holds.
    pub fn remove(&mut self, fact: Fact<'_>) {
        self.remove_sum(&Self::of(fact));
    }

    /// Adds every fact of a sub-sum (a digest of some of the facts).
    pub fn add_sum(&mut self, sum: &StateDigest) {
        let mut carry = false;
        for (a, b) in self.0.iter_mut().zip(sum.0) {
            let (s, c1) = a.overflowing_add(b);
            let (s, c2) = s.overflowing_add(carry as u64);
            *a = s;
            carry = c1 || c2;
        }
    }

    /// Removes every fact of a sub-sum at once: how a stream flush takes
    /// all its values out of the digest in O(1).
    pub fn remove_sum(&mut self, sum: &StateDigest) {
        let mut borrow = false;
        for (a, b) in self.0.iter_mut().zip(sum.0) {
            let (d, b1) = a.overflowing_sub(b);
            let (d, b2) = d.overflowing_sub(borrow as u64);
            *a = d;
            borrow = b1 || b2;
        }
    }

    /// The digest from what [`StateDigest::to_bytes`] wrote.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(limbs(&bytes))
    }

    /// The digest as 32 big-endian bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, limb) in self.0.iter().rev().enumerate() {
            out[i * 8..i * 8 + 8].copy_from_slice(&limb.to_be_bytes());
        }
        out
    }
}

/// A hash as four little-endian-ordered u64 limbs (least significant first).
fn limbs(h: &[u8; 32]) -> [u64; 4] {
    let mut out = [0u64; 4];
    for (i, o) in out.iter_mut().enumerate() {
        let at = 32 - 8 * (i + 1);
        *o = u64::from_be_bytes(h[at..at + 8].try_into().expect("8 bytes"));
    }
    out
}

impl fmt::Display for StateDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("0x")?;
        self.to_bytes().iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for StateDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::keccak256;

    fn value<'a>(stream: &'a StreamId, key: &'a [u8], value: &[u8]) -> Fact<'a> {
        Fact::value(stream, key, value, None)
    }

    #[test]
    fn order_does_not_matter_and_removal_undoes_addition() {
        let s = StreamId([7; 32]);
        let (mut a, mut b) = (StateDigest::default(), StateDigest::default());
        a.add(value(&s, b"x", b"1"));
        a.add(value(&s, b"y", b"2"));
        b.add(value(&s, b"y", b"2"));
        b.add(value(&s, b"z", b"9"));
        b.add(value(&s, b"x", b"1"));
        b.remove(value(&s, b"z", b"9"));
        assert_eq!(a, b);
        a.remove(value(&s, b"x", b"1"));
        a.remove(value(&s, b"y", b"2"));
        assert_eq!(a, StateDigest::default());
    }

    /// The digest is part of the format (nodes compare it, checkpoints keep
    /// it): these bytes must not change without a format version.
    #[test]
    fn every_kind_of_fact_hashes_to_known_bytes() {
        use crate::types::Address;
        let (s, a) = (StreamId([7; 32]), Address([9; 20]));
        let facts = [
            value(&s, b"key", b"value"),
            Fact::Acl(AclFact::Claimed(&s)),
            Fact::Acl(AclFact::Admin(&s, &a)),
            Fact::Acl(AclFact::Writer(&s, &a)),
            Fact::Acl(AclFact::SpecialKey(&s, b"special")),
            Fact::Acl(AclFact::SpecialWriter(&s, b"special", &a)),
            Fact::Result { version: 42, text: "Commit" },
        ];
        let mut d = StateDigest::default();
        let hashes: Vec<String> = facts
            .iter()
            .map(|f| {
                d.add(*f);
                f.hash().iter().map(|b| format!("{b:02x}")).collect()
            })
            .collect();
        assert_eq!(hashes, KNOWN_HASHES);
        assert_eq!(d.to_string(), KNOWN_DIGEST);
    }

    const KNOWN_HASHES: [&str; 7] = [
        "883212c3ab4645b66ac9ea795e2e262d02815b85d04516192d38cddde0044825",
        "d3c324dd0f5afdd16bcc2435ed810e18cafe437c84459a9426c7ddd2310aadf5",
        "554979745946e5d978578807c0cfea5cfe21279a97c6f50a48f054fd50740e5f",
        "e94a351884e5d95efab09b203f157467b37f542b1de805f4171c9011ad44a82e",
        "b7e8c6de9c0c05108cd28097bdb121f55a345296c85fac3cce62718e74da2293",
        "77a9ba52277fb9285025d4e41b860a2625c00c3e240924d57794d00d5887116f",
        "b790e5f725eae29c2175d8153566babc24b9811590dac1d96aee46dfbc440aa1",
    ];
    const KNOWN_DIGEST: &str = "0x81ac4d558244a395480c5f685a3279e223cdfab2877d3e9764f3193a986ceb4a";

    /// A value's fact is keccak-256 of format.md's layout, built here by hand.
    #[test]
    fn a_value_fact_hashes_the_documented_layout() {
        let s = StreamId([7; 32]);
        let mut bytes = vec![1];
        bytes.extend_from_slice(&s.0);
        bytes.extend_from_slice(&3u32.to_be_bytes());
        bytes.extend_from_slice(b"key");
        bytes.extend_from_slice(&5u32.to_be_bytes());
        bytes.extend_from_slice(&value_crc(b"key", b"value").to_be_bytes());
        assert_eq!(value(&s, b"key", b"value").hash(), keccak256(&bytes));
    }

    #[test]
    fn a_sub_sum_removes_its_facts_at_once() {
        let s = StreamId([7; 32]);
        let (mut all, mut sub, mut rest) =
            (StateDigest::default(), StateDigest::default(), StateDigest::default());
        for (k, v) in [(&b"x"[..], &b"1"[..]), (b"y", b"2")] {
            all.add(value(&s, k, v));
            sub.add(value(&s, k, v));
        }
        all.add(value(&s, b"z", b"3"));
        rest.add(value(&s, b"z", b"3"));
        all.remove_sum(&sub);
        assert_eq!(all, rest);
        all.add_sum(&sub);
        rest.add_sum(&sub);
        assert_eq!(all, rest);
    }

    #[test]
    fn bytes_round_trip() {
        let s = StreamId([7; 32]);
        let mut d = StateDigest::default();
        d.add(value(&s, b"x", b"1"));
        assert_eq!(StateDigest::from_bytes(d.to_bytes()), d);
    }

    #[test]
    fn a_value_fact_is_its_length_and_crc_of_key_then_value() {
        let s = StreamId([7; 32]);
        // The CRC32C check value of "123456789" (RFC 3720), split across key and value.
        assert_eq!(value_crc(b"1234", b"56789"), 0xe306_9283);
        let sum = ValueSum { len: 5, crc: 0xe306_9283 };
        assert_eq!(ValueSum::of(b"1234", b"56789"), sum);
        let mut d = StateDigest::default();
        d.add(value(&s, b"1234", b"56789"));
        d.remove(Fact::Value { stream: &s, key: b"1234", value: sum, expires_at: None });
        assert_eq!(d, StateDigest::default(), "a header's length and CRC take the value's fact out");
    }

    #[test]
    fn an_expiry_is_part_of_the_value_fact() {
        let s = StreamId([7; 32]);
        let (mut lasting, mut expiring, mut later) =
            (StateDigest::default(), StateDigest::default(), StateDigest::default());
        lasting.add(Fact::value(&s, b"k", b"v", None));
        expiring.add(Fact::value(&s, b"k", b"v", Some(1_000)));
        later.add(Fact::value(&s, b"k", b"v", Some(1_001)));
        assert_ne!(lasting, expiring);
        assert_ne!(expiring, later);
        expiring.remove(Fact::value(&s, b"k", b"v", Some(1_000)));
        assert_eq!(expiring, StateDigest::default());
    }

    #[test]
    fn fields_are_length_prefixed_so_boundaries_matter() {
        let s = StreamId([7; 32]);
        let (mut a, mut b) = (StateDigest::default(), StateDigest::default());
        a.add(value(&s, b"ab", b"c"));
        b.add(value(&s, b"a", b"bc"));
        assert_ne!(a, b);
    }
}
