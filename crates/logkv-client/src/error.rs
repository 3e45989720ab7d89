//! Why a call failed, as one typed error: each variant is a different
//! thing for the caller to do (fix the URL, start the server, trust its
//! certificate, read the server's refusal).

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

/// A failed call, or a client that cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The URL cannot be used: no `http`/`https` scheme, no host.
    #[error("{url} is not a usable URL ({detail}); expected e.g. http://127.0.0.1:7380")]
    BadUrl { url: String, detail: String },
    /// A CA certificate file given to the builder cannot be read or holds
    /// no certificate.
    #[error("CA certificate {}: {detail}", path.display())]
    CaCert { path: PathBuf, detail: String },
    /// Nothing answered at the URL: connection refused, host not found, or
    /// no connection within the timeout.
    #[error("cannot reach a logkv server at {url}: {detail} (is `logkv serve` running there?)")]
    Unreachable { url: String, detail: String },
    /// The TLS handshake failed: most often a certificate the client does
    /// not trust (give its CA with `ClientBuilder::ca_cert`).
    #[error("TLS with {url} failed: {detail}")]
    Tls { url: String, detail: String },
    /// Connected, but the answer did not come within the timeout.
    #[error("{method} at {url}: no answer within {timeout:?}")]
    Timeout { url: String, method: String, timeout: Duration },
    /// The exchange broke after connecting (a dropped connection, bad HTTP
    /// or WebSocket framing).
    #[error("the request to {url} failed: {detail}")]
    Transport { url: String, detail: String },
    /// The server answered with an HTTP status other than 200 (JSON-RPC
    /// errors come with 200): e.g. 413 for a request over its size limit,
    /// 503 when it has too many connections.
    #[error("{url} answered HTTP status {status}: {body}")]
    Http { url: String, status: u16, body: String },
    /// The server answered with a JSON-RPC error object (docs/jsonrpc.md
    /// lists the codes). `data` is `Null` when the error has none.
    #[error("the server refused {method}: {message}{} (code {code})", data_suffix(data))]
    Rpc { method: String, code: i64, message: String, data: Value },
    /// The entry could not be signed (too many transactions for one entry,
    /// a body too large to encode).
    #[error("cannot sign the entry: {0}")]
    Signing(#[source] logkv_runtime::envelope::EnvelopeError),
    /// The answer is not what the method promises.
    #[error("the server's answer to {method} is not what logkv expects: {detail}")]
    BadAnswer { method: String, detail: String },
}

impl Error {
    /// The JSON-RPC error code, if the server refused the call.
    pub fn rpc_code(&self) -> Option<i64> {
        match self {
            Error::Rpc { code, .. } => Some(*code),
            _ => None,
        }
    }

    pub(crate) fn bad_answer(method: &str, detail: impl Into<String>) -> Self {
        Error::BadAnswer { method: method.to_string(), detail: detail.into() }
    }
}

/// `": data"`: a string as it is, other JSON as its text, nothing for none.
fn data_suffix(data: &Value) -> String {
    match data {
        Value::Null => String::new(),
        Value::String(s) if s.is_empty() => String::new(),
        Value::String(s) => format!(": {s}"),
        other => format!(": {other}"),
    }
}

/// What a call returns.
pub type Result<T, E = Error> = std::result::Result<T, E>;
