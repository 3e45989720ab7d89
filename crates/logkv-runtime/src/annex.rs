//! The annex of an applied record: the results of the entry's
//! transactions, stored with the entry instead of one index key per
//! transaction, so results cost the index nothing.
//!
//! ```text
//! count varint                   transactions of the entry (the annex is empty instead when none recorded a result)
//! count x status varint          in entry order: 0 skipped, 1 Commit, n >= 2: a result of n - 2 bytes of UTF-8 text follows
//! ```
//!
//! Skipped transactions (a stream the node does not watch) and malformed
//! entries record nothing. `Commit`, by far the most common result, takes
//! one byte, so a record of small writes pays one byte per write for its
//! results. Varints are minimal LEB128 ([`crate::varint`]). The store keeps
//! the bytes without reading them.

use crate::apply::TxResult;
use crate::varint;

/// What an annex's bytes can be wrong with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnnexError {
    /// The bytes end inside a field, or a number is not a minimal varint.
    #[error("annex damaged at byte {at}")]
    Truncated {
        /// Where the field starts.
        at: usize,
    },
    /// Bytes follow the last result.
    #[error("annex has {extra} bytes after its last result")]
    Trailing {
        /// How many.
        extra: usize,
    },
    /// More transactions than an entry can hold.
    #[error("annex lists {count} transactions, more than an entry holds")]
    TooMany {
        /// The count read.
        count: u64,
    },
    /// A result's text is not UTF-8.
    #[error("annex result of index {index} is not UTF-8")]
    NotUtf8 {
        /// The transaction's index.
        index: u16,
    },
}

/// Status of a skipped transaction.
const SKIPPED: u64 = 0;
/// Status of a committed one.
const COMMIT: u64 = 1;
/// Statuses from this one on carry `status - TEXT` bytes of text.
const TEXT: u64 = 2;

/// The annex of an entry whose transactions had `results`, one per
/// transaction in entry order (`None`: skipped).
pub fn encode(results: &[Option<TxResult>]) -> Vec<u8> {
    if results.iter().all(Option::is_none) {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(3 + results.len());
    varint::put(&mut out, results.len() as u64);
    for result in results {
        match result {
            None => varint::put(&mut out, SKIPPED),
            Some(TxResult::Commit) => varint::put(&mut out, COMMIT),
            Some(other) => {
                let text = other.to_string();
                varint::put(&mut out, TEXT + text.len() as u64);
                out.extend_from_slice(text.as_bytes());
            }
        }
    }
    out
}

/// Every recorded result of an annex, `(index, result string)`, in index order.
pub fn decode(annex: &[u8]) -> Result<Vec<(u16, String)>, AnnexError> {
    if annex.is_empty() {
        return Ok(Vec::new());
    }
    let mut at = 0;
    let number = |at: &mut usize| -> Result<u64, AnnexError> {
        let (n, used) = varint::read(&annex[*at..]).map_err(|_| AnnexError::Truncated { at: *at })?;
        *at += used;
        Ok(n)
    };
    let count = number(&mut at)?;
    if count > 1 << 16 {
        return Err(AnnexError::TooMany { count });
    }
    let mut out = Vec::new();
    for index in 0..count as u32 {
        let index = index as u16;
        let start = at;
        match number(&mut at)? {
            SKIPPED => {}
            COMMIT => out.push((index, "Commit".to_string())),
            status => {
                let len = usize::try_from(status - TEXT).map_err(|_| AnnexError::Truncated { at: start })?;
                let text =
                    annex.get(at..at.saturating_add(len)).ok_or(AnnexError::Truncated { at: start })?;
                at += len;
                let text = String::from_utf8(text.to_vec()).map_err(|_| AnnexError::NotUtf8 { index })?;
                out.push((index, text));
            }
        }
    }
    match annex.len() - at {
        0 => Ok(out),
        extra => Err(AnnexError::Trailing { extra }),
    }
}

/// The result string of the transaction at `index`, if it recorded one.
pub fn result_of(annex: &[u8], index: u16) -> Result<Option<String>, AnnexError> {
    Ok(decode(annex)?.into_iter().find(|(i, _)| *i == index).map(|(_, text)| text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::ParseError;

    #[test]
    fn results_round_trip_and_skipped_transactions_record_nothing() {
        let results = vec![
            Some(TxResult::Commit),
            None,
            Some(TxResult::VersionConfliction),
            Some(TxResult::DataParseError(ParseError::invalid("x".repeat(70_000)))),
        ];
        let annex = encode(&results);
        assert_eq!(&annex[..4], &[4, 1, 0, 2 + 18], "four transactions; Commit is one byte, skipped one");
        let want: Vec<(u16, String)> = vec![
            (0, "Commit".into()),
            (2, "VersionConfliction".into()),
            (3, results[3].as_ref().unwrap().to_string()),
        ];
        assert_eq!(decode(&annex).unwrap(), want);
        assert_eq!(result_of(&annex, 2).unwrap().as_deref(), Some("VersionConfliction"));
        assert_eq!(result_of(&annex, 1).unwrap(), None, "skipped");
        assert_eq!(result_of(&annex, 9).unwrap(), None, "no such transaction");
    }

    #[test]
    fn no_result_is_an_empty_annex() {
        assert!(encode(&[]).is_empty());
        assert!(encode(&[None, None]).is_empty());
        assert_eq!(decode(&[]).unwrap(), vec![]);
    }

    #[test]
    fn a_full_entry_of_commits_fits() {
        let annex = encode(&vec![Some(TxResult::Commit); 1 << 16]);
        assert_eq!(annex.len(), 3 + (1 << 16));
        assert_eq!(result_of(&annex, u16::MAX).unwrap().as_deref(), Some("Commit"));
    }

    #[test]
    fn damaged_bytes_are_typed_errors() {
        let annex = encode(&[Some(TxResult::Replayed), Some(TxResult::Commit)]);
        assert_eq!(decode(&annex[..annex.len() - 1]), Err(AnnexError::Truncated { at: 10 }));
        assert_eq!(decode(&annex[..5]), Err(AnnexError::Truncated { at: 1 }));
        assert_eq!(decode(&[annex.as_slice(), &[0]].concat()), Err(AnnexError::Trailing { extra: 1 }));
        assert_eq!(decode(&[0x80, 0x80, 0x08]), Err(AnnexError::TooMany { count: 1 << 17 }));
        assert_eq!(decode(&[1, 0x81, 0x00]), Err(AnnexError::Truncated { at: 1 }), "not a minimal varint");
        let mut bad = annex;
        bad[2] = 0xff;
        assert_eq!(decode(&bad), Err(AnnexError::NotUtf8 { index: 0 }));
    }
}
