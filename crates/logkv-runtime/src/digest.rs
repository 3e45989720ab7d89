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

use crate::acl::AclFact;
use crate::signing::keccak256;
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
    pub fn value(stream: &'a StreamId, key: &'a [u8], value: &[u8]) -> Self {
        Fact::Value { stream, key, value: ValueSum::of(key, value) }
    }

    /// The fact's hash: keccak-256 of a tag byte and its length-prefixed fields.
    fn hash(&self) -> [u8; 32] {
        let mut b = Vec::new();
        let field = |b: &mut Vec<u8>, bytes: &[u8]| {
            b.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
            b.extend_from_slice(bytes);
        };
        match *self {
            Fact::Value { stream, key, value } => {
                b.push(1);
                b.extend_from_slice(&stream.0);
                field(&mut b, key);
                b.extend_from_slice(&value.len.to_be_bytes());
                b.extend_from_slice(&value.crc.to_be_bytes());
            }
            Fact::Acl(f) => {
                b.push(2);
                let (kind, stream, key, account): (u8, _, &[u8], _) = match f {
                    AclFact::Claimed(s) => (0, s, &[], None),
                    AclFact::Admin(s, a) => (1, s, &[], Some(a)),
                    AclFact::Writer(s, a) => (2, s, &[], Some(a)),
                    AclFact::SpecialKey(s, k) => (3, s, k, None),
                    AclFact::SpecialWriter(s, k, a) => (4, s, k, Some(a)),
                };
                b.push(kind);
                b.extend_from_slice(&stream.0);
                field(&mut b, key);
                b.extend_from_slice(&account.map_or([0; 20], |a| a.0));
            }
            Fact::Result { version, text } => {
                b.push(3);
                b.extend_from_slice(&version.to_be_bytes());
                field(&mut b, text.as_bytes());
            }
        }
        keccak256(&b)
    }
}

/// The digest: a 256-bit sum of fact hashes.
#[derive(Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct StateDigest([u64; 4]);

impl StateDigest {
    /// Adds a fact that now holds.
    pub fn add(&mut self, fact: Fact<'_>) {
        let h = limbs(&fact.hash());
        let mut carry = false;
        for (a, b) in self.0.iter_mut().zip(h) {
            let (s, c1) = a.overflowing_add(b);
            let (s, c2) = s.overflowing_add(carry as u64);
            *a = s;
            carry = c1 || c2;
        }
    }

    /// Removes a fact that no longer holds.
    pub fn remove(&mut self, fact: Fact<'_>) {
        let h = limbs(&fact.hash());
        let mut borrow = false;
        for (a, b) in self.0.iter_mut().zip(h) {
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

    fn value<'a>(stream: &'a StreamId, key: &'a [u8], value: &[u8]) -> Fact<'a> {
        Fact::value(stream, key, value)
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
        d.remove(Fact::Value { stream: &s, key: b"1234", value: sum });
        assert_eq!(d, StateDigest::default(), "a header's length and CRC take the value's fact out");
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
