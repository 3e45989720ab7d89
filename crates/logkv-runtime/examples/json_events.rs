//! An application-defined codec: transaction bodies that are JSON event
//! batches, each event becoming one key write.
//!
//! ```json
//! {"stream": "0x…64 hex…",
//!  "events": [{"user": "alice", "action": "login"}, {"user": "bob", "action": "logout"}]}
//! ```
//!
//! writes `user:alice` → `login` and `user:bob` → `logout` on that stream.
//! The codec takes the first application codec byte (0x80). Every node of a
//! deployment must register it: a node without it records `DataParseError`
//! where the others commit.
//!
//! Run it with `cargo run -p logkv-runtime --example json_events`.

use logkv_runtime::apply::TxResult;
use logkv_runtime::codec::{
    Codec, Decoded, ParseError, ValueRef, Write, WriteOp, FIRST_APPLICATION_CODEC, MAX_KEY_BYTES,
    MAX_LIST_LEN, MAX_VALUE_BYTES,
};
use logkv_runtime::entry::{Applier, EntryOutcome};
use logkv_runtime::envelope::{Entry, TxPart};
use logkv_runtime::mem_state::MemState;
use logkv_runtime::signing::Signer;
use logkv_runtime::types::StreamId;
use serde::Deserialize;

/// The codec byte of JSON event bodies.
pub const JSON_EVENTS: u8 = FIRST_APPLICATION_CODEC;

/// JSON event bodies (see the module documentation).
pub struct JsonEvents;

/// A body as JSON. Strings are borrowed from the body (`&str`, not `String`):
/// serde_json can only borrow a string written without escapes, and refuses
/// one with escapes for a `&str` field, so every string here is exactly the
/// bytes between its quotes in the body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body<'a> {
    #[serde(borrow)]
    stream: &'a str,
    #[serde(borrow)]
    events: Vec<Event<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Event<'a> {
    #[serde(borrow)]
    user: &'a str,
    #[serde(borrow)]
    action: &'a str,
}

impl Codec for JsonEvents {
    fn id(&self) -> u8 {
        JSON_EVENTS
    }

    fn name(&self) -> &'static str {
        "json-events"
    }

    /// Events name their stream in the body: the tags are not needed.
    fn decode(&self, body: &[u8], _tags: &[StreamId]) -> Result<Decoded, ParseError> {
        // serde_json is deterministic here: trailing data, duplicate or
        // unknown fields, invalid UTF-8 and escaped strings are all errors.
        let doc: Body<'_> = serde_json::from_slice(body).map_err(|e| ParseError::invalid(e.to_string()))?;
        let stream: StreamId = doc.stream.parse().map_err(|e| ParseError::invalid(format!("stream: {e}")))?;
        if doc.events.len() > MAX_LIST_LEN {
            return Err(ParseError::ListTooLong);
        }
        let mut writes = Vec::with_capacity(doc.events.len());
        for (i, event) in doc.events.iter().enumerate() {
            if event.user.is_empty() {
                return Err(ParseError::invalid(format!("events[{i}].user is empty")));
            }
            let key = format!("user:{}", event.user).into_bytes();
            if key.len() > MAX_KEY_BYTES {
                return Err(ParseError::invalid(format!("events[{i}].user is too long")));
            }
            let value = value_ref(body, event.action)
                .ok_or_else(|| ParseError::invalid(format!("events[{i}].action is not in the body")))?;
            if value.len > MAX_VALUE_BYTES {
                return Err(ParseError::invalid(format!("events[{i}].action is too long")));
            }
            writes.push(Write { stream, key, op: WriteOp::Put(value) });
        }
        Ok(Decoded {
            version: u64::MAX, // no reads, no version check: events always apply
            check_reads_only: false,
            reads: Ok(Vec::new()),
            writes: Ok(writes),
            controls: Ok(Vec::new()),
        })
    }
}

/// Where `s`, a string borrowed from `body`, lies in it. Because `s` was
/// borrowed (not copied or unescaped), its start is the difference of the
/// two pointers; the range is then checked to hold exactly `s`'s bytes, so a
/// string that did not come from `body` can never yield a wrong reference.
fn value_ref(body: &[u8], s: &str) -> Option<ValueRef> {
    let offset = (s.as_ptr() as usize).checked_sub(body.as_ptr() as usize)?;
    let r = ValueRef { offset, len: s.len() };
    (body.get(offset..offset.checked_add(r.len)?)? == s.as_bytes()).then_some(r)
}

/// Builds a valid and a malformed entry, applies both to a fresh state with
/// the codec registered, and returns what `main` prints.
pub fn run() -> Vec<String> {
    let signer = Signer::from_secret_bytes([0x42; 32]).expect("a valid secret key");
    let stream = StreamId([0x11; 32]);
    let tx = |body: String| TxPart { codec: JSON_EVENTS, tags: vec![stream], body: body.into_bytes() };
    let valid = format!(
        r#"{{"stream":"{stream}","events":[{{"user":"alice","action":"login"}},{{"user":"bob","action":"logout"}}]}}"#
    );
    let malformed = format!(r#"{{"stream":"{stream}","events":[{{"user":"carol","action":"login"}}"#);
    let entries = [(1, "valid", valid), (2, "malformed", malformed)].map(|(nonce, what, body)| {
        let entry = Entry { sender: signer.address(), nonce, txs: vec![tx(body)] };
        (what, entry.encode_signed(&signer).expect("entry encodes"))
    });

    let mut applier = Applier::new(Default::default());
    applier.register(Box::new(JsonEvents));
    let mut state = MemState::default();
    let mut out = Vec::new();
    for (position, (what, bytes)) in (1..).zip(&entries) {
        match applier.apply_entry(&mut state, position, 0, bytes, None) {
            EntryOutcome::Applied(results) => {
                for result in results {
                    let result = result.map_or_else(|| "skipped".to_string(), |r: TxResult| r.to_string());
                    out.push(format!("{what} entry: {result}"));
                }
            }
            other => out.push(format!("{what} entry: {other:?}")),
        }
    }
    for (key, _version, value) in state.iter_at(&stream, u64::MAX, None, false) {
        out.push(format!("{} = {}", String::from_utf8_lossy(key), String::from_utf8_lossy(value)));
    }
    out
}

pub fn main() {
    for line in run() {
        println!("{line}");
    }
}
