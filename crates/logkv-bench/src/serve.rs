//! `logkv serve` as a child process, for the figures measured through the
//! path users use: a release `logkv` binary on loopback ports, driven by
//! plain RESP clients (one thread per connection, each waiting for its
//! reply, as `redis-benchmark -P 1` does), with its memory read from
//! `/proc/PID/status` and its own figures from `/metrics`.

use std::error::Error;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// The admin token the bench's servers take, for `logkv compact --remote`.
pub const ADMIN_TOKEN: &str = "logkv-bench";

/// The `logkv` binary: `LOGKV_BIN`, else the one beside this benchmark's
/// own binary (`cargo build --release -p logkv` puts it there).
pub fn logkv_bin() -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os("LOGKV_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let exe = std::env::current_exe()?;
    let bin = exe.with_file_name("logkv");
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!(
            "{} not found: build it with `cargo build --release -p logkv` or set LOGKV_BIN",
            bin.display()
        )
        .into())
    }
}

/// A loopback address with a port free right now.
fn free_addr() -> Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// A running `logkv serve`.
pub struct Server {
    child: Child,
    dir: PathBuf,
    args: Vec<String>,
    /// The Redis-protocol address.
    pub resp: SocketAddr,
    /// The HTTP (JSON-RPC, metrics) address.
    pub http: SocketAddr,
}

impl Server {
    /// Starts `logkv serve` on `dir` with `args` besides the addresses and
    /// waits until it answers PING.
    pub fn start(dir: &Path, args: &[&str]) -> Result<Self> {
        Self::spawn(dir, args.iter().map(|a| a.to_string()).collect())
    }

    fn spawn(dir: &Path, args: Vec<String>) -> Result<Self> {
        let (resp, http) = (free_addr()?, free_addr()?);
        let child = Command::new(logkv_bin()?)
            .arg("serve")
            .arg("--data-dir")
            .arg(dir)
            .args(["--resp", &resp.to_string(), "--http", &http.to_string(), "--admin-token", ADMIN_TOKEN])
            .args(&args)
            .env("LOGKV_LOG_FILTER", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()?;
        let mut server = Server { child, dir: dir.to_path_buf(), args, resp, http };
        server.wait_ready()?;
        Ok(server)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(format!("logkv serve exited at start: {status}").into());
            }
            if let Ok(mut c) = Client::connect(self.resp) {
                if c.call(&[b"PING"]).is_ok() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err("logkv serve did not answer PING within 600 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A `kB` field of the server's `/proc/PID/status`, in bytes.
    pub fn status_bytes(&self, field: &str) -> u64 {
        logkv_eval::measure::status_bytes_of(&format!("/proc/{}/status", self.pid()), field)
    }

    /// A sample of `/metrics` without labels, e.g. `logkv_index_bytes`.
    pub fn metric(&self, name: &str) -> Result<f64> {
        let mut s = TcpStream::connect(self.http)?;
        write!(s, "GET /metrics HTTP/1.0\r\nHost: {}\r\n\r\n", self.http)?;
        let mut text = String::new();
        s.read_to_string(&mut text)?;
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .ok_or_else(|| format!("/metrics has no {name}").into())
    }

    /// Runs `logkv compact --remote` against the server; its output line.
    pub fn compact(&self) -> Result<String> {
        let out = Command::new(logkv_bin()?)
            .args(["compact", "--remote", &format!("http://{}", self.http), "--admin-token", ADMIN_TOKEN])
            .output()?;
        if !out.status.success() {
            return Err(format!("logkv compact: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Stops the server gracefully (SIGTERM) and waits for it.
    pub fn stop(mut self) -> Result<()> {
        // SAFETY: kill(2) on our own child's pid; it has not been reaped.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let status = self.child.wait()?;
        if !status.success() {
            return Err(format!("logkv serve exited with {status}").into());
        }
        Ok(())
    }

    /// Stops the server and starts it again on the same directory with the
    /// same settings.
    pub fn restart(self) -> Result<Self> {
        let (dir, args) = (self.dir.clone(), self.args.clone());
        self.stop()?;
        Self::spawn(&dir, args)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Bytes of log data (frames, not preallocated space) in `dir`, as
/// `logkv inspect` counts them on a stopped node's directory.
pub fn log_data_bytes(dir: &Path) -> Result<u64> {
    let out = Command::new(logkv_bin()?).args(["inspect", "--data-dir"]).arg(dir).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter(|l| l.starts_with("total "))
        .find_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix("data_bytes=")?.parse().ok()))
        .ok_or_else(|| format!("logkv inspect printed no total data_bytes: {text}").into())
}

/// A blocking RESP connection.
pub struct Client {
    out: TcpStream,
    input: BufReader<TcpStream>,
    buf: Vec<u8>,
}

impl Client {
    /// Connects to `addr`.
    pub fn connect(addr: SocketAddr) -> Result<Self> {
        let out = TcpStream::connect(addr)?;
        out.set_nodelay(true)?;
        let input = BufReader::new(out.try_clone()?);
        Ok(Self { out, input, buf: Vec::with_capacity(256) })
    }

    /// Sends one command and reads its reply; an error reply is an error.
    pub fn call(&mut self, args: &[&[u8]]) -> Result<()> {
        self.buf.clear();
        self.buf.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in args {
            self.buf.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            self.buf.extend_from_slice(a);
            self.buf.extend_from_slice(b"\r\n");
        }
        self.out.write_all(&self.buf)?;
        self.read_reply()
    }

    fn read_reply(&mut self) -> Result<()> {
        let mut line = Vec::new();
        self.input.read_until(b'\n', &mut line)?;
        match line.first() {
            Some(b'+') | Some(b':') => Ok(()),
            Some(b'-') => Err(format!("server error: {}", String::from_utf8_lossy(&line).trim()).into()),
            Some(b'$') => {
                let len: i64 = std::str::from_utf8(&line[1..])?.trim().parse()?;
                if len >= 0 {
                    let mut body = vec![0; len as usize + 2];
                    self.input.read_exact(&mut body)?;
                }
                Ok(())
            }
            _ => Err(format!("unexpected reply {:?}", String::from_utf8_lossy(&line)).into()),
        }
    }
}

/// Sends `total` commands over `clients` connections, each connection
/// waiting for every reply before its next command; `command(i, f)` calls
/// `f` with the arguments of command `i`. Returns the wall time taken.
pub fn drive(
    addr: SocketAddr,
    clients: usize,
    total: u64,
    command: impl Fn(u64, &mut dyn FnMut(&[&[u8]]) -> Result<()>) -> Result<()> + Sync,
) -> Result<Duration> {
    let next = AtomicU64::new(0);
    let started = Instant::now();
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..clients)
            .map(|_| {
                s.spawn(|| -> std::result::Result<(), String> {
                    let mut c = Client::connect(addr).map_err(|e| e.to_string())?;
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= total {
                            return Ok(());
                        }
                        command(i, &mut |args| c.call(args)).map_err(|e| e.to_string())?;
                    }
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| w.join().map_err(|_| "client thread panicked".to_string())?)
    })?;
    Ok(started.elapsed())
}
