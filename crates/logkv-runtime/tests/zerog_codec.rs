//! The 0G body codec: round trips, staged failures, and every malformed
//! input a `ParseError`, never a panic. Byte compatibility with the SDK is
//! proven by `zerog_golden.rs`.

mod codec_support;

use codec_support::{assert_truncations_fail_in_their_stage, fully_ok, zerog_body, StageEnds};
use logkv_runtime::codec::zerog::{self, Body, BodyWrite, ZeroG};
use logkv_runtime::codec::{
    Codec, Control, ControlOp, ParseError, Read, ValueRef, WriteOp, MAX_KEY_BYTES, MAX_LIST_LEN,
    MAX_VALUE_BYTES,
};
use logkv_runtime::types::{Address, StreamId};
use proptest::prelude::*;

const S: StreamId = StreamId([0x11; 32]);

fn write(key: &[u8], value: &[u8]) -> BodyWrite {
    BodyWrite { stream: S, key: key.to_vec(), value: value.to_vec() }
}

fn read(key: &[u8]) -> Read {
    Read { stream: S, key: key.to_vec() }
}

fn is_invalid<T>(r: &Result<T, ParseError>) -> bool {
    matches!(r, Err(ParseError::Invalid { .. }))
}

proptest! {
    #[test]
    fn encoded_bodies_decode_to_the_same_content(body in zerog_body()) {
        prop_assert_eq!(body.check(), Ok(()));
        let bytes = zerog::encode(&body);
        prop_assert_eq!(zerog::decode_body(&bytes), Ok(body.clone()));
        let writes = ZeroG.decode(&bytes, &[]).unwrap().writes.unwrap();
        for (w, d) in body.writes.iter().zip(&writes) {
            match d.op {
                WriteOp::Delete => prop_assert!(w.value.is_empty()),
                WriteOp::Put(v) => prop_assert_eq!(v.get(&bytes), &w.value[..]),
                other => prop_assert!(false, "0G bodies only put and delete, got {:?}", other),
            }
        }
    }

    #[test]
    fn every_truncation_fails_in_the_stage_it_cuts(body in zerog_body()) {
        assert_truncations_fail_in_their_stage(&ZeroG, &[], &zerog::encode(&body), &StageEnds::zerog(&body));
    }

    #[test]
    fn trailing_bytes_fail_the_controls_only(body in zerog_body(), extra in prop::collection::vec(any::<u8>(), 1..8)) {
        let mut bytes = zerog::encode(&body);
        bytes.extend_from_slice(&extra);
        let d = ZeroG.decode(&bytes, &[]).unwrap();
        prop_assert!(d.reads.is_ok() && d.writes.is_ok());
        prop_assert!(is_invalid(&d.controls));
    }

    #[test]
    fn random_bytes_never_panic_and_what_decodes_re_encodes_identically(
        bytes in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        if let Ok(body) = zerog::decode_body(&bytes) {
            prop_assert_eq!(zerog::encode(&body), bytes);
        }
    }

    #[test]
    fn a_damaged_body_that_still_decodes_re_encodes_identically(
        body in zerog_body(), at in any::<prop::sample::Index>(), byte in any::<u8>(),
    ) {
        let mut bytes = zerog::encode(&body);
        let i = at.index(bytes.len());
        bytes[i] = byte;
        if let Ok(d) = ZeroG.decode(&bytes, &[]) {
            if fully_ok(&d) {
                prop_assert_eq!(zerog::encode(&zerog::decode_body(&bytes).unwrap()), bytes);
            }
        }
    }

    #[test]
    fn check_passes_exactly_the_bodies_that_survive_a_round_trip(
        body in zerog_body(),
        empty_key in any::<bool>(),
        wrong_control in any::<Option<(prop::sample::Index, bool, bool)>>(),
    ) {
        let mut body = body;
        if empty_key {
            body.reads.push(read(b""));
        }
        if let (Some((i, key, account)), false) = (wrong_control, body.controls.is_empty()) {
            let n = body.controls.len();
            let c = &mut body.controls[i.index(n)];
            c.key = key.then(|| b"k".to_vec());
            c.account = account.then_some(Address([7; 20]));
        }
        let survives = zerog::decode_body(&zerog::encode(&body)).as_ref() == Ok(&body);
        prop_assert_eq!(body.check().is_ok(), survives);
    }
}

#[test]
fn a_version_alone_decodes_the_version_and_fails_the_reads() {
    let d = ZeroG.decode(&7u64.to_be_bytes(), &[]).unwrap();
    assert_eq!(d.version, 7);
    assert!(!d.check_reads_only);
    assert!(is_invalid(&d.reads) && is_invalid(&d.writes) && is_invalid(&d.controls));
    assert!(ZeroG.decode(&[0; 7], &[]).is_err());
}

#[test]
fn an_empty_key_fails_the_stage_that_holds_it() {
    let d = ZeroG.decode(&zerog::encode(&Body { reads: vec![read(b"")], ..Body::default() }), &[]).unwrap();
    assert!(is_invalid(&d.reads) && is_invalid(&d.writes));

    let d = ZeroG
        .decode(&zerog::encode(&Body { writes: vec![write(b"", b"v")], ..Body::default() }), &[])
        .unwrap();
    assert!(d.reads.is_ok() && is_invalid(&d.writes) && is_invalid(&d.controls));

    let special = Control { op: ControlOp::SetKeyToSpecial, stream: S, key: Some(vec![]), account: None };
    let d = ZeroG.decode(&zerog::encode(&Body { controls: vec![special], ..Body::default() }), &[]).unwrap();
    assert!(d.reads.is_ok() && d.writes.is_ok() && is_invalid(&d.controls));
}

#[test]
fn keys_of_max_len_decode_and_one_byte_more_is_invalid() {
    let longest = vec![b'k'; MAX_KEY_BYTES];
    let body = Body { reads: vec![read(&longest)], writes: vec![write(&longest, b"v")], ..Body::default() };
    assert_eq!(zerog::decode_body(&zerog::encode(&body)), Ok(body));

    let too_long = vec![b'k'; MAX_KEY_BYTES + 1];
    let d =
        ZeroG.decode(&zerog::encode(&Body { writes: vec![write(&too_long, b"v")], ..Body::default() }), &[]);
    assert!(is_invalid(&d.unwrap().writes));
    let body = Body { writes: vec![write(&too_long, b"v")], ..Body::default() };
    assert!(body.check().is_err());
}

#[test]
fn values_of_max_len_decode_and_one_byte_more_is_invalid() {
    let body = Body { writes: vec![write(b"k", &vec![9; MAX_VALUE_BYTES])], ..Body::default() };
    assert_eq!(zerog::decode_body(&zerog::encode(&body)), Ok(body));

    let body = Body { writes: vec![write(b"k", &vec![9; MAX_VALUE_BYTES + 1])], ..Body::default() };
    assert!(body.check().is_err());
    let d = ZeroG.decode(&zerog::encode(&body), &[]).unwrap();
    assert!(d.reads.is_ok() && is_invalid(&d.writes));
}

/// The start of a body with one write `k` whose header says `data_len`,
/// followed by `data` and nothing else.
fn one_write_with_data_len(data_len: u64, data: &[u8]) -> Vec<u8> {
    let mut b = zerog::encode(&Body { writes: vec![write(b"k", b"")], ..Body::default() });
    b.truncate(b.len() - 4 - 8); // controls count, data_len
    b.extend_from_slice(&data_len.to_be_bytes());
    b.extend_from_slice(data);
    b
}

#[test]
fn a_data_len_that_overflows_or_runs_past_the_body_is_invalid() {
    let d = ZeroG.decode(&one_write_with_data_len(3, b"abc"), &[]).unwrap();
    // version 8, reads 4, writes count 4, stream 32, key_len 3, key 1, data_len 8
    let value = ValueRef { offset: 60, len: 3 };
    assert_eq!(d.writes.unwrap()[0].op, WriteOp::Put(value));
    for len in [4, MAX_VALUE_BYTES as u64, u64::MAX, u64::MAX - 2, 1 << 63] {
        let d = ZeroG.decode(&one_write_with_data_len(len, b"abc"), &[]).unwrap();
        assert!(d.reads.is_ok() && is_invalid(&d.writes), "data_len {len}");
    }
}

#[test]
fn every_byte_that_is_no_control_op_is_invalid() {
    let renounce = Control { op: ControlOp::RenounceWriteRole, stream: S, key: None, account: None };
    let mut bytes = zerog::encode(&Body { controls: vec![renounce], ..Body::default() });
    let op_at = bytes.len() - 33;
    for b in 0..=u8::MAX {
        bytes[op_at] = b;
        let d = ZeroG.decode(&bytes, &[]).unwrap();
        match ControlOp::from_byte(b) {
            // Ops without fields decode; the others run out of bytes.
            Some(op) if !op.has_key() && !op.has_account() => assert!(d.controls.is_ok()),
            _ => assert!(is_invalid(&d.controls), "op byte 0x{b:02x}"),
        }
    }
}

/// A body whose list at `stage` (0 reads, 1 writes, 2 controls) claims
/// `count` items, with the lists before it empty and nothing after.
fn list_claiming(stage: usize, count: u32) -> Vec<u8> {
    let mut b = 0u64.to_be_bytes().to_vec();
    (0..stage).for_each(|_| b.extend_from_slice(&0u32.to_be_bytes()));
    b.extend_from_slice(&count.to_be_bytes());
    b
}

#[test]
fn a_list_longer_than_max_is_list_too_long_in_its_stage() {
    for count in [MAX_LIST_LEN as u32 + 1, u32::MAX] {
        let d = ZeroG.decode(&list_claiming(0, count), &[]).unwrap();
        assert_eq!(d.reads, Err(ParseError::ListTooLong));
        assert_eq!(d.controls, Err(ParseError::ListTooLong));
        let d = ZeroG.decode(&list_claiming(1, count), &[]).unwrap();
        assert_eq!((d.reads, d.writes), (Ok(vec![]), Err(ParseError::ListTooLong)));
        let d = ZeroG.decode(&list_claiming(2, count), &[]).unwrap();
        assert_eq!((d.writes, d.controls), (Ok(vec![]), Err(ParseError::ListTooLong)));
    }
    // A count within the limit over too few bytes is plain truncation.
    let d = ZeroG.decode(&list_claiming(0, MAX_LIST_LEN as u32), &[]).unwrap();
    assert!(is_invalid(&d.reads));
}

#[test]
fn lists_of_exactly_max_len_decode() {
    let body = Body {
        reads: vec![read(b"r"); MAX_LIST_LEN],
        writes: vec![write(b"w", b""); MAX_LIST_LEN],
        controls: vec![
            Control { op: ControlOp::RenounceAdminRole, stream: S, key: None, account: None };
            MAX_LIST_LEN
        ],
        ..Body::default()
    };
    assert_eq!(zerog::decode_body(&zerog::encode(&body)), Ok(body));
}

#[test]
fn parse_errors_display_zerog_result_strings() {
    assert_eq!(ParseError::invalid("x").to_string(), "Invalid stream data");
    assert_eq!(ParseError::ListTooLong.to_string(), "Stream read/write/access_control list too long");
}
