//! The arguments of the string, bit and HyperLogLog commands (`SETBIT`,
//! `BITCOUNT`, `BITPOS`, `BITOP`, `BITFIELD`, `INCRBYFLOAT`, `RESTORE`,
//! `OBJECT`...) as typed values, checked in Redis's order with Redis's
//! error texts. What the commands then do with a value is in
//! `session::strings`, `session::bits` and `session::hll`.

use super::command::{check_arity, Bytes, Command};
use super::command_error::printable;
use super::number::parse_i64;
use super::CommandError;

/// The largest value Redis accepts (its default `proto-max-bulk-len`,
/// 512 MiB): bit offsets past it are refused while parsing, as Redis
/// does; logkv's own value limit is checked when the command runs.
pub const REDIS_MAX_STRING_BYTES: u64 = 512 << 20;

/// A finite or infinite double (never NaN), compared by its bits so that
/// commands stay `Eq`.
#[derive(Debug, Clone, Copy)]
pub struct Float(pub f64);

impl PartialEq for Float {
    fn eq(&self, other: &Float) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for Float {}

/// A double as Redis reads one for `INCRBYFLOAT` (`strtold` without
/// spaces; NaN refused): `None` if it is not one. Hexadecimal floats,
/// which Redis's `strtold` also reads, are not accepted.
pub fn parse_float(arg: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(arg).ok()?;
    if text.is_empty() || text.starts_with(|c: char| c.is_whitespace()) {
        return None;
    }
    text.parse::<f64>().ok().filter(|f| !f.is_nan())
}

/// `OBJECT` subcommands that ask about a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectQuery {
    Encoding,
    Freq,
    IdleTime,
    RefCount,
}

/// A `BITCOUNT` range: bytes, or bits with `BIT`; negative from the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BitRange {
    pub start: i64,
    pub end: i64,
    pub bits: bool,
}

/// A `BITPOS` range: `end: None` when not given (which changes the
/// answer for a search of a clear bit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BitPosRange {
    pub start: i64,
    pub end: Option<i64>,
    pub bits: bool,
}

/// `BITOP`'s operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitOperation {
    And,
    Or,
    Xor,
    Not,
}

/// `BITFIELD`'s overflow behaviour for the `SET`s and `INCRBY`s after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    Wrap,
    Sat,
    Fail,
}

/// A `BITFIELD` integer: `i1..i64` or `u1..u63`, at a bit offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub signed: bool,
    pub bits: u32,
    pub offset: u64,
}

/// One `BITFIELD` operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitFieldOp {
    Get(Field),
    Set(Field, i64, Overflow),
    IncrBy(Field, i64, Overflow),
}

impl BitFieldOp {
    /// Whether it changes the value.
    pub fn writes(&self) -> bool {
        !matches!(self, BitFieldOp::Get(_))
    }
}

fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// The value of the word `arg` is (without regard to case), if any.
fn keyword<T: Copy>(arg: &[u8], words: &[(&str, T)]) -> Option<T> {
    words.iter().find(|(word, _)| is(arg, word)).map(|(_, value)| *value)
}

fn integer(arg: &[u8]) -> Result<i64, CommandError> {
    parse_i64(arg).ok_or(CommandError::NotInteger)
}

/// A bit offset (`SETBIT`, `GETBIT`, `BITFIELD`): not negative and within
/// Redis's largest string. `#n` (in `BITFIELD`) counts fields of `width`.
pub fn bit_offset(arg: &[u8], width: Option<u32>) -> Result<u64, CommandError> {
    let (fields, arg) = match (width, arg.strip_prefix(b"#")) {
        (Some(width), Some(rest)) => (Some(width), rest),
        _ => (None, arg),
    };
    let offset = parse_i64(arg)
        .and_then(|n| fields.map_or(Some(n), |w| n.checked_mul(i64::from(w))))
        .and_then(|n| u64::try_from(n).ok())
        .filter(|n| n >> 3 < REDIS_MAX_STRING_BYTES);
    offset.ok_or(CommandError::BitOffset)
}

/// `SETBIT key offset 0|1`.
pub fn setbit(args: &[Bytes]) -> Result<Command, CommandError> {
    let offset = bit_offset(&args[2], None)?;
    let bit = match &args[3][..] {
        b"0" => false,
        b"1" => true,
        _ => return Err(CommandError::BitValue),
    };
    Ok(Command::SetBit { key: args[1].clone(), offset, bit })
}

/// `BITCOUNT key [start end [BYTE|BIT]]`. Redis 7.0 looks the key up
/// before reading the range, so a missing key answers 0 whatever the
/// range says: the range's error is kept for when the key exists.
pub fn bitcount(args: &[Bytes]) -> Command {
    let range = match &args[2..] {
        [] => Ok(None),
        [start, end, unit @ ..] if unit.len() <= 1 => (|| {
            let (start, end) = (integer(start)?, integer(end)?);
            let bits = unit_is_bits(unit.first())?;
            Ok(Some(BitRange { start, end, bits }))
        })(),
        _ => Err(CommandError::Syntax),
    };
    Command::BitCount { key: args[1].clone(), range }
}

/// Whether a range's unit (`BYTE`, the default, or `BIT`) is bits.
fn unit_is_bits(unit: Option<&Bytes>) -> Result<bool, CommandError> {
    unit.map_or(Some(false), |u| keyword(u, &[("byte", false), ("bit", true)])).ok_or(CommandError::Syntax)
}

/// `BITPOS key bit [start [end [BYTE|BIT]]]`: the bit is checked first,
/// the range (as for `BITCOUNT`) only once the key exists.
pub fn bitpos(args: &[Bytes]) -> Result<Command, CommandError> {
    let bit = match integer(&args[2])? {
        0 => false,
        1 => true,
        _ => return Err(CommandError::BitArgument),
    };
    let range = match &args[3..] {
        [] => Ok(None),
        [start, rest @ ..] if rest.len() <= 2 => (|| {
            let start = integer(start)?;
            let bits = unit_is_bits(rest.get(1))?;
            let end = rest.first().map(|e| integer(e)).transpose()?;
            Ok(Some(BitPosRange { start, end, bits }))
        })(),
        _ => Err(CommandError::Syntax),
    };
    Ok(Command::BitPos { key: args[1].clone(), bit, range })
}

/// `BITOP AND|OR|XOR|NOT destkey key ...`.
pub fn bitop(args: &[Bytes]) -> Result<Command, CommandError> {
    let words = [
        ("and", BitOperation::And),
        ("or", BitOperation::Or),
        ("xor", BitOperation::Xor),
        ("not", BitOperation::Not),
    ];
    let op = keyword(&args[1], &words).ok_or(CommandError::Syntax)?;
    if op == BitOperation::Not && args.len() != 4 {
        return Err(CommandError::BitOpNot);
    }
    Ok(Command::BitOp { op, dest: args[2].clone(), keys: args[3..].to_vec() })
}

/// A `BITFIELD` type: `i1`..`i64` or `u1`..`u63`.
fn field_type(arg: &[u8]) -> Result<(bool, u32), CommandError> {
    let signed = match arg.first().map(u8::to_ascii_lowercase) {
        Some(b'i') => true,
        Some(b'u') => false,
        _ => return Err(CommandError::BitFieldType),
    };
    let bits = parse_i64(&arg[1..]).ok_or(CommandError::BitFieldType)?;
    let max = if signed { 64 } else { 63 };
    match u32::try_from(bits) {
        Ok(bits) if (1..=max).contains(&bits) => Ok((signed, bits)),
        _ => Err(CommandError::BitFieldType),
    }
}

/// `BITFIELD key [GET type offset | SET type offset value | INCRBY type
/// offset increment | OVERFLOW WRAP|SAT|FAIL] ...`, and `BITFIELD_RO`,
/// which takes only `GET`s (refused after every operation is read, as
/// Redis does).
pub fn bitfield(args: &[Bytes], read_only: bool) -> Result<Command, CommandError> {
    let mut ops = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut i = 2;
    while let Some(name) = args.get(i) {
        let more = args.len() - 1 - i;
        if is(name, "overflow") && more >= 1 {
            let words = [("wrap", Overflow::Wrap), ("sat", Overflow::Sat), ("fail", Overflow::Fail)];
            overflow = keyword(&args[i + 1], &words).ok_or(CommandError::OverflowType)?;
            i += 2;
            continue;
        }
        let get = is(name, "get") && more >= 2;
        let set = is(name, "set") && more >= 3;
        let incr = is(name, "incrby") && more >= 3;
        if !(get || set || incr) {
            return Err(CommandError::Syntax);
        }
        let (signed, bits) = field_type(&args[i + 1])?;
        let offset = bit_offset(&args[i + 2], Some(bits))?;
        let field = Field { signed, bits, offset };
        ops.push(if get {
            BitFieldOp::Get(field)
        } else {
            let n = integer(&args[i + 3])?;
            if set {
                BitFieldOp::Set(field, n, overflow)
            } else {
                BitFieldOp::IncrBy(field, n, overflow)
            }
        });
        i += if get { 3 } else { 4 };
    }
    if read_only && ops.iter().any(BitFieldOp::writes) {
        return Err(CommandError::BitFieldReadOnly);
    }
    Ok(Command::BitField { key: args[1].clone(), ops, read_only })
}

/// `OBJECT ENCODING|FREQ|IDLETIME|REFCOUNT key`, `OBJECT HELP`.
pub fn object(args: &[Bytes]) -> Result<Command, CommandError> {
    let sub = &args[1];
    if is(sub, "help") {
        check_arity(args, 2, "object|help")?;
        return Ok(Command::ObjectHelp);
    }
    let words = [
        ("encoding", (ObjectQuery::Encoding, "object|encoding")),
        ("freq", (ObjectQuery::Freq, "object|freq")),
        ("idletime", (ObjectQuery::IdleTime, "object|idletime")),
        ("refcount", (ObjectQuery::RefCount, "object|refcount")),
    ];
    let (query, name) = keyword(sub, &words).ok_or_else(|| CommandError::UnknownSubcommand {
        command: "OBJECT",
        subcommand: printable(&sub[..sub.len().min(128)]),
    })?;
    check_arity(args, 3, name)?;
    Ok(Command::Object { query, key: args[2].clone() })
}

/// `COPY source destination [DB db] [REPLACE]`. logkv has one database
/// today: `DB 0` is the current one, any other is out of range.
pub fn copy(args: &[Bytes]) -> Result<Command, CommandError> {
    let mut replace = false;
    let mut db = None;
    let mut i = 3;
    while let Some(option) = args.get(i) {
        if is(option, "replace") {
            replace = true;
        } else if is(option, "db") && i + 1 < args.len() {
            db = Some(integer(&args[i + 1])?);
            i += 1;
        } else {
            return Err(CommandError::Syntax);
        }
        i += 1;
    }
    // With `DB n` the session decides: another database may hold the same name.
    if args[1] == args[2] && db.is_none() {
        return Err(CommandError::SameObject);
    }
    Ok(Command::Copy { from: args[1].clone(), to: args[2].clone(), replace, db })
}

/// `RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME s] [FREQ f]`.
/// The options are checked here; the TTL and the payload only after the
/// key (`BUSYKEY` first), as Redis does. logkv keeps no access times, so
/// `IDLETIME` and `FREQ` are checked and dropped.
pub fn restore(args: &[Bytes]) -> Result<Command, CommandError> {
    let (mut replace, mut absolute) = (false, false);
    let (mut idle, mut freq) = (false, false);
    let mut i = 4;
    while let Some(option) = args.get(i) {
        let more = i + 1 < args.len();
        if is(option, "replace") {
            replace = true;
        } else if is(option, "absttl") {
            absolute = true;
        } else if is(option, "idletime") && more && !freq {
            if integer(&args[i + 1])? < 0 {
                return Err(CommandError::InvalidIdleTime);
            }
            idle = true;
            i += 1;
        } else if is(option, "freq") && more && !idle {
            if !(0..=255).contains(&integer(&args[i + 1])?) {
                return Err(CommandError::InvalidFreq);
            }
            freq = true;
            i += 1;
        } else {
            return Err(CommandError::Syntax);
        }
        i += 1;
    }
    Ok(Command::Restore {
        key: args[1].clone(),
        ttl: args[2].clone(),
        payload: args[3].clone(),
        replace,
        absolute,
    })
}
