//! A real `logkv serve` for integration tests: free loopback ports, a
//! temporary data directory, started with any extra flags and environment
//! (none of the caller's `LOGKV_*` settings but `LOGKV_LOG_FILTER`), ready once
//! `GET /readyz` answers 200; stopped with SIGTERM (its exit status
//! reported) or SIGKILL, and killed when dropped.
//!
//! `mod server;` in a test file of this crate, then `Server::start()` or
//! `Server::builder().arg("--durability").arg("none").start()`.

#![allow(dead_code)]

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Longest wait for the server to become ready or to exit: a hang
/// detector, not a measurement.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// The `logkv` binary of this build.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_logkv"))
}

/// Runs `logkv ARGS` to the end with none of the caller's `LOGKV_*`
/// settings (which would change what the command does).
pub fn logkv(args: &[&str]) -> std::process::Output {
    let mut command = Command::new(binary());
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(|k| k.starts_with("LOGKV_")) {
            command.env_remove(key);
        }
    }
    command.args(args).output().expect("run logkv")
}

/// A loopback port nothing listens on right now (the OS picks it).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

/// How to start a server.
pub struct Builder {
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    data_dir: Option<PathBuf>,
}

impl Builder {
    /// Adds a flag or value after `logkv serve ...`.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Adds several.
    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable of the server process (the caller's
    /// own `LOGKV_*` variables, but `LOGKV_LOG_FILTER`, are not passed on).
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// Uses `dir` as the data directory (kept after the server ends)
    /// instead of a fresh temporary one.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// Starts the server and waits until it is ready; panics with its
    /// stderr if it exits or does not become ready in time.
    pub fn start(self) -> Server {
        match self.try_start() {
            Ok(server) => server,
            Err(failed) => panic!("logkv serve did not start: {failed}"),
        }
    }

    /// Starts the server and waits until it is ready, or returns how it
    /// failed: its exit status and stderr if it exited.
    pub fn try_start(self) -> Result<Server, Failed> {
        // A port found free can be taken by another process before the
        // server binds it: start again on new ports when that happened.
        let mut attempts = 0;
        loop {
            match self.start_once() {
                Err(f) if f.stderr.contains("cannot listen on") && attempts < 5 => attempts += 1,
                result => return result,
            }
        }
    }

    fn start_once(&self) -> Result<Server, Failed> {
        let temp = tempfile::tempdir().expect("temporary directory");
        let data_dir = self.data_dir.clone().unwrap_or_else(|| temp.path().join("data"));
        let log = temp.path().join("stderr.log");
        let resp = format!("127.0.0.1:{}", free_port());
        let http = format!("127.0.0.1:{}", free_port());
        let mut command = Command::new(binary());
        // A variable of the caller's shell must not configure the server
        // under test; `LOGKV_LOG_FILTER` only filters its log.
        for (key, _) in std::env::vars_os() {
            if key.to_str().is_some_and(|k| k.starts_with("LOGKV_") && k != "LOGKV_LOG_FILTER") {
                command.env_remove(key);
            }
        }
        command
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("serve")
            .arg("--resp")
            .arg(&resp)
            .arg("--http")
            .arg(&http)
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("stderr log"));
        let child = command.spawn().expect("spawn logkv serve");
        let mut server = Server { child: Some(child), resp, http, data_dir, log, _temp: temp };
        let deadline = Instant::now() + PATIENCE;
        // Over TLS the plain-HTTP probe cannot ask /readyz: the listeners'
        // log line says they are bound instead.
        let tls = self.args.iter().any(|a| a == "--tls-cert");
        let ready = |server: &Server| {
            if tls {
                server.stderr().contains("listening")
            } else {
                http_status(&server.http, "/readyz") == Some(200)
            }
        };
        loop {
            if let Some(status) = server.child.as_mut().expect("running").try_wait().expect("try_wait") {
                server.child = None;
                return Err(Failed { status: Some(status), stderr: server.stderr() });
            }
            if ready(&server) {
                return Ok(server);
            }
            if Instant::now() > deadline {
                let stderr = server.stderr();
                return Err(Failed { status: None, stderr });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Why a server did not start.
#[derive(Debug)]
pub struct Failed {
    /// Its exit status, if it exited (`None`: not ready in time).
    pub status: Option<ExitStatus>,
    /// What it wrote on stderr.
    pub stderr: String,
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(s) => write!(f, "exited with {s}; stderr:\n{}", self.stderr),
            None => write!(f, "not ready after {PATIENCE:?}; stderr:\n{}", self.stderr),
        }
    }
}

/// A running `logkv serve`.
pub struct Server {
    child: Option<Child>,
    /// The Redis protocol address, `127.0.0.1:PORT`.
    pub resp: String,
    /// The HTTP address, `127.0.0.1:PORT`.
    pub http: String,
    /// The data directory.
    pub data_dir: PathBuf,
    log: PathBuf,
    _temp: tempfile::TempDir,
}

impl Server {
    /// How to start one with extra flags or environment.
    pub fn builder() -> Builder {
        Builder { args: Vec::new(), envs: Vec::new(), data_dir: None }
    }

    /// Starts one with default settings (and durability `none`, which
    /// tests of replies do not depend on).
    pub fn start() -> Server {
        Server::builder().args(["--durability", "none"]).start()
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// The RESP address as `redis://` URL.
    pub fn redis_url(&self) -> String {
        format!("redis://{}/", self.resp)
    }

    /// The HTTP address as URL, `http://127.0.0.1:PORT` (no trailing `/`).
    pub fn http_url(&self) -> String {
        format!("http://{}", self.http)
    }

    /// What the server wrote on stderr (its log) so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The data directory's path.
    pub fn dir(&self) -> &Path {
        &self.data_dir
    }

    /// A raw TCP connection to the RESP port.
    pub fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(&self.resp).expect("connect to RESP");
        stream.set_read_timeout(Some(PATIENCE)).expect("read timeout");
        stream
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn stop(mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        self.wait()
    }

    /// Sends SIGTERM; the server must drain and exit 0 (panics with its
    /// stderr otherwise).
    pub fn stop_cleanly(mut self) {
        self.signal(libc::SIGTERM);
        let status = self.wait();
        assert!(status.success(), "SIGTERM must exit 0, got {status}; stderr:\n{}", self.stderr());
    }

    /// Sends SIGKILL (no shutdown at all) and waits for the process to end.
    pub fn kill9(mut self) -> ExitStatus {
        self.signal(libc::SIGKILL);
        self.wait()
    }

    fn signal(&mut self, signal: libc::c_int) {
        if let Some(child) = &self.child {
            // SAFETY: kill(2) on the pid of a child this value owns and has not reaped.
            unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        }
    }

    fn wait(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("logkv serve did not exit in {PATIENCE:?}; stderr:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The status code of `GET path` on `addr`, or `None` if it cannot be had.
pub fn http_status(addr: &str, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut head = Vec::new();
    stream.read_to_end(&mut head).ok()?;
    let text = String::from_utf8_lossy(&head);
    text.split(' ').nth(1)?.parse().ok()
}

/// Sends raw RESP bytes and reads until `expected_replies` complete replies
/// arrived; returns the bytes read.
pub fn roundtrip(stream: &mut TcpStream, request: &[u8], expected_replies: usize) -> Vec<u8> {
    stream.write_all(request).expect("write request");
    let mut got = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    while resp::count_replies(&got) < expected_replies {
        let n = stream.read(&mut buf).expect("read reply");
        assert!(n > 0, "connection closed after {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    got
}

/// A minimal RESP2/RESP3 reply reader for tests that compare bytes.
pub mod resp {
    /// The length in bytes of the complete reply at the front of `buf`,
    /// or `None` if it is not complete yet.
    pub fn reply_len(buf: &[u8]) -> Option<usize> {
        let line_end = buf.windows(2).position(|w| w == b"\r\n")?;
        let head = &buf[1..line_end];
        let after = line_end + 2;
        let number = || std::str::from_utf8(head).ok()?.parse::<i64>().ok();
        match buf[0] {
            b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => Some(after),
            b'$' | b'=' | b'!' => {
                let n = number()?;
                if n < 0 {
                    return Some(after);
                }
                let end = after + n as usize + 2;
                (buf.len() >= end).then_some(end)
            }
            b'*' | b'~' | b'%' | b'>' | b'|' => {
                let n = number()?;
                if n < 0 {
                    return Some(after);
                }
                let items = if matches!(buf[0], b'%' | b'|') { n as usize * 2 } else { n as usize };
                let mut at = after;
                for _ in 0..items {
                    at += reply_len(&buf[at..])?;
                }
                Some(at)
            }
            _ => panic!("not a RESP reply: {:?}", String::from_utf8_lossy(buf)),
        }
    }

    /// How many complete replies `buf` holds.
    pub fn count_replies(buf: &[u8]) -> usize {
        let mut at = 0;
        let mut n = 0;
        while at < buf.len() {
            match reply_len(&buf[at..]) {
                Some(len) => {
                    at += len;
                    n += 1;
                }
                None => break,
            }
        }
        n
    }

    /// `buf` cut into its complete replies.
    pub fn split(buf: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < buf.len() {
            let len = reply_len(&buf[at..]).expect("complete reply");
            out.push(buf[at..at + len].to_vec());
            at += len;
        }
        out
    }

    /// A request as a RESP multibulk array.
    pub fn request(args: &[&[u8]]) -> Vec<u8> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(arg);
            out.extend_from_slice(b"\r\n");
        }
        out
    }
}

/// `promtool check metrics` on `text`: its parser and linter must find
/// nothing.
pub fn promtool_check(text: &str) {
    let mut child = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            panic!("cannot run promtool ({e}): install Debian's prometheus package, as scripts/test.sh does")
        }
    };
    child.stdin.take().unwrap().write_all(text.as_bytes()).expect("write to promtool");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics: {}\n{}{}\nin\n{text}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
