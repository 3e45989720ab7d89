//! How a body spells its fields. Codecs 0 and 1 use 0G's fixed widths
//! (big-endian counts, 32-byte stream IDs, `u24` key lengths); codec 2 spells
//! the same fields compactly (varint counts and lengths, streams as indexes
//! into the transaction's tags). The parsers and encoders of reads, writes
//! and controls are written once, over [`Cursor`] and [`Out`]; only the
//! field readers and writers here know the spelling.

use super::{ParseError, ValueRef, MAX_KEY_BYTES, MAX_LIST_LEN, MAX_VALUE_BYTES};
use crate::types::{Address, StreamId};
use crate::varint;

/// A body's spelling of its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout<'t> {
    /// 0G's: big-endian fixed-width integers, streams written out.
    Fixed,
    /// Minimal varints; the version as `version + 1` (mod 2^64), so "no
    /// check" (`u64::MAX`) takes one byte; a stream as its index `i` in
    /// these tags (the transaction's, ascending and unique), or as index
    /// `tags.len()` followed by the 32-byte ID of a stream not among them.
    Compact(&'t [StreamId]),
}

/// Reads fields from a body, never past its end. `what` names the field in
/// error details, together with its offset.
pub(crate) struct Cursor<'a, 't> {
    body: &'a [u8],
    pos: usize,
    layout: Layout<'t>,
}

impl<'a, 't> Cursor<'a, 't> {
    /// At the start of `body`, spelled as `layout` says.
    pub(crate) fn new(body: &'a [u8], layout: Layout<'t>) -> Self {
        Self { body, pos: 0, layout }
    }

    /// Offset of the next byte.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// The next `n` bytes.
    pub(crate) fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], ParseError> {
        let left = self.body.len() - self.pos;
        if n > left {
            let at = self.pos;
            return Err(ParseError::invalid(format!(
                "truncated: {what} at offset {at} needs {n} bytes, {left} left"
            )));
        }
        let bytes = &self.body[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], ParseError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    /// A varint, whatever the layout.
    fn varint(&mut self, what: &str) -> Result<u64, ParseError> {
        let at = self.pos;
        let (n, len) = varint::read(&self.body[at..])
            .map_err(|e| ParseError::invalid(format!("{what} at offset {at}: varint {e}")))?;
        self.pos += len;
        Ok(n)
    }

    /// A `u8`.
    pub(crate) fn u8(&mut self, what: &str) -> Result<u8, ParseError> {
        Ok(self.array::<1>(what)?[0])
    }

    /// A big-endian `u64`, whatever the layout.
    pub(crate) fn u64(&mut self, what: &str) -> Result<u64, ParseError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    /// The body's version.
    pub(crate) fn version(&mut self) -> Result<u64, ParseError> {
        match self.layout {
            Layout::Fixed => self.u64("version"),
            Layout::Compact(_) => Ok(self.varint("version")?.wrapping_sub(1)),
        }
    }

    /// A stream.
    pub(crate) fn stream(&mut self, what: &str) -> Result<StreamId, ParseError> {
        let Layout::Compact(tags) = self.layout else { return Ok(StreamId(self.array(what)?)) };
        let at = self.pos;
        let index = self.varint(what)?;
        if let Some(tag) = usize::try_from(index).ok().and_then(|i| tags.get(i)) {
            return Ok(*tag);
        }
        if index != tags.len() as u64 {
            let count = tags.len();
            return Err(ParseError::invalid(format!(
                "{what} at offset {at}: tag index {index} with {count} tags"
            )));
        }
        let stream = StreamId(self.array(what)?);
        if tags.binary_search(&stream).is_ok() {
            return Err(ParseError::invalid(format!("{what} at offset {at}: a tag written out in full")));
        }
        Ok(stream)
    }

    /// A 20-byte account.
    pub(crate) fn address(&mut self, what: &str) -> Result<Address, ParseError> {
        Ok(Address(self.array(what)?))
    }

    /// A list length: more than [`MAX_LIST_LEN`] is `ListTooLong`.
    pub(crate) fn count(&mut self, what: &str) -> Result<usize, ParseError> {
        let count = match self.layout {
            Layout::Fixed => u64::from(u32::from_be_bytes(self.array(what)?)),
            Layout::Compact(_) => self.varint(what)?,
        };
        if count > MAX_LIST_LEN as u64 {
            return Err(ParseError::ListTooLong);
        }
        Ok(count as usize)
    }

    /// How much to reserve for `count` items of at least `fixed` bytes each
    /// in the fixed layout, `compact` in the compact one: never more than the
    /// rest of the body could hold, whatever a count says.
    pub(crate) fn capacity(&self, count: usize, fixed: usize, compact: usize) -> usize {
        let item_bytes = match self.layout {
            Layout::Fixed => fixed,
            Layout::Compact(_) => compact,
        };
        count.min((self.body.len() - self.pos) / item_bytes)
    }

    /// A key's length (`u24`, or a varint), then the key: 1..=[`MAX_KEY_BYTES`] bytes.
    pub(crate) fn key(&mut self, what: &str) -> Result<Vec<u8>, ParseError> {
        let at = self.pos;
        let len = match self.layout {
            Layout::Fixed => {
                let [a, b, c] = self.array(what)?;
                u64::from(u32::from_be_bytes([0, a, b, c]))
            }
            Layout::Compact(_) => self.varint(what)?,
        };
        if len == 0 || len > MAX_KEY_BYTES as u64 {
            return Err(ParseError::invalid(format!(
                "{what} at offset {at} has length {len}, not 1..={MAX_KEY_BYTES}"
            )));
        }
        Ok(self.take(len as usize, what)?.to_vec())
    }

    /// A value length, at most [`MAX_VALUE_BYTES`]: `width` bytes (4 or 8)
    /// in the fixed layout, a varint in the compact one.
    pub(crate) fn value_len(&mut self, width: usize, what: &str) -> Result<usize, ParseError> {
        let at = self.pos;
        let len = match self.layout {
            Layout::Fixed => {
                let mut be = [0u8; 8];
                be[8 - width..].copy_from_slice(self.take(width, what)?);
                u64::from_be_bytes(be)
            }
            Layout::Compact(_) => self.varint(what)?,
        };
        if len > MAX_VALUE_BYTES as u64 {
            return Err(ParseError::invalid(format!(
                "{what} at offset {at} is {len}, more than {MAX_VALUE_BYTES}"
            )));
        }
        Ok(len as usize)
    }

    /// The next `len` bytes, by reference.
    pub(crate) fn value(&mut self, len: usize, what: &str) -> Result<ValueRef, ParseError> {
        let offset = self.pos;
        self.take(len, what)?;
        Ok(ValueRef { offset, len })
    }

    /// Fails if bytes are left after the last field.
    pub(crate) fn finish(&self) -> Result<(), ParseError> {
        match self.body.len() - self.pos {
            0 => Ok(()),
            n => Err(ParseError::invalid(format!("{n} trailing bytes at offset {}", self.pos))),
        }
    }
}

/// Writes fields as a [`Layout`] spells them. Lengths too large for their
/// field keep only its low bytes: run the body's `check` first.
pub(crate) struct Out<'t> {
    /// The bytes so far.
    pub(crate) bytes: Vec<u8>,
    layout: Layout<'t>,
}

impl<'t> Out<'t> {
    /// An empty body with room for `capacity` bytes.
    pub(crate) fn new(layout: Layout<'t>, capacity: usize) -> Self {
        Self { bytes: Vec::with_capacity(capacity), layout }
    }

    /// Raw bytes, whatever the layout.
    pub(crate) fn raw(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
    }

    fn varint(&mut self, n: u64) {
        varint::put(&mut self.bytes, n);
    }

    /// The body's version.
    pub(crate) fn version(&mut self, version: u64) {
        match self.layout {
            Layout::Fixed => self.raw(&version.to_be_bytes()),
            Layout::Compact(_) => self.varint(version.wrapping_add(1)),
        }
    }

    /// A stream.
    pub(crate) fn stream(&mut self, stream: &StreamId) {
        let Layout::Compact(tags) = self.layout else { return self.raw(&stream.0) };
        match tags.binary_search(stream) {
            Ok(i) => self.varint(i as u64),
            Err(_) => {
                self.varint(tags.len() as u64);
                self.raw(&stream.0);
            }
        }
    }

    /// A list length.
    pub(crate) fn count(&mut self, count: usize) {
        match self.layout {
            Layout::Fixed => self.raw(&(count as u32).to_be_bytes()),
            Layout::Compact(_) => self.varint(count as u64),
        }
    }

    /// A key's length, then the key.
    pub(crate) fn key(&mut self, key: &[u8]) {
        match self.layout {
            Layout::Fixed => self.raw(&(key.len() as u32).to_be_bytes()[1..]),
            Layout::Compact(_) => self.varint(key.len() as u64),
        }
        self.raw(key);
    }

    /// A value length: `width` bytes (4 or 8) in the fixed layout.
    pub(crate) fn value_len(&mut self, len: usize, width: usize) {
        match self.layout {
            Layout::Fixed => self.raw(&(len as u64).to_be_bytes()[8 - width..]),
            Layout::Compact(_) => self.varint(len as u64),
        }
    }
}
