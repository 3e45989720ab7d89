//! The transaction codecs, fed the body of a transaction in a signed entry.

use logkv_runtime::codec::native::{self, NativeCompact};
use logkv_runtime::codec::zerog::{self, ZeroG};
use logkv_runtime::codec::{Codec, Decoded, WriteOp};
use logkv_runtime::types::StreamId;

/// Input: a 0G body.
///
/// Checks: every value a staged decode returns lies inside the body; a
/// body that decodes passes the encoder's own checks and encodes back to
/// exactly its bytes (one meaning, one encoding, as 0G's SDK writes it).
pub(crate) fn check_zerog(body: &[u8]) {
    if let Ok(decoded) = ZeroG.decode(body, &[]) {
        values_inside(&decoded, body);
    }
    if let Ok(owned) = zerog::decode_body(body) {
        assert_eq!(owned.check(), Ok(()));
        assert_eq!(zerog::encode(&owned), body, "re-encoded 0G body differs");
    }
}

/// Input: a byte choosing the spelling (bit 0: codec 2, compact) and, for
/// codec 2, how many tags the transaction has (next byte, mod 4), then a
/// native body.
///
/// Checks: as for 0G, in either spelling; and a body read in one spelling
/// means the same when written in the other.
pub(crate) fn check_native(data: &[u8]) {
    let [spelling, tag_count, body @ ..] = data else { return };
    let tags: Vec<StreamId> = (0..tag_count % 4).map(|i| StreamId([i * 0x11 + 1; 32])).collect();
    let compact = spelling & 1 == 1;
    let staged = if compact { NativeCompact.decode(body, &tags) } else { native::Native.decode(body, &tags) };
    if let Ok(decoded) = staged {
        values_inside(&decoded, body);
    }
    let owned = if compact { native::decode_compact(body, &tags) } else { native::decode_body(body) };
    let Ok(owned) = owned else { return };
    assert_eq!(owned.check(), Ok(()));
    let (same, other) = if compact {
        (native::encode_compact(&owned, &tags), native::decode_body(&native::encode(&owned)))
    } else {
        (native::encode(&owned), native::decode_compact(&native::encode_compact(&owned, &tags), &tags))
    };
    assert_eq!(same, body, "re-encoded native body differs");
    assert_eq!(other.as_ref(), Ok(&owned), "the other spelling means something else");
}

fn values_inside(decoded: &Decoded, body: &[u8]) {
    for write in decoded.writes.iter().flatten() {
        if let WriteOp::Put(v) | WriteOp::Append(v) | WriteOp::PutIfAbsent(v) | WriteOp::PutIfPresent(v) =
            write.op
        {
            assert!(
                v.offset.checked_add(v.len).is_some_and(|end| end <= body.len()),
                "{v:?} outside the body"
            );
        }
    }
}
