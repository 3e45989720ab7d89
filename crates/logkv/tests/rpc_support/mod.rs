//! A JSON-RPC client of a `server::Server` (the test's real `logkv
//! serve`), signed entries of a client-held key, and raw RESP.
//!
//! `mod server; mod rpc_support;` in a test file of this crate, then
//! `let server = Server::builder().start(); let rpc = Rpc::new(&server);`.

#![allow(dead_code)]

use logkv_runtime::codec::{native, NATIVE};
use logkv_runtime::envelope::{Entry, TxPart};
use logkv_runtime::signing::Signer;
use logkv_runtime::types::StreamId;
use serde_json::{json, Value};

use super::server::{resp, roundtrip, Server, PATIENCE};

/// A JSON-RPC client of one server.
pub struct Rpc<'a> {
    server: &'a Server,
    agent: ureq::Agent,
}

impl<'a> Rpc<'a> {
    /// A client of `server`'s HTTP address.
    pub fn new(server: &'a Server) -> Rpc<'a> {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(PATIENCE))
            .http_status_as_error(false)
            // No pooled connection: tests count the server's connections.
            .max_idle_connections(0)
            .build()
            .into();
        Rpc { server, agent }
    }

    /// `http://ADDR/`.
    pub fn url(&self) -> String {
        format!("{}/", self.server.http_url())
    }

    /// `GET path`: status and body.
    pub fn get(&self, path: &str) -> (u16, String) {
        match self.agent.get(format!("{}{path}", self.server.http_url())).call() {
            Ok(mut r) => (r.status().as_u16(), r.body_mut().read_to_string().unwrap_or_default()),
            Err(_) => (0, String::new()),
        }
    }
    /// `POST /` of `body` with an optional bearer token: status and body.
    pub fn post(&self, body: &str, token: Option<&str>) -> (u16, String) {
        let mut request = self.agent.post(self.url()).header("content-type", "application/json");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let mut r = request.send(body.to_string()).expect("POST /");
        (r.status().as_u16(), r.body_mut().read_to_string().expect("read the answer"))
    }

    /// The whole response object to `method(params)` (status 200 checked).
    pub fn call_with(&self, method: &str, params: Value, token: Option<&str>) -> Value {
        let request = json!({ "jsonrpc": "2.0", "id": 7, "method": method, "params": params });
        let (status, body) = self.post(&request.to_string(), token);
        assert_eq!(status, 200, "{method}: {body}");
        let answer: Value = serde_json::from_str(&body).expect("a JSON answer");
        assert_eq!(answer["id"], json!(7), "{body}");
        answer
    }

    /// The response object to `method(params)`.
    pub fn call(&self, method: &str, params: Value) -> Value {
        self.call_with(method, params, None)
    }

    /// The result of `method(params)`, which must succeed.
    pub fn result(&self, method: &str, params: Value) -> Value {
        let answer = self.call(method, params);
        assert!(answer.get("error").is_none(), "{method} failed: {answer}");
        answer["result"].clone()
    }

    /// The error object of `method(params)`, which must fail.
    pub fn error(&self, method: &str, params: Value) -> Value {
        let answer = self.call(method, params);
        assert!(answer.get("result").is_none(), "{method} should fail: {answer}");
        answer["error"].clone()
    }

    /// Signs `writes` of `signer` as one native transaction at a nonce the
    /// server reserves and submits it; the `kv_submit` result.
    pub fn submit(&self, signer: &Signer, writes: Vec<(StreamId, &[u8], native::Op)>) -> Value {
        let nonce = self.result("kv_nextNonce", json!([signer.address().to_string()])).as_u64().unwrap();
        self.result("kv_submit", json!([entry_hex(signer, nonce, vec![native_tx(writes)])]))
    }

    /// Runs one RESP command; the reply line (and bulk) as text.
    pub fn redis(&self, args: &[&str]) -> String {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        let reply = roundtrip(&mut self.server.connect(), &resp::request(&args), 1);
        String::from_utf8_lossy(&reply).into_owned()
    }
}

/// A client-held key.
pub fn signer(n: u8) -> Signer {
    Signer::from_secret_bytes([n; 32]).expect("a valid secret")
}

/// One native transaction of `writes`, without version checks.
pub fn native_tx(writes: Vec<(StreamId, &[u8], native::Op)>) -> TxPart {
    let body = native::Body {
        version: u64::MAX,
        check_reads_only: false,
        reads: Vec::new(),
        writes: writes
            .into_iter()
            .map(|(stream, key, op)| native::BodyWrite { stream, key: key.to_vec(), op })
            .collect(),
        controls: Vec::new(),
    };
    TxPart { codec: NATIVE, tags: body.tags(), body: native::encode(&body) }
}

/// `0x` and the hex of the entry `signer` signs with `nonce`.
pub fn entry_hex(signer: &Signer, nonce: u64, txs: Vec<TxPart>) -> String {
    let entry = Entry { sender: signer.address(), nonce, txs };
    format!("0x{}", hex::encode(entry.encode_signed(signer).expect("encode the entry")))
}

/// A JSON-RPC client of the server's WebSocket endpoint (`/ws`), for
/// `kv_watch` subscriptions.
pub struct Ws(tungstenite::WebSocket<std::net::TcpStream>);

impl Ws {
    /// Connects to `server`'s `/ws`.
    pub fn connect(server: &Server) -> Ws {
        let stream = std::net::TcpStream::connect(&server.http).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        let (ws, _) =
            tungstenite::client(format!("ws://{}/ws", server.http), stream).expect("WebSocket handshake");
        Ws(ws)
    }

    /// Sends one request.
    pub fn send(&mut self, request: Value) {
        self.0.send(tungstenite::Message::text(request.to_string())).unwrap();
    }

    /// The next message (answer or notification), skipping pings.
    pub fn next(&mut self) -> Value {
        loop {
            match self.0.read().expect("a message before the timeout") {
                tungstenite::Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
                tungstenite::Message::Ping(_) | tungstenite::Message::Pong(_) => continue,
                other => panic!("unexpected message {other:?}"),
            }
        }
    }

    /// Subscribes to `stream`'s changes from version `from`; the
    /// subscription id.
    pub fn watch(&mut self, stream: StreamId, from: u64) -> Value {
        self.send(
            json!({ "jsonrpc": "2.0", "id": 1, "method": "kv_watch", "params": [stream.to_string(), from] }),
        );
        let answer = self.next();
        assert!(answer["result"].is_string(), "{answer}");
        answer["result"].clone()
    }

    /// The next `n` changes of `subscription`: (version, key, value).
    pub fn changes(&mut self, subscription: &Value, n: usize) -> Vec<(u64, Vec<u8>, Option<Vec<u8>>)> {
        use base64::Engine;
        let bytes =
            |v: &Value| base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap()).unwrap();
        (0..n)
            .map(|_| {
                let note = self.next();
                assert_eq!(note["method"], json!("kv_watch"), "{note}");
                assert_eq!(&note["params"]["subscription"], subscription, "{note}");
                let r = &note["params"]["result"];
                (
                    r["version"].as_u64().unwrap(),
                    bytes(&r["key"]),
                    (!r["value"].is_null()).then(|| bytes(&r["value"])),
                )
            })
            .collect()
    }
}
