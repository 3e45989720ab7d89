//! The names of things in the runtime: streams, accounts and versions.

use std::fmt;
use std::str::FromStr;

/// A fixed-size identifier written as `0x` and lowercase hex.
macro_rules! hex_id {
    ($name:ident, $len:expr, $what:literal) => {
        #[doc = concat!("A ", $what, " (", stringify!($len), " bytes), written as `0x` and lowercase hex.")]
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// Length in bytes.
            pub const LEN: usize = $len;

            /// From exactly [`Self::LEN`] bytes.
            pub fn from_slice(b: &[u8]) -> Option<Self> {
                Some(Self(b.try_into().ok()?))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("0x")?;
                self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        impl FromStr for $name {
            type Err = ParseIdError;

            /// Parses `0x` + hex (either case; the `0x` is optional).
            fn from_str(s: &str) -> Result<Self, ParseIdError> {
                let hex = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")).unwrap_or(s);
                let bad = || ParseIdError { what: $what, len: $len, got: s.to_string() };
                if hex.len() != 2 * $len {
                    return Err(bad());
                }
                let mut out = [0u8; $len];
                for (i, o) in out.iter_mut().enumerate() {
                    *o = u8::from_str_radix(hex.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16)
                        .map_err(|_| bad())?;
                }
                Ok(Self(out))
            }
        }
    };
}

hex_id!(StreamId, 32, "stream ID");
hex_id!(Address, 20, "account address");

/// A string that is not `0x` and the right number of hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what}: expected 0x and {} hex digits, got {got:?}", 2 * len)]
pub struct ParseIdError {
    what: &'static str,
    len: usize,
    got: String,
}

/// Transactions an entry may hold: a version keeps 16 bits for the index.
pub const MAX_TXS_PER_ENTRY: usize = 1 << 16;

/// The version of transaction `index` of the entry at `position`:
/// `(position << 16) | index` (`docs/semantics.md`).
pub fn tx_version(position: u64, index: u16) -> u64 {
    (position << 16) | u64::from(index)
}

/// The log position a version belongs to.
pub fn version_position(version: u64) -> u64 {
    version >> 16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_as_lowercase_hex_and_parse_back() {
        let s = StreamId([0xab; 32]);
        assert_eq!(s.to_string(), format!("0x{}", "ab".repeat(32)));
        assert_eq!(s.to_string().to_uppercase().replace("0X", "0x").parse::<StreamId>(), Ok(s));
        assert!("0x1234".parse::<Address>().is_err());
        assert!(format!("0x{}", "zz".repeat(20)).parse::<Address>().is_err());
    }

    #[test]
    fn versions_pack_position_and_index() {
        assert_eq!(tx_version(3, 2), (3 << 16) | 2);
        assert_eq!(version_position(tx_version(77, u16::MAX)), 77);
    }
}
