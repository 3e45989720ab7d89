//! `logkv key` and `logkv tx`, run as the real binary.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};

fn logkv(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_logkv"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("logkv runs");
    child.stdin.take().expect("piped").write_all(stdin).expect("stdin written");
    child.wait_with_output().expect("logkv finishes")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn key_new_writes_an_owner_only_key_prints_its_address_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.key");
    let out = logkv(&["key", "new", "--out", path.to_str().unwrap()], b"");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let address = text(&out.stdout);
    assert!(address.trim().starts_with("0x") && address.trim().len() == 42, "{address}");
    let secret = std::fs::read_to_string(&path).unwrap();
    assert!(!address.contains(secret.trim()) && !text(&out.stderr).contains(secret.trim()));
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    let again = logkv(&["key", "new", "--out", path.to_str().unwrap()], b"");
    assert_eq!(again.status.code(), Some(2), "{}", text(&again.stderr));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), secret, "the key was not overwritten");
}

#[test]
fn tx_decode_then_encode_gives_back_the_same_bytes() {
    // The 0G SDK's encoding of one write, "k" -> "v1", version 1.
    let hex = format!(
        "0x0000000000000001000000000000000{}{}0000016b00000000000000027631{}",
        1,
        "11".repeat(32),
        "00000000"
    );
    let decoded = logkv(&["tx", "decode", &hex], b"");
    assert!(decoded.status.success(), "{}", text(&decoded.stderr));
    let json = text(&decoded.stdout);
    assert!(json.contains("\"key\": \"aw==\"") && json.contains("\"value\": \"djE=\""), "{json}");
    let encoded = logkv(&["tx", "encode"], json.as_bytes());
    assert!(encoded.status.success(), "{}", text(&encoded.stderr));
    assert_eq!(text(&encoded.stdout).trim(), hex);
}

#[test]
fn tx_decode_of_a_malformed_body_exits_2_and_says_why() {
    let out = logkv(&["tx", "decode", "0x00000000000000010000"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).starts_with("logkv: "), "{}", text(&out.stderr));
    let bad_json = logkv(&["tx", "encode"], br#"{"version": "1", "writes": [{"stream": "0x12"}]}"#);
    assert_eq!(bad_json.status.code(), Some(2), "{}", text(&bad_json.stderr));
}

#[test]
fn tx_decode_entry_shows_a_node_written_entry_and_encode_gives_it_back() {
    use logkv_runtime::codec::native::{self, Body, BodyWrite, Op};
    use logkv_runtime::envelope::{Entry, Protocol};
    use logkv_runtime::signing::Signer;
    use logkv_runtime::types::StreamId;

    let signer = Signer::from_secret_bytes([7; 32]).unwrap();
    let s = StreamId([0x11; 32]);
    let body = Body {
        version: u64::MAX,
        writes: vec![BodyWrite { stream: s, key: b"k".to_vec(), op: Op::Put(b"v1".to_vec().into()) }],
        ..Body::default()
    };
    let entry = Entry { sender: signer.address(), nonce: 3, txs: vec![native::compact_tx(&body, [s])] };
    let hex = format!("0x{}", hex::encode(entry.encode_signed_as(Protocol::V2, &signer).unwrap()));
    let decoded = logkv(&["tx", "decode", "--entry", &hex], b"");
    assert!(decoded.status.success(), "{}", text(&decoded.stderr));
    let json = text(&decoded.stdout);
    assert!(json.contains("\"protocol\": 2") && json.contains("\"codec\": 2"), "{json}");
    assert!(json.contains("\"op\": \"Put\"") && json.contains("\"value\": \"djE=\""), "{json}");
    let encoded = logkv(&["tx", "encode"], json.as_bytes());
    assert!(encoded.status.success(), "{}", text(&encoded.stderr));
    assert_eq!(text(&encoded.stdout).trim(), hex);
    // Without --entry the bytes are taken for a 0G body, which they are not.
    assert_eq!(logkv(&["tx", "decode", &hex], b"").status.code(), Some(2));
}
