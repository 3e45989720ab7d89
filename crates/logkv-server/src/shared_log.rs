//! The shared logs `logkv serve` and the command line's log tools run on,
//! as `--log` chooses: a JetStream stream (`nats://HOST:PORT,...`) or a
//! file log of entries (`file:DIR`, shared by the nodes of one process).
//!
//! [`ServerLog`] implements [`SharedLog`] by handing each call to the log
//! chosen at start, so the replica, `logkv log trim` and `checkpoint
//! import` are written once, generic over the trait; this enum is the one
//! place that knows which backends exist and what each reports besides
//! the trait (the servers and bytes received of a stream).

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use logkv_nats::{ConfigError, FollowStats, JetStreamLog, NatsConfig};
use logkv_runtime::apply::Watched;
use logkv_runtime::divergence::DigestReport;
use logkv_runtime::shared_log::{
    Batch, BoardReports, DigestReports, FileEntryLog, FileFollower, Follower, SharedLog, SharedLogError,
};
use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::config::NatsSettings;

/// Where a node's shared log is, from `--log` (with `--log-stream`,
/// `--replicas` and the NATS connection's settings for a stream).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogChoice {
    /// A JetStream stream.
    Nats(NatsConfig),
    /// A file log of entries in this directory.
    File(PathBuf),
}

/// Why a shared log cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The stream cannot be reached, created or used.
    #[error(transparent)]
    Nats(#[from] logkv_nats::OpenError),
    /// The directory cannot be used (another process holds it, I/O).
    #[error(transparent)]
    File(SharedLogError),
}

impl OpenError {
    /// Whether the configuration is at fault (the NATS connection's TLS
    /// or credentials) rather than the servers, the stream or the disk.
    pub fn is_usage(&self) -> bool {
        matches!(self, OpenError::Nats(e) if e.is_usage())
    }
}

impl LogChoice {
    /// The log `--log` names: `None` for `file`, the node's own file log.
    /// A stream is reached with `nats`' TLS and credentials.
    pub fn parse(
        log: &str,
        stream: &str,
        replicas: usize,
        nats: &NatsSettings,
    ) -> Result<Option<LogChoice>, ConfigError> {
        if log == "file" {
            return Ok(None);
        }
        if let Some(dir) = log.strip_prefix("file:") {
            if dir.is_empty() {
                return Err(ConfigError::BadUrl { url: log.into(), why: "file: needs a directory" });
            }
            return Ok(Some(LogChoice::File(dir.into())));
        }
        NatsConfig::new(log, stream, replicas).map(|c| Some(LogChoice::Nats(nats.secure(c))))
    }

    /// Opens the log for a node, creating it if it does not exist.
    pub fn open(&self) -> Result<ServerLog, OpenError> {
        match self {
            LogChoice::Nats(c) => Ok(ServerLog::nats(JetStreamLog::open(c)?)),
            LogChoice::File(dir) => FileEntryLog::open(dir).map(ServerLog::File).map_err(OpenError::File),
        }
    }

    /// Opens a log that must exist, whatever a stream's replica count: for
    /// administering it, not for a node.
    pub fn open_existing(&self) -> Result<ServerLog, OpenError> {
        match self {
            LogChoice::Nats(c) => Ok(ServerLog::nats(JetStreamLog::open_existing(c)?)),
            LogChoice::File(dir) if !dir.is_dir() => {
                let why = format!("file log {}: no such directory", dir.display());
                Err(OpenError::File(SharedLogError::Unavailable(why)))
            }
            LogChoice::File(_) => self.open(),
        }
    }
}

/// The shared log a server runs on.
#[derive(Debug)]
pub enum ServerLog {
    /// A JetStream stream, and the counters of the follower started last
    /// (a node starts one).
    Nats {
        /// The stream (boxed: its client is large).
        log: Box<JetStreamLog>,
        /// What the follower counted.
        followed: Mutex<Option<Arc<FollowStats>>>,
    },
    /// A file log of entries.
    File(FileEntryLog),
}

/// A [`ServerLog`]'s follower.
#[derive(Debug)]
pub enum ServerFollower {
    /// Of a stream.
    Nats(logkv_nats::Follower),
    /// Of a file log.
    File(FileFollower),
}

/// A [`ServerLog`]'s digest reports.
#[derive(Debug)]
pub enum ServerReports {
    /// From a stream's digest subject.
    Nats(logkv_nats::Reports),
    /// From a file log's in-process board.
    File(BoardReports),
}

impl ServerLog {
    fn nats(log: JetStreamLog) -> ServerLog {
        ServerLog::Nats { log: Box::new(log), followed: Mutex::new(None) }
    }

    /// What `admin_nodeInfo` says about the log besides its identity.
    pub fn describe(&self) -> Value {
        match self {
            ServerLog::Nats { log, .. } => json!({
                "servers": log.config().servers,
                "stream": log.config().stream,
                "replicas": log.config().replicas,
            }),
            ServerLog::File(_) => json!({}),
        }
    }

    /// Bytes received from the servers (what selective transfer saves); 0
    /// for a file log.
    pub fn received_bytes(&self) -> u64 {
        match self {
            ServerLog::Nats { log, .. } => log.received_bytes(),
            ServerLog::File(_) => 0,
        }
    }

    /// Messages the follower dropped for being on the wrong subject.
    pub fn misrouted(&self) -> u64 {
        match self {
            ServerLog::Nats { followed, .. } => {
                followed.lock().as_ref().map_or(0, |s| s.misrouted.load(std::sync::atomic::Ordering::Relaxed))
            }
            ServerLog::File(_) => 0,
        }
    }

    /// Stops a stream's client and its tasks (appends still retrying,
    /// followers). Must not be called from inside an async runtime.
    pub fn close(&self) {
        if let ServerLog::Nats { log, .. } = self {
            log.close();
        }
    }
}

impl std::fmt::Display for ServerLog {
    /// How messages name the log: `stream NAME` or `file log DIR`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerLog::Nats { log, .. } => write!(f, "stream {}", log.config().stream),
            ServerLog::File(log) => write!(f, "file log {}", log.identity().trim_start_matches("file:")),
        }
    }
}

/// Runs one of a log's futures to completion on a plain thread (the
/// command line's log tools), on a runtime of its own.
pub fn block_on<F: Future>(f: F) -> std::io::Result<F::Output> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(f))
}

impl SharedLog for ServerLog {
    type Follower = ServerFollower;
    type Reports = ServerReports;

    async fn append(&self, entries: &[Bytes]) -> Result<Vec<u64>, SharedLogError> {
        match self {
            ServerLog::Nats { log, .. } => log.append(entries).await,
            ServerLog::File(log) => log.append(entries).await,
        }
    }

    fn follow(&self, from: u64, watched: &Watched) -> ServerFollower {
        match self {
            ServerLog::Nats { log, followed } => {
                let follower = log.follow(from, watched);
                *followed.lock() = Some(follower.stats().clone());
                ServerFollower::Nats(follower)
            }
            ServerLog::File(log) => ServerFollower::File(log.follow(from, watched)),
        }
    }

    async fn first_position(&self) -> Result<u64, SharedLogError> {
        match self {
            ServerLog::Nats { log, .. } => log.first_position().await,
            ServerLog::File(log) => log.first_position().await,
        }
    }

    async fn tail(&self) -> Result<u64, SharedLogError> {
        match self {
            ServerLog::Nats { log, .. } => log.tail().await,
            ServerLog::File(log) => log.tail().await,
        }
    }

    async fn trim_below(&self, first_kept: u64) -> Result<u64, SharedLogError> {
        match self {
            ServerLog::Nats { log, .. } => log.trim_below(first_kept).await,
            ServerLog::File(log) => log.trim_below(first_kept).await,
        }
    }

    fn identity(&self) -> String {
        match self {
            ServerLog::Nats { log, .. } => log.identity(),
            ServerLog::File(log) => log.identity(),
        }
    }

    async fn publish_digest(&self, report: &DigestReport) -> Result<(), SharedLogError> {
        match self {
            ServerLog::Nats { log, .. } => log.publish_digest(report).await,
            ServerLog::File(log) => log.publish_digest(report).await,
        }
    }

    async fn digest_reports(&self) -> Result<ServerReports, SharedLogError> {
        match self {
            ServerLog::Nats { log, .. } => log.digest_reports().await.map(ServerReports::Nats),
            ServerLog::File(log) => log.digest_reports().await.map(ServerReports::File),
        }
    }
}

impl DigestReports for ServerReports {
    async fn next(&mut self) -> Option<DigestReport> {
        match self {
            ServerReports::Nats(r) => r.next().await,
            ServerReports::File(r) => r.next().await,
        }
    }
}

impl Follower for ServerFollower {
    async fn next(&mut self, max: usize) -> Result<Batch, SharedLogError> {
        match self {
            ServerFollower::Nats(f) => f.next(max).await,
            ServerFollower::File(f) => f.next(max).await,
        }
    }
}
