//! The annex of an applied record: the results of the entry's
//! transactions, stored with the entry instead of one index key per
//! transaction, so results cost the index nothing.
//!
//! ```text
//! count u32                 transactions that recorded a result (0: the annex is empty instead)
//! count x [ index u16 | len u32 | text (len bytes, UTF-8) ]   in index order; len 0 = "Commit"
//! ```
//!
//! Skipped transactions (a stream the node does not watch) and malformed
//! entries record nothing. `Commit`, by far the most common result, takes
//! no text. The count is a u32 because an entry may hold 65,536
//! transactions, and `len` because an application codec's parse error may
//! be longer than 64 KiB. The store keeps the bytes without reading them.

use crate::apply::TxResult;

/// What an annex's bytes can be wrong with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnnexError {
    /// The bytes end inside a field.
    #[error("annex truncated at byte {at}")]
    Truncated {
        /// Where the missing field starts.
        at: usize,
    },
    /// Bytes follow the last result.
    #[error("annex has {extra} bytes after its last result")]
    Trailing {
        /// How many.
        extra: usize,
    },
    /// Indexes are not increasing.
    #[error("annex lists index {index} after {previous}")]
    Unordered {
        /// The index out of order.
        index: u16,
        /// The one before it.
        previous: u16,
    },
    /// A result's text is not UTF-8.
    #[error("annex result of index {index} is not UTF-8")]
    NotUtf8 {
        /// The transaction's index.
        index: u16,
    },
}

/// The annex of an entry whose transactions had `results`, one per
/// transaction in entry order (`None`: skipped).
pub fn encode(results: &[Option<TxResult>]) -> Vec<u8> {
    let recorded: Vec<(u16, &TxResult)> =
        results.iter().enumerate().filter_map(|(i, r)| Some((i as u16, r.as_ref()?))).collect();
    if recorded.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(4 + recorded.len() * 6);
    out.extend_from_slice(&(recorded.len() as u32).to_be_bytes());
    for (index, result) in recorded {
        let text = match result {
            TxResult::Commit => String::new(),
            other => other.to_string(),
        };
        out.extend_from_slice(&index.to_be_bytes());
        out.extend_from_slice(&(text.len() as u32).to_be_bytes());
        out.extend_from_slice(text.as_bytes());
    }
    out
}

/// Every recorded result of an annex, `(index, result string)`, in index order.
pub fn decode(annex: &[u8]) -> Result<Vec<(u16, String)>, AnnexError> {
    if annex.is_empty() {
        return Ok(Vec::new());
    }
    let mut at = 0;
    let mut take = |n: usize| -> Result<&[u8], AnnexError> {
        let bytes = annex.get(at..at + n).ok_or(AnnexError::Truncated { at })?;
        at += n;
        Ok(bytes)
    };
    let count = u32::from_be_bytes(take(4)?.try_into().expect("4 bytes"));
    let mut out: Vec<(u16, String)> = Vec::new();
    for _ in 0..count {
        let index = u16::from_be_bytes(take(2)?.try_into().expect("2 bytes"));
        if let Some(&(previous, _)) = out.last().filter(|(p, _)| *p >= index) {
            return Err(AnnexError::Unordered { index, previous });
        }
        let len = u32::from_be_bytes(take(4)?.try_into().expect("4 bytes")) as usize;
        let text = match take(len)? {
            [] => "Commit".to_string(),
            bytes => String::from_utf8(bytes.to_vec()).map_err(|_| AnnexError::NotUtf8 { index })?,
        };
        out.push((index, text));
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
        assert_eq!(&annex[..4], &3u32.to_be_bytes(), "three recorded results");
        assert_eq!(&annex[4..10], &[0, 0, 0, 0, 0, 0], "index 0, Commit takes no text");
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
        assert_eq!(annex.len(), 4 + 6 * (1 << 16));
        assert_eq!(result_of(&annex, u16::MAX).unwrap().as_deref(), Some("Commit"));
    }

    #[test]
    fn damaged_bytes_are_typed_errors() {
        let annex = encode(&[Some(TxResult::Replayed), Some(TxResult::Commit)]);
        assert_eq!(decode(&annex[..annex.len() - 1]), Err(AnnexError::Truncated { at: 20 }));
        assert_eq!(decode(&[annex.as_slice(), &[0]].concat()), Err(AnnexError::Trailing { extra: 1 }));
        let mut swapped = annex.clone();
        swapped[5] = 1; // index 1, then index 1 again
        assert_eq!(decode(&swapped), Err(AnnexError::Unordered { index: 1, previous: 1 }));
        let mut bad = annex;
        bad[10] = 0xff;
        assert_eq!(decode(&bad), Err(AnnexError::NotUtf8 { index: 0 }));
    }
}
