//! What the string commands compute from a value: `GETRANGE`'s slice,
//! `SETRANGE`'s new value, `INCRBYFLOAT`'s sum and its text, and the
//! encoding `OBJECT ENCODING` names. Pure functions of the bytes.

use crate::resp::string_args::parse_float;

/// `GETRANGE`: the bytes from `start` to `end` inclusive, negative
/// indexes from the end, clamped to the value (Redis's rules).
pub fn range(value: &[u8], start: i64, end: i64) -> &[u8] {
    let len = value.len() as i64;
    if start < 0 && end < 0 && start > end {
        return &[];
    }
    let from_end = |i: i64| if i < 0 { (len + i).max(0) } else { i };
    let (start, end) = (from_end(start), from_end(end).min(len - 1));
    if start > end || len == 0 {
        return &[];
    }
    &value[start as usize..=end as usize]
}

/// `SETRANGE`: `value` with `patch` written at `offset`, zero-padded to
/// reach it.
pub fn overwrite(mut value: Vec<u8>, offset: usize, patch: &[u8]) -> Vec<u8> {
    let end = offset + patch.len();
    if value.len() < end {
        value.resize(end, 0);
    }
    value[offset..end].copy_from_slice(patch);
    value
}

/// Why `INCRBYFLOAT` cannot add.
#[derive(Debug, PartialEq, Eq)]
pub enum FloatError {
    /// The stored value is not a number (`ERR value is not a valid float`).
    NotFloat,
    /// The sum is infinite.
    Infinite,
}

impl FloatError {
    /// Redis's error text.
    pub fn message(&self) -> &'static str {
        match self {
            FloatError::NotFloat => "ERR value is not a valid float",
            FloatError::Infinite => "ERR increment would produce NaN or Infinity",
        }
    }
}

/// `INCRBYFLOAT`: the text of `value` (missing: 0) plus `delta`.
///
/// Redis adds in the x87's 80-bit `long double` and prints 17 decimals,
/// so it writes digits past its precision (`1000.09999999999999998` for
/// 1000 + 0.1). logkv adds in 64-bit floating point and writes the sum
/// rounded to 15 significant digits (what a double always holds), in
/// plain notation without trailing zeros: `1000.1`, `0.3` for 0.1 + 0.2.
/// The two agree whenever Redis's digits are exact (small and decimal
/// values).
pub fn add_float(value: Option<&[u8]>, delta: f64) -> Result<Vec<u8>, FloatError> {
    let current = match value {
        None => 0.0,
        Some(v) => parse_float(v).ok_or(FloatError::NotFloat)?,
    };
    let sum = current + delta;
    if !sum.is_finite() {
        return Err(FloatError::Infinite);
    }
    Ok(plain_decimal(sum).into_bytes())
}

/// `x` with 15 significant digits, in plain notation (no exponent).
fn plain_decimal(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    let scientific = format!("{:.14e}", x.abs());
    let (mantissa, exponent) = scientific.split_once('e').expect("an exponent");
    let exponent: i64 = exponent.parse().expect("an integer exponent");
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let digits = digits.trim_end_matches('0');
    // The value is 0.<digits> × 10^point.
    let point = exponent + 1;
    let mut out = String::from(if x < 0.0 { "-" } else { "" });
    if point <= 0 {
        out.push_str("0.");
        out.push_str(&"0".repeat(point.unsigned_abs() as usize));
        out.push_str(digits);
    } else if point as usize >= digits.len() {
        out.push_str(digits);
        out.push_str(&"0".repeat(point as usize - digits.len()));
    } else {
        out.push_str(&digits[..point as usize]);
        out.push('.');
        out.push_str(&digits[point as usize..]);
    }
    out
}

/// `OBJECT ENCODING` of a string, by Redis's rules for a value set whole
/// (`SET`): `int` for a decimal integer in Redis's strict form of at most
/// 20 bytes, `embstr` up to 44 bytes, else `raw`. (Redis says `raw` for
/// a short value grown in place by `APPEND`, `SETRANGE` or `SETBIT`;
/// logkv keeps no record of how a value was made.)
pub fn encoding(value: &[u8]) -> &'static str {
    if value.len() <= 20 && crate::resp::number::parse_i64(value).is_some() {
        "int"
    } else if value.len() <= 44 {
        "embstr"
    } else {
        "raw"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_redis_index_rules() {
        assert_eq!(range(b"This is a string", 0, 3), b"This");
        assert_eq!(range(b"This is a string", -3, -1), b"ing");
        assert_eq!(range(b"This is a string", 10, 100), b"string");
        assert_eq!(range(b"abc", -1, -2), b"");
        assert_eq!(range(b"abc", 5, 10), b"");
        assert_eq!(range(b"", 0, -1), b"");
        assert_eq!(overwrite(b"Hello".to_vec(), 7, b"x"), b"Hello\0\0x");
    }

    #[test]
    fn float_sums_are_written_plainly() {
        let add =
            |v: Option<&str>, d: f64| String::from_utf8(add_float(v.map(str::as_bytes), d).unwrap()).unwrap();
        assert_eq!(add(Some("10.50"), 0.1), "10.6");
        assert_eq!(add(Some("0.1"), 0.2), "0.3");
        assert_eq!(add(Some("5.0e3"), 2.0e2), "5200");
        assert_eq!(add(None, 1.0e-5), "0.00001");
        assert_eq!(add(None, -1.5), "-1.5");
        assert_eq!(add(None, 1e23), "100000000000000000000000");
        assert_eq!(add_float(Some(b"abc"), 1.0), Err(FloatError::NotFloat));
        assert_eq!(add_float(Some(b"1e308"), 1e308), Err(FloatError::Infinite));
        assert_eq!(encoding(b"123"), "int");
        assert_eq!(encoding(b"0123"), "embstr");
        assert_eq!(encoding(&[b'x'; 45]), "raw");
    }
}
