//! Incremental request parser: multibulk arrays of bulk strings (what client
//! libraries send) and inline commands (what `redis-cli` and telnet send).
//!
//! [`parse`] looks at the front of a connection's input buffer and returns
//! either one whole request and the number of bytes it used, `Ok(None)` when
//! more bytes are needed, or a [`ProtocolError`] after which the connection
//! must be answered with the error and closed (as Redis does). Every length
//! read from a header is checked against [`Limits`] before any body is
//! waited for, so a peer cannot make the server buffer more than the limits.

use std::ops::Range;

use bytes::{Bytes, BytesMut};

use super::{inline, number::parse_i64};

/// Default largest bulk string: a 1 MiB value plus 64 KiB for the key and
/// headers. Redis's own default (`proto-max-bulk-len`) is 512 MiB.
pub const DEFAULT_MAX_BULK_BYTES: usize = 1024 * 1024 + 64 * 1024;
/// Default largest number of arguments in one request (Redis's old limit).
pub const DEFAULT_MAX_ARGS: usize = 1024 * 1024;
/// Default longest inline request and longest header line (Redis's
/// `PROTO_INLINE_MAX_SIZE`).
pub const DEFAULT_MAX_INLINE_BYTES: usize = 64 * 1024;

/// Limits on what one request may hold, checked before buffering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest bulk string (one argument) in bytes.
    pub max_bulk_bytes: usize,
    /// Largest number of arguments in one multibulk request.
    pub max_args: usize,
    /// Longest inline request line, and longest `*`/`$` header line, in bytes.
    pub max_inline_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_bytes: DEFAULT_MAX_BULK_BYTES,
            max_args: DEFAULT_MAX_ARGS,
            max_inline_bytes: DEFAULT_MAX_INLINE_BYTES,
        }
    }
}

/// One client request: the command name and its arguments, as raw bytes.
/// An empty request (`*0\r\n`, `*-1\r\n` or a blank inline line) is valid
/// and is skipped by the server without a reply, as Redis does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `args[0]` is the command name. A multibulk request's arguments are
    /// slices of the connection's read buffer, not copies.
    pub args: Vec<Bytes>,
}

/// A malformed request. Messages are Redis's, so clients see the same text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The `*` header is not an integer.
    #[error("ERR Protocol error: invalid multibulk length")]
    InvalidMultibulkLength,
    /// The `*` header asks for more arguments than [`Limits::max_args`].
    #[error("ERR Protocol error: invalid multibulk length")]
    TooManyArgs { limit: usize, got: u64 },
    /// A `$` header is not a non-negative integer.
    #[error("ERR Protocol error: invalid bulk length")]
    InvalidBulkLength,
    /// A `$` header asks for more bytes than [`Limits::max_bulk_bytes`].
    #[error("ERR Protocol error: invalid bulk length")]
    BulkTooBig { limit: usize, got: u64 },
    /// An element of a request array is not a bulk string.
    #[error("ERR Protocol error: expected '$', got '{}'", char::from(*.got))]
    ExpectedBulk { got: u8 },
    /// A bulk string's body is not followed by `\r\n`.
    #[error("ERR Protocol error: expected '\\r\\n' after bulk string")]
    BulkNotTerminated,
    /// A `*` header line longer than [`Limits::max_inline_bytes`].
    #[error("ERR Protocol error: too big mbulk count string")]
    MultibulkHeaderTooBig { limit: usize },
    /// A `$` header line longer than [`Limits::max_inline_bytes`].
    #[error("ERR Protocol error: too big bulk count string")]
    BulkHeaderTooBig { limit: usize },
    /// An inline request longer than [`Limits::max_inline_bytes`].
    #[error("ERR Protocol error: too big inline request")]
    InlineTooBig { limit: usize },
    /// An inline request with an unclosed quote, or a closing quote not
    /// followed by a space.
    #[error("ERR Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
}

/// Parses one request from the front of `buf` with the given limits.
/// Returns the request and how many bytes of `buf` it used, or `Ok(None)`
/// when `buf` holds only part of a request. Stateless: a partial request is
/// read again from its start on the next call; a connection should use a
/// [`Parser`], which resumes where it stopped.
pub fn parse(buf: &[u8], limits: &Limits) -> Result<Option<(Request, usize)>, ProtocolError> {
    Parser::new(*limits).parse(buf)
}

/// A connection's request parser. It remembers the arguments of a partly
/// received multibulk request, so a large request arriving in many reads is
/// examined once, not once per read.
#[derive(Debug, Clone)]
pub struct Parser {
    limits: Limits,
    partial: Option<Partial>,
}

/// A multibulk request whose header and first arguments have been parsed.
#[derive(Debug, Clone)]
struct Partial {
    remaining: u64,
    /// Where each argument parsed so far lies in the request's bytes.
    args: Vec<Range<usize>>,
    used: usize,
}

/// A whole request as found in a buffer, before its arguments are taken.
enum Frame {
    /// Arguments as ranges of the request's bytes.
    Multibulk(Vec<Range<usize>>),
    /// An inline request's arguments, unquoted (so not slices of the input).
    Inline(Vec<Vec<u8>>),
}

impl Frame {
    /// The request, its arguments taken from `bytes`, the request's own bytes.
    fn into_request(self, bytes: &Bytes) -> Request {
        let args = match self {
            Frame::Multibulk(ranges) => ranges.into_iter().map(|range| bytes.slice(range)).collect(),
            Frame::Inline(args) => args.into_iter().map(Bytes::from).collect(),
        };
        Request { args }
    }
}

impl Parser {
    /// A parser with the given limits and nothing parsed yet.
    pub fn new(limits: Limits) -> Parser {
        Parser { limits, partial: None }
    }

    /// Takes one whole request off the front of a connection's read buffer:
    /// its arguments become slices of the bytes taken, so a value is not
    /// copied out of the buffer. `Ok(None)` takes nothing: call again with
    /// more bytes after the ones there. After an error the connection must
    /// be closed.
    pub fn take(&mut self, input: &mut BytesMut) -> Result<Option<Request>, ProtocolError> {
        let Some((frame, used)) = self.frame(input)? else {
            return Ok(None);
        };
        Ok(Some(frame.into_request(&input.split_to(used).freeze())))
    }

    /// Parses one request from the front of `buf`, like [`parse`], copying
    /// its arguments. After `Ok(None)`, call again with the same bytes at the
    /// front of `buf` and more after them (the caller consumes bytes only
    /// when a request is returned). After an error the connection must be
    /// closed.
    pub fn parse(&mut self, buf: &[u8]) -> Result<Option<(Request, usize)>, ProtocolError> {
        let Some((frame, used)) = self.frame(buf)? else {
            return Ok(None);
        };
        Ok(Some((frame.into_request(&Bytes::copy_from_slice(&buf[..used])), used)))
    }

    /// The whole request at the front of `buf` and its length in bytes.
    fn frame(&mut self, buf: &[u8]) -> Result<Option<(Frame, usize)>, ProtocolError> {
        let mut partial = match self.partial.take() {
            Some(partial) => partial,
            None => match buf.first() {
                None => return Ok(None),
                Some(b'*') => match multibulk_header(buf, &self.limits)? {
                    None => return Ok(None),
                    Some(partial) => partial,
                },
                Some(_) => return parse_inline(buf, &self.limits),
            },
        };
        while partial.remaining > 0 {
            let parsed = match buf.get(partial.used..) {
                Some(rest) => bulk(rest, &self.limits)?,
                None => None,
            };
            let Some((arg, used)) = parsed else {
                self.partial = Some(partial);
                return Ok(None);
            };
            partial.args.push(partial.used + arg.start..partial.used + arg.end);
            partial.used += used;
            partial.remaining -= 1;
        }
        Ok(Some((Frame::Multibulk(partial.args), partial.used)))
    }
}

fn parse_inline(buf: &[u8], limits: &Limits) -> Result<Option<(Frame, usize)>, ProtocolError> {
    let too_big = ProtocolError::InlineTooBig { limit: limits.max_inline_bytes };
    let Some(newline) = buf.iter().position(|&b| b == b'\n') else {
        return if buf.len() > limits.max_inline_bytes { Err(too_big) } else { Ok(None) };
    };
    if newline > limits.max_inline_bytes {
        return Err(too_big);
    }
    let mut line = &buf[..newline];
    if let Some(stripped) = line.strip_suffix(b"\r") {
        line = stripped;
    }
    let args = inline::split_args(line).ok_or(ProtocolError::UnbalancedQuotes)?;
    Ok(Some((Frame::Inline(args), newline + 1)))
}

/// Parses a `*` header into an empty [`Partial`] expecting its arguments.
fn multibulk_header(buf: &[u8], limits: &Limits) -> Result<Option<Partial>, ProtocolError> {
    let header_too_big = ProtocolError::MultibulkHeaderTooBig { limit: limits.max_inline_bytes };
    let Some((count, used)) = header_line(buf, limits.max_inline_bytes, header_too_big)? else {
        return Ok(None);
    };
    let count = parse_i64(count).ok_or(ProtocolError::InvalidMultibulkLength)?;
    // `*0` and `*-1` are empty requests: a Partial with nothing remaining.
    let count = u64::try_from(count).unwrap_or(0);
    if count > limits.max_args as u64 {
        return Err(ProtocolError::TooManyArgs { limit: limits.max_args, got: count });
    }
    // Reserve only what the bytes already received can justify (each
    // argument takes at least 6 bytes: `$0\r\n\r\n`), not what a header asks.
    let reserve = usize::try_from(count).unwrap_or(usize::MAX).min(buf.len() / 6 + 1);
    Ok(Some(Partial { remaining: count, args: Vec::with_capacity(reserve), used }))
}

/// Parses one `$` bulk string at the front of `buf`: where its bytes lie in
/// `buf` and the length of header, body and `\r\n`.
fn bulk(buf: &[u8], limits: &Limits) -> Result<Option<(Range<usize>, usize)>, ProtocolError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    if first != b'$' {
        return Err(ProtocolError::ExpectedBulk { got: first });
    }
    let header_too_big = ProtocolError::BulkHeaderTooBig { limit: limits.max_inline_bytes };
    let Some((len, header)) = header_line(buf, limits.max_inline_bytes, header_too_big)? else {
        return Ok(None);
    };
    let len =
        parse_i64(len).and_then(|len| u64::try_from(len).ok()).ok_or(ProtocolError::InvalidBulkLength)?;
    if len > limits.max_bulk_bytes as u64 {
        return Err(ProtocolError::BulkTooBig { limit: limits.max_bulk_bytes, got: len });
    }
    // Cannot truncate: len <= max_bulk_bytes, a usize.
    let len = len as usize;
    let body = &buf[header..];
    if body.len() < len.saturating_add(2) {
        return Ok(None);
    }
    if &body[len..len + 2] != b"\r\n" {
        return Err(ProtocolError::BulkNotTerminated);
    }
    Ok(Some((header..header + len, header + len + 2)))
}

/// Finds the `\r\n`-terminated header line at the front of `buf` (which
/// starts with its type byte). Returns the digits after the type byte and the
/// length of the whole line, `None` if the line is not complete yet, or
/// `too_big` if the line is longer than `max_bytes`.
fn header_line(
    buf: &[u8],
    max_bytes: usize,
    too_big: ProtocolError,
) -> Result<Option<(&[u8], usize)>, ProtocolError> {
    let searched = &buf[..buf.len().min(max_bytes.saturating_add(2))];
    match searched.windows(2).position(|w| w == b"\r\n") {
        Some(end) if end <= max_bytes => Ok(Some((&buf[1..end], end + 2))),
        Some(_) => Err(too_big),
        None if buf.len() > max_bytes => Err(too_big),
        None => Ok(None),
    }
}
