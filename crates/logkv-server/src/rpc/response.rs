//! Building responses: one object per answered request, an array for a
//! batch. Ids are written back as the raw JSON they came in.
//!
//! Every response is capped at `max_response_bytes`, checked as it is
//! serialized: a batch's array is written one response at a time and
//! stops growing at the cap, so memory never holds more than the cap (plus
//! the one result being encoded) whatever a batch asks for.

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
    /// The id it answers.
    pub fn id(&self) -> &RawValue {
        &self.id
    }

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

/// The bytes of one response, or `None` if they would exceed `limit`
/// (serializing stops there).
pub fn encode_capped(response: &Response, limit: usize) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    serde_json::to_writer(Capped { out: &mut out, limit }, response).ok()?;
    Some(out)
}

/// The bytes of a batch's responses; `None` if all were notifications.
pub fn encode_batch(responses: &[Response]) -> Option<Vec<u8>> {
    if responses.is_empty() {
        return None;
    }
    Some(serde_json::to_vec(responses).expect("responses of JSON values and strings serialise"))
}

/// A batch's response array, written as its responses come, within a
/// byte limit.
pub struct BatchWriter {
    out: Vec<u8>,
    limit: usize,
}

impl BatchWriter {
    /// An empty array that may grow to `limit` bytes.
    pub fn new(limit: usize) -> Self {
        BatchWriter { out: Vec::new(), limit }
    }

    /// Appends `response` if the array, closed, stays within the limit;
    /// otherwise appends nothing and answers `false`.
    pub fn push(&mut self, response: &Response) -> bool {
        let before = self.out.len();
        self.out.push(if before == 0 { b'[' } else { b',' });
        // One byte is kept for the closing `]`.
        let limit = self.limit.saturating_sub(1);
        if self.out.len() > limit
            || serde_json::to_writer(Capped { out: &mut self.out, limit }, response).is_err()
        {
            self.out.truncate(before);
            return false;
        }
        true
    }

    /// Appends `response` whatever the limit: for the short errors that
    /// answer the calls past it, so that every call gets an answer.
    pub fn push_anyway(&mut self, response: &Response) {
        self.out.push(if self.out.is_empty() { b'[' } else { b',' });
        serde_json::to_writer(&mut self.out, response).expect("a response serialises");
    }

    /// The array's bytes; `None` if nothing was pushed (only notifications).
    pub fn finish(mut self) -> Option<Vec<u8>> {
        if self.out.is_empty() {
            return None;
        }
        self.out.push(b']');
        Some(self.out)
    }
}

/// A writer that refuses to grow `out` past `limit` bytes.
struct Capped<'a> {
    out: &'a mut Vec<u8>,
    limit: usize,
}

impl std::io::Write for Capped<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.out.len() + buf.len() > self.limit {
            return Err(std::io::Error::other("over the response limit"));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
