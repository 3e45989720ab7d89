//! Building responses: one object per answered request, an array for a
//! batch. Ids are written back as the raw JSON they came in.

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::RpcError;

/// A response: a result or an error for one id.
#[derive(Debug, Serialize)]
pub struct Response {
    jsonrpc: &'static str,
    id: Box<RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorObject>,
}

#[derive(Debug, Serialize)]
struct ErrorObject {
    code: i64,
    message: String,
    data: Value,
}

impl Response {
    /// The response to `id` with what its method returned.
    pub fn new(id: Box<RawValue>, outcome: Result<Value, RpcError>) -> Self {
        match outcome {
            Ok(result) => Response { jsonrpc: "2.0", id, result: Some(result), error: None },
            Err(e) => Response {
                jsonrpc: "2.0",
                id,
                result: None,
                error: Some(ErrorObject { code: e.code(), message: e.message(), data: e.data() }),
            },
        }
    }
}

/// The raw JSON `null`, the id of a response to a request whose id could
/// not be read.
pub fn null_id() -> Box<RawValue> {
    RawValue::from_string("null".into()).expect("\"null\" is valid JSON")
}

/// The bytes of one response.
pub fn encode_one(response: &Response) -> Option<Vec<u8>> {
    Some(serde_json::to_vec(response).expect("a response of JSON values and strings serialises"))
}

/// The bytes of a batch's responses; `None` if all were notifications.
pub fn encode_batch(responses: &[Response]) -> Option<Vec<u8>> {
    if responses.is_empty() {
        return None;
    }
    Some(serde_json::to_vec(responses).expect("responses of JSON values and strings serialise"))
}
