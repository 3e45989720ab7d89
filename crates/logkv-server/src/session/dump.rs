//! `DUMP`/`RESTORE` payloads in logkv's own format: a value with its type,
//! versioned and checksummed, so a payload is refused whole when it is
//! damaged, from another format (Redis's RDB payloads) or from a later
//! logkv.
//!
//! | bytes | what |
//! |---|---|
//! | 6 | `logkv\0` |
//! | 1 | format version, 1 |
//! | 1 | type: 0 for a string |
//! | n | the value |
//! | 8 | the first 8 bytes of SHA-256 of everything before |

use sha2::{Digest, Sha256};

const MAGIC: &[u8] = b"logkv\0";
const VERSION: u8 = 1;
const STRING: u8 = 0;
const CHECKSUM_BYTES: usize = 8;

/// Why a payload is refused, with Redis's texts.
#[derive(Debug, PartialEq, Eq)]
pub enum PayloadError {
    /// Not logkv's format, another version, or a wrong checksum.
    VersionOrChecksum,
    /// A well-formed payload of a type logkv does not know.
    BadData,
}

impl PayloadError {
    /// Redis's error text.
    pub fn message(&self) -> &'static str {
        match self {
            PayloadError::VersionOrChecksum => "ERR DUMP payload version or checksum are wrong",
            PayloadError::BadData => "ERR Bad data format",
        }
    }
}

fn checksum(bytes: &[u8]) -> [u8; CHECKSUM_BYTES] {
    Sha256::digest(bytes)[..CHECKSUM_BYTES].try_into().expect("8 bytes")
}

/// The payload of a string value.
pub fn dump(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAGIC.len() + 2 + value.len() + CHECKSUM_BYTES);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[VERSION, STRING]);
    out.extend_from_slice(value);
    let sum = checksum(&out);
    out.extend_from_slice(&sum);
    out
}

/// The string value a payload holds.
pub fn restore(payload: &[u8]) -> Result<&[u8], PayloadError> {
    let body_len = payload.len().checked_sub(CHECKSUM_BYTES).ok_or(PayloadError::VersionOrChecksum)?;
    let (body, sum) = payload.split_at(body_len);
    let header = body.strip_prefix(MAGIC).and_then(|rest| rest.split_first_chunk::<2>());
    let Some(([version, kind], value)) = header else {
        return Err(PayloadError::VersionOrChecksum);
    };
    if *version != VERSION || checksum(body) != sum {
        return Err(PayloadError::VersionOrChecksum);
    }
    match *kind {
        STRING => Ok(value),
        _ => Err(PayloadError::BadData),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_damage_is_refused() {
        let payload = dump(b"hello");
        assert_eq!(restore(&payload), Ok(&b"hello"[..]));
        let mut damaged = payload.clone();
        damaged[8] ^= 1;
        assert_eq!(restore(&damaged), Err(PayloadError::VersionOrChecksum));
        // A Redis 7 payload of "hello": type, value, RDB version 10, CRC64.
        let redis = b"\x00\x05hello\x0a\x00\xb3\x0f\x9c\x9a\x8c\x83\xc7\x5a";
        assert_eq!(restore(redis), Err(PayloadError::VersionOrChecksum));
        assert_eq!(restore(b""), Err(PayloadError::VersionOrChecksum));
        let mut other_type = MAGIC.to_vec();
        other_type.extend_from_slice(&[VERSION, 7]);
        let sum = checksum(&other_type);
        other_type.extend_from_slice(&sum);
        assert_eq!(restore(&other_type), Err(PayloadError::BadData));
    }
}
