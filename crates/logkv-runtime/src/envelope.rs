//! Signed entries: the bytes one log record holds. An entry carries one
//! sender's transactions, each in its own codec, and one signature over all
//! of them. `docs/format.md` ("Signed entries") documents every byte.
//!
//! Entries are immutable and come from anyone who can append, so parsing
//! trusts nothing: every length is checked against the bytes present, every
//! count against a protocol limit, and the encoding is canonical (tags sorted
//! and unique, minimal varints, nothing after the signature), so one meaning
//! has one encoding. [`EntryView`] borrows the entry's bytes; the runtime
//! indexes values by their offset inside the entry.
//!
//! Two protocol versions share one parser and one encoder, differing only in
//! how counts and a transaction's tags are spelled ([`Protocol`]).

use std::collections::BTreeSet;

use crate::signing::{self, keccak256, SignatureError, Signer, SIGNATURE_LEN};
use crate::types::{Address, StreamId, MAX_TXS_PER_ENTRY};
use crate::varint::{self, VarintError};

/// The first four bytes of every entry.
pub const MAGIC: [u8; 4] = *b"LKVE";
/// The newest entry format this code understands.
pub const PROTOCOL_VERSION: u16 = Protocol::V7 as u16;
/// Most tags an entry, or one of its transactions, may carry.
pub const MAX_TAGS: usize = 65_536;

/// The entry formats this code reads and writes. They differ only in
/// spelling: the same entry means the same in both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// Big-endian `u32` counts and lengths; every tag list written out. What
    /// external clients (and the ethers golden vectors) sign.
    V1 = 1,
    /// Minimal varint counts and lengths; a transaction's tags as indexes
    /// into the entry's list, so a stream ID is written once per entry. What
    /// a node signs for its own clients.
    V2 = 2,
    /// V2's spelling, whose native bodies may also hold the `Get` op
    /// (`codec::native::Op::Get`). A node signs V3 only for entries that
    /// use it, so what older nodes can apply stays V2 and an older node
    /// stops at a V3 entry instead of judging it differently.
    V3 = 3,
    /// V3, whose native bodies may also hold the expiry ops
    /// (`codec::native::Op::PutExpiring`, `Op::Expire`): the feature level
    /// of key expiry. Signed only for entries that use them, as V3.
    V4 = 4,
    /// V4, and applying an entry of V5 or later begins with the expiry
    /// sweep ([`crate::sweep`]): the feature level at which expired keys
    /// leave the state. A node signs V5 while its state has a queued
    /// expiry, so an older node stops at the first such entry instead of
    /// keeping keys a newer one deleted.
    V5 = 5,
    /// V5, whose native bodies may also hold the stream flush op
    /// (`codec::native::Op::Flush`): the feature level of O(1) flushes
    /// (`FLUSHDB`, `FLUSHALL`). Signed only for entries that use it.
    V6 = 6,
    /// V6, whose native bodies may also hold the collection ops
    /// (`codec::native::Op::Collection`, 0x10 and up): the feature level of
    /// hashes and sets (docs/datamodel.md). Signed only for entries that
    /// use them.
    V7 = 7,
}

impl Protocol {
    /// The `protocol_version` field's value.
    pub fn version(self) -> u16 {
        self as u16
    }

    /// The protocol of a `protocol_version` field, if this code knows it.
    pub fn from_version(version: u16) -> Option<Self> {
        match version {
            1 => Some(Protocol::V1),
            2 => Some(Protocol::V2),
            3 => Some(Protocol::V3),
            4 => Some(Protocol::V4),
            5 => Some(Protocol::V5),
            6 => Some(Protocol::V6),
            7 => Some(Protocol::V7),
            _ => None,
        }
    }

    /// Appends a count or length (which the caller has checked fits a `u32`).
    fn put_count(self, out: &mut Vec<u8>, n: usize) {
        match self {
            Protocol::V1 => out.extend_from_slice(&(n as u32).to_be_bytes()),
            Protocol::V2 | Protocol::V3 | Protocol::V4 | Protocol::V5 | Protocol::V6 | Protocol::V7 => {
                varint::put(out, n as u64)
            }
        }
    }

    /// Appends a transaction's tags, a subset of the entry's `all`.
    fn put_tx_tags(self, out: &mut Vec<u8>, all: &[StreamId], tags: &BTreeSet<StreamId>) {
        self.put_count(out, tags.len());
        for tag in tags {
            match self {
                Protocol::V1 => out.extend_from_slice(&tag.0),
                Protocol::V2 | Protocol::V3 | Protocol::V4 | Protocol::V5 | Protocol::V6 | Protocol::V7 => {
                    let index = all.binary_search(tag).expect("the entry's tags are the union");
                    varint::put(out, index as u64);
                }
            }
        }
    }
}

/// Why bytes are not a well-formed entry, or not signed by its sender.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// The bytes do not start with [`MAGIC`]: not a logkv entry.
    #[error("not a logkv entry: magic {found:02x?}, expected \"LKVE\"")]
    BadMagic {
        /// The first four bytes.
        found: [u8; 4],
    },
    /// Another protocol version. A newer one means this node must be
    /// upgraded ([`EnvelopeError::needs_upgrade`]); it is never guessed at.
    #[error("entry protocol version {found} is not supported (this node understands {supported}){}",
        if *found > 0 { "; upgrade logkv" } else { "" })]
    UnsupportedVersion {
        /// The version in the entry.
        found: u16,
        /// The version this code understands.
        supported: u16,
    },
    /// The bytes end inside a field.
    #[error("entry truncated: {what} at byte {offset} runs past the end")]
    Truncated {
        /// The field that does not fit.
        what: &'static str,
        /// Where it starts.
        offset: usize,
    },
    /// Bytes follow the signature.
    #[error("{count} bytes after the entry's signature")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// More transactions than a version can number.
    #[error("entry holds {count} transactions, at most {limit} allowed")]
    TooManyTxs {
        /// The count (declared or given).
        count: usize,
        /// [`MAX_TXS_PER_ENTRY`].
        limit: usize,
    },
    /// A tag list longer than [`MAX_TAGS`].
    #[error("tag list of {count} stream IDs, at most {limit} allowed")]
    TooManyTags {
        /// The count (declared or given).
        count: usize,
        /// [`MAX_TAGS`].
        limit: usize,
    },
    /// A tag list (or, in protocol 2, a transaction's list of tag indexes)
    /// not in strictly ascending order (so duplicates too).
    #[error("tags of {} are not sorted and unique", match tx { Some(i) => format!("transaction {i}"), None => "the entry".to_string() })]
    UnsortedTags {
        /// The transaction, or `None` for the entry's own list.
        tx: Option<usize>,
    },
    /// A protocol 2 transaction names a tag the entry does not list.
    #[error("transaction {tx} names tag {index} of an entry with {count} tags")]
    TagIndexOutOfRange {
        /// The transaction.
        tx: usize,
        /// The index it gives.
        index: u64,
        /// The entry's tag count.
        count: usize,
    },
    /// A protocol 2 count or length that is not a minimal varint of at most
    /// 64 bits (a truncated one is [`EnvelopeError::Truncated`]).
    #[error("{what} at byte {offset}: varint {source}")]
    BadVarint {
        /// The field.
        what: &'static str,
        /// Where it starts.
        offset: usize,
        /// What is wrong with it.
        source: VarintError,
    },
    /// The entry's tags are not exactly the union of its transactions' tags;
    /// nodes skip entries by these tags, so they must not lie.
    #[error("entry tags are not the union of its transactions' tags")]
    TagsMismatch,
    /// A body longer than its `u32` length field can say (encoding only).
    #[error("transaction {tx} body is {len} bytes, longer than a u32 length allows")]
    BodyTooLarge {
        /// The transaction.
        tx: usize,
        /// The body length.
        len: usize,
    },
    /// Asked to sign an entry for another sender (encoding only).
    #[error("entry sender {sender} is not the signer {signer}")]
    SenderMismatch {
        /// The entry's sender.
        sender: Address,
        /// The signer's account.
        signer: Address,
    },
    /// The signature is malformed or was not made by the sender.
    #[error("bad signature: {0}")]
    BadSignature(#[source] SignatureError),
}

impl EnvelopeError {
    /// Whether the entry is from a newer protocol version: the node must stop
    /// at it and be upgraded rather than skip it, or nodes would diverge.
    /// Every version this build does not know but 0 is newer (levels are
    /// added by builds in parallel, so one may know 6 and not 5).
    pub fn needs_upgrade(&self) -> bool {
        matches!(self, EnvelopeError::UnsupportedVersion { found, .. } if *found > 0)
    }
}

/// An entry to sign: one sender's transactions, already encoded
/// ([`TxPart`]) or written into the entry as it is encoded (any [`TxWrite`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<T = TxPart> {
    /// The account that signs the entry.
    pub sender: Address,
    /// Anti-replay nonce chosen by the sender (see [`crate::nonce`]).
    pub nonce: u64,
    /// The transactions, in order; the index of each is part of its version.
    pub txs: Vec<T>,
}

/// One transaction of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxPart {
    /// The codec byte ([`crate::codec::ZEROG`], [`crate::codec::NATIVE`], ...).
    pub codec: u8,
    /// The streams the transaction writes or controls. A set: encoding sorts
    /// it and drops duplicates (a codec 2 body names streams by their index
    /// in that sorted list: build it with `codec::native::compact_tx`).
    pub tags: Vec<StreamId>,
    /// The encoded body.
    pub body: Vec<u8>,
}

/// A transaction as the entry encoder writes it: codec, tags, the body's
/// length and then the body, written straight into the entry's bytes — so a
/// planned body (`codec::native::CompactTx`) need not be encoded apart and
/// copied in.
pub trait TxWrite {
    /// The codec byte.
    fn codec(&self) -> u8;
    /// The streams the transaction writes or controls (a set, as [`TxPart::tags`]).
    fn tags(&self) -> &[StreamId];
    /// How many bytes [`TxWrite::write_body`] writes.
    fn body_len(&self) -> usize;
    /// Appends the body's bytes to `out`.
    fn write_body(&self, out: &mut Vec<u8>);
}

impl TxWrite for TxPart {
    fn codec(&self) -> u8 {
        self.codec
    }

    fn tags(&self) -> &[StreamId] {
        &self.tags
    }

    fn body_len(&self) -> usize {
        self.body.len()
    }

    fn write_body(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.body);
    }
}

impl<T: TxWrite> Entry<T> {
    /// The entry's bytes in protocol 1, signed by `signer` (who must be the
    /// sender): what external clients write.
    pub fn encode_signed(&self, signer: &Signer) -> Result<Vec<u8>, EnvelopeError> {
        self.encode_signed_as(Protocol::V1, signer)
    }

    /// The entry's bytes in `protocol`, signed by `signer` (who must be the sender).
    pub fn encode_signed_as(&self, protocol: Protocol, signer: &Signer) -> Result<Vec<u8>, EnvelopeError> {
        if signer.address() != self.sender {
            return Err(EnvelopeError::SenderMismatch { sender: self.sender, signer: signer.address() });
        }
        let mut out = self.encode_unsigned(protocol)?;
        let signature = signer.sign_digest(&keccak256(&out));
        out.extend_from_slice(&signature);
        Ok(out)
    }

    /// Every byte of the entry in `protocol` before the signature: what the
    /// sender signs (the caller appends the signature).
    pub fn encode_unsigned(&self, protocol: Protocol) -> Result<Vec<u8>, EnvelopeError> {
        if self.txs.len() > MAX_TXS_PER_ENTRY {
            return Err(EnvelopeError::TooManyTxs { count: self.txs.len(), limit: MAX_TXS_PER_ENTRY });
        }
        let tx_tags: Vec<BTreeSet<StreamId>> =
            self.txs.iter().map(|tx| tx.tags().iter().copied().collect()).collect();
        let entry_tags: Vec<StreamId> =
            tx_tags.iter().flatten().copied().collect::<BTreeSet<_>>().into_iter().collect();
        for count in tx_tags.iter().map(BTreeSet::len).chain([entry_tags.len()]) {
            if count > MAX_TAGS {
                return Err(EnvelopeError::TooManyTags { count, limit: MAX_TAGS });
            }
        }
        // At most: the fixed fields, every count and length as a u32 (a
        // varint of one is at most 5 bytes), and every tag written out.
        let tag_bytes = |n: usize| 5 + n * StreamId::LEN;
        let capacity = 4 + 2 + Address::LEN + 8 + tag_bytes(entry_tags.len()) + 5 + SIGNATURE_LEN;
        let capacity = capacity
            + self
                .txs
                .iter()
                .zip(&tx_tags)
                .map(|(tx, t)| 1 + tag_bytes(t.len()) + 5 + tx.body_len())
                .sum::<usize>();

        let mut out = Vec::with_capacity(capacity);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&protocol.version().to_be_bytes());
        out.extend_from_slice(&self.sender.0);
        out.extend_from_slice(&self.nonce.to_be_bytes());
        protocol.put_count(&mut out, entry_tags.len());
        entry_tags.iter().for_each(|t| out.extend_from_slice(&t.0));
        protocol.put_count(&mut out, self.txs.len());
        for (i, (tx, tags)) in self.txs.iter().zip(&tx_tags).enumerate() {
            out.push(tx.codec());
            protocol.put_tx_tags(&mut out, &entry_tags, tags);
            let len = tx.body_len();
            if u32::try_from(len).is_err() {
                return Err(EnvelopeError::BodyTooLarge { tx: i, len });
            }
            protocol.put_count(&mut out, len);
            let start = out.len();
            tx.write_body(&mut out);
            debug_assert_eq!(out.len() - start, len, "a body wrote other than its length");
        }
        Ok(out)
    }
}

/// A sorted, duplicate-free list of stream IDs inside an entry's bytes:
/// written out, or (a protocol 2 transaction's) picked from the entry's list
/// by ascending indexes.
#[derive(Debug, Clone, Copy)]
pub struct Tags<'a> {
    ids: &'a [[u8; 32]],
    /// The varint indexes into `ids` and how many there are; `None`: all of `ids`.
    picked: Option<(&'a [u8], usize)>,
}

impl<'a> Tags<'a> {
    /// How many stream IDs.
    pub fn len(&self) -> usize {
        self.picked.map_or(self.ids.len(), |(_, len)| len)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `stream` is among them (binary search: they are sorted).
    pub fn contains(&self, stream: &StreamId) -> bool {
        match self.ids.binary_search(&stream.0) {
            Ok(at) => self.picked.is_none() || self.indexes().any(|i| i == at),
            Err(_) => false,
        }
    }

    /// The stream IDs, ascending.
    pub fn iter(&self) -> TagsIter<'a> {
        TagsIter { ids: self.ids, indexes: self.picked.map(|(bytes, _)| bytes), left: self.len() }
    }

    /// The picked indexes into `ids` (none when nothing is picked).
    fn indexes(&self) -> impl Iterator<Item = usize> + 'a {
        let mut bytes = self.picked.map_or(&[][..], |(bytes, _)| bytes);
        std::iter::from_fn(move || {
            // Checked when the entry was parsed: minimal, in range.
            let (index, len) = varint::read(bytes).ok()?;
            bytes = &bytes[len..];
            Some(index as usize)
        })
    }
}

impl PartialEq for Tags<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Tags<'_> {}

/// The stream IDs of [`Tags`], ascending.
#[derive(Debug, Clone)]
pub struct TagsIter<'a> {
    ids: &'a [[u8; 32]],
    indexes: Option<&'a [u8]>,
    left: usize,
}

impl Iterator for TagsIter<'_> {
    type Item = StreamId;

    fn next(&mut self) -> Option<StreamId> {
        self.left = self.left.checked_sub(1)?;
        let id = match &mut self.indexes {
            None => {
                let (first, rest) = self.ids.split_first()?;
                self.ids = rest;
                first
            }
            Some(bytes) => {
                // Checked when the entry was parsed: minimal, in range.
                let (index, len) = varint::read(bytes).ok()?;
                *bytes = &bytes[len..];
                self.ids.get(usize::try_from(index).ok()?)?
            }
        };
        Some(StreamId(*id))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for TagsIter<'_> {}

/// One transaction of a parsed entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxView<'a> {
    /// The codec byte.
    pub codec: u8,
    /// The streams it writes or controls.
    pub tags: Tags<'a>,
    /// The body.
    pub body: &'a [u8],
    /// Where the body starts in the entry's bytes, so a value at offset `o`
    /// of the body is at `body_offset + o` in the entry.
    pub body_offset: usize,
}

/// A well-formed entry, borrowing its bytes. Parsing does not check the
/// signature: call [`EntryView::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryView<'a> {
    bytes: &'a [u8],
    protocol: Protocol,
    sender: Address,
    nonce: u64,
    tags: Tags<'a>,
    txs: Vec<TxView<'a>>,
    signature: &'a [u8; SIGNATURE_LEN],
}

impl<'a> EntryView<'a> {
    /// Parses an entry. Fails on anything but exactly one well-formed entry
    /// of a [`Protocol`] this code knows; never panics.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, EnvelopeError> {
        // The magic and version are spelled alike in every protocol.
        let mut r = Reader { bytes, pos: 0, protocol: Protocol::V1 };
        let magic = r.array::<4>("magic")?;
        if magic != MAGIC {
            return Err(EnvelopeError::BadMagic { found: magic });
        }
        let version = u16::from_be_bytes(r.array("protocol version")?);
        let protocol = Protocol::from_version(version)
            .ok_or(EnvelopeError::UnsupportedVersion { found: version, supported: PROTOCOL_VERSION })?;
        r.protocol = protocol;
        let sender = Address(r.array("sender")?);
        let nonce = u64::from_be_bytes(r.array("nonce")?);
        let tags = r.tag_list(None)?;
        let tx_count = r.count("transaction count")?;
        if tx_count > MAX_TXS_PER_ENTRY {
            return Err(EnvelopeError::TooManyTxs { count: tx_count, limit: MAX_TXS_PER_ENTRY });
        }
        let mut txs = Vec::new();
        let mut covered = vec![false; tags.ids.len()];
        for i in 0..tx_count {
            let codec = r.array::<1>("codec")?[0];
            let tx_tags = r.tx_tags(i, tags.ids, &mut covered)?;
            let body_len = r.count("body length")?;
            let body_offset = r.pos;
            let body = r.take(body_len, "body")?;
            txs.push(TxView { codec, tags: tx_tags, body, body_offset });
        }
        if covered.contains(&false) {
            return Err(EnvelopeError::TagsMismatch);
        }
        let signature = r.array_ref::<SIGNATURE_LEN>("signature")?;
        if r.pos != bytes.len() {
            return Err(EnvelopeError::TrailingBytes { count: bytes.len() - r.pos });
        }
        Ok(Self { bytes, protocol, sender, nonce, tags, txs, signature })
    }

    /// The entry format.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The entry format's `protocol_version` field.
    pub fn protocol_version(&self) -> u16 {
        self.protocol.version()
    }

    /// The account that claims to have signed the entry.
    pub fn sender(&self) -> Address {
        self.sender
    }

    /// The sender's anti-replay nonce.
    pub fn nonce(&self) -> u64 {
        self.nonce
    }

    /// The union of the transactions' tags: a node skips the entry without
    /// decoding anything when it watches none of them.
    pub fn tags(&self) -> Tags<'a> {
        self.tags
    }

    /// The transactions, in order.
    pub fn txs(&self) -> &[TxView<'a>] {
        &self.txs
    }

    /// All the entry's bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The 65-byte signature `r ‖ s ‖ v`.
    pub fn signature(&self) -> &'a [u8; SIGNATURE_LEN] {
        self.signature
    }

    /// keccak256 of every byte before the signature: the digest the sender
    /// signs as an EIP-191 personal message (ethers
    /// `signMessage(getBytes(digest))`).
    pub fn signing_digest(&self) -> [u8; 32] {
        keccak256(&self.bytes[..self.bytes.len() - SIGNATURE_LEN])
    }

    /// Checks that the sender signed exactly these bytes. Only `v` = 27 or 28
    /// (what ethers writes) is accepted here, not the equivalent 0 or 1, so a
    /// signed entry has exactly one valid encoding.
    pub fn verify(&self) -> Result<(), EnvelopeError> {
        let v = self.signature[SIGNATURE_LEN - 1];
        if v != 27 && v != 28 {
            return Err(EnvelopeError::BadSignature(SignatureError::InvalidRecoveryId { v }));
        }
        signing::verify(&self.signing_digest(), self.signature, self.sender)
            .map_err(EnvelopeError::BadSignature)
    }

    /// An owned copy, for re-encoding or inspection.
    pub fn to_entry(&self) -> Entry {
        Entry {
            sender: self.sender,
            nonce: self.nonce,
            txs: self
                .txs
                .iter()
                .map(|tx| TxPart { codec: tx.codec, tags: tx.tags.iter().collect(), body: tx.body.to_vec() })
                .collect(),
        }
    }
}

/// Reads fields front to back, naming the field that does not fit; counts
/// and tags as `protocol` spells them.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    protocol: Protocol,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize, what: &'static str) -> Result<&'a [u8], EnvelopeError> {
        if self.bytes.len() - self.pos < len {
            return Err(EnvelopeError::Truncated { what, offset: self.pos });
        }
        let out = &self.bytes[self.pos..self.pos + len];
        self.pos += len;
        Ok(out)
    }

    fn array_ref<const N: usize>(&mut self, what: &'static str) -> Result<&'a [u8; N], EnvelopeError> {
        let out = self.bytes[self.pos..]
            .first_chunk::<N>()
            .ok_or(EnvelopeError::Truncated { what, offset: self.pos })?;
        self.pos += N;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], EnvelopeError> {
        self.array_ref(what).copied()
    }

    fn varint(&mut self, what: &'static str) -> Result<u64, EnvelopeError> {
        let offset = self.pos;
        let (n, len) = varint::read(&self.bytes[offset..]).map_err(|source| match source {
            VarintError::Truncated => EnvelopeError::Truncated { what, offset },
            source => EnvelopeError::BadVarint { what, offset, source },
        })?;
        self.pos += len;
        Ok(n)
    }

    /// A count or length, as `usize` (saturating: every limit is smaller).
    fn count(&mut self, what: &'static str) -> Result<usize, EnvelopeError> {
        let n = match self.protocol {
            Protocol::V1 => u64::from(u32::from_be_bytes(self.array(what)?)),
            Protocol::V2 | Protocol::V3 | Protocol::V4 | Protocol::V5 | Protocol::V6 | Protocol::V7 => {
                self.varint(what)?
            }
        };
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// A count of tags, at most [`MAX_TAGS`].
    fn tag_count(&mut self) -> Result<usize, EnvelopeError> {
        let count = self.count("tag count")?;
        if count > MAX_TAGS {
            return Err(EnvelopeError::TooManyTags { count, limit: MAX_TAGS });
        }
        Ok(count)
    }

    /// A list of stream IDs written out, sorted and unique.
    fn tag_list(&mut self, tx: Option<usize>) -> Result<Tags<'a>, EnvelopeError> {
        let count = self.tag_count()?;
        let (ids, _) = self.take(count * StreamId::LEN, "tags")?.as_chunks::<32>();
        if ids.windows(2).any(|w| w[0] >= w[1]) {
            return Err(EnvelopeError::UnsortedTags { tx });
        }
        Ok(Tags { ids, picked: None })
    }

    /// Transaction `tx`'s tags, each of the entry's `all`, marking which of
    /// those it has in `covered`.
    fn tx_tags(
        &mut self,
        tx: usize,
        all: &'a [[u8; 32]],
        covered: &mut [bool],
    ) -> Result<Tags<'a>, EnvelopeError> {
        if self.protocol == Protocol::V1 {
            let tags = self.tag_list(Some(tx))?;
            for id in tags.ids {
                covered[all.binary_search(id).map_err(|_| EnvelopeError::TagsMismatch)?] = true;
            }
            return Ok(tags);
        }
        let count = self.tag_count()?;
        let start = self.pos;
        let mut next = 0;
        for _ in 0..count {
            let index = self.varint("tag index")?;
            let at = usize::try_from(index)
                .ok()
                .filter(|&i| i < all.len())
                .ok_or(EnvelopeError::TagIndexOutOfRange { tx, index, count: all.len() })?;
            if at < next {
                return Err(EnvelopeError::UnsortedTags { tx: Some(tx) });
            }
            covered[at] = true;
            next = at + 1;
        }
        Ok(Tags { ids: all, picked: Some((&self.bytes[start..self.pos], count)) })
    }
}
