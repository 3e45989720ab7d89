//! Shared by the codec tests: proptest strategies for bodies, and the check
//! that a truncated body fails in the stage that was cut.
// Each test binary uses only part of this module.
#![allow(dead_code)]

use logkv_runtime::codec::{
    native, zerog, Codec, Control, ControlOp, Decoded, ExpireCond, NewExpiry, PutCond, Read,
};
use logkv_runtime::types::{Address, StreamId};
use logkv_runtime::varint;
use proptest::prelude::*;

/// Mostly a few streams, so that streams repeat; sometimes any.
pub fn stream() -> impl Strategy<Value = StreamId> {
    prop_oneof![3 => (0u8..3).prop_map(|b| StreamId([b; 32])), 1 => any::<[u8; 32]>().prop_map(StreamId)]
}

pub fn key() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 1..24)
}

pub fn value() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..48)
}

pub fn version() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0), Just(u64::MAX), any::<u64>()]
}

pub fn read() -> impl Strategy<Value = Read> {
    (stream(), key()).prop_map(|(stream, key)| Read { stream, key })
}

/// Every control op, in byte order.
pub fn all_ops() -> Vec<ControlOp> {
    (0..=u8::MAX).filter_map(ControlOp::from_byte).collect()
}

/// A control with exactly the fields its op has.
pub fn control() -> impl Strategy<Value = Control> {
    (prop::sample::select(all_ops()), stream(), key(), any::<[u8; 20]>()).prop_map(|(op, stream, key, a)| {
        Control {
            op,
            stream,
            key: op.has_key().then_some(key),
            account: op.has_account().then_some(Address(a)),
        }
    })
}

/// Short lists, including empty ones.
fn list<S: Strategy>(items: S) -> impl Strategy<Value = Vec<S::Value>> {
    prop::collection::vec(items, 0..5)
}

pub fn zerog_body() -> impl Strategy<Value = zerog::Body> {
    let write =
        (stream(), key(), value()).prop_map(|(stream, key, value)| zerog::BodyWrite { stream, key, value });
    (version(), list(read()), list(write), list(control()))
        .prop_map(|(version, reads, writes, controls)| zerog::Body { version, reads, writes, controls })
}

pub fn native_op() -> impl Strategy<Value = native::Op> {
    use native::Op;
    prop_oneof![
        value().prop_map(|v| Op::Put(v.into())),
        Just(Op::Delete),
        any::<i64>().prop_map(Op::Increment),
        value().prop_map(|v| Op::Append(v.into())),
        value().prop_map(|v| Op::PutIfAbsent(v.into())),
        value().prop_map(|v| Op::PutIfPresent(v.into())),
        Just(Op::DeleteIfPresent),
        (value(), put_cond(), new_expiry()).prop_map(|(v, cond, expiry)| Op::PutExpiring {
            value: v.into(),
            cond,
            expiry
        }),
        (expire_cond(), any::<u64>()).prop_map(|(cond, at)| Op::Expire { cond, at: Some(at) }),
        Just(Op::Expire { cond: ExpireCond::Always, at: None }),
    ]
}

fn put_cond() -> impl Strategy<Value = PutCond> {
    prop_oneof![Just(PutCond::Always), Just(PutCond::IfAbsent), Just(PutCond::IfPresent)]
}

fn new_expiry() -> impl Strategy<Value = NewExpiry> {
    prop_oneof![Just(NewExpiry::Never), Just(NewExpiry::Keep), any::<u64>().prop_map(NewExpiry::At)]
}

fn expire_cond() -> impl Strategy<Value = ExpireCond> {
    use ExpireCond::*;
    prop_oneof![
        Just(Always),
        Just(IfNone),
        Just(IfSome),
        Just(IfLater),
        Just(IfEarlier),
        Just(IfSomeAndEarlier)
    ]
}

pub fn native_body() -> impl Strategy<Value = native::Body> {
    let write =
        (stream(), key(), native_op()).prop_map(|(stream, key, op)| native::BodyWrite { stream, key, op });
    (version(), any::<bool>(), list(read()), list(write), list(control())).prop_map(
        |(version, check_reads_only, reads, writes, controls)| native::Body {
            version,
            check_reads_only,
            reads,
            writes,
            controls,
        },
    )
}

/// Where the stages of an encoded body end: the header (version, and
/// flags in the native format), the reads, the writes with their values.
pub struct StageEnds {
    pub header: usize,
    pub reads: usize,
    pub writes: usize,
}

impl StageEnds {
    /// Measured with the encoder: an empty list costs its 4-byte count.
    pub fn zerog(body: &zerog::Body) -> Self {
        let reads_only = zerog::Body { writes: vec![], controls: vec![], ..body.clone() };
        let no_controls = zerog::Body { controls: vec![], ..body.clone() };
        StageEnds {
            header: 8,
            reads: zerog::encode(&reads_only).len() - 8,
            writes: zerog::encode(&no_controls).len() - 4,
        }
    }

    pub fn native(body: &native::Body) -> Self {
        let reads_only = native::Body { writes: vec![], controls: vec![], ..body.clone() };
        let no_controls = native::Body { controls: vec![], ..body.clone() };
        StageEnds {
            header: 9,
            reads: native::encode(&reads_only).len() - 8,
            writes: native::encode(&no_controls).len() - 4,
        }
    }

    /// An empty list costs its 1-byte count; the header is the version's
    /// varint (of `version + 1`) and the flags byte.
    pub fn compact(body: &native::Body, tags: &[StreamId]) -> Self {
        let reads_only = native::Body { writes: vec![], controls: vec![], ..body.clone() };
        let no_controls = native::Body { controls: vec![], ..body.clone() };
        StageEnds {
            header: varint::len(body.version.wrapping_add(1)) + 1,
            reads: native::encode_compact(&reads_only, tags).len() - 2,
            writes: native::encode_compact(&no_controls, tags).len() - 1,
        }
    }
}

/// Every proper prefix of `bytes` (a body of a transaction with `tags`)
/// fails, in the stage it cuts: the stages before it decode as in the whole
/// body, it and every later one are `Err`.
pub fn assert_truncations_fail_in_their_stage(
    codec: &dyn Codec,
    tags: &[StreamId],
    bytes: &[u8],
    ends: &StageEnds,
) {
    let whole = codec.decode(bytes, tags).expect("the whole body decodes");
    for cut in 0..bytes.len() {
        let prefix = &bytes[..cut];
        if cut < ends.header {
            assert!(codec.decode(prefix, tags).is_err(), "cut at {cut} inside the header");
            continue;
        }
        let d =
            codec.decode(prefix, tags).unwrap_or_else(|e| panic!("header of a cut at {cut} fails: {e:?}"));
        assert_eq!((d.version, d.check_reads_only), (whole.version, whole.check_reads_only));
        assert_stage(cut, "reads", &d.reads, &whole.reads, cut >= ends.reads);
        assert_stage(cut, "writes", &d.writes, &whole.writes, cut >= ends.writes);
        assert!(d.controls.is_err(), "cut at {cut}: controls must fail");
    }
}

fn assert_stage<T: PartialEq + std::fmt::Debug>(
    cut: usize,
    stage: &str,
    got: &Result<T, logkv_runtime::codec::ParseError>,
    whole: &Result<T, logkv_runtime::codec::ParseError>,
    complete: bool,
) {
    if complete {
        assert_eq!(
            got.as_ref().ok(),
            whole.as_ref().ok(),
            "cut at {cut}: {stage} must decode as in the whole body"
        );
    } else {
        assert!(got.is_err(), "cut at {cut}: {stage} must fail");
    }
}

/// All stages of a decoded body parsed.
pub fn fully_ok(d: &Decoded) -> bool {
    d.reads.is_ok() && d.writes.is_ok() && d.controls.is_ok()
}
