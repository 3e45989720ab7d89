//! An application codec plugged into the applier: the `json_events` example,
//! compiled into this test so `cargo test` checks what it prints.

#[path = "../examples/json_events.rs"]
mod json_events;

use json_events::{JsonEvents, JSON_EVENTS};
use logkv_runtime::codec::{Codec, ParseError, WriteOp};

#[test]
fn the_example_commits_the_valid_entry_and_refuses_the_malformed_one() {
    assert_eq!(
        json_events::run(),
        [
            "valid entry: Commit",
            "malformed entry: DataParseError: Invalid stream data",
            "user:alice = login",
            "user:bob = logout",
        ]
    );
    json_events::main();
}

#[test]
fn values_refer_to_their_bytes_in_the_body_and_escaped_strings_are_refused() {
    let stream = format!("0x{}", "ab".repeat(32));
    let body = format!(r#"{{"stream": "{stream}", "events": [{{"user": "dave", "action": "log in"}}]}}"#);
    let decoded = JsonEvents.decode(body.as_bytes(), &[]).expect("decodes");
    let writes = decoded.writes.expect("writes parse");
    assert_eq!(writes.len(), 1);
    assert_eq!(writes[0].key, b"user:dave");
    match writes[0].op {
        WriteOp::Put(v) => {
            assert_eq!(v.get(body.as_bytes()), b"log in");
            assert_eq!(v.offset, body.find("log in").unwrap());
        }
        op => panic!("expected a Put, got {op:?}"),
    }
    assert_eq!(JsonEvents.id(), JSON_EVENTS);

    let escaped = body.replace("log in", r"log\u0020in");
    assert!(matches!(JsonEvents.decode(escaped.as_bytes(), &[]), Err(ParseError::Invalid { .. })));
    let bad_stream = body.replace(&stream, "0x12");
    assert!(matches!(JsonEvents.decode(bad_stream.as_bytes(), &[]), Err(ParseError::Invalid { .. })));
    let unknown_field = body.replace(r#""user""#, r#""who": 1, "user""#);
    assert!(matches!(JsonEvents.decode(unknown_field.as_bytes(), &[]), Err(ParseError::Invalid { .. })));
}
