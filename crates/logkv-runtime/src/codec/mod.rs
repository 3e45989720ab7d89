//! Transaction bodies: the codec trait and the decoded form every codec
//! produces. The 0G codec (`zerog`) is byte-compatible with 0G Storage KV;
//! the native codec (`native`) adds what a Redis-compatible server needs.
//! Applications plug in their own codecs through [`Codec`].
//!
//! A decoded body is *staged* like 0G's parser: the version and read set are
//! parsed first, then the write set, then the controls, and a parse error in
//! a later stage does not hide a failure the runtime finds in an earlier one
//! (a read-set conflict wins over a malformed write set).

use crate::envelope::Protocol;
use crate::types::{Address, StreamId};

pub mod json;
mod layout;
pub mod native;
pub mod zerog;

/// Codec byte of the 0G stream-data format.
pub const ZEROG: u8 = 0;
/// Codec byte of the logkv native format.
pub const NATIVE: u8 = 1;
/// Codec byte of the logkv native format spelled compactly (varints, streams
/// by tag index): what a node writes for its own clients.
pub const NATIVE_COMPACT: u8 = 2;
/// Codec bytes from here on are free for applications.
pub const FIRST_APPLICATION_CODEC: u8 = 0x80;

/// Longest key the protocol allows (a format constant, the same on every node).
pub const MAX_KEY_BYTES: usize = 65_535;
/// Largest value the protocol allows.
pub const MAX_VALUE_BYTES: usize = 16 << 20;
/// Most reads, writes or controls in one transaction.
pub const MAX_LIST_LEN: usize = 65_536;

/// Turns the bytes of a transaction body into its reads, writes and controls.
/// Must be deterministic: every node decodes the same bytes the same way.
pub trait Codec: Send + Sync {
    /// The codec byte that selects this codec in an entry.
    fn id(&self) -> u8;
    /// A short name for diagnostics.
    fn name(&self) -> &'static str;
    /// Decodes a body. Values are not copied: a write refers to its bytes by
    /// their range in `body`, so the index can point into the log entry.
    /// `tags` are the transaction's tags, ascending and unique as the entry
    /// lists them, for codecs that name streams by their index there; others
    /// ignore them.
    fn decode(&self, body: &[u8], tags: &[StreamId]) -> Result<Decoded, ParseError>;
}

/// Why a body could not be decoded. The display strings follow 0G's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Truncated, trailing bytes, an empty or oversized key, an unknown op...
    #[error("Invalid stream data")]
    Invalid {
        /// What exactly was wrong (for logs; not part of the result string).
        detail: String,
    },
    /// A list longer than [`MAX_LIST_LEN`].
    #[error("Stream read/write/access_control list too long")]
    ListTooLong,
}

impl ParseError {
    /// An `Invalid` error with a detail.
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::Invalid { detail: detail.into() }
    }
}

/// A decoded body. Later stages are `Err` when they could not be parsed
/// (and so are all stages after a failed one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// Reads were made at this version; `u64::MAX` disables version checks.
    pub version: u64,
    /// Check versions of the read set only (Redis `WATCH`), not of the writes.
    pub check_reads_only: bool,
    /// The read set, in body order.
    pub reads: Result<Vec<Read>, ParseError>,
    /// The write set, in body order (duplicates not yet merged).
    pub writes: Result<Vec<Write>, ParseError>,
    /// The access-control ops, in body order (not yet merged).
    pub controls: Result<Vec<Control>, ParseError>,
}

/// A key the transaction read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    /// Its stream.
    pub stream: StreamId,
    /// The key.
    pub key: Vec<u8>,
}

/// Bytes inside the body: `body[offset..offset + len]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValueRef {
    /// Offset in the body.
    pub offset: usize,
    /// Length.
    pub len: usize,
}

impl ValueRef {
    /// The bytes this refers to in `body`.
    pub fn get<'a>(&self, body: &'a [u8]) -> &'a [u8] {
        &body[self.offset..self.offset + self.len]
    }
}

/// What a write does to its key. Read-modify-write operations run in log
/// order on every node, so they need no client retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOp {
    /// Set the value (empty is a value, except in the 0G format where an
    /// empty write is a delete).
    Put(ValueRef),
    /// Remove the key.
    Delete,
    /// Add to the value read as a decimal `i64` (absent = 0), as Redis `INCRBY`.
    Increment(i64),
    /// Append to the value (absent = empty).
    Append(ValueRef),
    /// Set only if the key has no live value.
    PutIfAbsent(ValueRef),
    /// Set only if the key has a live value.
    PutIfPresent(ValueRef),
    /// Remove the key only if it has a live value.
    DeleteIfPresent,
    /// Read the value at this point of the transaction; changes nothing
    /// (native codecs only).
    Get,
    /// Set the value with an expiry: a Redis `SET` with its options
    /// (native codecs, protocol 4).
    PutExpiring {
        /// The value.
        value: ValueRef,
        /// When it may be set.
        cond: PutCond,
        /// Its expiry.
        expiry: NewExpiry,
    },
    /// Set or remove the expiry of a live key: `EXPIRE` and its kin,
    /// `PERSIST` (native codecs, protocol 4).
    Expire {
        /// When it applies.
        cond: ExpireCond,
        /// The new expiry, Unix milliseconds; `None` removes it.
        at: Option<u64>,
    },
    /// Remove every key of the write's stream, in O(1): keys whose newest
    /// version is older than the flush are absent from then on (`FLUSHDB`;
    /// native codecs, protocol 6). Its key is always [`FLUSH_KEY`].
    Flush,
    /// A collection op on the write's key (`HSET`, `SADD`…; native codecs,
    /// protocol 7): apply decides its effects on the collection's elements
    /// from the state (`crate::collection`).
    Collection {
        /// Which op.
        op: crate::collection::CollOp,
        /// Its arguments (`collection::encode_args`).
        args: ValueRef,
    },
}

/// The key a [`WriteOp::Flush`] carries: the layout has a key on every
/// write, and a flush names none, so it has this one spelling.
pub const FLUSH_KEY: &[u8] = b"*";

impl WriteOp {
    /// The oldest entry protocol that may hold the op: its feature level
    /// (docs/format.md, "Feature levels").
    pub fn protocol(&self) -> Protocol {
        match self {
            WriteOp::Get => Protocol::V3,
            WriteOp::PutExpiring { .. } | WriteOp::Expire { .. } => Protocol::V4,
            WriteOp::Flush => Protocol::V6,
            WriteOp::Collection { op, .. } => op.protocol(),
            _ => Protocol::V1,
        }
    }
}

/// The condition of a [`WriteOp::PutExpiring`]: Redis `SET`'s `NX`/`XX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutCond {
    /// Always.
    Always,
    /// Only if the key has no live value (`NX`).
    IfAbsent,
    /// Only if the key has a live value (`XX`).
    IfPresent,
}

/// The expiry a [`WriteOp::PutExpiring`] leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewExpiry {
    /// None: the key lives until deleted.
    Never,
    /// The key's expiry stays as it was (`KEEPTTL`).
    Keep,
    /// At this Unix time in milliseconds.
    At(u64),
}

/// The condition of a [`WriteOp::Expire`]: Redis `EXPIRE`'s options, judged
/// against the key's current expiry (none counts as infinitely far).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpireCond {
    /// Always.
    Always,
    /// Only if the key has no expiry (`NX`).
    IfNone,
    /// Only if the key has an expiry (`XX`).
    IfSome,
    /// Only if the new expiry is later than the current one (`GT`).
    IfLater,
    /// Only if the new expiry is earlier than the current one (`LT`).
    IfEarlier,
    /// Only if the key has an expiry and the new one is earlier (`XX LT`).
    IfSomeAndEarlier,
}

/// One write of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// Its stream.
    pub stream: StreamId,
    /// The key.
    pub key: Vec<u8>,
    /// What it does.
    pub op: WriteOp,
}

/// Access-control operations, with 0G's op bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum ControlOp {
    /// Make `account` an admin of the stream.
    GrantAdminRole = 0x00,
    /// The sender stops being an admin.
    RenounceAdminRole = 0x01,
    /// Only special writers may write `key`.
    SetKeyToSpecial = 0x10,
    /// `key` is written by stream writers again.
    SetKeyToNormal = 0x11,
    /// Make `account` a writer of the stream.
    GrantWriteRole = 0x20,
    /// `account` stops being a writer of the stream.
    RevokeWriteRole = 0x21,
    /// The sender stops being a writer of the stream.
    RenounceWriteRole = 0x22,
    /// Make `account` a special writer of `key`.
    GrantSpecialWriteRole = 0x30,
    /// `account` stops being a special writer of `key`.
    RevokeSpecialWriteRole = 0x31,
    /// The sender stops being a special writer of `key`.
    RenounceSpecialWriteRole = 0x32,
}

impl ControlOp {
    /// The op for a byte, if it is one.
    pub fn from_byte(b: u8) -> Option<Self> {
        use ControlOp::*;
        Some(match b {
            0x00 => GrantAdminRole,
            0x01 => RenounceAdminRole,
            0x10 => SetKeyToSpecial,
            0x11 => SetKeyToNormal,
            0x20 => GrantWriteRole,
            0x21 => RevokeWriteRole,
            0x22 => RenounceWriteRole,
            0x30 => GrantSpecialWriteRole,
            0x31 => RevokeSpecialWriteRole,
            0x32 => RenounceSpecialWriteRole,
            _ => return None,
        })
    }

    /// Whether the op carries a key.
    pub fn has_key(self) -> bool {
        (self as u8) & 0xF0 == 0x10 || (self as u8) & 0xF0 == 0x30
    }

    /// Whether the op carries an account (renounce ops act on the sender).
    pub fn has_account(self) -> bool {
        use ControlOp::*;
        matches!(
            self,
            GrantAdminRole
                | GrantWriteRole
                | RevokeWriteRole
                | GrantSpecialWriteRole
                | RevokeSpecialWriteRole
        )
    }

    /// The name 0G prints in result strings (`GRANT_WRITER_ROLE`, ...).
    pub fn zerog_name(self) -> &'static str {
        use ControlOp::*;
        match self {
            GrantAdminRole => "GRANT_ADMIN_ROLE",
            RenounceAdminRole => "RENOUNCE_ADMIN_ROLE",
            SetKeyToSpecial => "SET_KEY_TO_SPECIAL",
            SetKeyToNormal => "SET_KEY_TO_NORMAL",
            GrantWriteRole => "GRANT_WRITER_ROLE",
            RevokeWriteRole => "REVOKE_WRITER_ROLE",
            RenounceWriteRole => "RENOUNCE_WRITER_ROLE",
            GrantSpecialWriteRole => "GRANT_SPECIAL_WRITER_ROLE",
            RevokeSpecialWriteRole => "REVOKE_SPECIAL_WRITER_ROLE",
            RenounceSpecialWriteRole => "RENOUNCE_SPECIAL_WRITER_ROLE",
        }
    }
}

/// One access-control op of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Control {
    /// The op.
    pub op: ControlOp,
    /// Its stream.
    pub stream: StreamId,
    /// The key, for key ops.
    pub key: Option<Vec<u8>>,
    /// The account, for ops that name one.
    pub account: Option<Address>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_op_bytes_round_trip_and_shapes_match_semantics() {
        for b in 0..=255u8 {
            if let Some(op) = ControlOp::from_byte(b) {
                assert_eq!(op as u8, b);
            }
        }
        assert!(ControlOp::GrantSpecialWriteRole.has_key() && ControlOp::GrantSpecialWriteRole.has_account());
        assert!(
            ControlOp::RenounceSpecialWriteRole.has_key()
                && !ControlOp::RenounceSpecialWriteRole.has_account()
        );
        assert!(!ControlOp::RenounceAdminRole.has_key() && !ControlOp::RenounceAdminRole.has_account());
        assert!(ControlOp::SetKeyToNormal.has_key() && !ControlOp::SetKeyToNormal.has_account());
    }
}
