//! Byte compatibility with the real 0G TypeScript SDK: the fixture
//! `fixtures/zerog.json` is printed by `scripts/golden/zerog.cjs` (run
//! `scripts/golden/check.sh`), which builds bodies with `StreamDataBuilder`
//! and records what the SDK built and the bytes of `StreamData.encode()` and
//! `buildTags()`.

use logkv_runtime::codec::json::{decode_json, encode_json};
use logkv_runtime::codec::zerog::{self, Body, BodyWrite, ZeroG};
use logkv_runtime::codec::{Codec, Control, ControlOp, Read, WriteOp, MAX_KEY_BYTES};
use serde::Deserialize;

#[derive(Deserialize)]
struct Case {
    description: String,
    version: String,
    reads: Vec<HexRead>,
    writes: Vec<HexWrite>,
    controls: Vec<HexControl>,
    encoded: String,
    tags: String,
}

#[derive(Deserialize)]
struct HexRead {
    stream: String,
    key: String,
}

#[derive(Deserialize)]
struct HexWrite {
    stream: String,
    key: String,
    value: String,
}

#[derive(Deserialize)]
struct HexControl {
    op: u8,
    stream: String,
    key: Option<String>,
    account: Option<String>,
}

fn cases() -> Vec<Case> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/zerog.json");
    let text = std::fs::read_to_string(path).expect("fixture written by scripts/golden/check.sh --write");
    serde_json::from_str(&text).expect("fixture is a list of cases")
}

fn unhex(s: &str) -> Vec<u8> {
    let digits = s.strip_prefix("0x").expect("SDK hex starts with 0x");
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).expect("hex digits"))
        .collect()
}

/// What the SDK built, as our owned body.
fn expected(case: &Case) -> Body {
    Body {
        version: case.version.parse().unwrap(),
        reads: case
            .reads
            .iter()
            .map(|r| Read { stream: r.stream.parse().unwrap(), key: unhex(&r.key) })
            .collect(),
        writes: case
            .writes
            .iter()
            .map(|w| BodyWrite {
                stream: w.stream.parse().unwrap(),
                key: unhex(&w.key),
                value: unhex(&w.value),
            })
            .collect(),
        controls: case
            .controls
            .iter()
            .map(|c| Control {
                op: ControlOp::from_byte(c.op).unwrap(),
                stream: c.stream.parse().unwrap(),
                key: c.key.as_deref().map(unhex),
                account: c.account.as_deref().map(|a| a.parse().unwrap()),
            })
            .collect(),
    }
}

#[test]
fn our_decoder_yields_exactly_what_the_sdk_built() {
    for case in cases() {
        let bytes = unhex(&case.encoded);
        let want = expected(&case);
        assert_eq!(zerog::decode_body(&bytes).as_ref(), Ok(&want), "{}", case.description);
        // Values are referenced in place: an empty one is a delete.
        let writes = ZeroG.decode(&bytes, &[]).unwrap().writes.unwrap();
        for (got, w) in writes.iter().zip(&want.writes) {
            match got.op {
                WriteOp::Put(v) => assert_eq!(v.get(&bytes), &w.value[..], "{}", case.description),
                op => assert_eq!((op, w.value.len()), (WriteOp::Delete, 0), "{}", case.description),
            }
        }
    }
}

#[test]
fn our_encoder_reproduces_the_sdk_bytes() {
    for case in cases() {
        assert_eq!(zerog::encode(&expected(&case)), unhex(&case.encoded), "{}", case.description);
    }
}

#[test]
fn our_tags_are_the_sdk_tags() {
    for case in cases() {
        let streams = expected(&case).tags();
        assert_eq!(zerog::encode_tags(&streams), unhex(&case.tags), "{}", case.description);
        assert_eq!(zerog::decode_tags(&unhex(&case.tags)), Some(streams), "{}", case.description);
    }
}

#[test]
fn sdk_bodies_survive_the_json_form_byte_for_byte() {
    for case in cases() {
        let bytes = unhex(&case.encoded);
        let json = encode_json(&bytes).unwrap();
        assert_eq!(decode_json(&json).unwrap(), bytes, "{}", case.description);
    }
}

#[test]
fn the_tags_domain_is_sha256_of_stream() {
    use sha2::Digest;
    assert_eq!(zerog::TAGS_DOMAIN, <[u8; 32]>::from(sha2::Sha256::digest(b"STREAM")));
}

#[test]
fn the_fixture_covers_every_control_op_and_the_edge_cases() {
    let bodies: Vec<Body> = cases().iter().map(expected).collect();
    let ops: Vec<ControlOp> = bodies.iter().flat_map(|b| b.controls.iter().map(|c| c.op)).collect();
    for b in 0..=u8::MAX {
        if let Some(op) = ControlOp::from_byte(b) {
            assert!(ops.contains(&op), "no case has {op:?}");
        }
    }
    let writes = || bodies.iter().flat_map(|b| &b.writes);
    assert!(bodies.iter().any(|b| b.version == u64::MAX), "u64::MAX version");
    assert!(bodies.iter().any(|b| b.version > 1 << 53), "a version JavaScript numbers cannot hold");
    assert!(bodies.iter().any(|b| !b.reads.is_empty()), "reads");
    assert!(bodies.iter().any(|b| b.tags().len() > 2), "several streams");
    assert!(writes().any(|w| w.value.is_empty()), "a delete");
    assert!(writes().any(|w| w.value.len() >= 100 << 10), "a 100 KiB value");
    assert!(writes().any(|w| (1000..=MAX_KEY_BYTES).contains(&w.key.len())), "a long key");
}
