//! Unsigned LEB128 varints, the counts and lengths of protocol 2 entries and
//! of the compact native codec: seven bits a byte, low bits first, the high
//! bit set on every byte but the last. Only the shortest spelling of a number
//! is accepted, so a number has one encoding and a signed entry cannot be
//! re-spelled into a second valid one.

/// The longest varint: 64 bits in groups of seven.
pub const MAX_LEN: usize = 10;

/// Why bytes do not start with a varint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VarintError {
    /// The bytes end before the last byte (high bit clear).
    #[error("runs past the end")]
    Truncated,
    /// A shorter spelling of the same number exists (a last byte of zero
    /// after other bytes).
    #[error("is not in its shortest form")]
    NotMinimal,
    /// More than 64 bits.
    #[error("exceeds 64 bits")]
    Overflow,
}

/// How many bytes `n` takes.
pub fn len(n: u64) -> usize {
    let bits = 64 - (n | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Appends `n`.
pub fn put(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push(n as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// The varint at the start of `bytes`: its value and how many bytes it took.
pub fn read(bytes: &[u8]) -> Result<(u64, usize), VarintError> {
    let mut value = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(MAX_LEN) {
        // The tenth byte holds bit 63 only, and ends the number.
        if i == MAX_LEN - 1 && b > 1 {
            return Err(VarintError::Overflow);
        }
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            if b == 0 && i > 0 {
                return Err(VarintError::NotMinimal);
            }
            return Ok((value, i + 1));
        }
    }
    Err(VarintError::Truncated)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spelled(n: u64) -> Vec<u8> {
        let mut out = Vec::new();
        put(&mut out, n);
        out
    }

    #[test]
    fn numbers_round_trip_in_their_predicted_length() {
        let edges = (0..64).flat_map(|b| [(1u64 << b) - 1, 1u64 << b, (1u64 << b) + 1]);
        for n in edges.chain([0, 127, 128, 16_383, 16_384, u64::MAX - 1, u64::MAX]) {
            let bytes = spelled(n);
            assert_eq!(bytes.len(), len(n), "{n}");
            assert_eq!(read(&bytes), Ok((n, bytes.len())), "{n}");
            let mut longer = bytes.clone();
            longer.push(0x55);
            assert_eq!(read(&longer), Ok((n, bytes.len())), "{n} followed by other bytes");
        }
        assert_eq!(spelled(300), [0xac, 0x02]);
        assert_eq!(spelled(u64::MAX).len(), MAX_LEN);
    }

    #[test]
    fn only_the_shortest_spelling_is_accepted() {
        assert_eq!(read(&[0x80, 0x00]), Err(VarintError::NotMinimal));
        assert_eq!(read(&[0x81, 0x80, 0x00]), Err(VarintError::NotMinimal));
        assert_eq!(read(&[0x00]), Ok((0, 1)));
    }

    #[test]
    fn truncation_and_overflow_are_refused() {
        assert_eq!(read(&[]), Err(VarintError::Truncated));
        assert_eq!(read(&[0x80]), Err(VarintError::Truncated));
        assert_eq!(read(&spelled(u64::MAX)[..9]), Err(VarintError::Truncated));
        let mut over = vec![0xff; 9];
        over.push(0x02);
        assert_eq!(read(&over), Err(VarintError::Overflow));
        assert_eq!(read(&[0xff; 11]), Err(VarintError::Overflow));
    }
}
