//! Bit operations on string values, as Redis numbers bits: bit 0 is the
//! most significant bit of the first byte, and a string reads as if
//! followed by zero bits forever. Pure functions of the bytes, used by
//! reads (`GETBIT`, `BITCOUNT`, `BITPOS`, `BITFIELD_RO`) and by the
//! read-modify-write commands (`SETBIT`, `BITOP`, `BITFIELD`).

use crate::resp::string_args::{BitFieldOp, BitOperation, BitPosRange, BitRange, Field, Overflow};

/// Bit `offset` of `value` (false past its end).
pub fn get_bit(value: &[u8], offset: u64) -> bool {
    let byte = usize::try_from(offset >> 3).ok().and_then(|i| value.get(i)).copied().unwrap_or(0);
    byte & (0x80 >> (offset & 7)) != 0
}

/// Sets bit `offset` of `value`, growing it with zero bytes to reach it;
/// answers the bit it replaced. The caller has checked `offset` against
/// the value limit.
pub fn set_bit(value: &mut Vec<u8>, offset: u64, bit: bool) -> bool {
    let i = (offset >> 3) as usize;
    if value.len() <= i {
        value.resize(i + 1, 0);
    }
    let mask = 0x80 >> (offset & 7);
    let old = value[i] & mask != 0;
    if bit {
        value[i] |= mask;
    } else {
        value[i] &= !mask;
    }
    old
}

/// The bits `[first, last]` a range covers in a value of `len` bytes
/// (Redis's rules: negative from the end, clamped to the value), or
/// `None` when it covers none.
fn span(len: usize, start: i64, end: i64, bits: bool) -> Option<(u64, u64)> {
    let total = if bits { len as i64 * 8 } else { len as i64 };
    if start < 0 && end < 0 && start > end {
        return None;
    }
    let from_end = |i: i64| if i < 0 { (total + i).max(0) } else { i };
    let (start, end) = (from_end(start), from_end(end).min(total - 1));
    if start > end || end < 0 {
        return None;
    }
    let (start, end) = (start as u64, end as u64);
    Some(if bits { (start, end) } else { (start * 8, end * 8 + 7) })
}

/// `BITCOUNT`: the set bits of `value` in `range` (all without one).
pub fn count(value: &[u8], range: Option<BitRange>) -> i64 {
    let range = range.unwrap_or(BitRange { start: 0, end: -1, bits: false });
    let Some((first, last)) = span(value.len(), range.start, range.end, range.bits) else {
        return 0;
    };
    let (a, b) = ((first >> 3) as usize, (last >> 3) as usize);
    let whole: u32 = value[a..=b].iter().map(|byte| byte.count_ones()).sum();
    // Leave out the bits of the edge bytes before `first` and after `last`.
    let before = (u32::from(value[a]) >> (8 - (first & 7))).count_ones();
    let after = (u32::from(value[b]) & (0xff >> ((last & 7) + 1))).count_ones();
    i64::from(whole - before - after)
}

/// `BITPOS`: the first bit equal to `bit` in `range`, or -1. A search for
/// a clear bit without an explicit end reads zeros past the value, so
/// it finds the bit just after it.
pub fn position(value: &[u8], bit: bool, range: Option<BitPosRange>) -> i64 {
    let range = range.unwrap_or(BitPosRange { start: 0, end: None, bits: false });
    let Some((first, last)) = span(value.len(), range.start, range.end.unwrap_or(-1), range.bits) else {
        return -1;
    };
    let skip = if bit { 0x00 } else { 0xff };
    let mut offset = first;
    while offset <= last {
        let byte = value[(offset >> 3) as usize];
        if offset & 7 == 0 && offset + 7 <= last && byte == skip {
            offset += 8;
            continue;
        }
        if get_bit(value, offset) == bit {
            return offset as i64;
        }
        offset += 1;
    }
    if bit || range.end.is_some() {
        -1
    } else {
        last as i64 + 1
    }
}

/// `BITOP`: the sources (missing keys are empty) combined byte by byte,
/// the shorter ones read as padded with zeros; as long as the longest.
pub fn combine(op: BitOperation, sources: &[Option<Vec<u8>>]) -> Vec<u8> {
    let len = sources.iter().map(|s| s.as_ref().map_or(0, Vec::len)).max().unwrap_or(0);
    let byte = |s: &Option<Vec<u8>>, i: usize| s.as_ref().and_then(|v| v.get(i)).copied().unwrap_or(0);
    (0..len)
        .map(|i| {
            let mut bytes = sources.iter().map(|s| byte(s, i));
            let first = bytes.next().unwrap_or(0);
            match op {
                BitOperation::And => bytes.fold(first, |a, b| a & b),
                BitOperation::Or => bytes.fold(first, |a, b| a | b),
                BitOperation::Xor => bytes.fold(first, |a, b| a ^ b),
                BitOperation::Not => !first,
            }
        })
        .collect()
}

/// The integer a field holds.
fn read_field(value: &[u8], field: Field) -> i64 {
    let mut raw: u64 = 0;
    for i in 0..u64::from(field.bits) {
        raw = (raw << 1) | u64::from(get_bit(value, field.offset + i));
    }
    if field.signed && field.bits < 64 && raw & (1 << (field.bits - 1)) != 0 {
        (raw as i64) - (1i64 << field.bits)
    } else {
        raw as i64
    }
}

fn write_field(value: &mut Vec<u8>, field: Field, n: i64) {
    for i in 0..field.bits {
        let bit = (n as u64 >> (field.bits - 1 - i)) & 1 == 1;
        set_bit(value, field.offset + u64::from(i), bit);
    }
}

/// `n` brought into the field's range by the overflow rule; `None` when it
/// does not fit and the rule is `FAIL`.
fn fit(field: Field, n: i128, overflow: Overflow) -> Option<i64> {
    let (min, max) = if field.signed {
        (-(1i128 << (field.bits - 1)), (1i128 << (field.bits - 1)) - 1)
    } else {
        (0, (1i128 << field.bits) - 1)
    };
    if (min..=max).contains(&n) {
        return Some(n as i64);
    }
    match overflow {
        Overflow::Fail => None,
        Overflow::Sat => Some(n.clamp(min, max) as i64),
        Overflow::Wrap => {
            let wrapped = n.rem_euclid(1i128 << field.bits);
            Some(if wrapped > max { wrapped - (1i128 << field.bits) } else { wrapped } as i64)
        }
    }
}

/// `BITFIELD`'s operations on `value`, in order: each one's answer (`GET`
/// the field, `SET` the old value, `INCRBY` the new one; `None` for an
/// overflow under `FAIL`, which changes nothing). As in Redis, a value
/// that any `SET`/`INCRBY` reaches past is first grown with zero bytes.
/// A `SET` value reads as unsigned 64-bit for an unsigned field.
pub fn bitfield(value: &mut Vec<u8>, ops: &[BitFieldOp]) -> Vec<Option<i64>> {
    let reach = bitfield_reach(ops);
    if (value.len() as u64) < reach {
        value.resize(reach as usize, 0);
    }
    ops.iter()
        .map(|op| match *op {
            BitFieldOp::Get(field) => Some(read_field(value, field)),
            BitFieldOp::Set(field, n, overflow) => {
                let old = read_field(value, field);
                let n = if field.signed { i128::from(n) } else { i128::from(n as u64) };
                let new = fit(field, n, overflow)?;
                write_field(value, field, new);
                Some(old)
            }
            BitFieldOp::IncrBy(field, by, overflow) => {
                let new = fit(field, i128::from(read_field(value, field)) + i128::from(by), overflow)?;
                write_field(value, field, new);
                Some(new)
            }
        })
        .collect()
}

/// How many bytes a value needs for the writes of `ops` (0 without any):
/// what the value limit is checked against before they run.
pub fn bitfield_reach(ops: &[BitFieldOp]) -> u64 {
    ops.iter()
        .filter_map(|op| match op {
            BitFieldOp::Set(f, ..) | BitFieldOp::IncrBy(f, ..) => {
                Some((f.offset + u64::from(f.bits) - 1) / 8 + 1)
            }
            BitFieldOp::Get(_) => None,
        })
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_count_from_the_most_significant_bit() {
        let mut v = Vec::new();
        assert!(!set_bit(&mut v, 7, true));
        assert_eq!(v, [0x01]);
        assert!(get_bit(&v, 7) && !get_bit(&v, 6) && !get_bit(&v, 100));
        assert_eq!(count(b"foobar", None), 26);
        assert_eq!(count(b"foobar", Some(BitRange { start: 1, end: 1, bits: false })), 6);
        assert_eq!(count(b"foobar", Some(BitRange { start: 5, end: 30, bits: true })), 17);
        assert_eq!(position(&[0xff, 0xf0, 0], false, None), 12);
        assert_eq!(position(&[0xff, 0xff], false, None), 16);
        assert_eq!(
            position(&[0xff, 0xff], false, Some(BitPosRange { start: 0, end: Some(-1), bits: false })),
            -1
        );
        assert_eq!(position(&[0, 0], true, None), -1);
    }

    #[test]
    fn bitfield_overflows_wrap_saturate_or_fail() {
        let u2 = Field { signed: false, bits: 2, offset: 0 };
        let i8 = Field { signed: true, bits: 8, offset: 0 };
        let mut v = Vec::new();
        assert_eq!(bitfield(&mut v, &[BitFieldOp::IncrBy(u2, 5, Overflow::Wrap)]), [Some(1)]);
        assert_eq!(bitfield(&mut v, &[BitFieldOp::IncrBy(u2, 5, Overflow::Sat)]), [Some(3)]);
        assert_eq!(bitfield(&mut v, &[BitFieldOp::IncrBy(u2, 1, Overflow::Fail)]), [None]);
        assert_eq!(bitfield(&mut v, &[BitFieldOp::Set(i8, 128, Overflow::Wrap)]), [Some(-64)]);
        assert_eq!(bitfield(&mut v, &[BitFieldOp::Get(i8)]), [Some(-128)]);
        assert_eq!(bitfield(&mut v, &[BitFieldOp::Set(u2, -1, Overflow::Sat)]), [Some(2)]);
    }
}
