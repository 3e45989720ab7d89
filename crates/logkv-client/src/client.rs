//! The connection to one server: its URL, TLS settings and timeouts, and
//! [`Client::call`], the JSON-RPC 2.0 exchange every typed call goes
//! through (HTTP POST to the server's URL).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::tls;

/// How long one call may take unless [`ClientBuilder::timeout`] says
/// otherwise: long enough for a write to become durable on a busy server,
/// short enough that a hung server does not hang a script.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How to build a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    url: String,
    ca_files: Vec<PathBuf>,
    token: Option<String>,
    timeout: Duration,
}

impl ClientBuilder {
    /// Also trust the CA certificate(s) in the PEM file at `path` for
    /// `https://` and `wss://` (a server with a self-signed or private CA's
    /// certificate). The system's CA certificates are trusted too.
    pub fn ca_cert(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_files.push(path.into());
        self
    }

    /// Presents `token` as `Authorization: Bearer` on every call and on
    /// kv_watch's WebSocket: a user's token on a server with users
    /// (docs/server.md, "HTTP access"), or the admin token the `admin_*`
    /// methods need.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// How long connecting, and then each call, may take (default
    /// [`DEFAULT_TIMEOUT`]). Calls that wait on the server by design
    /// (`kv_waitForVersion`, the admin jobs) get their own, longer bound.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The client; checks the URL and loads the certificates, but sends
    /// nothing until the first call.
    pub fn build(self) -> Result<Client> {
        let bad = |detail: &str| Error::BadUrl { url: self.url.clone(), detail: detail.to_string() };
        let endpoint = Url::parse(&self.url).map_err(|e| bad(&e.to_string()))?;
        let secure = match endpoint.scheme() {
            "http" => false,
            "https" => true,
            _ => return Err(bad("the scheme must be http or https")),
        };
        if endpoint.host_str().is_none_or(str::is_empty) {
            return Err(bad("no host"));
        }
        let tls = tls::config(&self.ca_files, secure)?;
        let http = reqwest::Client::builder()
            // The server is reached directly, as the WebSocket of `watch`
            // is: a proxy variable meant for the web must not reroute it.
            .no_proxy()
            .connect_timeout(self.timeout)
            .use_preconfigured_tls((*tls).clone())
            .build()
            .map_err(|e| Error::Tls { url: self.url.clone(), detail: e.to_string() })?;
        Ok(Client {
            inner: Arc::new(Inner {
                url: self.url,
                endpoint,
                tls,
                http,
                token: self.token,
                timeout: self.timeout,
                next_id: AtomicU64::new(1),
            }),
        })
    }
}

/// A client of one `logkv serve` (cheap to clone; clones share
/// connections). See the crate documentation for an example.
#[derive(Debug, Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    /// The URL as given, for messages.
    pub(crate) url: String,
    pub(crate) endpoint: Url,
    pub(crate) tls: Arc<rustls::ClientConfig>,
    http: reqwest::Client,
    pub(crate) token: Option<String>,
    pub(crate) timeout: Duration,
    next_id: AtomicU64,
}

impl Client {
    /// A client of the server whose JSON-RPC is at `url`
    /// (`http://HOST:PORT` or `https://…`), with default settings.
    pub fn new(url: &str) -> Result<Client> {
        Client::builder(url).build()
    }

    /// How to build a client of `url` with other settings.
    pub fn builder(url: &str) -> ClientBuilder {
        ClientBuilder { url: url.to_string(), ca_files: Vec::new(), token: None, timeout: DEFAULT_TIMEOUT }
    }

    /// The URL the client was built with.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// Calls `method` with positional `params` and returns its `result`:
    /// the raw JSON-RPC call the typed methods are made of, for a method
    /// they do not cover.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value> {
        self.call_within(method, params, Some(self.inner.timeout)).await
    }

    /// [`Client::call`] bounded by `timeout` (`None`: only the connection
    /// attempt is bounded).
    pub(crate) async fn call_within(
        &self,
        method: &str,
        params: Value,
        timeout: Option<Duration>,
    ) -> Result<Value> {
        let inner = &self.inner;
        let id = inner.next_id.fetch_add(1, Relaxed);
        let request = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        let mut post = inner
            .http
            .post(inner.endpoint.clone())
            .header("content-type", "application/json")
            .body(request.to_string());
        if let Some(token) = &inner.token {
            post = post.bearer_auth(token);
        }
        // reqwest has no "no timeout" per request: a day stands for none.
        post = post.timeout(timeout.unwrap_or(Duration::from_secs(24 * 3600)));
        let response = post.send().await.map_err(|e| self.http_error(method, e))?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(|e| self.http_error(method, e))?;
        if status != 200 {
            let body = body.chars().take(200).collect();
            return Err(Error::Http { url: inner.url.clone(), status, body });
        }
        let mut answer: Value =
            serde_json::from_str(&body).map_err(|e| Error::bad_answer(method, format!("not JSON: {e}")))?;
        if let Some(error) = answer.get_mut("error") {
            return Err(rpc_error(method, error));
        }
        if answer.get("id") != Some(&json!(id)) {
            return Err(Error::bad_answer(method, format!("the response is not for request {id}")));
        }
        answer
            .get_mut("result")
            .map(Value::take)
            .ok_or_else(|| Error::bad_answer(method, "no result and no error"))
    }

    /// What a failed HTTP exchange means for the caller.
    fn http_error(&self, method: &str, e: reqwest::Error) -> Error {
        let url = self.inner.url.clone();
        if let Some(detail) = tls::tls_failure(&e) {
            return Error::Tls { url, detail };
        }
        if e.is_connect() {
            let detail = if e.is_timeout() {
                format!("no connection within {:?}", self.inner.timeout)
            } else {
                root_cause(&e)
            };
            return Error::Unreachable { url, detail };
        }
        if e.is_timeout() {
            return Error::Timeout { url, method: method.to_string(), timeout: self.inner.timeout };
        }
        Error::Transport { url, detail: root_cause(&e) }
    }
}

/// A JSON-RPC error object as [`Error::Rpc`].
pub(crate) fn rpc_error(method: &str, error: &mut Value) -> Error {
    let message = match error.get("message") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    Error::Rpc {
        method: method.to_string(),
        code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
        message,
        data: error.get_mut("data").map(Value::take).unwrap_or(Value::Null),
    }
}

/// The innermost error's message: "Connection refused (os error 111)"
/// says more than the layers of client wrapping around it.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last = e;
    while let Some(source) = last.source() {
        last = source;
    }
    last.to_string()
}
