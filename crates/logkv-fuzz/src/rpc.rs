//! JSON-RPC request parsing, fed an HTTP request body.

use logkv_server::rpc::request::MAX_BATCH_LEN;
use logkv_server::rpc::{self, Call, Incoming, RpcError};
use serde_json::{json, Value};

/// Input: the body of a JSON-RPC POST.
///
/// Checks: the only failures are a parse error or an invalid request; a
/// batch holds 1 to [`MAX_BATCH_LEN`] calls; a valid call's id is a string,
/// a number or null; and a valid call written back out as JSON parses to
/// the same method, parameters (up to fractional numbers) and id, the id
/// as the very text it was (ids are echoed verbatim, numbers beyond 2^64
/// and f64 included).
pub(crate) fn check(body: &[u8]) {
    let calls = match rpc::parse(body) {
        Ok(Incoming::Single(call)) => vec![call],
        Ok(Incoming::Batch(calls)) => {
            assert!((1..=MAX_BATCH_LEN).contains(&calls.len()), "a batch of {}", calls.len());
            calls
        }
        Err(RpcError::Parse(_) | RpcError::InvalidRequest(_)) => return,
        Err(other) => panic!("parsing answered {other:?}"),
    };
    for call in calls {
        let Call::Valid(request) = call else { continue };
        let id = request.id.as_ref().map(|id| id.get());
        // Numbers beyond f64's range are ids too: kept as text, never parsed.
        let scalar = id.is_none_or(|id| match serde_json::from_str::<Value>(id) {
            Ok(v) => v.is_null() || v.is_string() || v.is_number(),
            Err(e) => e.to_string().starts_with("number out of range"),
        });
        assert!(scalar, "id {id:?}");
        let body = json!({ "jsonrpc": "2.0", "method": request.method, "params": request.params });
        // The id goes back as the very text it came as: it is echoed so.
        let again = match id {
            Some(id) => format!("{{\"id\":{id},{}", &body.to_string()[1..]),
            None => body.to_string(),
        };
        let Ok(Incoming::Single(Call::Valid(reparsed))) = rpc::parse(again.as_bytes()) else {
            panic!("{again} no longer parses as a valid request");
        };
        assert_eq!(reparsed.method, request.method);
        assert_eq!(
            reparsed.params.iter().map(floats_out).collect::<Vec<_>>(),
            request.params.iter().map(floats_out).collect::<Vec<_>>()
        );
        assert_eq!(reparsed.id.as_ref().map(|id| id.get()), id);
    }
}

/// `value` with every non-integer number made null: serde_json reads
/// decimal text into the nearest `f64` only approximately, so writing one
/// out and reading it back may move it by one unit in the last place. No
/// method takes a fractional number.
fn floats_out(value: &Value) -> Value {
    match value {
        Value::Number(n) if n.is_f64() => Value::Null,
        Value::Array(items) => Value::Array(items.iter().map(floats_out).collect()),
        Value::Object(members) => {
            Value::Object(members.iter().map(|(k, v)| (k.clone(), floats_out(v))).collect())
        }
        other => other.clone(),
    }
}
