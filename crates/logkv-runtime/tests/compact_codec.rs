//! The compact native codec (codec 2): the documented layout, the same
//! content as codec 1, staged failures, and only the canonical spelling
//! accepted — every other one a `ParseError`, never a panic.

mod codec_support;

use std::collections::BTreeSet;

use codec_support::{assert_truncations_fail_in_their_stage, fully_ok, native_body, StageEnds};
use logkv_runtime::codec::native::{self, Body, BodyWrite, Native, NativeCompact, Op};
use logkv_runtime::codec::{Codec, Control, ControlOp, ParseError, Read, ValueRef, WriteOp, NATIVE_COMPACT};
use logkv_runtime::types::{Address, StreamId};
use proptest::prelude::*;

fn sid(b: u8) -> StreamId {
    StreamId([b; 32])
}

/// The streams codec_support's bodies mostly use.
fn common_tags() -> Vec<StreamId> {
    (0..3).map(sid).collect()
}

fn hex(s: &str) -> Vec<u8> {
    let digits: String = s.split_whitespace().collect();
    (0..digits.len()).step_by(2).map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap()).collect()
}

fn is_invalid<T>(r: &Result<T, ParseError>) -> bool {
    matches!(r, Err(ParseError::Invalid { .. }))
}

/// A body with its tags: the streams it writes or controls, sometimes minus
/// one or plus another (so some streams are written out in full).
fn tagged_body() -> impl Strategy<Value = (Body, Vec<StreamId>)> {
    (native_body(), any::<Option<prop::sample::Index>>(), any::<Option<u8>>()).prop_map(
        |(body, drop, add)| {
            let mut tags: BTreeSet<StreamId> = body.tags().into_iter().collect();
            if let Some(i) = drop.filter(|_| !tags.is_empty()) {
                let t = *tags.iter().nth(i.index(tags.len())).expect("in range");
                tags.remove(&t);
            }
            tags.extend(add.map(|b| sid(b % 5)));
            (body, tags.into_iter().collect())
        },
    )
}

proptest! {
    #[test]
    fn encoded_bodies_decode_to_the_same_content_as_codec_1((body, tags) in tagged_body()) {
        let bytes = native::encode_compact(&body, &tags);
        prop_assert_eq!(native::decode_compact(&bytes, &tags), Ok(body.clone()));
        prop_assert_eq!(native::decode_compact(&bytes, &tags), native::decode_body(&native::encode(&body)));
    }

    #[test]
    fn every_truncation_fails_in_the_stage_it_cuts((body, tags) in tagged_body()) {
        let bytes = native::encode_compact(&body, &tags);
        assert_truncations_fail_in_their_stage(&NativeCompact, &tags, &bytes, &StageEnds::compact(&body, &tags));
    }

    #[test]
    fn trailing_bytes_fail_the_controls_only(
        (body, tags) in tagged_body(), extra in prop::collection::vec(any::<u8>(), 1..8),
    ) {
        let mut bytes = native::encode_compact(&body, &tags);
        bytes.extend_from_slice(&extra);
        let d = NativeCompact.decode(&bytes, &tags).unwrap();
        prop_assert!(d.reads.is_ok() && d.writes.is_ok());
        prop_assert!(is_invalid(&d.controls));
    }

    #[test]
    fn random_bytes_never_panic_and_what_decodes_re_encodes_identically(
        bytes in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        let tags = common_tags();
        if let Ok(body) = native::decode_compact(&bytes, &tags) {
            prop_assert_eq!(native::encode_compact(&body, &tags), bytes);
        }
    }

    #[test]
    fn a_damaged_body_that_still_decodes_re_encodes_identically(
        (body, tags) in tagged_body(), at in any::<prop::sample::Index>(), byte in any::<u8>(),
    ) {
        let mut bytes = native::encode_compact(&body, &tags);
        let i = at.index(bytes.len());
        bytes[i] = byte;
        if let Ok(d) = NativeCompact.decode(&bytes, &tags) {
            if fully_ok(&d) {
                prop_assert_eq!(native::encode_compact(&native::decode_compact(&bytes, &tags).unwrap(), &tags), bytes);
            }
        }
    }
}

#[test]
fn the_layout_is_the_one_format_md_documents() {
    let (s, t) = (sid(0x11), sid(0x33));
    let body = Body {
        version: 7,
        check_reads_only: true,
        reads: vec![Read { stream: t, key: b"r".to_vec() }],
        writes: vec![
            BodyWrite { stream: s, key: b"a".to_vec(), op: Op::Put(b"xy".to_vec().into()) },
            BodyWrite { stream: s, key: b"b".to_vec(), op: Op::Delete },
            BodyWrite { stream: s, key: b"c".to_vec(), op: Op::Increment(-2) },
            BodyWrite { stream: s, key: b"d".to_vec(), op: Op::Append(vec![b'z'; 200].into()) },
        ],
        controls: vec![Control {
            op: ControlOp::GrantWriteRole,
            stream: s,
            key: None,
            account: Some(Address([0x22; 20])),
        }],
    };
    // One tag, s (index 0); t is not a tag, so it is index 1 and then in full.
    let expected = hex(&format!(
        "08 01
         01 01 {t} 01 72
         04
         01 00 01 61 02
         02 00 01 62
         03 00 01 63 fffffffffffffffe
         04 00 01 64 c801
         7879 {z}
         01 20 00 {a}",
        t = "33".repeat(32),
        z = "7a".repeat(200),
        a = "22".repeat(20)
    ));
    assert_eq!(native::encode_compact(&body, &[s]), expected);
    assert_eq!(native::decode_compact(&expected, &[s]), Ok(body));
    assert_eq!(NativeCompact.id(), NATIVE_COMPACT);
}

#[test]
fn no_version_check_takes_one_byte_and_every_version_round_trips() {
    for version in [u64::MAX, 0, 1, 1 << 16, u64::MAX - 1] {
        let body = Body { version, ..Body::default() };
        let bytes = native::encode_compact(&body, &[]);
        assert_eq!(native::decode_compact(&bytes, &[]), Ok(body));
    }
    assert_eq!(native::encode_compact(&Body { version: u64::MAX, ..Body::default() }, &[]), [0, 0, 0, 0, 0]);
}

#[test]
fn values_are_contiguous_raw_bytes_referenced_in_place() {
    let s = sid(1);
    let body = Body {
        writes: vec![
            BodyWrite { stream: s, key: b"a".to_vec(), op: Op::Put(b"one".to_vec().into()) },
            BodyWrite { stream: s, key: b"b".to_vec(), op: Op::Delete },
            BodyWrite { stream: s, key: b"c".to_vec(), op: Op::Append(b"two".to_vec().into()) },
        ],
        ..Body::default()
    };
    let bytes = native::encode_compact(&body, &[s]);
    let writes = NativeCompact.decode(&bytes, &[s]).unwrap().writes.unwrap();
    // The values end the write set, just before the 1-byte control count.
    let values_at = bytes.len() - 1 - 6;
    assert_eq!(&bytes[values_at..bytes.len() - 1], b"onetwo");
    assert_eq!(writes[0].op, WriteOp::Put(ValueRef { offset: values_at, len: 3 }));
    assert_eq!(writes[2].op, WriteOp::Append(ValueRef { offset: values_at + 3, len: 3 }));
}

/// A body with one read of `stream_ref` (raw bytes) and key `k`, as bytes.
fn one_read(stream_ref: &[u8]) -> Vec<u8> {
    [&[0, 0, 1][..], stream_ref, &[1, b'k', 0, 0]].concat()
}

#[test]
fn stream_indexes_must_be_in_range_and_a_tag_is_never_written_in_full() {
    let tags = [sid(1), sid(2)];
    for (i, stream) in tags.iter().enumerate() {
        let d = NativeCompact.decode(&one_read(&[i as u8]), &tags).unwrap();
        assert_eq!(d.reads.unwrap()[0].stream, *stream);
    }
    // Index 2 = a stream outside the tags follows in full.
    let outside = NativeCompact.decode(&one_read(&[&[2][..], &[9; 32]].concat()), &tags).unwrap();
    assert_eq!(outside.reads.unwrap()[0].stream, sid(9));
    // A tag written out in full has a shorter spelling: refused.
    let in_full = NativeCompact.decode(&one_read(&[&[2][..], &[1; 32]].concat()), &tags).unwrap();
    assert!(is_invalid(&in_full.reads));
    // Past the escape index.
    for index in [3u8, 0x7f] {
        let d = NativeCompact.decode(&one_read(&[index]), &tags).unwrap();
        assert!(is_invalid(&d.reads), "index {index}");
    }
    // Without tags, only the escape (index 0) exists.
    assert!(is_invalid(&NativeCompact.decode(&one_read(&[1]), &[]).unwrap().reads));
    assert!(NativeCompact.decode(&one_read(&[&[0][..], &[9; 32]].concat()), &[]).unwrap().reads.is_ok());
}

#[test]
fn non_minimal_varints_are_refused_in_every_field() {
    let s = sid(1);
    let body = Body {
        version: 5,
        reads: vec![Read { stream: s, key: b"r".to_vec() }],
        writes: vec![BodyWrite { stream: s, key: b"w".to_vec(), op: Op::Put(b"v".to_vec().into()) }],
        ..Body::default()
    };
    let bytes = native::encode_compact(&body, &[s]);
    assert_eq!(bytes, [6, 0, 1, 0, 1, b'r', 1, 1, 0, 1, b'w', 1, b'v', 0]);
    // Each varint, spelled with one byte too many: `n | 0x80, 0x00`.
    for at in [0, 2, 3, 4, 6, 8, 9, 11, 13] {
        let padded = [&bytes[..at], &[bytes[at] | 0x80, 0x00], &bytes[at + 1..]].concat();
        let refused = match NativeCompact.decode(&padded, &[s]) {
            Err(e) => matches!(e, ParseError::Invalid { .. }),
            Ok(d) => is_invalid(&d.reads) || is_invalid(&d.writes) || is_invalid(&d.controls),
        };
        assert!(refused, "varint at {at} padded");
    }
}

#[test]
fn counts_above_the_limit_are_list_too_long_and_lengths_above_theirs_invalid() {
    let mut too_many = vec![0, 0];
    logkv_runtime::varint::put(&mut too_many, 65_537);
    assert_eq!(NativeCompact.decode(&too_many, &[]).unwrap().reads, Err(ParseError::ListTooLong));

    let mut long_key = vec![0, 0, 1, 0];
    logkv_runtime::varint::put(&mut long_key, 65_536);
    assert!(is_invalid(&NativeCompact.decode(&long_key, &[]).unwrap().reads));

    let mut big_value = vec![0, 0, 0, 1, 1, 0, 1, b'k'];
    logkv_runtime::varint::put(&mut big_value, (16 << 20) + 1);
    let d = NativeCompact.decode(&big_value, &[]).unwrap();
    assert!(d.reads.is_ok() && is_invalid(&d.writes));

    // A varint wider than 64 bits.
    let d = NativeCompact.decode(&[0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02], &[]);
    assert!(is_invalid(&d.unwrap().reads));
}

#[test]
fn codec_1_ignores_the_tags_and_codec_2_needs_them() {
    let s = sid(1);
    let body = Body {
        writes: vec![BodyWrite { stream: s, key: b"k".to_vec(), op: Op::Put(b"v".to_vec().into()) }],
        ..Body::default()
    };
    let fixed = native::encode(&body);
    assert_eq!(Native.decode(&fixed, &[s]), Native.decode(&fixed, &[]));
    let compact = native::encode_compact(&body, &[s]);
    // The same bytes under other tags name another stream.
    let other = native::decode_compact(&compact, &[sid(2)]).unwrap();
    assert_eq!(other.writes[0].stream, sid(2));
}

#[test]
fn a_set_of_a_16_byte_key_and_a_100_byte_value_takes_125_bytes() {
    let s = sid(7);
    let body = Body {
        version: u64::MAX,
        check_reads_only: true,
        reads: vec![],
        writes: vec![BodyWrite { stream: s, key: vec![b'k'; 16], op: Op::Put(vec![b'v'; 100].into()) }],
        controls: vec![],
    };
    let tx = native::compact_tx(&body, body.tags());
    assert_eq!(tx.tags, vec![s]);
    // version 1, flags 1, read count 1, write count 1,
    // write header (op 1, stream index 1, key length 1, key 16, value length 1) 20,
    // value 100, control count 1.
    assert_eq!(tx.body.len(), 125);
    assert_eq!(native::encode(&body).len(), 177, "codec 1, for comparison");
}

proptest! {
    /// The pipeline writes planned bodies straight into the entry
    /// (`CompactTx`); the entry must be byte for byte the one built from
    /// bodies encoded on their own.
    #[test]
    fn a_body_written_into_its_entry_is_the_body_encoded_apart(bodies in proptest::collection::vec(native_body(), 1..4)) {
        use logkv_runtime::envelope::{Entry, Protocol, TxPart};
        let sender = Address([7; 20]);
        let planned: Vec<_> = bodies.iter().map(|b| native::CompactTx::new(b, b.tags())).collect();
        let apart: Vec<_> = bodies
            .iter()
            .map(|b| {
                let tags: Vec<StreamId> = b.tags().into_iter().collect::<BTreeSet<_>>().into_iter().collect();
                TxPart { codec: NATIVE_COMPACT, body: native::encode_compact(b, &tags), tags }
            })
            .collect();
        let written = Entry { sender, nonce: 9, txs: planned }.encode_unsigned(Protocol::V2);
        prop_assert_eq!(written, Entry { sender, nonce: 9, txs: apart }.encode_unsigned(Protocol::V2));
    }
}
