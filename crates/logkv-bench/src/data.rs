//! The fixed data sets: 16-byte keys in a shuffled order and their values.
//!
//! Key `i` is the 16 lowercase hex digits of `mix(i)`, where `mix` is the
//! SplitMix64 finaliser: a bijection on `u64`, so distinct indices give
//! distinct keys, and inserting indices 0, 1, 2, ... inserts keys in a
//! random-looking (but fixed) order.

use logkv_log::format::FRAME_OVERHEAD;

/// Key length of every data set.
pub const KEY_BYTES: usize = 16;
/// Value length of the small-value data set.
pub const VALUE_BYTES: usize = 100;
/// Value length of the large-value data set.
pub const LARGE_VALUE_BYTES: usize = 1 << 20;
/// Bytes of a store batch payload before its first op (see `docs/format.md`).
pub const BATCH_HEADER_BYTES: usize = 4;
/// Bytes of a store op before its key (see `docs/format.md`).
pub const OP_HEADER_BYTES: usize = 27;

/// Bytes one `put` of a `value_len`-byte value under a 16-byte key adds to the log.
pub const fn put_frame_bytes(value_len: usize) -> usize {
    FRAME_OVERHEAD + BATCH_HEADER_BYTES + OP_HEADER_BYTES + KEY_BYTES + value_len
}

/// Log bytes of one small put: 26 + 4 + 27 + 16 + 100 = 173.
pub const SMALL_PUT_FRAME_BYTES: usize = put_frame_bytes(VALUE_BYTES);

/// SplitMix64's finaliser, a bijection on `u64`.
pub fn mix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The key of index `i`.
pub fn key(i: u64) -> [u8; KEY_BYTES] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let m = mix(i);
    let mut k = [0u8; KEY_BYTES];
    for (n, b) in k.iter_mut().enumerate() {
        *b = HEX[((m >> (60 - 4 * n)) & 0xf) as usize];
    }
    k
}

/// The keys of indices `0..n`, in insertion order.
pub fn keys(n: usize) -> Vec<[u8; KEY_BYTES]> {
    (0..n as u64).map(key).collect()
}

/// The 100-byte value of index `i` (its index, then a pattern).
pub fn value(i: u64) -> [u8; VALUE_BYTES] {
    let mut v = [0u8; VALUE_BYTES];
    v[..8].copy_from_slice(&i.to_le_bytes());
    for (n, b) in v[8..].iter_mut().enumerate() {
        *b = (i as u8).wrapping_add(n as u8);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_distinct_and_16_bytes() {
        let ks = keys(10_000);
        let set: std::collections::HashSet<_> = ks.iter().collect();
        assert_eq!(set.len(), ks.len());
        assert!(ks.iter().all(|k| k.iter().all(u8::is_ascii_hexdigit)));
    }

    #[test]
    fn keys_are_not_in_order() {
        let ks = keys(1000);
        let ascending = ks.windows(2).filter(|w| w[0] < w[1]).count();
        assert!(ascending > 300 && ascending < 700, "{ascending}");
    }

    #[test]
    fn small_put_frame_is_173_bytes() {
        assert_eq!(SMALL_PUT_FRAME_BYTES, 173);
    }
}
