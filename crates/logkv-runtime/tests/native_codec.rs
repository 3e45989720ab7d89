//! The native body codec: the documented layout, round trips, staged
//! failures, and every malformed input a `ParseError`, never a panic.

mod codec_support;

use codec_support::{assert_truncations_fail_in_their_stage, fully_ok, native_body, StageEnds};
use logkv_runtime::codec::native::{self, Body, BodyWrite, Native, Op};
use logkv_runtime::codec::{
    zerog, Codec, Control, ControlOp, ExpireCond, NewExpiry, ParseError, PutCond, Read, ValueRef, WriteOp,
    MAX_LIST_LEN, MAX_VALUE_BYTES, NATIVE,
};
use logkv_runtime::types::{Address, StreamId};
use proptest::prelude::*;

const S: StreamId = StreamId([0x11; 32]);

fn write(key: &[u8], op: Op) -> BodyWrite {
    BodyWrite { stream: S, key: key.to_vec(), op }
}

fn is_invalid<T>(r: &Result<T, ParseError>) -> bool {
    matches!(r, Err(ParseError::Invalid { .. }))
}

fn hex(s: &str) -> Vec<u8> {
    let digits: String = s.split_whitespace().collect();
    (0..digits.len()).step_by(2).map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap()).collect()
}

proptest! {
    #[test]
    fn encoded_bodies_decode_to_the_same_content(body in native_body()) {
        prop_assert_eq!(body.check(), Ok(()));
        prop_assert_eq!(native::decode_body(&native::encode(&body)), Ok(body));
    }

    #[test]
    fn every_truncation_fails_in_the_stage_it_cuts(body in native_body()) {
        assert_truncations_fail_in_their_stage(&Native, &[], &native::encode(&body), &StageEnds::native(&body));
    }

    #[test]
    fn trailing_bytes_fail_the_controls_only(body in native_body(), extra in prop::collection::vec(any::<u8>(), 1..8)) {
        let mut bytes = native::encode(&body);
        bytes.extend_from_slice(&extra);
        let d = Native.decode(&bytes, &[]).unwrap();
        prop_assert!(d.reads.is_ok() && d.writes.is_ok());
        prop_assert!(is_invalid(&d.controls));
    }

    #[test]
    fn random_bytes_never_panic_and_what_decodes_re_encodes_identically(
        bytes in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        if let Ok(body) = native::decode_body(&bytes) {
            prop_assert_eq!(native::encode(&body), bytes);
        }
    }

    #[test]
    fn a_damaged_body_that_still_decodes_re_encodes_identically(
        body in native_body(), at in any::<prop::sample::Index>(), byte in any::<u8>(),
    ) {
        let mut bytes = native::encode(&body);
        let i = at.index(bytes.len());
        bytes[i] = byte;
        if let Ok(d) = Native.decode(&bytes, &[]) {
            if fully_ok(&d) {
                prop_assert_eq!(native::encode(&native::decode_body(&bytes).unwrap()), bytes);
            }
        }
    }

    #[test]
    fn check_passes_exactly_the_bodies_that_survive_a_round_trip(
        body in native_body(),
        empty_key in any::<bool>(),
        wrong_control in any::<Option<(prop::sample::Index, bool, bool)>>(),
    ) {
        let mut body = body;
        if empty_key {
            body.writes.push(write(b"", Op::Delete));
        }
        if let (Some((i, key, account)), false) = (wrong_control, body.controls.is_empty()) {
            let n = body.controls.len();
            let c = &mut body.controls[i.index(n)];
            c.key = key.then(|| b"k".to_vec());
            c.account = account.then_some(Address([7; 20]));
        }
        let survives = native::decode_body(&native::encode(&body)).as_ref() == Ok(&body);
        prop_assert_eq!(body.check().is_ok(), survives);
    }
}

#[test]
fn the_layout_is_the_one_format_md_documents() {
    let body = Body {
        version: 7,
        check_reads_only: true,
        reads: vec![Read { stream: S, key: b"r".to_vec() }],
        writes: vec![
            write(b"a", Op::Put(b"xy".to_vec().into())),
            write(b"b", Op::Delete),
            write(b"c", Op::Increment(-2)),
            write(b"d", Op::Append(b"z".to_vec().into())),
            write(b"e", Op::PutIfAbsent(vec![].into())),
            write(b"f", Op::PutIfPresent(b"q".to_vec().into())),
        ],
        controls: vec![Control {
            op: ControlOp::GrantWriteRole,
            stream: S,
            key: None,
            account: Some(Address([0x22; 20])),
        }],
    };
    let s = "11".repeat(32);
    let expected = hex(&format!(
        "0000000000000007 01
         00000001 {s} 000001 72
         00000006
         01 {s} 000001 61 00000002
         02 {s} 000001 62
         03 {s} 000001 63 fffffffffffffffe
         04 {s} 000001 64 00000001
         05 {s} 000001 65 00000000
         06 {s} 000001 66 00000001
         7879 7a 71
         00000001 20 {s} {a}",
        a = "22".repeat(20)
    ));
    assert_eq!(native::encode(&body), expected);
    assert_eq!(native::decode_body(&expected), Ok(body));
    assert_eq!(Native.id(), NATIVE);
}

#[test]
fn values_are_referenced_in_place_and_an_empty_put_is_a_value() {
    let body = Body {
        writes: vec![
            write(b"a", Op::Put(vec![].into())),
            write(b"b", Op::Delete),
            write(b"c", Op::Append(b"xyz".to_vec().into())),
        ],
        ..Body::default()
    };
    let bytes = native::encode(&body);
    let writes = Native.decode(&bytes, &[]).unwrap().writes.unwrap();
    assert_eq!(writes[0].op, WriteOp::Put(ValueRef { offset: bytes.len() - 4 - 3, len: 0 }));
    assert_eq!(writes[1].op, WriteOp::Delete);
    match writes[2].op {
        WriteOp::Append(v) => assert_eq!(v.get(&bytes), b"xyz"),
        other => panic!("expected an append, got {other:?}"),
    }
}

#[test]
fn flag_bit_0_checks_the_reads_only_and_other_bits_are_invalid() {
    let mut bytes = native::encode(&Body::default());
    for flags in 0..=u8::MAX {
        bytes[8] = flags;
        match flags {
            0 | 1 => assert_eq!(Native.decode(&bytes, &[]).unwrap().check_reads_only, flags == 1),
            _ => assert!(Native.decode(&bytes, &[]).is_err(), "flags 0x{flags:02x}"),
        }
    }
}

#[test]
fn every_byte_that_is_no_write_op_fails_the_writes_only() {
    let mut bytes = native::encode(&Body { writes: vec![write(b"k", Op::Delete)], ..Body::default() });
    let op_at = 9 + 4 + 4;
    let op = |b: &u8| (1..=10).contains(b) || logkv_runtime::collection::CollOp::of_byte(*b).is_some();
    for b in (0..=u8::MAX).filter(|b| !op(b)) {
        bytes[op_at] = b;
        let d = Native.decode(&bytes, &[]).unwrap();
        assert!(d.reads.is_ok() && is_invalid(&d.writes) && is_invalid(&d.controls), "op byte 0x{b:02x}");
    }
}

#[test]
fn the_expiry_ops_are_spelled_as_documented() {
    let at = 1_700_000_000_123u64;
    let body = Body {
        version: u64::MAX,
        writes: vec![
            write(
                b"k",
                Op::PutExpiring {
                    value: b"v".to_vec().into(),
                    cond: PutCond::IfPresent,
                    expiry: NewExpiry::At(at),
                },
            ),
            write(b"k", Op::Expire { cond: ExpireCond::IfLater, at: Some(at) }),
            write(b"k", Op::Expire { cond: ExpireCond::Always, at: None }),
        ],
        ..Body::default()
    };
    let t = at.to_be_bytes().iter().map(|b| format!("{b:02x}")).collect::<String>();
    let s = "11".repeat(32);
    let want = hex(&format!(
        "ffffffffffffffff 00 00000000 00000003 \
         09 {s} 000001 6b 0a {t} 00000001 \
         0a {s} 000001 6b 0b {t} \
         0a {s} 000001 6b 00 \
         76 00000000"
    ));
    assert_eq!(native::encode(&body), want);
    assert_eq!(native::decode_body(&want), Ok(body));
    // Mode bytes without a meaning: a condition or expiry kind past the
    // table, high bits, and removing an expiry under a condition.
    for (op, mode) in [(0x09, 0x03), (0x09, 0x0c), (0x09, 0x10), (0x0a, 0x06), (0x0a, 0x10), (0x0a, 0x01)] {
        let body = hex(&format!(
            "ffffffffffffffff 00 00000000 00000001 {op:02x} {s} 000001 6b {mode:02x} {t} 00000000 00000000"
        ));
        let d = Native.decode(&body, &[]).unwrap();
        assert!(d.reads.is_ok() && is_invalid(&d.writes), "op 0x{op:02x} mode 0x{mode:02x}");
    }
}

#[test]
fn a_value_len_above_max_is_invalid_and_max_decodes() {
    let body =
        Body { writes: vec![write(b"k", Op::Append(vec![1; MAX_VALUE_BYTES].into()))], ..Body::default() };
    assert_eq!(native::decode_body(&native::encode(&body)), Ok(body));

    let body =
        Body { writes: vec![write(b"k", Op::Put(vec![1; MAX_VALUE_BYTES + 1].into()))], ..Body::default() };
    assert!(body.check().is_err());
    let d = Native.decode(&native::encode(&body), &[]).unwrap();
    assert!(d.reads.is_ok() && is_invalid(&d.writes));
}

#[test]
fn a_value_len_that_runs_past_the_body_is_invalid() {
    let mut bytes = native::encode(&Body {
        writes: vec![write(b"k", Op::Put(b"abc".to_vec().into()))],
        ..Body::default()
    });
    let len_at = 9 + 4 + 4 + 1 + 32 + 3 + 1;
    bytes[len_at..len_at + 4].copy_from_slice(&8u32.to_be_bytes()); // 3 value bytes + 4 of the controls count remain
    let d = Native.decode(&bytes, &[]).unwrap();
    assert!(d.reads.is_ok() && is_invalid(&d.writes));
}

#[test]
fn increments_carry_any_i64() {
    for n in [i64::MIN, -1, 0, 1, i64::MAX] {
        let body = Body { writes: vec![write(b"n", Op::Increment(n))], ..Body::default() };
        assert_eq!(native::decode_body(&native::encode(&body)), Ok(body));
    }
}

#[test]
fn a_write_list_longer_than_max_is_list_too_long() {
    let mut bytes = native::encode(&Body::default());
    let count_at = 9 + 4;
    bytes[count_at..count_at + 4].copy_from_slice(&(MAX_LIST_LEN as u32 + 1).to_be_bytes());
    let d = Native.decode(&bytes, &[]).unwrap();
    assert_eq!((d.reads, d.writes), (Ok(vec![]), Err(ParseError::ListTooLong)));
}

#[test]
fn reads_and_controls_are_the_zerog_bytes() {
    let reads = vec![Read { stream: S, key: b"r".to_vec() }];
    let controls = vec![Control {
        op: ControlOp::RenounceSpecialWriteRole,
        stream: S,
        key: Some(b"k".to_vec()),
        account: None,
    }];
    let n = native::encode(&Body { reads: reads.clone(), controls: controls.clone(), ..Body::default() });
    let z = zerog::encode(&zerog::Body { reads, controls, ..zerog::Body::default() });
    // The native body is the 0G one with the flags byte after the version.
    assert_eq!([&z[..8], &[0], &z[8..]].concat(), n);
}

/// `Flush` (0x0B) carries nothing but its key, which must be `*`: in both
/// spellings and the JSON form it round-trips, and any other key is
/// refused by the decoder and by `Body::check`.
#[test]
fn the_flush_op_is_spelled_as_documented() {
    use logkv_runtime::codec::{json, FLUSH_KEY, NATIVE_COMPACT};
    let body = Body { version: u64::MAX, writes: vec![write(FLUSH_KEY, Op::Flush)], ..Body::default() };
    let s = "11".repeat(32);
    let want = hex(&format!("ffffffffffffffff 00 00000000 00000001 0b {s} 000001 2a 00000000"));
    assert_eq!(native::encode(&body), want);
    assert_eq!(native::decode_body(&want), Ok(body.clone()));
    assert_eq!(
        Native.decode(&want, &[]).unwrap().writes,
        Ok(vec![logkv_runtime::codec::Write { stream: S, key: FLUSH_KEY.to_vec(), op: WriteOp::Flush }])
    );
    let compact = native::encode_compact(&body, &[S]);
    assert_eq!(native::decode_compact(&compact, &[S]), Ok(body.clone()));
    let doc = json::body_doc(NATIVE_COMPACT, &compact, &[S]).unwrap();
    assert_eq!(doc["writes"][0]["op"], "Flush");
    assert_eq!(json::body_bytes(NATIVE_COMPACT, doc, &[S], "body").unwrap(), compact);

    let other = Body { writes: vec![write(b"k", Op::Flush)], ..body };
    assert!(other.check().is_err());
    let d = Native.decode(&native::encode(&other), &[]).unwrap();
    assert!(d.reads.is_ok() && is_invalid(&d.writes));
}
