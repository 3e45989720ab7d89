//! The JSON form of 0G bodies (`logkv tx decode|encode`): lossless both
//! ways, and a clear error for every bad document.

mod codec_support;

use codec_support::zerog_body;
use logkv_runtime::codec::json::{decode_json, encode_json, JsonError};
use logkv_runtime::codec::zerog::{self, Body, BodyWrite};
use logkv_runtime::codec::{Control, ControlOp, Read};
use logkv_runtime::types::{Address, StreamId};
use proptest::prelude::*;
use serde_json::json;

const S: StreamId = StreamId([0x11; 32]);

fn s() -> String {
    S.to_string()
}

/// The error of decoding `doc`, as text.
fn refusal(doc: serde_json::Value) -> (JsonError, String) {
    let e = decode_json(&doc.to_string()).expect_err("the document must be refused");
    let text = e.to_string();
    (e, text)
}

proptest! {
    #[test]
    fn bytes_to_json_to_bytes_is_identical_for_every_valid_body(body in zerog_body()) {
        let bytes = zerog::encode(&body);
        prop_assert_eq!(decode_json(&encode_json(&bytes).unwrap()).unwrap(), bytes);
    }

    #[test]
    fn json_to_bytes_to_json_to_bytes_is_identical(body in zerog_body(), form in 0..3u8) {
        // Start from a document written by hand: any accepted version form.
        let mut doc: serde_json::Value = serde_json::from_str(&encode_json(&zerog::encode(&body)).unwrap()).unwrap();
        doc["version"] = match (form, body.version) {
            (0, v) => json!(v),
            (1, u64::MAX) => json!("max"),
            (_, v) => json!(v.to_string()),
        };
        let bytes = decode_json(&doc.to_string()).unwrap();
        let json = encode_json(&bytes).unwrap();
        prop_assert_eq!(decode_json(&json).unwrap(), bytes.clone());
        prop_assert_eq!(zerog::decode_body(&bytes), Ok(body));
    }
}

#[test]
fn the_document_has_the_documented_shape() {
    let body = Body {
        version: u64::MAX,
        reads: vec![Read { stream: S, key: b"r".to_vec() }],
        writes: vec![
            BodyWrite { stream: S, key: b"a".to_vec(), value: b"xyz".to_vec() },
            BodyWrite { stream: S, key: b"b".to_vec(), value: vec![] },
        ],
        controls: vec![
            Control {
                op: ControlOp::GrantSpecialWriteRole,
                stream: S,
                key: Some(b"s".to_vec()),
                account: Some(Address([0x22; 20])),
            },
            Control { op: ControlOp::RenounceAdminRole, stream: S, key: None, account: None },
        ],
    };
    let got: serde_json::Value = serde_json::from_str(&encode_json(&zerog::encode(&body)).unwrap()).unwrap();
    let want = json!({
        "version": "18446744073709551615",
        "reads": [{"stream": s(), "key": "cg=="}],
        "writes": [{"stream": s(), "key": "YQ==", "value": "eHl6"}, {"stream": s(), "key": "Yg==", "value": ""}],
        "controls": [
            {"op": "GrantSpecialWriteRole", "stream": s(), "key": "cw==", "account": format!("0x{}", "22".repeat(20))},
            {"op": "RenounceAdminRole", "stream": s()}
        ]
    });
    assert_eq!(got, want);
}

#[test]
fn versions_are_read_from_numbers_decimal_strings_and_max() {
    for (version, want) in [
        (json!(0), 0),
        (json!(7), 7),
        (json!("7"), 7),
        (json!(u64::MAX), u64::MAX),
        (json!("18446744073709551615"), u64::MAX),
        (json!("max"), u64::MAX),
    ] {
        let bytes = decode_json(&json!({ "version": version }).to_string()).unwrap();
        assert_eq!(zerog::decode_body(&bytes).unwrap().version, want, "{version}");
    }
}

#[test]
fn anything_else_as_version_is_refused() {
    for version in [
        json!(-1),
        json!(1.5),
        json!(1e30),
        json!("+7"),
        json!("0x7"),
        json!(""),
        json!("18446744073709551616"),
        json!(null),
    ] {
        let (e, text) = refusal(json!({ "version": version }));
        assert!(matches!(e, JsonError::Number { .. }), "{version}: {e:?}");
        assert!(text.starts_with("version: "), "{text}");
    }
    // A number past u64 is not even read as an integer.
    let e = decode_json(r#"{"version": 18446744073709551616}"#).unwrap_err();
    assert!(matches!(e, JsonError::Number { .. }), "{e:?}");
}

#[test]
fn lists_may_be_left_out_but_version_may_not() {
    assert_eq!(
        decode_json(r#"{"version": 3}"#).unwrap(),
        zerog::encode(&Body { version: 3, ..Body::default() })
    );
    assert!(matches!(decode_json(r#"{"reads": []}"#), Err(JsonError::Syntax(_))));
}

#[test]
fn unknown_fields_and_non_json_are_refused() {
    let (e, _) =
        refusal(json!({"version": 1, "writes": [{"stream": s(), "key": "YQ==", "value": "", "extra": 1}]}));
    assert!(matches!(e, JsonError::Syntax(_)), "{e:?}");
    let (e, _) = refusal(json!({"version": 1, "codec": "native"}));
    assert!(matches!(e, JsonError::Syntax(_)), "{e:?}");
    assert!(matches!(decode_json("{"), Err(JsonError::Syntax(_))));
}

#[test]
fn an_unknown_op_name_is_refused_with_the_names_that_exist() {
    let (e, text) = refusal(json!({"version": 1, "controls": [{"op": "GRANT_WRITER_ROLE", "stream": s()}]}));
    assert!(matches!(e, JsonError::UnknownOp { .. }), "{e:?}");
    assert!(text.starts_with("controls[0].op: unknown op \"GRANT_WRITER_ROLE\""), "{text}");
    assert!(text.contains("GrantWriteRole") && text.contains("RenounceSpecialWriteRole"), "{text}");
}

#[test]
fn bad_base64_is_refused_with_its_place() {
    for bad in ["YQ", "Y===", "not base64!", "YR=="] {
        let (e, text) =
            refusal(json!({"version": 1, "writes": [{"stream": s(), "key": "YQ==", "value": bad}]}));
        assert!(matches!(e, JsonError::Base64 { .. }), "{bad}: {e:?}");
        assert!(text.starts_with("writes[0].value: not base64"), "{text}");
    }
}

#[test]
fn bad_ids_are_refused_with_their_place() {
    let (e, text) = refusal(json!({"version": 1, "reads": [{"stream": "0x1234", "key": "YQ=="}]}));
    assert!(matches!(e, JsonError::Id { .. }), "{e:?}");
    assert!(text.starts_with("reads[0].stream: "), "{text}");
    let (_, text) =
        refusal(json!({"version": 1, "controls": [{"op": "GrantWriteRole", "stream": s(), "account": s()}]}));
    assert!(text.starts_with("controls[0].account: "), "{text}");
}

#[test]
fn fields_that_do_not_match_the_op_are_refused() {
    let account = format!("0x{}", "22".repeat(20));
    let cases = [
        (
            json!({"op": "GrantWriteRole", "stream": s(), "account": account, "key": "YQ=="}),
            "GrantWriteRole has no key",
        ),
        (json!({"op": "GrantWriteRole", "stream": s()}), "GrantWriteRole needs an account"),
        (json!({"op": "SetKeyToSpecial", "stream": s()}), "SetKeyToSpecial needs a key"),
        (
            json!({"op": "RenounceAdminRole", "stream": s(), "account": account}),
            "RenounceAdminRole has no account",
        ),
    ];
    for (control, why) in cases {
        let (e, text) = refusal(json!({"version": 1, "controls": [control]}));
        assert!(matches!(e, JsonError::Body(_)), "{e:?}");
        assert_eq!(text, format!("invalid body: controls[0]: {why}"));
    }
}

#[test]
fn keys_must_be_non_empty() {
    let (e, text) = refusal(json!({"version": 1, "reads": [{"stream": s(), "key": ""}]}));
    assert!(matches!(e, JsonError::Body(_)), "{e:?}");
    assert!(text.starts_with("invalid body: reads[0]: key of 0 bytes"), "{text}");
}

#[test]
fn bytes_that_do_not_decode_have_no_document() {
    let mut bytes = zerog::encode(&Body::default());
    bytes.push(0);
    let e = encode_json(&bytes).unwrap_err();
    assert!(matches!(e, JsonError::Body(_)), "{e:?}");
    assert_eq!(e.to_string(), "invalid body: 1 trailing bytes at offset 20");
    assert!(matches!(encode_json(&[1, 2, 3]), Err(JsonError::Body(_))));
}
