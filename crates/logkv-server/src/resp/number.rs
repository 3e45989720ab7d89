//! Integers in requests, read as strictly as Redis's `string2ll`: an
//! optional `-`, decimal digits, no leading zeros, no `+`, no spaces.

pub(crate) use logkv_runtime::apply::parse_i64;

/// Parses `digits` as a `u64` (no sign), or `None` if it is not one.
pub(crate) fn parse_u64(digits: &[u8]) -> Option<u64> {
    let well_formed = match digits {
        [] => false,
        [b'0'] => true,
        [first, ..] => *first != b'0' && digits.iter().all(u8::is_ascii_digit),
    };
    if !well_formed {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}
