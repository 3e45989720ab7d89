//! JSON-RPC request parsing, fed an HTTP request body.

use logkv_server::rpc::request::MAX_BATCH_LEN;
use logkv_server::rpc::{self, Call, Incoming, RpcError};
use serde_json::{json, Value};

/// Input: the body of a JSON-RPC POST.
///
/// Checks: the only failures are a parse error or an invalid request; a
/// batch holds 1 to [`MAX_BATCH_LEN`] calls; a valid call's id is a string,
/// a number or null; and a valid call written back out as JSON parses to
/// the same method, parameters and id.
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
        let id: Option<Value> =
            request.id.as_ref().map(|id| serde_json::from_str(id.get()).expect("id is JSON"));
        assert!(matches!(id, None | Some(Value::Null | Value::String(_) | Value::Number(_))), "id {id:?}");
        let mut again = json!({ "jsonrpc": "2.0", "method": request.method, "params": request.params });
        if let Some(id) = &request.id {
            again["id"] = serde_json::from_str(id.get()).expect("id is JSON");
        }
        let bytes = serde_json::to_vec(&again).expect("serializable");
        let Ok(Incoming::Single(Call::Valid(reparsed))) = rpc::parse(&bytes) else {
            panic!("{again} no longer parses as a valid request");
        };
        assert_eq!((reparsed.method, reparsed.params), (request.method, request.params));
        let reparsed_id: Option<Value> =
            reparsed.id.map(|id| serde_json::from_str(id.get()).expect("id is JSON"));
        assert_eq!(reparsed_id, id);
    }
}
