//! Signed entries: the bytes one log record holds. An entry carries one
//! sender's transactions, each in its own codec, and one signature over all
//! of them. `docs/format.md` ("Signed entries") documents every byte.
//!
//! Entries are immutable and come from anyone who can append, so parsing
//! trusts nothing: every length is checked against the bytes present, every
//! count against a protocol limit, and the encoding is canonical (tags sorted
//! and unique, nothing after the signature), so one meaning has one encoding.
//! [`EntryView`] borrows the entry's bytes; the runtime indexes values by
//! their offset inside the entry.

use std::collections::BTreeSet;

use crate::signing::{self, keccak256, SignatureError, Signer, SIGNATURE_LEN};
use crate::types::{Address, StreamId, MAX_TXS_PER_ENTRY};

/// The first four bytes of every entry.
pub const MAGIC: [u8; 4] = *b"LKVE";
/// The entry format this code writes and understands.
pub const PROTOCOL_VERSION: u16 = 1;
/// Most tags an entry, or one of its transactions, may carry.
pub const MAX_TAGS: usize = 65_536;

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
        if found > supported { "; upgrade logkv" } else { "" })]
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
    /// A tag list not in strictly ascending order (so duplicates too).
    #[error("tags of {} are not sorted and unique", match tx { Some(i) => format!("transaction {i}"), None => "the entry".to_string() })]
    UnsortedTags {
        /// The transaction, or `None` for the entry's own list.
        tx: Option<usize>,
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
    pub fn needs_upgrade(&self) -> bool {
        matches!(self, EnvelopeError::UnsupportedVersion { found, supported } if found > supported)
    }
}

/// An entry to sign: one sender's transactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The account that signs the entry.
    pub sender: Address,
    /// Anti-replay nonce chosen by the sender (see [`crate::nonce`]).
    pub nonce: u64,
    /// The transactions, in order; the index of each is part of its version.
    pub txs: Vec<TxPart>,
}

/// One transaction of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxPart {
    /// The codec byte ([`crate::codec::ZEROG`], [`crate::codec::NATIVE`], ...).
    pub codec: u8,
    /// The streams the transaction writes or controls. A set: encoding sorts
    /// it and drops duplicates.
    pub tags: Vec<StreamId>,
    /// The encoded body.
    pub body: Vec<u8>,
}

impl Entry {
    /// The entry's bytes, signed by `signer` (who must be the sender).
    pub fn encode_signed(&self, signer: &Signer) -> Result<Vec<u8>, EnvelopeError> {
        if signer.address() != self.sender {
            return Err(EnvelopeError::SenderMismatch { sender: self.sender, signer: signer.address() });
        }
        if self.txs.len() > MAX_TXS_PER_ENTRY {
            return Err(EnvelopeError::TooManyTxs { count: self.txs.len(), limit: MAX_TXS_PER_ENTRY });
        }
        let tx_tags: Vec<BTreeSet<StreamId>> =
            self.txs.iter().map(|tx| tx.tags.iter().copied().collect()).collect();
        let entry_tags: BTreeSet<StreamId> = tx_tags.iter().flatten().copied().collect();
        let len = 4
            + 2
            + Address::LEN
            + 8
            + tag_list_len(entry_tags.len())
            + 4
            + self
                .txs
                .iter()
                .zip(&tx_tags)
                .map(|(tx, tags)| 1 + tag_list_len(tags.len()) + 4 + tx.body.len())
                .sum::<usize>()
            + SIGNATURE_LEN;

        let mut out = Vec::with_capacity(len);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
        out.extend_from_slice(&self.sender.0);
        out.extend_from_slice(&self.nonce.to_be_bytes());
        put_tags(&mut out, &entry_tags)?;
        put_u32(&mut out, self.txs.len());
        for (i, (tx, tags)) in self.txs.iter().zip(&tx_tags).enumerate() {
            out.push(tx.codec);
            put_tags(&mut out, tags)?;
            let body_len = u32::try_from(tx.body.len())
                .map_err(|_| EnvelopeError::BodyTooLarge { tx: i, len: tx.body.len() })?;
            out.extend_from_slice(&body_len.to_be_bytes());
            out.extend_from_slice(&tx.body);
        }
        let signature = signer.sign_digest(&keccak256(&out));
        out.extend_from_slice(&signature);
        Ok(out)
    }
}

fn tag_list_len(count: usize) -> usize {
    4 + count * StreamId::LEN
}

/// Writes a count that the caller has checked fits a `u32`.
fn put_u32(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u32).to_be_bytes());
}

fn put_tags(out: &mut Vec<u8>, tags: &BTreeSet<StreamId>) -> Result<(), EnvelopeError> {
    if tags.len() > MAX_TAGS {
        return Err(EnvelopeError::TooManyTags { count: tags.len(), limit: MAX_TAGS });
    }
    put_u32(out, tags.len());
    tags.iter().for_each(|t| out.extend_from_slice(&t.0));
    Ok(())
}

/// A sorted, duplicate-free list of stream IDs inside an entry's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tags<'a>(&'a [[u8; 32]]);

impl<'a> Tags<'a> {
    /// How many stream IDs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `stream` is among them (binary search: they are sorted).
    pub fn contains(&self, stream: &StreamId) -> bool {
        self.0.binary_search(&stream.0).is_ok()
    }

    /// The stream IDs, ascending.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = StreamId> + 'a {
        self.0.iter().map(|id| StreamId(*id))
    }
}

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
    protocol_version: u16,
    sender: Address,
    nonce: u64,
    tags: Tags<'a>,
    txs: Vec<TxView<'a>>,
    signature: &'a [u8; SIGNATURE_LEN],
}

impl<'a> EntryView<'a> {
    /// Parses an entry. Fails on anything but exactly one well-formed entry
    /// of [`PROTOCOL_VERSION`]; never panics.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, EnvelopeError> {
        let mut r = Reader { bytes, pos: 0 };
        let magic = r.array::<4>("magic")?;
        if magic != MAGIC {
            return Err(EnvelopeError::BadMagic { found: magic });
        }
        let version = u16::from_be_bytes(r.array("protocol version")?);
        if version != PROTOCOL_VERSION {
            return Err(EnvelopeError::UnsupportedVersion { found: version, supported: PROTOCOL_VERSION });
        }
        let sender = Address(r.array("sender")?);
        let nonce = u64::from_be_bytes(r.array("nonce")?);
        let tags = r.tags(None)?;
        let tx_count = r.u32("transaction count")?;
        if tx_count > MAX_TXS_PER_ENTRY {
            return Err(EnvelopeError::TooManyTxs { count: tx_count, limit: MAX_TXS_PER_ENTRY });
        }
        let mut txs = Vec::new();
        let mut covered = vec![false; tags.len()];
        for i in 0..tx_count {
            let codec = r.array::<1>("codec")?[0];
            let tx_tags = r.tags(Some(i))?;
            for id in tx_tags.0 {
                let at = tags.0.binary_search(id).map_err(|_| EnvelopeError::TagsMismatch)?;
                covered[at] = true;
            }
            let body_len = r.u32("body length")?;
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
        Ok(Self { bytes, protocol_version: version, sender, nonce, tags, txs, signature })
    }

    /// The entry format version.
    pub fn protocol_version(&self) -> u16 {
        self.protocol_version
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

/// Reads fields front to back, naming the field that does not fit.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
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

    /// A `u32` count or length, as `usize`.
    fn u32(&mut self, what: &'static str) -> Result<usize, EnvelopeError> {
        Ok(u32::from_be_bytes(self.array(what)?) as usize)
    }

    fn tags(&mut self, tx: Option<usize>) -> Result<Tags<'a>, EnvelopeError> {
        let count = self.u32("tag count")?;
        if count > MAX_TAGS {
            return Err(EnvelopeError::TooManyTags { count, limit: MAX_TAGS });
        }
        let (ids, _) = self.take(count * StreamId::LEN, "tags")?.as_chunks::<32>();
        if ids.windows(2).any(|w| w[0] >= w[1]) {
            return Err(EnvelopeError::UnsortedTags { tx });
        }
        Ok(Tags(ids))
    }
}
