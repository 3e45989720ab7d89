//! Golden vectors from the real npm ethers 6.13.1 (scripts/golden/sign.cjs,
//! fixture tests/fixtures/sign.json): logkv derives the same addresses,
//! signs byte for byte as `wallet.signMessage(getBytes(digest))`, recovers
//! ethers' signatures, and reads and writes entries a JS client signs, in
//! both protocols, with codec 2 bodies built in JS from docs/format.md.

use logkv_runtime::codec::native::{self, Body, BodyWrite, Op};
use logkv_runtime::codec::NATIVE_COMPACT;
use logkv_runtime::envelope::{Entry, EntryView, Protocol, TxPart};
use logkv_runtime::signing::{address_of, eip191_hash, recover, Signer, SIGNATURE_LEN};
use logkv_runtime::types::{Address, StreamId};
use serde_json::Value;

fn fixture() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/sign.json");
    let text = std::fs::read_to_string(path).expect("fixture written by scripts/golden/check.sh --write");
    serde_json::from_str(&text).expect("fixture is JSON")
}

fn bytes(v: &Value) -> Vec<u8> {
    let s = v.as_str().expect("a hex string");
    hex::decode(s.strip_prefix("0x").expect("0x prefix")).expect("hex")
}

fn array<const N: usize>(v: &Value) -> [u8; N] {
    bytes(v).try_into().expect("the expected length")
}

fn list(v: &Value) -> &Vec<Value> {
    v.as_array().expect("a JSON array")
}

fn signers(f: &Value) -> Vec<Signer> {
    list(&f["keys"])
        .iter()
        .map(|k| Signer::from_secret_bytes(array(&k["private_key"])).expect("ethers accepted the key"))
        .collect()
}

fn address(v: &Value) -> Address {
    v.as_str().expect("an address").parse().expect("0x and 40 hex digits")
}

#[test]
fn fixture_comes_from_ethers_6_13_1_and_covers_both_recovery_ids() {
    let f = fixture();
    assert_eq!(f["ethers"], "6.13.1");
    let vs: Vec<u8> = list(&f["signatures"]).iter().map(|s| bytes(&s["signature"])[64]).collect();
    assert!(vs.len() >= 24, "{} signatures", vs.len());
    assert!(vs.contains(&27) && vs.contains(&28), "{vs:?}");
}

#[test]
fn addresses_and_public_keys_match_ethers() {
    let f = fixture();
    for (signer, key) in signers(&f).iter().zip(list(&f["keys"])) {
        assert_eq!(signer.address(), address(&key["address"]));
        assert_eq!(signer.public_key().serialize_uncompressed().to_vec(), bytes(&key["public_key"]));
        assert_eq!(address_of(&signer.public_key()), signer.address());
    }
}

#[test]
fn eip191_hash_matches_ethers_hash_message_of_raw_bytes() {
    let f = fixture();
    for d in list(&f["digests"]) {
        assert_eq!(eip191_hash(&array(&d["digest"])), array(&d["eip191_hash"]));
    }
}

#[test]
fn signatures_are_byte_identical_to_ethers_sign_message() {
    let f = fixture();
    let signers = signers(&f);
    let digests: Vec<[u8; 32]> = list(&f["digests"]).iter().map(|d| array(&d["digest"])).collect();
    for s in list(&f["signatures"]) {
        let signer = &signers[s["key"].as_u64().expect("key index") as usize];
        let digest = &digests[s["digest"].as_u64().expect("digest index") as usize];
        let expected: [u8; SIGNATURE_LEN] = array(&s["signature"]);
        assert_eq!(signer.sign_digest(digest), expected, "key {} digest {}", s["key"], s["digest"]);
    }
}

#[test]
fn ethers_signatures_recover_to_the_signing_address() {
    let f = fixture();
    let keys = list(&f["keys"]);
    let digests = list(&f["digests"]);
    for s in list(&f["signatures"]) {
        let key = &keys[s["key"].as_u64().expect("key index") as usize];
        let digest = array(&digests[s["digest"].as_u64().expect("digest index") as usize]["digest"]);
        assert_eq!(recover(&digest, &array(&s["signature"])), Ok(address(&key["address"])));
    }
}

#[test]
fn entries_signed_by_ethers_parse_verify_and_match_our_encoding() {
    let f = fixture();
    let signers = signers(&f);
    let mut protocols = Vec::new();
    for e in list(&f["envelopes"]) {
        let protocol = e["protocol"].as_u64().and_then(|v| Protocol::from_version(v as u16)).expect("1 or 2");
        protocols.push(protocol);
        let entry_bytes = bytes(&e["entry"]);
        let view = EntryView::parse(&entry_bytes).expect("a JS-built entry parses");
        assert_eq!(view.protocol(), protocol);
        view.verify().expect("ethers' signature verifies");
        assert_eq!(view.sender(), address(&e["sender"]));
        assert_eq!(view.nonce().to_string(), e["nonce"].as_str().expect("nonce as a decimal string"));
        assert_eq!(view.signing_digest(), array(&e["signing_digest"]));

        let txs: Vec<TxPart> = list(&e["txs"])
            .iter()
            .map(|tx| TxPart {
                codec: tx["codec"].as_u64().expect("codec") as u8,
                tags: list(&tx["tags"])
                    .iter()
                    .map(|t| t.as_str().expect("id").parse::<StreamId>().expect("id"))
                    .collect(),
                body: bytes(&tx["body"]),
            })
            .collect();
        for (tx, part) in view.txs().iter().zip(&txs) {
            assert_eq!(tx.body, &part.body[..]);
            assert_eq!(&entry_bytes[tx.body_offset..tx.body_offset + tx.body.len()], &part.body[..]);
        }
        let entry = Entry { sender: view.sender(), nonce: view.nonce(), txs };
        assert_eq!(view.to_entry(), entry);
        let signer = &signers[e["key"].as_u64().expect("key index") as usize];
        assert_eq!(entry.encode_signed_as(protocol, signer).expect("encodes"), entry_bytes);
        if protocol == Protocol::V1 {
            assert_eq!(entry.encode_signed(signer).expect("encodes"), entry_bytes, "protocol 1 by default");
        }
    }
    assert!(protocols.contains(&Protocol::V1) && protocols.contains(&Protocol::V2));
}

#[test]
fn the_js_built_codec_2_set_is_what_the_rust_encoder_writes() {
    let f = fixture();
    let compact: Vec<&Value> = list(&f["envelopes"])
        .iter()
        .flat_map(|e| list(&e["txs"]))
        .filter(|tx| tx["codec"].as_u64() == Some(u64::from(NATIVE_COMPACT)))
        .collect();
    assert!(!compact.is_empty(), "the fixture has codec 2 bodies");
    for tx in compact {
        let stream: StreamId = list(&tx["tags"])[0].as_str().expect("id").parse().expect("id");
        let set = Body {
            version: u64::MAX,
            check_reads_only: true,
            reads: vec![],
            writes: vec![BodyWrite { stream, key: vec![b'k'; 16], op: Op::Put(vec![b'v'; 100].into()) }],
            controls: vec![],
        };
        assert_eq!(native::compact_tx(&set, [stream]).body, bytes(&tx["body"]));
        assert_eq!(native::decode_compact(&bytes(&tx["body"]), &[stream]), Ok(set));
    }
}
