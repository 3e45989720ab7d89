//! `kv_watch` as a [`Stream`]: a stream's changes in version order, from a
//! version on — first its history, then live writes as the server
//! acknowledges them. Each watch has its own WebSocket (`GET /ws`, `wss://`
//! for an `https://` server, with the client's TLS settings); dropping the
//! [`Watch`] closes it.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::stream::{self, BoxStream, Stream};
use futures_util::{SinkExt, StreamExt};
use logkv_runtime::types::StreamId;
use reqwest::Url;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::answer::{str_field, u64_field};
use crate::client::rpc_error;
use crate::error::{Error, Result};
use crate::{tls, Client};

/// One write to a key of the watched stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The version that wrote it.
    pub version: u64,
    pub key: Vec<u8>,
    /// The new value; `None` when the write deleted the key.
    pub value: Option<Vec<u8>>,
}

/// A `kv_watch` subscription: a stream of [`Change`]s that ends after its
/// first error. The server closes a subscription whose client reads too
/// slowly (an [`Error::Rpc`] with code -32030): watch again from the last
/// version seen plus one.
pub struct Watch {
    subscription: String,
    changes: BoxStream<'static, Result<Change>>,
}

impl Watch {
    /// The server's id of the subscription.
    pub fn subscription(&self) -> &str {
        &self.subscription
    }
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch").field("subscription", &self.subscription).finish_non_exhaustive()
    }
}

impl Stream for Watch {
    type Item = Result<Change>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.changes.as_mut().poll_next(cx)
    }
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

const METHOD: &str = "kv_watch";

impl Client {
    /// Watches `stream`'s writes at version `from` and later; answers once
    /// the server has accepted the subscription.
    pub async fn watch(&self, stream: &StreamId, from: u64) -> Result<Watch> {
        let url = self.inner.url.clone();
        let timeout = self.inner.timeout;
        let ws_url = ws_url(&self.inner.endpoint);
        let connector = tokio_tungstenite::Connector::Rustls(self.inner.tls.clone());
        let mut upgrade = ws_url.as_str().into_client_request().map_err(|e| ws_error(&url, e, true))?;
        if let Some(token) = &self.inner.token {
            let value = format!("Bearer {token}").parse().map_err(|_| Error::BadUrl {
                url: url.clone(),
                detail: "the token cannot be sent in a header".into(),
            })?;
            upgrade.headers_mut().insert("authorization", value);
        }
        let connect = tokio_tungstenite::connect_async_tls_with_config(upgrade, None, true, Some(connector));
        let (mut socket, _) = tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| Error::Unreachable {
                url: url.clone(),
                detail: format!("no connection within {timeout:?}"),
            })?
            .map_err(|e| ws_error(&url, e, true))?;
        let request =
            json!({ "jsonrpc": "2.0", "id": 1, "method": METHOD, "params": [stream.to_string(), from] });
        socket.send(Message::Text(request.to_string().into())).await.map_err(|e| ws_error(&url, e, false))?;
        let mut answer = tokio::time::timeout(timeout, next_json(&mut socket, &url))
            .await
            .map_err(|_| Error::Timeout { url: url.clone(), method: METHOD.into(), timeout })??;
        if let Some(error) = answer.get_mut("error") {
            return Err(rpc_error(METHOD, error));
        }
        if answer.get("id") != Some(&json!(1)) {
            return Err(Error::bad_answer(
                METHOD,
                format!("expected the answer to the subscription, got {answer}"),
            ));
        }
        let subscription = str_field(METHOD, &answer, "result")?.to_string();
        let id = subscription.clone();
        // The socket is the state; `None` once an error has ended the watch.
        let changes = stream::unfold(Some(socket), move |socket| {
            let (url, id) = (url.clone(), id.clone());
            async move {
                let mut socket = socket?;
                match next_change(&mut socket, &url, &id).await {
                    Ok(change) => Some((Ok(change), Some(socket))),
                    Err(e) => Some((Err(e), None)),
                }
            }
        });
        Ok(Watch { subscription, changes: changes.boxed() })
    }
}

/// The WebSocket URL beside the JSON-RPC one: `ws[s]://HOST:PORT/…/ws`.
fn ws_url(endpoint: &Url) -> Url {
    let mut url = endpoint.clone();
    let scheme = if endpoint.scheme() == "https" { "wss" } else { "ws" };
    url.set_scheme(scheme).expect("http(s) and ws(s) are both special schemes");
    let path = endpoint.path();
    url.set_path(&if path.ends_with('/') { format!("{path}ws") } else { format!("{path}/ws") });
    url.set_query(None);
    url
}

/// The next notification of subscription `id` as a change.
async fn next_change(socket: &mut Socket, url: &str, id: &str) -> Result<Change> {
    let message = next_json(socket, url).await?;
    let params = &message["params"];
    if message["method"] != METHOD || params["subscription"] != id {
        return Err(Error::bad_answer(METHOD, format!("not a notification of subscription {id}: {message}")));
    }
    if let Some(mut error) = params.get("error").cloned() {
        return Err(rpc_error(METHOD, &mut error));
    }
    let result = &params["result"];
    let value = match result.get("value") {
        None | Some(Value::Null) => None,
        Some(_) => Some(crate::answer::bytes_field(METHOD, result, "value")?),
    };
    Ok(Change {
        version: u64_field(METHOD, result, "version")?,
        key: crate::answer::bytes_field(METHOD, result, "key")?,
        value,
    })
}

/// The next text message, as JSON; a closed connection is an error (a
/// subscription never ends by itself).
async fn next_json(socket: &mut Socket, url: &str) -> Result<Value> {
    loop {
        let text = match socket.next().await {
            Some(Ok(Message::Text(text))) => text.to_string(),
            Some(Ok(Message::Binary(bytes))) => String::from_utf8_lossy(&bytes).into_owned(),
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            Some(Ok(Message::Close(_))) | None => {
                let detail = "the server closed the WebSocket".to_string();
                return Err(Error::Transport { url: url.to_string(), detail });
            }
            Some(Err(e)) => return Err(ws_error(url, e, false)),
        };
        return serde_json::from_str(&text).map_err(|e| Error::bad_answer(METHOD, format!("not JSON: {e}")));
    }
}

/// What a WebSocket failure means for the caller; `connecting`: before the
/// upgrade completed, when an I/O error means nothing answered.
fn ws_error(url: &str, e: tungstenite::Error, connecting: bool) -> Error {
    let url = url.to_string();
    if let Some(detail) = tls::tls_failure(&e) {
        return Error::Tls { url, detail };
    }
    match e {
        tungstenite::Error::Tls(e) => Error::Tls { url, detail: e.to_string() },
        tungstenite::Error::Url(e) => Error::BadUrl { url, detail: e.to_string() },
        tungstenite::Error::Http(response) => {
            let body = response.body().as_deref().map(String::from_utf8_lossy).unwrap_or_default();
            Error::Http { url, status: response.status().as_u16(), body: body.chars().take(200).collect() }
        }
        tungstenite::Error::Io(e) if connecting => Error::Unreachable { url, detail: e.to_string() },
        e => Error::Transport { url, detail: e.to_string() },
    }
}
