//! Replies and their encoding, byte for byte as Redis writes them in RESP2
//! and RESP3. RESP3-only types fall back to their RESP2 forms as Redis does:
//! a map becomes a flat array, a set an array, a double a bulk string, a
//! boolean the integer 1 or 0, and nulls `$-1` / `*-1`.

/// The protocol a connection speaks, chosen with `HELLO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// RESP2, the default of every new connection.
    #[default]
    Resp2,
    /// RESP3.
    Resp3,
}

/// One reply value.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+OK`: a short status text. CR and LF are written as spaces.
    Simple(String),
    /// `-ERR ...`: the full error text, starting with its code (`ERR`,
    /// `WRONGTYPE`, ...). CR and LF are written as spaces.
    Error(String),
    /// `:42`.
    Integer(i64),
    /// `$3\r\nfoo`: binary-safe bytes.
    Bulk(Vec<u8>),
    /// A missing value: `$-1` in RESP2, `_` in RESP3.
    Null,
    /// `*2 ...`.
    Array(Vec<Reply>),
    /// A missing array: `*-1` in RESP2, `_` in RESP3.
    NullArray,
    /// `%1 ...` in RESP3: key-value pairs in order.
    Map(Vec<(Reply, Reply)>),
    /// `~2 ...` in RESP3.
    Set(Vec<Reply>),
    /// `,3.14` in RESP3.
    Double(f64),
    /// `#t` / `#f` in RESP3.
    Boolean(bool),
    /// Text for humans (`INFO`): `=N\r\ntxt:...` in RESP3, a bulk string
    /// in RESP2.
    Verbatim(String),
}

impl Reply {
    /// `+OK`.
    pub fn ok() -> Reply {
        Reply::Simple("OK".to_owned())
    }
}

/// Appends the encoding of `reply` in `protocol` to `out`.
pub fn encode(reply: &Reply, protocol: Protocol, out: &mut Vec<u8>) {
    let resp3 = protocol == Protocol::Resp3;
    match reply {
        Reply::Simple(text) => line(out, b'+', text.as_bytes()),
        Reply::Error(text) => line(out, b'-', text.as_bytes()),
        Reply::Integer(n) => header(out, b':', *n),
        Reply::Bulk(bytes) => bulk(out, bytes),
        Reply::Null if resp3 => out.extend_from_slice(b"_\r\n"),
        Reply::Null => out.extend_from_slice(b"$-1\r\n"),
        Reply::NullArray if resp3 => out.extend_from_slice(b"_\r\n"),
        Reply::NullArray => out.extend_from_slice(b"*-1\r\n"),
        Reply::Array(items) => aggregate(out, b'*', items, protocol),
        Reply::Set(items) if resp3 => aggregate(out, b'~', items, protocol),
        Reply::Set(items) => aggregate(out, b'*', items, protocol),
        Reply::Map(pairs) => {
            if resp3 {
                header(out, b'%', len_i64(pairs.len()));
            } else {
                header(out, b'*', len_i64(pairs.len()).saturating_mul(2));
            }
            for (key, value) in pairs {
                encode(key, protocol, out);
                encode(value, protocol, out);
            }
        }
        Reply::Double(value) if resp3 => line(out, b',', format_double(*value).as_bytes()),
        Reply::Double(value) => bulk(out, format_double(*value).as_bytes()),
        Reply::Boolean(value) if resp3 => line(out, b'#', if *value { b"t" } else { b"f" }),
        Reply::Boolean(value) => header(out, b':', i64::from(*value)),
        Reply::Verbatim(text) if resp3 => {
            header(out, b'=', len_i64(text.len() + 4));
            out.extend_from_slice(b"txt:");
            out.extend_from_slice(text.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        Reply::Verbatim(text) => bulk(out, text.as_bytes()),
    }
}

/// Redis's text for doubles: `inf`, `-inf`, `nan`, else the shortest text
/// that reads back as the same value.
fn format_double(value: f64) -> String {
    if value.is_nan() {
        "nan".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 { "inf" } else { "-inf" }.to_owned()
    } else {
        value.to_string()
    }
}

fn line(out: &mut Vec<u8>, kind: u8, text: &[u8]) {
    out.push(kind);
    out.extend(text.iter().map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }));
    out.extend_from_slice(b"\r\n");
}

fn header(out: &mut Vec<u8>, kind: u8, n: i64) {
    out.push(kind);
    out.extend_from_slice(n.to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn bulk(out: &mut Vec<u8>, bytes: &[u8]) {
    header(out, b'$', len_i64(bytes.len()));
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

fn aggregate(out: &mut Vec<u8>, kind: u8, items: &[Reply], protocol: Protocol) {
    header(out, kind, len_i64(items.len()));
    for item in items {
        encode(item, protocol, out);
    }
}

fn len_i64(len: usize) -> i64 {
    i64::try_from(len).unwrap_or(i64::MAX)
}

impl From<&super::CommandError> for Reply {
    fn from(error: &super::CommandError) -> Reply {
        Reply::Error(error.to_string())
    }
}

impl From<&super::frame::ProtocolError> for Reply {
    fn from(error: &super::frame::ProtocolError) -> Reply {
        Reply::Error(error.to_string())
    }
}
