//! A real NATS JetStream cluster for integration tests, run by
//! `scripts/nats-cluster.sh` in a temporary directory on free loopback
//! ports: started healthy with a JetStream meta leader elected (one node
//! is standalone JetStream), single nodes crashed with SIGKILL and
//! restarted on their stores, and every node stopped when dropped.
//!
//! `mod nats;` in a test file of this crate, then `Cluster::start(3)`.
//! The server is `LOGKV_NATS_SERVER` if set (so CI runs the same tests
//! against another release), else `nats-server` on PATH or in /usr/sbin;
//! a missing server fails the test, it is never skipped.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// Node i (1-based) uses BASE+i-1 for clients, BASE+100+i-1 for
/// monitoring and BASE+200+i-1 for routes (see the script).
const MONITOR_OFFSET: u16 = 100;
const ROUTE_OFFSET: u16 = 200;

/// Starts on new ports after a start lost a port to another process.
const START_ATTEMPTS: usize = 5;

/// The cluster script of this repository.
pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/nats-cluster.sh")
}

/// The `nats-server` binary the tests run; panics if there is none.
pub fn server_binary() -> PathBuf {
    const INSTALL: &str = "run `bash scripts/test.sh` (installs it) or `apt-get install -y nats-server`";
    if let Some(bin) = std::env::var_os("LOGKV_NATS_SERVER") {
        let bin = PathBuf::from(bin);
        assert!(bin.is_file(), "LOGKV_NATS_SERVER={} is not a file; {INSTALL}", bin.display());
        return bin;
    }
    // Debian installs it in /usr/sbin, which a non-root PATH may lack.
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("nats-server"))
        .find(|bin| bin.is_file())
        .unwrap_or_else(|| panic!("no nats-server on PATH or in /usr/sbin; {INSTALL}"))
}

/// The server's `--version` line, e.g. `nats-server: v2.9.10`.
pub fn server_version() -> String {
    let bin = server_binary();
    let out = Command::new(&bin).arg("--version").output().expect("run nats-server --version");
    assert!(out.status.success(), "{} --version failed: {}", bin.display(), text(&out.stderr));
    text(&out.stdout).trim().to_string()
}

/// A running cluster; stopped (SIGTERM) and its directory removed when
/// dropped.
pub struct Cluster {
    nodes: usize,
    base: u16,
    urls: String,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts `nodes` nodes (1: standalone JetStream) and waits until they
    /// are healthy and, for more than one, a meta leader is elected;
    /// panics with the script's output and the servers' logs otherwise.
    /// `LOGKV_NATS_SYNC=always` (set by scripts/test.sh for its run on a
    /// newer server) makes every server sync each write before it is
    /// acknowledged.
    pub fn start(nodes: usize) -> Cluster {
        match std::env::var("LOGKV_NATS_SYNC") {
            Ok(sync) => Cluster::start_with(nodes, &["--sync", &sync]),
            Err(_) => Cluster::start_with(nodes, &[]),
        }
    }

    /// Starts with extra flags of `nats-cluster.sh start`, such as
    /// `["--sync", "always"]` (servers >= 2.10 only).
    pub fn start_with(nodes: usize, args: &[&str]) -> Cluster {
        Cluster::try_start_with(nodes, args).unwrap_or_else(|why| panic!("{why}"))
    }

    /// Like `start_with`, but returns why the start failed (the script's
    /// stderr and the servers' logs) instead of panicking.
    pub fn try_start_with(nodes: usize, args: &[&str]) -> Result<Cluster, String> {
        assert!((1..=100).contains(&nodes), "1 to 100 nodes, not {nodes}");
        let mut attempt = 1;
        loop {
            let dir = tempfile::tempdir().expect("temporary directory");
            let base = free_base(nodes);
            let mut start = vec!["start".to_string(), path_arg(dir.path())];
            start.extend(["--nodes".to_string(), nodes.to_string(), "--port".to_string(), base.to_string()]);
            start.extend(args.iter().map(|a| a.to_string()));
            let out = run_script(&start);
            if out.status.success() {
                let urls = text(&out.stdout).trim().to_string();
                return Ok(Cluster { nodes, base, urls, dir });
            }
            // The script stops what it started when it fails.
            let why = format!(
                "nats-cluster.sh start failed ({}, {}):\n{}\n{}",
                server_version(),
                out.status,
                text(&out.stderr),
                logs(dir.path(), nodes)
            );
            // Ports found free can be taken before the servers bind them.
            if why.contains("address already in use") && attempt < START_ATTEMPTS {
                attempt += 1;
                continue;
            }
            return Err(why);
        }
    }

    /// How many nodes it has.
    pub fn nodes(&self) -> usize {
        self.nodes
    }

    /// Every node's client URL, comma-separated:
    /// `nats://127.0.0.1:P1,nats://127.0.0.1:P2,...`.
    pub fn urls(&self) -> String {
        self.urls.clone()
    }

    /// Node `i`'s (1-based) client URL, `nats://127.0.0.1:P`.
    pub fn url(&self, i: usize) -> String {
        format!("nats://{}", self.addr(i))
    }

    /// Node `i`'s client address, `127.0.0.1:P`.
    pub fn addr(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.port(i, 0))
    }

    /// Node `i`'s monitoring address (`/healthz`, `/varz`, `/jsz`),
    /// `127.0.0.1:P`.
    pub fn monitor_addr(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.port(i, MONITOR_OFFSET))
    }

    /// The directory of configs, stores (`n<i>/js`), logs and pid files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What node `i` logged so far (across restarts).
    pub fn log(&self, i: usize) -> String {
        self.check(i);
        std::fs::read_to_string(self.dir().join(format!("n{i}.log"))).unwrap_or_default()
    }

    /// Crashes node `i` with SIGKILL and waits until it is gone.
    pub fn kill9(&self, i: usize) {
        self.check(i);
        self.node_command("kill", i);
    }

    /// Starts node `i` again on its store and waits until it is healthy.
    pub fn restart(&self, i: usize) {
        self.check(i);
        self.node_command("restart", i);
    }

    /// The JetStream state of `stream` as node `i` sees it (`/jsz`):
    /// `{"name", "state": {"messages", "last_seq", ...}, "cluster":
    /// {"leader": "nK", ...}}`, or `None` if the node does not report it.
    pub fn stream_info(&self, i: usize, stream: &str) -> Option<serde_json::Value> {
        let url = format!("http://{}/jsz?accounts=true&streams=true", self.monitor_addr(i));
        let agent: ureq::Agent =
            ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(10))).build().into();
        let body = agent.get(&url).call().ok()?.body_mut().read_to_string().ok()?;
        let jsz: serde_json::Value = serde_json::from_str(&body).ok()?;
        jsz["account_details"]
            .as_array()?
            .iter()
            .flat_map(|account| account["stream_detail"].as_array().cloned().unwrap_or_default())
            .find(|s| s["name"] == stream)
    }

    /// The stream's last sequence (position) as node `i` stores it.
    pub fn last_seq(&self, i: usize, stream: &str) -> Option<u64> {
        self.stream_info(i, stream)?["state"]["last_seq"].as_u64()
    }

    /// The node (1-based) leading `stream`'s replicas, as node `i` reports.
    pub fn stream_leader(&self, i: usize, stream: &str) -> Option<usize> {
        let info = self.stream_info(i, stream)?;
        info["cluster"]["leader"].as_str()?.strip_prefix('n')?.parse().ok()
    }

    /// Publishes `payload` on `subject` through node `i` with the plain
    /// NATS text protocol (no JetStream client: what any publisher that
    /// bypasses logkv can do) and returns the stream sequence JetStream's
    /// acknowledgement names; panics on an error or no acknowledgement.
    pub fn publish(&self, i: usize, subject: &str, payload: &[u8]) -> u64 {
        publish(&self.addr(i), subject, payload).unwrap_or_else(|why| panic!("publish on {subject}: {why}"))
    }

    fn node_command(&self, command: &str, i: usize) {
        let out = run_script(&[command.to_string(), path_arg(self.dir()), i.to_string()]);
        assert!(
            out.status.success(),
            "nats-cluster.sh {command} node {i} failed ({}):\n{}\n{}",
            out.status,
            text(&out.stderr),
            logs(self.dir(), self.nodes)
        );
    }

    fn port(&self, i: usize, offset: u16) -> u16 {
        self.check(i);
        self.base + offset + (i - 1) as u16
    }

    fn check(&self, i: usize) {
        assert!((1..=self.nodes).contains(&i), "node {i} of a {}-node cluster (1-based)", self.nodes);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let out = run_script(&["stop".to_string(), path_arg(self.dir())]);
        if !out.status.success() {
            // No panic while a test may already be unwinding.
            eprintln!("nats-cluster.sh stop failed ({}):\n{}", out.status, text(&out.stderr));
        }
    }
}

/// `PUB subject INBOX len` on a fresh connection to `addr`, then waits for
/// the JetStream acknowledgement on INBOX: the stored sequence.
fn publish(addr: &str, subject: &str, payload: &[u8]) -> Result<u64, String> {
    const INBOX: &str = "_INBOX.logkv_test";
    let stream = TcpStream::connect(addr).map_err(|e| format!("connect to {addr}: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(20))).map_err(|e| e.to_string())?;
    let mut out = stream.try_clone().map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    let read_line = |reader: &mut BufReader<TcpStream>, line: &mut String| -> Result<(), String> {
        line.clear();
        match reader.read_line(line) {
            Ok(0) => Err("connection closed".to_string()),
            Ok(_) => Ok(()),
            Err(e) => Err(format!("read: {e}")),
        }
    };
    read_line(&mut reader, &mut line)?;
    if !line.starts_with("INFO ") {
        return Err(format!("greeted with {line:?}"));
    }
    let mut request = format!(
        "CONNECT {{\"verbose\":false,\"pedantic\":false}}\r\nSUB {INBOX} 1\r\nPUB {subject} {INBOX} {}\r\n",
        payload.len()
    )
    .into_bytes();
    request.extend_from_slice(payload);
    request.extend_from_slice(b"\r\nPING\r\n");
    out.write_all(&request).map_err(|e| format!("write: {e}"))?;
    loop {
        read_line(&mut reader, &mut line)?;
        let head = line.trim_end();
        if head == "PING" {
            out.write_all(b"PONG\r\n").map_err(|e| format!("write: {e}"))?;
        } else if head == "PONG" || head == "+OK" {
            continue;
        } else if let Some(msg) = head.strip_prefix("MSG ") {
            let len: usize =
                msg.rsplit(' ').next().and_then(|n| n.parse().ok()).ok_or(format!("{head:?}"))?;
            let mut body = vec![0; len + 2];
            reader.read_exact(&mut body).map_err(|e| format!("read the acknowledgement: {e}"))?;
            let ack: serde_json::Value = serde_json::from_slice(&body[..len])
                .map_err(|e| format!("acknowledgement {:?}: {e}", text(&body)))?;
            return ack["seq"].as_u64().ok_or_else(|| format!("JetStream answered {ack}"));
        } else {
            return Err(format!("the server said {head:?}"));
        }
    }
}

fn run_script(args: &[String]) -> Output {
    Command::new("bash")
        .arg(script())
        .args(args)
        .env("NATS_SERVER", server_binary())
        .output()
        .expect("run bash scripts/nats-cluster.sh")
}

/// A random BASE whose every port (clients, monitoring, routes) can be
/// bound right now: the OS's ephemeral port 0 gives one port, not three
/// ranges at fixed distances.
fn free_base(nodes: usize) -> u16 {
    for _ in 0..1000 {
        let base: u16 = rand::random_range(20000..60000);
        let all_free = [0, MONITOR_OFFSET, ROUTE_OFFSET]
            .iter()
            .flat_map(|offset| (0..nodes as u16).map(move |i| base + offset + i))
            .all(|port| TcpListener::bind(("127.0.0.1", port)).is_ok());
        if all_free {
            return base;
        }
    }
    panic!("no free loopback port range for {nodes} NATS nodes");
}

/// Every node's log, for failure messages.
fn logs(dir: &Path, nodes: usize) -> String {
    (1..=nodes)
        .map(|i| {
            let log = std::fs::read_to_string(dir.join(format!("n{i}.log"))).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            format!("--- n{i}.log (last {} lines)\n{}\n", tail.len(), tail.join("\n"))
        })
        .collect()
}

fn path_arg(path: &Path) -> String {
    path.to_str().expect("UTF-8 temporary path").to_string()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// One `nats-server` with JetStream on a configuration of the test's own
/// (TLS, authorization, operator mode) on a free loopback port; killed
/// and its directory removed when dropped.
pub struct Standalone {
    child: std::process::Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Standalone {
    /// Starts a server whose configuration is `conf` (without `listen`
    /// and `jetstream`, which this adds) and waits until it is ready;
    /// panics with its log otherwise.
    pub fn start(conf: &str) -> Standalone {
        for _ in 0..START_ATTEMPTS {
            let dir = tempfile::tempdir().expect("temporary directory");
            let port =
                TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
            let store = path_arg(&dir.path().join("js"));
            let file = dir.path().join("nats.conf");
            let full =
                format!("listen: \"127.0.0.1:{port}\"\njetstream {{ store_dir: \"{store}\" }}\n{conf}\n");
            std::fs::write(&file, full).expect("write nats.conf");
            let log = dir.path().join("nats.log");
            let child = Command::new(server_binary())
                .arg("-c")
                .arg(&file)
                .stdout(std::process::Stdio::null())
                .stderr(std::fs::File::create(&log).expect("nats.log"))
                .spawn()
                .expect("spawn nats-server");
            let mut server = Standalone { child, port, dir };
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            loop {
                let log = server.log();
                if log.contains("Server is ready") {
                    return server;
                }
                let exited = server.child.try_wait().expect("try_wait").is_some();
                if exited && log.contains("address already in use") {
                    break;
                }
                assert!(
                    !exited && std::time::Instant::now() < deadline,
                    "nats-server ({}) did not start on\n{conf}\n{log}",
                    server_version()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("no free port for nats-server after {START_ATTEMPTS} attempts");
    }

    /// Its client address, `127.0.0.1:P`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("nats.log")).unwrap_or_default()
    }
}

impl Drop for Standalone {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
