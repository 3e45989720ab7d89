//! Signed entries, fed what anyone who can append to a shared log (or call
//! `kv_submit`) writes.

use logkv_runtime::codec::native::{Native, NativeCompact};
use logkv_runtime::codec::zerog::ZeroG;
use logkv_runtime::codec::{Codec, NATIVE, NATIVE_COMPACT, ZEROG};
use logkv_runtime::envelope::EntryView;
use logkv_runtime::types::StreamId;

/// Input: the bytes of one entry.
///
/// Checks: an entry that parses re-encodes, in its own protocol, to
/// exactly its bytes before the signature (the format is canonical);
/// every transaction's tags are ascending, unique and among the entry's,
/// and its body lies inside the entry at the offset it names; checking
/// the signature and decoding each body with its codec fail cleanly.
pub(crate) fn check(bytes: &[u8]) {
    let Ok(view) = EntryView::parse(bytes) else { return };
    let unsigned = view.to_entry().encode_unsigned(view.protocol()).expect("a parsed entry encodes");
    assert_eq!(unsigned.len() + view.signature().len(), bytes.len());
    assert_eq!(&bytes[..unsigned.len()], unsigned, "re-encoded entry differs");
    let _ = view.verify();
    let entry_tags: Vec<StreamId> = view.tags().iter().collect();
    assert!(entry_tags.is_sorted_by(|a, b| a < b), "entry tags not ascending and unique");
    for tx in view.txs() {
        let tags: Vec<StreamId> = tx.tags.iter().collect();
        assert!(tags.is_sorted_by(|a, b| a < b), "tx tags not ascending and unique");
        assert!(tags.iter().all(|t| view.tags().contains(t)), "a tx tag the entry lacks");
        assert_eq!(bytes.get(tx.body_offset..tx.body_offset + tx.body.len()), Some(tx.body));
        let codec: &dyn Codec = match tx.codec {
            ZEROG => &ZeroG,
            NATIVE => &Native,
            NATIVE_COMPACT => &NativeCompact,
            _ => continue,
        };
        let _ = codec.decode(tx.body, &tags);
    }
}
