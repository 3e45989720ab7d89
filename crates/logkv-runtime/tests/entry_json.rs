//! Entries as JSON (`logkv tx decode --entry`, `logkv tx encode`): either
//! protocol, bodies of codecs 0, 1 and 2 as documents and any other body as
//! raw hex, lossless both ways, and a clear error for every bad document.

mod codec_support;

use codec_support::{native_body, zerog_body};
use logkv_runtime::codec::json::JsonError;
use logkv_runtime::codec::native::{self, Body, BodyWrite, Op};
use logkv_runtime::codec::{zerog, NATIVE};
use logkv_runtime::entry_json::{entry_from_json, entry_to_json};
use logkv_runtime::envelope::{Entry, EntryView, Protocol, TxPart, PROTOCOL_VERSION};
use logkv_runtime::signing::Signer;
use logkv_runtime::types::StreamId;
use proptest::prelude::*;
use serde_json::{json, Value};

fn signer() -> Signer {
    Signer::from_secret_bytes([0x42; 32]).expect("a valid key")
}

fn signed(protocol: Protocol, txs: Vec<TxPart>) -> Vec<u8> {
    Entry { sender: signer().address(), nonce: 9, txs }
        .encode_signed_as(protocol, &signer())
        .expect("encodes")
}

fn doc(bytes: &[u8]) -> Value {
    serde_json::from_str(&entry_to_json(bytes).expect("a well-formed entry")).expect("JSON")
}

/// One transaction of any kind: 0G, codec 1 or codec 2 bodies, and bytes
/// in any codec (mostly not a body of it).
fn tx() -> impl Strategy<Value = TxPart> {
    prop_oneof![
        zerog_body().prop_map(|b| TxPart { codec: 0, tags: b.tags(), body: zerog::encode(&b) }),
        native_body().prop_map(|b| TxPart { codec: NATIVE, tags: b.tags(), body: native::encode(&b) }),
        native_body().prop_map(|b| native::compact_tx(&b, b.tags())),
        (any::<u8>(), prop::collection::vec(any::<u8>(), 0..20), prop::collection::vec(0u8..4, 0..3))
            .prop_map(|(codec, body, tags)| TxPart {
                codec,
                tags: tags.into_iter().map(|b| StreamId([b; 32])).collect(),
                body
            }),
    ]
}

proptest! {
    #[test]
    fn entry_to_json_to_entry_is_identical(v2 in any::<bool>(), txs in prop::collection::vec(tx(), 0..4)) {
        let protocol = if v2 { Protocol::V2 } else { Protocol::V1 };
        let bytes = signed(protocol, txs);
        let json = entry_to_json(&bytes).unwrap();
        prop_assert_eq!(entry_from_json(&json).unwrap(), bytes);
    }
}

#[test]
fn a_node_written_entry_shows_its_native_ops_by_name() {
    let s = StreamId([0x11; 32]);
    let body = Body {
        version: u64::MAX,
        check_reads_only: true,
        reads: vec![],
        writes: vec![
            BodyWrite { stream: s, key: b"k".to_vec(), op: Op::Put(b"xyz".to_vec().into()) },
            BodyWrite { stream: s, key: b"n".to_vec(), op: Op::Increment(-2) },
            BodyWrite { stream: s, key: b"d".to_vec(), op: Op::DeleteIfPresent },
        ],
        controls: vec![],
    };
    let bytes = signed(Protocol::V2, vec![native::compact_tx(&body, [s])]);
    let d = doc(&bytes);
    assert_eq!(d["protocol"], json!(2));
    assert_eq!(d["nonce"], json!("9"));
    assert_eq!(d["sender"], json!(signer().address().to_string()));
    let tx = &d["txs"][0];
    assert_eq!((&tx["codec"], &tx["tags"]), (&json!(2), &json!([s.to_string()])));
    assert_eq!(
        tx["body"],
        json!({
            "version": u64::MAX.to_string(),
            "check_reads_only": true,
            "reads": [],
            "writes": [
                {"op": "Put", "stream": s.to_string(), "key": "aw==", "value": "eHl6"},
                {"op": "Increment", "stream": s.to_string(), "key": "bg==", "delta": "-2"},
                {"op": "DeleteIfPresent", "stream": s.to_string(), "key": "ZA=="},
            ],
            "controls": [],
        })
    );
    assert!(tx.get("raw").is_none());
    assert_eq!(entry_from_json(&d.to_string()).unwrap(), bytes);
}

#[test]
fn bodies_without_a_json_form_are_raw_hex() {
    let s = StreamId([1; 32]);
    let garbled = TxPart { codec: 2, tags: vec![s], body: vec![0xff] };
    let app = TxPart { codec: 0x80, tags: vec![], body: b"{}".to_vec() };
    let d = doc(&signed(Protocol::V1, vec![garbled, app]));
    assert_eq!(d["txs"][0]["raw"], json!("0xff"));
    assert_eq!(d["txs"][1]["raw"], json!("0x7b7d"));
    assert!(d["txs"][1].get("body").is_none());
}

/// The error of encoding `doc`, as text.
fn refusal(doc: &Value) -> (JsonError, String) {
    let e = entry_from_json(&doc.to_string()).expect_err("the document must be refused");
    let text = e.to_string();
    (e, text)
}

#[test]
fn bad_documents_are_refused_saying_where() {
    let s = StreamId([1; 32]);
    let body = Body {
        version: 1,
        writes: vec![BodyWrite { stream: s, key: b"k".to_vec(), op: Op::Put(b"v".to_vec().into()) }],
        ..Body::default()
    };
    let good = doc(&signed(Protocol::V2, vec![native::compact_tx(&body, [s])]));
    let with = |path: &[&str], value: Value| {
        let mut d = good.clone();
        let mut at = &mut d;
        for p in &path[..path.len() - 1] {
            at = match p.parse::<usize>() {
                Ok(i) => &mut at[i],
                Err(_) => &mut at[*p],
            };
        }
        at[path[path.len() - 1]] = value;
        d
    };

    let (e, text) = refusal(&with(&["txs", "0", "body", "writes", "0", "op"], json!("Set")));
    assert!(matches!(e, JsonError::UnknownOp { .. }) && text.contains("PutIfAbsent"), "{text}");
    let (e, text) = refusal(&with(&["txs", "0", "body", "writes", "0", "delta"], json!(1)));
    assert!(matches!(e, JsonError::OpFields { .. }), "{e:?}");
    assert!(text.starts_with("writes[0]: Put takes a value and no delta"), "{text}");
    let (e, text) = refusal(&with(&["txs", "0", "raw"], json!("0x00")));
    assert!(matches!(e, JsonError::Tx { .. }) && text.starts_with("txs[0]:"), "{text}");
    let (e, _) = refusal(&with(&["txs", "0", "codec"], json!(0x80)));
    assert!(matches!(e, JsonError::Tx { .. }), "{e:?}");
    let (e, _) = refusal(&with(&["signature"], json!("0x1234")));
    assert!(matches!(e, JsonError::Hex { .. }), "{e:?}");
    let (e, _) = refusal(&with(&["protocol"], json!(PROTOCOL_VERSION + 1)));
    assert!(matches!(e, JsonError::Number { .. }), "{e:?}");
    let (e, _) = refusal(&with(&["nonce"], json!("-1")));
    assert!(matches!(e, JsonError::Number { .. }), "{e:?}");
    let (e, _) = refusal(&with(&["txs", "0", "body", "writes", "0", "key"], json!("")));
    assert!(matches!(e, JsonError::Body(_)), "{e:?}");
    let (e, _) = refusal(&with(&["extra"], json!(1)));
    assert!(matches!(e, JsonError::Syntax(_)), "{e:?}");
    // Tags are a set: any order, repeats dropped, as the entry lists them.
    let t = StreamId([2; 32]).to_string();
    let reordered = with(&["txs", "0", "tags"], json!([t, s.to_string(), t]));
    let bytes = entry_from_json(&reordered.to_string()).expect("still an entry");
    let view = EntryView::parse(&bytes).expect("well formed");
    assert_eq!(view.tags().iter().collect::<Vec<_>>(), vec![s, StreamId([2; 32])]);
    assert!(native::decode_compact(view.txs()[0].body, &[s, StreamId([2; 32])]).is_ok());
    let e = entry_from_json(&with(&["txs", "0", "tags"], json!(["0x12"])).to_string()).unwrap_err();
    assert!(matches!(e, JsonError::Id { .. }) && e.to_string().starts_with("txs[0].tags[0]:"), "{e}");
}

#[test]
fn a_forged_entry_goes_to_json_and_back_as_it_is() {
    let s = StreamId([1; 32]);
    let body =
        Body { writes: vec![BodyWrite { stream: s, key: b"k".to_vec(), op: Op::Delete }], ..Body::default() };
    let mut bytes = signed(Protocol::V2, vec![native::compact_tx(&body, [s])]);
    let last = bytes.len() - 2;
    bytes[last] ^= 1;
    assert!(EntryView::parse(&bytes).unwrap().verify().is_err());
    assert_eq!(entry_from_json(&entry_to_json(&bytes).unwrap()).unwrap(), bytes);
}
