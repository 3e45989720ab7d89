//! Reading the fields of a method's answer, each failure a
//! [`Error::BadAnswer`] naming the method and what was missing.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;

use crate::error::{Error, Result};

pub(crate) fn u64_field(method: &str, object: &Value, field: &str) -> Result<u64> {
    object
        .get(field)
        .and_then(Value::as_u64)
        .ok_or_else(|| Error::bad_answer(method, format!("no unsigned integer `{field}` in {object}")))
}

pub(crate) fn bool_field(method: &str, object: &Value, field: &str) -> Result<bool> {
    object
        .get(field)
        .and_then(Value::as_bool)
        .ok_or_else(|| Error::bad_answer(method, format!("no boolean `{field}` in {object}")))
}

pub(crate) fn str_field<'a>(method: &str, object: &'a Value, field: &str) -> Result<&'a str> {
    object
        .get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| Error::bad_answer(method, format!("no string `{field}` in {object}")))
}

/// A base64 field's bytes.
pub(crate) fn bytes_field(method: &str, object: &Value, field: &str) -> Result<Vec<u8>> {
    STANDARD
        .decode(str_field(method, object, field)?)
        .map_err(|e| Error::bad_answer(method, format!("`{field}` is not base64: {e}")))
}

/// A number of seconds (`elapsedSeconds`) as a duration.
pub(crate) fn seconds_field(method: &str, object: &Value, field: &str) -> Result<std::time::Duration> {
    let seconds = object.get(field).and_then(Value::as_f64);
    seconds
        .and_then(|s| std::time::Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| Error::bad_answer(method, format!("no number of seconds `{field}` in {object}")))
}

pub(crate) fn as_bool(method: &str, answer: &Value) -> Result<bool> {
    answer.as_bool().ok_or_else(|| Error::bad_answer(method, format!("expected a boolean, got {answer}")))
}

pub(crate) fn as_array<'a>(method: &str, answer: &'a Value) -> Result<&'a Vec<Value>> {
    answer.as_array().ok_or_else(|| Error::bad_answer(method, format!("expected an array, got {answer}")))
}

/// Bytes as the server takes them: standard base64.
pub(crate) fn base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}
