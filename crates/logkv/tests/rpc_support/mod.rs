//! A real `logkv serve` for HTTP tests: started on OS-chosen loopback
//! ports, ready once `/readyz` answers 200, stopped with SIGTERM (which
//! must exit 0) or killed when a test fails; a JSON-RPC client over it,
//! signed entries of a client-held key, and raw RESP.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use logkv_runtime::codec::{native, NATIVE};
use logkv_runtime::envelope::{Entry, TxPart};
use logkv_runtime::signing::Signer;
use logkv_runtime::types::StreamId;
use serde_json::{json, Value};

/// Longest wait for a server to start or an answer to come: a hang
/// detector, not a measurement.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// A running `logkv serve`.
pub struct Server {
    child: Child,
    /// RESP address.
    pub resp: String,
    /// HTTP address.
    pub http: String,
    log: PathBuf,
    agent: ureq::Agent,
}

impl Server {
    /// Starts `logkv serve` on `dir` with `args` added.
    pub fn start(dir: &Path, args: &[&str]) -> Server {
        std::fs::create_dir_all(dir).unwrap();
        let log = dir.with_extension("log");
        let stderr = std::fs::File::create(&log).expect("create the server log");
        let child = Command::new(env!("CARGO_BIN_EXE_logkv"))
            .arg("serve")
            .arg("--data-dir")
            .arg(dir)
            .args(["--resp", "127.0.0.1:0", "--http", "127.0.0.1:0"])
            .args(args)
            .env("LOGKV_LOG", "info")
            .env_remove("LOGKV_ADMIN_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn logkv serve");
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(PATIENCE))
            .http_status_as_error(false)
            // No pooled connection: tests count the server's connections.
            .max_idle_connections(0)
            .build()
            .into();
        let mut server = Server { child, resp: String::new(), http: String::new(), log, agent };
        let started = Instant::now();
        let (resp, http) = loop {
            if let Some(addrs) = listening(&server.log) {
                break addrs;
            }
            if let Some(status) = server.child.try_wait().expect("poll the server") {
                panic!("logkv serve exited ({status}) before listening:\n{}", server.log_text());
            }
            assert!(started.elapsed() < PATIENCE, "logkv serve did not listen:\n{}", server.log_text());
            thread::sleep(Duration::from_millis(20));
        };
        (server.resp, server.http) = (resp, http);
        while server.get("/readyz").0 != 200 {
            assert!(started.elapsed() < PATIENCE, "/readyz never answered 200:\n{}", server.log_text());
            thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// What the server logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `http://ADDR/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.http)
    }

    /// `GET path`: status and body.
    pub fn get(&self, path: &str) -> (u16, String) {
        match self.agent.get(format!("http://{}{path}", self.http)).call() {
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
        let mut stream = TcpStream::connect(&self.resp).expect("connect to RESP");
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut out = format!("*{}\r\n", args.len());
        for a in args {
            out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        stream.write_all(out.as_bytes()).unwrap();
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if let Some(len) = line.strip_prefix('$').and_then(|l| l.trim().parse::<usize>().ok()) {
            let mut bulk = vec![0; len + 2];
            reader.read_exact(&mut bulk).unwrap();
            line.push_str(&String::from_utf8_lossy(&bulk));
        }
        line
    }

    /// SIGTERM; the server must drain and exit 0.
    pub fn terminate(mut self) {
        let pid = self.child.id() as libc::pid_t;
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0, "SIGTERM");
        let status = self.child.wait().expect("reap");
        assert!(status.success(), "SIGTERM must exit 0, got {status}:\n{}", self.log_text());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A failed assertion must not leave the server running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The RESP and HTTP addresses from the server's "listening" log line.
fn listening(log: &Path) -> Option<(String, String)> {
    let text = std::fs::read_to_string(log).ok()?;
    let line = text.lines().find(|l| l.contains("listening"))?;
    let field = |name: &str| {
        let start = line.find(&format!("{name}="))? + name.len() + 1;
        Some(line[start..].split_whitespace().next()?.trim_matches('"').to_string())
    };
    Some((field("resp")?, field("http")?))
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
